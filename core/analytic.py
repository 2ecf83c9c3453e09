"""Closed-form oracles: Gaussian mixtures with diagonal covariances.

For ``x_t = a x0 + s eps`` and ``x0 ~ Σ_k π_k N(μ_k, diag(v_k))`` everything is exact:

    p(x_t | k)       = N(a μ_k, a² v_k + s²)
    E[x0 | x_t, k]   = μ_k + a v_k (x_t - a μ_k) / (a² v_k + s²)
    E[x0 | x_t]      = Σ_k w_k(x_t) E[x0 | x_t, k],   w_k ∝ π_k p(x_t | k)

so :meth:`GaussianMixture.denoiser` gives the true ``x0_hat`` for any process: it drives every
sampler in the oracle tests and benchmarks without training.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.seeding import Generator, rand, randn


class GaussianMixture:
    def __init__(self, means: Tensor, variances: Tensor | float, weights: Tensor | None = None) -> None:
        self.means = means.to(torch.float64)  # [K, D]
        k, d = self.means.shape
        v = torch.as_tensor(variances, dtype=torch.float64)
        self.variances = v.expand(k, d).clone() if v.ndim < 2 else v.clone()
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None else weights.to(torch.float64)
        self.weights = w / w.sum()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def ring2d(cls, k: int = 8, radius: float = 2.0, std: float = 0.2) -> GaussianMixture:
        ang = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k)
        return cls(torch.stack([radius * ang.cos(), radius * ang.sin()], 1), std**2)

    @classmethod
    def random(cls, k: int, dim: int, seed: int = 0, spread: float = 1.0, std: float = 0.3) -> GaussianMixture:
        g = torch.Generator().manual_seed(seed)
        means = spread * torch.randn(k, dim, generator=g, dtype=torch.float64)
        var = (std * (0.5 + torch.rand(k, dim, generator=g, dtype=torch.float64))) ** 2
        w = 0.5 + torch.rand(k, generator=g, dtype=torch.float64)
        return cls(means, var, w)

    def mean(self) -> Tensor:
        return (self.weights[:, None] * self.means).sum(0)

    def covariance(self) -> Tensor:
        m = self.mean()
        second = sum(w * (torch.diag(v) + torch.outer(mu, mu))
                     for w, mu, v in zip(self.weights, self.means, self.variances, strict=True))
        return second - torch.outer(m, m)

    def sample(self, n: int, generator: Generator = None, dtype: torch.dtype = torch.float32) -> Tensor:
        u = rand((n,), generator, dtype=torch.float64)
        comp = torch.searchsorted(torch.cumsum(self.weights, 0), u).clamp_max(len(self.weights) - 1)
        z = randn((n, self.dim), generator, dtype=torch.float64)
        return (self.means[comp] + self.variances[comp].sqrt() * z).to(dtype)

    def component_log_prob(self, x: Tensor, a: Tensor | float = 1.0, s: Tensor | float = 0.0) -> Tensor:
        """``log π_k + log N(x; a μ_k, a² v_k + s²)`` for every sample and component: ``[B, K]``."""
        x = x.to(torch.float64).reshape(x.shape[0], -1)
        a = torch.as_tensor(a, dtype=torch.float64).reshape(-1, 1, 1)
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1, 1, 1)
        var = a * a * self.variances[None] + s * s  # [B|1, K, D]
        diff = x[:, None, :] - a * self.means[None]
        ll = -0.5 * (diff * diff / var + torch.log(2 * math.pi * var)).sum(-1)
        return ll + torch.log(self.weights)[None]

    def log_prob(self, x: Tensor, a: Tensor | float = 1.0, s: Tensor | float = 0.0) -> Tensor:
        """Log-density of ``x`` under the mixture (perturbed to ``a x0 + s eps`` when given)."""
        return torch.logsumexp(self.component_log_prob(x, a, s), dim=1)

    def posterior_mean(self, x: Tensor, a: Tensor, s: Tensor) -> Tensor:
        shape, dtype = x.shape, x.dtype
        xf = x.to(torch.float64).reshape(shape[0], -1)
        a3 = a.to(torch.float64).reshape(-1, 1, 1)
        s3 = s.to(torch.float64).reshape(-1, 1, 1)
        w = torch.softmax(self.component_log_prob(xf, a3.flatten(), s3.flatten()), dim=1)  # [B, K]
        var = self.variances[None]
        gain = a3 * var / (a3 * a3 * var + s3 * s3)
        mk = self.means[None] + gain * (xf[:, None, :] - a3 * self.means[None])
        return (w[..., None] * mk).sum(1).reshape(shape).to(dtype)

    def denoiser(self, process: ForwardProcess) -> ExactDenoiser:
        return ExactDenoiser(self, process)


class ExactDenoiser:
    """``x0_hat = E[x0 | x_t]`` under a :class:`GaussianMixture`: the ideal denoiser."""

    def __init__(self, gmm: GaussianMixture, process: ForwardProcess) -> None:
        self.gmm, self.process = gmm, process

    def __call__(self, x: Tensor, t: Tensor, cond: object = None) -> Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        return self.gmm.posterior_mean(x, self.process.alpha(t), self.process.sigma(t))
