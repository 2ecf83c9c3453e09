"""Segmentation metrics: MONAI Dice and HD95 (mm), HECKTOR's aggregated Dice, uncertainty vs error.

Pure functions of bool masks ``[R, *vol]`` (one channel per region); HD95 uses the voxel spacing in mm.
"""

from __future__ import annotations

import math

from torch import Tensor


def dice(pred: Tensor, gt: Tensor) -> list[float]:
    """Per-region Dice (MONAI); two empty masks score 1."""
    from monai.metrics import compute_dice

    d = compute_dice(pred[None].float(), gt[None].float(), include_background=True, ignore_empty=False)
    return [float(v) for v in d[0]]


def hd95(pred: Tensor, gt: Tensor, spacing: Tensor | list[float]) -> list[float | None]:
    """Per-region 95th-percentile symmetric Hausdorff distance in mm (MONAI); ``None`` if either is empty."""
    from monai.metrics import compute_hausdorff_distance

    sp = [float(s) for s in (spacing.tolist() if isinstance(spacing, Tensor) else spacing)]
    out: list[float | None] = []
    for r in range(pred.shape[0]):
        if not pred[r].any() or not gt[r].any():
            out.append(None)
            continue
        h = compute_hausdorff_distance(pred[None, r:r + 1].float(), gt[None, r:r + 1].float(),
                                       include_background=True, percentile=95, spacing=sp)
        v = float(h.reshape(-1)[0])
        out.append(v if math.isfinite(v) else None)
    return out


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
