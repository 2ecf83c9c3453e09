"""Denoising losses: ``loss(model, x0, cond, generator) -> [B]``.

The model is a :class:`~core.parameterization.Denoiser`; the loss regresses its *native* output on
the matching target (ε, x0, v, score or velocity — the conversions module builds the target), with
a pluggable time sampler and weighting, and reduces through the state space so masked (padded)
elements never count. For EDM-preconditioned models it is the EDM loss ``λ(σ) ‖D(x_t) - x0‖²``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from core.losses.time_sampling import make_time_sampler
from core.losses.weighting import WEIGHTINGS
from core.parameterization.conversions import target
from core.processes.base import ForwardProcess
from core.samplers.base import coefs
from core.samplers.spaces import EuclideanSpace
from core.seeding import Generator
from core.tensor_utils import bcast
from core.types import State, batch_size, check_finite, state_device


class DenoisingLoss:
    def __init__(self, process: ForwardProcess, *, weighting: str = "none", time_sampler: str = "uniform",
                 space: EuclideanSpace | None = None, weighting_options: dict[str, Any] | None = None,
                 time_options: dict[str, Any] | None = None) -> None:
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
        if pred == "edm":
            err = (model(x_t, t, cond) - x0) ** 2
            w = WEIGHTINGS.get("edm")(self.process, t, sigma_data=model.sigma_data)
        else:
            out = model.native(x_t, t, cond)
            tgt = target(pred, x0, noise, *vars(coefs(self.process, t, x0)).values())
            err = (out - tgt) ** 2
            w = self.weighting(self.process, t, **self.weighting_options)
        check_finite(err, "loss error")
        return self.space.reduce(err * bcast(w, err), cond)


def flow_matching_loss(process: ForwardProcess, *, time_sampler: str = "uniform",
                       space: EuclideanSpace | None = None) -> DenoisingLoss:
    """Flow matching: regress the velocity ``d x_t/dt = alpha' x0 + sigma' eps`` (unweighted).

    Use with a ``Denoiser(prediction="velocity")`` on an interpolant (``linear`` = rectified flow).
    """
    return DenoisingLoss(process, weighting="none", time_sampler=time_sampler, space=space)
