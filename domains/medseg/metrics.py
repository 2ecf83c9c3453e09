"""Segmentation metrics: MONAI Dice and HD95 (mm), HECKTOR's aggregated Dice, uncertainty vs error.

Pure functions of bool masks ``[R, *vol]`` (one channel per region); HD95 uses the voxel spacing in mm.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dice(pred: Tensor, gt: Tensor) -> list[float]:
    """Per-region Dice ``2 |P ∩ G| / (|P| + |G|)``; two empty masks score 1 (MONAI's ``compute_dice`` with
    ``ignore_empty=False``, checked against it in the tests; computed here to keep MONAI's metrics
    package, whose import pulls in much of SciPy, out of the validate stage)."""
    p, g = pred.flatten(1).bool(), gt.flatten(1).bool()
    inter = (p & g).sum(1).double()
    total = (p.sum(1) + g.sum(1)).double()
    return [float(2 * i / t) if t > 0 else 1.0 for i, t in zip(inter, total, strict=True)]


def _edges(mask: Tensor) -> Tensor:
    """Voxels of ``mask`` with a background face neighbour (``mask`` minus its erosion), as MONAI's
    ``get_mask_edges`` finds them."""
    from scipy import ndimage

    m = mask.numpy()
    return torch.from_numpy(m ^ ndimage.binary_erosion(m))


def hd95(pred: Tensor, gt: Tensor, spacing: Tensor | list[float]) -> list[float | None]:
    """Per-region 95th-percentile symmetric Hausdorff distance in mm; ``None`` if either mask is empty.

    MONAI's definition (``compute_hausdorff_distance(percentile=95)``: the larger of the two directed
    95th percentiles of edge-to-edge distances; checked against it in the tests), computed with a dense
    Euclidean distance transform in mm on the union's bounding box, which costs the same for any
    prediction (MONAI's CPU KD-tree slows down on the speckled masks of an undertrained model)."""
    from scipy import ndimage

    sp = [float(s) for s in (spacing.tolist() if isinstance(spacing, Tensor) else spacing)]
    out: list[float | None] = []
    for r in range(pred.shape[0]):
        if not pred[r].any() or not gt[r].any():
            out.append(None)
            continue
        p, g = _crop_to_union(pred[r].bool(), gt[r].bool())
        edges_p, edges_g = _edges(p), _edges(g)
        directed = []
        for a, b in ((edges_p, edges_g), (edges_g, edges_p)):
            dist = torch.from_numpy(ndimage.distance_transform_edt(~b.numpy(), sampling=sp))
            directed.append(float(torch.quantile(dist[a].double(), 0.95)) if a.any() else math.inf)
        v = max(directed)
        out.append(v if math.isfinite(v) else None)
    return out


def _crop_to_union(a: Tensor, b: Tensor, margin: int = 2) -> tuple[Tensor, Tensor]:
    """Both masks cut to the bounding box of their union plus a background margin: surface distances
    are unchanged (every surface voxel and its neighbourhood stay inside), and 1 mm volumes get fast."""
    idx = (a | b).nonzero()
    lo = (idx.min(0).values - margin).clamp(min=0).tolist()
    hi = (idx.max(0).values + margin + 1).tolist()
    box = tuple(slice(lo_i, hi_i) for lo_i, hi_i in zip(lo, hi, strict=True))
    pad = [v for d in reversed(range(a.ndim)) for v in (margin, margin)]
    crop = [torch.nn.functional.pad(m[box].float(), pad) > 0.5 for m in (a, b)]
    return crop[0], crop[1]


def aggregated_dice(preds: list[Tensor], gts: list[Tensor]) -> list[float]:
    """HECKTOR's ranking Dice per region: ``2 sum_i |P_i ∩ G_i| / sum_i (|P_i| + |G_i|)`` over cases."""
    inter = sum((p & g).flatten(1).sum(1).double() for p, g in zip(preds, gts, strict=True))
    total = sum((p.flatten(1).sum(1) + g.flatten(1).sum(1)).double() for p, g in zip(preds, gts, strict=True))
    return [float(2 * i / t) if t > 0 else 1.0 for i, t in zip(inter, total, strict=True)]  # type: ignore[union-attr]


def pearson(a: Tensor, b: Tensor) -> float | None:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    den = a.norm() * b.norm()
    return float((a * b).sum() / den) if den > 0 else None


def uncertainty_vs_error(uncertainty: Tensor, pred: Tensor, gt: Tensor) -> dict[str, float | None]:
    """How well the uncertainty map flags errors: Pearson correlation with the error map, and the mean
    uncertainty on wrong vs right voxels."""
    err = pred != gt
    u = uncertainty.float()
    return {"corr": pearson(u, err.float()),
            "mean_on_errors": float(u[err].mean()) if err.any() else None,
            "mean_on_correct": float(u[~err].mean()) if (~err).any() else None}
