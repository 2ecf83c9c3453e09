"""The diffusion training loss of ``medseg``: the core denoising loss in x0 space plus mask terms.

Diffusion segmentation models (Diff-UNet, MedSegDiff, the HNC PET/CT paper) supervise the predicted
mask ``x0_hat = D(x_t, t, image)`` with segmentation losses on top of the denoising MSE. With the
state ``x0 = 2 m - 1`` the predicted foreground probability is ``p = (x0_hat + 1) / 2`` (clipped to
``(0, 1)``), and the loss per sample is

    mse · w(σ) ‖x0_hat - x0‖²  +  bce · BCE(p, m)  +  dice · (1 - softDice(p, m))

where ``w`` is EDM's ``λ(σ)`` under ``edm`` preconditioning (exactly the core loss then) and 1 for the
other parameterisations (an x0-space loss). BCE is a proper scoring rule, so its minimiser is still
the posterior mean the samplers need; the Dice term sharpens the prediction where the image decides
the mask. Noise levels come from a core time sampler with the options of ``mask_loss.time_options``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from core.losses import make_time_sampler
from core.parameterization.preconditioning import edm_loss_weight
from core.seeding import Generator, randn
from core.tensor_utils import bcast
from domains.medseg.config import MaskLossConfig

_EPS = 1e-4


def soft_dice_loss(p: Tensor, m: Tensor, smooth: float = 1.0) -> Tensor:
    """``1 - (2 |p m| + s) / (|p| + |m| + s)`` per sample and channel, averaged over channels: ``[B]``."""
    inter = (p * m).flatten(2).sum(-1)
    total = (p + m).flatten(2).sum(-1)
    return (1.0 - (2.0 * inter + smooth) / (total + smooth)).mean(1)


class MaskDenoisingLoss:
    """``loss(model, x0, cond, generator) -> [B]`` (the core loss contract) for masks in {-1, +1}."""

    def __init__(self, time_sampler: str, cfg: MaskLossConfig) -> None:
        self.cfg = cfg
        self.sample_time = make_time_sampler(time_sampler, **cfg.time_options)

    def __call__(self, model: Any, x0: Tensor, cond: Any = None, generator: Generator = None) -> Tensor:
        if x0.ndim < 3:
            raise ValueError(f"mask loss expects [B, R, *spatial] masks, got {tuple(x0.shape)}")
        process, c = model.process, self.cfg
        t = self.sample_time(process, x0.shape[0], generator, x0.device)
        noise = randn(tuple(x0.shape), generator, device=x0.device, dtype=x0.dtype)
        x_hat = model(process.perturb(x0, t, noise).to(x0.dtype), t, cond)
        out = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
        if c.mse > 0:
            w = torch.ones_like(t)
            if getattr(model, "prediction", "") == "edm":
                w = edm_loss_weight(process.sigma(t) / process.alpha(t), model.sigma_data)
            err = (x_hat - x0) ** 2 * bcast(w.to(x0.dtype), x0)
            out = out + c.mse * err.flatten(1).mean(1)
        if c.bce > 0 or c.dice > 0:
            m = (x0 + 1.0) / 2.0
            p = ((x_hat + 1.0) / 2.0).clamp(_EPS, 1.0 - _EPS)
            if c.bce > 0:
                bce = torch.nn.functional.binary_cross_entropy(p, m, reduction="none")
                out = out + c.bce * bce.flatten(1).mean(1)
            if c.dice > 0:
                out = out + c.dice * soft_dice_loss(p, m)
        return out
