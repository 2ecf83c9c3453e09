"""DPM-Solver++ multistep (2M, 3M) and SDE-DPM-Solver++(2M), data-prediction form.

With ``λ = log(alpha/sigma)`` and ``h = λ_s - λ_t > 0`` the exact solution of the probability-flow
ODE is ``x_s = (σ_s/σ_t) x_t + α_s ∫ e^{-(λ_s-λ)} x0(λ) dλ``; the multistep methods approximate
``x0(λ)`` by a polynomial through the last 1–3 denoiser outputs (Lu et al. 2022). 2M is the paper's
Algorithm 2: ``x_s = (σ_s/σ_t) x_t + α_s (1 - e^{-h}) [x0_t + (x0_t - x0_prev) / (2r)]``, ``r = h_prev / h``
(k-diffusion ``sample_dpmpp_2m``; diffusers' default ``solver_type="midpoint"``). The SDE variant
adds ``e^{-h}`` damping and fresh noise ``σ_s sqrt(1 - e^{-2h}) z``.
"""

from __future__ import annotations

from typing import Any

import torch

from core.samplers.base import call_back, finish, tvec
from core.samplers.registry import SAMPLERS
from core.samplers.spaces import EuclideanSpace, cmap
from core.tensor_utils import bcast


def half_log_snr(process, t) -> Any:
    return cmap(lambda v: 0.5 * v, process.log_snr(t))


def _expm1(v: Any) -> Any:
    return cmap(torch.expm1, v)


def _dpmpp_multistep(denoiser, process, x, ts, space, generator, callback, cond, order: int, eta: float) -> Any:
    x0_hist: list[Any] = []
    h_hist: list[Any] = []
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        x0 = denoiser(x, t, cond)
        lam_t, lam_s = half_log_snr(process, t), half_log_snr(process, s)
        h = lam_s - lam_t
        eta_h = eta * h
        sig_ratio = process.sigma(s) / process.sigma(t)
        a_s = process.alpha(s)
        phi_1 = -_expm1(-h - eta_h)  # 1 - e^{-(1+η)h}
        x = bcast(sig_ratio * cmap(torch.exp, -eta_h), x) * x + bcast(a_s * phi_1, x) * x0
        k = min(order, len(x0_hist) + 1)
        if k >= 2:
            hh = h + eta_h
            phi_2 = phi_1 / hh * -1.0 + 1.0  # expm1(-hh)/hh + 1
            r0 = h_hist[-1] / h
            d1_0 = (x0 - x0_hist[-1]) / bcast(r0, x)
            if k == 3:
                r1 = h_hist[-2] / h
                d1_1 = (x0_hist[-1] - x0_hist[-2]) / bcast(r1, x)
                d1 = d1_0 + (d1_0 - d1_1) * bcast(r0 / (r0 + r1), x)
                d2 = (d1_0 - d1_1) / bcast(r0 + r1, x)
                phi_3 = phi_2 / hh - 0.5
                x = x + bcast(a_s * phi_2, x) * d1 - bcast(a_s * phi_3, x) * d2
            elif order == 2:  # 2M (ODE and SDE): DPM-Solver++(2M), Lu et al. 2022b Alg. 2 (midpoint form)
                x = x + bcast(0.5 * a_s * phi_1, x) * d1_0
            else:  # 3M warm-up step: Taylor form phi_2 (as k-diffusion's 3M)
                x = x + bcast(a_s * phi_2, x) * d1_0
        if eta > 0:
            noise_std = process.sigma(s) * (-_expm1(-2.0 * eta_h)) ** 0.5
            x = x + bcast(noise_std, x) * space.noise_like(x, generator, cond)
        x = space.project(x, s, cond)
        x0_hist, h_hist = (x0_hist + [x0])[-2:], (h_hist + [h])[-2:]
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


@SAMPLERS.register("dpmpp_2m")
def sample_dpmpp_2m(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    return _dpmpp_multistep(denoiser, process, x, ts, space or EuclideanSpace(), generator, callback, cond, 2, 0.0)


@SAMPLERS.register("dpmpp_3m")
def sample_dpmpp_3m(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    return _dpmpp_multistep(denoiser, process, x, ts, space or EuclideanSpace(), generator, callback, cond, 3, 0.0)


@SAMPLERS.register("dpmpp_2m_sde")
def sample_dpmpp_2m_sde(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
                        eta: float = 1.0) -> Any:
    return _dpmpp_multistep(denoiser, process, x, ts, space or EuclideanSpace(), generator, callback, cond, 2, eta)
