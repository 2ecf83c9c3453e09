"""Two-sample distances between point clouds ``x [N, D]`` and ``y [M, D]`` (pure torch functions).

Sliced Wasserstein-2 (Rabin et al. 2011; Bonneel et al. 2015)

    SW_2(x, y)^2 = E_θ[ W_2^2(θ·x, θ·y) ],  θ uniform on the unit sphere,

estimated with ``n_proj`` random directions from an explicit generator (same generator state → same
directions, so two samplers compared with equal generators see the same projections). Each 1-D
``W_2^2`` is the mean squared difference of the two empirical quantile functions, evaluated on a
common grid of ``max(N, M)`` mid-point levels (exact when ``N == M``: sort and subtract).

Maximum mean discrepancy with a sum of RBF kernels (Gretton et al. 2012)

    k(a, b) = Σ_h exp(-|a - b|^2 / (2 h^2)),
    MMD^2_u = mean_{i≠j} k(x_i, x_j) + mean_{i≠j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j),

the unbiased estimator (it can be slightly negative when the distributions agree). Kernel sums
are accumulated in row chunks so ``N = 10^4`` needs no ``N x N`` matrix.

Both functions flatten every non-batch dimension, compute in float64 and return a 0-d tensor.

Mixture moment errors (a truth-aware check for oracle tests with a known diagonal Gaussian mixture
``Σ_k π_k N(μ_k, diag v_k)``). With responsibilities ``γ_k(x)`` under the *true* mixture and
standardised residuals ``r_k = (x - μ_k) / sqrt(v_k)``, the identity ``γ_k(x) p(x) = π_k p_k(x)`` gives,
for ``x ~ p`` exactly,

    E[γ_k(x)] = π_k,   E[Σ_k γ_k r_k] = 0,   E[Σ_k γ_k |r_k|² / D] = 1,

however much the components overlap. :func:`mixture_moment_errors` returns the sample deviations
(weight TV, RMS standardised mean, relative within-component variance error); each has a noise
floor of order ``N^{-1/2}`` (the variance error ``sqrt(2 / (N D))``), so it resolves biases far below
what a sliced Wasserstein distance of the same sample sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from core.seeding import randn


def _flat(x: Tensor) -> Tensor:
    return x.reshape(x.shape[0], -1).to(torch.float64)


def _quantiles(sorted_vals: Tensor, levels: Tensor) -> Tensor:
    """Empirical quantile functions of the rows of ``sorted_vals [P, N]`` at ``levels`` (linear
    interpolation between order statistics placed at ``(i + 1/2) / N``)."""
    n = sorted_vals.shape[1]
    pos = (levels * n - 0.5).clamp(0, n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_max(n - 1)
    w = pos - lo.to(pos.dtype)
    return sorted_vals[:, lo] * (1 - w) + sorted_vals[:, hi] * w


def random_directions(dim: int, n_proj: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> Tensor:
    """``n_proj`` directions uniform on the unit sphere of ``R^dim``, as columns ``[dim, n_proj]``."""
    theta = randn((dim, n_proj), generator, device=device, dtype=torch.float64)
    return theta / theta.norm(dim=0, keepdim=True)


def sorted_projections(x: Tensor, theta: Tensor) -> Tensor:
    """``θ_p · x_i`` sorted over the samples: ``[P, N]`` (cache it for a fixed reference sample)."""
    return torch.sort((_flat(x).to(theta.device) @ theta).T.contiguous(), dim=1).values


def sliced_wasserstein_sorted(px: Tensor, py: Tensor) -> Tensor:
    """``SW_2`` from two :func:`sorted_projections` made with the same directions."""
    if px.shape[1] != py.shape[1]:
        n = max(px.shape[1], py.shape[1])
        levels = (torch.arange(n, dtype=torch.float64, device=px.device) + 0.5) / n
        px, py = _quantiles(px, levels), _quantiles(py, levels)
    return ((px - py) ** 2).mean().sqrt()


def sliced_wasserstein(x: Tensor, y: Tensor, n_proj: int = 256,
                       generator: torch.Generator | None = None) -> Tensor:
    """Sliced Wasserstein-2 distance ``SW_2(x, y)`` (same units as the data)."""
    x, y = _flat(x), _flat(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: {x.shape[1]} vs {y.shape[1]}")
    theta = random_directions(x.shape[1], n_proj, generator, x.device)
    return sliced_wasserstein_sorted(sorted_projections(x, theta), sorted_projections(y, theta))


def _kernel_sum(a: Tensor, b: Tensor, bandwidths: Tensor, chunk: int) -> Tensor:
    """``Σ_{i,j} k(a_i, b_j)`` with ``k`` the sum of RBF kernels."""
    total = torch.zeros((), dtype=torch.float64, device=a.device)
    b2 = (b * b).sum(1)
    for start in range(0, a.shape[0], chunk):
        ac = a[start:start + chunk]
        d2 = ((ac * ac).sum(1)[:, None] + b2[None] - 2.0 * ac @ b.T).clamp_min(0.0)
        for h in bandwidths:
            total = total + torch.exp(d2 / (-2.0 * h * h)).sum()
    return total


def mmd_rbf(x: Tensor, y: Tensor, bandwidths: Sequence[float] = (0.5, 1.0, 2.0, 4.0),
            chunk: int = 1024) -> Tensor:
    """Unbiased ``MMD^2`` between ``x`` and ``y`` with a sum of RBF kernels of the given widths."""
    x, y = _flat(x), _flat(y).to(x.device)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least two points on each side")
    h = torch.as_tensor(list(bandwidths), dtype=torch.float64, device=x.device)
    diag = float(len(h))  # k(a, a) = number of kernels
    kxx = (_kernel_sum(x, x, h, chunk) - n * diag) / (n * (n - 1))
    kyy = (_kernel_sum(y, y, h, chunk) - m * diag) / (m * (m - 1))
    kxy = _kernel_sum(x, y, h, chunk) / (n * m)
    return kxx + kyy - 2.0 * kxy


class MixtureErrors(NamedTuple):
    weight_tv: Tensor  # ½ Σ_k |mean γ_k - π_k|
    mean_rms: Tensor  # |mean_i Σ_k γ_k r_k| / sqrt(D)
    var_err: Tensor  # mean_i Σ_k γ_k |r_k|² / D - 1 (signed)


def mixture_moment_errors(x: Tensor, means: Tensor, variances: Tensor, weights: Tensor) -> MixtureErrors:
    """Deviations of ``x [N, ...]`` from the moments of a known diagonal Gaussian mixture
    (``means, variances [K, D]``, ``weights [K]``); all zero in expectation for exact samples."""
    x = _flat(x)
    mu, var = means.to(x), variances.to(x).expand_as(means)
    w = weights.to(x) / weights.sum()
    z2 = (x[:, None, :] - mu[None]) ** 2 / var[None]  # [N, K, D]
    logp = torch.log(w)[None] - 0.5 * (z2 + torch.log(2 * math.pi * var)[None]).sum(-1)
    gamma = torch.softmax(logp, dim=1)  # [N, K]
    r = (x[:, None, :] - mu[None]) / var[None].sqrt()
    d = x.shape[1]
    return MixtureErrors(
        weight_tv=0.5 * (gamma.mean(0) - w).abs().sum(),
        mean_rms=(gamma[..., None] * r).sum(1).mean(0).norm() / math.sqrt(d),
        var_err=(gamma * z2.sum(-1)).sum(1).mean() / d - 1.0,
    )


__all__ = ["MixtureErrors", "mixture_moment_errors", "mmd_rbf", "random_directions", "sliced_wasserstein",
           "sliced_wasserstein_sorted", "sorted_projections"]
