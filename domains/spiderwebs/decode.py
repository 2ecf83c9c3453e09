"""Decoding raw model output to valid web graphs: symmetric adjacency, degree cap, no zero-length
edges, one connected component.

Steps (each pure): (1) symmetrise the directed neighbour claims (``union``: an edge if either end
lists the other, the paper's ``A + Aᵀ`` thresholding; ``mutual``: both ends must); (2) drop edges
shorter than ``min_length``; (3) while a node exceeds ``max_degree``, drop its longest edge;
(4) ``connect="bridge"`` joins the other components to the largest one by their shortest
node-to-node link (between nodes with free degree where possible), ``"largest"`` keeps the largest
component only. ``raw_valid`` reports whether the claims were already valid before repair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from domains.spiderwebs.graph import WebGraph, make_graph


@dataclass(frozen=True)
class Decoded:
    graph: WebGraph
    raw_valid: bool  # symmetric, within the cap, connected, no zero-length edge before repair
    n_repairs: int


def symmetrise(claims: Sequence[tuple[int, int]], mode: Literal["union", "mutual"]) -> tuple[np.ndarray, bool]:
    directed = {(int(a), int(b)) for a, b in claims if a != b}
    sym = all((b, a) in directed for a, b in directed)
    keep = [(a, b) for a, b in directed if (b, a) in directed] if mode == "mutual" else list(directed)
    return np.array(keep, dtype=np.int64).reshape(-1, 2), sym


def cap_degree(g: WebGraph, max_degree: int) -> WebGraph:
    """Drop the longest edge of an over-degree node until every degree is ≤ ``max_degree``."""
    edges = [tuple(e) for e in g.edges.tolist()]
    lengths = dict(zip(edges, g.lengths().tolist(), strict=True))
    deg = g.degrees().copy()
    for v in np.argsort(-deg):
        while deg[v] > max_degree:
            inc = [e for e in edges if v in e]
            worst = max(inc, key=lambda e: lengths[e])
            edges.remove(worst)
            deg[worst[0]] -= 1
            deg[worst[1]] -= 1
    return make_graph(g.pos, edges)


def bridge_components(g: WebGraph, max_degree: int) -> WebGraph:
    """Join every component to the growing main one by the shortest link (free-degree nodes first)."""
    lab = g.components()
    if g.n_nodes == 0 or lab.max() == 0:
        return g
    edges = g.edges.tolist()
    deg = g.degrees().copy()
    main = lab == np.bincount(lab).argmax()
    while not main.all():
        a_idx, b_idx = np.flatnonzero(main), np.flatnonzero(~main)
        d = np.linalg.norm(g.pos[a_idx, None] - g.pos[None, b_idx], axis=-1)
        full = (deg[a_idx][:, None] >= max_degree) | (deg[b_idx][None, :] >= max_degree)
        d = np.where(full, d + 1e6, d)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        a, b = int(a_idx[i]), int(b_idx[j])
        edges.append([a, b])
        deg[a] += 1
        deg[b] += 1
        main |= lab == lab[b]
    return make_graph(g.pos, edges)


def decode_graph(pos: np.ndarray, claims: Sequence[tuple[int, int]], *, max_degree: int = 6,
                 min_length: float = 1e-6, symmetry: Literal["union", "mutual"] = "union",
                 connect: Literal["bridge", "largest"] = "bridge") -> Decoded:
    edges, sym = symmetrise(claims, symmetry)
    g0 = make_graph(pos, edges)
    short = g0.lengths() < min_length
    g = WebGraph(g0.pos, g0.edges[~short])
    over = bool((g.degrees() > max_degree).any())
    raw_valid = sym and not short.any() and not over and g.is_connected()
    g = cap_degree(g, max_degree) if over else g
    g = bridge_components(g, max_degree) if connect == "bridge" else g.largest_component()
    # a bridge may still join two nodes at the same point: drop it and keep the largest part
    if g.n_edges and (g.lengths() < min_length).any():
        g = WebGraph(g.pos, g.edges[g.lengths() >= min_length]).largest_component()
    return Decoded(g, bool(raw_valid), int(len(edges) - g.n_edges))


def is_valid(g: WebGraph, max_degree: int = 6, min_length: float = 1e-6) -> bool:
    """Connected, degree ≤ cap, no zero-length edge, at least 2 nodes."""
    return (g.n_nodes >= 2 and g.is_connected() and int(g.degrees().max()) <= max_degree
            and bool((g.lengths() >= min_length).all()))
