"""ERA5 hourly 2 m temperature (catalog ``era5_t2m_uk``): windows of past hours -> future hours.

The original GRIB1 file (catalog ``era5_t2m_uk_grib``) is read with cfgrib/eccodes, the netCDF copy
(``era5_t2m_uk``) with xarray; both give the same array (max difference 0). The whole lat/lon grid is the state; statistics, the climatology
baseline (per hour of day and grid point) and the split come from the training block only.
"""

from __future__ import annotations

import numpy as np
import torch

from domains.weather import windows
from domains.weather.data import WeatherData


def load_t2m(path):
    """The file as an ``xarray.Dataset`` with ``t2m (time, latitude, longitude)`` in K, or an error
    naming what was expected."""
    import xarray as xr

    if str(path).endswith((".grib", ".grb", ".grib1", ".grib2")):
        try:
            import cfgrib  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"reading {path} needs cfgrib and eccodes (pip install cfgrib eccodes, in the "
                              "'weather' extra), or use the netCDF copy: dataset=era5_t2m_uk") from exc
        # indexpath="": no .idx side files next to the (read-only, checksummed) data
        with xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""}) as raw:
            ds = raw.drop_vars([c for c in ("number", "step", "surface", "valid_time") if c in raw.coords]).load()
    else:
        with xr.open_dataset(path) as raw:
            ds = raw.load()
    check_t2m(ds)
    return ds


def check_t2m(ds) -> None:
    if "t2m" not in ds:
        raise ValueError(f"expected a variable 't2m' (2 m temperature), found {sorted(ds.data_vars)}")
    da = ds["t2m"]
    if da.dims != ("time", "latitude", "longitude"):
        raise ValueError(f"t2m must have dims ('time', 'latitude', 'longitude'), got {da.dims}")
    if da.attrs.get("units") != "K":
        raise ValueError(f"t2m units must be 'K', got {da.attrs.get('units')!r}")


def climatology(block: np.ndarray, hours: np.ndarray) -> dict[int, np.ndarray]:
    """Mean field per hour of day of a ``[T, H, W]`` block (the training period)."""
    return {int(h): block[hours == h].mean(0) for h in np.unique(hours)}


def make_windows(ds, cfg: WeatherData) -> dict[str, torch.Tensor]:
    """Named tensors like the radar ones (``*_phys`` in K), plus ``test_climatology`` and ``lat_weights``."""
    check_t2m(ds)
    t2m = ds["t2m"].values.astype(np.float32)
    if tuple(t2m.shape[1:]) != tuple(cfg.era5_grid):
        raise ValueError(f"the t2m grid is {t2m.shape[1:]}, data.era5_grid says {tuple(cfg.era5_grid)}; "
                         f"set data.era5_grid={list(t2m.shape[1:])}")
    times = ds["time"].values.astype("datetime64[s]")
    step = np.timedelta64(3600, "s")
    length = cfg.n_past + cfg.n_future
    starts = windows.split_windows(times, step, length, cfg.split,
                                   {"train": cfg.train_stride, "val": cfg.test_stride, "test": cfg.test_stride})
    if not starts["train"] or not starts["test"]:
        raise ValueError(f"windows of {length} hours leave train={len(starts['train'])}, test={len(starts['test'])}")
    b0, b1 = windows.split_blocks(len(times), cfg.split)["train"]
    mean, std = float(t2m[b0:b1].mean()), float(t2m[b0:b1].std())
    hours = (times.astype("datetime64[h]").astype(np.int64) % 24)
    clim = climatology(t2m[b0:b1], hours[b0:b1])
    p = cfg.n_past
    cut = lambda s: t2m[s:s + length]  # noqa: E731
    train, test = np.stack([cut(s) for s in starts["train"]]), np.stack([cut(s) for s in starts["test"]])
    clim_fc = np.stack([[clim[int(hours[s + p + k])] for k in range(cfg.n_future)] for s in starts["test"]])
    norm = lambda a: torch.from_numpy((a - mean) / std)  # noqa: E731
    lat = ds["latitude"].values
    return {"train_past": norm(train[:, :p]), "train_future": norm(train[:, p:]),
            "test_past": norm(test[:, :p]), "test_future": norm(test[:, p:]),
            "test_past_phys": torch.from_numpy(test[:, :p]), "test_future_phys": torch.from_numpy(test[:, p:]),
            "test_mask": torch.ones(test[:, p:].shape, dtype=torch.bool),
            "test_climatology": torch.from_numpy(clim_fc.astype(np.float32)),
            "test_origin": torch.tensor([(s, 0, 0) for s in starts["test"]], dtype=torch.int64),
            "test_time": torch.from_numpy(times[[s + p for s in starts["test"]]].astype(np.int64)),
            "latitude": torch.from_numpy(lat.astype(np.float64)),
            "longitude": torch.from_numpy(ds["longitude"].values.astype(np.float64)),
            "stats": torch.tensor([mean, std, 0.0], dtype=torch.float64)}
