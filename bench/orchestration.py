"""What Prefect adds to a domain run: wall time of the toy pipeline with and without the flow.

Every measurement is a fresh subprocess timed from outside, so interpreter start-up, imports and the
embedded Prefect server's start are included:

* ``plain``         — ``python -m domains.pipeline`` (no Prefect at all);
* ``prefect_cold``  — ``python -m flows.cli run`` with a fresh ``PREFECT_HOME`` (new SQLite database);
* ``prefect_warm``  — the same command again, reusing that home (``--force``: nothing cached);
* ``prefect_cached``— the same config without ``--force``: ingest and train come from Prefect's cache;
* ``empty_flow_cold`` / ``empty_flow_warm`` — a flow that does nothing (the engine's fixed cost);
* ``prefect_local_server`` — the flow against an already running ``prefect server start``.

Overhead = flow − plain for the same config. The default-preset run time it is compared with is
extrapolated from a plain default-preset run with ``train.steps`` cut to ``--default-steps``
(all other stages at full size): ``ingest + sample + validate + train_seconds * 10000 / steps``.

    python -m bench.orchestration            # writes bench/results/orchestration.{json,md}
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.provenance import (
    atomic_write_json,
    atomic_write_text,
    code_version,
    package_versions,
    portable_run_path,
    repo_root,
)

RESULTS = repo_root() / "bench" / "results"
SMOKE = ["train.steps=300", "train.checkpoint_every=300", "train.log_every=100", "sample.n=1000",
         "sample.batch_size=1000", "validate.n_ref=1000", "validate.compare_samplers=[dpmpp_2m]",
         "validate.compare_steps=[10]", "validate.compare_n=1000"]
EMPTY_FLOW = ("from flows.settings import configure_prefect; configure_prefect()\n"
              "from prefect import flow\n@flow\ndef empty():\n    return 1\nempty()\n")


def _env(home: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # embedded server
    env.setdefault("OMP_NUM_THREADS", "1")
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    return env


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@contextlib.contextmanager
def local_server(work: Path) -> Iterator[tuple[str, float]]:
    """``prefect server start`` on a free loopback port: yields (API URL, seconds until healthy)."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    work.mkdir(parents=True, exist_ok=True)
    env = _env(work / "server-home")
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_UI_ENABLED="false", DO_NOT_TRACK="1")
    url = f"http://127.0.0.1:{port}/api"
    t0 = time.perf_counter()
    with (work / "server.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        while True:
            if proc.poll() is not None or time.perf_counter() - t0 > 180:
                raise RuntimeError(f"prefect server did not start: {(work / 'server.log').read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.25)
        yield url, time.perf_counter() - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=repo_root(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall


def _sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def _stages(runs_root: Path) -> dict[str, float]:
    """Stage durations of the newest run under ``runs_root`` (from its ``record.json``)."""
    record = json.loads(max(runs_root.glob("toy/2*/record.json")).read_text())
    return {k: round(v.get("duration_s", 0.0), 3) for k, v in record["stages"].items()}


def measure_overhead(work: Path, overrides: list[str], repeats: int) -> dict[str, Any]:
    py = sys.executable
    plain_cmd = [py, "-m", "domains.pipeline", "toy", *_sets(overrides), "--force"]
    flow_cmd = [py, "-m", "flows.cli", "run", "toy", *_sets(overrides)]
    rows: dict[str, list[float]] = {k: [] for k in ("plain", "prefect_cold", "prefect_warm", "prefect_cached",
                                                     "empty_flow_cold", "empty_flow_warm", "prefect_local_server")}
    stages: dict[str, dict[str, float]] = {}
    server_start: list[float] = []
    for r in range(repeats):
        home, root = work / f"home{r}", work / f"runs{r}"
        rows["plain"].append(_timed([*plain_cmd, "--runs-root", str(root / "plain")], _env(None)))
        stages["plain"] = _stages(root / "plain")
        rows["prefect_cold"].append(_timed([*flow_cmd, "--force", "--runs-root", str(root / "cold")], _env(home)))
        stages["prefect_cold"] = _stages(root / "cold")
        rows["prefect_warm"].append(_timed([*flow_cmd, "--force", "--runs-root", str(root / "warm")], _env(home)))
        stages["prefect_warm"] = _stages(root / "warm")
        rows["prefect_cached"].append(_timed([*flow_cmd, "--runs-root", str(root / "warm")], _env(home)))
        stages["prefect_cached"] = _stages(root / "warm")
        empty_home = work / f"empty{r}"
        rows["empty_flow_cold"].append(_timed([py, "-c", EMPTY_FLOW], _env(empty_home)))
        rows["empty_flow_warm"].append(_timed([py, "-c", EMPTY_FLOW], _env(empty_home)))
        with local_server(work / f"server{r}") as (url, started):
            server_start.append(started)
            env = dict(_env(work / f"server{r}" / "client-home"), PREFECT_API_URL=url)
            rows["prefect_local_server"].append(_timed([*flow_cmd, "--force", "--runs-root", str(root / "server")], env))
            stages["prefect_local_server"] = _stages(root / "server")
        print(f"repeat {r + 1}/{repeats}: " + ", ".join(f"{k}={v[-1]:.1f}s" for k, v in rows.items()), flush=True)
    return {"wall_s": {k: [round(x, 2) for x in v] for k, v in rows.items()},
            "median_s": {k: round(statistics.median(v), 2) for k, v in rows.items()}, "stages_s": stages,
            "local_server_start_s": round(statistics.median(server_start), 2)}


def estimate_default_run(work: Path, steps: int, run_dir: Path | None = None) -> dict[str, Any]:
    """A plain default-preset run with ``train.steps=steps`` (or the finished one at ``run_dir``),
    extrapolated to the preset's steps: the sum of its stage times plus the missing training steps."""
    import yaml

    from domains import get_domain

    full_steps = get_domain("toy").load_config("default").train.steps
    if run_dir is None:
        root = work / "default"
        cmd = [sys.executable, "-m", "domains.pipeline", "toy", "--preset", "default", "--force", "--runs-root",
               str(root), *_sets([f"train.steps={steps}", f"train.checkpoint_every={steps}"])]
        _timed(cmd, _env(None))
        run_dir = max(root.glob("toy/2*"))
    st = {k: round(v.get("duration_s", 0.0), 3) for k, v in json.loads((run_dir / "record.json").read_text())
          ["stages"].items()}
    invocation = json.loads((run_dir / "invocation.json").read_text())
    if invocation.get("preset") != "default" or any(not o.startswith("train.") for o in invocation["overrides"]):
        raise ValueError(f"{run_dir} is not a default-preset run (only train.* overrides allowed): {invocation}")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    steps = cfg["train"]["steps"]
    est = sum(st.values()) + st["train"] * (full_steps / steps - 1)
    return {"run_dir": portable_run_path(run_dir), "steps_run": steps, "preset_steps": full_steps, "stages_s": st,
            "estimated_full_run_s": round(est, 1)}


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    m = res["overhead"]["median_s"]
    default = res["default_estimate"]["estimated_full_run_s"] if res.get("default_estimate") else None
    out = {"cold_s": round(m["prefect_cold"] - m["plain"], 2), "warm_s": round(m["prefect_warm"] - m["plain"], 2),
           "cached_rerun_s": round(m["prefect_cached"] - m["plain"], 2),
           "local_server_s": round(m["prefect_local_server"] - m["plain"], 2)}
    if default:
        out.update({f"{k.removesuffix('_s')}_pct_of_default_run": round(100 * v / default, 2)
                    for k, v in out.items() if k in ("cold_s", "warm_s", "local_server_s")})
    out["aim"] = {"cold_overhead_below_5s": out["cold_s"] < 5,
                  "warm_overhead_below_2pct_of_default": (out.get("warm_pct_of_default_run", 100) < 2)}
    return out


def markdown(res: dict[str, Any]) -> str:
    m, s, o = res["overhead"]["median_s"], res["overhead"]["stages_s"], res["overhead_summary"]
    label = {"plain": "plain pipeline (`python -m domains.pipeline`, no Prefect)",
             "prefect_cold": "flow, embedded server, fresh PREFECT_HOME (cold)",
             "prefect_warm": "flow, embedded server, reused PREFECT_HOME (warm)",
             "prefect_cached": "flow, warm, unchanged config (ingest + train cached)",
             "empty_flow_cold": "empty flow, fresh PREFECT_HOME", "empty_flow_warm": "empty flow, reused PREFECT_HOME",
             "prefect_local_server": "flow against a running `prefect server start` (PREFECT_API_URL)"}
    lines = [f"# Orchestration overhead — {res['date']}", "",
             f"Device: {res['device']}. torch {res['versions'].get('torch')}, prefect {res['versions'].get('prefect')}, "
             f"Python {res['python']}. Load average before the run: {res['load_before']}.", "",
             f"Toy domain, smoke preset with `{' '.join(res['overrides'])}`; every row is a new process timed from "
             f"outside (median of {res['repeats']}).", "",
             "| what | wall s (median) | range s | over plain s | ingest | train | sample | validate |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for k in label:  # fixed order (the JSON file sorts its keys)
        v = m[k]
        st, walls = s.get(k, {}), res["overhead"]["wall_s"][k]
        cells = " | ".join(f"{st[x]:.2f}" if x in st else "" for x in ("ingest", "train", "sample", "validate"))
        over = f"{v - m['plain']:+.1f}" if k != "plain" and not k.startswith("empty") else ""
        lines.append(f"| {label[k]} | {v:.1f} | {min(walls):.1f}–{max(walls):.1f} | {over} | {cells} |")
    lines += ["", "Stage columns: seconds inside each stage (from the run's `record.json`, last repeat); the rest of "
              "the wall time is interpreter start-up, imports and orchestration. The machine is shared: the range "
              "column shows how much repeats of the same command differ."]
    d = res.get("default_estimate")
    lines += ["", f"Overhead: **cold {o['cold_s']:.1f} s**, **warm {o['warm_s']:.1f} s**, against a running local "
              f"server **{o['local_server_s']:.1f} s** (that server took {res['overhead']['local_server_start_s']:.0f} s "
              f"to start, once); a cache-hit rerun takes {o['cached_rerun_s']:+.1f} s relative to the plain run."]
    if d:
        lines += [f"Default preset (plain, extrapolated from {d['steps_run']} of {d['preset_steps']} training steps): "
                  f"~{d['estimated_full_run_s'] / 60:.0f} min on this machine, so the overhead is "
                  f"{o.get('cold_pct_of_default_run', float('nan')):.2f}% (cold) and "
                  f"{o.get('warm_pct_of_default_run', float('nan')):.2f}% (warm) and "
                  f"{o.get('local_server_pct_of_default_run', float('nan')):.2f}% (local server) of a default run."]
    aim = o["aim"]
    lines += ["", f"Aim: cold overhead < 5 s — {'met' if aim['cold_overhead_below_5s'] else 'NOT met'}; "
              f"< 2% of a default run — {'met' if aim['warm_overhead_below_2pct_of_default'] else 'NOT met'} (warm).",
              "", f"Command: `{res['command']}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--default-steps", type=int, default=200, help="0: skip the default-preset estimate")
    p.add_argument("--default-run", type=Path, help="reuse this finished plain default-preset run for the estimate")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    import torch

    work = Path(tempfile.mkdtemp(prefix="diffusci-bench-orch-"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    try:
        res: dict[str, Any] = {
            "benchmark": "orchestration", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.orchestration", *(argv if argv is not None else sys.argv[1:])]),
            "device": f"{_cpu_name()}, {os.cpu_count()} CPUs, "
                      f"torch threads {os.environ.get('OMP_NUM_THREADS', torch.get_num_threads())}",
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": package_versions(("torch", "prefect", "prefect-dask", "pydantic", "sqlalchemy")),
            "code_version": code_version(), "load_before": [round(x, 2) for x in load] if load else None,
            "repeats": a.repeats, "overrides": SMOKE,
        }
        res["overhead"] = measure_overhead(work, SMOKE, a.repeats)
        res["default_estimate"] = (estimate_default_run(work, a.default_steps, a.default_run)
                                   if a.default_steps or a.default_run else None)
        res["overhead_summary"] = summarise(res)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(a.out / "orchestration.json", res)
    atomic_write_text(a.out / "orchestration.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
