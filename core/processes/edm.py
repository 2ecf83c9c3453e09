"""EDM's σ-parameterisation (Karras et al. 2022): ``alpha = 1`` and

    sigma(t) = (sigma_min^(1/rho) + t (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho,

so a uniform grid in ``t`` is the Karras step schedule. ``sigma_data`` feeds the preconditioning.
"""

from __future__ import annotations

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.processes.registry import PROCESSES


@PROCESSES.register("edm")
class EDM(ForwardProcess):
    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                 sigma_data: float = 0.5) -> None:
        self.sigma_min, self.sigma_max, self.rho, self.sigma_data = float(sigma_min), float(sigma_max), float(rho), float(sigma_data)
        self.t_min, self.t_max = 0.0, 1.0

    def _base(self, t: Tensor) -> Tensor:
        a, b = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return a + t * (b - a)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def sigma(self, t: Tensor) -> Tensor:
        return self._base(t) ** self.rho

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.zeros_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        a, b = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return self.rho * self._base(t) ** (self.rho - 1) * (b - a)

    def t_from_sigma(self, sigma: Tensor) -> Tensor:
        a, b = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return (sigma.to(torch.float64) ** (1 / self.rho) - a) / (b - a)

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        return self.t_from_sigma(torch.exp(-0.5 * lam.to(torch.float64)))
