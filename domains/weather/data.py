"""The radar event as an xarray dataset and as training / test windows of named tensors.

``load_event`` -> ``xr.Dataset`` with ``rain_rate (time, y, x)`` in mm/h (NaN = no radar coverage),
block-averaged to the configured resolution. ``make_windows`` cuts past->future windows (split by
time, see :mod:`domains.weather.windows`), crops patches, log-transforms and standardises with
statistics of the training block only (stored with the dataset).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from core.config import ConfigModel
from domains.weather import radar


class WeatherData(ConfigModel):
    downsample: int = Field(4, ge=1, description="block-average factor of the 1 km grid")
    patch: int = Field(32, ge=8, description="square crop size (pixels after downsampling)")
    n_past: int = Field(4, ge=3, description="conditioning frames (STEPS needs >= 3)")
    n_future: int = Field(4, ge=1)
    split: tuple[float, float, float] = (0.6, 0.0, 0.4)
    train_stride: int = Field(1, ge=1)
    test_stride: int = Field(1, ge=1)
    patches_per_window: int = Field(16, ge=1)
    test_crops: int = Field(1, ge=1)
    min_rain_fraction: float = Field(0.1, ge=0, le=1, description="patches need this fraction >= 0.1 mm/h")
    log_offset: float = Field(0.1, gt=0, description="y = log10(R + log_offset)")
    target: Literal["absolute", "residual"] = Field(
        "residual", description="diffuse the future frames, or their difference to the last past frame")
    p_uncond: float = Field(0.1, ge=0, lt=1, description="share of extra training rows with dropped conditioning")
    source: Literal["radar", "era5"] = Field("radar", description="radar nowcasting or ERA5 t2m forecasting")
    era5_grid: tuple[int, int] = Field((33, 49), description="ERA5 (latitude, longitude) grid size (checked)")

    @model_validator(mode="after")
    def _check(self) -> WeatherData:
        if abs(sum(self.split) - 1) > 1e-6:
            raise ValueError(f"data.split must sum to 1, got {self.split}")
        return self


def block_mean(field: np.ndarray, k: int) -> np.ndarray:
    """``k x k`` block means of a ``[..., H, W]`` array; a block with any NaN is NaN."""
    if k == 1:
        return field
    h, w = (field.shape[-2] // k) * k, (field.shape[-1] // k) * k
    f = field[..., :h, :w].reshape(*field.shape[:-2], h // k, k, w // k, k)
    return f.mean(axis=(-3, -1))


def load_event(folder: Path, downsample: int):
    """The radar event as an ``xarray.Dataset`` (time, y, x) with CF attributes."""
    import xarray as xr

    meta = radar.load_metadata(folder)
    dec = radar.Decoding.from_metadata(meta)
    names, times = radar.frame_times(meta)
    lut, frames = dec.rain_rate_lut(), []
    for name in names:
        frames.append(block_mean(lut[radar.read_pgm(folder / name)], downsample))
    rain = np.stack(frames)
    px = meta["pixel_size_m"]
    ny, nx = rain.shape[1:]
    y = (ny - 0.5 - np.arange(ny)) * px["y"] * downsample  # first row = north
    x = (np.arange(nx) + 0.5) * px["x"] * downsample
    ds = xr.Dataset(
        {"rain_rate": (("time", "y", "x"), rain, {"units": "mm h-1", "long_name": "rainfall rate",
                                                  "standard_name": "rainfall_rate", "_FillValue": np.nan})},
        coords={"time": times.astype("datetime64[ns]"),
                "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
                "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"})},
        attrs={"Conventions": "CF-1.8", "source": meta.get("event", "FMI radar"),
               "projection_proj4": meta.get("projection_proj4", ""),
               "zr_a": dec.a, "zr_b": dec.b, "timestep_minutes": int(meta.get("timestep_minutes", 5))})
    return ds


def check_dataset(ds) -> None:
    """Wrong variables, dims or units raise an error naming what was expected."""
    if "rain_rate" not in ds:
        raise ValueError(f"expected a variable 'rain_rate', found {sorted(ds.data_vars)}")
    da = ds["rain_rate"]
    if da.dims != ("time", "y", "x"):
        raise ValueError(f"rain_rate must have dims ('time', 'y', 'x'), got {da.dims}")
    if da.attrs.get("units") not in ("mm h-1", "mm/h"):
        raise ValueError(f"rain_rate units must be 'mm h-1', got {da.attrs.get('units')!r}")


def to_log(r: np.ndarray | torch.Tensor, offset: float):
    return np.log10(r + offset) if isinstance(r, np.ndarray) else torch.log10(r + offset)


def from_log(y: torch.Tensor, offset: float) -> torch.Tensor:
    return (torch.pow(10.0, y) - offset).clamp_min(0.0)
