"""Benchmark of the spiderwebs domain: the conditioning-accuracy table of the models side by side
(R² / mean relative error per design quantity on decoded graphs), validity before and after repair,
degree / edge-length MMD against held-out patches, truss stiffness and mass against the held-out
webs, and the retrieval baseline.

    OMP_NUM_THREADS=1 nice -n 5 python bench/spiderwebs.py [--preset default] [--set KEY=VALUE ...]
    OMP_NUM_THREADS=1 python bench/spiderwebs.py --run "model 1=RUN_DIR" --run "model 2=RUN_DIR" ...

The first form runs model 1 (preset ``PRESET``), model 2 (``graph_PRESET``) and model 3 (``ar_PRESET``)
through the pipeline (``--models`` picks some; ``--run NAME=RUN_DIR`` adds finished runs of the
others); the second tabulates finished run directories (their config is recorded with them).
Writes bench/results/spiderwebs.{json,md} and bench/results/spiderwebs.conditioning.png. Targets
(issue 7): R² ≥ 0.9 on n_nodes, n_edges, avg_degree and ≥ 0.8 on avg_edge_length, ≥ 95 % valid graphs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.provenance import atomic_save_figure, atomic_write_json, atomic_write_text  # noqa: E402
from domains.spiderwebs.properties import PROPERTY_NAMES  # noqa: E402

TARGETS = {"n_nodes": 0.9, "n_edges": 0.9, "avg_degree": 0.9, "avg_edge_length": 0.8}
VALID_TARGET = 0.95
#: name -> (preset, extra overrides, description); "model 1, 1 draw" runs only when named (--models)
MODELS = {"model 1": ("{preset}", [], "sparse xyz + neighbour-offset slots, flat MLP"),
          "model 1, 1 draw": ("{preset}", ["network.candidates=1"], "model 1, one draw per request (no best-of-k)"),
          "model 2": ("graph_{preset}", [], "xyz + adjacency as a graph, dense graph network"),
          "model 3": ("ar_{preset}", [], "autoregressive transformer over nodes")}
DEFAULT_MODELS = ("model 1", "model 2", "model 3")


def _fmt(v: float | None, nd: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{nd}f}"


def _met(r2: float | None, tgt: float) -> str:
    return "n/a" if r2 is None or not np.isfinite(r2) else ("yes" if r2 >= tgt else "**no**")


def table(results: dict[str, dict], note: str) -> str:
    lines = [f"# spiderwebs benchmark\n\n{note}\n", "## Conditioning accuracy (achieved values on decoded graphs)\n",
             "| quantity | target R² | " + " | ".join(f"{k} R² | {k} MRE | met" for k in results)
             + " | retrieval R² |", "|---|---:|" + "---:|---:|---|" * len(results) + "---:|"]
    first = next(iter(results.values()))["metrics"]
    for q in PROPERTY_NAMES:
        tgt = TARGETS.get(q)
        cells = []
        for r in results.values():
            m = r["metrics"]
            cells += [_fmt(m.get(f"r2_{q}")), _fmt(m.get(f"mre_{q}")), _met(m.get(f"r2_{q}"), tgt) if tgt else ""]
        lines.append(f"| {q} | {tgt if tgt else ''} | " + " | ".join(cells)
                     + f" | {_fmt(first.get(f'baseline_retrieval_r2_{q}'))} |")
    lines += ["", "## Validity, distributions, mechanics\n",
              "| metric | " + " | ".join(results) + " | reference |", "|---|" + "---:|" * (len(results) + 1)]
    rows = [("valid rate after decoding (target ≥ 0.95)", "valid_rate", None),
            ("avg_degree R² of the generated slots, before matching/repair", "r2_avg_degree_slots", None),
            ("raw valid rate (before repair)", "raw_valid_rate", None),
            ("MMD degree histogram (ref: train vs test)", "mmd_degree", "baseline_train_vs_test_mmd_degree"),
            ("MMD edge-length histogram (ref: train vs test)", "mmd_edge_length",
             "baseline_train_vs_test_mmd_edge_length"),
            ("truss pull-test stiffness, median N/mm (ref: held-out)", "stiffness_median_generated",
             "stiffness_median_test"),
            ("mass, mean g (ref: held-out)", "mass_mean_generated", "mass_mean_test"),
            ("beyond-range requests (one draw each): MRE avg_edge_length", "beyond_mre_avg_edge_length", None),
            ("beyond-range requests: warned", "beyond_range_warned", None),
            ("STL watertight rate", "stl_watertight_rate", None),
            ("helix assembly connected", "assembly_helix_connected", None)]
    for label, key, ref in rows:
        if all(results[k]["metrics"].get(key) is None for k in results):
            continue
        vals = [results[k]["metrics"].get(key) for k in results]
        cells = [str(v) if isinstance(v, bool) else _fmt(v, 4) for v in vals]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {_fmt(first.get(ref), 4) if ref else ''} |")
    spread = _spread(first)
    if spread:
        lines += ["", spread]
    lines += ["", "| model | what | preset / overrides | samples | draws per request | wall s |",
              "|---|---|---|---:|---:|---:|"]
    for k, r in results.items():
        lines.append(f"| {k} | {r['what']} | {r['label']} | {r['metrics'].get('n')} | {_draws(r['run_dir'])} | "
                     f"{_fmt(r.get('wall_s'), 0)} |")
    return "\n".join(lines) + "\n"


def _draws(run_dir: str) -> int:
    """``network.candidates`` of a run (best of that many draws per requested design)."""
    import yaml

    cfg = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
    return int(cfg.get("network", {}).get("candidates", 1))


def _spread(metrics: dict) -> str:
    """The spread of the requested held-out designs (R² is relative to it)."""
    s = metrics.get("requested_spread")
    if not s:
        return ""
    return "Spread of the requested held-out designs (R² = 1 − MSE / variance of these): " + "; ".join(
        f"{q} std {v['std']:.3g}, range {v['min']:.3g}..{v['max']:.3g}" for q, v in s.items()) + "."


def scatter(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(TARGETS)
    fig, axes = plt.subplots(len(results), len(qs), figsize=(3.2 * len(qs), 3.0 * len(results)), squeeze=False)
    for row, (name, r) in enumerate(results.items()):
        c = json.loads((Path(r["run_dir"]) / "conditioning.json").read_text())
        req, ach, beyond = np.array(c["requested"]), np.array(c["achieved"]), np.array(c["beyond"], bool)
        for col, q in enumerate(qs):
            k, ax = PROPERTY_NAMES.index(q), axes[row, col]
            ax.scatter(req[~beyond, k], ach[~beyond, k], s=6, alpha=0.6, label="held-out designs")
            if beyond.any():
                ax.scatter(req[beyond, k], ach[beyond, k], s=6, alpha=0.6, c="tab:red", label="beyond range")
            lo, hi = float(min(req[:, k].min(), ach[:, k].min())), float(max(req[:, k].max(), ach[:, k].max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_title(f"{name}: {q}\nR² {_fmt(r['metrics'].get(f'r2_{q}'))}", fontsize=8)
            ax.set_xlabel("requested", fontsize=7)
            ax.set_ylabel("achieved", fontsize=7)
            ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=80)
    plt.close(fig)


def _stage_seconds(run_dir: Path) -> float | None:
    """Wall seconds of a finished run's four stages (from its record)."""
    try:
        stages = json.loads((run_dir / "record.json").read_text())["stages"]
        return float(sum(s.get("duration_s", 0.0) for s in stages.values()))
    except (OSError, KeyError, ValueError):
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke", help="model 1 preset; model 2 uses graph_PRESET, model 3 ar_PRESET")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for every model run")
    p.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR: tabulate a finished run")
    p.add_argument("--models", default="", help="comma-separated models to run (default: all not given by --run)")
    p.add_argument("--runs-root", default="/tmp/diffusci-bench-runs")
    p.add_argument("--note", default="")
    a = p.parse_args()
    results: dict[str, dict] = {}
    for spec in a.run:
        name, _, run_dir = spec.partition("=")
        inv = json.loads((Path(run_dir) / "invocation.json").read_text())
        label = f"{inv.get('preset', '?')} {' '.join(inv.get('overrides', []))}".strip()
        results[name] = {"run_dir": run_dir, "label": label, "wall_s": _stage_seconds(Path(run_dir)),
                         "what": MODELS.get(name, ("", [], name))[2]}
    todo = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else (
        [] if a.run else list(DEFAULT_MODELS))
    unknown = [m for m in todo if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; valid: {', '.join(MODELS)}")
    if todo:
        from domains.pipeline import run_pipeline

        for name in todo:
            fmt, extra, what = MODELS[name]
            preset, overrides = fmt.format(preset=a.preset), [*extra, *a.overrides]
            t0 = time.perf_counter()
            out = run_pipeline("spiderwebs", preset, overrides, runs_root=a.runs_root, force=True)
            results[name] = {"run_dir": out["run_dir"], "label": f"{preset} {' '.join(overrides)}".strip(),
                             "wall_s": time.perf_counter() - t0, "what": what}
    results = {k: results[k] for k in sorted(results)}
    for r in results.values():
        r["metrics"] = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
    note = (a.note + f" Machine: {platform.machine()} CPU ({platform.node()}), OMP_NUM_THREADS=1.").strip()
    out_dir = ROOT / "bench" / "results"
    atomic_write_json(out_dir / "spiderwebs.json", {"note": note, "targets_r2": TARGETS, "valid_target": VALID_TARGET,
                                                    "models": results})
    md = table(results, note)
    atomic_write_text(out_dir / "spiderwebs.md", md)
    scatter(results, out_dir / "spiderwebs.conditioning.png")
    print(md)


if __name__ == "__main__":
    main()
