"""ERA5 t2m: file checks, climatology and windows on a mock dataset, latitude-weighted scores."""

from __future__ import annotations

import numpy as np
import pytest

from core.catalog import data_root
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


GRIB = data_root() / "weather" / "era5-2mt-2019-03-uk.grib"
ERAINT = data_root() / "weather" / "eraint_uvz.nc"


@pytest.mark.skipif(not GRIB.is_file(), reason="shared data root not available")
def test_grib_read_with_cfgrib_equals_netcdf_copy():
    pytest.importorskip("cfgrib")
    grib = era5.load_t2m(GRIB)
    nc = era5.load_t2m(GRIB.with_suffix(".nc"))
    assert grib["t2m"].dims == ("time", "latitude", "longitude") and grib.sizes["time"] == 744
    assert float(abs(grib["t2m"] - nc["t2m"]).max()) == 0.0
    assert not list(GRIB.parent.glob("*.idx"))  # no index side files written next to the data


def test_latitude_weights_are_cell_areas():
    lat = np.arange(90.0, -90.1, -0.75)  # a global grid with both poles (ERA-Interim)
    w = M.latitude_weights(lat)
    assert w.mean() == pytest.approx(1.0) and w[0] > 0 and w[0] == pytest.approx(w[-1])
    # the band of the polar row is [89.625, 90]: area 1 - sin(89.625 deg), relative to the mean band
    band = 1 - np.sin(np.deg2rad(89.625))
    assert w[0] == pytest.approx(band / (2 / len(lat)))
    # sphere integrals: mean of sin^2(lat) is 1/3, of sin(lat) is 0
    assert np.mean(w * np.sin(np.deg2rad(lat)) ** 2) == pytest.approx(1 / 3, abs=1e-5)
    assert np.mean(w * np.sin(np.deg2rad(lat))) == pytest.approx(0.0, abs=1e-12)
    uk = np.arange(58.0, 49.9, -0.25)  # away from the poles: cos(lat) to rounding
    np.testing.assert_allclose(M.latitude_weights(uk), np.cos(np.deg2rad(uk)) / np.cos(np.deg2rad(uk)).mean(),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="distinct"):
        M.latitude_weights(np.array([10.0, 10.0]))


@pytest.mark.skipif(not ERAINT.is_file(), reason="shared data root not available")
def test_eraint_global_field_weighted_scores_match_xskillscore():
    import xarray as xr
    import xskillscore as xs

    from domains.weather import global_field

    ds = global_field.load_eraint(ERAINT)
    s = global_field.month_scores(ds, "z", 500)
    assert s["sin2_weighted_mean"] == pytest.approx(1 / 3, abs=1e-5)
    # z500 is highest in the tropics: area weighting raises the global mean and lowers the error
    assert s["weighted_mean_jul"] > s["unweighted_mean_jul"] and s["rmse_weighted"] < s["rmse_unweighted"]
    assert 5.0e4 < s["weighted_mean_jul"] < 6.0e4  # ~5.7 km geopotential height * g
    z = ds["z"].sel(level=500)
    w = xr.DataArray(M.latitude_weights(ds["latitude"].values), dims="latitude").broadcast_like(z.sel(month=1))
    ref = xs.rmse(z.sel(month=1), z.sel(month=7), dim=["latitude", "longitude"], weights=w)
    assert s["rmse_weighted"] == pytest.approx(float(ref), rel=1e-9)
    assert s["crps_weighted"] == pytest.approx(float(xs.mae(z.sel(month=1), z.sel(month=7),
                                                            dim=["latitude", "longitude"], weights=w)), rel=1e-9)
    with pytest.raises(ValueError, match="missing \\['u'\\]"):
        global_field.check_eraint(ds.drop_vars("u"))
    bad = ds.copy()
    bad["z"].attrs["units"] = "m"
    with pytest.raises(ValueError, match="z units"):
        global_field.check_eraint(bad)
    with pytest.raises(ValueError, match="global grid"):
        global_field.check_eraint(ds.sel(latitude=slice(60, -60)))


def test_era5_windows_split_at_a_time_gap():
    ds = _mock(n_hours=96)
    gap = ds.drop_isel(time=[40])  # one missing hour: windows never span it, nothing is interpolated
    cfg = WeatherData(source="era5", era5_grid=(3, 2), n_past=3, n_future=2, split=(0.75, 0.0, 0.25))
    out = era5.make_windows(gap, cfg)
    full = era5.make_windows(ds, cfg)
    assert out["train_past"].shape[0] == full["train_past"].shape[0] - 5  # the 5 windows covering hour 40
    assert out["train_past"].shape[0] + 5 == 72 - 5 + 1
