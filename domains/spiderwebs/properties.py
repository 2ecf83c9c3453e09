"""The 7 design quantities of the paper (``get_properties`` in lamm-mit/GraphGeneration) and their
normalisation.

Order and definitions (``PROPERTY_NAMES``):

1. ``avg_edge_length``  mean Euclidean length over undirected edges
2. ``mean_dx``          Σ_edges (x_i − x_j) / n_edges
3. ``mean_dy``          Σ_edges (y_i − y_j) / n_edges
4. ``mean_dz``          Σ_edges (z_i − z_j) / n_edges
5. ``n_nodes``          number of nodes
6. ``n_edges``          number of undirected edges
7. ``avg_degree``       n_edges / n_nodes (the paper's definition: half the graph-theoretic mean degree)

Edge orientation convention for 2–4: every undirected edge is counted once and oriented from its lower
to its higher node number (``i < j``), as the edge list of a PyG graph built from the dataset's
neighbour lists lists it first. Normalisation is the paper's column-wise min-max map to [-1, 1]; the
min/max are stored with the dataset (``y_min``/``y_max`` in the processed tensors).
"""

from __future__ import annotations

import numpy as np
import torch

from domains.spiderwebs.graph import WebGraph

PROPERTY_NAMES: tuple[str, ...] = ("avg_edge_length", "mean_dx", "mean_dy", "mean_dz", "n_nodes", "n_edges",
                                   "avg_degree")


def design_vector(g: WebGraph) -> np.ndarray:
    """The 7 quantities of one graph (float64 [7]); an edgeless graph has zeros in 1–4 and 7 = 0."""
    n, m = g.n_nodes, g.n_edges
    if m == 0:
        return np.array([0.0, 0.0, 0.0, 0.0, float(n), 0.0, 0.0])
    d = g.pos[g.edges[:, 0]] - g.pos[g.edges[:, 1]]
    return np.array([float(np.linalg.norm(d, axis=1).mean()), *(d.sum(0) / m).tolist(), float(n), float(m),
                     m / max(n, 1)])


class Normaliser:
    """Column-wise min-max map to [-1, 1] (constant columns map to 0)."""

    def __init__(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.lo, self.hi = lo.double(), hi.double()
        self.span = torch.where(self.hi > self.lo, self.hi - self.lo, torch.ones_like(self.hi))

    @classmethod
    def fit(cls, y: torch.Tensor) -> Normaliser:
        if y.ndim != 2 or y.shape[0] < 1:
            raise ValueError(f"design vectors must be [N, 7] with N >= 1, got {tuple(y.shape)}")
        return cls(y.min(0).values, y.max(0).values)

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        return (2 * (y.double() - self.lo) / self.span - 1).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z.double() + 1) / 2 * self.span + self.lo

    def outside(self, y: torch.Tensor, tol: float = 1e-9) -> torch.Tensor:
        """Bool [N, 7]: entries outside the trained range."""
        y = y.double()
        return (y < self.lo - tol * self.span) | (y > self.hi + tol * self.span)


def range_warning(norm: Normaliser, y: torch.Tensor) -> str | None:
    """A message naming the quantities (and the trained range) a requested design falls outside of."""
    out = norm.outside(y)
    if not bool(out.any()):
        return None
    parts = []
    for k in torch.nonzero(out.any(0)).flatten().tolist():
        parts.append(f"{PROPERTY_NAMES[k]} (requested {float(y[:, k].min()):.4g}..{float(y[:, k].max()):.4g}, "
                     f"trained range {float(norm.lo[k]):.4g}..{float(norm.hi[k]):.4g})")
    return (f"{int(out.any(1).sum())} requested design vector(s) lie outside the trained range: "
            + "; ".join(parts) + ". The model extrapolates there; expect larger errors.")
