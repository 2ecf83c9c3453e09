"""What every sampler shares: NFE counting, coefficient lookup, the final denoising step.

A sampler is a registered plain function

    sample_<name>(denoiser, process, x_init, ts, *, space, generator, callback, cond, **options) -> state

``x_init`` is a prior draw at ``ts[0]``; ``ts`` descends to ``t_min``; the returned state is the
denoised sample (one last denoiser call at ``ts[-1]``, then the space's projection at ``t = 0``).
``callback(dict(i, t, x, x0_hat))`` is called once per step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers.spaces import EuclideanSpace
from core.tensor_utils import bcast
from core.types import State, batch_size, state_device

Denoiser = Callable[[State, Tensor, Any], State]
Callback = Callable[[dict[str, Any]], None] | None


class CountingDenoiser:
    """Counts network evaluations (calls) of a denoiser."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self.nfe = 0

    def __call__(self, x: State, t: Tensor, cond: Any = None) -> State:
        self.nfe += 1
        return self.denoiser(x, t, cond)


@dataclass
class Coefs:
    """``alpha, sigma`` (and derivatives) at one time, broadcast to the state."""

    a: Any
    s: Any
    da: Any
    ds: Any


def coefs(process: ForwardProcess, t: Tensor, x: State) -> Coefs:
    return Coefs(bcast(process.alpha(t), x), bcast(process.sigma(t), x),
                 bcast(process.d_alpha(t), x), bcast(process.d_sigma(t), x))


def tvec(t: Tensor, x: State) -> Tensor:
    """A scalar time expanded to the batch: ``[B]`` float64."""
    return t.to(device=state_device(x), dtype=torch.float64).expand(batch_size(x))


def eps_of(x: State, x0: State, c: Coefs) -> State:
    return (x - c.a * x0) / c.s


def finish(denoiser: Denoiser, x: State, t_last: Tensor, space: EuclideanSpace, cond: Any) -> State:
    """The final denoising step at ``t_min`` and the space's projection at ``t = 0``."""
    t = tvec(t_last, x)
    x0 = denoiser(x, t, cond)
    return space.project(x0, torch.zeros_like(t), cond)


def call_back(callback: Callback, i: int, t: Tensor, x: State, x0: State) -> None:
    if callback is not None:
        callback({"i": i, "t": float(t), "x": x, "x0_hat": x0})


def ancestral_coefs(process: ForwardProcess, t: Tensor, s: Tensor, x: State) -> tuple[Any, Any, Any]:
    """Posterior ``q(x_s | x_t, x0) = N(m_x x_t + m_0 x0, var)`` for ``s < t`` (any Gaussian process).

    ``alpha_{t|s} = a_t / a_s``, ``sigma_{t|s}^2 = s_t^2 - alpha_{t|s}^2 s_s^2``;
    ``m_x = alpha_{t|s} s_s^2 / s_t^2``, ``m_0 = a_s sigma_{t|s}^2 / s_t^2``, ``var = sigma_{t|s}^2 s_s^2 / s_t^2``.
    """
    ct, cs = coefs(process, t, x), coefs(process, s, x)
    a_ts = ct.a / cs.a
    var_ts = ct.s * ct.s - a_ts * a_ts * cs.s * cs.s
    m_x = a_ts * cs.s * cs.s / (ct.s * ct.s)
    m_0 = cs.a * var_ts / (ct.s * ct.s)
    var = var_ts * cs.s * cs.s / (ct.s * ct.s)
    return m_x, m_0, var
