"""Ancestral DDPM and DDIM (with η), for any Gaussian forward process."""

from __future__ import annotations

from typing import Any

from core.samplers.base import ancestral_coefs, call_back, coefs, eps_of, finish, tvec
from core.samplers.registry import SAMPLERS
from core.samplers.spaces import EuclideanSpace


@SAMPLERS.register("ddpm")
def sample_ddpm(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    """Ancestral sampling from the posterior ``q(x_s | x_t, x0_hat)``; exactly DDPM on the
    discrete process's grid."""
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        x0 = denoiser(x, t, cond)
        m_x, m_0, var = ancestral_coefs(process, t, s, x)
        x = m_x * x + m_0 * x0 + var ** 0.5 * space.noise_like(x, generator, cond)
        x = space.project(x, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


@SAMPLERS.register("ddim")
def sample_ddim(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
                eta: float = 0.0) -> Any:
    """DDIM: ``x_s = a_s x0 + sqrt(s_s^2 - c^2) eps + c z`` with ``c = η · posterior std``.

    ``η = 0`` is the deterministic DDIM (first-order probability-flow solver), ``η = 1`` is ancestral.
    """
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        x0 = denoiser(x, t, cond)
        ct, cs = coefs(process, t, x), coefs(process, s, x)
        eps = eps_of(x, x0, ct)
        x = cs.a * x0
        if eta > 0:
            _, _, var = ancestral_coefs(process, t, s, x)
            c2 = eta * eta * var
            x = x + (cs.s * cs.s - c2) ** 0.5 * eps + c2 ** 0.5 * space.noise_like(x, generator, cond)
        else:
            x = x + cs.s * eps
        x = space.project(x, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)
