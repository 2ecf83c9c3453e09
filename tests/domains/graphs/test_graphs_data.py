"""Graph data: parsing rules, bad input, dense tensors, the GDSS split (real files skip when absent)."""

import pytest
import torch

from core.catalog import data_root, get_entry
from domains.graphs import data as gdata


def _doc(*graphs):
    return {"graphs": [{"num_nodes": n, "edges": e} for n, e in graphs]}


def test_parse_counts_self_loops_and_dedups():
    graphs, loops = gdata.parse_graphs(_doc((3, [[0, 1], [1, 0], [2, 2], [1, 2]])))
    assert loops == 1 and graphs == [(3, [(0, 1), (1, 2)])]


def test_edge_outside_graph_names_the_row():
    with pytest.raises(gdata.GraphDataError, match="graph row 1"):
        gdata.parse_graphs(_doc((2, [[0, 1]]), (2, [[0, 5]])))


def test_missing_graphs_key():
    with pytest.raises(gdata.GraphDataError, match="'graphs'"):
        gdata.parse_graphs({"foo": 1})


def test_too_many_nodes_names_row_and_fix():
    with pytest.raises(gdata.GraphDataError, match="graph row 0 .*max_nodes"):
        gdata.to_dense([(5, [(0, 1)])], max_nodes=4, max_feat=3)


def test_to_dense_hand_case():
    d = gdata.to_dense([(3, [(0, 1), (1, 2)]), (2, [])], max_nodes=4, max_feat=3)
    assert d["adj"].shape == (2, 4, 4) and d["x"].shape == (2, 4, 3)
    assert torch.equal(d["adj"][0, :3, :3], torch.tensor([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    assert torch.equal(d["mask"], torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0]]))
    assert d["x"][0, 1].tolist() == [0, 0, 1] and d["x"][1, 0].tolist() == [1, 0, 0]  # one-hot degree
    assert d["x"][0, 3].sum() == 0
    back = gdata.dense_to_graphs(d["adj"], d["mask"])
    assert back == [(3, [(0, 1), (1, 2)]), (2, [])]


def test_gdss_split_first_20_percent_is_test():
    graphs = [(i + 2, []) for i in range(10)]
    train, test = gdata.gdss_split(graphs)
    assert [n for n, _ in test] == [2, 3] and len(train) == 8


def test_isolates_rule():
    g = gdata.to_networkx([(4, [(0, 1)])], drop_isolates=True)[0]
    assert g.number_of_nodes() == 2


@pytest.mark.skipif(not (data_root() / "graphs" / "community_small.json").exists(), reason="data root absent")
def test_real_community_small():
    entry = get_entry("community_small")
    d = gdata.prepare_graphs(entry, max_nodes=20, max_feat=10)
    assert d["test_adj"].shape[0] == 20 and d["train_adj"].shape[0] == 80
    assert int(d["n_self_loops"]) == 0
    assert torch.equal(d["train_adj"], d["train_adj"].transpose(1, 2))
    counts = gdata.train_node_counts(entry)
    assert counts.min() >= 12 and counts.max() <= 20
