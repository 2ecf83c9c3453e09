"""Reverse-SDE samplers: Euler–Maruyama and predictor–corrector with a Langevin corrector.

Reverse SDE (Anderson 1982; score SDE): ``dx = [f x - g^2 ∇log p_t(x)] dt + g dW̄`` run from ``t_max``
to ``t_min``, with the score from the denoiser, ``∇log p_t(x) = -(x - a x0_hat) / s^2``.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from core.registry import UnknownNameError
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


StepRule = Literal["sigma", "norms"]
STEP_RULES: tuple[str, ...] = get_args(StepRule)


def langevin_step(denoiser, process, x, t, space, generator, cond, snr: float, scale: Any,
                  rule: StepRule = "sigma") -> Any:
    """Langevin corrector ``x ← x + ε ∇log p_t + sqrt(2ε) z``; the step follows score SDE's
    signal-to-noise rule ``ε = 2 scale (snr ‖z‖ / ‖∇log p‖)^2`` in one of two per-sample forms:

    * ``"sigma"`` (default): both norms replaced by their expectations under the perturbation kernel
      (``E‖z‖² = D``, ``E‖∇log p(x_t | x0)‖² = D / sigma_t²``), so ``ε = 2 scale (snr sigma_t)²``:
      deterministic per time, stable in any dimension, and it converges as steps grow.
    * ``"norms"``: the realised per-sample norms (close to score SDE / GDSS, which average them over
      the batch, for high-dimensional states). Their ratio is heavy-tailed in low dimensions —
      ``1/χ²_D`` has no mean for ``D ≤ 2`` — and diverges on 2-D data.
    """
    score, _ = score_of(denoiser, process, x, t, cond)
    z = space.noise_like(x, generator, cond)
    if rule == "sigma":
        step = 2.0 * scale * snr**2 * process.sigma(t) ** 2
    else:
        ratio = cmap(lambda n: n, per_sample_norm(z)) / cmap(lambda n: n.clamp_min(1e-12), per_sample_norm(score))
        step = 2.0 * scale * (snr * ratio) ** 2
    step = bcast(step, x)
    return x + step * score + (2.0 * step) ** 0.5 * z


@SAMPLERS.register("pc")
def sample_pc(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
              snr: float = 0.16, corrector_steps: int = 1, step_rule: StepRule = "sigma") -> Any:
    """Predictor–corrector: Langevin correction(s) at ``t``, then an Euler–Maruyama prediction.

    The Langevin step is scaled by ``alpha_{t|s}^2`` of the step (``1 - beta_i`` for VP, 1 for VE),
    as in score SDE and GDSS; ``step_rule`` picks the step-size rule (see :func:`langevin_step`).
    """
    if step_rule not in STEP_RULES:
        raise UnknownNameError(f"unknown Langevin step rule {step_rule!r}; valid choices: {', '.join(STEP_RULES)}")
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        scale = (process.alpha(s) / process.alpha(t)) ** 2
        for _ in range(corrector_steps):
            x = space.project(langevin_step(denoiser, process, x, t, space, generator, cond, snr, scale, step_rule),
                              t, cond)
        x, x0 = em_step(denoiser, process, x, t, s, space, generator, cond)
        x = space.project(x, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)
