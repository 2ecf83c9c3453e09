"""Node orbit counts of graphlets with up to 4 nodes (the 15 orbits ORCA reports, numbered as ORCA).

For every connected induced subgraph on 2, 3 or 4 nodes, each node's orbit follows from the
subgraph's edge count and the node's degree inside it (for ≤ 4 nodes these determine the graphlet):

====  ================================  ==========================================
size  graphlet (edges; degree sequence)  orbits (by in-subgraph degree)
====  ================================  ==========================================
2     edge                              0
3     path (2; 1,1,2)                   1 = end, 2 = middle
3     triangle (3)                      3
4     path (3; 1,1,2,2)                 4 = end, 5 = inner
4     star (3; 1,1,1,3)                 6 = leaf, 7 = centre
4     cycle (4; 2,2,2,2)                8
4     paw (4; 1,2,2,3)                  9 = tail, 10 = degree-2, 11 = degree-3
4     diamond (5)                       12 = degree-2, 13 = degree-3
4     clique (6)                        14
====  ================================  ==========================================

Counting enumerates node subsets as tensors (vectorised over all subsets of a size, in chunks);
the tests check it against a brute-force enumeration with networkx isomorphism on small graphs.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

N_ORBITS = 15
# (size, n_edges, degree) -> orbit; -1 marks a disconnected pattern
_ORBIT = {(2, 1, 1): 0, (3, 2, 1): 1, (3, 2, 2): 2, (3, 3, 2): 3}
_FOUR = {(3, 1, False): 4, (3, 2, False): 5, (3, 1, True): 6, (3, 3, True): 7, (4, 2, False): 8,
         (4, 1, True): 9, (4, 2, True): 10, (4, 3, True): 11, (5, 2, False): 12, (5, 3, False): 13,
         (6, 3, False): 14}


def _subsets(n: int, k: int, chunk: int) -> list[Tensor]:
    combos = itertools.combinations(range(n), k)
    out = []
    while True:
        block = list(itertools.islice(combos, chunk))
        if not block:
            return out
        out.append(torch.tensor(block, dtype=torch.long))


def _four_orbits(sub: Tensor) -> Tensor:
    """Orbit index ``[M,4]`` (-1 where the subset is disconnected) of 4-node induced subgraphs."""
    deg = sub.sum(-1)
    edges = deg.sum(-1) // 2
    # a degree-3 node tells a star from a path (3 edges) and a paw from a 4-cycle (4 edges)
    special = (deg.max(-1).values == 3) & ((edges == 3) | (edges == 4))
    out = torch.full_like(deg, -1)
    for (e, d, s), orbit in _FOUR.items():
        hit = (edges == e)[:, None] & (deg == d) & (special == s)[:, None]
        out[hit] = orbit
    return torch.where(_connected4(sub)[:, None], out, torch.full_like(out, -1))


def _connected4(sub: Tensor) -> Tensor:
    """Connectivity of 4-node graphs: ``(I + A)^3`` has no zero entry."""
    reach = torch.eye(4, dtype=sub.dtype) + sub
    r = reach @ reach @ reach
    return (r > 0).all(-1).all(-1)


def orbit_counts(adj: Tensor, chunk: int = 20000) -> Tensor:
    """``[n, 15]`` orbit counts of every node of one graph (``adj``: ``[n, n]`` 0/1, symmetric)."""
    a = (adj > 0.5).long()
    a.fill_diagonal_(0)
    n = a.shape[0]
    counts = torch.zeros(n, N_ORBITS, dtype=torch.long)
    counts[:, 0] = a.sum(1)
    for k in (3, 4):
        for idx in _subsets(n, k, chunk):
            sub = a[idx[:, :, None], idx[:, None, :]]
            if k == 3:
                deg, edges = sub.sum(-1), sub.sum((-1, -2))[:, None] // 2
                orbit = torch.full_like(deg, -1)
                for (_, e, d), o in ((key, v) for key, v in _ORBIT.items() if key[0] == 3):
                    orbit[(edges == e) & (deg == d)] = o
            else:
                orbit = _four_orbits(sub)
            ok = orbit >= 0
            counts.index_put_((idx[ok], orbit[ok]), torch.ones(int(ok.sum()), dtype=torch.long), accumulate=True)
    return counts
