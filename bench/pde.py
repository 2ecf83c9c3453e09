"""Benchmark of the pde domain: WDNO vs FNO vs physical-space diffusion, simulation MSE at 1x/2x/4x.

Runs the whole pipeline (``domains.pipeline.run_pipeline``) on a preset plus overrides, then writes
``bench/results/pde.json`` and ``bench/results/pde.md``: per method and test grid the MSE and nMSE of
``u`` over ``t > 0`` against the solver, the NFE, and training / inference seconds, with the stage
timings and the machine. All methods get the same training budget (steps x batch size).

    python -m bench.pde                          # CPU-reduced run (default preset, <= 25 min on 2 cores)
    python -m bench.pde --preset smoke           # a few minutes (smoke preset + control)
    python -m bench.pde --preset full            # the GPU run at the paper's sizes
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
REFERENCE = "solver_1x_interp"  # the discretisation-floor rows of the comparison (not a method)
CPU_OVERRIDES = ["train.steps=400", "data.n_test=32", "sample.n=32",
                 "validate.control_n=4", "validate.control_optimizer_steps=5"]


def run(preset: str, overrides: list[str], runs_root: str | None) -> dict[str, Any]:
    import torch

    from core.provenance import portable_run_path
    from domains.pde.evaluate import comparison_markdown
    from domains.pipeline import run_pipeline

    t0 = time.perf_counter()
    root = runs_root or tempfile.mkdtemp(prefix="diffusci-bench-pde-")
    out = run_pipeline("pde", preset, overrides, runs_root=root)
    run_dir = Path(out["run_dir"])
    record = json.loads((run_dir / "record.json").read_text())
    rows = json.loads((run_dir / "comparison.json").read_text())
    return {"preset": preset, "overrides": overrides, "run_dir": portable_run_path(run_dir),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "machine": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(), "wall_s": round(time.perf_counter() - t0, 1),
            "stages_s": {k: v.get("seconds") for k, v in record.get("stages", {}).items()},
            "metrics": json.loads((run_dir / "metrics.json").read_text()), "rows": rows,
            "setup": setup(run_dir),
            "table": comparison_markdown(rows)}


def setup(run_dir: Path) -> dict[str, Any]:
    """The settings that decide what "equal budget" means, from the run's resolved config."""
    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    net, val = cfg["network"], cfg["validate"]
    return {"steps": cfg["train"]["steps"], "batch_size": cfg["train"]["batch_size"], "tasks": net["tasks"],
            "baseline_steps": val.get("baseline_steps") or cfg["train"]["steps"],
            "multires_coarse": net.get("multires_coarse", []), "sigma_data": cfg["model"]["sigma_data"],
            "physical_sigma_data": val.get("physical_sigma_data"), "base_channels": net["base_channels"],
            "physical_base_channels": val.get("physical_base_channels") or net["base_channels"],
            "n_train": cfg["data"]["n_train"], "grid": [cfg["data"]["nt"] + 1, cfg["data"]["nx"]],
            "coarse_to_fine": val.get("coarse_to_fine", []), "sr_steps": val.get("sr_steps") or cfg["train"]["steps"],
            "sr_train_levels": val.get("sr_train_levels", [0]),
            "sr_n_train": val.get("sr_n_train") or cfg["data"]["n_train"]}


def setup_markdown(st: dict[str, Any] | None) -> str:
    if not st:
        return ""
    steps = st["steps"] if st.get("baseline_steps", st["steps"]) == st["steps"] else (
        f"{st['steps']} (wdno) / {st['baseline_steps']} (each baseline)")
    return (f"Budget: every method {steps} steps x batch {st['batch_size']} on {st['n_train']} training "
            f"trajectories (1x grid u {st['grid'][0]} x {st['grid'][1]}). " + tasks_markdown(st['tasks']) + f" wdno: sigma_data {st['sigma_data']}, base channels {st['base_channels']}, multi-resolution "
            f"batches from the 1x grid and the 2^k-coarser grids k = {st['multires_coarse']}; physical_diffusion: "
            f"the same U-Net in physical space with base channels {st.get('physical_base_channels', st['base_channels'])}"
            f" (the physical state has 4x the positions of the wavelet state: half the channels is the same "
            f"convolution FLOPs per sample), 1x grid only, sigma_data {st['physical_sigma_data'] or st['sigma_data']} "
            f"(its best value in the README's ablation).\n\n" + c2f_markdown(st))


def tasks_markdown(tasks: list[str]) -> str:
    if tasks == ["simulation"]:
        return ("Every model in the simulation table trains on simulation only (u0 and f known); the control table's "
                "wdno is a separate control model (u0 and u_T known), as in WDNO.")
    return (f"The diffusion models train on the tasks {tasks} (one per sample, so {1 / len(tasks):.0%} of their "
            "training samples are simulation); the FNO on simulation only.")


def c2f_markdown(st: dict[str, Any]) -> str:
    """What the coarse-to-fine rows add to the budget (superres.py)."""
    modes = st.get("coarse_to_fine") or []
    if not modes:
        return ""
    text = ("Coarse-to-fine rows (finer grids only): `*_c2f` = the 1x model on the coarsened problem, then bilinear "
            "octaves (no extra training)")
    if "sr" in modes:
        levels = st.get("sr_train_levels", [0])
        extra = [f"{2 ** k}x ({st.get('sr_n_train')} trajectories of the same problems)" for k in levels if k > 0]
        text += (f"; `wdno_sr` = the same start, then each octave regenerated by the wavelet super-resolution model, "
                 f"trained {st.get('sr_steps')} more steps x the same batch on octave pairs from the 1x training set"
                 + (" and from a training set on the " + ", ".join(extra) + " grid" if extra else "")
                 + " -- its `train s` is both models' and its NFE both stages'")
    return text + ".\n\n"


def markdown(res: dict[str, Any]) -> str:
    reduced = res["device"] == "cpu"
    head = ("# pde benchmark: WDNO vs baselines (simulation at 1x/2x/4x, control)\n\n"
            + ("**CPU-reduced run** (2 shared cores; reduced grid, set sizes and training budget): *not* the "
               "paper-scale comparison (run `python -m bench.pde --preset full` on a GPU for that).\n\n"
               if reduced else "")
            + f"preset `{res['preset']}`, overrides `{' '.join(res['overrides']) or '-'}`, device {res['device']}, "
            f"wall {res['wall_s']} s; stages (s): {res['stages_s']}\n\n"
            "MSE / nMSE of u over t > 0 against the solver (t = 0 is given); all methods trained with the "
            "same steps x batch; `train s` includes nothing but that method's training.\n\n")
    return (head + setup_markdown(res.get("setup")) + res["table"] + target_markdown(res["rows"]) + control_markdown(res["metrics"])
            + external_markdown(res["metrics"]))


def target_markdown(rows: list[dict[str, Any]]) -> str:
    """The issue's targets checked on this run: lower MSE than every baseline, and less degradation on finer grids.

    The wavelet model's column is its best row at each resolution among ``wdno`` and its coarse-to-fine
    variants (``wdno_c2f``, ``wdno_sr``; named in the cell); every other method is a baseline, including
    a baseline's own coarse-to-fine rows.
    """
    mse = {(r["method"], r["resolution"]): r["mse"] for r in rows}
    floor = {r["resolution"]: r["mse"] for r in rows if r["method"] == REFERENCE}
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != REFERENCE]
    res = list(dict.fromkeys(r["resolution"] for r in rows))
    ours = [m for m in methods if m.startswith("wdno")]
    if "wdno" not in methods or len(methods) == len(ours):
        return ""

    def best(pool: list[str], lab: str) -> tuple[float, str]:
        return min((mse[(m, lab)], m) for m in pool if (m, lab) in mse)

    def cell(v: tuple[float, str], ratio: bool = False) -> str:
        num = f"x{v[0]:.2f}" if ratio else f"{v[0]:.4g}"
        return num if v[1] == "wdno" else f"{num} ({v[1]})"

    lines = ["\n## Targets\n\n`solver_1x_interp` rows: the solver's own 1x trajectory linearly interpolated to the finer grid, "
             "against the fine solver trajectory (the same problems: same seeds, u0, forcing, T, nu) -- the floor "
             "set by the 1x discretisation for a model that adds no finer detail"
             + (" (" + ", ".join(f"{k}: {v:.4g}" for k, v in floor.items()) + ")" if floor else "")
             + ". The wdno column is the wavelet model's best row at each resolution (`wdno` or a coarse-to-fine "
               "variant, named).\n\n| check | wdno | best baseline | met |\n|---|---:|---:|---|\n"]
    baselines = [m for m in methods if m not in ours]
    for lab in res:
        w, b = best(ours, lab), best(baselines, lab)
        lines.append(f"| MSE at {lab} | {cell(w)} | {b[0]:.4g} ({b[1]}) | {'yes' if w[0] < b[0] else 'no'} |\n")
    def growth(pool: list[str], lab: str) -> tuple[float, str]:  # each row against its own method's 1x MSE
        root = {m: m.removesuffix("_c2f").removesuffix("_sr") for m in pool}
        return min((mse[(m, lab)] / mse[(root[m], res[0])], m) for m in pool
                   if (m, lab) in mse and (root[m], res[0]) in mse)

    for lab in res[1:]:
        rw, rb = growth(ours, lab), growth(baselines, lab)
        lines.append(f"| MSE growth {res[0]} -> {lab} | {cell(rw, True)} | x{rb[0]:.2f} ({rb[1]}) | "
                     f"{'yes' if rw[0] < rb[0] else 'no'} |\n")
    return "".join(lines)


def external_markdown(m: dict[str, Any]) -> str:
    """The external check on the real periodic, unforced Burgers set (models trained on its train split)."""
    if not m.get("external_n"):
        return ""
    return (f"\n## External check: real periodic Burgers set `{m['external_dataset']}` ({m['external_n']} test "
            f"trajectories, 17 x 16, nu = 0.01, no forcing)\n\nModels with the run's settings trained on its 800 "
            f"train trajectories for {m['external_steps']} steps each; MSE of u over t > 0 (mean u^2 = "
            f"{m['external_mean_u2']:.4g}).\n\n| method | MSE | NFE |\n|---|---:|---:|\n"
            f"| wdno (wavelet diffusion) | {m['external_mse_wdno']:.4g} | {m['external_nfe']} |\n"
            f"| fno | {m['external_mse_fno']:.4g} | 1 |\n"
            f"| persistence u(t) = u0 | {m['external_mse_persistence']:.4g} | 0 |\n")


def control_markdown(m: dict[str, Any]) -> str:
    """Control rows: J by re-simulation with the solver and the control energy, per method."""
    if not m.get("control_n"):
        return ""
    model = ""
    if m.get("control_model") == "separate":
        secs = m.get("control_train_s")
        model = (f"The wdno rows use the control model (u0 and u_T known) trained for {m.get('control_train_steps')} "
                 f"steps x the run's batch in validate" + (f" ({secs:.0f} s)" if secs else "") + ".\n\n")
    elif m.get("control_model") == "run":
        model = "The wdno rows use the run's own model (trained for both tasks).\n\n"
    head = (f"\n## Control ({m['control_n']} test targets; J = mean_x (u_T - target)^2 after re-simulating f "
            "with the solver; E = int int f^2 dt dx)\n\n" + model + "| method | J | energy | NFE (Adam: solver iterations) | seconds |\n|---|---:|---:|---:|---:|\n")
    rows = [("wdno (guided diffusion)", "wdno", m.get("control_nfe"), m.get("control_s_wdno")),
            ("Adam through the solver", "solver_adam", m.get("control_optimizer_steps", "-"), m.get("control_s_solver_adam")),
            ("Adam through the solver, started from the wdno control", "wdno_adam",
             f"{m.get('control_nfe')} + {m.get('control_optimizer_steps', '-')}", m.get("control_s_wdno_adam")),
            ("true forcing (reference)", "true_f", "-", None), ("no forcing (reference)", "zero_f", "-", None)]
    return head + "".join(f"| {label} | {m[f'J_{k}']:.4g} | {m[f'energy_{k}']:.4g} | {nfe} | "
                          f"{'-' if s is None else f'{s:.1f}'} |\n" for label, k, nfe, s in rows if f"J_{k}" in m)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--set", action="append", default=None, help="extra override key=value")
    p.add_argument("--runs-root", default=None)
    p.add_argument("--name", default="pde", help="results file stem: bench/results/<name>.{json,md} (e.g. "
                                                 "pde.sim_only for a variant run)")
    a = p.parse_args(argv)
    overrides = (CPU_OVERRIDES if a.preset == "smoke" else []) + (a.set or [])
    res = run(a.preset, overrides, a.runs_root)
    RESULTS.mkdir(exist_ok=True)
    for suffix, text in ((".json", json.dumps(res, indent=2)), (".md", markdown(res))):
        tmp = RESULTS / f".{a.name}{suffix}.tmp"
        tmp.write_text(text)
        tmp.replace(RESULTS / f"{a.name}{suffix}")
    print(markdown(res))


if __name__ == "__main__":
    main()
