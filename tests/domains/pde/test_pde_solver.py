"""The Burgers solver: exact Cole–Hopf agreement, convergence under refinement, refusals."""

from __future__ import annotations

import math

import pytest
import torch

from domains.pde.solver import (
    NonFiniteError,
    SolverConfig,
    StabilityError,
    cole_hopf,
    euler_step,
    fine_size,
    interior_grid,
    refine_linear,
    simulate,
    stability_limit,
)


def _cole_hopf_error(refine: int, nu: float = 0.1, horizon: float = 1.0) -> float:
    nx, nt = 15, 4
    n_fine = fine_size(nx, refine)
    dx = 1.0 / (n_fine + 1)
    steps = math.ceil(horizon / (nt * 0.4 * dx * dx / nu))
    cfg = SolverConfig(nu=nu, horizon=horizon, refine_x=refine, steps_per_frame=steps, u_bound=1.0)
    u0 = cole_hopf(interior_grid(n_fine), 0.0, nu)[None]
    u = simulate(u0, None, nt, cfg)
    exact = torch.stack([cole_hopf(interior_grid(nx), horizon * j / nt, nu) for j in range(nt + 1)])
    return float((u[0] - exact).abs().max())


def test_cole_hopf_exact_solution_and_second_order_convergence():
    errs = [_cole_hopf_error(r) for r in (1, 2, 4)]
    assert errs[2] < 2e-4  # |u| ~ 0.6: agreement to well under 0.1 %
    assert errs[0] / errs[1] > 3.0 and errs[1] / errs[2] > 3.0  # ~4x per halving of dx (2nd order)


def test_cole_hopf_is_a_solution():
    # hand check of the formula: residual of u_t + u u_x - nu u_xx by finite differences is ~0
    nu, x, h, t = 0.1, torch.linspace(0.1, 0.9, 9, dtype=torch.float64), 1e-4, 0.3
    u = cole_hopf(x, t, nu)
    ut = (cole_hopf(x, t + h, nu) - cole_hopf(x, t - h, nu)) / (2 * h)
    ux = (cole_hopf(x + h, t, nu) - cole_hopf(x - h, t, nu)) / (2 * h)
    uxx = (cole_hopf(x + h, t, nu) - 2 * u + cole_hopf(x - h, t, nu)) / h ** 2
    assert float((ut + u * ux - nu * uxx).abs().max()) < 1e-5
    assert float(cole_hopf(torch.tensor([0.0, 1.0], dtype=torch.float64), t, nu).abs().max()) < 1e-15


def test_forced_wdno_setup_converges_under_refinement():
    from domains.pde.data import PDEData, generate

    base = PDEData(nx=15, nt=4, n_forcing_terms=8,
                   solver=SolverConfig(horizon=1.0, refine_x=2, steps_per_frame=128))
    sols = []
    for r, spf in ((2, 128), (4, 512), (8, 2048)):
        d = base.model_copy(update={"solver": base.solver.model_copy(update={"refine_x": r, "steps_per_frame": spf})})
        sols.append(generate(d, "train", 3, seed=1, progress=False)["u"])
    e1, e2 = float((sols[0] - sols[2]).abs().max()), float((sols[1] - sols[2]).abs().max())
    assert e2 < e1 / 2.5  # error against the finest solution shrinks under refinement
    assert e2 < 0.05


def test_euler_step_oracle_on_a_3_point_grid():
    u, f = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64)
    dt, dx, nu = 0.01, 0.25, 0.1
    # point 1: -(u2^2 - u0^2)/(4 dx) + nu (u0 - 2u1 + u2)/dx^2 = -(9-1)/1 + 0.1*0/0.0625 = -8
    # point 0 (ghost 0): -(4 - 0)/1 + 0.1 (0 - 2 + 2)/0.0625 = -4; point 2: -(0 - 4) + 0.1 (2 - 6)/0.0625 = -2.4
    out = euler_step(u, f, dt, dx, nu)
    assert torch.allclose(out, u + dt * torch.tensor([[-4.0, -8.0, -2.4]], dtype=torch.float64))


def test_refine_linear_is_exact_on_the_nested_points_and_linear_between():
    v = torch.tensor([[0.0, 1.0, 4.0]], dtype=torch.float64)
    fine = refine_linear(v, 2)  # 7 points; every 2nd (index 1, 3, 5) is a coarse point
    assert torch.allclose(fine[0, 1::2], v[0])
    assert torch.allclose(fine[0, 2], torch.tensor(0.5, dtype=torch.float64))
    assert torch.allclose(fine[0, 4], torch.tensor(2.5, dtype=torch.float64))


def test_unstable_step_is_refused_naming_the_limit():
    cfg = SolverConfig(refine_x=4, steps_per_frame=8)
    with pytest.raises(StabilityError, match=r"advective limit dt <= 2 nu / u_bound\^2.*steps_per_frame to >= \d+"):
        simulate(torch.zeros(1, fine_size(23, 4), dtype=torch.float64), None, 16, cfg)
    limit, name = stability_limit(0.1, 0.5, 1.0)
    assert limit == pytest.approx(0.01) and "diffusive" in name


def test_nan_stops_with_the_sample_seed():
    cfg = SolverConfig(horizon=0.1, refine_x=1, steps_per_frame=64)
    u0 = torch.zeros(2, 7, dtype=torch.float64)
    f = torch.zeros(2, 2, 7, dtype=torch.float64)
    f[1, 0, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="sample seed 4242"):
        simulate(u0, f, 2, cfg, seeds=[11, 4242])


def test_forcing_shape_is_checked():
    with pytest.raises(ValueError, match="forcing has shape"):
        simulate(torch.zeros(1, 7, dtype=torch.float64), torch.zeros(1, 3, 5), 2,
                 SolverConfig(horizon=0.1, refine_x=1, steps_per_frame=64))


def test_frame_checkpointing_gives_the_same_gradient():
    """Recomputing each frame's steps in the backward pass (the memory-bounded route for the paper's grid)
    changes neither the trajectory nor the gradient with respect to the forcing."""
    cfg = SolverConfig(horizon=0.5, refine_x=2, steps_per_frame=64)
    g = torch.Generator().manual_seed(0)
    u0 = torch.randn(3, 2 * 8 - 1, generator=g, dtype=torch.float64) * 0.5
    f0 = torch.randn(3, 4, 7, generator=g, dtype=torch.float64)
    out = {}
    for flag in (False, True):
        f = f0.clone().requires_grad_(True)
        u = simulate(u0, f, 4, cfg, checkpoint_frames=flag)
        u[:, -1].pow(2).sum().backward()
        out[flag] = (u.detach(), f.grad)
    assert torch.equal(out[False][0], out[True][0])
    assert out[True][1].abs().sum() > 0 and torch.allclose(out[False][1], out[True][1], rtol=1e-12, atol=1e-14)
