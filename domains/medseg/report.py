"""From segmentations to files and numbers: per-case NIfTIs, the metric table, plots.

Sample sets are flat tensor dicts keyed ``<case>/<field>``: ``members`` (uint8 ``[K,R,*vol]``),
``baseline`` (probabilities ``[R,*vol]``, when the baseline ran), ``affine`` and ``id``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from core.provenance import RunDir, atomic_write_json, atomic_write_text
from domains.medseg import metrics as M
from domains.medseg import outputs
from domains.medseg.config import MedsegConfig
from domains.medseg.data import decode_id, region_masks
from domains.medseg.inference import ensemble_summary


def n_cases(x: Any) -> int:
    n = 0
    while f"{n}/members" in x:
        n += 1
    return n


def write_case_niftis(x: Any, regions: list[str], folder: Path) -> list[Path]:
    """Per case and region: diffusion majority mask, ensemble uncertainty, baseline mask (NIfTI)."""
    files = []
    for c in range(n_cases(x)):
        cid, affine = decode_id(x[f"{c}/id"]), x[f"{c}/affine"]
        summ = ensemble_summary(x[f"{c}/members"].bool())
        for r, name in enumerate(regions):
            files.append(outputs.write_nifti(summ["majority"][r], affine, folder / f"{cid}_diffusion_{name}.nii.gz"))
            files.append(outputs.write_nifti(summ["entropy"][r], affine, folder / f"{cid}_uncertainty_{name}.nii.gz"))
            if f"{c}/baseline" in x:
                files.append(outputs.write_nifti(x[f"{c}/baseline"][r] > 0.5, affine,
                                                 folder / f"{cid}_baseline_{name}.nii.gz"))
    return files


def _mean(values: list[float | None]) -> float | None:
    v = [a for a in values if a is not None]
    return statistics.fmean(v) if v else None


def case_rows(c: int, case: dict[str, Any], x: Any, regions: dict[str, tuple[int, ...]],
              sizes: list[int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-region rows of one case, and its masks (for aggregated Dice and plots)."""
    gt = region_masks(case["label"], regions)
    members = x[f"{c}/members"].bool()
    summ = ensemble_summary(members)
    pred = summ["majority"]
    base = x[f"{c}/baseline"] > 0.5 if f"{c}/baseline" in x else None
    d, h = M.dice(pred, gt), M.hd95(pred, gt, case["spacing"])
    db = M.dice(base, gt) if base is not None else [None] * len(regions)
    hb = M.hd95(base, gt, case["spacing"]) if base is not None else [None] * len(regions)
    by_size = {k: M.dice(ensemble_summary(members, k)["majority"], gt) for k in sizes}
    rows = []
    for r, name in enumerate(regions):
        unc = M.uncertainty_vs_error(summ["entropy"][r], pred[r], gt[r])
        rows.append({"case": case["id"], "region": name, "dice_diffusion": d[r], "dice_baseline": db[r],
                     "hd95_diffusion": h[r], "hd95_baseline": hb[r], "unc_err_corr": unc["corr"],
                     "unc_on_errors": unc["mean_on_errors"], "unc_on_correct": unc["mean_on_correct"],
                     **{f"dice_ens{k}": by_size[k][r] for k in sizes}})
    return rows, {"gt": gt, "pred": pred, "base": base, "entropy": summ["entropy"]}


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
        if cfg.validate_.overlay_png:
            outputs.overlay_png(case["image"][0], m["gt"][0], m["pred"][0], None if m["base"] is None else m["base"][0],
                                m["entropy"][0], run.plots / f"overlay_{case['id']}.png", case["id"])
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
