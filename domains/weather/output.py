"""Native outputs: CF netCDF of the processed event and of the ensemble forecast (atomic writes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from domains.weather.data import from_log


def write_netcdf(ds: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(path)
    return path


def to_phys(x: torch.Tensor, stats: torch.Tensor, source: str = "radar") -> torch.Tensor:
    """Normalised values -> physical units with the stored statistics ``[mean, std, log_offset]``:
    radar log rain -> mm/h, ERA5 standardised t2m -> K."""
    mean, std, offset = (float(v) for v in stats)
    y = x.double() * std + mean
    return (from_log(y, offset) if source == "radar" else y).float()


def ensemble_array(x: torch.Tensor, data: dict[str, torch.Tensor], cfg: Any) -> np.ndarray:
    """Samples ``[N*M, F, H, W]`` (case-major) -> rain rates ``[N, M, F, H, W]`` in mm/h (residual
    targets get the last past frame of their case added back)."""
    past, members = data["test_past"], cfg.ensemble.members
    n = past.shape[0]
    if x.shape[0] != n * members:
        raise ValueError(f"expected {n} cases x {members} members = {n * members} samples, got {x.shape[0]}")
    if cfg.data.target == "residual":
        x = x + past[:, -1:].repeat_interleave(members, dim=0)
    return to_phys(x, data["stats"], cfg.data.source).reshape(n, members, *x.shape[1:]).numpy()


VARIABLES = {"radar": ("rain_rate", "mm h-1", "rainfall_rate", 5, ("y", "x")),
             "era5": ("t2m", "K", "air_temperature", 60, ("latitude", "longitude"))}


def write_forecast(x: torch.Tensor, data: dict[str, torch.Tensor], cfg: Any, path: Path) -> Path:
    """The ensemble forecast as CF netCDF: ``VAR (case, member, lead_time, *grid)`` with the observation."""
    import xarray as xr

    name, units, std_name, minutes, grid = VARIABLES[cfg.data.source]
    fc = ensemble_array(x, data, cfg)
    n, m, f = fc.shape[:3]
    step = minutes * np.arange(1, f + 1)
    origin = data["test_origin"].numpy()
    coords: dict[str, Any] = {
        "forecast_reference_time": ("case", data["test_time"].numpy().astype("datetime64[s]").astype("datetime64[ns]"),
                                    {"standard_name": "forecast_reference_time"}),
        "lead_time": ("lead_time", step.astype("timedelta64[m]").astype("timedelta64[ns]"),
                      {"standard_name": "forecast_period"}),
        "member": ("member", np.arange(m), {"standard_name": "realization"}),
        "crop_row": ("case", origin[:, 1]), "crop_col": ("case", origin[:, 2])}
    if cfg.data.source == "era5":
        coords["latitude"] = ("latitude", data["latitude"].numpy(), {"units": "degrees_north"})
        coords["longitude"] = ("longitude", data["longitude"].numpy(), {"units": "degrees_east"})
    attrs = {"units": units, "standard_name": std_name}
    ds = xr.Dataset(
        {name: (("case", "member", "lead_time", *grid), fc, {**attrs, "long_name": "ensemble forecast"}),
         "observed": (("case", "lead_time", *grid), data["test_future_phys"].numpy(), {**attrs, "long_name": "observed"})},
        coords=coords,
        attrs={"Conventions": "CF-1.8", "title": f"diffusci weather: diffusion ensemble forecast ({cfg.data.source})",
               "source": f"catalog dataset {cfg.dataset}; see data.json of the run",
               "guidance": cfg.ensemble.guidance})
    return write_netcdf(ds, path)
