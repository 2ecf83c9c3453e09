"""GDSS score networks: permutation equivariance, symmetry, masking, padding invariance."""

import torch

from core.types import StateDict
from domains.graphs.networks import GDSSNet, adjacency_powers


def _net():
    torch.manual_seed(0)
    return GDSSNet(feat=3, hidden=16, depth_x=2, depth_a=2, powers=3, channels=4, heads=2, emb_dim=8).eval()


def _graph(n=6, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, n, n, generator=g)
    a = torch.triu(a, 1) + torch.triu(a, 1).transpose(1, 2)
    return StateDict({"x": torch.randn(b, n, 3, generator=g), "adj": a})


def test_permutation_equivariance():
    net, s, mask = _net(), _graph(), torch.ones(2, 6)
    t = torch.tensor([0.3, 0.7])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out = net(s, t, {"mask": mask})
    sp = StateDict({"x": s["x"][:, perm], "adj": s["adj"][:, perm][:, :, perm]})
    outp = net(sp, t, {"mask": mask})
    assert torch.allclose(outp["x"], out["x"][:, perm], atol=1e-5)
    assert torch.allclose(outp["adj"], out["adj"][:, perm][:, :, perm], atol=1e-5)


def test_output_symmetric_and_masked():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    s = _graph()
    s = StateDict({"x": s["x"] * mask[..., None], "adj": s["adj"] * mask[:, :, None] * mask[:, None, :]})
    out = _net()(s, torch.tensor([0.5, 0.5]), {"mask": mask})
    assert torch.allclose(out["adj"], out["adj"].transpose(1, 2))
    assert torch.all(torch.diagonal(out["adj"], dim1=1, dim2=2) == 0)
    assert torch.all(out["adj"][0, 4:] == 0) and torch.all(out["x"][0, 4:] == 0)


def test_padding_does_not_change_real_nodes():
    net, s = _net(), _graph(n=4, b=1)
    out = net(s, torch.tensor([0.4]), {"mask": torch.ones(1, 4)})
    pad = StateDict({"x": torch.cat([s["x"], torch.zeros(1, 2, 3)], 1),
                     "adj": torch.nn.functional.pad(s["adj"], (0, 2, 0, 2))})
    outp = net(pad, torch.tensor([0.4]), {"mask": torch.tensor([[1.0, 1, 1, 1, 0, 0]])})
    assert torch.allclose(outp["x"][:, :4], out["x"], atol=1e-5)
    assert torch.allclose(outp["adj"][:, :4, :4], out["adj"], atol=1e-5)


def test_adjacency_powers_hand_computed():
    a = torch.tensor([[[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]])  # path on 3 nodes
    p = adjacency_powers(a, torch.ones(1, 3), 2)
    assert torch.equal(p[0, :, :, 0], a[0])
    assert torch.allclose(p[0, :, :, 1], (a[0] @ a[0]) / 3.0)
