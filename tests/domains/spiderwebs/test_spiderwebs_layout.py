import numpy as np
import pytest
import torch

from domains.spiderwebs.decode import decode_graph
from domains.spiderwebs.graph import make_graph
from domains.spiderwebs.layout import (
    MalformedWebError,
    graphs_to_layout,
    layout_to_graphs,
    layout_to_state,
    load_paper_file,
    save_paper_file,
    state_to_raw,
)
from domains.spiderwebs.properties import design_vector


def _graphs():
    sq = make_graph([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1], [1, 2], [2, 3], [3, 0]])
    tri = make_graph([[0, 0, 0], [2, 0, 0], [0, 0, 2]], [[0, 1], [1, 2], [0, 2]])
    return [sq, tri]


def test_layout_rows_follow_the_paper():
    rows = graphs_to_layout(_graphs(), max_length=8)
    assert rows.shape == (2, 8, 16)
    assert rows[0, :, 0].tolist() == [1, 2, 3, 4, 0, 0, 0, 0]
    assert rows[0, 0, 4:6].tolist() == [2, 4] and rows[0, 0, 6] == 0  # 1-based neighbours, 0 = none
    assert rows[1, 0, 10:12].tolist() == pytest.approx([2.0, 2.0])  # distances match neighbour slots


def test_paper_file_roundtrip(tmp_path):
    path = save_paper_file(tmp_path / "dataset_webs_medium.pt", _graphs(), max_length=8)
    obj = torch.load(path, weights_only=True)
    assert len(obj) == 7 and obj[4] == 8 and obj[6] == 6 and obj[2] == [4, 3]
    graphs, y = load_paper_file(path)
    for a, b in zip(graphs, _graphs(), strict=True):
        assert np.allclose(a.pos, b.pos) and np.array_equal(a.edges, b.edges)
    assert np.allclose(y[0].numpy(), design_vector(_graphs()[0]))


@pytest.mark.parametrize("mutate, match", [
    (lambda r: r[1, 2].__setitem__(4, 0.0), r"sample 1, node 1: lists neighbour 3, but node 3 .*asymmetric"),
    (lambda r: r[1, 1].__setitem__(6, 9.0), r"sample 1, node 2: neighbour id\(s\) .*out of range 1..3"),
    (lambda r: r[0, 2].__setitem__(2, float("nan")), r"sample 0, node 3: NaN"),
])
def test_malformed_webs_name_sample_and_node(mutate, match):
    rows = graphs_to_layout(_graphs(), max_length=8)
    mutate(rows)
    with pytest.raises(MalformedWebError, match=match):
        layout_to_graphs(rows)


def test_malformed_file_is_rejected(tmp_path):
    torch.save({"not": "a tuple"}, tmp_path / "bad.pt")
    with pytest.raises(MalformedWebError, match="7-tuple"):
        load_paper_file(tmp_path / "bad.pt")


@pytest.mark.parametrize("window", [0, 2])
def test_state_encoding_decodes_exactly(window):
    graphs = _graphs()
    x = layout_to_state(graphs_to_layout(graphs, max_length=8), scale=2.0)
    assert x.shape == (2, 10, 8) and x.abs().max() <= 1
    for (pos, claims), g in zip(state_to_raw(x, 2.0, window), graphs, strict=True):
        d = decode_graph(pos, claims)
        assert d.raw_valid and np.array_equal(d.graph.edges, g.edges) and np.allclose(d.graph.pos, g.pos)


def test_geometric_decoding_uses_slot_counts_and_nearest_nodes():
    from domains.spiderwebs.layout import state_to_geometric

    graphs = _graphs()
    x = layout_to_state(graphs_to_layout(graphs, max_length=8), scale=2.0)
    assert float(x[0, 4, 0]) == pytest.approx(-0.5 + 1.5 * 1 / 7)  # node 1's first neighbour is node 2
    assert float(x[0, 6, 0]) == -1.0  # empty slot
    for (pos, claims), g in zip(state_to_geometric(x, 2.0), graphs, strict=True):
        d = decode_graph(pos, claims, symmetry="mutual")
        assert np.array_equal(d.graph.edges, g.edges)
