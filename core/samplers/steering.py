"""Feynman–Kac steering (Singhal et al. 2025, "A General Framework for Inference-time Scaling and
Steering of Diffusion Models").

``N`` particles per sample follow the ancestral (DDPM) proposal; at each step a potential built from a
user reward on the denoised estimate ``r(x0_hat)`` reweights them, and particles are resampled when
the effective sample size falls below ``ess_threshold · N``. With the ``difference`` potential
``G_i = exp(λ (r_i - r_{i-1}))`` the product of potentials telescopes to ``exp(λ r(x0))``, so the
particle system targets ``p(x0) exp(λ r(x0)) / Z``. ``max`` uses ``exp(λ max_{j≤i} r_j)`` and ``sum``
``exp(λ Σ_{j≤i} r_j)`` (as increments of the log-weight).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers.base import ancestral_coefs, call_back, finish, tvec
from core.samplers.spaces import EuclideanSpace
from core.seeding import Generator, PerSampleGenerator, rand
from core.types import State, index_batch

Potential = Literal["difference", "max", "sum"]
Resampling = Literal["systematic", "multinomial"]


def effective_sample_size(logw: Tensor) -> Tensor:
    """ESS of log-weights ``[B, N]``: ``(Σ w)² / Σ w²`` per row."""
    w = torch.softmax(logw, dim=1)
    return 1.0 / (w * w).sum(1)


def systematic_resample(weights: Tensor, u: Tensor) -> Tensor:
    """Systematic resampling: indices ``[B, N]`` from normalised weights ``[B, N]`` and one uniform
    ``u ∈ [0, 1)`` per row (positions ``(u + k) / N``)."""
    n = weights.shape[1]
    positions = (u[:, None] + torch.arange(n, device=weights.device, dtype=weights.dtype)) / n
    cdf = torch.cumsum(weights, 1)
    cdf[:, -1] = 1.0
    return torch.searchsorted(cdf, positions).clamp_max(n - 1)


def group_uniforms(generator: Generator, b: int, n: int, k: int, device: Any) -> Tensor:
    """``k`` uniforms per sample ``[B, k]``. With one generator per particle (``B * N`` of them), sample
    ``b`` draws from its first particle's generator, so steering stays reproducible per sample."""
    if isinstance(generator, PerSampleGenerator) and len(generator) == b * n:
        return torch.stack([torch.rand((k,), generator=g, dtype=torch.float64, device=generator.device)
                            for g in generator.generators[::n]]).to(device)
    return rand((b, k), generator, dtype=torch.float64).to(device)


def multinomial_resample(weights: Tensor, generator: Generator) -> Tensor:
    n = weights.shape[1]
    u = group_uniforms(generator, weights.shape[0], n, n, weights.device).to(weights.dtype)
    cdf = torch.cumsum(weights, 1)
    cdf[:, -1] = 1.0
    return torch.searchsorted(cdf, u.contiguous()).clamp_max(n - 1)


def potential_increment(kind: Potential, lmbda: float, r: Tensor, r_prev: Tensor | None,
                        r_max: Tensor | None) -> Tensor:
    """Increment of the log-weight at one step (rewards ``[B, N]``)."""
    if kind == "difference":
        return lmbda * (r - (r_prev if r_prev is not None else torch.zeros_like(r)))
    if kind == "sum":
        return lmbda * r
    if kind == "max":
        new_max = r if r_max is None else torch.maximum(r_max, r)
        return lmbda * (new_max - (r_max if r_max is not None else torch.zeros_like(r)))
    raise ValueError(f"unknown potential {kind!r}; valid choices: difference, max, sum")


@dataclass
class FKResult:
    x: State  # [B, ...] one particle per sample, chosen by the final weights
    particles: State  # [B * N, ...]
    log_weights: Tensor  # [B, N] final (normalised) log-weights
    rewards: Tensor  # [B, N] final rewards
    ess_history: list[Tensor] = field(default_factory=list)
    resample_steps: list[int] = field(default_factory=list)
    nfe: int = 0


class _State:
    def __init__(self, b: int, n: int, device: Any) -> None:
        self.b, self.n = b, n
        self.logw = torch.zeros(b, n, dtype=torch.float64, device=device)
        self.r_prev: Tensor | None = None
        self.r_max: Tensor | None = None

    def reindex(self, idx: Tensor) -> Tensor:
        """Flat particle indices for per-row indices ``[B, N]``; reset weights after resampling."""
        flat = (idx + self.n * torch.arange(self.b, device=idx.device)[:, None]).reshape(-1)
        for name in ("r_prev", "r_max"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, torch.gather(v, 1, idx))
        self.logw = torch.zeros_like(self.logw)
        return flat


def fk_steering(denoiser: Callable[..., State], process: ForwardProcess, x_init: State, ts: Tensor, *,
                reward_fn: Callable[[State, Any], Tensor], num_particles: int, lmbda: float = 1.0,
                potential: Potential = "difference", resampling: Resampling = "systematic",
                ess_threshold: float = 0.5, select: Literal["sample", "argmax"] = "sample",
                space: EuclideanSpace | None = None, generator: Generator = None, callback: Any = None,
                cond: Any = None) -> FKResult:
    """``x_init`` holds ``B * N`` prior draws, particles of sample ``b`` at rows ``b*N … b*N+N-1``."""
    space = space or EuclideanSpace()
    x = x_init
    total = next(iter(x.values())).shape[0] if isinstance(x, dict) else x.shape[0]
    if total % num_particles:
        raise ValueError(f"x_init has {total} rows, not a multiple of num_particles={num_particles}")
    st = _State(total // num_particles, num_particles, ts.device)
    out = FKResult(x=x, particles=x, log_weights=st.logw, rewards=st.logw)
    nfe = 0
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        x0 = denoiser(x, t, cond)
        nfe += 1
        x, x0 = _reweight_resample(st, x, x0, reward_fn, cond, lmbda, potential, resampling,
                                   ess_threshold, generator, out, i)
        m_x, m_0, var = ancestral_coefs(process, t, s, x)
        x = space.project(m_x * x + m_0 * x0 + var**0.5 * space.noise_like(x, generator, cond), s, cond)
        call_back(callback, i, ts[i], x, x0)
    x0 = finish(denoiser, x, ts[-1], space, cond)
    nfe += 1
    r = reward_fn(x0, cond).to(torch.float64).reshape(st.b, st.n)
    st.logw = st.logw + potential_increment(potential, lmbda, r, st.r_prev, st.r_max)
    w = torch.softmax(st.logw, 1)
    if select == "argmax":
        pick = w.argmax(1)
    else:
        u = group_uniforms(generator, st.b, st.n, 1, w.device)
        cdf = torch.cumsum(w, 1)
        cdf[:, -1] = 1.0
        pick = torch.searchsorted(cdf, u).squeeze(1).clamp_max(st.n - 1)  # one draw per sample from w
    rows = pick + st.n * torch.arange(st.b, device=pick.device)
    out.x, out.particles, out.log_weights, out.rewards, out.nfe = index_batch(x0, rows), x0, torch.log(w), r, nfe
    return out


def _reweight_resample(st: _State, x: State, x0: State, reward_fn: Any, cond: Any, lmbda: float,
                       potential: Potential, resampling: Resampling, ess_threshold: float,
                       generator: Generator, out: FKResult, step: int) -> tuple[State, State]:
    r = reward_fn(x0, cond).to(torch.float64).reshape(st.b, st.n)
    st.logw = st.logw + potential_increment(potential, lmbda, r, st.r_prev, st.r_max)
    st.r_max = r if st.r_max is None else torch.maximum(st.r_max, r)
    st.r_prev = r
    ess = effective_sample_size(st.logw)
    out.ess_history.append(ess)
    if bool((ess < ess_threshold * st.n).any()):
        w = torch.softmax(st.logw, 1)
        if resampling == "systematic":
            idx = systematic_resample(w, group_uniforms(generator, st.b, st.n, 1, w.device)[:, 0])
        else:
            idx = multinomial_resample(w, generator)
        flat = st.reindex(idx)
        x, x0 = index_batch(x, flat), index_batch(x0, flat)
        out.resample_steps.append(step)
    return x, x0
