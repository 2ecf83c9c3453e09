"""Medical segmentation benchmark: the diffusion ensemble against the MONAI U-Net baseline, per method.

Runs the ``medseg`` pipeline (plain Python, no Prefect) on a preset plus overrides, then tabulates on
the held-out BraTS cases: mean and aggregated whole-tumour Dice, HD95 (mm), NFE per sample, the Dice of
each ensemble size (1, 2, 4, 8), the uncertainty-error correlation and the stage timings. The target
(issue 8): the diffusion ensemble's whole-tumour Dice at least the baseline's, with <= 20 NFE.

    python -m bench.medseg                       # CPU-reduced run (smoke preset, longer training)
    python -m bench.medseg --preset full --no-reduce   # the GPU preset as configured
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

from core.provenance import atomic_write_json, atomic_write_text, code_version, package_versions, repo_root

RESULTS = repo_root() / "bench" / "results"
CPU_REDUCED = ["train.steps=600", "train.checkpoint_every=600", "inference.ensemble=8", "sample.steps=8",
               "validate.ensemble_sizes=[1,2,4,8]"]


def _fmt(v: Any, nd: int = 3) -> str:
    return "–" if v is None else f"{v:.{nd}f}"


def rows_from_metrics(m: dict[str, Any], region: str = "wt") -> list[dict[str, Any]]:
    k = m.get("ensemble", 1)
    rows = [{"method": f"diffusion ensemble (K={k}, majority)", "dice": m.get(f"dice_{region}_diffusion"),
             "agg_dice": m.get(f"agg_dice_{region}_diffusion"), "hd95": m.get(f"hd95_{region}_diffusion"),
             "nfe_per_sample": m.get("nfe"), "network_evals_per_window": m.get("nfe", 0) * k}]
    rows.append({"method": "diffusion, single sample (K=1)", "dice": m.get(f"dice_{region}_ens1"), "agg_dice": None,
                 "hd95": None, "nfe_per_sample": m.get("nfe"), "network_evals_per_window": m.get("nfe")})
    rows.append({"method": "MONAI U-Net, Dice+CE (baseline)", "dice": m.get(f"dice_{region}_baseline"),
                 "agg_dice": m.get(f"agg_dice_{region}_baseline"), "hd95": m.get(f"hd95_{region}_baseline"),
                 "nfe_per_sample": 1, "network_evals_per_window": 1})
    return rows


def markdown(result: dict[str, Any]) -> str:
    m, rows = result["metrics"], result["rows"]
    lines = [f"## medseg benchmark ({result['label']})", "",
             f"Preset `{result['preset']}` with overrides `{' '.join(result['overrides']) or 'none'}`; "
             f"{m.get('n_cases')} held-out BraTS 2013 cases, whole tumour; {result['device']}.", "",
             "| method | mean Dice | aggregated Dice | mean HD95 (mm) | NFE per sample | net evals per window |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['method']} | {_fmt(r['dice'])} | {_fmt(r['agg_dice'])} | {_fmt(r['hd95'], 1)} | "
              f"{r['nfe_per_sample']} | {r['network_evals_per_window']} |" for r in rows]
    sizes = m.get("ensemble_sizes", [])
    lines += ["", "Dice vs ensemble size: " + ", ".join(f"K={k}: {_fmt(m.get(f'dice_wt_ens{k}'))}" for k in sizes),
              f"Uncertainty-error correlation (Pearson, voxel-wise): {_fmt(m.get('unc_err_corr'))}",
              "Stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result["stage_seconds"].items()), "",
              f"**Target** (diffusion ensemble Dice >= baseline, <= 20 NFE): "
              f"{'met' if result['target_met'] else 'NOT met'} on this run.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--no-reduce", action="store_true", help="run the preset as configured (no CPU overrides)")
    p.add_argument("--set", action="append", default=[], help="extra overrides key=value")
    p.add_argument("--runs-root", default=None)
    args = p.parse_args(argv)
    import torch

    from domains.pipeline import run_pipeline

    overrides = ([] if args.no_reduce else CPU_REDUCED) + list(args.set)
    t0 = time.perf_counter()
    summary = run_pipeline("medseg", args.preset, overrides, runs_root=args.runs_root, force=True)  # time real training
    run = Path(summary["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    record = json.loads((run / "record.json").read_text())
    m = {k: v for k, v in metrics.items() if k != "per_case"}
    dice_d, dice_b = m.get("dice_wt_diffusion"), m.get("dice_wt_baseline")
    result = {
        "label": "CPU-reduced run" if not torch.cuda.is_available() else "GPU run",
        "preset": args.preset, "overrides": overrides, "run_dir": _relative(run),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({platform.machine()})",
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "stage_seconds": {k: v.get("seconds", 0.0) for k, v in record["stages"].items()},
        "metrics": m, "per_case": metrics.get("per_case", []), "rows": rows_from_metrics(m),
        "target_met": bool(dice_d is not None and dice_b is not None and dice_d >= dice_b and m.get("nfe", 99) <= 20),
        "code_version": code_version(), "packages": package_versions(("torch", "monai", "nibabel")),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "medseg.json", result)
    atomic_write_text(RESULTS / "medseg.md", markdown(result))
    print(markdown(result))
    return result




def _relative(path: Path) -> str:
    """The run folder relative to the repository when it lies inside it (results stay machine-neutral)."""
    from core.provenance import repo_root

    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return path.name


if __name__ == "__main__":
    main()
