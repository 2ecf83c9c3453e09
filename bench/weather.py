"""Benchmark: radar nowcasting scores by lead time — the diffusion ensemble (CogDPM precision guidance
and its plain-conditioning ablation) beside persistence, pysteps LK extrapolation and STEPS.

Runs the ``weather`` pipeline and writes ``bench/results/weather.json`` and ``bench/results/weather.md``:
every metric by lead time for every method, and the issue's targets (model CRPS below STEPS and
persistence at every lead time; spread/skill within 0.8-1.2). The default invocation is a CPU-reduced
run (smoke preset, longer training, every test window); ``--preset default`` is the <= 30 min CPU
setting and ``--preset full`` the GPU one.

    OMP_NUM_THREADS=1 .venv/bin/python bench/weather.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CPU_REDUCED = ["train.steps=600", "train.checkpoint_every=600", "data.test_stride=1", "validate.ablation=true"]


def run(preset: str, extra: list[str], seed: int, runs_root: str) -> dict[str, Any]:
    from domains.pipeline import run_pipeline

    t0 = time.perf_counter()
    out = run_pipeline("weather", preset, extra, seed=seed, runs_root=runs_root, force=True)
    wall = time.perf_counter() - t0
    rd = Path(out["run_dir"])
    import shutil

    RESULTS.mkdir(exist_ok=True)
    for name, dst in (("panels.png", "weather.panels.png"), ("scores_vs_lead.png", "weather.scores.png")):
        if (rd / "plots" / name).exists():
            shutil.copyfile(rd / "plots" / name, RESULTS / dst)
    env = json.loads((rd / "env.json").read_text())
    record = json.loads((rd / "record.json").read_text())
    return {"wall_s": round(wall, 1), "stage_seconds": {k: v.get("seconds") for k, v in record["stages"].items()},
            "device": env.get("cuda_device") or "cpu", "metrics": json.loads((rd / "metrics.json").read_text()),
            "verification": json.loads((rd / "verification.json").read_text())}


def targets(table: dict[str, Any]) -> dict[str, Any]:
    model = [r["crps"] for r in table["model"]["by_lead"]]
    out: dict[str, Any] = {}
    for base in ("steps", "persistence"):
        if base in table:
            ref = [r["crps"] for r in table[base]["by_lead"]]
            out[f"crps_below_{base}_every_lead"] = all(m < b for m, b in zip(model, ref, strict=True))
    ss = [r["spread_skill"] for r in table["model"]["by_lead"]]
    out["spread_skill_in_0.8_1.2_every_lead"] = all(s is not None and 0.8 <= s <= 1.2 for s in ss)
    return out


def markdown(res: dict[str, Any], preset: str, extra: list[str]) -> str:
    from domains.weather.evaluate import markdown as table_md

    table = res["verification"]["table"]
    keys = list(table["model"]["by_lead"][0])
    m = res["metrics"]
    lines = [f"# Weather: FMI radar nowcasting (preset `{preset}`, overrides `{' '.join(extra)}`)", "",
             f"{m['n_cases']} test cases x {m['members']} members, NFE {m['nfe']} (x2 batch for guidance), "
             f"device {res['device']}, wall {res['wall_s']} s (stages: {res['stage_seconds']}).", "",
             "CRPS is the fair ensemble CRPS (mm/h); RMSE of the ensemble mean; CSI/FSS member-pooled; "
             "`model` = CogDPM precision guidance, `model_plain` = plain conditioning (ablation).", "",
             table_md(table, keys), "", "Targets: " + ", ".join(f"{k}: {v}" for k, v in targets(table).items()), "",
             f"Rank histogram (model): {m.get('rank_hist_model')}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="extra", action="append", default=None, metavar="KEY=VALUE")
    a = p.parse_args()
    extra = a.extra if a.extra is not None else (CPU_REDUCED if a.preset == "smoke" else [])
    with tempfile.TemporaryDirectory(prefix="bench-weather-") as root:
        res = run(a.preset, extra, a.seed, root)
    RESULTS.mkdir(exist_ok=True)
    note = "CPU-reduced run (smoke-size model and crops, 2 shared CPU cores)" if a.preset == "smoke" else ""
    doc = {"preset": a.preset, "overrides": extra, "seed": a.seed, "note": note,
           "targets": targets(res["verification"]["table"]), **res}
    tmp = RESULTS / ".weather.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(RESULTS / "weather.json")
    md = markdown(res, a.preset, extra) + (f"\n{note}: not the budget of the paper; targets are benchmarks.\n"
                                           if note else "")
    tmp = RESULTS / ".weather.md.tmp"
    tmp.write_text(md)
    tmp.replace(RESULTS / "weather.md")
    print(md)


if __name__ == "__main__":
    main()
