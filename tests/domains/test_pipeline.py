"""The plain (orchestrator-free) pipeline on the toy domain: records, reproducibility, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.config import ConfigError
from core.registry import UnknownNameError
from domains import get_domain, pipeline
from tests.domains.toy_settings import TINY


def _run(tmp_path: Path, extra: list[str] = (), **kw) -> dict:
    return pipeline.run_pipeline("toy", "smoke", [*TINY, *extra], runs_root=str(tmp_path), **kw)


def test_run_writes_a_complete_record(tmp_path: Path) -> None:
    out = _run(tmp_path)
    run = Path(out["run_dir"])
    assert out["status"] == "completed"
    for name in ("config.yaml", "config_hash", "seeds.json", "env.json", "data.json", "record.json",
                 "metrics.json", "refs.json", "invocation.json", "samples/samples.safetensors",
                 "samples/samples.csv", "plots/samples.png", "plots/samplers.png"):
        assert (run / name).is_file(), name
    record = json.loads((run / "record.json").read_text())
    assert [record["stages"][s]["status"] for s in ("ingest", "train", "sample", "validate")] == ["completed"] * 4
    env = json.loads((run / "env.json").read_text())
    assert "torch" in env["packages"] or "torch" in json.dumps(env)
    assert "commit" in env["git"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n"] == 200 and metrics["nfe"] == 9
    assert metrics["log_likelihood"] < 0 and metrics["sliced_wasserstein"] > 0
    ckpts = sorted((run / "checkpoints").iterdir())
    assert ckpts and (ckpts[-1] / "model.safetensors").is_file()


def test_same_seed_gives_identical_samples_and_reproduce_matches(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", force=True)
    b = _run(tmp_path / "b", force=True)
    xa = load_file(str(Path(a["run_dir"]) / "samples" / "samples.safetensors"))["x"]
    xb = load_file(str(Path(b["run_dir"]) / "samples" / "samples.safetensors"))["x"]
    assert torch.equal(xa, xb)
    report = pipeline.compare_runs(a["run_dir"], b["run_dir"])
    assert report["samples_identical"]
    assert all(r[3] in (0, 0.0, "") for r in report["metrics"])
    c = _run(tmp_path / "c", ["seed=1"], force=True)
    xc = load_file(str(Path(c["run_dir"]) / "samples" / "samples.safetensors"))["x"]
    assert not torch.equal(xa, xc)


def test_sharded_sampling_merges_to_the_sequential_set(tmp_path: Path) -> None:
    out = _run(tmp_path)
    run_path = out["run_dir"]
    ckpt = pipeline.load_ref(run_path, "train")
    whole = load_file(str(Path(run_path) / "samples" / "samples.safetensors"))["x"]
    shards = [pipeline.sample_shard(run_path, ckpt, a, b) for a, b in [(0, 70), (70, 130), (130, 200)]]
    ref = pipeline.merge_shards(run_path, ckpt, list(reversed(shards)))
    merged = load_file(ref.path)["x"]
    assert torch.allclose(merged, whole, atol=1e-5)


def test_failing_stage_keeps_earlier_outputs_and_records_the_error(tmp_path: Path, monkeypatch) -> None:
    dom_cls = type(get_domain("toy"))

    def broken(self, *a, **k):
        raise RuntimeError("metric exploded")

    monkeypatch.setattr(dom_cls, "evaluate", broken)
    with pytest.raises(RuntimeError, match="metric exploded"):
        _run(tmp_path)
    run = next((tmp_path / "toy").glob("2*"))
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "failed"
    assert record["stages"]["validate"]["status"] == "failed"
    assert "metric exploded" in record["stages"]["validate"]["error"]
    assert record["stages"]["sample"]["status"] == "completed"
    assert (run / "samples" / "samples.safetensors").is_file()
    assert "train" in json.loads((run / "refs.json").read_text())


@pytest.mark.parametrize("overrides, match", [
    (["train.stepz=3"], "unknown config key 'train.stepz'"),
    (["train.steps=abc"], "train.steps"),
    (["sample.sampler=nope"], "valid choices"),
    (["process.name=nope"], "valid choices"),
    (["sample.schedule=uniform", "sample.schedule_options={rho: 3}"], "schedule 'uniform' has no option"),
])
def test_bad_config_is_rejected_with_the_key_named(overrides: list[str], match: str) -> None:
    with pytest.raises((ConfigError, UnknownNameError, ValueError), match=match):
        pipeline.resolve_config("toy", "smoke", overrides)


def test_unknown_domain_and_preset_list_the_choices() -> None:
    with pytest.raises(UnknownNameError, match="valid choices: .*toy"):
        get_domain("nope")
    with pytest.raises(UnknownNameError, match="valid choices: default, full, smoke"):
        pipeline.resolve_config("toy", "huge")


def _final_weights(run_dir: str) -> dict[str, torch.Tensor]:
    ckpt = pipeline.load_ref(run_dir, "train")
    return load_file(str(Path(ckpt.path) / "model.safetensors"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_training_resumes_to_the_same_weights(tmp_path: Path, sig: int) -> None:
    overrides = [o for o in TINY if not o.startswith(("train.steps", "train.checkpoint_every"))]
    overrides += ["train.steps=400", "train.checkpoint_every=50"]
    cmd = [sys.executable, "-m", "domains.pipeline", "toy", "--runs-root", str(tmp_path / "killed")]
    for o in overrides:
        cmd += ["--set", o]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = tmp_path / "killed" / "toy" / "_train"
    deadline = time.time() + 120
    while time.time() < deadline and not list(work.glob("*/step_000100")):
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    done = sorted(p.name for p in work.glob("*/step_*"))
    assert done and "step_000400" not in done, f"training was not interrupted mid-way: {done}"
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    resumed_run = max((tmp_path / "killed" / "toy").glob("2*"))
    straight = pipeline.run_pipeline("toy", "smoke", overrides, runs_root=str(tmp_path / "straight"))
    a, b = _final_weights(str(resumed_run)), _final_weights(straight["run_dir"])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_missing_data_fails_at_ingest_before_any_training(tmp_path: Path, monkeypatch) -> None:
    from core.catalog import DataError

    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path / "empty-data-root"))
    with pytest.raises(DataError, match=r"diffusci catalog fetch community_small"):
        pipeline.run_pipeline("graphs", "smoke", runs_root=str(tmp_path / "runs"))
    run = next((tmp_path / "runs" / "graphs").glob("2*"))
    record = json.loads((run / "record.json").read_text())
    assert record["stages"]["ingest"]["status"] == "failed"
    assert record["stages"]["train"]["status"] == "pending"
    assert not (tmp_path / "runs" / "graphs" / "_train").exists()
