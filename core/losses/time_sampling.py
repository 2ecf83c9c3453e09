"""Training-time samplers: ``fn(process, batch, generator, device) -> t [B]`` (float64)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.registry import Registry
from core.seeding import Generator, rand, randn

TIME_SAMPLERS: Registry = Registry("time sampler")


def _span(process: ForwardProcess, u: Tensor) -> Tensor:
    return process.t_min + (process.t_max - process.t_min) * u


@TIME_SAMPLERS.register("uniform")
def uniform_time(process: ForwardProcess, batch: int, generator: Generator = None, device: Any = "cpu") -> Tensor:
    return _span(process, rand((batch,), generator, device=device, dtype=torch.float64))


@TIME_SAMPLERS.register("antithetic")
def antithetic_time(process: ForwardProcess, batch: int, generator: Generator = None, device: Any = "cpu") -> Tensor:
    """Stratified ("low-discrepancy") times: ``u_k = (u0 + k / B) mod 1`` — lower-variance loss estimates."""
    u0 = rand((1,), generator, device=device, dtype=torch.float64)
    u = (u0 + torch.arange(batch, device=device, dtype=torch.float64) / batch) % 1.0
    return _span(process, u)


@TIME_SAMPLERS.register("lognormal")
def lognormal_time(process: ForwardProcess, batch: int, generator: Generator = None, device: Any = "cpu",
                   p_mean: float = -1.2, p_std: float = 1.2) -> Tensor:
    """EDM's ``ln σ~ ~ N(P_mean, P_std²)`` with ``σ~ = sigma/alpha``, mapped to ``t`` through the
    process's log-SNR (``λ = -2 ln σ~``) and clipped to ``[t_min, t_max]``."""
    log_sigma = p_mean + p_std * randn((batch,), generator, device=device, dtype=torch.float64)
    t = process.t_from_log_snr(-2.0 * log_sigma)
    return t.clamp(process.t_min, process.t_max)


def make_time_sampler(name: str, **kwargs: Any):
    fn = TIME_SAMPLERS.get(name)
    if not kwargs:
        return fn
    return lambda process, batch, generator=None, device="cpu": fn(process, batch, generator, device, **kwargs)


__all__ = ["TIME_SAMPLERS", "antithetic_time", "lognormal_time", "make_time_sampler", "uniform_time", "math"]
