"""Variance-exploding and sub-VP processes (score SDE)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.processes.registry import PROCESSES
from core.processes.vp import VPLinear


@PROCESSES.register("ve")
class VE(ForwardProcess):
    """``alpha = 1``, ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``."""

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, t_min: float = 0.0) -> None:
        if not 0 < sigma_min < sigma_max:
            raise ValueError(f"VE needs 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
        self.sigma_min, self.sigma_max, self.t_min = float(sigma_min), float(sigma_max), float(t_min)
        self.t_max = 1.0

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return self.sigma(t) * math.log(self.sigma_max / self.sigma_min)

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        s = torch.exp(-0.5 * lam.to(torch.float64))
        return torch.log(s / self.sigma_min) / math.log(self.sigma_max / self.sigma_min)


@PROCESSES.register("subvp")
class SubVP(VPLinear):
    """sub-VP: the VP drift with ``g^2 = beta (1 - exp(-2∫beta))``; ``sigma = 1 - alpha^2``."""

    def sigma(self, t: Tensor) -> Tensor:
        return -torch.expm1(2.0 * self.log_alpha(t))

    def d_sigma(self, t: Tensor) -> Tensor:
        a = self.alpha(t)
        return self.beta(t) * a * a

    def log_snr(self, t: Tensor) -> Tensor:
        return 2.0 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        return ForwardProcess.t_from_log_snr(self, lam)
