"""Procedural 3D spider webs faithful to the biology (the synthetic stand-in for the scanned web).

Two architectures, both seeded through an explicit ``numpy.random.Generator``; lengths in millimetres.

* **Orb web** (Araneidae): a polygonal *frame* of 4–7 bridge/anchor threads, a *hub* (a small
  irregular ring), 18–36 *radial* threads from hub to frame, and an Archimedean *capture spiral* whose
  crossings with the radials are the junctions. Junction degrees: spiral crossings 4, frame
  junctions 3, hub ring 3–4 — the characteristic orb degree distribution. The plane is vertical and
  slightly tilted/bowed (real orbs sag under gravity and wind).
* **Sheet-and-tangle web** (*Cyrtophora citricola*, the web the paper scanned): a dense, horizontal,
  dome-shaped sheet with a fine near-square mesh (radials + closely spaced concentric threads, no
  sticky spiral), a *barrier tangle* of irregular threads in the volume above it, and *support
  threads* that run from the sheet rim and the tangle up to anchor points, subdivided by junctions.
  Degrees are 2–6 with most junctions at 3–4 (the scan statistics of Su et al. 2018, J. R. Soc.
  Interface 15:20180193, report mean degree ≈ 3 with a long-tailed edge-length distribution:
  short sheet segments and long tangle/support segments — reproduced here).

Every junction has degree ≤ ``max_degree`` (6, the paper's neighbour slots); the result is the largest
connected component.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from domains.spiderwebs.graph import EdgeBuilder, WebGraph, make_graph

WebKind = Literal["orb", "sheet_tangle"]


def _rotation(rng: np.random.Generator, max_tilt: float) -> np.ndarray:
    """A random rotation: a tilt up to ``max_tilt`` radians about a random horizontal axis, then yaw."""
    a, b = rng.uniform(-max_tilt, max_tilt, 2)
    c = rng.uniform(0, 2 * np.pi)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _ray_polygon(angle: float, poly: np.ndarray) -> float:
    """Distance from the origin along ``angle`` to the (star-shaped) polygon ``poly`` [k, 2]."""
    d = np.array([np.cos(angle), np.sin(angle)])
    best = np.inf
    for p, q in zip(poly, np.roll(poly, -1, axis=0), strict=True):
        m = np.array([[d[0], p[0] - q[0]], [d[1], p[1] - q[1]]])
        if abs(np.linalg.det(m)) < 1e-12:
            continue
        r, s = np.linalg.solve(m, p)
        if r > 0 and 0 <= s <= 1:
            best = min(best, r)
    return float(best)


def orb_web(rng: np.random.Generator, radius: float = 120.0, max_degree: int = 6) -> WebGraph:
    """One orb web: frame, hub, radials, capture spiral (see module docstring)."""
    k = int(rng.integers(4, 8))
    fa = np.sort(rng.uniform(0, 2 * np.pi, k) + np.linspace(0, 2 * np.pi, k, endpoint=False)) % (2 * np.pi)
    fa.sort()
    poly = np.stack([np.cos(fa), np.sin(fa)], 1) * radius * rng.uniform(0.8, 1.2, (k, 1))
    n_rad = int(rng.integers(18, 37))
    ang = np.linspace(0, 2 * np.pi, n_rad, endpoint=False) + rng.normal(0, 0.3 / n_rad * 2 * np.pi, n_rad)
    ang = np.sort(ang % (2 * np.pi))
    r_frame = np.array([_ray_polygon(a, poly) for a in ang])
    r_frame = np.where(np.isfinite(r_frame), r_frame, np.linalg.norm(poly, axis=1).max())
    r_hub = radius * rng.uniform(0.05, 0.09)
    spacing = radius * rng.uniform(0.025, 0.045)
    pts: list[np.ndarray] = []
    along: list[list[int]] = [[] for _ in range(n_rad)]  # node ids along each radial, inside out

    def node(p: np.ndarray) -> int:
        pts.append(p)
        return len(pts) - 1

    for i, a in enumerate(ang):
        along[i].append(node(np.array([np.cos(a), np.sin(a)]) * r_hub))
    r0 = r_hub * 1.8
    spiral: list[int] = []
    turn = 0
    while True:  # Archimedean spiral r = r0 + spacing * (turn + a / 2pi), stopped short of the frame
        done = True
        for i, a in enumerate(ang):
            r = r0 + spacing * (turn + a / (2 * np.pi))
            if r < 0.88 * r_frame[i]:
                r *= 1 + rng.normal(0, 0.03)
                v = node(np.array([np.cos(a), np.sin(a)]) * r)
                along[i].append(v)
                spiral.append(v)
                done = False
            else:
                spiral.append(-1)  # spiral interrupted (free zone near the frame)
        turn += 1
        if done or turn > 200:
            break
    frame_nodes = [node(np.array([np.cos(a), np.sin(a)]) * rf) for a, rf in zip(ang, r_frame, strict=True)]
    corner_nodes = [node(p) for p in poly]
    b = EdgeBuilder(len(pts), max_degree)
    for i in range(n_rad):
        chain = along[i] + [frame_nodes[i]]
        for u, v in zip(chain, chain[1:], strict=False):
            b.add(u, v, force=True)
        b.add(along[i][0], along[(i + 1) % n_rad][0])  # hub ring
    for u, v in zip(spiral, spiral[1:], strict=False):
        if u >= 0 and v >= 0:
            b.add(u, v)
    _frame_edges(b, ang, fa, frame_nodes, corner_nodes)
    p2 = np.asarray(pts)
    sag = rng.uniform(0.02, 0.06) * radius * (1 - (np.linalg.norm(p2, axis=1) / radius) ** 2)
    p3 = np.stack([p2[:, 0], sag + rng.normal(0, 0.3, len(p2)), p2[:, 1]], 1)  # vertical plane x-z
    return make_graph(p3 @ _rotation(rng, 0.3).T, b.array()).largest_component()


def _frame_edges(b: EdgeBuilder, ang: np.ndarray, fa: np.ndarray, frame_nodes: list[int],
                 corner_nodes: list[int]) -> None:
    """Frame threads: radial anchors and polygon corners joined in angular order."""
    items = sorted([(a, v) for a, v in zip(ang, frame_nodes, strict=True)]
                   + [(a, v) for a, v in zip(fa, corner_nodes, strict=True)])
    for (_, u), (_, v) in zip(items, items[1:] + items[:1], strict=True):
        b.add(u, v, force=True)


def sheet_tangle_web(rng: np.random.Generator, radius: float = 60.0, max_degree: int = 6) -> WebGraph:
    """One Cyrtophora-like web: dome sheet, barrier tangle above, support threads (module docstring)."""
    pts, b = _sheet(rng, radius, max_degree)
    sheet_n = len(pts)
    height = radius * rng.uniform(0.6, 1.0)
    n_tangle = int(rng.integers(60, 120))
    tangle = np.stack([*(rng.uniform(-0.8, 0.8, (2, n_tangle)) * radius),
                       rng.uniform(0.25, 1.0, n_tangle) * height], 1)
    pts = np.concatenate([pts, tangle])
    b.grow(len(pts))
    t_ids = np.arange(sheet_n, len(pts))
    for i in t_ids:  # each tangle junction ties to 2-3 of its nearest junctions (irregular threads)
        d = np.linalg.norm(pts - pts[i], axis=1)
        d[i] = np.inf
        for j in np.argsort(d)[: int(rng.integers(2, 4))]:
            b.add(int(i), int(j))
    rim = [i for i in range(sheet_n) if np.linalg.norm(pts[i, :2]) > 0.9 * radius]
    anchors = []
    for i in rng.choice(rim, size=min(len(rim), int(rng.integers(6, 12))), replace=False):
        top = pts[i] * np.array([1.3, 1.3, 0]) + np.array([0, 0, height * rng.uniform(1.1, 1.5)])
        anchors.append(_thread(pts, b, int(i), top, int(rng.integers(2, 5)), rng))
        pts = b.pts  # type: ignore[attr-defined]
    for i in rng.choice(t_ids, size=min(len(t_ids), 8), replace=False):
        _thread(pts, b, int(i), pts[rng.choice(anchors)] if anchors else pts[i] + [0, 0, height], 1, rng)
        pts = b.pts  # type: ignore[attr-defined]
    return make_graph(pts, b.array()).largest_component()


def _thread(pts: np.ndarray, b: EdgeBuilder, start: int, end: np.ndarray, n_mid: int,
            rng: np.random.Generator) -> int:
    """A support thread from node ``start`` to point ``end`` with ``n_mid`` junctions; returns its end."""
    s = np.linspace(0, 1, n_mid + 2)[1:]
    new = pts[start] + s[:, None] * (end - pts[start]) + rng.normal(0, 0.5, (len(s), 3))
    first = len(pts)
    b.pts = np.concatenate([pts, new])  # type: ignore[attr-defined]
    b.grow(len(b.pts))  # type: ignore[attr-defined]
    chain = [start, *range(first, first + len(s))]
    for u, v in zip(chain, chain[1:], strict=False):
        b.add(u, v, force=True)
    return chain[-1]


def _sheet(rng: np.random.Generator, radius: float, max_degree: int) -> tuple[np.ndarray, EdgeBuilder]:
    """The horizontal dome sheet: radials crossed by closely spaced concentric threads (fine mesh)."""
    n_rad = int(rng.integers(24, 40))
    n_ring = int(rng.integers(10, 16))
    ang = np.sort(np.linspace(0, 2 * np.pi, n_rad, endpoint=False) + rng.normal(0, 0.04, n_rad))
    rr = np.linspace(0.12, 1.0, n_ring) * radius
    dome = radius * rng.uniform(0.15, 0.3)
    pts, ids = [], -np.ones((n_ring, n_rad), dtype=np.int64)
    for r_i, r in enumerate(rr):
        for a_i, a in enumerate(ang):
            if r_i > 2 and rng.random() < 0.08:
                continue  # holes / irregularities of a real sheet
            rj = r * (1 + rng.normal(0, 0.02))
            ids[r_i, a_i] = len(pts)
            pts.append([rj * np.cos(a), rj * np.sin(a), dome * (1 - (rj / radius) ** 2) + rng.normal(0, 0.3)])
    b = EdgeBuilder(len(pts), max_degree)
    for a_i in range(n_rad):
        col = [v for v in ids[:, a_i] if v >= 0]
        for u, v in zip(col, col[1:], strict=False):
            b.add(int(u), int(v))
    for r_i in range(n_ring):
        for a_i in range(n_rad):
            u, v = ids[r_i, a_i], ids[r_i, (a_i + 1) % n_rad]
            if u >= 0 and v >= 0:
                b.add(int(u), int(v))
    return np.asarray(pts, dtype=np.float64), b


def generate_web(kind: WebKind, rng: np.random.Generator, max_degree: int = 6) -> WebGraph:
    """One web; forced support-thread joins can exceed ``max_degree`` at a junction, where the longest
    threads are then cut (largest component kept), so every degree is ≤ ``max_degree``."""
    if kind == "orb":
        g = orb_web(rng, radius=float(rng.uniform(90, 150)))
    elif kind == "sheet_tangle":
        g = sheet_tangle_web(rng, radius=float(rng.uniform(45, 75)))
    else:
        raise ValueError(f"unknown web kind {kind!r}; valid choices: orb, sheet_tangle")
    if int(g.degrees().max()) > max_degree:
        from domains.spiderwebs.decode import cap_degree

        g = cap_degree(g, max_degree).largest_component()
    return g
