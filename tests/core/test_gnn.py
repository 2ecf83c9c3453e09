"""Dense graph networks and the graph state space: permutation equivariance, symmetry, masking,
padding invariance, hand-computed layers, symmetric masked noise."""

import pytest
import torch

from core.networks.gnn import (
    DenseGCN,
    DenseGraphScoreNet,
    adjacency_powers,
    mask_pairs,
    node_structure_features,
    pair_mask,
)
from core.samplers.graph_space import GraphSpace
from core.seeding import make_generator
from core.types import StateDict


def _net(**kw):
    torch.manual_seed(0)
    args = dict(feat=3, hidden=8, depth_x=2, layers_a=2, attn_dim=8, c_init=2, c_hid=4, c_final=3, heads=2)
    return DenseGraphScoreNet(**{**args, **kw}).eval()


def _graph(n=6, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(b, n, n, generator=g)
    a = torch.triu(a, 1) + torch.triu(a, 1).transpose(1, 2)
    return StateDict({"x": torch.randn(b, n, 3, generator=g), "adj": a})


@pytest.mark.parametrize("emb_dim,node_struct", [(0, 0), (8, 0), (8, 3)])
def test_permutation_equivariance(emb_dim, node_struct):
    net, s, mask = _net(emb_dim=emb_dim, node_struct=node_struct), _graph(), torch.ones(2, 6)
    t = torch.tensor([0.3, 0.7])
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    out = net(s, t, {"mask": mask})
    sp = StateDict({"x": s["x"][:, perm], "adj": s["adj"][:, perm][:, :, perm]})
    outp = net(sp, t, {"mask": mask})
    assert torch.allclose(outp["x"], out["x"][:, perm], atol=1e-5)
    assert torch.allclose(outp["adj"], out["adj"][:, perm][:, :, perm], atol=1e-5)
    assert out["adj"].abs().sum() > 0 and out["x"].abs().sum() > 0


def test_output_symmetric_zero_diagonal_and_masked():
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    s = _graph()
    s = StateDict({"x": s["x"] * mask[..., None], "adj": s["adj"] * mask[:, :, None] * mask[:, None, :]})
    out = _net()(s, torch.tensor([0.5, 0.5]), {"mask": mask})
    assert torch.allclose(out["adj"], out["adj"].transpose(1, 2))
    assert torch.all(torch.diagonal(out["adj"], dim1=1, dim2=2) == 0)
    assert torch.all(out["adj"][0, 4:] == 0) and torch.all(out["x"][0, 4:] == 0)


@pytest.mark.parametrize("node_struct", [0, 3])
def test_padding_does_not_change_real_nodes(node_struct):
    net, s = _net(node_struct=node_struct), _graph(n=4, b=1)
    out = net(s, torch.tensor([0.4]), {"mask": torch.ones(1, 4)})
    pad = StateDict({"x": torch.cat([s["x"], torch.zeros(1, 2, 3)], 1),
                     "adj": torch.nn.functional.pad(s["adj"], (0, 2, 0, 2))})
    outp = net(pad, torch.tensor([0.4]), {"mask": torch.tensor([[1.0, 1, 1, 1, 0, 0]])})
    assert torch.allclose(outp["x"][:, :4], out["x"], atol=1e-5)
    assert torch.allclose(outp["adj"][:, :4, :4], out["adj"], atol=1e-5)


def test_node_structure_features_hand_computed():
    # triangle 0-1-2 with a pendant 3 on node 2 (bond order 2), node 4 isolated, node 5 padding
    a = torch.zeros(1, 6, 6)
    for i, j, w in [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0), (2, 3, 2.0), (3, 5, 1.0)]:
        a[0, i, j] = a[0, j, i] = w
    a[0, 1, 1] = 7.0  # the diagonal is ignored
    mask = torch.tensor([[1.0, 1, 1, 1, 1, 0]])
    f = node_structure_features(a, mask, 3)
    degree = torch.tensor([2.0, 2, 4, 2, 0, 0])  # node 3's edge to padding does not count
    walks2 = torch.tensor([2.0, 2, 6, 4, 0, 0])  # Σ_j A_ij²
    walks3 = torch.tensor([2.0, 2, 2, 0, 0, 0])  # 2 × triangles through the node
    expect = torch.log1p(torch.stack([degree, walks2, walks3], -1))[None]
    assert torch.allclose(f, expect)
    # negative (noisy) weights keep their sign
    assert node_structure_features(-a, mask, 1)[0, 2, 0] == pytest.approx(-float(torch.log1p(torch.tensor(4.0))))
    with pytest.raises(ValueError, match="k >= 1"):
        node_structure_features(a, mask, 0)
    with pytest.raises(ValueError, match="node_struct"):
        _net(node_struct=-1)


def test_node_structure_inputs_with_self_conditioning():
    net, s, mask = _net(node_struct=2, self_condition=True), _graph(), torch.ones(2, 6)
    t = torch.tensor([0.3, 0.7])
    assert net.node_in == 2 * 3 + 2 * 2
    plain, sc = net(s, t, {"mask": mask}), net(s, t, {"mask": mask}, self_cond=_graph(seed=1))
    assert not torch.allclose(plain["x"], sc["x"])  # the estimate's structure reaches the output


def test_custom_keys_and_missing_mask():
    net = _net(x_key="nodes", adj_key="edges", mask_key="m")
    s = _graph()
    out = net({"nodes": s["x"], "edges": s["adj"]}, torch.tensor([0.5, 0.5]), {"m": torch.ones(2, 6)})
    assert set(out) == {"nodes", "edges"}
    with pytest.raises(KeyError, match="'m'"):
        net({"nodes": s["x"], "edges": s["adj"]}, torch.tensor([0.5, 0.5]), None)


def test_dense_gcn_hand_computed():
    gcn = DenseGCN(1, 1)
    with torch.no_grad():
        gcn.weight.fill_(1.0)
        gcn.bias.fill_(0.5)
    a = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])  # one edge: A + I = ones, degrees 2
    x = torch.tensor([[[1.0], [3.0]]])
    out = gcn(x, a)
    assert torch.allclose(out, torch.tensor([[[2.5], [2.5]]]))  # (1 + 3) / 2 + 0.5
    out = gcn(x, a, torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(out, torch.tensor([[[2.5], [0.0]]]))


def test_adjacency_powers_and_masks_hand_computed():
    a = torch.tensor([[[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]])  # path on 3 nodes
    p = adjacency_powers(a, torch.ones(1, 3), 2)
    assert torch.equal(p[0, :, :, 0], a[0]) and torch.equal(p[0, :, :, 1], a[0] @ a[0])
    assert torch.allclose(adjacency_powers(a, torch.ones(1, 3), 2, normalize=True)[0, :, :, 1], (a[0] @ a[0]) / 3)
    m = torch.tensor([[1.0, 1.0, 0.0]])
    assert torch.equal(pair_mask(m)[0], torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    assert torch.equal(mask_pairs(torch.ones(1, 3, 3, 2), m)[0, :, :, 1],
                       torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 0]]))


# ---- GraphSpace ------------------------------------------------------------------------------
def _state(b=3, n=5, f=2):
    return StateDict({"x": torch.zeros(b, n, f), "adj": torch.zeros(b, n, n)})


def _mask():
    return torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)


def test_noise_symmetric_zero_diagonal_and_masked():
    z = GraphSpace().noise_like(_state(), make_generator(0), {"mask": _mask()})
    a = z["adj"]
    assert torch.equal(a, a.transpose(1, 2))
    assert torch.all(torch.diagonal(a, dim1=1, dim2=2) == 0)
    assert torch.all(a[0, 3:] == 0) and torch.all(a[0, :, 3:] == 0)
    assert torch.all(z["x"][2, 2:] == 0) and torch.all(z["x"][1] != 0)


def test_noise_has_unit_variance_off_diagonal_with_channels():
    big = StateDict({"x": torch.zeros(300, 6, 1), "e": torch.zeros(300, 6, 6, 2)})
    z = GraphSpace(pair_fields=("e",)).noise_like(big, make_generator(1), {"mask": torch.ones(300, 6)})
    assert torch.equal(z["e"], z["e"].transpose(1, 2))
    iu = torch.triu_indices(6, 6, 1)
    vals = z["e"][:, iu[0], iu[1]].flatten()
    assert abs(float(vals.var()) - 1.0) < 0.05 and abs(float(vals.mean())) < 0.05
    assert not torch.equal(z["e"][..., 0], z["e"][..., 1])


def test_project_symmetrises_and_masks():
    x = StateDict({"x": torch.ones(1, 3, 1), "adj": torch.tensor([[[5.0, 1.0, 2.0], [3.0, 5.0, 4.0], [6.0, 8.0, 5.0]]])})
    p = GraphSpace().project(x, None, {"mask": torch.tensor([[1.0, 1.0, 0.0]])})
    assert torch.equal(p["adj"], torch.tensor([[[0.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]))
    assert torch.equal(p["x"], torch.tensor([[[1.0], [1.0], [0.0]]]))


def test_reduce_is_masked_mean_over_both_fields():
    # 2 real nodes of 3: x contributes 2 elements (F=1), adj the 2 off-diagonal pairs
    err = StateDict({"x": torch.tensor([[[1.0], [3.0], [100.0]]]), "adj": torch.full((1, 3, 3), 2.0)})
    r = GraphSpace().reduce(err, {"mask": torch.tensor([[1.0, 1.0, 0.0]])})
    assert torch.allclose(r, torch.tensor([(1 + 3 + 2 + 2) / 4.0]))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(KeyError, match="mask"):
        GraphSpace().project(_state(), None, None)
    with pytest.raises(ValueError, match="pair field 'adj'"):
        GraphSpace().project(StateDict({"adj": torch.zeros(2, 3, 4)}), None, {"mask": torch.ones(2, 3)})
    with pytest.raises(TypeError, match="dicts"):
        GraphSpace().project(torch.zeros(2, 3, 3), None, {"mask": torch.ones(2, 3)})
