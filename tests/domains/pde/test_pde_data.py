"""Seeded data generation, the netCDF cache, the FNO and the catalog entry."""

from __future__ import annotations

import pytest
import torch

from domains.pde.data import (
    PDEData,
    draw_forcing_params,
    forcing_field,
    generate,
    level_grid,
    load_or_generate,
)
from domains.pde.solver import SolverConfig

TINY = PDEData(nx=7, nt=4, n_train=4, n_test=2, solver=SolverConfig(horizon=0.5, refine_x=4, steps_per_frame=64))


def test_samples_depend_on_their_seed_only():
    a = generate(TINY, "train", 4, seed=3, progress=False)
    b = generate(TINY.model_copy(update={"batch_size": 1}), "train", 2, seed=3, progress=False)
    assert a["u"].shape == (4, 5, 7) and a["f"].shape == (4, 4, 7)
    assert torch.equal(a["u"][:2], b["u"]) and torch.equal(a["seed"][:2], b["seed"])
    assert not torch.equal(generate(TINY, "test", 1, seed=3, progress=False)["u"][0], a["u"][0])


def test_forcing_oracle_single_term():
    # one term A=1, m=0.5, s=0.25, c=0.5, r=0.25: at x=0.5, tau=0.5 the value is 2
    params = torch.tensor([[1.0, 0.5, 0.25, 0.5, 0.25]], dtype=torch.float64)
    f = forcing_field(params, nt=2, nx=3)  # tau = .25, .75 ; x = .25, .5, .75
    expected_peak = 2 * torch.exp(torch.tensor(-0.5, dtype=torch.float64))  # tau is one r away from c
    assert f[0, 1] == pytest.approx(float(expected_peak))
    g = torch.Generator().manual_seed(0)
    p = draw_forcing_params(8, g)
    assert p[0, 0] != 0 and bool(((p[:, 2] >= 0.1) & (p[:, 2] <= 0.4)).all())


def test_super_resolution_grids_nest_in_the_same_solver():
    nx, nt, solver = level_grid(TINY, 2)
    assert (nx, nt, solver.refine_x, solver.steps_per_frame) == (31, 16, 1, 16)
    coarse = generate(TINY, "test", 2, seed=5, progress=False)
    fine = generate(TINY, "test", 2, seed=5, level=1, progress=False)
    assert torch.allclose(fine["u"][:, 0, 1::2], coarse["u"][:, 0])  # same u0 on shared points
    with pytest.raises(ValueError, match="divisible by 8"):
        level_grid(TINY, 3)


def test_netcdf_cache_roundtrip(tmp_path):
    import xarray as xr

    a = load_or_generate(TINY, "train", 3, 9, tmp_path)
    files = list(tmp_path.glob("*.nc"))
    assert len(files) == 1 and not list(tmp_path.glob(".*tmp"))
    with xr.open_dataset(files[0], engine="h5netcdf") as ds:
        assert ds["u"].dims == ("sample", "t", "x") and ds.attrs["nu"] == 0.01 and ds.sizes["t"] == 5
        assert float(ds["t"][-1]) == pytest.approx(0.5)
        assert ds.attrs["solver_device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    b = load_or_generate(TINY, "train", 3, 9, tmp_path)  # read back from the cache
    assert torch.equal(a["u"], b["u"]) and torch.equal(a["seed"], b["seed"])
    # the device is not part of the cache key: a set made on another device is the same set
    c = load_or_generate(TINY.model_copy(update={"device": "cpu"}), "train", 3, 9, tmp_path)
    assert len(list(tmp_path.glob("*.nc"))) == 1 and torch.equal(a["u"], c["u"])


def test_solver_device_choice():
    from domains.pde.data import solver_device

    assert solver_device(TINY.model_copy(update={"device": "cpu"})).type == "cpu"
    assert solver_device(TINY).type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="data.device=cuda"):
            generate(TINY.model_copy(update={"device": "cuda"}), "train", 1, seed=0, progress=False)


def test_fno_is_resolution_agnostic_and_learns():
    from domains.pde.fno import FNO2d, predict_fno, train_fno

    torch.manual_seed(0)
    d = generate(TINY, "train", 16, seed=1, progress=False)
    u, f = d["u"].float(), d["f"].float()
    scales = torch.tensor([float(u.pow(2).mean().sqrt()), float(f.pow(2).mean().sqrt())])
    model = FNO2d(width=8, modes=(3, 3), layers=2)
    hist = train_fno(model, u, f, scales, 60, 8, 5e-3, torch.Generator().manual_seed(0))
    assert sum(hist[-10:]) / 10 < sum(hist[:10]) / 10
    assert predict_fno(model, u[:2, 0], f[:2], scales).shape == (2, 4, 7)
    assert predict_fno(model, torch.zeros(1, 15), torch.zeros(1, 8, 15), scales).shape == (1, 8, 15)


def test_fno_padding_keeps_the_physical_box_on_finer_grids():
    from domains.pde.fno import FNO2d, padding
    from domains.pde.solver import interior_grid

    for nt, nx in ((16, 31), (8, 23)):
        boxes = {((s * nt + padding(s * nt, s * (nx + 1) - 1)[0]) / (s * nt),
                  (s * (nx + 1) - 1 + padding(s * nt, s * (nx + 1) - 1)[1]) / (s * (nx + 1))) for s in (1, 2, 4)}
        assert boxes == {(1.5, 1.25)}

    def field(nt, nx):
        x, t = interior_grid(nx).float(), (torch.arange(nt).float() + 0.5) / nt
        u0 = torch.sin(torch.pi * x) * torch.exp(-(x - 0.4) ** 2 / 0.05)
        return u0[None], (torch.exp(-(t[:, None] - 0.5) ** 2 / 0.1) * torch.cos(torch.pi * x)[None])[None]

    # a spectral-dominated operator applied to one smooth problem on two nested grids agrees at the shared
    # frames and points (padding a fixed number of points instead gives relative differences of 0.25-0.5)
    for seed in range(3):
        torch.manual_seed(seed)
        model = FNO2d(width=8, modes=(3, 3), layers=1).eval()
        for sc in model.spectral:
            sc.weight.data *= 64
        with torch.no_grad():
            coarse, fine = model(*field(16, 31)), model(*field(32, 63))
        assert float((fine[:, 1::2, 1::2] - coarse).norm() / coarse.norm()) < 0.15


def test_finer_test_sets_are_the_same_problems_and_the_floor_interpolates():
    from domains.pde.evaluate import upsample_linear

    coarse = generate(TINY, "test", 2, seed=5, progress=False)["u"]
    fine = generate(TINY, "test", 2, seed=5, level=1, progress=False)["u"]
    nested = fine[:, ::2, 1::2]  # the 2x trajectory at the 1x frames and points
    assert torch.equal(nested[:, 0], coarse[:, 0])
    # only the forcing's frame-wise constant sampling differs: far below the size of u
    assert float((nested - coarse).abs().max()) < 0.05 * float(coarse.abs().max())
    up = upsample_linear(coarse, 1)
    assert up.shape == fine.shape and torch.allclose(up[:, ::2, 1::2], coarse)
    assert torch.allclose(up[:, 1, 0], 0.25 * (coarse[:, 0, 0] + coarse[:, 1, 0]))  # half-way in t, x = 1/(2(nx+1))
    floor = float((up[:, 1:] - fine[:, 1:]).pow(2).mean())
    assert 0 < floor < 0.1 * float(fine[:, 1:].pow(2).mean())


def test_catalog_entries():
    from core.catalog import get_entry

    gen = get_entry("burgers1d_wdno_generated")
    assert gen.format == "generated" and gen.domain == "pde" and "arXiv:2412.04833" in gen.citation
    real = get_entry("burgers1d_neuralop_res16")
    assert real.files and real.files[0].sha256.startswith("fc4ffa4d")


def test_fitted_fno_is_saved_and_reused(tmp_path):
    """The validate stage's FNO is saved with the settings it was trained with and loaded, not retrained, when
    validate runs again with the same settings; other settings train it anew."""
    from types import SimpleNamespace

    from domains.pde.config import PDEValidate
    from domains.pde.data import physical_scales
    from domains.pde.evaluate import fitted_fno

    d = generate(TINY, "train", 4, seed=1, progress=False)
    data = {"u_train": d["u"].float(), "f_train": d["f"].float(), "scales": physical_scales(d["u"], d["f"]).float()}
    cfg = SimpleNamespace(seed=0, validate_=PDEValidate(fno_width=4, fno_modes=(2, 2), fno_layers=1),
                          train=SimpleNamespace(batch_size=2))
    run = SimpleNamespace(path=tmp_path)
    a = fitted_fno(cfg, data, run, 3, "fno")
    weights = tmp_path / "baselines" / "fno" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    b = fitted_fno(cfg, data, run, 3, "fno")
    assert weights.stat().st_mtime_ns == stamp  # loaded, not trained again
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), k
    c = fitted_fno(cfg, data, run, 4, "fno")  # another budget: trained anew and saved over it
    assert weights.stat().st_mtime_ns != stamp
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
