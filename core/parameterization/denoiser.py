"""The one contract samplers see: ``denoiser(x_t, t, cond) -> x0_hat``.

:class:`Denoiser` owns a network and converts its native output (``eps``, ``x0``, ``v``, ``score``,
``velocity``, or ``edm``-preconditioned) into ``x0_hat``. The network is called as
``net(x_in, t_in, cond)`` where ``t_in`` is ``t`` itself, or ``c_noise`` under EDM preconditioning.
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
from core.types import State

PARAMETERIZATIONS: tuple[str, ...] = (*PREDICTIONS, "edm")


def _coefs(process: ForwardProcess, t: Tensor, x: State) -> tuple[Any, Any, Any, Any]:
    return (bcast(process.alpha(t), x), bcast(process.sigma(t), x),
            bcast(process.d_alpha(t), x), bcast(process.d_sigma(t), x))


class Denoiser(nn.Module):
    """Wrap ``net`` (native output ``prediction``) as ``x0_hat = D(x_t, t, cond)``."""

    def __init__(self, net: nn.Module | Callable[..., Any], process: ForwardProcess,
                 prediction: str = "eps", sigma_data: float = 0.5) -> None:
        super().__init__()
        if prediction not in PARAMETERIZATIONS:
            raise UnknownNameError(
                f"unknown parameterization {prediction!r}; valid choices: {', '.join(PARAMETERIZATIONS)}")
        self.net = net
        self.process = process
        self.prediction = prediction
        self.sigma_data = float(sigma_data)

    def _edm_inputs(self, x: State, t: Tensor) -> tuple[Any, Any, Any, Any, Tensor]:
        alpha, sigma = self.process.alpha(t), self.process.sigma(t)
        sig = sigma / alpha  # σ of the equivalent pure σ-process
        if isinstance(sig, dict):
            raise NotImplementedError("EDM preconditioning of dict states: precondition inside the net")
        c = edm_coefficients(sig, self.sigma_data)
        x_tilde = x / bcast(alpha, x)
        return x_tilde, bcast(c.c_skip, x), bcast(c.c_out, x), bcast(c.c_in, x), c.c_noise

    def native(self, x: State, t: Tensor, cond: Any = None) -> State:
        """The network's raw output (what the loss regresses)."""
        if self.prediction == "edm":
            x_tilde, _, _, c_in, c_noise = self._edm_inputs(x, t)
            return self.net(c_in * x_tilde, c_noise.to(_dtype(x)), cond)
        return self.net(x, t.to(_dtype(x)), cond)

    def forward(self, x: State, t: Tensor, cond: Any = None) -> State:
        t = _as_batch_time(t, x)
        if self.prediction == "edm":
            x_tilde, c_skip, c_out, c_in, c_noise = self._edm_inputs(x, t)
            return c_skip * x_tilde + c_out * self.net(c_in * x_tilde, c_noise.to(_dtype(x)), cond)
        out = self.net(x, t.to(_dtype(x)), cond)
        return to_x0(self.prediction, out, x, *_coefs(self.process, t, x))


def _dtype(x: State) -> torch.dtype:
    from core.types import state_dtype

    return state_dtype(x)


def _as_batch_time(t: Tensor | float, x: State) -> Tensor:
    from core.types import batch_size, state_device

    t = torch.as_tensor(t, dtype=torch.float64, device=state_device(x))
    return t.expand(batch_size(x)) if t.ndim == 0 else t
