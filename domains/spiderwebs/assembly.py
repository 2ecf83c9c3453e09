"""Assembly of generated patches along a target curve (a helix or any parametric curve), with stitching.

Patches are placed at arc-length-equidistant points of the curve ``c(s), s ∈ [0, 1]``: each patch is
centred, its longest principal axis aligned with the local tangent, and it is shifted to the curve
point. Stitching: nodes of consecutive patches closer than ``tol`` are merged (the midpoint); if two
consecutive patches share no node within ``tol``, their ``n_links`` closest node pairs are joined by
new struts, so the result is one connected structure. Curve fidelity: the mean and max distance of
the assembled nodes to the curve (densely sampled), relative to the curve length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from domains.spiderwebs.graph import WebGraph, make_graph

Curve = Callable[[np.ndarray], np.ndarray]


def helix(radius: float, pitch: float, turns: float) -> Curve:
    """``s ↦ (R cos 2πTs, R sin 2πTs, pitch T s)``."""
    def c(s: np.ndarray) -> np.ndarray:
        a = 2 * np.pi * turns * s
        return np.stack([radius * np.cos(a), radius * np.sin(a), pitch * turns * s], -1)
    return c


def _arc_points(curve: Curve, n: int, dense: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.linspace(0, 1, dense)
    p = curve(s)
    cum = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    targets = np.linspace(0, cum[-1], n + 2)[1:-1] if n > 1 else np.array([cum[-1] / 2])
    idx = np.searchsorted(cum, targets).clip(1, dense - 1)
    tang = p[idx] - p[idx - 1]
    return p[idx], tang / np.linalg.norm(tang, axis=1, keepdims=True), p


def _align(pos: np.ndarray, tangent: np.ndarray) -> np.ndarray:
    """Rotate centred ``pos`` so that its main principal axis points along ``tangent``."""
    c = pos - pos.mean(0)
    axis = np.linalg.svd(c, full_matrices=False)[2][0] if len(c) > 1 else np.array([1.0, 0, 0])
    v, cth = np.cross(axis, tangent), float(np.dot(axis, tangent))
    if np.linalg.norm(v) < 1e-12:
        return c if cth > 0 else -c
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    rot = np.eye(3) + vx + vx @ vx / (1 + cth)
    return c @ rot.T


def assemble(patches: Sequence[WebGraph], curve: Curve, tol: float, n_links: int = 2) -> tuple[WebGraph, dict]:
    """One connected structure from ``patches`` placed along ``curve``; returns it and its report."""
    if not patches:
        raise ValueError("assembly needs at least one patch")
    points, tangents, dense = _arc_points(curve, len(patches))
    pos, edges, offsets, merged, links = [], [], [], 0, 0
    for k, (p, pt, tg) in enumerate(zip(patches, points, tangents, strict=True)):
        off = sum(len(q) for q in pos)
        placed = _align(p.pos, tg) + pt
        pos.append(placed)
        edges.append(p.edges + off)
        offsets.append(off)
        if k:
            prev = np.arange(offsets[k - 1], off)
            m, new = _stitch(np.concatenate(pos), prev, np.arange(off, off + len(placed)), tol, n_links)
            merged, links = merged + m, links + len(new)
            edges.append(np.array(new, dtype=np.int64).reshape(-1, 2))
    allpos, alledges = np.concatenate(pos), np.concatenate(edges)
    g = _merge_close(allpos, alledges, tol)
    d = np.linalg.norm(g.pos[:, None] - dense[None], axis=-1).min(1)
    length = float(np.linalg.norm(np.diff(dense, axis=0), axis=1).sum())
    report = {"n_patches": len(patches), "n_nodes": g.n_nodes, "n_edges": g.n_edges, "merged_pairs": merged,
              "bridge_links": links, "connected": g.is_connected(), "curve_length": length,
              "mean_distance_to_curve": float(d.mean()), "max_distance_to_curve": float(d.max()),
              "relative_mean_distance": float(d.mean() / max(length, 1e-12))}
    return g, report


def _stitch(pos: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float, n_links: int) -> tuple[int, list]:
    d = np.linalg.norm(pos[a][:, None] - pos[b][None], axis=-1)
    close = int((d < tol).sum())
    if close:
        return close, []
    order = np.argsort(d, axis=None)[:n_links]
    return 0, [(int(a[i]), int(b[j])) for i, j in zip(*np.unravel_index(order, d.shape), strict=True)]


def _merge_close(pos: np.ndarray, edges: np.ndarray, tol: float) -> WebGraph:
    """Merge nodes closer than ``tol`` (union-find; merged position = mean)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    pairs = np.array(sorted(cKDTree(pos).query_pairs(tol)), dtype=np.int64).reshape(-1, 2)
    n = len(pos)
    adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, lab = connected_components(adj, directed=False)
    k = lab.max() + 1
    new_pos = np.zeros((k, 3))
    np.add.at(new_pos, lab, pos)
    new_pos /= np.bincount(lab, minlength=k)[:, None]
    return make_graph(new_pos, lab[edges])
