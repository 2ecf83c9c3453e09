"""Coarse-to-fine generation on finer grids (domains/pde/superres.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.domains.pde.test_pde_pipeline import TINY


def _trajectories(nt: int, nx: int, b: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, nt + 1, nx, generator=g), torch.randn(b, nt, nx, generator=g)


def test_inputs_on_a_coarser_grid_keep_u0_at_the_nested_points_and_average_f():
    from domains.pde.data import coarsen
    from domains.pde.superres import inputs_on

    u, f = _trajectories(8, 15)
    uk, fk = inputs_on(u, f, 1)
    uc, fc = coarsen(u, f, 1)
    assert uk.shape == uc.shape == (2, 5, 7) and torch.equal(fk, fc)
    assert torch.equal(uk[:, 0], u[:, 0, 1::2]) and not uk[:, 1:].any()  # only u0 is an input
    u0, f0 = inputs_on(u, f, 0)
    assert torch.equal(u0[:, 0], u[:, 0]) and torch.equal(f0, f) and not u0[:, 1:].any()


def test_interpolated_octave_keeps_the_coarse_nodes_and_writes_the_fine_u0():
    from domains.pde.superres import interpolate_octave

    uc, _ = _trajectories(4, 7)
    u0 = torch.full((2, 15), 7.0)
    up = interpolate_octave(uc, u0)
    assert up.shape == (2, 9, 15)
    assert torch.allclose(up[:, 2::2, 1::2], uc[:, 1:])  # coarse frames and points, after u0
    assert torch.equal(up[:, 0], u0)
    assert torch.allclose(up[:, 3, 1], 0.5 * (uc[:, 1, 0] + uc[:, 2, 0]))  # half-way in t at a coarse point


def test_coarse_to_fine_gives_the_base_model_the_coarsened_problem_and_interpolates_each_octave():
    from domains.pde.data import coarsen
    from domains.pde.superres import coarse_to_fine, interpolate_octave

    u, f = _trajectories(16, 31)
    seen = []

    def oracle(level, uu, ff):  # an exact 1x model: the fine truth on the 1x grid
        seen.append((level, uu, ff))
        return coarsen(u, f, 2)[0], 3

    predict = coarse_to_fine(None, None, {}, oracle)
    out, nfe = predict(2, u, f)
    assert nfe == 3 and len(seen) == 1 and seen[0][0] == 0
    _, uu, ff = seen[0]
    assert torch.equal(uu[:, 0], u[:, 0, 3::4]) and not uu[:, 1:].any() and torch.equal(ff, coarsen(u, f, 2)[1])
    mid = interpolate_octave(coarsen(u, f, 2)[0], u[:, 0, 1::2])  # 1x -> 2x, then 2x -> 4x
    assert torch.allclose(out, interpolate_octave(mid, u[:, 0]))
    assert torch.equal(out[:, 0], u[:, 0])
    assert predict(0, u, f)[1] == 3  # the 1x grid is the base model itself


def test_octave_pairs_carry_the_coarsened_trajectory_as_four_more_channels():
    from domains import get_domain
    from domains.pde.data import coarsen, physical_scales
    from domains.pde.state import pack
    from domains.pde.superres import coarse_channels, interpolate_octave, octave_pairs

    dom = get_domain("pde")
    cfg = dom.load_config("smoke", ["data.nx=15", "data.nt=8"])
    u, f = _trajectories(8, 15)
    data = {"scales": physical_scales(u, f), "band_scales": torch.ones(8)}
    x0, cond = octave_pairs(dom, cfg, data, u, f)
    rep = dom.representation(cfg, data, 8, 15)
    assert x0.shape == (2, 8, 5, 8) and cond["channels"].shape == (2, 20, 5, 8)
    assert torch.allclose(rep.decode(x0), pack(u, f, data["scales"]), atol=1e-5)
    up = interpolate_octave(coarsen(u, f, 1)[0], u[:, 0])
    assert torch.allclose(cond["channels"][:, 16:], coarse_channels(rep, up, data["scales"]))


def test_super_resolution_rows_end_to_end(tmp_path):
    from domains.pipeline import run_pipeline

    out = run_pipeline("pde", "smoke", [*TINY, "validate.coarse_to_fine=[interp,sr]", "validate.sr_train_levels=[0,1]",
                                        "validate.sr_steps=3"], runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    rows = json.loads((run / "comparison.json").read_text())
    by = {(r["method"], r["resolution"]): r for r in rows}
    for name in ("wdno_c2f", "physical_diffusion_c2f", "wdno_sr", "physical_diffusion_sr"):
        assert (name, "2x") in by and (name, "1x") not in by  # identical to the 1x method on the 1x grid
        assert by[(name, "2x")]["mse"] > 0
    # one super-resolution octave on top of the 1x model: twice its NFE; its training time adds to wdno's
    assert by[("wdno_sr", "2x")]["nfe"] == 2 * by[("wdno_c2f", "2x")]["nfe"]
    assert by[("wdno_sr", "2x")]["train_s"] > by[("wdno_c2f", "2x")]["train_s"]
    assert by[("physical_diffusion_sr", "2x")]["nfe"] == 2 * by[("physical_diffusion_c2f", "2x")]["nfe"]
    assert (run / "baselines" / "wdno_sr").is_dir() and (run / "baselines" / "physical_diffusion_sr").is_dir()
    import xarray as xr

    with xr.open_dataset(run / "samples" / "trajectories_2x.nc", engine="h5netcdf") as ds:  # the 2x samples
        assert ds["u"].shape == (2, 9, 15) and ds["f"].shape == (2, 8, 15) and ds.attrs["level"] == 1
        assert ds["x"].values[0] == pytest.approx(1 / 16)
    assert len(list((tmp_path / "_cache" / "pde").glob("*.nc"))) == 4  # train, test, test at 2x, train at 2x


def test_super_resolution_config_errors_name_the_fix():
    from domains import get_domain

    dom = get_domain("pde")
    with pytest.raises(Exception, match="levels are >= 0"):
        dom.load_config("smoke", ["validate.coarse_to_fine=[sr]", "validate.sr_train_levels=[-1]"])
    with pytest.raises(Exception, match="trains on 2x-coarsened pairs.*divisible by 4"):
        dom.load_config("smoke", ["validate.coarse_to_fine=[sr]", "data.nt=6", "network.multires_coarse=[]"])
    with pytest.raises(Exception, match="interp|sr|literal"):
        dom.load_config("smoke", ["validate.coarse_to_fine=[cubic]"])


def test_physical_super_resolution_model_takes_u_itself_as_the_extra_channel():
    from domains import get_domain
    from domains.pde.data import physical_scales
    from domains.pde.superres import build_sr_model, octave_pairs

    dom = get_domain("pde")
    cfg = dom.load_config("smoke", ["data.nx=15", "data.nt=8", "network.representation=physical",
                                    "network.base_channels=8", "network.norm_groups=4"])
    u, f = _trajectories(8, 15)
    data = {"scales": physical_scales(u, f), "band_scales": torch.ones(8)}
    x0, cond = octave_pairs(dom, cfg, data, u, f)
    assert x0.shape == (2, 2, 10, 16) and cond["channels"].shape == (2, 5, 10, 16)
    model = build_sr_model(dom, cfg, "physical_diffusion_sr")
    out = model(x0, torch.full((2,), 0.5), cond)
    assert out.shape == x0.shape and torch.isfinite(out).all()
