import numpy as np

from domains.spiderwebs.decode import bridge_components, cap_degree, decode_graph, is_valid, symmetrise
from domains.spiderwebs.graph import make_graph


def test_symmetrise_union_and_mutual():
    e, sym = symmetrise([(0, 1), (1, 2), (2, 1)], "union")
    assert not sym and {tuple(sorted(x)) for x in e.tolist()} == {(0, 1), (1, 2)}
    e, _ = symmetrise([(0, 1), (1, 2), (2, 1)], "mutual")
    assert {tuple(sorted(x)) for x in e.tolist()} == {(1, 2)}


def test_cap_degree_drops_longest_edges():
    # a star: centre 0 with 4 leaves at distances 1..4; cap 2 keeps the two shortest
    pos = [[0, 0, 0], [1, 0, 0], [0, 2, 0], [0, 0, 3], [-4, 0, 0]]
    g = cap_degree(make_graph(pos, [[0, 1], [0, 2], [0, 3], [0, 4]]), 2)
    assert g.edges.tolist() == [[0, 1], [0, 2]]


def test_bridge_joins_components_by_the_shortest_link():
    pos = [[0, 0, 0], [1, 0, 0], [5, 0, 0], [6, 0, 0], [1.5, 0, 0]]
    g = bridge_components(make_graph(pos, [[0, 1], [2, 3]]), 6)
    assert g.is_connected() and [1, 4] in g.edges.tolist() and g.n_edges == 4


def test_decode_repairs_to_a_valid_graph():
    pos = np.array([[0, 0, 0], [0, 0, 0], [1, 0, 0], [9, 9, 9]], dtype=float)  # nodes 0 and 1 coincide
    d = decode_graph(pos, [(0, 1), (1, 2), (2, 1)], max_degree=6)
    assert not d.raw_valid
    assert is_valid(d.graph) and (d.graph.lengths() > 0).all()
    assert not is_valid(make_graph(pos, [(0, 2)]))
