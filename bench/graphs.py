"""Benchmark: GDSS generic-graph MMDs (degree / clustering / orbit) beside the published GDSS numbers.

Runs the ``graphs`` pipeline on community-small and ego-small for several seeds and writes
``bench/results/graphs.json`` and ``bench/results/graphs.md`` (mean ± std over seeds, NFE, wall time,
device). The default invocation is a CPU-reduced run (the smoke preset); ``--preset default`` is the
≤ 30 min CPU setting per run and ``--preset full`` the GPU one.

    OMP_NUM_THREADS=1 .venv/bin/python bench/graphs.py --preset smoke --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

#: GDSS (Jo et al. 2022, Table 1): degree / clustering / orbit MMD
PUBLISHED = {"community_small": {"degree_mmd": 0.045, "cluster_mmd": 0.086, "orbit_mmd": 0.007},
             "ego_small": {"degree_mmd": 0.021, "cluster_mmd": 0.024, "orbit_mmd": 0.007}}
#: dataset-specific settings (padding size, degree one-hot size as GDSS: max_feat_num)
DATASET_OVERRIDES = {"community_small": ["data.max_nodes=20", "data.max_feat=10"],
                     "ego_small": ["data.max_nodes=18", "data.max_feat=17"]}
METRICS = ("degree_mmd", "cluster_mmd", "orbit_mmd")
RESULTS = Path(__file__).parent / "results"


def run_one(dataset: str, seed: int, preset: str, extra: list[str], runs_root: str) -> dict[str, Any]:
    from domains.pipeline import run_pipeline

    t0 = time.perf_counter()
    out = run_pipeline("graphs", preset, [f"dataset={dataset}", *DATASET_OVERRIDES[dataset], *extra],
                       seed=seed, runs_root=runs_root, force=True)
    wall = time.perf_counter() - t0
    metrics = json.loads((Path(out["run_dir"]) / "metrics.json").read_text())
    env = json.loads((Path(out["run_dir"]) / "env.json").read_text())
    device = env.get("cuda_device") or f"cpu ({env.get('cpu_affinity')} cores)"
    return {"dataset": dataset, "seed": seed, "wall_s": round(wall, 1), "device": device, **metrics}


def _mean_std(vals: list[float]) -> str:
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"


def markdown(rows: list[dict[str, Any]], preset: str) -> str:
    lines = [f"# GDSS generic graphs (preset `{preset}`)", "",
             "MMD² against the test split (first 20%), GDSS kernels; lower is better. "
             "`train` = the training graphs themselves, `ER` = Erdős–Rényi of matching size/density.", "",
             "| dataset | model | degree | clustering | orbit | NFE | wall s/run | device |",
             "|---|---|---|---|---|---|---|---|"]
    for ds in PUBLISHED:
        rs = [r for r in rows if r["dataset"] == ds]
        if not rs:
            continue
        pub = PUBLISHED[ds]
        lines.append(f"| {ds} | GDSS (published, 1000 steps + corrector, GPU) | "
                     + " | ".join(f"{pub[m]:.3f}" for m in METRICS) + " | 2000 | – | GPU |")
        for label, prefix in (("ours", ""), ("train graphs", "train_"), ("ER baseline", "er_")):
            cells = [_mean_std([r[prefix + m] for r in rs]) for m in METRICS]
            nfe = rs[0]["nfe"] if not prefix else "–"
            wall = f"{statistics.mean(r['wall_s'] for r in rs):.0f}" if not prefix else "–"
            lines.append(f"| {ds} | {label} ({len(rs)} seeds) | " + " | ".join(cells)
                         + f" | {nfe} | {wall} | {rs[0]['device']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--datasets", nargs="+", default=list(PUBLISHED), choices=list(PUBLISHED))
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-graphs-") as root:
        for ds in a.datasets:
            for seed in a.seeds:
                rows.append(run_one(ds, seed, a.preset, a.extra, root))
                print(json.dumps({k: rows[-1][k] for k in ("dataset", "seed", "wall_s", *METRICS)}))
    RESULTS.mkdir(exist_ok=True)
    doc = {"preset": a.preset, "overrides": a.extra, "published": PUBLISHED, "runs": rows,
           "note": "CPU-reduced run" if a.preset == "smoke" else ""}
    tmp = RESULTS / ".graphs.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(RESULTS / "graphs.json")
    (RESULTS / "graphs.md").write_text(markdown(rows, a.preset) + (
        "\nCPU-reduced run: smoke-size training (minutes on 2 shared CPU cores), not the GDSS budget.\n"
        if a.preset == "smoke" else ""))


if __name__ == "__main__":
    main()
