"""Conditioning wrappers around a denoiser: classifier-free guidance and reconstruction guidance.

Both keep the sampler contract (``denoiser(x_t, t, cond) -> x0_hat``), so every sampler gets them.
Replacement (inpainting) conditioning lives in :class:`core.samplers.spaces.InpaintingSpace`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers.base import coefs
from core.types import State, batch_size, cat_batch, index_batch


def _with_drop(cond: Mapping[str, Any], drop: bool, n: int, device: Any) -> dict[str, Any]:
    out = dict(cond)
    out["drop"] = torch.full((n,), drop, dtype=torch.bool, device=device)
    return out


def _cat_cond(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {k: torch.cat([a[k], b[k]]) if isinstance(a[k], Tensor) else a[k] for k in a}


class ClassifierFreeGuidance:
    """``x0 = x0_uncond + w (x0_cond - x0_uncond)`` (Ho & Salimans 2022).

    ``w = 1`` is the plain conditional model, ``w = 0`` the unconditional one. The conditional and the
    unconditional pass run as one batch of ``2B`` (one network evaluation); the unconditional half
    carries ``cond["drop"] = True``, which the networks map to their learned null conditioning.
    """

    def __init__(self, denoiser: Callable[..., State], scale: float) -> None:
        self.denoiser, self.scale = denoiser, float(scale)

    def __call__(self, x: State, t: Tensor, cond: Mapping[str, Any] | None = None) -> State:
        if cond is None or self.scale == 1.0:
            return self.denoiser(x, t, cond)
        n = batch_size(x)
        device = t.device
        both = _cat_cond(_with_drop(cond, False, n, device), _with_drop(cond, True, n, device))
        out = self.denoiser(cat_batch([x, x]), torch.cat([t, t]), both)
        x0_c, x0_u = index_batch(out, slice(0, n)), index_batch(out, slice(n, 2 * n))
        return x0_u + self.scale * (x0_c - x0_u)


class ReconstructionGuidance:
    """Guidance by a measurement log-likelihood on the denoised estimate (DPS-style).

    ``log_likelihood(x0_hat, cond) -> [B]`` is differentiated through the denoiser with respect to
    ``x_t``; the score is shifted by ``scale · ∇_{x_t} log p(y | x0_hat(x_t))``, which moves the
    clean estimate by ``scale · sigma² / alpha · ∇``.
    """

    def __init__(self, denoiser: Callable[..., State], process: ForwardProcess,
                 log_likelihood: Callable[[State, Any], Tensor], scale: float = 1.0) -> None:
        self.denoiser, self.process, self.log_likelihood, self.scale = denoiser, process, log_likelihood, scale

    def __call__(self, x: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        if not isinstance(x, Tensor):
            raise NotImplementedError("reconstruction guidance supports tensor states")
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            x0 = self.denoiser(xg, t, cond)
            ll = self.log_likelihood(x0, cond)
            if ll.shape != (x.shape[0],):
                raise ValueError(f"log_likelihood must return one value per sample [B], got {tuple(ll.shape)}")
            (grad,) = torch.autograd.grad(ll.sum(), xg)
        c = coefs(self.process, t, x)
        return (x0 + self.scale * c.s * c.s / c.a * grad).detach()
