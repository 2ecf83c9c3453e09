"""Step schedules: functions ``(process, steps) -> ts`` (float64, ``steps + 1`` times from
``t_max`` down to ``t_min``)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers.registry import SCHEDULES


@SCHEDULES.register("uniform")
def uniform(process: ForwardProcess, steps: int, **_: object) -> Tensor:
    """Uniform in ``t``."""
    return torch.linspace(process.t_max, process.t_min, steps + 1, dtype=torch.float64)


@SCHEDULES.register("power")
def power(process: ForwardProcess, steps: int, rho: float = 2.0, **_: object) -> Tensor:
    """Uniform in ``t^(1/rho)``: steps shrink toward ``t_min`` (``rho = 2`` is DDIM's "quadratic"
    skip type, ``rho = 1`` is ``uniform``). Works in ``t`` alone, so it also serves dict processes
    whose leaves have different log-SNR curves (GDSS's X and A), where the log-SNR schedules cannot."""
    if rho <= 0:
        raise ValueError(f"schedule 'power' needs rho > 0, got {rho}")
    t_max, t_min = float(process.t_max), float(process.t_min)
    ramp = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    ts = (t_max ** (1 / rho) + ramp * (t_min ** (1 / rho) - t_max ** (1 / rho))) ** rho
    ts[0], ts[-1] = t_max, t_min
    return ts


def _scalar_log_snr(process: ForwardProcess, t: float) -> float:
    lam = process.log_snr(torch.tensor([t], dtype=torch.float64))
    if isinstance(lam, dict):
        raise ValueError("log-SNR schedules need a single process; use the 'uniform' or 'power' schedule for dict processes")
    return float(lam[0])


@SCHEDULES.register("logsnr")
def logsnr_uniform(process: ForwardProcess, steps: int, **_: object) -> Tensor:
    """Uniform in log-SNR (DPM-Solver's "logSNR" skip type)."""
    lam = torch.linspace(_scalar_log_snr(process, process.t_max), _scalar_log_snr(process, process.t_min),
                         steps + 1, dtype=torch.float64)
    ts = process.t_from_log_snr(lam)
    ts[0], ts[-1] = process.t_max, process.t_min
    return ts


@SCHEDULES.register("karras")
def karras(process: ForwardProcess, steps: int, rho: float = 7.0, **_: object) -> Tensor:
    """Karras et al.: uniform in ``σ~^(1/ρ)`` where ``σ~ = sigma/alpha = exp(-λ/2)``."""
    s_max = torch.exp(torch.tensor(-0.5 * _scalar_log_snr(process, process.t_max), dtype=torch.float64))
    s_min = torch.exp(torch.tensor(-0.5 * _scalar_log_snr(process, process.t_min), dtype=torch.float64))
    ramp = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    sig = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    ts = process.t_from_log_snr(-2.0 * torch.log(sig))
    ts[0], ts[-1] = process.t_max, process.t_min
    return ts


def schedule_parameters(name: str) -> list[str]:
    """The options a registered schedule takes (``rho`` for ``karras`` and ``power``)."""
    params = inspect.signature(SCHEDULES.get(name)).parameters.values()
    return [p.name for p in params if p.name not in ("process", "steps")
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def make_schedule(name: str, process: ForwardProcess, steps: int, **kwargs: object) -> Tensor:
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    check_schedule_options(name, kwargs)
    return SCHEDULES.get(name)(process, steps, **kwargs)


def check_schedule_options(name: str, options: Mapping[str, object]) -> None:
    """Refuse options the schedule does not take, naming the ones it does."""
    known = schedule_parameters(name)
    if unknown := sorted(set(options) - set(known)):
        raise ValueError(f"schedule {name!r} has no option(s) {unknown}; it takes {known or 'none'} "
                         "(sample.schedule_options)")
