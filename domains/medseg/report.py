"""From segmentations to files and numbers: per-case NIfTIs, the metric table, plots.

Sample sets are flat tensor dicts keyed ``<case>/<field>``: ``members`` (foreground probabilities
``[K,R,*vol]``, or 0/1 votes),
``baseline`` (probabilities ``[R,*vol]``, when the baseline ran) and ``affine`` on the processed grid,
``orig_affine`` and ``orig_shape`` of the input image's own grid, and ``id``.

Everything written or scored is on the input's own grid: the ensemble's mean probability and the baseline's
probabilities are resampled there through world coordinates (:func:`domains.medseg.grid.resample_to_grid`,
trilinear) and thresholded at 0.5; the uncertainty is the binary entropy of the resampled mean.
Dice and HD95 use the original voxel spacing in mm.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch

from core.provenance import RunDir, atomic_write_json, atomic_write_text
from domains.medseg import metrics as M
from domains.medseg import outputs
from domains.medseg.config import MedsegConfig
from domains.medseg.data import decode_id, region_masks
from domains.medseg.grid import covered_box, resample_to_grid, shifted_affine, spacing_of
from domains.medseg.inference import binary_entropy, ensemble_summary


def n_cases(x: Any) -> int:
    n = 0
    while f"{n}/members" in x:
        n += 1
    return n


Box = tuple[list[int], list[int]]


def to_original(x: Any, c: int, volume: Any, box: Box | None = None) -> Any:
    """``volume [C, *processed]`` of case ``c`` resampled (trilinear) onto the input image's grid, or onto
    the part ``box`` (``lo``, ``hi`` exclusive) of it."""
    shape = [int(v) for v in x[f"{c}/orig_shape"].tolist()]
    affine = x[f"{c}/orig_affine"]
    if box is not None:
        affine, shape = shifted_affine(affine, box[0]), [h - lo for lo, h in zip(*box, strict=True)]
    return resample_to_grid(volume.float(), x[f"{c}/affine"], affine, shape, "linear")


def scoring_box(x: Any, c: int, gt: Any) -> Box:
    """The original-grid box holding every voxel the processed grid reaches and all of the truth:
    outside it both the prediction and the truth are empty, so scores on it equal full-grid scores."""
    shape = [int(v) for v in x[f"{c}/orig_shape"].tolist()]
    lo, hi = covered_box(x[f"{c}/affine"], tuple(x[f"{c}/members"].shape[2:]), x[f"{c}/orig_affine"],
                         tuple(shape)) or (list(shape), [0, 0, 0])
    if gt.any():
        idx = gt.any(0).nonzero()
        lo = [min(a, int(b)) for a, b in zip(lo, idx.min(0).values, strict=True)]
        hi = [max(a, int(b) + 1) for a, b in zip(hi, idx.max(0).values, strict=True)]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):  # nothing reached and no truth: score it all
        return [0, 0, 0], shape
    return lo, hi


def original_grid(x: Any, c: int, sizes: list[int] = (), box: Box | None = None) -> dict[str, Any]:  # type: ignore[assignment]
    """Case ``c`` on the input's grid (or its part ``box``): ensemble mean probability, fused mask,
    entropy, baseline mask, field of view of the processed box, and the fused mask of the first
    ``k`` members per size (all resampled in one pass)."""
    members = x[f"{c}/members"].float()
    r = members.shape[1]
    parts = [members.mean(0), members.new_ones((1, *members.shape[2:])), *(members[:k].mean(0) for k in sizes)]
    if f"{c}/baseline" in x:
        parts.append(x[f"{c}/baseline"].float())
    moved = to_original(x, c, torch.cat(parts), box)
    mean = moved[:r].clamp(0, 1)
    out = {"mean": mean, "majority": mean > 0.5, "entropy": binary_entropy(mean), "fov": moved[r] > 0.5,
           "by_size": {k: moved[r + 1 + i * r:r + 1 + (i + 1) * r] > 0.5 for i, k in enumerate(sizes)}}
    out["base"] = moved[r + 1 + len(sizes) * r:] > 0.5 if f"{c}/baseline" in x else None
    return out


def write_case_niftis(x: Any, regions: list[str], folder: Path) -> list[Path]:
    """Per case and region, on the input image's grid and affine: diffusion majority mask, ensemble
    uncertainty (bits), baseline mask (NIfTI)."""
    files = []
    for c in range(n_cases(x)):
        cid, affine = decode_id(x[f"{c}/id"]), x[f"{c}/orig_affine"]
        o = original_grid(x, c)
        for r, name in enumerate(regions):
            files.append(outputs.write_nifti(o["majority"][r], affine, folder / f"{cid}_diffusion_{name}.nii.gz"))
            files.append(outputs.write_nifti(o["entropy"][r], affine, folder / f"{cid}_uncertainty_{name}.nii.gz"))
            if o["base"] is not None:
                files.append(outputs.write_nifti(o["base"][r], affine, folder / f"{cid}_baseline_{name}.nii.gz"))
    return files


def _mean(values: list[float | None]) -> float | None:
    v = [a for a in values if a is not None]
    return statistics.fmean(v) if v else None


def case_rows(c: int, case: dict[str, Any], x: Any, regions: dict[str, tuple[int, ...]],
              sizes: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-region rows of one case (scored on the input's own grid), and its masks (for aggregated Dice)."""
    gt = region_masks(case["orig_label"], regions)
    spacing = spacing_of(case["orig_affine"])
    box = scoring_box(x, c, gt)
    gt = gt[(slice(None), *(slice(lo, hi) for lo, hi in zip(*box, strict=True)))]
    o = original_grid(x, c, sizes, box)
    pred, base = o["majority"], o["base"]
    d, h = M.dice(pred, gt), M.hd95(pred, gt, spacing)
    db = M.dice(base, gt) if base is not None else [None] * len(regions)
    hb = M.hd95(base, gt, spacing) if base is not None else [None] * len(regions)
    by_size = {k: M.dice(o["by_size"][k], gt) for k in sizes}
    fov = o["fov"]
    rows = []
    for r, name in enumerate(regions):
        unc = M.uncertainty_vs_error(o["entropy"][r][fov], pred[r][fov], gt[r][fov])
        rows.append({"case": case["id"], "region": name, "dice_diffusion": d[r], "dice_baseline": db[r],
                     "hd95_diffusion": h[r], "hd95_baseline": hb[r], "unc_err_corr": unc["corr"],
                     "unc_on_errors": unc["mean_on_errors"], "unc_on_correct": unc["mean_on_correct"],
                     **{f"dice_ens{k}": by_size[k][r] for k in sizes}})
    return rows, {"gt": gt, "pred": pred, "base": base}


def summarise(rows: list[dict[str, Any]], masks: list[dict[str, Any]], regions: list[str],
              sizes: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r, name in enumerate(regions):
        sel = [row for row in rows if row["region"] == name]
        for method in ("diffusion", "baseline"):
            out[f"dice_{name}_{method}"] = _mean([row[f"dice_{method}"] for row in sel])
            out[f"hd95_{name}_{method}"] = _mean([row[f"hd95_{method}"] for row in sel])
            key = "pred" if method == "diffusion" else "base"
            if all(m[key] is not None for m in masks):
                out[f"agg_dice_{name}_{method}"] = M.aggregated_dice([m[key][r:r + 1] for m in masks],
                                                                     [m["gt"][r:r + 1] for m in masks])[0]
        for k in sizes:
            out[f"dice_{name}_ens{k}"] = _mean([row[f"dice_ens{k}"] for row in sel])
    out["unc_err_corr"] = _mean([row["unc_err_corr"] for row in rows])
    return {k: v for k, v in out.items() if v is not None or not k.startswith("agg")}


def table_markdown(rows: list[dict[str, Any]], summary: dict[str, Any], regions: list[str]) -> str:
    def f(v: Any, nd: int = 3) -> str:
        return "–" if v is None else f"{v:.{nd}f}"

    head = ("| case | region | Dice diffusion | Dice U-Net | HD95 diffusion (mm) | HD95 U-Net (mm) | "
            "unc–err corr |\n|---|---|---:|---:|---:|---:|---:|\n")
    body = "".join(f"| {r['case']} | {r['region']} | {f(r['dice_diffusion'])} | {f(r['dice_baseline'])} | "
                   f"{f(r['hd95_diffusion'], 1)} | {f(r['hd95_baseline'], 1)} | {f(r['unc_err_corr'])} |\n"
                   for r in rows)
    for name in regions:
        body += (f"| **mean** | {name} | {f(summary.get(f'dice_{name}_diffusion'))} | "
                 f"{f(summary.get(f'dice_{name}_baseline'))} | {f(summary.get(f'hd95_{name}_diffusion'), 1)} | "
                 f"{f(summary.get(f'hd95_{name}_baseline'), 1)} | |\n"
                 f"| **aggregated** | {name} | {f(summary.get(f'agg_dice_{name}_diffusion'))} | "
                 f"{f(summary.get(f'agg_dice_{name}_baseline'))} | | | |\n")
    return head + body


def evaluate(cfg: MedsegConfig, x: Any, cases: list[dict[str, Any]], regions: dict[str, tuple[int, ...]],
             run: RunDir, info: dict[str, Any]) -> dict[str, Any]:
    """Metrics of the diffusion ensemble and the baseline on every case; table, JSON and plots in the run."""
    if n_cases(x) != len(cases):
        raise ValueError(f"the sample set has {n_cases(x)} cases but split {cfg.inference.split!r} has "
                         f"{len(cases)}; sample and validate with the same config")
    k_max = int(x["0/members"].shape[0]) if cases else 0
    sizes = [k for k in cfg.validate_.ensemble_sizes if k <= k_max]
    rows, masks = [], []
    for c, case in enumerate(cases):
        r, m = case_rows(c, case, x, regions, sizes)
        rows += r
        masks.append(m)
        if cfg.validate_.overlay_png:  # drawn on the processed grid, where the image channels live
            summ = ensemble_summary(x[f"{c}/members"].float())
            base = x[f"{c}/baseline"][0] > 0.5 if f"{c}/baseline" in x else None
            outputs.overlay_png(case["image"][0], region_masks(case["label"], regions)[0], summ["majority"][0], base,
                                summ["entropy"][0], run.plots / f"overlay_{case['id']}.png", case["id"])
    names = list(regions)
    summary = summarise(rows, masks, names, sizes)
    if sizes:
        outputs.ensemble_curve_png(sizes, {n: [summary[f"dice_{n}_ens{k}"] for k in sizes] for n in names},
                                   {n: summary[f"dice_{n}_baseline"] for n in names
                                    if summary.get(f"dice_{n}_baseline") is not None},
                                   run.plots / "dice_vs_ensemble.png")
    atomic_write_json(run.path / "per_case.json", rows)
    atomic_write_text(run.path / "medseg_table.md", table_markdown(rows, summary, names))
    return {**summary, "nfe": int(info.get("nfe", 0)), "ensemble": k_max, "n_cases": len(cases),
            "ensemble_sizes": sizes, "per_case": rows}
