"""Generic graph benchmarks (GDSS JSON edge lists) → dense padded tensors with node masks.

Rules (documented, never silent):

* split: the first ``int(0.2 * N)`` graphs are the test set, the rest train (GDSS ``test_split=0.2``);
* self-loops are dropped and *counted* (``n_self_loops`` in the processed record);
* disconnected graphs are kept as they are (ENZYMES has some);
* a graph with more nodes than ``max_nodes``, or an edge naming a node outside ``0..n-1``, is an
  error naming the graph's row.

Node features are GDSS's ``deg`` initialisation: a one-hot of the node degree, clipped to
``max_feat - 1``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.catalog import CatalogEntry, data_root

Graph = tuple[int, list[tuple[int, int]]]  # (number of nodes, undirected edge list)


class GraphDataError(ValueError):
    """A graph file or a graph in it that cannot be used as it is."""


def entry_file(entry: CatalogEntry) -> Path:
    if not entry.path:
        raise GraphDataError(f"catalog entry {entry.name!r} has no path; add 'path' to catalogs/graphs.yaml")
    return data_root() / entry.path


def parse_graphs(doc: dict[str, Any], source: str = "<json>") -> tuple[list[Graph], int]:
    """``(graphs, n_self_loops)`` from a GDSS JSON document (see the catalog schema)."""
    if "graphs" not in doc:
        raise GraphDataError(f"{source}: no 'graphs' key; expected the GDSS JSON layout of catalogs/graphs.yaml")
    graphs, loops = [], 0
    for row, g in enumerate(doc["graphs"]):
        n = int(g["num_nodes"])
        edges = []
        for i, j in g["edges"]:
            if not (0 <= i < n and 0 <= j < n):
                raise GraphDataError(f"{source}: graph row {row} has edge ({i}, {j}) outside its {n} nodes")
            if i == j:
                loops += 1
                continue
            edges.append((min(i, j), max(i, j)))
        graphs.append((n, sorted(set(edges))))
    return graphs, loops


@lru_cache(maxsize=8)
def _load_cached(path: str) -> tuple[tuple[Graph, ...], int]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"graph file {p} is missing; set DIFFUSCI_DATA to the shared data folder "
                                "(see data/graphs/PROVENANCE.md)")
    graphs, loops = parse_graphs(json.loads(p.read_text()), str(p))
    return tuple(graphs), loops


def load_graphs(entry: CatalogEntry) -> tuple[list[Graph], int]:
    graphs, loops = _load_cached(str(entry_file(entry)))
    return list(graphs), loops


def gdss_split(graphs: list[Graph], test_fraction: float = 0.2) -> tuple[list[Graph], list[Graph]]:
    """``(train, test)``: the first ``int(test_fraction * N)`` graphs are the test set."""
    k = int(test_fraction * len(graphs))
    return graphs[k:], graphs[:k]


def to_dense(graphs: list[Graph], max_nodes: int, max_feat: int) -> dict[str, Tensor]:
    """``{"adj": [G,N,N], "x": [G,N,F], "mask": [G,N]}`` via torch-geometric's dense utilities."""
    from torch_geometric.utils import to_dense_adj, to_dense_batch, to_undirected

    for row, (n, _) in enumerate(graphs):
        if n > max_nodes:
            raise GraphDataError(f"graph row {row} has {n} nodes > data.max_nodes={max_nodes}; raise data.max_nodes")
    sizes = torch.tensor([n for n, _ in graphs])
    offsets = torch.cumsum(sizes, 0) - sizes
    ei = [torch.tensor(e, dtype=torch.long).reshape(-1, 2).T + o for (_, e), o in zip(graphs, offsets.tolist(), strict=True)]
    edge_index = to_undirected(torch.cat(ei, 1), num_nodes=int(sizes.sum()))
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    adj = to_dense_adj(edge_index, batch, max_num_nodes=max_nodes, batch_size=len(graphs)).clamp(max=1.0)
    deg = torch.zeros(int(sizes.sum()), dtype=torch.long).scatter_add_(
        0, edge_index[0], torch.ones(edge_index.shape[1], dtype=torch.long))
    feat = torch.nn.functional.one_hot(deg.clamp(max=max_feat - 1), max_feat).float()
    x, mask = to_dense_batch(feat, batch, max_num_nodes=max_nodes, batch_size=len(graphs))
    return {"adj": adj, "x": x, "mask": mask.float()}


def prepare_graphs(entry: CatalogEntry, max_nodes: int, max_feat: int) -> dict[str, Tensor]:
    """Processed tensors of both splits, with the record of how they were made."""
    graphs, loops = load_graphs(entry)
    train, test = gdss_split(graphs)
    out = {f"train_{k}": v for k, v in to_dense(train, max_nodes, max_feat).items()}
    out.update({f"test_{k}": v for k, v in to_dense(test, max_nodes, max_feat).items()})
    out["n_self_loops"] = torch.tensor(loops)
    return out


def train_node_counts(entry: CatalogEntry) -> Tensor:
    """Node counts of the training graphs (the distribution sampled sizes are drawn from)."""
    train, _ = gdss_split(load_graphs(entry)[0])
    return torch.tensor([n for n, _ in train])


def dense_to_graphs(adj: Tensor, mask: Tensor) -> list[Graph]:
    """Quantised dense adjacency back to edge lists (nodes outside the mask dropped)."""
    out = []
    for a, m in zip(adj, mask, strict=True):
        n = int(m.sum())
        a = a[:n, :n]
        i, j = torch.triu_indices(n, n, 1)
        keep = a[i, j] > 0.5
        out.append((n, list(zip(i[keep].tolist(), j[keep].tolist(), strict=True))))
    return out


def to_networkx(graphs: list[Graph], drop_isolates: bool = False) -> list[Any]:
    """networkx graphs; ``drop_isolates`` removes isolated nodes (GDSS's rule for generated graphs)."""
    import networkx as nx

    res = []
    for n, edges in graphs:
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(edges)
        if drop_isolates:
            g.remove_nodes_from(list(nx.isolates(g)))
        res.append(g)
    return res


def quantize_adj(adj: Tensor, threshold: float = 0.5) -> Tensor:
    """GDSS quantisation of a generic-graph adjacency: ``1`` where ``a > threshold``, else ``0``."""
    return (adj > threshold).to(adj.dtype)
