"""Denoising losses: ``loss(model, x0, cond, generator) -> [B]``.

The model is a :class:`~core.parameterization.Denoiser`; the loss regresses its *native* output on
the matching target (ε, x0, v, score or velocity — the conversions module builds the target), with
a pluggable time sampler and weighting, and reduces through the state space so masked (padded)
elements never count. The residual ``prediction - target`` goes through the space's
``loss_residual`` before it is squared (the identity unless the space maps it, e.g. from wavelet
coefficients back to the physical field). For EDM-preconditioned models it is the EDM loss ``λ(σ) ‖D(x_t) - x0‖²``.

Self-conditioned models (``Denoiser(self_condition=True)``) are trained as Chen et al. (2023) do: on a
random ``self_condition_rate`` share of the samples the network gets a first, gradient-free estimate
``x0_hat(x_t, t)`` as ``self_cond``, on the rest zeros (one extra forward pass per step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from core.losses.time_sampling import make_time_sampler
from core.losses.weighting import WEIGHTINGS
from core.parameterization.conversions import target
from core.processes.base import ForwardProcess
from core.samplers.base import coefs
from core.samplers.spaces import EuclideanSpace
from core.seeding import Generator, rand
from core.tensor_utils import bcast
from core.types import State, batch_size, check_finite, state_device


class DenoisingLoss:
    def __init__(self, process: ForwardProcess, *, weighting: str = "none", time_sampler: str = "uniform",
                 space: EuclideanSpace | None = None, weighting_options: dict[str, Any] | None = None,
                 time_options: dict[str, Any] | None = None, self_condition_rate: float = 0.5) -> None:
        if not 0.0 <= self_condition_rate <= 1.0:
            raise ValueError(f"self_condition_rate must be in [0, 1], got {self_condition_rate}")
        self.self_condition_rate = float(self_condition_rate)
        self.process = process
        self.weighting_name = weighting
        self.weighting = WEIGHTINGS.get(weighting)
        self.weighting_options = dict(weighting_options or {})
        self.sample_time = make_time_sampler(time_sampler, **(time_options or {}))
        self.space = space or EuclideanSpace()

    def __call__(self, model: Any, x0: State, cond: Any = None, generator: Generator = None) -> Tensor:
        t = self.sample_time(self.process, batch_size(x0), generator, state_device(x0))
        noise = self.space.noise_like(x0, generator, cond)
        x_t = self.space.project(self.process.perturb(x0, t, noise), t, cond)
        pred = getattr(model, "prediction", "eps")
        sc = self._self_cond(model, x_t, t, cond, generator)
        kw = {} if sc is None else {"self_cond": sc}
        if pred == "edm":
            err = self.space.loss_residual(model(x_t, t, cond, **kw) - x0, cond) ** 2
            w = WEIGHTINGS.get("edm")(self.process, t, sigma_data=model.sigma_data)
        else:
            out = model.native(x_t, t, cond, **kw)
            tgt = target(pred, x0, noise, *vars(coefs(self.process, t, x0)).values())
            err = self.space.loss_residual(out - tgt, cond) ** 2
            w = self.weighting(self.process, t, **self.weighting_options)
        check_finite(err, "loss error")
        return self.space.reduce(err * bcast(w, err), cond)

    def _self_cond(self, model: Any, x_t: State, t: Tensor, cond: Any, generator: Generator) -> State | None:
        """``None`` for a plain model; else the first estimate on the chosen samples and zeros elsewhere."""
        if not getattr(model, "self_condition", False):
            return None
        keep = (rand((batch_size(x_t),), generator, device=state_device(x_t)) < self.self_condition_rate)
        with torch.no_grad():
            first = model(x_t, t, cond, self_cond=x_t * 0.0)
        return first * bcast(keep.float(), first)


def flow_matching_loss(process: ForwardProcess, *, time_sampler: str = "uniform",
                       space: EuclideanSpace | None = None) -> DenoisingLoss:
    """Flow matching: regress the velocity ``d x_t/dt = alpha' x0 + sigma' eps`` (unweighted).

    Use with a ``Denoiser(prediction="velocity")`` on an interpolant (``linear`` = rectified flow).
    """
    return DenoisingLoss(process, weighting="none", time_sampler=time_sampler, space=space)
