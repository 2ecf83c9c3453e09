"""End to end through the pipeline on tiny overrides, and bad configs refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.catalog import data_root

TINY = ["data.nx=7", "data.nt=4", "data.n_train=16", "data.n_test=4", "data.n_super=2", "data.super_levels=[1]",
        "data.solver.horizon=1.0", "data.solver.steps_per_frame=128",
        "network.base_channels=8", "network.norm_groups=4", "train.steps=4", "train.batch_size=4",
        "train.checkpoint_every=4", "train.warmup_steps=0", "sample.n=4", "sample.batch_size=4", "sample.steps=2",
        "validate.fno_width=4", "validate.fno_modes=[2,2]", "validate.fno_layers=1", "validate.plot_examples=2"]


def test_pipeline_end_to_end(tmp_path):
    import xarray as xr

    from domains.pipeline import run_pipeline

    out = run_pipeline("pde", "smoke", [*TINY, "validate.ensemble=2"], runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("mse_wdno", "mse_fno", "mse_physical_diffusion", "mse_wdno_2x", "mse_fno_2x"):
        assert metrics[key] is not None and metrics[key] > 0, key
    assert metrics["n"] == 4 and metrics["nfe"] > 0
    with xr.open_dataset(run / "samples" / "trajectories.nc", engine="h5netcdf") as ds:
        assert ds["u"].shape == (4, 5, 7) and ds["f"].shape == (4, 4, 7)
    rows = json.loads((run / "comparison.json").read_text())
    assert {(r["method"], r["resolution"]) for r in rows} >= {("wdno", "1x"), ("fno", "2x"),
                                                             ("physical_diffusion", "2x")}
    # each diffusion model's simulation estimate is the mean of 2 samples: twice the sampler's NFE
    assert {r["nfe"] for r in rows if r["method"] in ("wdno", "physical_diffusion")} == {2 * metrics["nfe"]}
    assert metrics["mse_wdno"] == next(r["mse"] for r in rows if (r["method"], r["resolution"]) == ("wdno", "1x"))
    floor = [r for r in rows if r["method"] == "solver_1x_interp"]  # the discretisation floor, finer grids only
    assert [r["resolution"] for r in floor] == ["2x"] and floor[0]["mse"] == metrics["mse_floor_2x"] > 0
    for name in ("spacetime.png", "forcing.png", "mse_vs_resolution.png"):
        assert (run / "plots" / name).stat().st_size > 1000
    assert len(list((tmp_path / "_cache" / "pde").glob("*.nc"))) == 3  # train, test, test at 2x
    # u0 and f are given (replacement conditioning): the samples carry them exactly
    from safetensors.torch import load_file

    data = load_file(str(run / "data" / "processed.safetensors"))
    with xr.open_dataset(run / "samples" / "trajectories.nc", engine="h5netcdf") as ds:
        assert abs(ds["u"].values[:, 0] - data["u_test"][:4, 0].numpy()).max() < 1e-5
        assert abs(ds["f"].values - data["f_test"][:4].numpy()).max() < 1e-5


def test_unstable_preset_is_refused_before_solving(tmp_path):
    from domains.pde.solver import StabilityError
    from domains.pipeline import run_pipeline

    with pytest.raises(StabilityError, match="advective limit"):
        run_pipeline("pde", "smoke", [*TINY, "data.solver.steps_per_frame=4"], runs_root=str(tmp_path))


def test_bad_config_values_are_rejected():
    from domains import get_domain

    dom = get_domain("pde")
    with pytest.raises(Exception, match="representation"):
        dom.load_config("smoke", ["network.representation=fourier"])
    with pytest.raises(Exception, match="unknown|extra|not permitted"):
        dom.load_config("smoke", ["data.grid=3"])
    with pytest.raises(Exception, match=r"multires_coarse: k=3 .* divisible by 16"):
        dom.load_config("smoke", ["network.multires_coarse=[3]"])  # nt = 16 but nx + 1 = 24


@pytest.mark.parametrize("preset", ["smoke", "default", "full"])
def test_presets_load_and_are_stable(preset):
    from domains import get_domain
    from domains.pde.data import level_grid
    from domains.pde.solver import check_stability
    from domains.pde.state import layout_shape

    cfg = get_domain("pde").load_config(preset)
    layout_shape(cfg.data.nt, cfg.data.nx)
    for k in [0, *cfg.data.super_levels]:
        nx, nt, solver = level_grid(cfg.data, k)
        check_stability(nx, nt, solver)


@pytest.mark.skipif(not (data_root() / "pde" / "burgers1d_neuralop_res16.npz").exists(),
                    reason="data root absent (the external check reads the real Burgers set)")
def test_control_and_external_check_end_to_end(tmp_path):
    from domains.pipeline import run_pipeline

    extra = ["network.tasks=[simulation,control]", "validate.control_n=2", "validate.control_optimizer_steps=2",
             "validate.baselines=[]", "validate.super_resolution=false", "validate.external_steps=3",
             "validate.external_n=8"]
    out = run_pipeline("pde", "smoke", [*TINY, *extra], runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    for key in ("J_wdno", "J_solver_adam", "J_true_f", "energy_wdno", "energy_solver_adam"):
        assert m[key] is not None and m[key] >= 0, key
    assert m["J_true_f"] < 1e-2  # the true forcing reaches the target (up to u0 interpolated to the fine grid)
    assert (run / "plots" / "control_J.png").exists() and (run / "plots" / "control_curve.png").exists()
    curves = json.loads((run / "control.json").read_text())["curves"]
    assert set(curves) == {"solver_adam", "wdno_adam"} and "control_curves" not in m
    assert all(len(c) == 3 for c in curves.values())  # 2 iterates + the final J
    assert curves["solver_adam"][-1] == pytest.approx(m["J_solver_adam"])
    assert curves["wdno_adam"][0] == pytest.approx(m["J_wdno"], rel=1e-6)  # refinement starts at the wdno control
    assert curves["solver_adam"][0] == pytest.approx(m["J_zero_f"], rel=1e-6)
    # the external check on the real periodic set rides along (models trained on its train split)
    assert m["external_n"] == 8 and m["external_dataset"] == "burgers1d_neuralop_res16"
    for key in ("external_mse_wdno", "external_mse_fno", "external_mse_persistence"):
        assert 0 < m[key] < 100, key


def test_simulation_model_gets_a_separate_control_model(tmp_path):
    """A run trained for simulation only trains its control model in validate (u0 and u_T known, as WDNO's
    control model), checkpointed beside the baselines, and reuses it when validate runs again."""
    import yaml

    from core.provenance import RunDir
    from domains import get_domain
    from domains.pde.evaluate import run_control
    from domains.pipeline import load_ref, load_run_config, run_pipeline

    extra = ["validate.control_n=2", "validate.control_optimizer_steps=1", "validate.control_refine=false",
             "validate.control_steps=3", "validate.baselines=[]", "validate.super_resolution=false"]
    out = run_pipeline("pde", "smoke", [*TINY, *extra], runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["network"]["tasks"] == ["simulation"]
    m = json.loads((run / "metrics.json").read_text())
    assert m["control_model"] == "separate" and m["control_train_steps"] == 3 and m["control_train_s"] > 0
    for key in ("J_wdno", "J_solver_adam", "energy_wdno"):
        assert m[key] is not None and m[key] >= 0, key
    meta = json.loads((run / "baselines" / "wdno_control" / "step_000003" / "meta.json").read_text())
    assert meta["step"] == 3
    assert meta["model_config"]["network"]["tasks"] == ["control"]  # u0 and u_T known, f generated
    # validate again in the same run (as after a failed stage): the finished control model is resumed, not
    # retrained, and the control metrics reproduce exactly
    weights = run / "baselines" / "wdno_control" / "step_000003" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    _, cfg2 = load_run_config(run)
    dom2 = get_domain("pde")
    m2 = run_control(dom2, cfg2, dom2.load_data(load_ref(run, "ingest")), RunDir.open(run), load_ref(run, "train"))
    assert m2["J_wdno"] == m["J_wdno"] and m2["J_solver_adam"] == m["J_solver_adam"]
    assert weights.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in weights.parent.parent.iterdir() if p.is_dir()) == ["step_000003"]


def test_joint_model_serves_control_itself(tmp_path):
    from domains.pipeline import run_pipeline

    extra = ["network.tasks=[simulation,control]", "validate.control_n=2", "validate.control_optimizer_steps=1",
             "validate.control_refine=false", "validate.baselines=[]", "validate.super_resolution=false"]
    out = run_pipeline("pde", "smoke", [*TINY, *extra], runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["control_model"] == "run" and "control_train_steps" not in m
    assert not (run / "baselines" / "wdno_control").exists()


def test_band_scaling_choice():
    import torch

    from domains import get_domain

    dom = get_domain("pde")
    bands = {"band_scales": torch.tensor([2.0, 0.5, 0.5, 0.1, 2.0, 0.5, 0.5, 0.1])}
    approx = dom.representation(dom.load_config("smoke", ["network.band_scaling=approx"]), bands).band_scales
    assert torch.equal(approx, torch.tensor([2.0] * 8))  # each field by its approximation band
    glob = dom.representation(dom.load_config("smoke", ["network.band_scaling=global"]), bands).band_scales
    per = dom.representation(dom.load_config("smoke", ["network.band_scaling=per_band"]), bands).band_scales
    assert torch.allclose(glob, torch.full((8,), float(bands["band_scales"].pow(2).mean().sqrt())))
    assert torch.equal(per, bands["band_scales"])


def test_multiresolution_training_grids():
    import torch

    from domains import get_domain

    dom = get_domain("pde")
    cfg = dom.load_config("smoke", [*TINY, "network.multires_coarse=[1]"])
    g = torch.Generator().manual_seed(0)
    data = {"u_train": torch.randn(4, 5, 7, generator=g), "f_train": torch.randn(4, 4, 7, generator=g),
            "scales": torch.tensor([1.0, 1.0]), "band_scales": torch.ones(8)}
    grids = dom.training_grids(cfg, data)
    assert [tuple(x.shape) for x, _ in grids] == [(4, 8, 3, 4), (4, 8, 2, 2)]  # layouts 6x8 and 4x4
    assert [tuple(c["channels"].shape) for _, c in grids] == [(4, 16, 3, 4), (4, 16, 2, 2)]
    # the coarse state is the transform of the coarsened trajectories
    from domains.pde.data import coarsen
    from domains.pde.state import Representation, pack

    uc, fc = coarsen(data["u_train"], data["f_train"], 1)
    rep = Representation("wavelet", (4, 4), band_scales=torch.ones(8))
    assert torch.allclose(grids[1][0], rep.encode(pack(uc, fc, data["scales"])), atol=1e-6)
    # training batches come from both grids, one grid per batch
    batches = dom.train_batches(cfg, data, 2)
    shapes = {tuple(batches(s, torch.Generator().manual_seed(s))[0].shape) for s in range(20)}
    assert shapes == {(2, 8, 3, 4), (2, 8, 2, 2)}


def test_self_conditioned_pipeline(tmp_path):
    """model.self_condition: the wavelet model and the physical-space baseline both get the earlier x0
    estimate as extra U-Net channels; the run completes with finite metrics."""
    from domains import get_domain
    from domains.pipeline import run_pipeline

    cfg = get_domain("pde").load_config("smoke", [*TINY, "model.self_condition=true"])
    den = get_domain("pde").denoiser(cfg)
    assert den.self_condition and den.net.net.cond_channels == 16 + 8
    out = run_pipeline("pde", "smoke", [*TINY, "model.self_condition=true", "validate.coarse_to_fine=[]"],
                       runs_root=str(tmp_path))
    assert out["status"] == "completed"
    metrics = json.loads((Path(out["run_dir"]) / "metrics.json").read_text())
    for key in ("mse_wdno", "mse_physical_diffusion"):
        assert metrics[key] is not None and 0 < metrics[key] < float("inf"), key
