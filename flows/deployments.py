"""Scheduled domain runs: ``diffusci serve --config schedules.yaml``.

The YAML lists deployments of the generic domain flow, each with a ``cron`` or an ``interval``
(seconds) schedule::

    limit: 1                      # optional: at most this many runs at once in this process
    deployments:
      - name: toy-nightly
        domain: toy
        preset: smoke
        overrides: [train.steps=1500]
        cron: "0 3 * * *"
        timezone: UTC

Everything is validated before anything is registered (unknown keys, schedules, domains, presets and
overrides are errors that name the key). :func:`serve_schedules` then registers one deployment per
entry and serves them until interrupted: scheduled runs execute in subprocesses of this process.

Serving needs a real Prefect server (the embedded, per-process ephemeral server disappears with the
process and has no scheduler): ``prefect server start`` and ``PREFECT_API_URL=http://127.0.0.1:4200/api``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator, model_validator

from core.config import ConfigError, ConfigModel, validate_config
from flows.settings import configure_prefect

configure_prefect()

START_SERVER_HINT = ("start one with `prefect server start` (add `--host 0.0.0.0` to reach it from other machines) "
                     "and point diffusci at it: export PREFECT_API_URL=http://127.0.0.1:4200/api")


class ServeError(ValueError):
    """Serving is impossible as configured (no real Prefect server, server unreachable)."""


class ScheduledRun(ConfigModel):
    """One deployment: which domain run, and when."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    domain: str
    preset: str = "smoke"
    overrides: list[str] = Field(default_factory=list)
    cron: str | None = None
    interval: float | None = Field(None, gt=0, description="seconds between runs")
    timezone: str | None = None
    seed: int | None = None
    device: Literal["auto", "cpu", "cuda"] | None = None
    force: bool = False
    runs_root: str | None = None
    paused: bool = False
    concurrency_limit: int | None = Field(None, ge=1, description="at most this many runs of it at once")
    description: str | None = None
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_schedule(self) -> ScheduledRun:
        if (self.cron is None) == (self.interval is None):
            raise ValueError(f"deployment {self.name!r}: set exactly one of 'cron' or 'interval' (seconds)")
        if self.cron is not None:
            from prefect.client.schemas.schedules import CronSchedule

            try:
                CronSchedule(cron=self.cron, timezone=self.timezone)
            except ValueError as exc:
                raise ValueError(f"deployment {self.name!r}: invalid 'cron' {self.cron!r} or 'timezone' "
                                 f"{self.timezone!r}: {exc}") from None
        return self

    def parameters(self) -> dict[str, Any]:
        """The ``domain_flow`` parameters of this deployment's runs."""
        return {"domain": self.domain, "preset": self.preset, "overrides": list(self.overrides),
                "seed": self.seed, "device": self.device, "force": self.force, "runs_root": self.runs_root}


class Schedules(ConfigModel):
    """The whole file."""

    limit: int | None = Field(None, ge=1, description="at most this many flow runs at once (all deployments)")
    deployments: list[ScheduledRun] = Field(min_length=1)

    @field_validator("deployments")
    @classmethod
    def _unique(cls, v: list[ScheduledRun]) -> list[ScheduledRun]:
        names = [d.name for d in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique; repeated: {', '.join(dupes)}")
        return v


def load_schedules(path: str | Path) -> Schedules:
    """Read and validate a schedules file, including each entry's domain, preset and overrides."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"schedules file {path} not found (see schedules.yaml at the repository root)")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'deployments' list, got {type(data).__name__}")
    schedules = validate_config(Schedules, data, str(path))
    from domains import get_domain

    for i, d in enumerate(schedules.deployments):
        try:
            get_domain(d.domain).load_config(d.preset, d.overrides)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{path}: deployments[{i}] ({d.name}): {exc}") from None
    return schedules


def require_server(timeout: float = 5.0) -> str:
    """The URL of the real Prefect server this process talks to; a :class:`ServeError` otherwise."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ServeError("`diffusci serve` needs a real Prefect server, but PREFECT_API_URL is not set (runs would "
                         "go to a temporary per-process server that has no scheduler and vanishes on exit); "
                         + START_SERVER_HINT)
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=timeout).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServeError(f"cannot reach the Prefect server at PREFECT_API_URL={url} ({exc}); "
                         + START_SERVER_HINT) from None
    return url


def build_deployments(schedules: Schedules) -> list[Any]:
    """One ``RunnerDeployment`` of :func:`flows.domain_flow.domain_flow` per entry."""
    from prefect.types.entrypoint import EntrypointType

    from flows.domain_flow import domain_flow

    out = []
    for d in schedules.deployments:
        timing: dict[str, Any] = {"cron": d.cron} if d.cron is not None else {"interval": d.interval}
        if d.cron is not None and d.timezone:
            from prefect.client.schemas.schedules import CronSchedule

            timing = {"schedule": CronSchedule(cron=d.cron, timezone=d.timezone)}
        out.append(domain_flow.to_deployment(
            name=d.name, parameters=d.parameters(), paused=d.paused, concurrency_limit=d.concurrency_limit,
            description=d.description or f"{d.domain} ({d.preset}) on a schedule", tags=["diffusci", d.domain, *d.tags],
            entrypoint_type=EntrypointType.MODULE_PATH, **timing))
    return out


def describe(schedules: Schedules) -> list[str]:
    return [f"{d.name}: {d.domain} ({d.preset}"
            + (f", {' '.join(d.overrides)}" if d.overrides else "") + ") "
            + (f"cron {d.cron!r}" + (f" {d.timezone}" if d.timezone else "") if d.cron else f"every {d.interval:g} s")
            for d in schedules.deployments]


def serve_schedules(config_path: str | Path) -> None:
    """Validate ``config_path``, check the server, register the deployments and serve them (blocks)."""
    from prefect import serve

    schedules = load_schedules(config_path)
    url = require_server()
    deployments = build_deployments(schedules)
    print(f"serving {len(deployments)} deployment(s) against {url}:", *describe(schedules), sep="\n  ", flush=True)
    serve(*deployments, limit=schedules.limit, print_starting_message=False)
