"""Control: generate a forcing ``f`` that drives ``u0`` to a target ``u_T``, scored by re-simulation.

The diffusion model samples ``(u, f)`` jointly with ``u0`` and the target ``u_T`` known (replacement
conditioning, ``task = "control"``), guided by the control objective on its denoised estimate
(``core.samplers.guidance.ReconstructionGuidance`` with log-likelihood ``-J``), as in WDNO:
``J = mean_x (u_T - target)^2 + w_E E``, ``E = int int f^2 dt dx``. The generated ``f`` is then
re-simulated with the solver from ``u0`` — the score never uses the model's own ``u``. The baseline
optimises ``f`` directly by Adam through the differentiable solver, from zero; with
``validate.control_refine`` the same Adam also starts from the diffusion model's ``f`` (row
``wdno_adam``), so the table shows what the generated control is worth as a starting point. Both record
``J`` after every solver iteration (``control_curve.json``, ``plots/control_curve.png``). Re-simulation
starts from ``u0`` linearly interpolated onto the solver's fine grid, for every method and for the true ``f``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from core.samplers.base import coefs
from core.samplers.guidance import ReconstructionGuidance
from domains.pde.sampling import condition, generate
from domains.pde.solver import refine_linear, simulate
from domains.pde.state import Representation, unpack


def energy(f: Tensor, horizon: float) -> Tensor:
    """``int_0^T int_0^1 f^2 dx dt`` per sample (frames are piecewise constant)."""
    return horizon * f.pow(2).mean(dim=(-2, -1))


def resimulate(u0: Tensor, f: Tensor, solver: Any) -> Tensor:
    """Final state ``u_T [B, nx]`` of the solver driven by ``f`` from ``u0`` (training grid)."""
    fine = refine_linear(u0.double(), solver.refine_x)
    return simulate(fine, f.double(), f.shape[-2], solver)[:, -1]


def final_error(u_t: Tensor, target: Tensor) -> Tensor:
    return (u_t.double() - target.double()).pow(2).mean(dim=-1)


class ScheduledGuidance(ReconstructionGuidance):
    """Reconstruction guidance whose scale follows the noise level: ``cosine`` weights it by
    ``(1 + cos(pi r)) / 2`` with ``r`` the remaining fraction of the sampler's log-noise range (0 at
    the highest noise, 1 at the end), a cosine guidance schedule as in WDNO's control; ``constant``
    keeps ``scale``."""

    def __init__(self, *args: Any, schedule: str = "cosine", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base, self.schedule = self.scale, schedule
        p = self.process
        self.log_hi, self.log_lo = math.log(float(getattr(p, "sigma_max", 80.0))), math.log(float(getattr(p, "sigma_min", 2e-3)))

    def weight(self, t: Tensor, x: Tensor) -> float:
        if self.schedule == "constant":
            return 1.0
        c = coefs(self.process, t, x)
        log_sigma = float((c.s / c.a).flatten()[0].clamp_min(1e-12).log())
        r = min(max((self.log_hi - log_sigma) / (self.log_hi - self.log_lo), 0.0), 1.0)
        return 0.5 * (1.0 - math.cos(math.pi * r))

    def __call__(self, x: Tensor, t: Tensor, cond: Any = None) -> Tensor:
        self.scale = self.base * self.weight(t, x)
        return super().__call__(x, t, cond)


def guided_control(model: Any, rep: Representation, u: Tensor, f: Tensor, scales: Tensor, cfg: Any) -> tuple[Tensor, int]:
    """Sampled controls ``f [B, nt, nx]`` for the targets ``u[:, -1]`` and the NFE."""
    v, horizon = cfg.validate_, cfg.data.solver.horizon
    target = u[:, -1].float()

    def log_likelihood(x0: Tensor, cond: Any) -> Tensor:
        uh, fh = unpack(rep.decode(x0), scales)
        tgt = cond["target"]
        return -(final_error(uh[:, -1], tgt).float() + v.control_energy_weight * energy(fh, horizon).float())

    cond = condition(rep, u, torch.zeros_like(f), scales, "control", cfg.network.conditioning)
    cond["target"] = target
    guided = ScheduledGuidance(model, model.process, log_likelihood, scale=v.control_guidance,
                               schedule=v.control_schedule)
    x, nfe = generate(model, rep, cond, range(u.shape[0]), cfg.seed, cfg.sample, denoiser=guided)
    return unpack(rep.decode(x), scales)[1], nfe


def optimise_control(u: Tensor, cfg: Any, f_init: Tensor | None = None,
                     curve: list[float] | None = None) -> Tensor:
    """Baseline: Adam on ``f`` through the differentiable solver, on ``J + w_E E``, from ``f_init``
    (default zero). ``curve``, when given, receives the mean ``J`` of each iterate before its step.

    With ``validate.control_keep_best`` (default) each target keeps its best iterate by ``J + w_E E``
    (the final one included): Adam's fixed step can overshoot near the optimum, and every iterate's
    objective is computed anyway. Otherwise the last iterate is returned.
    """
    v, solver = cfg.validate_, cfg.data.solver
    nt, nx = u.shape[1] - 1, u.shape[2]
    if f_init is not None and tuple(f_init.shape) != (u.shape[0], nt, nx):
        raise ValueError(f"optimise_control: f_init has shape {tuple(f_init.shape)}, the targets need "
                         f"{(u.shape[0], nt, nx)} (batch, frames, points)")
    start = torch.zeros((u.shape[0], nt, nx)) if f_init is None else f_init
    f = start.detach().to(torch.float64).clone().requires_grad_(True)
    opt = torch.optim.Adam([f], lr=v.control_optimizer_lr)
    fine = refine_linear(u[:, 0].double(), solver.refine_x)
    best_f = f.detach().clone()
    best = torch.full((u.shape[0],), math.inf, dtype=torch.float64)

    def objective(fc: Tensor) -> tuple[Tensor, Tensor]:
        j = final_error(simulate(fine, fc, nt, solver)[:, -1], u[:, -1])
        return j, j + v.control_energy_weight * energy(fc, solver.horizon)

    def keep(obj: Tensor) -> None:
        better = obj.detach() < best
        best.copy_(torch.where(better, obj.detach(), best))
        best_f[better] = f.detach()[better]

    for _ in range(v.control_optimizer_steps):
        j, obj = objective(f)
        if curve is not None:
            curve.append(float(j.detach().mean()))
        keep(obj)
        opt.zero_grad()
        obj.sum().backward()
        opt.step()
    if not v.control_keep_best:
        return f.detach()
    with torch.no_grad():
        keep(objective(f)[1])
    return best_f


def evaluate_control(model: Any, rep: Representation, data: dict[str, Tensor], cfg: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Tensor]]:
    """Metrics, per-sample rows and the controls of WDNO, the solver optimiser and the true forcing."""
    import time

    n = min(cfg.validate_.control_n, data["u_test"].shape[0])
    u, f, solver = data["u_test"][:n], data["f_test"][:n], cfg.data.solver
    t0 = time.perf_counter()
    f_wdno, nfe = guided_control(model, rep, u, f, data["scales"], cfg)
    t1 = time.perf_counter()
    curves: dict[str, list[float]] = {"solver_adam": []}
    f_opt = optimise_control(u, cfg, curve=curves["solver_adam"])
    t2 = time.perf_counter()
    controls = {"wdno": f_wdno, "solver_adam": f_opt}
    metrics: dict[str, Any] = {"control_n": n, "control_nfe": nfe, "control_s_wdno": t1 - t0,
                               "control_s_solver_adam": t2 - t1,
                               "control_optimizer_steps": cfg.validate_.control_optimizer_steps}
    if cfg.validate_.control_refine:
        curves["wdno_adam"] = []
        controls["wdno_adam"] = optimise_control(u, cfg, f_init=f_wdno, curve=curves["wdno_adam"])
        metrics["control_s_wdno_adam"] = time.perf_counter() - t2 + (t1 - t0)  # sampling + the iterations
    controls.update({"true_f": f, "zero_f": torch.zeros_like(f)})
    rows = []
    for name, fc in controls.items():
        j = final_error(resimulate(u[:, 0], fc, solver), u[:, -1])
        e = energy(fc.double(), solver.horizon)
        metrics[f"J_{name}"], metrics[f"energy_{name}"] = float(j.mean()), float(e.mean())
        rows += [{"method": name, "sample": i, "J": float(j[i]), "energy": float(e[i])} for i in range(n)]
        if name in curves:  # J after the last iteration closes the curve
            curves[name].append(metrics[f"J_{name}"])
    metrics["control_curves"] = curves
    return metrics, rows, controls


__all__ = ["ScheduledGuidance", "energy", "evaluate_control", "final_error", "guided_control", "optimise_control", "resimulate"]
