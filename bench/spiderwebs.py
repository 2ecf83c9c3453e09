"""Benchmark of the spiderwebs domain: the conditioning-accuracy table (R² / mean relative error per
design quantity), validity and distribution MMD, for model 1 against the retrieval baseline.

    OMP_NUM_THREADS=1 python bench/spiderwebs.py [--preset default] [--set KEY=VALUE ...]

Writes bench/results/spiderwebs.json and bench/results/spiderwebs.md. Targets (issue 7): R² ≥ 0.9 on
n_nodes, n_edges, avg_degree and ≥ 0.8 on avg_edge_length, with ≥ 95 % valid graphs.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.provenance import atomic_write_json, atomic_write_text  # noqa: E402
from domains.pipeline import run_pipeline  # noqa: E402
from domains.spiderwebs.properties import PROPERTY_NAMES  # noqa: E402

TARGETS = {"n_nodes": 0.9, "n_edges": 0.9, "avg_degree": 0.9, "avg_edge_length": 0.8}


def table(m: dict, label: str, note: str) -> str:
    head = ("| model | quantity | R² | MRE | target R² |\n|---|---|---:|---:|---:|\n")
    rows = []
    for prefix, name in (("", "model 1 (sparse xyz + neighbour slots)"), ("baseline_retrieval_", "retrieval baseline")):
        for q in PROPERTY_NAMES:
            r2, mre = m.get(f"{prefix}r2_{q}"), m.get(f"{prefix}mre_{q}")
            tgt = TARGETS.get(q, "")
            rows.append(f"| {name} | {q} | {r2:.3f} | {mre:.3f} | {tgt} |" if r2 is not None else
                        f"| {name} | {q} | n/a | {mre:.3f} | {tgt} |")
    extra = (f"\n\nvalid rate (after decoding) {m['valid_rate']:.3f}; raw valid rate (before repair) "
             f"{m['raw_valid_rate']:.3f}; MMD degree {m['mmd_degree']:.4f} (train-vs-test floor "
             f"{m['baseline_train_vs_test_mmd_degree']:.4f}); MMD edge length {m['mmd_edge_length']:.4f} (floor "
             f"{m['baseline_train_vs_test_mmd_edge_length']:.4f}).\n")
    return f"# spiderwebs benchmark — {label}\n\n{note}\n\n" + head + "\n".join(rows) + extra


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--runs-root", default="/tmp/diffusci-bench-runs")
    p.add_argument("--note", default="")
    a = p.parse_args()
    t0 = time.perf_counter()
    out = run_pipeline("spiderwebs", a.preset, a.overrides, runs_root=a.runs_root, force=True)
    wall = time.perf_counter() - t0
    m = json.loads((Path(out["run_dir"]) / "metrics.json").read_text())
    label = f"preset {a.preset} {' '.join(a.overrides)}".strip()
    note = (a.note or "") + f" Wall time {wall:.0f} s on {platform.machine()} CPU ({platform.node()})."
    res = {"preset": a.preset, "overrides": a.overrides, "wall_s": wall, "note": note.strip(), "metrics": m,
           "targets_r2": TARGETS}
    atomic_write_json(ROOT / "bench" / "results" / "spiderwebs.json", res)
    atomic_write_text(ROOT / "bench" / "results" / "spiderwebs.md", table(m, label, note.strip()))
    print(table(m, label, note.strip()))


if __name__ == "__main__":
    main()
