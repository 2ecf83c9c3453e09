"""Prefect tasks: one per pipeline stage, each a single call into :mod:`domains.pipeline`.

Tasks pass run paths and small frozen refs, never tensors. Ingest and training results are cached
across runs under a key built from the catalog entry checksum, the hash of the config sections the
stage depends on, and the code version; ``force=True`` in the flow refreshes them. Only ingest
retries (its I/O can fail transiently); training never retries — a rerun resumes from its last
checkpoint instead.
"""

from __future__ import annotations

from typing import Any

from flows.settings import configure_prefect

configure_prefect()

from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from core.provenance import code_version  # noqa: E402
from domains import pipeline  # noqa: E402


def _stage_key(stage: str, run_path: str, upstream: str) -> str:
    domain, cfg = pipeline.load_run_config(run_path)
    from domains import get_domain

    dom = get_domain(domain)
    return f"diffusci-{domain}-{stage}-{upstream[:16]}-{dom.stage_hash(cfg, stage)[:16]}-{code_version()}"


def ingest_key(context: Any, params: dict[str, Any]) -> str:
    from core.catalog import entry_checksum

    domain, cfg = pipeline.load_run_config(params["run_path"])
    from domains import get_domain

    return _stage_key("ingest", params["run_path"], entry_checksum(get_domain(domain).entry(cfg)))


def train_key(context: Any, params: dict[str, Any]) -> str:
    return _stage_key("train", params["run_path"], params["data"].sha256)


@task(name="ingest", retries=2, retry_delay_seconds=2, cache_key_fn=ingest_key, persist_result=True)
def ingest_task(run_path: str) -> Any:
    return pipeline.run_stage("ingest", run_path)


@task(name="train", retries=0, cache_key_fn=train_key, persist_result=True)
def train_task(run_path: str, data: Any) -> Any:
    return pipeline.run_stage("train", run_path, data)


@task(name="sample", persist_result=False, cache_policy=NO_CACHE)
def sample_task(run_path: str, ckpt: Any) -> Any:
    return pipeline.run_stage("sample", run_path, ckpt)


@task(name="sample-shard", persist_result=False, cache_policy=NO_CACHE)
def sample_shard_task(run_path: str, ckpt: Any, start: int, stop: int) -> str:
    return pipeline.sample_shard(run_path, ckpt, start, stop)


@task(name="merge-samples", persist_result=False, cache_policy=NO_CACHE)
def merge_samples_task(run_path: str, ckpt: Any, shards: list[str]) -> Any:
    return pipeline.merge_shards(run_path, ckpt, shards)


@task(name="validate", persist_result=False, cache_policy=NO_CACHE)
def validate_task(run_path: str, samples: Any, data: Any) -> dict[str, Any]:
    return pipeline.run_stage("validate", run_path, samples, data)


@task(name="record-cached", persist_result=False, cache_policy=NO_CACHE)
def record_cached_task(run_path: str, stage: str, ref: Any) -> None:
    pipeline.record_result(run_path, stage, ref, cached=True)


@task(name="publish", persist_result=False, cache_policy=NO_CACHE)
def publish_task(run_path: str, metrics: dict[str, Any]) -> dict[str, Any]:
    from flows.artifacts import publish

    return publish(run_path, metrics)
