"""Inductive representation sampling: connected local patches (≤ ``max_nodes``) cut from large webs.

A patch grows from a random seed junction by repeatedly adding the frontier junction closest (in
space) to the seed — a geodesically connected, spatially compact neighbourhood, as a scan cut by a
sphere around a point would give, but always connected. Nodes are numbered in the order they were
added (breadth-like), so neighbour ids stay local, which the sparse representation relies on.
"""

from __future__ import annotations

import heapq

import numpy as np

from domains.spiderwebs.graph import WebGraph


def grow_patch(g: WebGraph, seed_node: int, size: int) -> WebGraph:
    """The connected patch of ``size`` nodes grown from ``seed_node`` (fewer if its component is smaller)."""
    if not 0 <= seed_node < g.n_nodes:
        raise ValueError(f"seed node {seed_node} is out of range for a web of {g.n_nodes} nodes")
    nbrs = g.neighbours()
    centre = g.pos[seed_node]
    order, seen = [], {seed_node}
    heap = [(0.0, seed_node)]
    while heap and len(order) < size:
        _, v = heapq.heappop(heap)
        order.append(v)
        for u in nbrs[v]:
            if u not in seen:
                seen.add(u)
                heapq.heappush(heap, (float(np.linalg.norm(g.pos[u] - centre)), u))
    return g.subgraph(np.asarray(order))


def sample_patches(g: WebGraph, n: int, rng: np.random.Generator, min_nodes: int, max_nodes: int) -> list[WebGraph]:
    """``n`` patches with sizes uniform in ``[min_nodes, max_nodes]``, centred on their centroid."""
    if not 2 <= min_nodes <= max_nodes:
        raise ValueError(f"need 2 <= min_nodes <= max_nodes, got {min_nodes}, {max_nodes}")
    out = []
    for _ in range(n):
        p = grow_patch(g, int(rng.integers(g.n_nodes)), int(rng.integers(min_nodes, max_nodes + 1)))
        out.append(WebGraph(p.pos - p.pos.mean(0), p.edges))
    return out
