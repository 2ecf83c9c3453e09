"""ERA5 t2m: file checks, climatology and windows on a mock dataset, latitude-weighted scores."""

from __future__ import annotations

import numpy as np
import pytest

from domains.weather import era5
from domains.weather import metrics as M
from domains.weather.data import WeatherData


def _mock(n_hours=96, lat=(58.0, 54.0, 50.0), lon=(-2.0, 0.0)):
    import xarray as xr

    t = np.datetime64("2019-03-01T00:00") + np.timedelta64(1, "h") * np.arange(n_hours)
    hours = np.arange(n_hours) % 24
    field = 280 + np.sin(2 * np.pi * hours / 24)[:, None, None] + np.zeros((1, len(lat), len(lon)))
    return xr.Dataset({"t2m": (("time", "latitude", "longitude"), field.astype(np.float32), {"units": "K"})},
                      coords={"time": t, "latitude": list(lat), "longitude": list(lon)})


def test_check_t2m_names_what_is_expected():
    ds = _mock()
    with pytest.raises(ValueError, match="expected a variable 't2m'"):
        era5.check_t2m(ds.rename({"t2m": "tas"}))
    with pytest.raises(ValueError, match="dims"):
        era5.check_t2m(ds.transpose("time", "longitude", "latitude"))
    bad = ds.copy()
    bad["t2m"].attrs["units"] = "degC"
    with pytest.raises(ValueError, match="units must be 'K'"):
        era5.check_t2m(bad)


def test_windows_climatology_and_grid_check():
    cfg = WeatherData(source="era5", era5_grid=(3, 2), n_past=3, n_future=2, split=(0.75, 0.0, 0.25), test_stride=6)
    out = era5.make_windows(_mock(), cfg)
    assert out["train_past"].shape[1:] == (3, 3, 2) and out["test_future_phys"].shape[1:] == (2, 3, 2)
    # a purely diurnal field: the per-hour climatology of the training block is exact
    np.testing.assert_allclose(out["test_climatology"].numpy(), out["test_future_phys"].numpy(), atol=1e-4)
    assert int(out["test_origin"][0, 0]) >= 72  # test windows start in the test block
    with pytest.raises(ValueError, match="era5_grid"):
        era5.make_windows(_mock(), cfg.model_copy(update={"era5_grid": (33, 49)}))


def test_latitude_weighted_rmse_matches_xskillscore():
    import xarray as xr
    import xskillscore as xs

    rng = np.random.default_rng(0)
    lat = np.array([60.0, 45.0, 30.0, 0.0])
    f, o = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    w = M.latitude_weights(lat)
    assert w.mean() == pytest.approx(1.0) and w[-1] > w[0]
    ref = xs.rmse(xr.DataArray(f, dims=("lat", "lon")), xr.DataArray(o, dims=("lat", "lon")), dim=["lat", "lon"],
                  weights=xr.DataArray(np.broadcast_to(w[:, None], (4, 5)), dims=("lat", "lon")))
    assert M.rmse_mean(f[None], o, weights=w[:, None]) == pytest.approx(float(ref))
    # weighted CRPS = weighted mean of the pointwise CRPS
    ens = rng.normal(size=(3, 4, 5))
    expect = np.average(M.crps_pointwise(ens, o), weights=np.broadcast_to(w[:, None], (4, 5)))
    assert M.crps(ens, o, weights=w[:, None]) == pytest.approx(expect)
