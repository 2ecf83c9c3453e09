"""Linear-elastic truss (bar) mechanics of a web with scipy sparse solves.

Every edge is a pin-jointed bar of Young's modulus ``E`` and circular cross-section of radius ``r``:
its stiffness is ``k = E A / L`` along the unit vector ``n``, contributing ``k n nᵀ`` to the 3×3 blocks
of the global matrix. Pull test: the nodes in the lowest ``anchor_fraction`` along ``axis`` are
clamped, those in the highest fraction are displaced by ``u`` along ``axis``; stiffness is the total
reaction force over ``u``. Webs are mechanisms in 3D (free junction rotations), so a weak ground
spring ``eps · mean(k)`` on every free degree of freedom regularises the solve (documented bias,
~eps relative). Mass ``= density · A · Σ L``. Units: mm, MPa (N/mm²), g/mm³ → N/mm and g.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domains.spiderwebs.graph import WebGraph


@dataclass(frozen=True)
class TrussResult:
    stiffness: float  # N/mm
    mass: float  # g
    max_displacement: float  # mm


def stiffness_matrix(g: WebGraph, youngs: float, area: float):
    """The global ``3n × 3n`` sparse truss stiffness matrix (CSR)."""
    from scipy.sparse import coo_matrix

    d = g.pos[g.edges[:, 1]] - g.pos[g.edges[:, 0]]
    length = np.linalg.norm(d, axis=1)
    if (length <= 0).any():
        raise ValueError("truss has a zero-length bar; decode the graph first (decode.decode_graph)")
    n = d / length[:, None]
    k = youngs * area / length
    blk = k[:, None, None] * n[:, :, None] * n[:, None, :]  # [m, 3, 3]
    rows, cols, vals = [], [], []
    for a, b, s in ((0, 0, 1), (1, 1, 1), (0, 1, -1), (1, 0, -1)):
        ia, ib = g.edges[:, a], g.edges[:, b]
        r = (3 * ia[:, None, None] + np.arange(3)[None, :, None]).repeat(3, 2)
        c = (3 * ib[:, None, None] + np.arange(3)[None, None, :]).repeat(3, 1)
        rows.append(r.ravel())
        cols.append(c.ravel())
        vals.append((s * blk).ravel())
    size = 3 * g.n_nodes
    return coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)).tocsr()


def pull_test(g: WebGraph, *, youngs: float = 2000.0, radius: float = 0.5, density: float = 1.2e-3,
              axis: int = 2, anchor_fraction: float = 0.15, u: float = 0.01, eps: float = 1e-6) -> TrussResult:
    """Stiffness (N/mm) under a pull between the two anchor regions, mass (g) and max displacement."""
    from scipy.sparse import diags
    from scipy.sparse.linalg import spsolve

    if g.n_nodes < 2 or g.n_edges == 0:
        raise ValueError("pull test needs a graph with at least two nodes and one edge")
    area = np.pi * radius**2
    kmat = stiffness_matrix(g, youngs, area)
    coord = g.pos[:, axis]
    lo, hi = np.quantile(coord, [anchor_fraction, 1 - anchor_fraction])
    bottom, top = coord <= lo, coord >= hi
    if not bottom.any() or not top.any() or (bottom & top).all():
        raise ValueError("pull test: the anchor regions are empty; the web has no extent along the axis")
    disp = np.zeros(3 * g.n_nodes)
    fixed = np.zeros(3 * g.n_nodes, dtype=bool)
    for v in np.flatnonzero(bottom | top):
        fixed[3 * v:3 * v + 3] = True
    disp[3 * np.flatnonzero(top) + axis] = u
    free = ~fixed
    mean_k = float(np.mean(youngs * area / g.lengths()))
    kff = kmat[free][:, free] + diags(np.full(int(free.sum()), eps * mean_k))
    if free.any():
        disp[free] = spsolve(kff.tocsc(), -kmat[free][:, fixed] @ disp[fixed])
    force = kmat @ disp
    reaction = float(force[3 * np.flatnonzero(top) + axis].sum())
    mass = float(density * area * g.lengths().sum())
    return TrussResult(reaction / u, mass, float(np.abs(disp).max()))
