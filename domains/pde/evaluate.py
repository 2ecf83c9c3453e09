"""Validation of the pde domain: simulation MSE against the solver, with baselines trained in the same run.

Methods: ``wdno`` (the run's wavelet diffusion model), ``fno`` (Fourier neural operator) and
``physical_diffusion`` (the same U-Net diffusion in physical space), plus, on the finer grids, the
coarse-to-fine rows ``<method>_c2f`` / ``<method>_sr`` of both diffusion models (``superres.py``,
``validate.coarse_to_fine``); both baselines get the run's
training budget (steps x batch size) unless ``validate.baseline_steps`` says otherwise. Every method
is scored on the 1x test set and on the finer test grids (2^k x) with the MSE of ``u`` over
``t > 0`` (``t = 0`` is given), and nMSE = MSE / mean(u^2).

The finer test sets are the same problems (same seeds, hence the same ``u0`` and forcing parameters,
``T`` and ``nu``) solved on the same fine solver grid and stored at ``2^k`` x the frames and points.
Their reference row ``solver_1x_interp`` is the solver's own 1x trajectory, linearly interpolated in
``t`` and ``x`` onto the finer grid (:func:`upsample_linear`): the error any method that is exact on the
1x grid but adds no finer detail would have, i.e. the floor set by the 1x discretisation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.losses import DenoisingLoss
from core.provenance import RunDir, atomic_write_json, atomic_write_text
from core.seeding import derive_seed, make_generator
from core.training.trainer import Trainer, tensor_batch_fn
from domains.pde import plots
from domains.pde.data import level_grid
from domains.pde.fno import FNO2d, predict_fno, train_fno
from domains.pde.sampling import condition, ensemble_mean, member_sampling

REFERENCE = "solver_1x_interp"  # not a method: the 1x solver trajectory interpolated to a finer grid


def sim_mse(u_hat: Tensor, u_true: Tensor) -> tuple[float, float]:
    """``(MSE, nMSE)`` of trajectories ``[B, nt+1, nx]`` over the frames after ``u0``."""
    err = (u_hat[:, 1:].double() - u_true[:, 1:].double()).pow(2).mean()
    return float(err), float(err / u_true[:, 1:].double().pow(2).mean())


def upsample_linear(u: Tensor, level: int) -> Tensor:
    """1x trajectories ``[B, nt+1, nx]`` on the nested ``2^level`` x grid ``[B, s nt + 1, s (nx+1) - 1]``.

    Bilinear in ``(t, x)``; the Dirichlet walls (``u = 0`` at ``x = 0, 1``) are the outermost nodes, so
    the 1x values are kept exactly at the shared frames and points.
    """
    from torch.nn import functional as F

    s = 2 ** level
    n1, nx = u.shape[-2:]
    walls = F.pad(u.double(), (1, 1))[:, None]
    fine = F.interpolate(walls, size=(s * (n1 - 1) + 1, s * (nx + 1) + 1), mode="bilinear", align_corners=True)
    return fine[:, 0, :, 1:-1].to(u.dtype)


def write_trajectories(path: Path, u: Tensor, f: Tensor, seeds: Tensor, cfg: Any, level: int = 0) -> Path:
    """Sampled trajectories as netCDF (same variables and coordinates as the data cache, on the ``2^level`` x
    grid), atomically."""
    from domains.pde.data import to_dataset

    ds = to_dataset({"u": u.double(), "f": f.double(), "seed": seeds}, cfg.data, "samples", cfg.seed, level)
    ds.attrs["title"] = "diffusci pde samples (u generated, f given)"
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(path)
    return path


def test_sets(cfg: Any, data: dict[str, Tensor]) -> list[tuple[str, int, Tensor, Tensor]]:
    """``(label, level, u, f)`` for the 1x test set and every finer one present."""
    sets = [("1x", 0, data["u_test"], data["f_test"])]
    for k in cfg.data.super_levels:
        if f"u_test_l{k}" in data:
            sets.append((f"{2 ** k}x", k, data[f"u_test_l{k}"], data[f"f_test_l{k}"]))
    return sets


def diffusion_predictor(dom: Any, cfg: Any, model: Any, data: dict[str, Tensor]) -> Callable[..., tuple[Tensor, int]]:
    """``predict(level, u, f) -> (u_hat, NFE)``: the mean of ``validate.ensemble`` samples (member ``k`` seeded
    by ``derive_seed(seed, 'member', k)``; one member: the run's own samples)."""
    v = cfg.validate_
    sc = member_sampling(cfg)

    seeds = [cfg.seed] if v.ensemble == 1 else [derive_seed(cfg.seed, "member", k) for k in range(v.ensemble)]

    def predict(level: int, u: Tensor, f: Tensor) -> tuple[Tensor, int]:
        nx, nt, _ = level_grid(cfg.data, level)
        rep = dom.representation(cfg, data, nt, nx)
        cond = condition(rep, u, f, data["scales"], "simulation", cfg.network.conditioning)
        return ensemble_mean(model, rep, cond, seeds, sc, data["scales"])
    return predict


def train_denoiser(dom: Any, cfg: Any, model: Any, batch_fn: Any, run: RunDir, steps: int, tag: str) -> Any:
    """Train ``model`` (a core denoiser) on ``batch_fn`` with the core Trainer and ``cfg``'s loss, ``steps`` x
    the run's batch size, checkpointed under ``baselines/<tag>`` and resumed from there (a validate stage run
    again after a failure continues, or reuses a finished model, instead of training anew); EMA weights, eval
    mode."""
    loss = DenoisingLoss(model.process, weighting=cfg.loss.weighting, time_sampler=cfg.loss.time_sampler,
                         space=dom.state_space(cfg), self_condition_rate=cfg.loss.self_condition_rate)
    tcfg = cfg.train.model_copy(update={"steps": steps, "checkpoint_every": steps,
                                        "seed": derive_seed(cfg.seed, "train", tag)})
    trainer = Trainer(model, loss, batch_fn, tcfg, checkpoint_dir=run.path / "baselines" / tag,
                      model_config=cfg.model_dump(mode="json", by_alias=True), resume=True)
    trainer.fit()
    if trainer.ema is not None:
        trainer.ema.copy_to(model)
    return model.eval()


def fitted_fno(cfg: Any, data: dict[str, Tensor], run: RunDir, steps: int, *tag: str, progress: bool = False) -> FNO2d:
    """The FNO baseline (``validate.fno_*``) trained on ``data``'s training split for ``steps`` x the run's batch,
    initialised and trained from seeds derived from ``tag``.

    Saved under ``baselines/<tag>/`` (``model.safetensors``, then ``fno.json`` with the settings it was trained
    with, which marks it complete); a validate stage run again with the same settings loads it instead of
    training it anew.
    """
    from safetensors.torch import load_file, save_file

    v, folder = cfg.validate_, run.path / "baselines" / "_".join(tag)
    init_seed, train_seed = derive_seed(cfg.seed, "init", *tag), derive_seed(cfg.seed, "train", *tag)
    spec = {"width": v.fno_width, "modes": list(v.fno_modes), "layers": v.fno_layers, "lr": v.fno_lr, "steps": steps,
            "batch_size": cfg.train.batch_size, "init_seed": init_seed, "train_seed": train_seed,
            "n_train": int(data["u_train"].shape[0])}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        fno = FNO2d(v.fno_width, v.fno_modes, v.fno_layers)
    weights, record = folder / "model.safetensors", folder / "fno.json"
    if weights.is_file() and record.is_file() and json.loads(record.read_text()) == spec:
        fno.load_state_dict(load_file(str(weights)))
        return fno.eval()
    train_fno(fno, data["u_train"], data["f_train"], data["scales"], steps, cfg.train.batch_size, v.fno_lr,
              make_generator(train_seed), progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file({k: t.detach().contiguous() for k, t in fno.state_dict().items()}, str(tmp))
    tmp.replace(weights)
    atomic_write_json(record, spec)
    return fno.eval()


def train_diffusion(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir, steps: int, tag: str) -> Any:
    """A diffusion model for ``cfg`` trained with the core Trainer (``steps`` x the run's batch size)."""
    x0, cond = dom.training_data(cfg, data)
    return train_denoiser(dom, cfg, dom.denoiser(cfg), tensor_batch_fn(x0, cfg.train.batch_size, cond), run, steps, tag)


def physical_config(cfg: Any) -> Any:
    """The run's config with the physical-space baseline's representation, channels and sigma_data."""
    net = cfg.network.model_copy(update={"representation": "physical",
                                         "base_channels": cfg.validate_.physical_base_channels or cfg.network.base_channels})
    update: dict[str, Any] = {"network": net}
    if (sd := cfg.validate_.physical_sigma_data) is not None:
        proc = cfg.process
        update["process"] = {**proc, "sigma_data": sd} if isinstance(proc, dict) else proc.model_copy(update={"sigma_data": sd})
        update["model"] = cfg.model.model_copy(update={"sigma_data": sd})
    return cfg.model_copy(update=update)


def train_physical_diffusion(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir, steps: int) -> Any:
    """The run's diffusion model in physical space, trained with the same budget."""
    pcfg = physical_config(cfg)
    model = train_diffusion(dom, pcfg, data, run, steps, "physical_diffusion")
    dom.representation(cfg, data)  # restore the run's own representation state
    return pcfg, model


def _train_seconds(run: RunDir) -> float | None:
    """Seconds the run's checkpoint took to train (``None`` when unknown).

    A rerun that reuses a trained checkpoint (the train stage is cached by its config) records only the
    reuse, so the longest train stage among the runs next to it with the same training folder is taken.
    """
    def read(folder: Path) -> tuple[str | None, float | None]:
        rec, wd = folder / "record.json", folder / "train_workdir.json"
        secs = json.loads(rec.read_text()).get("stages", {}).get("train", {}).get("seconds") if rec.is_file() else None
        return (json.loads(wd.read_text()).get("path") if wd.is_file() else None), secs

    workdir, own = read(run.path)
    if workdir is None:
        return own
    times = [own] + [t for w, t in map(read, (p for p in run.path.parent.iterdir() if p.is_dir())) if w == workdir]
    return max((t for t in times if t is not None), default=None)


def build_methods(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir, ckpt: Any) -> dict[str, Any]:
    """``name -> (predict(level, u, f) -> (u_hat, nfe), train seconds)`` for the model and its baselines."""
    v, steps = cfg.validate_, cfg.validate_.baseline_steps or cfg.train.steps
    methods: dict[str, Any] = {"wdno": (diffusion_predictor(dom, cfg, dom.load_model(cfg, ckpt), data), _train_seconds(run))}
    if "fno" in v.baselines:
        t0 = time.perf_counter()
        fno = fitted_fno(cfg, data, run, steps, "fno", progress=True)
        methods["fno"] = (lambda level, u, f: (torch.cat([u[:, :1], predict_fno(fno, u[:, 0], f, data["scales"])], 1), 1),
                          time.perf_counter() - t0)
    if "physical_diffusion" in v.baselines:
        t0 = time.perf_counter()
        pcfg, pmodel = train_physical_diffusion(dom, cfg, data, run, steps)
        methods["physical_diffusion"] = (diffusion_predictor(dom, pcfg, pmodel, data), time.perf_counter() - t0)
    methods.update(coarse_to_fine_methods(dom, cfg, data, run, methods))
    return methods


FINE_ONLY = ("_c2f", "_sr")  # coarse-to-fine rows: identical to their 1x method on the 1x grid, so not repeated


def coarse_to_fine_methods(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir,
                           methods: dict[str, Any]) -> dict[str, Any]:
    """The ``validate.coarse_to_fine`` rows (``superres.py``): ``<method>_c2f`` and ``<method>_sr`` for each
    diffusion model (the super-resolution model in the method's own representation; its training seconds
    added to the method's)."""
    from domains.pde.superres import coarse_to_fine, train_sr

    modes, out = cfg.validate_.coarse_to_fine, {}
    own = {"wdno": cfg, "physical_diffusion": physical_config(cfg)}
    for name, mcfg in own.items():
        if name not in methods:
            continue
        predict, train_s = methods[name]
        if "interp" in modes:
            out[f"{name}_c2f"] = (coarse_to_fine(dom, mcfg, data, predict), train_s)
        if "sr" in modes and cfg.data.super_levels and cfg.validate_.super_resolution:
            t0 = time.perf_counter()
            sr = train_sr(dom, mcfg, data, run, cfg.validate_.sr_steps or cfg.train.steps, f"{name}_sr")
            dom.representation(cfg, data)  # the run's own representation state
            out[f"{name}_sr"] = (coarse_to_fine(dom, mcfg, data, predict, sr),
                                 None if train_s is None else train_s + time.perf_counter() - t0)
    return out


def evaluate(dom: Any, cfg: Any, x: Tensor, data: dict[str, Tensor], run: RunDir, info: dict[str, Any],
             ckpt: Any) -> dict[str, Any]:
    n = x.shape[0]
    u_hat, _ = dom.decode(cfg, x, data)
    mse, nmse = sim_mse(u_hat, data["u_test"][:n])
    metrics: dict[str, Any] = {"mse_wdno": mse, "nmse_wdno": nmse, "n": int(n), "nfe": int(info.get("nfe", 0))}
    methods = build_methods(dom, cfg, data, run, ckpt)
    rows, preds = [], {"wdno": u_hat}
    for label, level, u, f in test_sets(cfg, data):
        m = min(n, u.shape[0])
        for name, (predict, train_s) in methods.items():
            if level == 0 and name.endswith(FINE_ONLY):
                continue
            if name == "wdno" and level == 0 and cfg.validate_.ensemble == 1 and not cfg.validate_.ensemble_steps:
                uh, nfe, infer_s = u_hat[:m], metrics["nfe"], float("nan")
            else:
                t0 = time.perf_counter()
                uh, nfe = predict(level, u[:m], f[:m])
                infer_s = time.perf_counter() - t0
                if level == 0:
                    preds[name] = uh
            if name == "wdno_sr":  # the finer-grid trajectories a user asks the model for, next to the 1x samples
                write_trajectories(run.samples / f"trajectories_{label}.nc", uh, f[:m], data["seed_test"][:m], cfg, level)
            e, ne = sim_mse(uh, u[:m])
            rows.append({"method": name, "resolution": label, "n": m, "mse": e, "nmse": ne, "nfe": nfe,
                         "train_s": train_s, "infer_s": infer_s})
            suffix = "" if level == 0 else f"_{label}"
            metrics[f"mse_{name}{suffix}"] = e
        if level > 0:  # the discretisation floor: the solver's 1x trajectory interpolated to this grid
            e, ne = sim_mse(upsample_linear(data["u_test"][:m], level), u[:m])
            rows.append({"method": REFERENCE, "resolution": label, "n": m, "mse": e, "nmse": ne, "nfe": 0,
                         "train_s": None, "infer_s": float("nan")})
            metrics[f"mse_floor_{label}"] = e
    if cfg.validate_.control_n:
        metrics.update(run_control(dom, cfg, data, run, ckpt))
    if cfg.validate_.external_steps:
        from domains.pde.external import external_check

        metrics.update(external_check(dom, cfg, run))
        dom.representation(cfg, data)
    atomic_write_json(run.path / "comparison.json", rows)
    atomic_write_text(run.path / "comparison.md", comparison_markdown(rows))
    k = min(cfg.validate_.plot_examples, n)
    plots.spacetime(data["u_test"][:k], {m: p[:k] for m, p in preds.items()}, run.plots / "spacetime.png")
    plots.forcing(data["f_test"][:k], run.plots / "forcing.png")
    plots.mse_vs_resolution(rows, run.plots / "mse_vs_resolution.png")
    return metrics


def control_model(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir, ckpt: Any) -> tuple[Any, Any, dict[str, Any]]:
    """``(model, its config, record)`` for the control task.

    A run whose model was trained with ``'control'`` in ``network.tasks`` (one model for both tasks) uses
    it. Otherwise, as in WDNO (a simulation model conditioned on ``u0`` and ``f``, a control model on
    ``u0`` and ``u_T``), a control model with the run's network, loss and grids is trained here on
    ``tasks = [control]`` for ``validate.control_steps`` (default ``train.steps``) x the run's batch,
    checkpointed and resumable under ``baselines/wdno_control``.
    """
    if "control" in cfg.network.tasks:
        return dom.load_model(cfg, ckpt), cfg, {"control_model": "run", "control_train_s": _train_seconds(run)}
    ccfg = cfg.model_copy(update={"network": cfg.network.model_copy(update={"tasks": ["control"]})})
    steps = cfg.validate_.control_steps or cfg.train.steps
    t0 = time.perf_counter()
    batches = dom.train_batches(ccfg, data, cfg.train.batch_size)  # the run's grids (multi-resolution included)
    model = train_denoiser(dom, ccfg, dom.denoiser(ccfg), batches, run, steps, "wdno_control")
    return model, ccfg, {"control_model": "separate", "control_train_steps": steps,
                         "control_train_s": time.perf_counter() - t0}


def run_control(dom: Any, cfg: Any, data: dict[str, Tensor], run: RunDir, ckpt: Any) -> dict[str, Any]:
    from domains.pde.control import evaluate_control

    model, ccfg, record = control_model(dom, cfg, data, run, ckpt)
    metrics, rows, controls = evaluate_control(model, dom.representation(ccfg, data), data, ccfg)
    metrics.update(record)
    dom.representation(cfg, data)  # the run's own representation state
    curves = metrics.pop("control_curves")
    atomic_write_json(run.path / "control.json", {"metrics": metrics, "per_sample": rows, "curves": curves})
    plots.forcing(controls["wdno"][: cfg.validate_.plot_examples], run.plots / "control_wdno.png")
    plots.j_across_test_set(rows, run.plots / "control_J.png")
    plots.control_curves(curves, {k: metrics[f"J_{k}"] for k in ("wdno", "zero_f")}, run.plots / "control_curve.png")
    return metrics


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| method | resolution | n | MSE | nMSE | NFE | train s | infer s |\n|---|---|---:|---:|---:|---:|---:|---:|\n"

    def s(v: Any) -> str:
        return "–" if v is None or v != v else f"{v:.1f}"

    return head + "".join(f"| {r['method']} | {r['resolution']} | {r['n']} | {r['mse']:.4g} | {r['nmse']:.4g} | "
                          f"{r['nfe']} | {s(r['train_s'])} | {s(r['infer_s'])} |\n" for r in rows)


__all__ = ["REFERENCE", "comparison_markdown", "evaluate", "sim_mse", "upsample_linear", "write_trajectories"]
