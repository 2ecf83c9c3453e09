"""CogDPM precision-weighted guidance (Chen et al., "CogDPM: Diffusion Probabilistic Models via
Cognitive Predictive Coding").

The model's own clean-field predictions ``x0_hat`` drift over the reverse process; where they keep
changing the model is unsure, where they have settled it is confident. The precision of a pixel is
the inverse variance of its recent ``x0_hat`` predictions (a sliding window over the steps),
normalised to mean 1 per sample; the conditioning guidance is weighted by it:

    x0 = x0_cond + (scale - 1) * P(x) * (x0_cond - x0_uncond)

i.e. classifier-free guidance in the form ``x0_cond + w (x0_cond - x0_uncond)`` (Ho & Salimans'
``w = scale - 1``) with the guidance term ``w (x0_cond - x0_uncond)`` weighted per pixel by ``P``.
``scale = 1`` is plain conditioning in every mode; because ``P`` has mean 1, ``precision`` and ``cfg``
apply the same mean guidance strength and differ only in where it goes: confident regions follow
the past frames more strongly, uncertain regions keep the diversity of the conditional model. ``mode`` is the ablation switch: ``none`` (plain conditioning, the
conditional model alone), ``cfg`` (uniform classifier-free guidance ``P = 1``) and ``precision``.
The conditional and unconditional passes run as one batch (``cond["drop"]`` marks the second half).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

GuidanceMode = Literal["none", "cfg", "precision"]


def precision_weights(history: Tensor, eps: float, max_weight: float) -> Tensor:
    """``history [K, B, ...]`` of x0 predictions -> per-pixel weights ``[B, ...]`` with mean 1 per sample.

    ``P = 1 / (var_k + eps)`` (unbiased variance over the ``K`` steps), divided by its per-sample mean
    and clipped to ``[0, max_weight]``; fewer than two predictions give uniform weights."""
    if history.shape[0] < 2:
        return torch.ones_like(history[0])
    prec = 1.0 / (history.var(dim=0, unbiased=True) + eps)
    dims = tuple(range(1, prec.ndim))
    return (prec / prec.mean(dim=dims, keepdim=True)).clamp(0.0, max_weight)


class PrecisionGuidedDenoiser(nn.Module):
    """Wraps a denoiser (``denoiser(x, t, cond) -> x0``) with CFG weighted by the CogDPM precision.

    Stateful over one reverse trajectory: the history restarts when the noise level goes back up or
    the batch changes, i.e. at the start of every new sampling call."""

    def __init__(self, denoiser: nn.Module, mode: GuidanceMode = "precision", scale: float = 1.0,
                 window: int = 4, eps: float = 1e-3, max_weight: float = 4.0) -> None:
        super().__init__()
        if window < 2:
            raise ValueError(f"ensemble.precision_window must be >= 2 to estimate a variance, got {window}")
        self.denoiser, self.process = denoiser, denoiser.process
        self.mode, self.scale, self.window, self.eps, self.max_weight = mode, float(scale), window, eps, max_weight
        self._history: list[Tensor] = []
        self._last_t: float | None = None
        self.last_weights: Tensor | None = None

    def _track(self, x0_cond: Tensor, t: Tensor) -> Tensor:
        t_now = float(t.reshape(-1)[0])
        new_traj = (self._last_t is None or t_now > self._last_t
                    or (self._history and self._history[0].shape != x0_cond.shape))
        if new_traj:
            self._history = []
        self._last_t = t_now
        self._history = [*self._history, x0_cond.detach()][-self.window:]
        return precision_weights(torch.stack(self._history), self.eps, self.max_weight)

    def forward(self, x: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        if self.mode == "none" or cond is None:
            return self.denoiser(x, t, cond)
        n = x.shape[0]
        t_b = t.reshape(-1).expand(n) if t.numel() == 1 else t
        both = {k: torch.cat([v, v]) if isinstance(v, Tensor) and v.shape[:1] == (n,) else v
                for k, v in cond.items()}
        both["drop"] = torch.cat([torch.zeros(n, dtype=torch.bool), torch.ones(n, dtype=torch.bool)]).to(x.device)
        out = self.denoiser(torch.cat([x, x]), torch.cat([t_b, t_b]), both)
        x0_c, x0_u = out[:n], out[n:]
        w = self._track(x0_c, t_b) if self.mode == "precision" else torch.ones_like(x0_c)
        self.last_weights = w
        return x0_c + (self.scale - 1.0) * w * (x0_c - x0_u)
