"""The forward-process contract.

Every process is Gaussian given the data: ``x_t = alpha(t) x0 + sigma(t) eps``. A process supplies
``alpha``, ``sigma`` and their time derivatives; everything else (log-SNR, perturbation, the forward
SDE, inversion of the log-SNR) follows here, once. For a marginal of this form the forward SDE is

    dx = f(t) x dt + g(t) dW,   f = alpha'/alpha,   g^2 = d(sigma^2)/dt - 2 f sigma^2,

which recovers the VP, VE and sub-VP SDEs of score SDE exactly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from core.seeding import Generator, randn, randn_like
from core.tensor_utils import bcast
from core.types import State


def as_time(t: Tensor | float, like: Tensor | None = None) -> Tensor:
    if isinstance(t, Tensor):
        return t.to(torch.float64)
    device = like.device if like is not None else "cpu"
    return torch.as_tensor(t, dtype=torch.float64, device=device)


class ForwardProcess(ABC):
    """A Gaussian forward process on ``t in [t_min, t_max] ⊂ [0, 1]``."""

    #: smallest time samplers integrate down to (data side)
    t_min: float = 1e-3
    #: largest time samplers start from (prior side)
    t_max: float = 1.0

    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def d_alpha(self, t: Tensor) -> Tensor: ...

    @abstractmethod
    def d_sigma(self, t: Tensor) -> Tensor: ...

    # ---- derived quantities -------------------------------------------------------------
    def marginal(self, t: Tensor) -> tuple[Tensor, Tensor]:
        return self.alpha(t), self.sigma(t)

    def log_snr(self, t: Tensor) -> Tensor:
        """``lambda(t) = log(alpha^2 / sigma^2)``, decreasing in ``t``."""
        return 2.0 * (torch.log(self.alpha(t)) - torch.log(self.sigma(t)))

    def t_from_log_snr(self, lam: Tensor) -> Tensor:
        """Invert :meth:`log_snr` on ``[t_min, t_max]`` (bisection; exact closed forms override)."""
        lam = lam.to(torch.float64)
        lo = torch.full_like(lam, self.t_min)
        hi = torch.full_like(lam, self.t_max)
        for _ in range(64):
            mid = 0.5 * (lo + hi)
            above = self.log_snr(mid) > lam  # log-SNR still too high -> go later in time
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return 0.5 * (lo + hi)

    def drift_coef(self, t: Tensor) -> Tensor:
        """``f(t) = alpha'(t) / alpha(t)``."""
        return self.d_alpha(t) / self.alpha(t)

    def diffusion_sq(self, t: Tensor) -> Tensor:
        """``g(t)^2 = 2 sigma sigma' - 2 f sigma^2``."""
        s = self.sigma(t)
        return (2.0 * s * self.d_sigma(t) - 2.0 * self.drift_coef(t) * s * s).clamp_min(0.0)

    def perturb(self, x0: State, t: Tensor, noise: State) -> State:
        return bcast(self.alpha(t), x0) * x0 + bcast(self.sigma(t), x0) * noise

    def sde(self, x: State, t: Tensor) -> tuple[State, Any]:
        """Forward SDE: ``(drift f(t) x, diffusion g(t))``; ``g`` is broadcast against ``x``."""
        return bcast(self.drift_coef(t), x) * x, bcast(self.diffusion_sq(t).sqrt(), x)

    def prior_std(self) -> float:
        return float(self.sigma(torch.tensor(self.t_max, dtype=torch.float64)))

    def prior_sample(self, shape: Sequence[int] | Mapping[str, Sequence[int]], generator: Generator = None,
                     *, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> State:
        if isinstance(shape, Mapping):
            raise TypeError("dict shapes need a ProcessDict")
        return self.prior_std() * randn(shape, generator, device=device, dtype=dtype)

    def prior_like(self, x: State, generator: Generator = None) -> State:
        return self.prior_std() * randn_like(x, generator)

    def prior_logp(self, x: Tensor) -> Tensor:
        """Log-density of the Gaussian prior, per sample ``[B]``."""
        s = self.prior_std()
        d = x[0].numel()
        return -0.5 * (x.reshape(x.shape[0], -1) ** 2).sum(1) / s**2 - d * math.log(s) - 0.5 * d * math.log(2 * math.pi)

    def config(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this process (for run records)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}
