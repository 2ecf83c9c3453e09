"""The generic domain flow: ingest → train → sample → validate, for any registered domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.settings import configure_prefect

configure_prefect()

from prefect import flow  # noqa: E402
from prefect.runtime import flow_run  # noqa: E402

from domains import pipeline  # noqa: E402
from flows.tasks import (  # noqa: E402
    ingest_task,
    merge_samples_task,
    publish_task,
    record_cached_task,
    sample_shard_task,
    sample_task,
    train_task,
    validate_task,
)


def _run(task: Any, force: bool, run_path: str, stage: str, *args: Any) -> Any:
    """Run a cached stage; when the result came from the cache, record it in this run."""
    state = task.with_options(refresh_cache=force or None)(run_path, *args, return_state=True)
    ref = state.result()
    if state.name == "Cached":
        record_cached_task(run_path, stage, ref)
    return ref


def run_stages(run_path: str, force: bool = False) -> dict[str, Any]:
    """The stages of one run (inside a flow): cached ingest/train, sharded or plain sampling."""
    data = _run(ingest_task, force, run_path, "ingest")
    ckpt = _run(train_task, force, run_path, "train", data)
    bounds = pipeline.shard_bounds(run_path)
    if len(bounds) > 1:
        pipeline.mark_running(run_path, "sample")
        futures = [sample_shard_task.submit(run_path, ckpt, a, b) for a, b in bounds]
        samples = merge_samples_task(run_path, ckpt, [f.result() for f in futures])
    else:
        samples = sample_task(run_path, ckpt)
    metrics = validate_task(run_path, samples, data)
    publish_task(run_path, metrics)
    return pipeline.summarise(pipeline.load_run_config(run_path)[0], run_path, metrics)


@flow(name="diffusci-domain", log_prints=True)
def domain_flow(domain: str, preset: str = "smoke", overrides: Sequence[str] = (), seed: int | None = None,
                device: str | None = None, force: bool = False, runs_root: str | None = None) -> dict[str, Any]:
    cfg = pipeline.resolve_config(domain, preset, overrides, seed, device)
    run_path = pipeline.start_run(domain, cfg, runs_root=runs_root, flow_run_id=str(flow_run.id),
                                  invocation={"preset": preset, "overrides": list(overrides), "seed": seed,
                                              "device": device, "force": force})
    return run_stages(run_path, force)


@flow(name="diffusci-rerun", log_prints=True)
def rerun_flow(domain: str, config: dict[str, Any], runs_root: str | None = None,
               invocation: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh run of a recorded, fully resolved config (``diffusci reproduce``); never uses caches."""
    run_path = pipeline.start_run(domain, config, runs_root=runs_root, flow_run_id=str(flow_run.id),
                                  invocation={**(invocation or {}), "force": True})
    return run_stages(run_path, force=True)
