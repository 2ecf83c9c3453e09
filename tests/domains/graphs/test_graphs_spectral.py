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


def test_bridge_channels_find_the_bisection_and_count_the_edges_across_it():
    from domains.graphs.spectral import bridge_channels

    a, mask = _two_triangles()
    bridged = a.clone()
    bridged[0, 2, 3] = bridged[0, 3, 2] = 1.0
    ch = bridge_channels(bridged, mask)
    assert ch.shape == (1, 8, 8, 2)
    cross = ch[0, :6, :6, 0]
    expect = torch.zeros(6, 6, dtype=torch.float64)
    expect[:3, 3:] = expect[3:, :3] = 1.0
    assert torch.equal(cross, expect)  # the two triangles are the two halves
    assert torch.allclose(ch[0, :6, :6, 1], torch.ones(6, 6, dtype=torch.float64))  # one edge crosses
    assert float(ch[0, 6:].abs().max()) == 0.0 and float(ch[0, :, 6:].abs().max()) == 0.0  # padding
    two = bridged.clone()
    two[0, 0, 4] = two[0, 4, 0] = 0.5  # a second, half-weight bridge
    assert float(bridge_channels(two, mask)[0, 0, 0, 1]) == pytest.approx(1.5)
    assert float(bridge_channels(a, mask)[0, 0, 0, 1]) == 0.0  # disconnected: nothing crosses


def test_bridge_needs_spectral_channels():
    from domains.graphs.domain import GraphNetwork

    with pytest.raises(ValueError, match="set network.spectral"):
        GraphNetwork(bridge=True)


@pytest.mark.parametrize("bridge", [False, True])
def test_spectral_network_is_permutation_equivariant(bridge):
    from domains.graphs.domain import GraphsConfig, GraphsDomain

    cfg = GraphsConfig(domain="graphs", dataset="community_small", data={"max_nodes": 8, "max_feat": 5},
                       network={"hidden": 8, "depth_x": 2, "layers_a": 2, "attn_dim": 8, "c_hid": 4, "heads": 2,
                                "emb_dim": 8, "spectral": 2, "bridge": bridge})
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


@pytest.mark.parametrize("spectral,bridge,node_struct", [(0, False, 0), (2, False, 0), (2, True, 0), (2, True, 3),
                                                         (0, False, 3)])
def test_self_conditioned_network_is_equivariant_and_uses_the_estimate(spectral, bridge, node_struct):
    from domains.graphs.domain import GraphsConfig, GraphsDomain

    cfg = GraphsConfig(domain="graphs", dataset="community_small", data={"max_nodes": 8, "max_feat": 5},
                       model={"prediction": "x0", "self_condition": True},
                       network={"hidden": 8, "depth_x": 2, "layers_a": 2, "attn_dim": 8, "c_hid": 4, "heads": 2,
                                "emb_dim": 8, "spectral": spectral, "bridge": bridge,
                                "node_struct": node_struct})
    torch.manual_seed(0)
    dom = GraphsDomain()
    net = dom.build_network(cfg).double()
    assert net.supports_self_condition and net.node_in == 2 * 5 + 2 * node_struct
    g = torch.Generator().manual_seed(1)
    x, a = torch.randn(2, 8, 5, generator=g, dtype=torch.float64), torch.randn(2, 8, 8, generator=g, dtype=torch.float64)
    a = a + a.transpose(1, 2)
    sc_a = (torch.rand(2, 8, 8, generator=g, dtype=torch.float64) > 0.6).double()
    sc = StateDict({"x": torch.randn(2, 8, 5, generator=g, dtype=torch.float64), "adj": torch.triu(sc_a, 1) + torch.triu(sc_a, 1).transpose(1, 2)})
    mask = torch.ones(2, 8, dtype=torch.float64)
    mask[1, 6:] = 0.0
    t = torch.rand(2, dtype=torch.float64)
    out = net(StateDict({"x": x, "adj": a}), t, {"mask": mask}, self_cond=sc)
    perm = torch.cat([torch.randperm(6), torch.tensor([6, 7])])
    p = lambda s: StateDict({"x": s["x"][:, perm], "adj": s["adj"][:, perm][:, :, perm]})  # noqa: E731
    out_p = net(p(StateDict({"x": x, "adj": a})), t, {"mask": mask[:, perm]}, self_cond=p(sc))
    assert torch.allclose(out_p["adj"], out["adj"][:, perm][:, :, perm], atol=1e-10)
    assert torch.allclose(out_p["x"], out["x"][:, perm], atol=1e-10)
    none = net(StateDict({"x": x, "adj": a}), t, {"mask": mask})  # zeros: a different output
    assert float((none["adj"] - out["adj"]).abs().max()) > 1e-6 and float((none["x"] - out["x"]).abs().max()) > 1e-6
    # the denoiser built by the domain carries the flag through
    assert dom.denoiser(cfg).self_condition


def test_self_condition_config_errors():
    from domains.graphs.domain import GraphsConfig

    with pytest.raises(ValueError, match="steer_particles"):
        GraphsConfig(domain="graphs", dataset="qm9", model={"self_condition": True},
                     validate={"steer_particles": 4})
    plain = GraphsConfig(domain="graphs", dataset="community_small", data={"max_nodes": 8, "max_feat": 5},
                         network={"hidden": 8, "attn_dim": 8, "heads": 2})
    from domains.graphs.domain import GraphsDomain

    with pytest.raises(ValueError, match="without self_condition"):
        GraphsDomain().build_network(plain)(StateDict({"x": torch.zeros(1, 8, 5), "adj": torch.zeros(1, 8, 8)}),
                                            torch.zeros(1), {"mask": torch.ones(1, 8)},
                                            self_cond=StateDict({"x": torch.zeros(1, 8, 5), "adj": torch.zeros(1, 8, 8)}))
