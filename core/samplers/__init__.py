"""Samplers (registered by name), step schedules and state spaces.

>>> result = sample(denoiser, process, x_init, sampler="dpmpp_2m", steps=10)
>>> result.x, result.nfe
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from core.samplers import ancestral, dpm_solver, graph_space, ode, reverse_diffusion, sde, unipc  # noqa: F401
from core.samplers.base import CountingDenoiser
from core.samplers.registry import SAMPLERS, SCHEDULES
from core.samplers.schedules import check_schedule_options, make_schedule, schedule_parameters
from core.samplers.spaces import EuclideanSpace, InpaintingSpace, MaskedSpace
from core.types import State


@dataclass
class SampleResult:
    x: State
    nfe: int
    ts: torch.Tensor


def sample(denoiser: Callable[..., Any], process: Any, x_init: State, *, sampler: str = "dpmpp_2m",
           steps: int = 20, schedule: str = "logsnr", space: EuclideanSpace | None = None,
           generator: Any = None, callback: Any = None, cond: Any = None, ts: torch.Tensor | None = None,
           schedule_options: Mapping[str, Any] | None = None, **options: Any) -> SampleResult:
    """Run a registered sampler from ``x_init`` (a prior draw) and count network evaluations."""
    fn = SAMPLERS.get(sampler)
    if ts is None:
        ts = make_schedule(schedule, process, steps, **dict(schedule_options or {}))
    counter = CountingDenoiser(denoiser)
    if callable(reset := getattr(denoiser, "reset_self_condition", None)):
        reset()  # a self-conditioned denoiser starts the trajectory without an earlier estimate
    with torch.no_grad():
        x = fn(counter, process, x_init, ts, space=space, generator=generator, callback=callback, cond=cond,
               **options)
    return SampleResult(x=x, nfe=counter.nfe, ts=ts)


__all__ = ["SAMPLERS", "SCHEDULES", "CountingDenoiser", "EuclideanSpace", "InpaintingSpace", "MaskedSpace",
           "SampleResult", "check_schedule_options", "make_schedule", "sample", "schedule_parameters"]
