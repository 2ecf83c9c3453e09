"""Variance-preserving processes: linear (score SDE / DDPM) and cosine schedules, continuous and
discrete (DDPM-compatible ``alphas_cumprod``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.processes.registry import PROCESSES


@PROCESSES.register("vp")
class VPLinear(ForwardProcess):
    """``beta(t) = beta_min + t (beta_max - beta_min)``; ``alpha = exp(-∫beta / 2)``, ``sigma = sqrt(1 - alpha^2)``."""

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> None:
        self.beta_min, self.beta_max, self.t_min = float(beta_min), float(beta_max), float(t_min)
        self.t_max = 1.0

    def log_alpha(self, t: Tensor) -> Tensor:
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def beta(self, t: Tensor) -> Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def d_alpha(self, t: Tensor) -> Tensor:
        return -0.5 * self.beta(t) * self.alpha(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        a = self.alpha(t)
        return 0.5 * self.beta(t) * a * a / self.sigma(t)

    def log_snr(self, t: Tensor) -> Tensor:
        la = self.log_alpha(t)
        return 2.0 * la - torch.log(-torch.expm1(2.0 * la))

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        # log_alpha = -0.5 softplus(-lam); solve the quadratic in t.
        lam = lam.to(torch.float64)
        la = -0.5 * torch.nn.functional.softplus(-lam)
        db = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 - 4.0 * db * la)) / db


@PROCESSES.register("vp_cosine")
class VPCosine(ForwardProcess):
    """Improved-DDPM cosine schedule ``alpha(t) = cos((t+s)/(1+s) π/2) / cos(s/(1+s) π/2)``."""

    def __init__(self, s: float = 0.008, t_min: float = 1e-3, t_max: float = 0.9946) -> None:
        self.s, self.t_min, self.t_max = float(s), float(t_min), float(t_max)

    def _phase(self, t: Tensor) -> Tensor:
        return (t + self.s) / (1.0 + self.s) * (math.pi / 2)

    def alpha(self, t: Tensor) -> Tensor:
        return torch.cos(self._phase(t)) / math.cos(self.s / (1 + self.s) * math.pi / 2)

    def sigma(self, t: Tensor) -> Tensor:
        a = self.alpha(t)
        return torch.sqrt((1.0 - a * a).clamp_min(1e-20))

    def d_alpha(self, t: Tensor) -> Tensor:
        c = math.cos(self.s / (1 + self.s) * math.pi / 2)
        return -torch.sin(self._phase(t)) * (math.pi / 2) / (1.0 + self.s) / c

    def d_sigma(self, t: Tensor) -> Tensor:
        return -self.alpha(t) * self.d_alpha(t) / self.sigma(t)


@PROCESSES.register("vp_discrete")
class VPDiscrete(ForwardProcess):
    """DDPM's discrete chain: ``alphas_cumprod`` from ``N`` betas, step ``i`` at ``t_i = (i + 1) / N``.

    ``log alpha`` is interpolated piecewise-linearly between the steps (as DPM-Solver does), so every
    continuous-time sampler runs on a model trained with the discrete chain, and the ancestral
    sampler on the grid ``t_i`` is exactly DDPM.
    """

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 schedule: str = "linear") -> None:
        self.num_steps, self.beta_start, self.beta_end, self.schedule = int(num_steps), beta_start, beta_end, schedule
        n = self.num_steps
        if schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, n, dtype=torch.float64)
        elif schedule == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, n, dtype=torch.float64) ** 2
        else:
            raise ValueError(f"unknown discrete schedule {schedule!r}; valid choices: linear, scaled_linear")
        self._log_alpha = 0.5 * torch.cumsum(torch.log1p(-betas), 0)
        self._ts = torch.arange(1, n + 1, dtype=torch.float64) / n
        self.t_min, self.t_max = 1.0 / n, 1.0

    def grid(self) -> Tensor:
        """The discrete times ``t_i`` (ascending)."""
        return self._ts.clone()

    def _interp(self, t: Tensor) -> tuple[Tensor, Tensor]:
        ts, la = self._ts.to(t.device), self._log_alpha.to(t.device)
        tc = t.clamp(ts[0], ts[-1])
        i = torch.searchsorted(ts, tc.contiguous()).clamp(1, len(ts) - 1)
        slope = (la[i] - la[i - 1]) / (ts[i] - ts[i - 1])
        return la[i - 1] + slope * (tc - ts[i - 1]), slope

    def alpha(self, t: Tensor) -> Tensor:
        return torch.exp(self._interp(t)[0])

    def sigma(self, t: Tensor) -> Tensor:
        return torch.sqrt(-torch.expm1(2.0 * self._interp(t)[0]))

    def d_alpha(self, t: Tensor) -> Tensor:
        la, slope = self._interp(t)
        return slope * torch.exp(la)

    def d_sigma(self, t: Tensor) -> Tensor:
        a = self.alpha(t)
        return -a * self.d_alpha(t) / self.sigma(t)

    def config(self) -> dict:
        return {"num_steps": self.num_steps, "beta_start": self.beta_start, "beta_end": self.beta_end,
                "schedule": self.schedule}
