"""Spectral pair channels of the adjacency network: a hand case, masking and permutation equivariance."""

import pytest
import torch

from core.types import StateDict
from domains.graphs.spectral import spectral_channels


def _two_triangles(pad: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    n = 6 + pad
    a = torch.zeros(1, n, n, dtype=torch.float64)
    for block in ((0, 1, 2), (3, 4, 5)):
        for i in block:
            for j in block:
                if i != j:
                    a[0, i, j] = 1.0
    mask = torch.zeros(1, n, dtype=torch.float64)
    mask[0, :6] = 1.0
    return a, mask


def test_two_triangles_hand_case():
    # eigenvalues of two disjoint K3: 2, 2, -1 x4; the top-2 eigenspace sums to 2 * (block of 1/3)
    a, mask = _two_triangles()
    ch = spectral_channels(a, mask, 2)
    assert ch.shape == (1, 8, 8, 2)
    total = ch.sum(-1)[0]
    assert torch.allclose(total[0, 1], torch.tensor(2 / 3, dtype=torch.float64))
    assert torch.allclose(total[0, 0], torch.tensor(2 / 3, dtype=torch.float64))
    assert abs(float(total[0, 4])) < 1e-12  # across the two communities
    assert float(ch[0, 6:].abs().max()) == 0.0 and float(ch[0, :, 6:].abs().max()) == 0.0  # padding
    assert torch.allclose(ch, ch.transpose(1, 2))


def test_spectral_channels_bad_k():
    a, mask = _two_triangles()
    with pytest.raises(ValueError, match="k >= 1"):
        spectral_channels(a, mask, 0)
    with pytest.raises(ValueError, match="exceeds"):
        spectral_channels(a, mask, 9)


def test_spectral_network_is_permutation_equivariant():
    from domains.graphs.domain import GraphsConfig, GraphsDomain

    cfg = GraphsConfig(domain="graphs", dataset="community_small", data={"max_nodes": 8, "max_feat": 5},
                       network={"hidden": 8, "depth_x": 2, "layers_a": 2, "attn_dim": 8, "c_hid": 4, "heads": 2,
                                "emb_dim": 8, "spectral": 2})
    torch.manual_seed(0)
    net = GraphsDomain().build_network(cfg).double()
    x = torch.randn(2, 8, 5, dtype=torch.float64)
    a = torch.randn(2, 8, 8, dtype=torch.float64)
    a = a + a.transpose(1, 2)
    mask = torch.ones(2, 8, dtype=torch.float64)
    mask[1, 6:] = 0.0
    t = torch.rand(2, dtype=torch.float64)
    out = net(StateDict({"x": x, "adj": a}), t, {"mask": mask})
    perm = torch.cat([torch.randperm(6), torch.tensor([6, 7])])
    out_p = net(StateDict({"x": x[:, perm], "adj": a[:, perm][:, :, perm]}), t, {"mask": mask[:, perm]})
    assert torch.allclose(out_p["adj"], out["adj"][:, perm][:, :, perm], atol=1e-10)
    assert torch.allclose(out_p["x"], out["x"][:, perm], atol=1e-10)
    assert float(out["adj"][1, 6:].abs().max()) == 0.0
