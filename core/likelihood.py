"""Exact log-likelihood through the probability-flow ODE (Song et al. 2021, score SDE, appendix D).

The probability-flow ODE of a Gaussian process ``x_t = alpha x0 + sigma eps`` is

    dx/dt = v(x, t) = alpha'(t) x0_hat(x, t) + sigma'(t) eps_hat(x, t),
    eps_hat = (x - alpha x0_hat) / sigma

(:func:`core.samplers.ode.velocity`). Along a solution the density obeys the instantaneous
change of variables ``d log p_t(x_t) / dt = -div v(x_t, t)``, so integrating the augmented ODE

    d/dt [x, δ] = [v(x, t), div v(x, t)],   x(t_min) = x,  δ(t_min) = 0,

from ``t_min`` up to ``t_max`` gives

    log p_{t_min}(x) = log p_prior(x(t_max)) + δ(t_max)      (nats, per sample).

**What is measured.** The ODE starts at ``t_min``, where the data are already slightly noised, so
the result is the density of ``x_{t_min} = alpha(t_min) x0 + sigma(t_min) eps`` evaluated at ``x``;
it approaches the data density as ``t_min → 0`` (build the process with a small ``t_min``, e.g.
``make_process("vp", t_min=1e-5)``, or pass ``t_min=``). The prior ``N(0, sigma(t_max)^2 I)`` is the
process's own; its mismatch with the true ``p_{t_max}`` is the other (small) error term.

**Divergence.** ``"exact"``: ``div v = Σ_i ∂v_i/∂x_i`` with one autograd pass per dimension (small
dimensions only). ``"hutchinson"``: ``div v ≈ z^T (∂v/∂x) z`` with ``E[z z^T] = I``; one probe ``z``
per sample (``"rademacher"`` ±1 or ``"gaussian"``), drawn once from the explicit ``generator`` and
kept fixed along the trajectory, as in score SDE — the estimate of ``log p`` is then unbiased.

The denoiser must be differentiable in ``x`` (torch ops only); it is called under
``torch.enable_grad()``. The augmented state is integrated in float64 with ``scipy.integrate.solve_ivp``
(one adaptive step sequence for the whole batch, so a sample's value depends on its batch only
through the solver tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers.base import tvec
from core.samplers.ode import velocity
from core.seeding import Generator, rand, randn

Divergence = Literal["exact", "hutchinson"]
Probe = Literal["rademacher", "gaussian"]
DIVERGENCES: tuple[str, ...] = ("exact", "hutchinson")
PROBES: tuple[str, ...] = ("rademacher", "gaussian")


@dataclass
class LikelihoodResult:
    """``logp = prior_logp + delta_logp`` (all ``[B]``, nats); ``x_prior`` is ``x`` mapped to ``t_max``."""

    logp: Tensor
    prior_logp: Tensor
    delta_logp: Tensor
    x_prior: Tensor
    nfe: int


def _check_choice(kind: str, name: str, valid: tuple[str, ...]) -> None:
    if name not in valid:
        raise ValueError(f"unknown {kind} {name!r}; valid choices: {', '.join(valid)}")


def make_probe(x: Tensor, probe: Probe, generator: Generator = None) -> Tensor:
    """A Hutchinson probe shaped like ``x`` with ``E[z z^T] = I``: Rademacher ±1 or standard normal."""
    _check_choice("probe", probe, PROBES)
    if probe == "gaussian":
        return randn(x.shape, generator, device=x.device, dtype=x.dtype)
    return (rand(x.shape, generator, device=x.device, dtype=x.dtype) < 0.5).to(x.dtype) * 2.0 - 1.0


def divergence_exact(v: Tensor, x: Tensor) -> Tensor:
    """``Σ_i ∂v_i/∂x_i`` per sample ``[B]`` (one backward pass per dimension; samples independent)."""
    vf = v.reshape(v.shape[0], -1)
    div = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    for i in range(vf.shape[1]):
        (g,) = torch.autograd.grad(vf[:, i].sum(), x, retain_graph=True)
        div = div + g.reshape(g.shape[0], -1)[:, i]
    return div


def divergence_hutchinson(v: Tensor, x: Tensor, z: Tensor) -> Tensor:
    """``z^T (∂v/∂x) z`` per sample ``[B]`` (one vector–Jacobian product)."""
    (g,) = torch.autograd.grad((v * z).sum(), x)
    return (g * z).reshape(z.shape[0], -1).sum(1)


def _velocity_and_divergence(denoiser: Callable[..., Any], process: ForwardProcess, x: Tensor, t: float,
                             divergence: Divergence, z: Tensor | None, cond: Any) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        v, _ = velocity(denoiser, process, x, tvec(torch.tensor(t, dtype=torch.float64), x), cond)
        div = divergence_exact(v, x) if divergence == "exact" else divergence_hutchinson(v, x, z)  # type: ignore[arg-type]
    return v.detach(), div.detach()


def log_likelihood(denoiser: Callable[..., Any], process: ForwardProcess, x: Tensor, *,
                   divergence: Divergence = "exact", probe: Probe = "rademacher", generator: Generator = None,
                   t_min: float | None = None, t_max: float | None = None, rtol: float = 1e-5,
                   atol: float = 1e-5, method: str = "RK45", cond: Any = None) -> LikelihoodResult:
    """``log p_{t_min}(x)`` per sample (nats) by integrating the augmented probability-flow ODE.

    ``t_min``/``t_max`` default to the process's. ``generator`` draws the Hutchinson probes (ignored
    for ``"exact"``). The solver state is float64; the denoiser sees ``x``'s dtype (a float32 network
    works; pass float64 data for oracle accuracy). ``nfe`` counts right-hand-side evaluations. The
    results (float64, ``[B]``) are per sample because the batch shares only the solver's steps.
    """
    from scipy.integrate import solve_ivp

    if isinstance(x, Mapping):
        raise NotImplementedError("log_likelihood supports tensor states only; dict states "
                                  "(a ProcessDict) need a joint density over their fields")
    _check_choice("divergence", divergence, DIVERGENCES)
    t0 = process.t_min if t_min is None else float(t_min)
    t1 = process.t_max if t_max is None else float(t_max)
    x = x.detach()
    shape, b = x.shape, x.shape[0]
    if divergence == "hutchinson" and generator is None:
        raise ValueError("Hutchinson probes need an explicit generator (torch.Generator or PerSampleGenerator)")
    z = make_probe(x, probe, generator) if divergence == "hutchinson" else None
    nfe = [0]

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        nfe[0] += 1
        xs = torch.from_numpy(y[:-b].copy()).reshape(shape).to(device=x.device, dtype=x.dtype)
        v, div = _velocity_and_divergence(denoiser, process, xs, t, divergence, z, cond)
        return np.concatenate([v.reshape(-1).cpu().double().numpy(), div.cpu().double().numpy()])

    y0 = np.concatenate([x.reshape(-1).cpu().double().numpy(), np.zeros(b)])
    sol = solve_ivp(rhs, (t0, t1), y0, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"likelihood ODE solver failed: {sol.message}")
    y1 = torch.from_numpy(sol.y[:, -1].copy()).to(x.device)
    x_prior, delta = y1[:-b].reshape(shape), y1[-b:]
    prior = process.prior_logp(x_prior)
    return LikelihoodResult(logp=prior + delta, prior_logp=prior, delta_logp=delta, x_prior=x_prior, nfe=nfe[0])


def bits_per_dim(logp: Tensor, num_dims: int, scale: float = 1.0) -> Tensor:
    """Bits per dimension ``-(log p + D log scale) / (D ln 2)``.

    ``scale`` is the Jacobian of the data-to-model map ``x_model = scale · x_data + shift``, so that
    ``log p_data = log p_model + D log scale``; e.g. 8-bit images in ``[0, 256)`` mapped to ``[-1, 1]``
    use ``scale = 1/128`` (adds ``log2 128 = 7`` bits, as in score SDE).
    """
    return -(logp + num_dims * math.log(scale)) / (num_dims * math.log(2.0))


__all__ = ["DIVERGENCES", "PROBES", "Divergence", "LikelihoodResult", "Probe", "bits_per_dim",
           "divergence_exact", "divergence_hutchinson", "log_likelihood", "make_probe"]
