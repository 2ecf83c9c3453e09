"""Model-1 offset state and model-2 dense graph state: encodings, decoders, networks."""

import numpy as np
import pytest
import torch

from domains.spiderwebs.decode import decode_graph
from domains.spiderwebs.dense import GraphDenoiserNet, dense_to_raw, mask_for, rows_to_dense
from domains.spiderwebs.graph import make_graph
from domains.spiderwebs.layout import graphs_to_layout
from domains.spiderwebs.networks import CondDropout, NodeTransformer
from domains.spiderwebs.offsets import channels, layout_to_offset_state, offset_scale, offset_state_to_raw


def _graphs():
    # a 5-node "kite": one node of degree 4 with edges of distinct lengths, and a triangle
    kite = make_graph([[0, 0, 0], [1, 0, 0], [0, 2, 0], [-3, 0, 0], [0, 0, 4]],
                      [[0, 1], [0, 2], [0, 3], [0, 4], [1, 2]])
    tri = make_graph([[0, 0, 0], [2, 0, 0], [0, 0, 2.5]], [[0, 1], [1, 2], [0, 2]])
    return [kite, tri]


def test_offset_state_layout_sorted_by_length():
    rows = graphs_to_layout(_graphs(), max_length=8)
    x = layout_to_offset_state(rows, scale=2.0, off_scale=1.0)
    assert x.shape == (2, channels(6), 8) == (2, 28, 8)
    # node 0 of the kite: 4 occupied slots, then 2 empty; offsets shortest first: (1,0,0), (0,2,0), (-3,0,0), (0,0,4)
    assert x[0, 4:10, 0].tolist() == [1, 1, 1, 1, -1, -1]
    off = x[0, 10:, 0].reshape(6, 3)
    assert off[:4].tolist() == [[1, 0, 0], [0, 2, 0], [-3, 0, 0], [0, 0, 4]] and off[4:].abs().sum() == 0
    assert x[0, 0].tolist() == [1] * 5 + [-1] * 3  # presence
    assert offset_scale(rows) > 0


@pytest.mark.parametrize("match", [True, False])
def test_offset_state_decodes_exactly(match):
    graphs = _graphs()
    x = layout_to_offset_state(graphs_to_layout(graphs, max_length=8), 2.0, 1.5)
    for (pos, claims), g in zip(offset_state_to_raw(x, 2.0, 1.5, match=match), graphs, strict=True):
        d = decode_graph(pos, claims)
        assert d.raw_valid and np.array_equal(d.graph.edges, g.edges) and np.allclose(d.graph.pos, g.pos, atol=1e-6)


def test_matching_keeps_degrees_under_offset_noise():
    g = _graphs()[0]
    x = layout_to_offset_state(graphs_to_layout([g], max_length=8), 1.0, 1.0)
    x[0, 10:] += 0.3 * torch.randn(18, 8, generator=torch.Generator().manual_seed(0)) * (x[0, 10:] != 0)
    (pos, claims), = offset_state_to_raw(x, 1.0, 1.0, match=True)
    d = decode_graph(pos, claims)
    assert d.graph.n_edges == g.n_edges and np.array_equal(d.graph.degrees(), g.degrees())
    # an offset pointing nowhere near a node is dropped under a tolerance instead of becoming an edge
    x[0, 10:13, 1] = torch.tensor([40.0, 40.0, 40.0])
    (pos, claims), = offset_state_to_raw(x, 1.0, 1.0, match=False, tolerance=0.5)
    assert sum(a == 1 for a, _ in claims) == 1  # node 1 keeps only its other slot's claim
    (pos, claims), = offset_state_to_raw(x, 1.0, 1.0, match=False)
    assert sum(a == 1 for a, _ in claims) == 2


def test_per_sample_unit_and_reconciled_coordinates():
    graphs = _graphs()
    rows = graphs_to_layout(graphs, max_length=8)
    unit = torch.tensor([2.0, 0.5])
    x = layout_to_offset_state(rows, 1.0, 1.0, unit=unit)
    assert torch.allclose(x[0, 10:13, 0], torch.tensor([0.5, 0.0, 0.0]))  # (1,0,0) in units of 2
    # coordinates off by noise, offsets exact: re-solving the coordinates restores every edge length
    noisy = x.clone()
    noisy[:, 1:4] += 0.2 * torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(1)) * (x[:, :1] > 0)
    for rec, close in ((0.0, False), (0.01, True)):
        for (pos, claims), g in zip(offset_state_to_raw(noisy, 1.0, 1.0, unit=unit, reconcile=rec), graphs,
                                    strict=True):
            d = decode_graph(pos, claims)
            assert np.array_equal(d.graph.edges, g.edges)
            assert np.allclose(d.graph.lengths(), g.lengths(), rtol=0.05) == close


def test_dense_state_roundtrip_and_masks():
    graphs = _graphs()
    x, mask = rows_to_dense(graphs_to_layout(graphs, max_length=8), scale=2.0)
    assert x["x"].shape == (2, 8, 3) and x["adj"].shape == (2, 8, 8)
    assert torch.equal(x["adj"], x["adj"].transpose(1, 2)) and x["adj"].diagonal(dim1=1, dim2=2).abs().sum() == 0
    assert mask.sum(1).tolist() == [5, 3]
    assert torch.equal(mask_for(torch.tensor([5.0, 3.2, 1.0, 99.0]), 8).sum(1), torch.tensor([5.0, 3, 2, 8]))
    for (pos, claims), g in zip(dense_to_raw(x, mask, 2.0), graphs, strict=True):
        d = decode_graph(pos, claims)
        assert d.raw_valid and np.array_equal(d.graph.edges, g.edges) and np.allclose(d.graph.pos, g.pos)


def test_graph_network_is_permutation_equivariant_masked_and_guidable():
    torch.manual_seed(0)
    net = GraphDenoiserNet(7, hidden=8, depth_x=2, layers_a=2, attn_dim=8, heads=2, emb_dim=16)
    b, n = 2, 6
    adj = (torch.rand(b, n, n) > 0.5).float()
    adj = torch.triu(adj, 1) + torch.triu(adj, 1).transpose(1, 2)
    mask = torch.ones(b, n)
    mask[1, 4:] = 0
    state = {"x": torch.randn(b, n, 3) * mask[..., None], "adj": adj * mask[:, None] * mask[:, :, None]}
    cond = {"vector": torch.randn(b, 7), "mask": mask}
    out = net(state, torch.full((b,), 0.5), cond)
    assert out["x"].shape == (b, n, 3) and torch.allclose(out["adj"], out["adj"].transpose(1, 2))
    assert out["x"][1, 4:].abs().sum() == 0 and out["adj"][1, 4:].abs().sum() == 0
    perm = torch.tensor([2, 0, 1, 3, 5, 4])
    p_state = {"x": state["x"][:1, perm], "adj": state["adj"][:1][:, perm][:, :, perm]}
    p_out = net(p_state, torch.full((1,), 0.5), {"vector": cond["vector"][:1], "mask": mask[:1]})
    assert torch.allclose(p_out["x"], out["x"][:1, perm], atol=1e-5)
    assert torch.allclose(p_out["adj"], out["adj"][:1][:, perm][:, :, perm], atol=1e-5)
    # the design vector changes the output; drop=True gives the unconditional (null-vector) output
    other = net(state, torch.full((b,), 0.5), {**cond, "vector": cond["vector"] + 1})
    assert not torch.allclose(other["x"], out["x"])
    drop = torch.ones(b, dtype=torch.bool)
    u1 = net(state, torch.full((b,), 0.5), {**cond, "drop": drop})
    u2 = net(state, torch.full((b,), 0.5), {**cond, "vector": cond["vector"] + 1, "drop": drop})
    assert torch.allclose(u1["adj"], u2["adj"])
    wrapped = CondDropout(net, 1.0).train()
    assert torch.allclose(wrapped(state, torch.full((b,), 0.5), cond)["x"], u1["x"])


def test_node_transformer_shapes_and_zero_init():
    net = NodeTransformer(28, 8, 7, dim=16, depth=1, heads=2, emb_dim=16)
    x = torch.randn(3, 28, 8)
    out = net(x, torch.full((3,), 0.3), {"vector": torch.randn(3, 7)})
    assert out.shape == x.shape and out.abs().max() == 0  # zero-initialised head: a neutral start
    with pytest.raises(ValueError, match=r"\[B, 28, 8\]"):
        net(torch.randn(3, 10, 8), torch.full((3,), 0.3))
