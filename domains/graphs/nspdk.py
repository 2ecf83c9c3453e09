"""NSPDK — the Neighborhood Subgraph Pairwise Distance Kernel (Costa & De Grave 2010) — and its MMD,
as GDSS reports it for molecules (EDeN's ``vectorize(graphs, complexity=4, discrete=True)``, linear
kernel on the normalised feature vectors, ``MMD² = mean K(X,X) + mean K(Y,Y) - 2 mean K(X,Y)``).

Our own implementation of EDeN's discrete vectoriser (the ``eden-kernel`` package on PyPI ships no
wheel). The labelled graph is first expanded: every edge becomes a vertex carrying the edge label,
joined to its two endpoints (distances double). For every atom vertex ``v`` a breadth-first visit
gives the vertices at each expanded distance; level ``k`` is the sorted multiset of (label, degree)
of the vertices at distance ``k``, and the neighbourhood code of radius ``ρ`` is the sequence of
levels ``0..2ρ``. For every pair of atom vertices ``(v, u)`` at expanded distance ``2δ`` (``δ ≤ d``,
both orders, ``u = v`` included) and every radius ``ρ ≤ r`` whose code exists at both ends (the visit
reached distance ``2ρ``), two features of block ``(ρ, δ)`` count +1: the unordered pair of codes
(``{code_v, code_u}``) and the code of ``u`` alone (EDeN's "half" context feature). Each block is
scaled to unit norm, then the whole vector. Features are exact codes here where EDeN hashes them
into 2^16 buckets (rare collisions there are the only difference).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import sparse

#: GDSS: ``complexity=4`` → maximum radius and distance 4
RADIUS, DISTANCE = 4, 4

LabelledGraph = tuple[Sequence[Hashable], Sequence[tuple[int, int, Hashable]]]


def _expanded(labels: Sequence[Hashable], edges: Sequence[tuple[int, int, Hashable]]) -> tuple[list[Any], list[list[int]]]:
    """Vertex labels and adjacency lists of the edge-expanded graph (atoms first, then edge vertices)."""
    n = len(labels)
    vlabels: list[Any] = [("v", lab) for lab in labels]
    adj: list[list[int]] = [[] for _ in range(n)]
    for i, j, lab in edges:
        if i == j:
            continue  # EDeN skips self-loops
        if not (0 <= i < n and 0 <= j < n):
            raise ValueError(f"edge ({i}, {j}) refers to a node outside 0..{n - 1}")
        w = len(vlabels)
        vlabels.append(("e", lab))
        adj.append([i, j])
        adj[i].append(w)
        adj[j].append(w)
    return vlabels, adj


def _levels(root: int, adj: list[list[int]], max_depth: int) -> list[list[int]]:
    """Vertices at each distance ``0..`` (up to ``max_depth``) from ``root``."""
    dist = {root: 0}
    levels: list[list[int]] = [[root]]
    q = deque([root])
    while q:
        u = q.popleft()
        d = dist[u] + 1
        if d > max_depth:
            continue
        for w in adj[u]:
            if w not in dist:
                dist[w] = d
                if d == len(levels):
                    levels.append([])
                levels[d].append(w)
                q.append(w)
    return levels


def graph_features(labels: Sequence[Hashable], edges: Sequence[tuple[int, int, Hashable]], r: int = RADIUS,
                   d: int = DISTANCE) -> dict[Hashable, float]:
    """The normalised NSPDK feature vector of one labelled graph, as ``{feature: value}``."""
    n = len(labels)
    if n == 0:
        raise ValueError("NSPDK is undefined for an empty graph (no nodes); drop it before vectorising")
    vlabels, adj = _expanded(labels, edges)
    depth = 2 * max(r, d)
    deg = [len(a) for a in adj]
    codes: list[list[Hashable]] = []  # codes[v][k]: neighbourhood code of expanded radius k
    dists: list[dict[int, list[int]]] = []
    for v in range(n):
        levels = _levels(v, adj, depth)
        prefix: tuple[Any, ...] = ()
        cv = []
        for lvl in levels:
            prefix = (*prefix, tuple(sorted((vlabels[w], deg[w]) for w in lvl)))
            cv.append(prefix)
        codes.append(cv)
        dists.append({k: [u for u in lvl if u < n] for k, lvl in enumerate(levels) if k % 2 == 0 and k <= 2 * d})
    blocks: dict[tuple[int, int], Counter] = {}
    for v in range(n):
        for k, us in dists[v].items():
            for u in us:
                for rho in range(r + 1):
                    if 2 * rho >= len(codes[v]) or 2 * rho >= len(codes[u]):
                        break
                    hv, hu = codes[v][2 * rho], codes[u][2 * rho]
                    block = blocks.setdefault((rho, k // 2), Counter())
                    block[("pair", frozenset((hv, hu)))] += 1
                    block[("ctx", hu)] += 1
    vec: dict[Hashable, float] = {}
    for key, counts in blocks.items():
        norm = float(np.sqrt(sum(c * c for c in counts.values())))
        vec.update({(key, f): c / norm for f, c in counts.items()})
    total = float(np.sqrt(sum(x * x for x in vec.values())))
    return {f: x / total for f, x in vec.items()}


def feature_matrix(graphs: Sequence[LabelledGraph] | Sequence[dict[Hashable, float]], vocab: dict[Hashable, int],
                   **kw: int) -> sparse.csr_matrix:
    """Rows of normalised NSPDK vectors (of graphs, or of their precomputed :func:`graph_features`);
    ``vocab`` (feature → column) is shared between calls."""
    rows, cols, vals = [], [], []
    for i, g in enumerate(graphs):
        feats = g if isinstance(g, dict) else graph_features(g[0], g[1], **kw)
        for f, x in feats.items():
            rows.append(i)
            cols.append(vocab.setdefault(f, len(vocab)))
            vals.append(x)
    return sparse.csr_matrix((vals, (rows, cols)), shape=(len(graphs), max(len(vocab), 1)))


def nspdk_mmd(ref: Sequence[LabelledGraph] | Sequence[dict[Hashable, float]],
              gen: Sequence[LabelledGraph] | Sequence[dict[Hashable, float]], **kw: int) -> float:
    """``MMD²`` under the NSPDK (linear kernel on normalised vectors); empty graphs must be removed.
    Either side may be given as precomputed :func:`graph_features` (a fixed reference set scored
    against many sample sets is vectorised once)."""
    if not ref or not gen:
        raise ValueError("NSPDK MMD needs at least one reference and one generated graph")
    vocab: dict[Hashable, int] = {}
    x = feature_matrix(ref, vocab, **kw)
    y = feature_matrix(gen, vocab, **kw)
    width = len(vocab)
    x.resize((x.shape[0], width))
    y.resize((y.shape[0], width))
    kxx, kyy, kxy = (x @ x.T).mean(), (y @ y.T).mean(), (x @ y.T).mean()
    return float(kxx + kyy - 2 * kxy)


def mol_graph(mol: Any) -> LabelledGraph:
    """GDSS's molecule graph: atom symbols on nodes, ``int(bond order)`` on edges (aromatic 1.5 → 1)."""
    labels = [a.GetSymbol() for a in mol.GetAtoms()]
    edges = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondTypeAsDouble())) for b in mol.GetBonds()]
    return labels, edges


def smiles_graphs(smiles: Sequence[str]) -> list[LabelledGraph]:
    """Labelled graphs of the parseable, non-empty SMILES (RDKit-sanitised, as GDSS reads them)."""
    from rdkit import Chem

    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        if m is not None and m.GetNumAtoms() > 0:
            out.append(mol_graph(m))
    return out
