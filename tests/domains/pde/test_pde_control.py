"""Control objective pieces: energy oracle, exact re-simulation, and the solver-gradient baseline."""

from __future__ import annotations

import pytest
import torch

from domains.pde.config import PDEValidate
from domains.pde.control import energy, final_error, optimise_control, resimulate
from domains.pde.data import PDEData, generate
from domains.pde.solver import SolverConfig


def test_energy_oracle():
    f = torch.ones(2, 4, 7)
    f[1] *= 2.0
    assert torch.allclose(energy(f, 8.0), torch.tensor([8.0, 32.0]))  # int_0^8 int_0^1 c^2 = 8 c^2


def test_resimulating_the_true_forcing_reproduces_the_data():
    d = PDEData(nx=7, nt=4, solver=SolverConfig(horizon=0.5, refine_x=1, steps_per_frame=64))
    data = generate(d, "test", 2, seed=0, progress=False)
    u_t = resimulate(data["u"][:, 0], data["f"], d.solver)
    assert float(final_error(u_t, data["u"][:, -1]).max()) < 1e-20  # refine_x = 1: same grid, same steps


def test_solver_gradient_baseline_reduces_J():
    class C:
        validate_ = PDEValidate(control_optimizer_steps=6, control_optimizer_lr=1.0, control_energy_weight=0.0)
        data = PDEData(nx=7, nt=4, solver=SolverConfig(horizon=0.25, refine_x=1, steps_per_frame=32))

    data = generate(C.data, "test", 2, seed=0, progress=False)
    u = data["u"]
    j0 = final_error(resimulate(u[:, 0], torch.zeros_like(data["f"]), C.data.solver), u[:, -1])
    f = optimise_control(u, C())
    j1 = final_error(resimulate(u[:, 0], f, C.data.solver), u[:, -1])
    assert float(j1.mean()) < 0.5 * float(j0.mean())
    assert f.shape == data["f"].shape and not f.requires_grad


def _tiny_control_case(steps: int = 6, lr: float = 1.0, keep_best: bool = True):
    class C:
        validate_ = PDEValidate(control_optimizer_steps=steps, control_optimizer_lr=lr, control_energy_weight=0.0,
                                control_keep_best=keep_best)
        data = PDEData(nx=7, nt=4, solver=SolverConfig(horizon=0.25, refine_x=1, steps_per_frame=32))

    return C(), generate(C.data, "test", 2, seed=0, progress=False)


def test_adam_from_a_given_control_records_J_per_iteration():
    cfg, data = _tiny_control_case()
    u, f_true = data["u"], data["f"]
    curve: list[float] = []
    f = optimise_control(u, cfg, f_init=f_true, curve=curve)
    assert len(curve) == 6 and curve[0] < 1e-20  # iterate 0 is the start: the true forcing reaches the target
    j_end = float(final_error(resimulate(u[:, 0], f, cfg.data.solver), u[:, -1]).mean())
    assert j_end < 1e-3  # Adam's first step moves it by at most lr per entry; it stays near the optimum
    zero_curve: list[float] = []
    optimise_control(u, cfg, curve=zero_curve)
    j0 = float(final_error(resimulate(u[:, 0], torch.zeros_like(f_true), cfg.data.solver), u[:, -1]).mean())
    assert zero_curve[0] == pytest.approx(j0, rel=1e-9)  # iterate 0 from zero = the unforced J
    assert zero_curve[-1] < zero_curve[0]
    half = optimise_control(u, cfg, f_init=0.5 * f_true)  # a start nearer the answer ends nearer it
    j_half = float(final_error(resimulate(u[:, 0], half, cfg.data.solver), u[:, -1]).mean())
    assert j_half < zero_curve[-1]
    with pytest.raises(ValueError, match=r"f_init has shape \(2, 3, 7\)"):
        optimise_control(u, cfg, f_init=f_true[:, :3])


def test_adam_keeps_each_targets_best_iterate():
    """With a step that overshoots, the returned control is each target's best iterate (J here, w_E = 0),
    never worse than any iterate on the curve; without keep_best the last iterate comes back."""
    cfg, data = _tiny_control_case(steps=8, lr=4.0)
    u = data["u"]
    curve: list[float] = []
    f = optimise_control(u, cfg, curve=curve)
    j = final_error(resimulate(u[:, 0], f, cfg.data.solver), u[:, -1])
    assert float(j.mean()) <= min(curve) + 1e-12
    last_cfg, _ = _tiny_control_case(steps=8, lr=4.0, keep_best=False)
    f_last = optimise_control(u, last_cfg)
    j_last = final_error(resimulate(u[:, 0], f_last, cfg.data.solver), u[:, -1])
    assert bool((j <= j_last + 1e-15).all())


def test_sim_mse_excludes_the_initial_state():
    from domains.pde.evaluate import sim_mse

    u = torch.zeros(2, 3, 4)
    u_hat = u.clone()
    u_hat[:, 0] = 5.0  # errors at t = 0 do not count
    u_hat[:, 2, :2] = 2.0  # 2 of the 8 counted entries per sample off by 2 -> MSE 4 * 2 / 8 = 1
    true = u + 1.0
    true[:, 0] = 0.0
    mse, nmse = sim_mse(u_hat, u)
    assert mse == 1.0 and nmse == float("inf")  # reference u is zero
    mse2, nmse2 = sim_mse(true, true)
    assert mse2 == 0.0 and nmse2 == 0.0


def test_cosine_guidance_schedule_ramps_up_towards_the_end():
    from core.processes import make_process
    from domains.pde.control import ScheduledGuidance

    proc = make_process({"name": "edm"})
    x = torch.zeros(1, 1, 2, 2)
    g = ScheduledGuidance(lambda x, t, c: x, proc, lambda x0, c: -x0.sum(dim=(1, 2, 3)), scale=2.0)
    w = [g.weight(torch.tensor([t]), x) for t in (1.0, 0.75, 0.5, 0.25, 0.0)]
    assert w[0] == pytest.approx(0.0, abs=1e-9) and w[-1] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(w[:-1], w[1:], strict=True))
    const = ScheduledGuidance(lambda x, t, c: x, proc, lambda x0, c: -x0.sum(dim=(1, 2, 3)), scale=2.0,
                              schedule="constant")
    assert const.weight(torch.tensor([1.0]), x) == 1.0
    # the guided estimate moves by scale * weight * sigma^2 * grad (grad of -sum x0 = -1 everywhere)
    out = g(torch.zeros(1, 1, 2, 2), torch.tensor([0.5]))
    assert float(out.mean()) < 0 and g.scale == pytest.approx(2.0 * w[2])
