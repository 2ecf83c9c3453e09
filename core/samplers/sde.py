"""Reverse-SDE samplers: Euler–Maruyama and predictor–corrector with a Langevin corrector.

Reverse SDE (Anderson 1982; score SDE): ``dx = [f x - g^2 ∇log p_t(x)] dt + g dW̄`` run from ``t_max``
to ``t_min``, with the score from the denoiser, ``∇log p_t(x) = -(x - a x0_hat) / s^2``.
"""

from __future__ import annotations

from typing import Any

from core.samplers.base import call_back, coefs, finish, tvec
from core.samplers.registry import SAMPLERS
from core.samplers.spaces import EuclideanSpace, cmap, per_sample_norm
from core.tensor_utils import bcast


def score_of(denoiser, process, x, t, cond) -> tuple[Any, Any]:
    x0 = denoiser(x, t, cond)
    c = coefs(process, t, x)
    return (c.a * x0 - x) / (c.s * c.s), x0


def em_step(denoiser, process, x, t, s, space, generator, cond) -> tuple[Any, Any]:
    """One Euler–Maruyama step of the reverse SDE from ``t`` to ``s < t``."""
    dt = s - t  # negative
    score, x0 = score_of(denoiser, process, x, t, cond)
    f = bcast(process.drift_coef(t), x) * x
    g2 = bcast(process.diffusion_sq(t), x)
    mean = x + (f - g2 * score) * bcast(dt, x)
    noise = space.noise_like(x, generator, cond)
    return mean + (g2 * bcast(-dt, x)) ** 0.5 * noise, x0


@SAMPLERS.register("euler_maruyama")
def sample_euler_maruyama(denoiser, process, x, ts, *, space=None, generator=None, callback=None,
                          cond=None) -> Any:
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        x, x0 = em_step(denoiser, process, x, t, s, space, generator, cond)
        x = space.project(x, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


def langevin_step(denoiser, process, x, t, space, generator, cond, snr: float, scale: Any) -> Any:
    """Langevin corrector with the step size set by a target signal-to-noise ratio (score SDE):
    ``ε = 2 scale (snr ‖z‖ / ‖∇log p‖)^2``, ``x ← x + ε ∇log p + sqrt(2ε) z`` (norms per sample)."""
    score, _ = score_of(denoiser, process, x, t, cond)
    z = space.noise_like(x, generator, cond)
    ratio = cmap(lambda n: n, per_sample_norm(z)) / cmap(lambda n: n.clamp_min(1e-12), per_sample_norm(score))
    step = 2.0 * scale * (snr * ratio) ** 2
    step = bcast(step, x)
    return x + step * score + (2.0 * step) ** 0.5 * z


@SAMPLERS.register("pc")
def sample_pc(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
              snr: float = 0.16, corrector_steps: int = 1) -> Any:
    """Predictor–corrector: Langevin correction(s) at ``t``, then an Euler–Maruyama prediction.

    The Langevin step is scaled by ``alpha_{t|s}^2`` of the step (``1 - beta_i`` for VP, 1 for VE),
    as in score SDE and GDSS.
    """
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        scale = (process.alpha(s) / process.alpha(t)) ** 2
        for _ in range(corrector_steps):
            x = space.project(langevin_step(denoiser, process, x, t, space, generator, cond, snr, scale), t, cond)
        x, x0 = em_step(denoiser, process, x, t, s, space, generator, cond)
        x = space.project(x, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)
