"""Fan-out through the Dask task runner (a local cluster of 2 worker processes) against a real local
Prefect server: sharded sampling merges to exactly the sequential sample set, and ``diffusci run all
--concurrent --runner dask`` completes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from tests.domains.toy_settings import TINY
from tests.flows.conftest import PrefectServer, server_settings

pytestmark = [pytest.mark.prefect, pytest.mark.slow]

assert "sample.n=200" in TINY and "sample.batch_size=100" in TINY  # 2 shards of one batch each


def _samples(run_dir: str | Path) -> torch.Tensor:
    return load_file(str(Path(run_dir) / "samples" / "samples.safetensors"))["x"]


def _task_runs(server: PrefectServer, flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    with server_settings(server), get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": [flow_run_id]}))


def test_dask_sharded_sampling_equals_the_sequential_run(prefect_server: PrefectServer, tmp_path: Path) -> None:
    from domains import pipeline
    from flows.all_domains import task_runner
    from flows.domain_flow import domain_flow

    with server_settings(prefect_server, storage=tmp_path / "results"):
        out = domain_flow.with_options(task_runner=task_runner("dask", workers=2))(
            "toy", "smoke", [*TINY, "sample.shards=2"], force=True, runs_root=str(tmp_path / "dask"))
    run_dir = Path(out["run_dir"])
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "completed" and out["status"] == "completed"
    shards = sorted((run_dir / "samples" / "shards").glob("shard_*.safetensors"))
    assert [p.name for p in shards] == ["shard_00000000_00000100.safetensors", "shard_00000100_00000200.safetensors"]
    names = [t.name for t in _task_runs(prefect_server, record["flow_run_id"]) if t.state and t.state.is_completed()]
    assert sum(n.startswith("sample-shard") for n in names) == 2 and any(n.startswith("merge-samples") for n in names)

    plain = pipeline.run_pipeline("toy", "smoke", TINY, runs_root=str(tmp_path / "plain"), force=True)
    ref_dask, ref_plain = pipeline.load_ref(run_dir, "train"), pipeline.load_ref(plain["run_dir"], "train")
    assert ref_dask.sha256 == ref_plain.sha256  # CPU training is deterministic: the same checkpoint
    merged, sequential = _samples(run_dir), _samples(plain["run_dir"])
    assert merged.shape == (200, 2)
    assert torch.equal(merged, sequential)
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(
        (Path(plain["run_dir"]) / "metrics.json").read_text())


def test_run_all_concurrent_on_dask(prefect_server: PrefectServer, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import domains
    from flows.cli import app

    monkeypatch.setattr(domains, "DOMAINS", {"toy": domains.DOMAINS["toy"]})  # the overrides are toy's
    args = ["run", "all", "--concurrent", "--runner", "dask", "--runs-root", str(tmp_path)]
    for o in TINY:
        args += ["--set", o]
    with server_settings(prefect_server, storage=tmp_path / "results"):
        res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "diffusci summary" in res.output and "completed" in res.output
    (run_dir,) = (tmp_path / "toy").glob("2*")
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "completed"
    assert (run_dir / "metrics.json").is_file()
