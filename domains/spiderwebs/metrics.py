"""Pure metric functions: conditioning accuracy, validity, degree / edge-length distribution MMD."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from domains.spiderwebs.graph import WebGraph
from domains.spiderwebs.properties import PROPERTY_NAMES

#: quantities that can be ~0 (signed means): their relative error uses the trained range instead of |requested|
SIGNED = {"mean_dx", "mean_dy", "mean_dz"}


def r2_score(requested: np.ndarray, achieved: np.ndarray) -> float:
    """Coefficient of determination of ``achieved`` as a prediction of ``requested`` (1 - SSE/SST)."""
    r, a = np.asarray(requested, float), np.asarray(achieved, float)
    sst = float(((r - r.mean()) ** 2).sum())
    if sst == 0:
        return float("nan")
    return 1.0 - float(((a - r) ** 2).sum()) / sst


def conditioning_accuracy(requested: np.ndarray, achieved: np.ndarray, y_min: np.ndarray,
                          y_max: np.ndarray) -> dict[str, dict[str, float]]:
    """Per quantity: R² and mean relative error (|a−r|/|r|; signed means: |a−r|/trained range)."""
    out = {}
    for k, name in enumerate(PROPERTY_NAMES):
        r, a = requested[:, k], achieved[:, k]
        denom = np.full_like(r, max(float(y_max[k] - y_min[k]), 1e-12)) if name in SIGNED else np.maximum(
            np.abs(r), 1e-12)
        out[name] = {"r2": r2_score(r, a), "mre": float(np.mean(np.abs(a - r) / denom))}
    return out


def degree_histogram(g: WebGraph, max_degree: int = 6) -> np.ndarray:
    h = np.bincount(np.minimum(g.degrees(), max_degree), minlength=max_degree + 1).astype(float)
    return h / max(h.sum(), 1.0)


def length_histogram(g: WebGraph, edges: np.ndarray) -> np.ndarray:
    h, _ = np.histogram(np.clip(g.lengths(), edges[0], edges[-1]), bins=edges)
    return h / max(h.sum(), 1.0)


def histogram_mmd(a: Sequence[np.ndarray], b: Sequence[np.ndarray], sigma: float = 0.5) -> float:
    """Biased ``MMD²`` between two sets of histograms with a Gaussian kernel on their L2 distance."""
    x, y = np.stack(a), np.stack(b)

    def k(p: np.ndarray, q: np.ndarray) -> float:
        d2 = ((p[:, None] - q[None]) ** 2).sum(-1)
        return float(np.exp(-d2 / (2 * sigma**2)).mean())

    return max(k(x, x) + k(y, y) - 2 * k(x, y), 0.0)


def distribution_mmd(gen: Sequence[WebGraph], ref: Sequence[WebGraph], max_degree: int = 6,
                     n_bins: int = 20) -> dict[str, float]:
    """Degree and edge-length histogram MMD (length bins span the reference lengths)."""
    top = max(float(np.quantile(np.concatenate([g.lengths() for g in ref]), 0.99)), 1e-9)
    edges = np.linspace(0, top, n_bins + 1)
    return {"mmd_degree": histogram_mmd([degree_histogram(g, max_degree) for g in gen],
                                        [degree_histogram(g, max_degree) for g in ref]),
            "mmd_edge_length": histogram_mmd([length_histogram(g, edges) for g in gen],
                                             [length_histogram(g, edges) for g in ref])}


def nearest_design_baseline(requested: torch.Tensor, train_y: torch.Tensor, lo: torch.Tensor,
                            hi: torch.Tensor) -> torch.Tensor:
    """Retrieval baseline: the training design closest (in normalised units) to each request."""
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    d = torch.cdist(((requested - lo) / span).double(), ((train_y - lo) / span).double())
    return train_y[d.argmin(1)]


#: the design quantities a best-of-k draw is selected on (the issue's targets)
SELECT = ("avg_edge_length", "n_nodes", "n_edges", "avg_degree")


def closest_candidate(requested: np.ndarray, achieved: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Index ``[n]`` of the draw (``achieved [k, n, 7]``) whose design vector is closest to ``requested
    [n, 7]`` over :data:`SELECT`, each difference in units of ``scale [7]`` (the training std, so every
    quantity counts as it does in R²); ties go to the earliest draw."""
    idx = [PROPERTY_NAMES.index(q) for q in SELECT]
    s = np.where(np.asarray(scale)[idx] > 0, np.asarray(scale)[idx], 1.0)
    d = (((np.asarray(achieved)[..., idx] - np.asarray(requested)[None][..., idx]) / s) ** 2).sum(-1)
    return d.argmin(0)
