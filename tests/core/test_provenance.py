"""Tests for core.provenance: environment, git info, atomic writes, run directories."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import core
from core import provenance
from core.catalog import VerifyReport
from core.config import ConfigModel, config_hash
from core.provenance import (
    RunDir,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    code_version,
    collect_environment,
    git_info,
    overall_status,
    runs_root,
)


class Cfg(ConfigModel):
    name: str = "smoke"
    steps: int = 3


@pytest.fixture
def no_git(monkeypatch):
    """Keep RunDir tests hermetic: behave as if git were unavailable."""
    monkeypatch.setattr(provenance, "_git", lambda root, *args: None)


@pytest.fixture
def runs(tmp_path, monkeypatch, no_git):
    root = tmp_path / "runs"
    monkeypatch.setenv("DIFFUSCI_RUNS", str(root))
    return root


def _temp_files(directory) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(".tmp"))


# --------------------------------------------------------------------------- atomic writes


def test_atomic_writes_leave_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a" / "t.txt", "héllo")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    atomic_write_json(tmp_path / "c.json", {"b": 1, "a": [1, 2], "p": tmp_path})
    atomic_write_text(tmp_path / "a" / "t.txt", "again")  # overwrite
    assert (tmp_path / "a" / "t.txt").read_text(encoding="utf-8") == "again"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": [1, 2], "b": 1, "p": str(tmp_path)}
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b.bin", "c.json", "t.txt"]


def test_failed_atomic_write_keeps_old_file(tmp_path):
    target = tmp_path / "x.json"
    atomic_write_json(target, {"ok": True})
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": True}
    assert _temp_files(tmp_path) == []


# --------------------------------------------------------------------------- environment and git


def test_collect_environment_without_importing_optional_packages():
    optional = {"rdkit", "xarray", "monai", "nibabel", "networkx", "matplotlib", "dask", "ray", "pysteps"}
    before = {m for m in sys.modules if m.split(".")[0] in optional}
    env = collect_environment()
    after = {m for m in sys.modules if m.split(".")[0] in optional}
    assert after == before
    assert env["python"] == sys.version.split()[0]
    assert {"platform", "hostname", "cpu_count", "torch", "cuda_available", "cuda_device"} <= set(env)
    assert {"torch", "numpy", "scipy", "prefect", "pydantic"} <= set(env["packages"])
    assert env["packages"]["pydantic"]
    json.dumps(env)  # serialisable


def test_git_info_on_non_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_info(tmp_path) == {"commit": None, "dirty": None}


def test_git_info_when_git_is_missing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", boom)
    assert git_info(tmp_path) == {"commit": None, "dirty": None}
    try:
        expected = provenance.md.version("diffusci")
    except provenance.md.PackageNotFoundError:
        expected = core.__version__
    assert code_version(tmp_path) == expected


def test_git_info_parses_commit_and_dirty(monkeypatch, tmp_path):
    outputs = {("rev-parse", "HEAD"): "abc123\n", ("status", "--porcelain"): " M core/x.py\n"}
    monkeypatch.setattr(provenance, "_git", lambda root, *args: outputs[args])
    assert git_info(tmp_path) == {"commit": "abc123", "dirty": True}
    assert code_version(tmp_path) == "abc123-dirty"
    outputs[("status", "--porcelain")] = ""
    assert code_version(tmp_path) == "abc123"


# --------------------------------------------------------------------------- run directories


def test_runs_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSCI_RUNS", str(tmp_path))
    assert runs_root() == tmp_path
    monkeypatch.delenv("DIFFUSCI_RUNS")
    assert runs_root() == provenance.repo_root() / "runs"


def test_create_layout_and_files(runs):
    run = RunDir.create("toy", flow_run_id="flow-1")
    assert run.path.parent == runs / "toy" and run.domain == "toy"
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", run.run_id)
    assert all((run.path / sub).is_dir() for sub in ("checkpoints", "samples", "plots"))
    record = run.record()
    assert record["status"] == "pending" and record["stages"] == {} and record["flow_run_id"] == "flow-1"

    cfg = Cfg(steps=7)
    digest = run.write_config(cfg)
    assert digest == config_hash(cfg) == (run.path / "config_hash").read_text().strip()
    assert "steps: 7" in (run.path / "config.yaml").read_text()
    run.write_seeds({"root": 1, "sample": [2, 3]})
    report = VerifyReport(entry="gmm2d", root="/data", files=(), checksum="0" * 64)
    run.write_data({"gmm2d": report})
    env = run.write_env()
    assert run.read_json("seeds.json") == {"root": 1, "sample": [2, 3]}
    assert run.read_json("data.json")["gmm2d"]["checksum"] == "0" * 64
    assert run.read_json("env.json")["git"] == {"commit": None, "dirty": None} == env["git"]
    assert _temp_files(run.path) == []


def test_run_ids_unique(runs):
    ids = {RunDir.create("toy").run_id for _ in range(5)}
    assert len(ids) == 5


def test_mark_stage_updates_record(runs):
    run = RunDir.create("toy")
    run.mark_stage("ingest", "running")
    run.mark_stage("ingest", "completed", rows=10)
    run.mark_stage("train", "running", flow_run_id="fr-9")
    reopened = RunDir.open(run.path)
    record = reopened.record()
    ingest = record["stages"]["ingest"]
    assert ingest["status"] == "completed" and ingest["rows"] == 10
    assert ingest["started"] <= ingest["finished"] and ingest["duration_s"] >= 0
    assert record["status"] == "running" and record["flow_run_id"] == "fr-9"
    assert reopened.stage_status("train") == "running" and reopened.stage_status("sample") == "pending"
    run.mark_stage("train", "completed")
    assert run.record()["status"] == "completed"
    assert _temp_files(run.path) == []


def test_failure_recorded_with_traceback(runs):
    run = RunDir.create("toy")
    run.mark_stage("train", "running")
    try:
        raise ValueError("loss is NaN")
    except ValueError as exc:
        run.mark_stage("train", "failed", error=exc)
    stage = run.record()["stages"]["train"]
    assert stage["status"] == "failed" and stage["error"] == "ValueError: loss is NaN"
    assert any("test_failure_recorded_with_traceback" in line for line in stage["traceback"])
    assert run.record()["status"] == "failed"
    run.mark_stage("train", "running")  # a retry clears the old error
    assert "error" not in run.record()["stages"]["train"]
    run.mark_stage("sample", "failed", error="no checkpoint")
    assert run.record()["stages"]["sample"]["error"] == "no checkpoint"


def test_invalid_status_lists_choices(runs):
    run = RunDir.create("toy")
    with pytest.raises(ValueError, match="valid choices: pending, running, completed, failed"):
        run.mark_stage("train", "done")  # type: ignore[arg-type]


def test_open_requires_record(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_overall_status():
    assert overall_status({}) == "pending"
    assert overall_status({"a": {"status": "completed"}, "b": {"status": "pending"}}) == "pending"
    assert overall_status({"a": {"status": "completed"}, "b": {"status": "failed"}}) == "failed"
    assert overall_status({"a": {"status": "skipped"}, "b": {"status": "completed"}}) == "completed"
    assert overall_status({"a": {"status": "skipped"}, "b": {"status": "skipped"}}) == "pending"
    assert overall_status({"a": {"status": "skipped"}, "b": {"status": "running"}}) == "running"


def test_atomic_save_figure_writes_the_rendered_bytes(tmp_path):
    from core.provenance import atomic_save_figure

    class Fig:  # anything with savefig, as matplotlib figures
        def savefig(self, buf, format, dpi):
            buf.write(f"{format}:{dpi}".encode())

    out = atomic_save_figure(Fig(), tmp_path / "sub" / "plot.png", dpi=72)
    assert out.read_bytes() == b"png:72"
    assert [p.name for p in out.parent.iterdir()] == ["plot.png"]  # no temp file left
