"""``diffusci serve``: schedules file validation, the refusal to serve without a real server, and a
served interval schedule against a real local Prefect server that runs the toy flow to completion."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from core.config import ConfigError
from core.provenance import repo_root
from flows.cli import app
from flows.deployments import build_deployments, load_schedules
from tests.domains.toy_settings import TINY
from tests.flows.conftest import PrefectServer, server_settings, stop_tree, tail

EXAMPLE = repo_root() / "schedules.yaml"
RUN_TIMEOUT = 180.0


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_example_schedules_file_builds_deployments() -> None:
    schedules = load_schedules(EXAMPLE)
    deployments = build_deployments(schedules)
    assert [d.name for d in deployments] == [s.name for s in schedules.deployments]
    nightly = deployments[0]
    assert nightly.entrypoint == "flows.domain_flow.domain_flow"
    assert nightly.schedules[0].schedule.cron == "0 3 * * *"
    assert nightly.parameters["domain"] == "toy" and nightly.parameters["preset"] == "default"
    hourly = deployments[1]
    assert hourly.schedules[0].schedule.interval.total_seconds() == 3600
    assert "train.steps=300" in hourly.parameters["overrides"]


def _entry(**kw: object) -> dict:
    return {"name": "a", "domain": "toy", "interval": 60, **kw}


@pytest.mark.parametrize("data, match", [
    ({"deployments": [_entry(crom="* * * * *")]}, "unknown key 'deployments[0].crom'; valid keys under"),
    ({"deployment": [_entry()]}, "unknown key 'deployment'"),
    ({"deployments": [_entry(cron="0 3 * * *")]}, "set exactly one of 'cron' or 'interval'"),
    ({"deployments": [{"name": "a", "domain": "toy"}]}, "set exactly one of 'cron' or 'interval'"),
    ({"deployments": [_entry(interval=-5)]}, "'deployments[0].interval'"),
    ({"deployments": [{"name": "a", "domain": "toy", "cron": "every day"}]}, "invalid 'cron' 'every day'"),
    ({"deployments": [_entry(), _entry()]}, "repeated: a"),
    ({"deployments": []}, "'deployments'"),
    ({"deployments": [_entry(domain="nope")]}, "deployments[0] (a): unknown domain 'nope'"),
    ({"deployments": [_entry(preset="huge")]}, "unknown preset 'huge'"),
    ({"deployments": [_entry(overrides=["train.stepz=3"])]}, "unknown config key 'train.stepz'"),
])
def test_bad_schedules_name_the_key(tmp_path: Path, data: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(match)):
        load_schedules(_write(tmp_path, data))


def test_serve_refuses_the_ephemeral_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        res = CliRunner().invoke(app, ["serve", "--config", str(EXAMPLE)])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, res.output
    assert "needs a real Prefect server" in text and "prefect server start" in text and "PREFECT_API_URL" in text


def test_serve_reports_an_unreachable_server() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tests.flows.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        res = CliRunner().invoke(app, ["serve", "--config", str(EXAMPLE)])
    assert res.exit_code == 2, res.output
    assert "cannot reach the Prefect server" in " ".join(res.output.split())


def _diffusci() -> list[str]:
    exe = Path(sys.executable).with_name("diffusci")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "flows.cli"]


def _completed_scheduled_run(server: PrefectServer, deployment: str) -> object | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    with server_settings(server), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(f"diffusci-domain/{deployment}")
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            deployment_id={"any_": [dep.id]},
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))))
    return runs[0] if runs else None


@pytest.mark.prefect
@pytest.mark.slow
def test_served_interval_schedule_completes_a_toy_run(prefect_server: PrefectServer, tmp_path: Path) -> None:
    import psutil
    from prefect.exceptions import ObjectNotFound

    runs_root = tmp_path / "runs"
    config = _write(tmp_path, {"limit": 1, "deployments": [
        {"name": "toy-serve-test", "domain": "toy", "preset": "smoke", "overrides": TINY, "interval": 5}]})
    env = prefect_server.env(tmp_path / "client-home", DIFFUSCI_RUNS=str(runs_root),
                             PREFECT_RUNNER_POLL_FREQUENCY="2")
    log = tmp_path / "serve.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([*_diffusci(), "serve", "--config", str(config)], env=env, cwd=repo_root(),
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    family: list[psutil.Process] = []
    try:
        deadline, run = time.monotonic() + RUN_TIMEOUT, None
        while run is None and time.monotonic() < deadline:
            assert proc.poll() is None, f"diffusci serve exited with {proc.returncode}:\n{tail(log)}"
            time.sleep(2)
            with contextlib.suppress(ObjectNotFound):  # until the deployment is registered
                run = _completed_scheduled_run(prefect_server, "toy-serve-test")
        assert run is not None, (f"no scheduled run completed in {RUN_TIMEOUT:.0f} s; serve log:\n{tail(log)}\n"
                                 f"server log:\n{tail(prefect_server.log)}")
        assert run.auto_scheduled and run.parameters["domain"] == "toy"
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    finally:
        stop_tree(proc)
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in family)
    records = {json.loads(p.read_text())["flow_run_id"]: p.parent for p in runs_root.glob("toy/*/record.json")}
    run_dir = records[str(run.id)]
    assert json.loads((run_dir / "record.json").read_text())["status"] == "completed"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == 200 and metrics["log_likelihood"] < 0
