"""Sampler sweep on one trained checkpoint: each setting resampled and scored with the run's metrics.

Every ``--variant`` (a group of ``sample.*`` / ``validate.*`` overrides separated by spaces) becomes one
``diffusci sample RUN --set ... --validate`` (``domains.pipeline.resample``): a new sample set under
``RUN/resamples/<id>/`` with its own record, scored exactly as the run's validate stage scores. The
table lists the chosen metrics per variant (and their ``*_std`` where the domain reports the spread
over reference-sized sets), the NFE and the wall time. Same weights, same seeds: the rows isolate the
sampler settings.

    python -m bench.resample_sweep runs/graphs/<run-id> --name graphs.sampler_sweep --n 256 \\
        --common validate.compare_samplers=[] \\
        --variant sample.options.snr=0.05 --variant sample.options.snr=0.1 --variant sample.steps=400 \\
        --metrics degree_mmd cluster_mmd orbit_mmd connected_frac
"""

from __future__ import annotations

import argparse
import platform
import shlex
import time
from pathlib import Path
from typing import Any

from core.provenance import atomic_write_json, atomic_write_text, code_version, portable_run_path, repo_root

RESULTS = repo_root() / "bench" / "results"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else ("–" if v is None else str(v))


def pick(m: dict[str, Any], metrics: list[str], domain: str) -> dict[str, Any]:
    """The chosen metrics (and their ``*_std``) from a metrics.json; unknown names are refused with the choices."""
    missing = [k for k in metrics if k not in m]
    if missing:
        raise KeyError(f"metrics {missing} are not in the {domain} domain's metrics.json; choose from "
                       f"{sorted(k for k in m if not k.endswith('_std'))}")
    return {**{k: m[k] for k in metrics}, **{f"{k}_std": m.get(f"{k}_std") for k in metrics}}


def sweep(run: Path, variants: list[list[str]], *, n: int | None, common: list[str], metrics: list[str]) -> dict:
    from domains.pipeline import load_run_config, resample

    domain, cfg = load_run_config(str(run))
    rows = []
    for variant in variants:
        t0 = time.perf_counter()
        out = resample(str(run), n=n, overrides=[*common, *variant], validate=True)
        rows.append({"variant": " ".join(variant) or "(as trained)", "resample": portable_run_path(out["run_dir"], run),
                     "nfe": out.get("nfe"), "seconds": round(time.perf_counter() - t0, 1),
                     **pick(out["metrics"], metrics, domain)})
    return {"run": portable_run_path(run), "domain": domain, "n": n or cfg.sample.n, "common": common, "metrics": metrics,
            "rows": rows, "code_version": code_version(), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def markdown(res: dict[str, Any]) -> str:
    ms = res["metrics"]
    lines = [f"# {res['domain']}: sampler sweep on one checkpoint", "",
             f"Run `{res['run']}`, {res['n']} samples per row, common overrides `{' '.join(res['common']) or '-'}`, "
             f"code {res['code_version']}, {res['processor']}. Same weights and seeds in every row; `±` is the "
             "spread over reference-sized sets where the domain reports it.", "",
             "| variant | " + " | ".join(ms) + " | NFE | s |", "|---|" + "---:|" * (len(ms) + 2)]
    for r in res["rows"]:
        cells = [_fmt(r[k]) + (f" ± {r[k + '_std']:.3g}" if isinstance(r.get(k + "_std"), float) else "") for k in ms]
        lines.append(f"| `{r['variant']}` | " + " | ".join(cells) + f" | {_fmt(r['nfe'])} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run directory")
    p.add_argument("--variant", action="append", default=[], help="space-separated key=value overrides (repeatable)")
    p.add_argument("--common", nargs="*", default=[], help="overrides applied to every variant")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics.json keys to tabulate")
    p.add_argument("--n", type=int, default=None, help="samples per variant (default: the run's sample.n)")
    p.add_argument("--name", required=True, help="results file stem: bench/results/<name>.{json,md}")
    a = p.parse_args(argv)
    variants = [shlex.split(v) for v in a.variant] or [[]]
    res = sweep(a.run, variants, n=a.n, common=a.common, metrics=a.metrics)
    atomic_write_json(RESULTS / f"{a.name}.json", res)
    atomic_write_text(RESULTS / f"{a.name}.md", markdown(res))
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()
