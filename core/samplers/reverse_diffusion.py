"""Reverse-diffusion predictor (score SDE, Song et al. 2021; the GDSS sampler) with an optional
Langevin corrector, and the S4 solver (GDSS) that shares one score evaluation per step.

For a step ``t → s < t`` the forward transition is ``x_t = a x_s + G z`` with ``a = alpha_t / alpha_s``
and ``G² = sigma_t² - a² sigma_s²`` (exact for every Gaussian process: ``a = sqrt(1 - beta_i)``,
``G² = beta_i`` for VP; ``a = 1``, ``G² = sigma_t² - sigma_s²`` for VE). The reverse-diffusion
predictor runs this discretisation backwards:

    x_s = x - (a - 1) x + G² ∇log p_t(x) + G z

The Langevin corrector is ``x ← x + ε ∇log p_t + scale_eps sqrt(2ε) z`` with
``ε = 2 a_step (snr ‖z‖ / ‖∇log p_t‖)²`` (``a_step = (alpha_s / alpha_t)²``: ``1 - beta_i`` on VP, 1 on VE).
``step_rule`` picks the norms: ``"sigma"`` (their expectations: ``ε = 2 a_step (snr sigma_t)²``),
``"norms"`` (per sample) or ``"batch"`` (norms averaged over the batch, as score SDE / GDSS).

S4 (``s4``): one score per step at ``x_t``; the Langevin correction and then the reverse-diffusion
prediction both use it (one network evaluation per step instead of two).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from core.registry import UnknownNameError
from core.samplers.base import call_back, coefs, finish, tvec
from core.samplers.registry import SAMPLERS
from core.samplers.sde import score_of
from core.samplers.spaces import EuclideanSpace, cmap, per_sample_norm
from core.tensor_utils import bcast

CorrectorRule = Literal["sigma", "norms", "batch"]
CORRECTOR_RULES: tuple[str, ...] = get_args(CorrectorRule)


def transition(process, t, s, x) -> tuple[Any, Any]:
    """``(a, G²)`` of the forward step ``s → t`` broadcast to ``x``."""
    ct, cs = coefs(process, t, x), coefs(process, s, x)
    a = ct.a / cs.a
    return a, ct.s * ct.s - a * a * cs.s * cs.s


def langevin_scale(process, t, s) -> Any:
    """``(alpha_t / alpha_s)²`` per sample (a dict of them for a process dict): ``1 - beta_i`` on VP."""
    return (process.alpha(t) / process.alpha(s)) ** 2


def reverse_diffusion_step(x, score, a, g2, space, generator, cond) -> Any:
    return x - (a - 1.0) * x + g2 * score + g2 ** 0.5 * space.noise_like(x, generator, cond)


def corrector_step_size(process, t, x, score, z, snr: float, scale: Any, rule: CorrectorRule) -> Any:
    if rule == "sigma":
        step = 2.0 * scale * snr**2 * process.sigma(t) ** 2
    else:
        zn, sn = per_sample_norm(z), per_sample_norm(score)
        if rule == "batch":
            zn, sn = cmap(lambda n: n.mean().expand_as(n), zn), cmap(lambda n: n.mean().expand_as(n), sn)
        ratio = cmap(lambda n: n, zn) / cmap(lambda n: n.clamp_min(1e-12), sn)
        step = 2.0 * scale * (snr * ratio) ** 2
    return bcast(step, x)


def langevin_correct(process, x, t, score, space, generator, cond, snr: float, scale: Any, rule: CorrectorRule,
                     scale_eps: float) -> Any:
    z = space.noise_like(x, generator, cond)
    step = corrector_step_size(process, t, x, score, z, snr, scale, rule)
    return x + step * score + scale_eps * (2.0 * step) ** 0.5 * z


def _check(rule: str, snr: float, corrector_steps: int) -> None:
    if rule not in CORRECTOR_RULES:
        raise UnknownNameError(f"unknown Langevin step rule {rule!r}; valid choices: {', '.join(CORRECTOR_RULES)}")
    if snr < 0 or corrector_steps < 0:
        raise ValueError(f"snr ({snr}) and corrector_steps ({corrector_steps}) must be >= 0")


@SAMPLERS.register("reverse_diffusion")
def sample_reverse_diffusion(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
                             snr: float = 0.0, corrector_steps: int = 1, scale_eps: float = 1.0,
                             step_rule: CorrectorRule = "sigma") -> Any:
    """Reverse-diffusion predictor; with ``snr > 0`` each step first applies ``corrector_steps``
    Langevin corrections (the GDSS / score-SDE predictor–corrector sampler, one network call each)."""
    _check(step_rule, snr, corrector_steps)
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        a, g2 = transition(process, t, s, x)
        if snr > 0:
            lscale = langevin_scale(process, t, s)
            for _ in range(corrector_steps):
                score, _ = score_of(denoiser, process, x, t, cond)
                x = langevin_correct(process, x, t, score, space, generator, cond, snr, lscale, step_rule, scale_eps)
                x = space.project(x, t, cond)
        score, x0 = score_of(denoiser, process, x, t, cond)
        x = space.project(reverse_diffusion_step(x, score, a, g2, space, generator, cond), s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


@SAMPLERS.register("s4")
def sample_s4(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
              snr: float = 0.1, scale_eps: float = 1.0, step_rule: CorrectorRule = "sigma") -> Any:
    """S4: one score evaluation per step, shared by a Langevin correction and the reverse-diffusion
    prediction (``snr = 0``: the plain reverse-diffusion predictor)."""
    _check(step_rule, snr, 1)
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        a, g2 = transition(process, t, s, x)
        score, x0 = score_of(denoiser, process, x, t, cond)
        if snr > 0:
            x = space.project(langevin_correct(process, x, t, score, space, generator, cond, snr,
                                               langevin_scale(process, t, s), step_rule, scale_eps), t, cond)
        x = space.project(reverse_diffusion_step(x, score, a, g2, space, generator, cond), s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)
