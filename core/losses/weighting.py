"""Loss weightings ``w(process, t) -> [B]`` (or one per field for dict processes), applied to the
per-element squared error of the network's native output before the state space reduces it."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from core.parameterization.preconditioning import edm_loss_weight
from core.processes.base import ForwardProcess
from core.registry import Registry
from core.samplers.spaces import cmap

WEIGHTINGS: Registry = Registry("loss weighting")


def _snr(process: ForwardProcess, t: Tensor) -> Any:
    return cmap(torch.exp, process.log_snr(t))


@WEIGHTINGS.register("none")
def no_weight(process: ForwardProcess, t: Tensor, **_: Any) -> Any:
    return torch.ones_like(t)


@WEIGHTINGS.register("min_snr")
def min_snr(process: ForwardProcess, t: Tensor, gamma: float = 5.0, **_: Any) -> Any:
    """Min-SNR-γ (Hang et al. 2023) for ε-prediction: ``min(SNR, γ) / SNR``."""
    return cmap(lambda snr: snr.clamp_max(gamma) / snr, _snr(process, t))


@WEIGHTINGS.register("snr")
def snr_weight(process: ForwardProcess, t: Tensor, **_: Any) -> Any:
    """``SNR(t)``: turns an ε-loss into an x0-loss."""
    return _snr(process, t)


@WEIGHTINGS.register("likelihood")
def likelihood_weight(process: ForwardProcess, t: Tensor, **_: Any) -> Any:
    """``g(t)^2 / sigma(t)^2`` on an ε-loss: the score-matching bound on the likelihood (score SDE)."""
    return process.diffusion_sq(t) / (process.sigma(t) * process.sigma(t))


@WEIGHTINGS.register("edm")
def edm_weight(process: ForwardProcess, t: Tensor, sigma_data: float = 0.5, **_: Any) -> Any:
    """EDM's ``λ(σ) = (σ² + σd²) / (σ σd)²`` on an x0-loss, with ``σ = sigma/alpha``."""
    return cmap(lambda s: edm_loss_weight(s, sigma_data), process.sigma(t) / process.alpha(t))
