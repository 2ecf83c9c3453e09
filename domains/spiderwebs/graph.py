"""The web graph record shared by the generator, decoding, metrics, mechanics and export.

A web is ``pos [n, 3]`` (float64, millimetres) and ``edges [m, 2]`` (int64, each undirected edge once,
``i < j``, no duplicates, no self-loops). Functions here never mutate their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WebGraph:
    pos: np.ndarray
    edges: np.ndarray

    @property
    def n_nodes(self) -> int:
        return int(self.pos.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edges.shape[0])

    def degrees(self) -> np.ndarray:
        return np.bincount(self.edges.reshape(-1), minlength=self.n_nodes) if self.n_edges else np.zeros(
            self.n_nodes, dtype=np.int64)

    def lengths(self) -> np.ndarray:
        if not self.n_edges:
            return np.zeros(0)
        return np.linalg.norm(self.pos[self.edges[:, 0]] - self.pos[self.edges[:, 1]], axis=1)

    def neighbours(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n_nodes)]
        for i, j in self.edges.tolist():
            out[i].append(j)
            out[j].append(i)
        return out

    def components(self) -> np.ndarray:
        """Component label per node (labels 0..k-1, largest component not necessarily 0)."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n_nodes
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        adj = coo_matrix((np.ones(self.n_edges), (self.edges[:, 0], self.edges[:, 1])), shape=(n, n))
        return connected_components(adj, directed=False)[1]

    def is_connected(self) -> bool:
        return self.n_nodes > 0 and int(self.components().max()) == 0

    def subgraph(self, nodes: np.ndarray) -> WebGraph:
        """Induced subgraph on ``nodes`` (renumbered in the given order)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        remap = np.full(self.n_nodes, -1, dtype=np.int64)
        remap[nodes] = np.arange(len(nodes))
        e = remap[self.edges] if self.n_edges else np.zeros((0, 2), dtype=np.int64)
        e = e[(e >= 0).all(axis=1)]
        return make_graph(self.pos[nodes], e)

    def largest_component(self) -> WebGraph:
        if self.n_nodes == 0:
            return self
        lab = self.components()
        keep = np.flatnonzero(lab == np.bincount(lab).argmax())
        return self.subgraph(keep)


def make_graph(pos: np.ndarray, edges: np.ndarray | list) -> WebGraph:
    """Canonical graph: edges sorted ``i < j``, unique, self-loops removed."""
    pos = np.asarray(pos, dtype=np.float64).reshape(-1, 3)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    e = np.unique(e, axis=0) if len(e) else np.zeros((0, 2), dtype=np.int64)
    return WebGraph(pos, e)


class EdgeBuilder:
    """Collects undirected edges while enforcing a degree cap (the generators' helper)."""

    def __init__(self, n: int, max_degree: int) -> None:
        self.deg = np.zeros(n, dtype=np.int64)
        self.edges: set[tuple[int, int]] = set()
        self.max_degree = max_degree

    def grow(self, n: int) -> None:
        self.deg = np.concatenate([self.deg, np.zeros(n - len(self.deg), dtype=np.int64)])

    def add(self, i: int, j: int, force: bool = False) -> bool:
        a, b = (i, j) if i < j else (j, i)
        if a == b or (a, b) in self.edges:
            return False
        if not force and (self.deg[a] >= self.max_degree or self.deg[b] >= self.max_degree):
            return False
        self.edges.add((a, b))
        self.deg[a] += 1
        self.deg[b] += 1
        return True

    def array(self) -> np.ndarray:
        return np.array(sorted(self.edges), dtype=np.int64).reshape(-1, 2)
