"""Run the train stage under ``torchrun`` when the config asks for more than one process.

``launch.nproc_per_node * launch.nnodes > 1`` makes :func:`domains.pipeline.run_stage` call
:func:`launch_train` instead of ``Domain.train``: it starts ``python -m torch.distributed.run``
(``--standalone`` on one node) executing this module's entry point,

    python -m domains.launch RUN_PATH DATA_REF_JSON

which calls the domain's ``train`` on every rank (the :class:`~core.training.trainer.Trainer` sets up
DDP from torchrun's ``RANK``/``WORLD_SIZE`` itself). Global rank 0 writes the checkpoint and its
:class:`~domains.refs.CheckpointRef` to ``RUN_PATH/launch/train_ref.json``; the parent reads it back.
All ranks' output goes to ``RUN_PATH/launch/train.log`` and to the parent's stdout.

A process that torchrun already started (``RANK`` set) never launches again: it trains in place.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from core.provenance import RunDir, atomic_write_json, repo_root
from domains.config import DomainConfig, LaunchConfig
from domains.refs import CheckpointRef, DatasetRef

REF_FILE = "train_ref.json"
LOG_FILE = "train.log"
TAIL_LINES = 30


def world_size(launch: LaunchConfig) -> int:
    return launch.nproc_per_node * launch.nnodes


def wants_launch(cfg: DomainConfig) -> bool:
    """True when training needs several processes and this process was not started by torchrun."""
    from core.training.distributed import launched_by_torchrun

    return world_size(cfg.launch) > 1 and not launched_by_torchrun()


def torchrun_args(launch: LaunchConfig, rdzv_id: str) -> list[str]:
    """``torch.distributed.run`` options for ``launch`` (standalone on one node unless an endpoint is set)."""
    args = ["--nproc_per_node", str(launch.nproc_per_node), "--nnodes", str(launch.nnodes)]
    if launch.rdzv_endpoint:
        return [*args, "--rdzv_backend", "c10d", "--rdzv_endpoint", launch.rdzv_endpoint, "--rdzv_id", rdzv_id]
    if launch.master_addr:
        args += ["--node_rank", str(launch.node_rank), "--master_addr", launch.master_addr]
        return args + (["--master_port", str(launch.master_port)] if launch.master_port else [])
    return ["--standalone", *args]


def torchrun_command(cfg: DomainConfig, run_path: str | Path, data_json: str | Path, rdzv_id: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *torchrun_args(cfg.launch, rdzv_id),
            "-m", "domains.launch", str(run_path), str(data_json)]


def launch_train(cfg: DomainConfig, data: DatasetRef, run: RunDir, rdzv_id: str) -> CheckpointRef:
    """Train under torchrun and return the checkpoint written by global rank 0.

    ``rdzv_id`` must be the same on every node (the train stage hash is)."""
    folder = run.path / "launch"
    folder.mkdir(exist_ok=True)
    ref_path, log_path = folder / REF_FILE, folder / LOG_FILE
    ref_path.unlink(missing_ok=True)
    data_json = atomic_write_json(folder / "data_ref.json", dataclasses.asdict(data))
    cmd = torchrun_command(cfg, run.path, data_json, rdzv_id)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(repo_root()), os.environ.get("PYTHONPATH"))
                                                       if p))
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's own default; set here to keep it quiet
    for old in folder.glob("error_rank*.txt"):
        old.unlink()
    code, tail = _run_logged(cmd, env, log_path)
    if code != 0:
        errors = [p.read_text().strip() for p in sorted(folder.glob("error_rank*.txt"))]
        raise RuntimeError(f"distributed training ({world_size(cfg.launch)} processes) failed with exit code "
                           f"{code}: {'; '.join(errors) or 'see the log'}\nfull log: {log_path}; its end:\n"
                           + "".join(tail))
    if not ref_path.is_file():
        raise RuntimeError(f"distributed training finished but {ref_path} was not written: global rank 0 ran on "
                           f"another node, which holds the checkpoint (log: {log_path})")
    return CheckpointRef(**json.loads(ref_path.read_text()))


def _run_logged(cmd: Sequence[str], env: dict[str, str], log_path: Path) -> tuple[int, list[str]]:
    """Run ``cmd``, copying its output to ``log_path`` and stdout; returns (exit code, last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    with log_path.open("w") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                tail.append(line)
                sys.stdout.write(line)
            return proc.wait(), list(tail)
        finally:
            if proc.poll() is None:  # interrupted: torchrun forwards SIGTERM to its workers
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point on every rank: ``python -m domains.launch RUN_PATH DATA_REF_JSON``."""
    from core.training.distributed import cleanup_distributed, current_info
    from domains import get_domain
    from domains.pipeline import load_run_config

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: torchrun ... -m domains.launch RUN_PATH DATA_REF_JSON")
    run_path, data_json = args
    domain, cfg = load_run_config(run_path)
    data = DatasetRef(**json.loads(Path(data_json).read_text()))
    run = RunDir.open(run_path)
    finished = False
    try:
        ref = get_domain(domain).train(cfg, data, run)
        if current_info().is_main:
            atomic_write_json(run.path / "launch" / REF_FILE, dataclasses.asdict(ref))
        finished = True
    except Exception as exc:  # the parent reports each rank's error first, then the log tail
        rank = os.environ.get("RANK", "?")
        (run.path / "launch" / f"error_rank{rank}.txt").write_text(f"[rank {rank}] {type(exc).__name__}: {exc}\n")
        raise
    finally:
        cleanup_distributed(sync=finished)


if __name__ == "__main__":
    main()
