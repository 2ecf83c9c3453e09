"""Probability-flow ODE samplers: Euler, Heun (EDM's 2nd-order), and an adaptive RK45 (scipy).

The probability-flow velocity is ``dx/dt = f x - g^2/2 ∇log p_t(x) = alpha' x0_hat + sigma' eps_hat``
(the two forms are equal for Gaussian processes; the second stays finite where ``alpha → 0``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.samplers.base import call_back, coefs, eps_of, finish, tvec
from core.samplers.registry import SAMPLERS
from core.samplers.spaces import EuclideanSpace
from core.tensor_utils import bcast
from core.types import State, StateDict, leaves


def velocity(denoiser, process, x, t, cond) -> tuple[Any, Any]:
    x0 = denoiser(x, t, cond)
    c = coefs(process, t, x)
    return c.da * x0 + c.ds * eps_of(x, x0, c), x0


@SAMPLERS.register("ode_euler")
def sample_ode_euler(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        v, x0 = velocity(denoiser, process, x, t, cond)
        x = space.project(x + v * bcast(s - t, x), s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


@SAMPLERS.register("ode_heun")
def sample_ode_heun(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None) -> Any:
    """Heun's method (trapezoidal predictor–corrector), two evaluations per step."""
    space = space or EuclideanSpace()
    for i in range(len(ts) - 1):
        t, s = tvec(ts[i], x), tvec(ts[i + 1], x)
        dt = bcast(s - t, x)
        v, x0 = velocity(denoiser, process, x, t, cond)
        x_pred = x + v * dt
        v2, _ = velocity(denoiser, process, x_pred, s, cond)
        x = space.project(x + 0.5 * (v + v2) * dt, s, cond)
        call_back(callback, i, ts[i], x, x0)
    return finish(denoiser, x, ts[-1], space, cond)


def _flatten(x: State) -> tuple[np.ndarray, Any]:
    if isinstance(x, dict):
        keys = sorted(x)
        meta = ("dict", keys, [x[k].shape for k in keys], x[keys[0]].dtype, x[keys[0]].device)
        return torch.cat([x[k].reshape(-1) for k in keys]).detach().cpu().double().numpy(), meta
    return x.detach().reshape(-1).cpu().double().numpy(), ("tensor", x.shape, x.dtype, x.device)


def _unflatten(flat: np.ndarray, meta: Any) -> State:
    y = torch.from_numpy(np.ascontiguousarray(flat))
    if meta[0] == "tensor":
        return y.reshape(meta[1]).to(dtype=meta[2], device=meta[3])
    _, keys, shapes, dtype, device = meta
    out, pos = {}, 0
    for k, shp in zip(keys, shapes, strict=True):
        n = int(np.prod(shp))
        out[k] = y[pos:pos + n].reshape(shp).to(dtype=dtype, device=device)
        pos += n
    return StateDict(out)


@SAMPLERS.register("ode_adaptive")
def sample_ode_adaptive(denoiser, process, x, ts, *, space=None, generator=None, callback=None, cond=None,
                        rtol: float = 1e-4, atol: float = 1e-4, method: str = "RK45") -> Any:
    """Adaptive Runge–Kutta (``scipy.integrate.solve_ivp``) from ``ts[0]`` to ``ts[-1]``; only the
    end points of ``ts`` matter. Tolerances set the cost (reported through the NFE counter)."""
    from scipy.integrate import solve_ivp

    space = space or EuclideanSpace()
    flat, meta = _flatten(x)
    step = [0]

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        xs = _unflatten(y, meta)
        tt = tvec(torch.tensor(t, dtype=torch.float64), xs)
        with torch.no_grad():
            v, x0 = velocity(denoiser, process, xs, tt, cond)
        call_back(callback, step[0], torch.tensor(t), xs, x0)
        step[0] += 1
        return _flatten(v)[0]

    sol = solve_ivp(rhs, (float(ts[0]), float(ts[-1])), flat, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"adaptive ODE solver failed: {sol.message}")
    x = space.project(_unflatten(sol.y[:, -1], meta), tvec(ts[-1], leaves(x)[0]), cond)
    return finish(denoiser, x, ts[-1], space, cond)
