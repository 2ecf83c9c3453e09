"""Stochastic interpolants with a Gaussian base: linear (rectified flow) and trigonometric.

``x_t = alpha(t) x0 + sigma(t) eps`` with ``t = 0`` data and ``t = 1`` noise (the flow-matching
convention ``t' = 1 - t`` is converted only at the boundary of flow-matching code). ``t_max`` stays
just below 1 so the SDE drift ``alpha'/alpha`` is finite; ODE samplers may start at 1.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.processes.registry import PROCESSES


@PROCESSES.register("linear")
class LinearInterpolant(ForwardProcess):
    """Rectified flow: ``alpha = 1 - t``, ``sigma = t``."""

    def __init__(self, t_min: float = 1e-3, t_max: float = 0.999) -> None:
        self.t_min, self.t_max = float(t_min), float(t_max)

    def alpha(self, t: Tensor) -> Tensor:
        return 1.0 - t

    def sigma(self, t: Tensor) -> Tensor:
        return t.clone()

    def d_alpha(self, t: Tensor) -> Tensor:
        return -torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        return torch.sigmoid(-0.5 * lam.to(torch.float64))


@PROCESSES.register("trig")
class TrigInterpolant(ForwardProcess):
    """``alpha = cos(π t / 2)``, ``sigma = sin(π t / 2)`` (variance preserving)."""

    def __init__(self, t_min: float = 1e-3, t_max: float = 0.999) -> None:
        self.t_min, self.t_max = float(t_min), float(t_max)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        return torch.atan(torch.exp(-0.5 * lam.to(torch.float64))) * (2.0 / math.pi)
