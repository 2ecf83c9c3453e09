"""Metrics against training time: every kept checkpoint of one run, resampled and scored.

For each checkpoint the run's training kept (``train.keep_last: null`` keeps them all; a resumed run
keeps counting), one ``diffusci sample RUN --checkpoint step_N --validate`` (``domains.pipeline.resample``)
draws a sample set with the run's sampler settings (plus ``--common`` overrides) and scores it exactly as
the run's validate stage does. The x-axis is the checkpoint's ``train_seconds`` (wall time inside training,
summed over resumed fits) and its recorded device, so a curve that spans several sessions on one GPU reads
as metrics against GPU-minutes. Writes ``bench/results/<name>.{json,md,png}``.

    python -m bench.training_curve runs/graphs/<run-id> --name graphs.qm9_curve --n 1000 \\
        --metrics validity_wo_correction fcd nspdk
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

from bench.resample_sweep import _fmt, pick
from core.provenance import atomic_write_json, atomic_write_text, code_version, portable_run_path, repo_root

RESULTS = repo_root() / "bench" / "results"


def curve(run: Path, *, metrics: list[str], n: int | None, common: list[str], every: int = 1) -> dict[str, Any]:
    from core.training.checkpoint import read_meta
    from domains.pipeline import load_run_config, resample, train_checkpoints

    domain, cfg = load_run_config(str(run))
    kept = train_checkpoints(run)
    if not kept:
        raise FileNotFoundError(f"run {run} kept no training checkpoints")
    chosen = kept[::every] if kept[::every][-1] == kept[-1] else [*kept[::every], kept[-1]]
    rows = []
    for path in chosen:
        meta = read_meta(path)
        t0 = time.perf_counter()
        out = resample(str(run), n=n, overrides=common, validate=True, checkpoint=path.name)
        rows.append({"checkpoint": path.name, "step": int(meta["step"]), "train_seconds": meta.get("train_seconds"),
                     "device": meta.get("device"), "loss": meta.get("loss"), "resample": portable_run_path(out["run_dir"], run),
                     "nfe": out.get("nfe"), "seconds": round(time.perf_counter() - t0, 1),
                     **pick(out["metrics"], metrics, domain)})
    return {"run": portable_run_path(run), "domain": domain, "n": n or cfg.sample.n, "common": common, "metrics": metrics,
            "rows": rows, "code_version": code_version(), "processor": platform.processor() or platform.machine()}


def markdown(res: dict[str, Any]) -> str:
    ms = res["metrics"]
    devices = sorted({str(r["device"]) for r in res["rows"]})
    lines = [f"# {res['domain']}: metrics against training time", "",
             f"Run `{res['run']}`, {res['n']} samples per checkpoint, overrides `{' '.join(res['common']) or '-'}`, "
             f"code {res['code_version']}; training device {', '.join(devices)}. `train min` = wall minutes inside "
             "training up to the checkpoint (summed over resumed fits). Same sampler and seeds in every row.", "",
             "| checkpoint | step | train min | loss | " + " | ".join(ms) + " | NFE |", "|---|---:|---:|---:|" + "---:|" * (len(ms) + 1)]
    for r in res["rows"]:
        mins = None if r["train_seconds"] is None else r["train_seconds"] / 60
        lines.append(f"| {r['checkpoint']} | {r['step']} | {_fmt(mins)} | {_fmt(r['loss'])} | "
                     + " | ".join(_fmt(r[k]) for k in ms) + f" | {_fmt(r['nfe'])} |")
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms, rows = res["metrics"], res["rows"]
    timed = all(r["train_seconds"] is not None for r in rows)
    xs = [r["train_seconds"] / 60 if timed else r["step"] for r in rows]
    fig, axes = plt.subplots(1, len(ms), figsize=(3.4 * len(ms), 3.0), squeeze=False)
    for ax, m in zip(axes[0], ms, strict=True):
        ax.plot(xs, [r[m] for r in rows], marker="o")
        ax.set_xlabel("training minutes" if timed else "training step")
        ax.set_title(m, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run directory")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json keys to follow")
    p.add_argument("--n", type=int, default=None, help="samples per checkpoint (default: the run's sample.n)")
    p.add_argument("--common", nargs="*", default=[], help="sample.* / validate.* overrides for every checkpoint")
    p.add_argument("--every", type=int, default=1, help="score every k-th kept checkpoint (the last always)")
    p.add_argument("--name", required=True, help="results file stem: bench/results/<name>.{json,md,png}")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    a = p.parse_args(argv)
    if a.every < 1:
        p.error("--every must be >= 1")
    res = curve(a.run, metrics=a.metrics, n=a.n, common=a.common, every=a.every)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / f"{a.name}.json", res)
    atomic_write_text(a.out / f"{a.name}.md", markdown(res))
    plot(res, a.out / f"{a.name}.png")
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
