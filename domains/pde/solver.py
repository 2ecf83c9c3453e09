"""A batched explicit solver for the forced 1-D viscous Burgers equation (the WDNO data set-up).

``u_t + (u^2/2)_x = nu u_xx + f`` on ``x in [0, 1]`` with homogeneous Dirichlet boundaries, solved on
a fine interior grid ``x_i = (i + 1) dx``, ``dx = 1 / (n + 1)``, by forward Euler in time and second-order
central differences in space (conservative flux form, as in WDNO's generator). Everything is batched
torch, so one call integrates a whole data set, and differentiable, so control baselines can
optimise through it.

Grids nest: a training grid with ``nx`` interior points and refinement ``r`` uses the fine grid with
``r (nx + 1) - 1`` points, whose every ``r``-th point lies on the training grid. A forcing given on
the training grid (``[B, nt, nx]``) is linear in ``x`` between grid points (zero beyond the walls is
*not* assumed: it is held at the edge values) and constant in time over each of the ``nt`` frames,
so data generation and re-simulation of a generated control use the very same forcing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from core.config import ConfigModel


class SolverConfig(ConfigModel):
    """Physical and numerical parameters of the solver."""

    nu: float = Field(0.01, gt=0, description="viscosity")
    horizon: float = Field(8.0, gt=0, description="physical end time T")
    refine_x: int = Field(4, ge=1, description="fine grid points per training-grid interval")
    steps_per_frame: int = Field(256, ge=1, description="Euler steps between stored frames")
    u_bound: float = Field(3.0, gt=0, description="bound on |u| used for the advective stability limit")


class StabilityError(ValueError):
    """The requested time step exceeds the explicit scheme's stability limit."""


class NonFiniteError(FloatingPointError):
    """A trajectory became NaN or Inf."""


def fine_size(nx: int, refine: int) -> int:
    return refine * (nx + 1) - 1


def interior_grid(n: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """Interior points ``(i + 1) / (n + 1)``, ``i = 0 … n-1`` of ``[0, 1]``."""
    return torch.arange(1, n + 1, dtype=dtype) / (n + 1)


def stability_limit(dx: float, nu: float, u_bound: float) -> tuple[float, str]:
    """The largest stable forward-Euler step and the name of the binding limit."""
    diffusive = dx * dx / (2.0 * nu)
    advective = 2.0 * nu / (u_bound * u_bound)
    if diffusive <= advective:
        return diffusive, f"diffusive limit dt <= dx^2 / (2 nu) = {diffusive:.3e}"
    return advective, f"advective limit dt <= 2 nu / u_bound^2 = {advective:.3e}"


def check_stability(nx: int, nt: int, cfg: SolverConfig) -> float:
    """The time step for ``nt`` frames on grid ``nx``; refuses an unstable one, naming the limit."""
    dx = 1.0 / (fine_size(nx, cfg.refine_x) + 1)
    dt = cfg.horizon / (nt * cfg.steps_per_frame)
    limit, name = stability_limit(dx, cfg.nu, cfg.u_bound)
    if dt > limit:
        need = math.ceil(cfg.horizon / (nt * limit))
        raise StabilityError(
            f"solver step dt = {dt:.3e} (T={cfg.horizon}, {nt} frames x {cfg.steps_per_frame} steps, "
            f"dx = {dx:.3e}) exceeds the {name}; raise data.solver.steps_per_frame to >= {need} "
            f"or lower data.solver.refine_x")
    return dt


def refine_linear(v: Tensor, refine: int) -> Tensor:
    """Values ``[..., nx]`` on the training grid, linearly interpolated onto the nested fine grid."""
    if refine == 1:
        return v
    n = v.shape[-1]
    xf = interior_grid(fine_size(n, refine), v.dtype).to(v.device) * (n + 1) - 1  # fine x in coarse index units
    lo = xf.floor().clamp(0, n - 1).long()
    hi = (lo + 1).clamp(max=n - 1)
    w = (xf - lo.to(xf.dtype)).clamp(0, 1)
    return v[..., lo] * (1 - w) + v[..., hi] * w


def euler_step(u: Tensor, f: Tensor, dt: float, dx: float, nu: float) -> Tensor:
    """One forward-Euler step with zero Dirichlet ghost values."""
    p = F.pad(u, (1, 1))
    flux = 0.5 * p * p
    adv = (flux[..., 2:] - flux[..., :-2]) / (2 * dx)
    diff = (p[..., 2:] - 2 * u + p[..., :-2]) / (dx * dx)
    return u + dt * (-adv + nu * diff + f)


GRAPH_LIMIT_BYTES = 1 << 30  # above this estimated autograd graph, frames are checkpointed (recomputed in backward)


def _advance(u: Tensor, f: Tensor, steps: int, dt: float, dx: float, nu: float) -> Tensor:
    for _ in range(steps):
        u = euler_step(u, f, dt, dx, nu)
    return u


def simulate(u0: Tensor, forcing: Tensor | None, nt: int, cfg: SolverConfig,
             seeds: Sequence[int] | None = None, checkpoint_frames: bool | None = None) -> Tensor:
    """Integrate ``B`` trajectories; returns ``u`` on the training grid, ``[B, nt + 1, nx]``.

    ``u0`` is ``[B, n_fine]`` on the fine grid (``n_fine = fine_size(nx, refine_x)``); ``forcing`` is
    ``[B, nt, nx]`` on the training grid or ``None`` (unforced). ``seeds`` name the samples in the
    error raised when a trajectory stops being finite.

    Differentiable (the control baseline back-propagates through it). Autograd keeps every Euler step's
    intermediates, about ``6 x B x n_fine x 8`` bytes per step, so on the paper's grid (959 fine points,
    163,840 steps) a batch of 50 would need ~400 GB; with ``checkpoint_frames`` (default: when that estimate
    exceeds 1 GiB) only the state at each frame is kept and each frame's steps are recomputed during the
    backward pass (``torch.utils.checkpoint``): one extra forward pass, memory of one frame.
    """
    r = cfg.refine_x
    n_fine = u0.shape[-1]
    if (n_fine + 1) % r:
        raise ValueError(f"u0 has {n_fine} fine points, not of the form refine_x*(nx+1)-1 for refine_x={r}")
    nx = (n_fine + 1) // r - 1
    if forcing is not None and forcing.shape[-2:] != (nt, nx):
        raise ValueError(f"forcing has shape {tuple(forcing.shape)}, expected [B, {nt}, {nx}]")
    dt, dx = check_stability(nx, nt, cfg), 1.0 / (n_fine + 1)
    grad = torch.is_grad_enabled() and (u0.requires_grad or (forcing is not None and forcing.requires_grad))
    if checkpoint_frames is None:
        checkpoint_frames = 6 * u0.numel() * u0.element_size() * nt * cfg.steps_per_frame > GRAPH_LIMIT_BYTES
    u, frames = u0, [u0[..., r - 1::r]]
    for j in range(nt):
        f = refine_linear(forcing[:, j], r) if forcing is not None else torch.zeros_like(u)
        if grad and checkpoint_frames:
            from torch.utils.checkpoint import checkpoint

            u = checkpoint(_advance, u, f, cfg.steps_per_frame, dt, dx, cfg.nu, use_reentrant=False)
        else:
            u = _advance(u, f, cfg.steps_per_frame, dt, dx, cfg.nu)
        _check_finite(u, j, seeds)
        frames.append(u[..., r - 1::r])
    return torch.stack(frames, dim=1)


def _check_finite(u: Tensor, frame: int, seeds: Sequence[int] | None) -> None:
    bad = ~torch.isfinite(u).all(dim=-1)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        who = f"sample seed {seeds[i]}" if seeds is not None else f"batch row {i}"
        raise NonFiniteError(f"Burgers trajectory became NaN/Inf at frame {frame + 1} ({who}, "
                             f"{int(bad.sum())} bad rows); lower the forcing amplitude or refine the solver step")


def cole_hopf(x: Tensor, t: float, nu: float, a: float = 2.0, b: float = 1.0) -> Tensor:
    """Exact unforced Dirichlet solution from ``phi = a + b exp(-nu pi^2 t) cos(pi x)`` (``a > |b|``).

    ``u = -2 nu phi_x / phi`` solves Burgers when ``phi`` solves the heat equation; ``phi_x = 0`` at
    ``x = 0, 1`` makes ``u`` vanish at both walls.
    """
    e = b * math.exp(-nu * math.pi ** 2 * t)
    return 2 * nu * math.pi * e * torch.sin(math.pi * x) / (a + e * torch.cos(math.pi * x))


__all__ = ["NonFiniteError", "SolverConfig", "StabilityError", "check_stability", "cole_hopf", "euler_step",
           "fine_size", "interior_grid", "refine_linear", "simulate", "stability_limit"]
