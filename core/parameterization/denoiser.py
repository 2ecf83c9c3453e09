"""The one contract samplers see: ``denoiser(x_t, t, cond) -> x0_hat``.

:class:`Denoiser` owns a network and converts its native output (``eps``, ``x0``, ``v``, ``score``,
``velocity``, or ``edm``-preconditioned) into ``x0_hat``. The network is called as
``net(x_in, t_in, cond)`` where ``t_in`` is ``t`` itself, or ``c_noise`` under EDM preconditioning.

Self-conditioning (Chen, Zhang & Hinton 2023, "Analog Bits"; ``self_condition=True``): the network is
also given an earlier estimate of ``x0`` as ``net(x_in, t_in, cond, self_cond=x0_prev)``. In training the
loss passes it (zeros, or a first no-grad estimate on a random half of the batch: see
:class:`~core.losses.DenoisingLoss`). In sampling the denoiser feeds back its own previous estimate:
zeros at the first call of a trajectory, then the last ``x0_hat`` while ``t`` does not increase (every
sampler walks time downwards; a call at a later time than the previous one starts a new trajectory, as
does :meth:`Denoiser.reset_self_condition`, which :func:`core.samplers.sample` calls first).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from core.parameterization.conversions import PREDICTIONS, to_x0
from core.parameterization.preconditioning import edm_coefficients
from core.processes.base import ForwardProcess
from core.registry import UnknownNameError
from core.tensor_utils import bcast
from core.types import State, tree_map

PARAMETERIZATIONS: tuple[str, ...] = (*PREDICTIONS, "edm")


def _coefs(process: ForwardProcess, t: Tensor, x: State) -> tuple[Any, Any, Any, Any]:
    return (bcast(process.alpha(t), x), bcast(process.sigma(t), x),
            bcast(process.d_alpha(t), x), bcast(process.d_sigma(t), x))


class Denoiser(nn.Module):
    """Wrap ``net`` (native output ``prediction``) as ``x0_hat = D(x_t, t, cond)``."""

    def __init__(self, net: nn.Module | Callable[..., Any], process: ForwardProcess,
                 prediction: str = "eps", sigma_data: float = 0.5, self_condition: bool = False) -> None:
        super().__init__()
        if self_condition and not getattr(net, "supports_self_condition", False):
            raise ValueError(f"self-conditioning needs a network that takes self_cond= (set "
                             f"supports_self_condition = True on it); {type(net).__name__} does not: set "
                             "model.self_condition=false")
        if prediction not in PARAMETERIZATIONS:
            raise UnknownNameError(
                f"unknown parameterization {prediction!r}; valid choices: {', '.join(PARAMETERIZATIONS)}")
        self.net = net
        self.process = process
        self.prediction = prediction
        self.sigma_data = float(sigma_data)
        self.self_condition = bool(self_condition)
        self._sc_prev: State | None = None
        self._sc_t: float | None = None

    def _edm_inputs(self, x: State, t: Tensor) -> tuple[Any, Any, Any, Any, Tensor]:
        alpha, sigma = self.process.alpha(t), self.process.sigma(t)
        sig = sigma / alpha  # σ of the equivalent pure σ-process
        if isinstance(sig, dict):
            raise NotImplementedError("EDM preconditioning of dict states: precondition inside the net")
        c = edm_coefficients(sig, self.sigma_data)
        x_tilde = x / bcast(alpha, x)
        return x_tilde, bcast(c.c_skip, x), bcast(c.c_out, x), bcast(c.c_in, x), c.c_noise

    def native(self, x: State, t: Tensor, cond: Any = None, self_cond: State | None = None) -> State:
        """The network's raw output (what the loss regresses); ``self_cond`` (self-conditioned models
        only) is the earlier ``x0`` estimate, zeros when ``None``."""
        if self.prediction == "edm":
            x_tilde, _, _, c_in, c_noise = self._edm_inputs(x, t)
            return self._net(c_in * x_tilde, c_noise.to(_dtype(x)), cond, self._sc_input(x, self_cond))
        return self._net(x, t.to(_dtype(x)), cond, self._sc_input(x, self_cond))

    def forward(self, x: State, t: Tensor, cond: Any = None, self_cond: State | None = None) -> State:
        """``x0_hat``. A self-conditioned model in eval mode called without ``self_cond`` feeds back its
        previous estimate of the current trajectory (see the module docstring)."""
        t = _as_batch_time(t, x)
        feedback = self.self_condition and self_cond is None and not self.training
        if feedback:
            self_cond = self._previous(x, t)
        if self.prediction == "edm":
            x_tilde, c_skip, c_out, c_in, c_noise = self._edm_inputs(x, t)
            out = c_skip * x_tilde + c_out * self._net(c_in * x_tilde, c_noise.to(_dtype(x)), cond,
                                                       self._sc_input(x, self_cond))
        else:
            out = to_x0(self.prediction, self._net(x, t.to(_dtype(x)), cond, self._sc_input(x, self_cond)), x,
                        *_coefs(self.process, t, x))
        if feedback:
            self._sc_prev, self._sc_t = _detach(out), float(t.max())
        return out

    def reset_self_condition(self) -> None:
        """Forget the fed-back estimate (the next call starts a new trajectory)."""
        self._sc_prev, self._sc_t = None, None

    def _net(self, x: State, t: Tensor, cond: Any, self_cond: State | None) -> State:
        if not self.self_condition:
            return self.net(x, t, cond)
        return self.net(x, t, cond, self_cond=self_cond)

    def _sc_input(self, x: State, self_cond: State | None) -> State | None:
        """The estimate as the network sees it: zeros when absent; under EDM preconditioning divided by
        ``sigma_data``, so that, like ``c_in x``, it enters at unit scale."""
        if not self.self_condition:
            if self_cond is not None:
                raise ValueError("self_cond given to a denoiser built without self_condition=True")
            return None
        if self_cond is None:
            return _zeros_like(x)
        return self_cond / self.sigma_data if self.prediction == "edm" else self_cond

    def _previous(self, x: State, t: Tensor) -> State | None:
        prev = self._sc_prev
        if prev is None or self._sc_t is None or float(t.max()) > self._sc_t + 1e-12 or not _same_shape(prev, x):
            self.reset_self_condition()
            return None
        return prev


def _zeros_like(x: State) -> State:
    return tree_map(torch.zeros_like, x)


def _detach(x: State) -> State:
    return tree_map(lambda v: v.detach(), x)


def _same_shape(a: State, b: State) -> bool:
    if isinstance(a, dict) != isinstance(b, dict):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(a[k].shape == b[k].shape for k in a)
    assert isinstance(a, Tensor) and isinstance(b, Tensor)
    return a.shape == b.shape


def _dtype(x: State) -> torch.dtype:
    from core.types import state_dtype

    return state_dtype(x)


def _as_batch_time(t: Tensor | float, x: State) -> Tensor:
    from core.types import batch_size, state_device

    t = torch.as_tensor(t, dtype=torch.float64, device=state_device(x))
    return t.expand(batch_size(x)) if t.ndim == 0 else t
