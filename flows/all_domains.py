"""The parent flow: several domains, in sequence (default) or concurrently through a task runner."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flows.settings import configure_prefect

configure_prefect()

from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from domains import domain_names  # noqa: E402
from flows.domain_flow import domain_flow  # noqa: E402


@task(name="domain-pipeline", persist_result=False, cache_policy=NO_CACHE)
def domain_pipeline_task(domain: str, preset: str, overrides: Sequence[str], seed: int | None,
                         device: str | None, runs_root: str | None, force: bool = False) -> dict[str, Any]:
    """One domain's whole pipeline as a task (used for concurrent fan-out through a task runner)."""
    from domains.pipeline import run_pipeline

    return run_pipeline(domain, preset, overrides, seed=seed, device=device, runs_root=runs_root, force=force)


@flow(name="diffusci-all", log_prints=True)
def all_domains_flow(domains: Sequence[str] | None = None, preset: str = "smoke", overrides: Sequence[str] = (),
                     seed: int | None = None, device: str | None = None, force: bool = False,
                     runs_root: str | None = None, concurrent: bool = False) -> list[dict[str, Any]]:
    names = list(domains or domain_names())
    if not concurrent:
        return [domain_flow(d, preset, overrides, seed, device, force, runs_root) for d in names]
    futures = [domain_pipeline_task.submit(d, preset, overrides, seed, device, runs_root, force) for d in names]
    return [f.result() for f in futures]


def task_runner(kind: str, address: str | None = None, workers: int = 2) -> Any:
    """A Prefect task runner by name: ``thread`` (default), ``dask`` (local cluster or ``address``), ``ray``."""
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                              "dashboard_address": None})
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as exc:
            raise ImportError("the ray task runner needs `pip install 'diffusci[ray]'`") from exc
        return RayTaskRunner(address=address) if address else RayTaskRunner()
    from core.registry import UnknownNameError

    raise UnknownNameError(f"unknown task runner {kind!r}; valid choices: dask, ray, thread")
