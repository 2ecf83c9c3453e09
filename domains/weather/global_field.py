"""ERA-Interim monthly means (catalog ``eraint_uvz``): a global test field for latitude-weighted scores.

The file holds January and July means of geopotential ``z`` and wind ``u``/``v`` at 200/500/850 hPa on a
0.75 deg global grid that includes both poles. It is not a time series: the domain uses it to check
that verification on a global lat/lon grid is area-weighted (WeatherBench 2 convention) — the
weights integrate a known function over the sphere exactly, and scores of one month's field as a
"forecast" of the other are compared with and without weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from domains.weather import metrics as M

EXPECTED_UNITS = {"z": "m**2 s**-2", "u": "m s**-1", "v": "m s**-1"}
DIMS = ("month", "level", "latitude", "longitude")


def check_eraint(ds: Any) -> None:
    """Wrong variables, dims, units or a non-global grid raise an error naming what was expected."""
    missing = sorted(set(EXPECTED_UNITS) - set(ds.data_vars))
    if missing:
        raise ValueError(f"expected variables {sorted(EXPECTED_UNITS)} (ERA-Interim z, u, v); missing {missing}, "
                         f"found {sorted(ds.data_vars)}")
    for name, units in EXPECTED_UNITS.items():
        da = ds[name]
        if da.dims != DIMS:
            raise ValueError(f"{name} must have dims {DIMS}, got {da.dims}")
        if da.attrs.get("units") != units:
            raise ValueError(f"{name} units must be {units!r}, got {da.attrs.get('units')!r}")
    lat = ds["latitude"].values
    if lat.max() < 89 or lat.min() > -89:
        raise ValueError(f"expected a global grid (latitude -90..90), got {lat.min():g}..{lat.max():g}")


def load_eraint(path: Any) -> Any:
    """The file as a checked ``xarray.Dataset`` (int16 packing undone by xarray)."""
    import warnings

    import xarray as xr

    with warnings.catch_warnings():  # the file's NaN _FillValue on packed ints: harmless, xarray drops it
        warnings.simplefilter("ignore")
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    check_eraint(ds)
    return ds


def month_scores(ds: Any, var: str = "z", level: int = 500) -> dict[str, float]:
    """January's field as a forecast of July's at one level: area-weighted and unweighted mean,
    RMSE and (one-member) CRPS, plus the weighted mean of ``sin^2(lat)`` (1/3 on the sphere)."""
    da = ds[var].sel(level=level)
    jan, jul = da.sel(month=1).values.astype(np.float64), da.sel(month=7).values.astype(np.float64)
    lat = ds["latitude"].values
    w = M.latitude_weights(lat)[:, None]
    sin2 = np.broadcast_to(np.sin(np.deg2rad(lat))[:, None] ** 2, jan.shape)
    return {"weighted_mean_jul": M._masked_mean(jul, None, w), "unweighted_mean_jul": float(jul.mean()),
            "rmse_weighted": M.rmse_mean(jan[None], jul, weights=w), "rmse_unweighted": M.rmse_mean(jan[None], jul),
            "crps_weighted": M.crps(jan[None], jul, weights=w), "sin2_weighted_mean": M._masked_mean(sin2, None, w)}
