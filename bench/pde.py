"""Benchmark of the pde domain: WDNO vs FNO vs physical-space diffusion, simulation MSE at 1x/2x/4x.

Runs the whole pipeline (``domains.pipeline.run_pipeline``) on a preset plus overrides, then writes
``bench/results/pde.json`` and ``bench/results/pde.md``: per method and test grid the MSE and nMSE of
``u`` over ``t > 0`` against the solver, the NFE, and training / inference seconds, with the stage
timings and the machine. All methods get the same training budget (steps x batch size).

    python -m bench.pde                          # CPU-reduced run (smoke preset, a few minutes)
    python -m bench.pde --preset full            # the GPU run the targets refer to
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CPU_OVERRIDES = ["train.steps=400", "data.n_test=32", "sample.n=32", "network.tasks=[simulation,control]",
                 "validate.control_n=4", "validate.control_optimizer_steps=5"]


def run(preset: str, overrides: list[str], runs_root: str | None) -> dict[str, Any]:
    import torch

    from domains.pde.evaluate import comparison_markdown
    from domains.pipeline import run_pipeline

    t0 = time.perf_counter()
    root = runs_root or tempfile.mkdtemp(prefix="diffusci-bench-pde-")
    out = run_pipeline("pde", preset, overrides, runs_root=root)
    run_dir = Path(out["run_dir"])
    record = json.loads((run_dir / "record.json").read_text())
    rows = json.loads((run_dir / "comparison.json").read_text())
    return {"preset": preset, "overrides": overrides, "run_dir": str(run_dir),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "machine": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(), "wall_s": round(time.perf_counter() - t0, 1),
            "stages_s": {k: v.get("seconds") for k, v in record.get("stages", {}).items()},
            "metrics": json.loads((run_dir / "metrics.json").read_text()), "rows": rows,
            "table": comparison_markdown(rows)}


def markdown(res: dict[str, Any]) -> str:
    reduced = res["device"] == "cpu"
    head = ("# pde benchmark: WDNO vs baselines (simulation at 1x/2x/4x, control)\n\n"
            + ("**CPU-reduced run** (2 shared cores, tiny sizes and training budget): the numbers show the "
               "pipeline works end to end; they are *not* the paper-scale comparison the targets refer to "
               "(run `python -m bench.pde --preset full` on a GPU for that).\n\n" if reduced else "")
            + f"preset `{res['preset']}`, overrides `{' '.join(res['overrides']) or '-'}`, device {res['device']}, "
            f"wall {res['wall_s']} s; stages (s): {res['stages_s']}\n\n"
            "MSE / nMSE of u over t > 0 against the solver (t = 0 is given); all methods trained with the "
            "same steps x batch; `train s` includes nothing but that method's training.\n\n")
    return head + res["table"] + control_markdown(res["metrics"])


def control_markdown(m: dict[str, Any]) -> str:
    """Control rows: J by re-simulation with the solver and the control energy, per method."""
    if not m.get("control_n"):
        return ""
    head = (f"\n## Control ({m['control_n']} test targets; J = mean_x (u_T - target)^2 after re-simulating f "
            "with the solver; E = int int f^2 dt dx)\n\n| method | J | energy | NFE (Adam: solver iterations) | seconds |\n|---|---:|---:|---:|---:|\n")
    rows = [("wdno (guided diffusion)", "wdno", m.get("control_nfe"), m.get("control_s_wdno")),
            ("Adam through the solver", "solver_adam", m.get("control_optimizer_steps", "-"), m.get("control_s_solver_adam")),
            ("true forcing (reference)", "true_f", "-", None)]
    return head + "".join(f"| {label} | {m[f'J_{k}']:.4g} | {m[f'energy_{k}']:.4g} | {nfe} | "
                          f"{'-' if s is None else f'{s:.1f}'} |\n" for label, k, nfe, s in rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--set", action="append", default=None, help="extra override key=value")
    p.add_argument("--runs-root", default=None)
    a = p.parse_args(argv)
    overrides = (CPU_OVERRIDES if a.preset == "smoke" else []) + (a.set or [])
    res = run(a.preset, overrides, a.runs_root)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pde.json").write_text(json.dumps(res, indent=2))
    (RESULTS / "pde.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
