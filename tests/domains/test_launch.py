"""The train stage under torchrun (``launch.nproc_per_node=2``, gloo on CPU) matches one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from domains import get_domain, launch, pipeline
from domains.config import LaunchConfig
from tests.domains.toy_settings import TINY

DDP = [*TINY, "train.loss_generator=per_sample", "train.device=cpu"]


def _train(root: Path, extra: list[str] = ()) -> tuple[str, object]:
    cfg = pipeline.resolve_config("toy", "smoke", [*DDP, *extra])
    run_path = pipeline.start_run("toy", cfg, runs_root=str(root))
    data = pipeline.run_stage("ingest", run_path)
    return run_path, pipeline.run_stage("train", run_path, data)


def _tensors(ckpt_path: str) -> dict[str, torch.Tensor]:
    return {f"{name}.{k}": v for name in ("model", "ema")
            for k, v in load_file(str(Path(ckpt_path) / f"{name}.safetensors")).items()}


def test_two_process_training_matches_single_process(tmp_path: Path) -> None:
    single_run, single = _train(tmp_path / "single")
    ddp_run, ddp = _train(tmp_path / "ddp", ["launch.nproc_per_node=2"])
    assert not (Path(single_run) / "launch").exists()  # one process: trained in place
    log = (Path(ddp_run) / "launch" / launch.LOG_FILE).read_text()
    assert "torch.distributed.run --standalone --nproc_per_node 2" in log
    assert ddp.step == single.step == 40
    assert Path(ddp.path).parent == Path(ddp_run) / "checkpoints"
    assert json.loads((Path(ddp_run) / "refs.json").read_text())["train"]["sha256"] == ddp.sha256
    record = json.loads((Path(ddp_run) / "record.json").read_text())
    assert record["stages"]["train"]["status"] == "completed"
    assert json.loads((Path(ddp.path) / "meta.json").read_text())["world_size"] == 2
    assert json.loads((Path(single.path) / "meta.json").read_text())["world_size"] == 1
    a, b = _tensors(single.path), _tensors(ddp.path)
    assert a.keys() == b.keys() and len(a) > 4
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=k)
    init = get_domain("toy").denoiser(pipeline.load_run_config(single_run)[1]).state_dict()
    moved = max(float((a[f"model.{k}"] - v).abs().max()) for k, v in init.items())
    assert moved > 1e-3  # the comparison is between trained weights, not two copies of the init


def test_failing_ranks_fail_the_stage_with_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"failed with exit code 1: \[rank 0\] ValueError: batch_size 129 does not split"):
        _train(tmp_path, ["launch.nproc_per_node=2", "train.batch_size=129"])
    run = next((tmp_path / "toy").glob("2*"))
    record = json.loads((run / "record.json").read_text())
    assert record["stages"]["train"]["status"] == "failed"
    assert "exit code" in record["stages"]["train"]["error"]


def test_torchrun_arguments() -> None:
    assert launch.torchrun_args(LaunchConfig(nproc_per_node=4), "x") == [
        "--standalone", "--nproc_per_node", "4", "--nnodes", "1"]
    assert launch.torchrun_args(LaunchConfig(nproc_per_node=8, nnodes=2, node_rank=1, master_addr="10.0.0.1",
                                             master_port=29500), "x") == [
        "--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "1", "--master_addr", "10.0.0.1",
        "--master_port", "29500"]
    assert launch.torchrun_args(LaunchConfig(nproc_per_node=8, nnodes=2, rdzv_endpoint="head:29400"), "r1") == [
        "--nproc_per_node", "8", "--nnodes", "2", "--rdzv_backend", "c10d", "--rdzv_endpoint", "head:29400",
        "--rdzv_id", "r1"]


def test_launch_only_when_several_processes_and_not_inside_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    one = pipeline.resolve_config("toy", "smoke")
    two = pipeline.resolve_config("toy", "smoke", ["launch.nproc_per_node=2"])
    assert not launch.wants_launch(one) and launch.wants_launch(two)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert not launch.wants_launch(two)  # already a torchrun worker: train in place


@pytest.mark.parametrize("override, match", [
    ("launch.nnodes=2", "launch.rdzv_endpoint or launch.master_addr"),
    ("launch.nproc_per_node=0", "launch.nproc_per_node"),
    ("launch.procs=2", "unknown config key 'launch.procs'"),
])
def test_bad_launch_config_names_the_key(override: str, match: str) -> None:
    from core.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        pipeline.resolve_config("toy", "smoke", [override])
