"""Medical segmentation benchmark: the diffusion ensemble against the MONAI U-Net baseline, per method.

Runs the ``medseg`` pipeline (plain Python, no Prefect) on a preset (default: ``default``, the CPU
preset as configured), or tabulates a finished run (``--run-dir``), then writes the per-method table on
the held-out BraTS cases, scored on each input's own 1 mm grid: mean and aggregated Dice and mean HD95
(mm) per region (WT, TC, ET), NFE per sample, Dice against ensemble size (1, 2, 4, 8), the
uncertainty-error correlation, per-case rows, stage timings, and an overlay picture. The target
(issue 8): the diffusion ensemble's whole-tumour Dice at least the baseline's, with <= 20 NFE.

    nice -n 5 python -m bench.medseg                         # run the default preset, then tabulate
    python -m bench.medseg --run-dir runs/medseg/<run-id>    # tabulate a finished run (re-validated
                                                             # runs: pass --wall-seconds of the original)
    python -m bench.medseg --preset full                     # the GPU preset
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

from core.provenance import atomic_write_json, atomic_write_text, code_version, package_versions, repo_root

RESULTS = repo_root() / "bench" / "results"
NAMES = {"wt": "whole tumour", "tc": "tumour core", "et": "enhancing"}


def _fmt(v: Any, nd: int = 3) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def regions_of(m: dict[str, Any]) -> list[str]:
    return [k[len("dice_"):-len("_diffusion")] for k in m if k.startswith("dice_") and k.endswith("_diffusion")]


def rows_from_metrics(m: dict[str, Any]) -> list[dict[str, Any]]:
    k, nfe = m.get("ensemble", 1), m.get("nfe")
    rows = []
    for r in regions_of(m):
        rows += [{"method": f"diffusion ensemble (K={k}, mean probability)", "region": r, "dice": m.get(f"dice_{r}_diffusion"),
                  "agg_dice": m.get(f"agg_dice_{r}_diffusion"), "hd95": m.get(f"hd95_{r}_diffusion"),
                  "nfe_per_sample": nfe, "network_evals_per_window": (nfe or 0) * k},
                 {"method": "diffusion, single sample (K=1)", "region": r, "dice": m.get(f"dice_{r}_ens1"),
                  "agg_dice": None, "hd95": None, "nfe_per_sample": nfe, "network_evals_per_window": nfe},
                 {"method": "MONAI U-Net, Dice+CE (baseline)", "region": r, "dice": m.get(f"dice_{r}_baseline"),
                  "agg_dice": m.get(f"agg_dice_{r}_baseline"), "hd95": m.get(f"hd95_{r}_baseline"),
                  "nfe_per_sample": 1, "network_evals_per_window": 1}]
    return rows


def _setup_lines(d: dict[str, Any]) -> list[str]:
    if not d:
        return []
    proc = d.get("process") or {}
    loss = ", ".join(f"{k} {v:g}" for k, v in (d.get("mask_loss") or {}).items() if isinstance(v, int | float))
    return [f"Diffusion model: process `{proc.get('name', '?')}`, prediction `{d.get('prediction', '?')}`, "
            f"time sampler `{d.get('time_sampler', '?')}`, mask loss weights ({loss or 'core default'}); sampler "
            f"`{d.get('sampler', '?')}`, {d.get('steps', '?')} steps ({d.get('schedule', '?')}); "
            f"training steps x batch: diffusion {d.get('train_steps', '?')} x {d.get('batch_size', '?')}, "
            f"baseline {d.get('baseline_steps', '?')} x {d.get('baseline_batch_size', '?')}.", ""]


def markdown(result: dict[str, Any]) -> str:
    m, rows = result["metrics"], result["rows"]
    sizes = m.get("ensemble_sizes", [])
    lines = [f"## medseg benchmark ({result['label']})", "",
             f"Preset `{result['preset']}` with overrides `{' '.join(result['overrides']) or 'none'}`; "
             f"{m.get('n_cases')} held-out BraTS 2013 cases (never trained on), scored on each input's own "
             f"1 mm grid; {result['device']}; wall {result['wall_seconds'] / 60:.1f} min "
             f"(ingest + train + sample + validate, baseline included).", "",
             *_setup_lines(result.get("diffusion", {})),
             "| method | region | mean Dice | aggregated Dice | mean HD95 (mm) | NFE per sample | net evals per window |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['method']} | {NAMES.get(r['region'], r['region'])} | {_fmt(r['dice'])} | {_fmt(r['agg_dice'])} | "
              f"{_fmt(r['hd95'], 1)} | {r['nfe_per_sample']} | {r['network_evals_per_window']} |" for r in rows]
    lines += ["", "Dice of the diffusion ensemble against ensemble size (mean over cases):", "",
              "| region | " + " | ".join(f"K={k}" for k in sizes) + " | U-Net |",
              "|---|" + "---:|" * (len(sizes) + 1)]
    lines += [f"| {NAMES.get(r, r)} | " + " | ".join(_fmt(m.get(f"dice_{r}_ens{k}")) for k in sizes)
              + f" | {_fmt(m.get(f'dice_{r}_baseline'))} |" for r in regions_of(m)]
    lines += ["", "Per case (Dice diffusion / U-Net, uncertainty-error correlation inside the processed field of view):",
              "", "| case | region | Dice diffusion | Dice U-Net | HD95 diffusion (mm) | HD95 U-Net (mm) | unc-err corr |",
              "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {c['case']} | {c['region']} | {_fmt(c['dice_diffusion'])} | {_fmt(c['dice_baseline'])} | "
              f"{_fmt(c['hd95_diffusion'], 1)} | {_fmt(c['hd95_baseline'], 1)} | {_fmt(c['unc_err_corr'])} |"
              for c in result["per_case"]]
    lines += ["", f"Uncertainty-error correlation (Pearson, voxel-wise, mean over cases and regions): "
              f"{_fmt(m.get('unc_err_corr'))}",
              "Stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result["stage_seconds"].items()), "",
              f"**Target** (diffusion ensemble whole-tumour Dice >= baseline, <= 20 NFE per sample): "
              f"{'met' if result['target_met'] else 'NOT met'} on this run.", ""]
    return "\n".join(lines)


def diffusion_setup(run: Path) -> dict[str, Any]:
    """Process, parameterisation, training loss and sampler of the run's diffusion model (its config.yaml)."""
    import yaml

    path = run / "config.yaml"
    cfg = yaml.safe_load(path.read_text()) if path.is_file() else {}
    keep = {"process": cfg.get("process"), "prediction": (cfg.get("model") or {}).get("prediction"),
            "time_sampler": (cfg.get("loss") or {}).get("time_sampler"), "mask_loss": cfg.get("mask_loss"),
            "sampler": (cfg.get("sample") or {}).get("sampler"), "steps": (cfg.get("sample") or {}).get("steps"),
            "schedule": (cfg.get("sample") or {}).get("schedule"), "train_steps": (cfg.get("train") or {}).get("steps"),
            "batch_size": (cfg.get("train") or {}).get("batch_size")}
    base = cfg.get("baseline") or {}
    keep["baseline_steps"] = base.get("steps") or keep["train_steps"]
    keep["baseline_batch_size"] = base.get("batch_size") or keep["batch_size"]
    return {k: v for k, v in keep.items() if v is not None}


def tabulate(run: Path, preset: str, overrides: list[str], wall: float | None) -> dict[str, Any]:
    import torch

    metrics = json.loads((run / "metrics.json").read_text())
    record = json.loads((run / "record.json").read_text())
    m = {k: v for k, v in metrics.items() if k != "per_case"}
    stages = {k: v.get("seconds", 0.0) for k, v in record["stages"].items()}
    dice_d, dice_b = m.get("dice_wt_diffusion"), m.get("dice_wt_baseline")
    result = {
        "label": "GPU run" if torch.cuda.is_available() else "CPU, 2 shared cores, preset as configured",
        "preset": preset, "overrides": overrides, "run_dir": _relative(run),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})",
        "wall_seconds": round(wall if wall is not None else sum(stages.values()), 1), "stage_seconds": stages,
        "metrics": m, "per_case": metrics.get("per_case", []), "rows": rows_from_metrics(m),
        "diffusion": diffusion_setup(run),
        "target_met": bool(dice_d is not None and dice_b is not None and dice_d >= dice_b and m.get("nfe", 99) <= 20),
        "code_version": code_version(), "packages": package_versions(("torch", "monai", "nibabel")),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "medseg.json", result)
    atomic_write_text(RESULTS / "medseg.md", markdown(result))
    overlays = sorted((run / "plots").glob("overlay_*.png"))
    for src, name in ((overlays[-1] if overlays else None, "medseg.overlay.png"),
                      (run / "plots" / "dice_vs_ensemble.png", "medseg.ensemble.png")):
        if src is not None and src.is_file():
            shutil.copyfile(src, RESULTS / name)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--set", action="append", default=[], help="extra overrides key=value")
    p.add_argument("--runs-root", default=None)
    p.add_argument("--run-dir", type=Path, default=None, help="tabulate this finished run instead of running")
    p.add_argument("--wall-seconds", type=float, default=None,
                   help="with --run-dir: the run's measured wall time (default: the sum of its stage times)")
    args = p.parse_args(argv)
    if args.run_dir is not None:
        inv = json.loads((args.run_dir / "invocation.json").read_text())
        result = tabulate(args.run_dir, inv.get("preset", args.preset), list(inv.get("overrides", [])),
                          args.wall_seconds)
    else:
        from domains.pipeline import run_pipeline

        t0 = time.perf_counter()
        summary = run_pipeline("medseg", args.preset, list(args.set), runs_root=args.runs_root, force=True)
        result = tabulate(Path(summary["run_dir"]), args.preset, list(args.set), time.perf_counter() - t0)
    print(markdown(result))
    return result


def _relative(path: Path) -> str:
    """The run folder relative to the repository when it lies inside it (results stay machine-neutral)."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return path.name


if __name__ == "__main__":
    main()
