"""Own 4-node orbit counting against a brute-force enumeration with networkx isomorphism."""

import itertools

import networkx as nx
import pytest
import torch

from domains.graphs.orbits import N_ORBITS, orbit_counts

# graphlet templates with their orbits, node by node (ORCA numbering)
_TEMPLATES = [
    (nx.path_graph(2), [0, 0]),
    (nx.path_graph(3), [1, 2, 1]),
    (nx.complete_graph(3), [3, 3, 3]),
    (nx.path_graph(4), [4, 5, 5, 4]),
    (nx.star_graph(3), [7, 6, 6, 6]),
    (nx.cycle_graph(4), [8, 8, 8, 8]),
    (nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3)]), [10, 10, 11, 9]),
    (nx.Graph([(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]), [13, 12, 13, 12]),
    (nx.complete_graph(4), [14, 14, 14, 14]),
]


def brute_force(g: nx.Graph) -> torch.Tensor:
    counts = torch.zeros(g.number_of_nodes(), N_ORBITS, dtype=torch.long)
    for k in (2, 3, 4):
        for nodes in itertools.combinations(g.nodes(), k):
            sub = g.subgraph(nodes)
            for tmpl, orbits in _TEMPLATES:
                if tmpl.number_of_nodes() != k:
                    continue
                m = nx.isomorphism.GraphMatcher(sub, tmpl)
                if m.is_isomorphic():
                    for u, v in m.mapping.items():
                        counts[u, orbits[v]] += 1
                    break
    return counts


@pytest.mark.parametrize("seed,n,p", [(0, 7, 0.4), (1, 8, 0.6), (2, 9, 0.3), (3, 6, 0.9)])
def test_matches_brute_force(seed, n, p):
    g = nx.gnp_random_graph(n, p, seed=seed)
    adj = torch.as_tensor(nx.to_numpy_array(g))
    assert torch.equal(orbit_counts(adj), brute_force(g))


def test_hand_counts():
    k4 = orbit_counts(torch.ones(4, 4) - torch.eye(4))
    assert k4[:, 14].tolist() == [1, 1, 1, 1] and k4[:, 0].tolist() == [3] * 4 and k4[:, 3].tolist() == [3] * 4
    star = orbit_counts(torch.as_tensor(nx.to_numpy_array(nx.star_graph(3))))
    assert star[0, 7] == 1 and star[1:, 6].tolist() == [1, 1, 1] and star[0, 2] == 3


def test_small_chunks_give_same_counts():
    g = nx.gnp_random_graph(8, 0.5, seed=5)
    adj = torch.as_tensor(nx.to_numpy_array(g))
    assert torch.equal(orbit_counts(adj, chunk=7), orbit_counts(adj))
