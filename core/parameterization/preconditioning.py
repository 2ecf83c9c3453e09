"""EDM preconditioning (Karras et al. 2022, Table 1), generalised to ``alpha != 1``.

With ``x~ = x / alpha`` and ``sigma~ = sigma / alpha`` the process is a pure σ-process, and

    D(x, σ) = c_skip(σ) x~ + c_out(σ) F(c_in(σ) x~, c_noise(σ))
    c_skip = σd² / (σ² + σd²),  c_out = σ σd / sqrt(σ² + σd²),
    c_in   = 1 / sqrt(σ² + σd²), c_noise = ln(σ) / 4.

At σ → 0, ``c_skip → 1`` and ``c_out → 0``: the denoiser is the identity whatever F outputs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class EDMCoefficients(NamedTuple):
    c_skip: Tensor
    c_out: Tensor
    c_in: Tensor
    c_noise: Tensor


def edm_coefficients(sigma: Tensor, sigma_data: float) -> EDMCoefficients:
    s2, d2 = sigma * sigma, sigma_data * sigma_data
    return EDMCoefficients(
        c_skip=d2 / (s2 + d2),
        c_out=sigma * sigma_data / torch.sqrt(s2 + d2),
        c_in=1.0 / torch.sqrt(s2 + d2),
        c_noise=0.25 * torch.log(sigma.clamp_min(1e-20)),
    )


def edm_loss_weight(sigma: Tensor, sigma_data: float) -> Tensor:
    """``λ(σ) = (σ² + σd²) / (σ σd)²``: makes the x0-loss of a preconditioned net unit-variance."""
    return (sigma * sigma + sigma_data**2) / (sigma * sigma_data) ** 2
