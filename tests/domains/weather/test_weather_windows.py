"""Time windows, splits without overlap, gaps, block means, dataset checks and patch making."""

from __future__ import annotations

import numpy as np
import pytest

from domains.weather import windows
from domains.weather.data import WeatherData, block_mean, check_dataset
from domains.weather.patches import make_windows

STEP = np.timedelta64(300, "s")


def _times(n, gap_after=None):
    t = np.datetime64("2016-09-28T14:45:00") + STEP * np.arange(n)
    if gap_after is not None:
        t[gap_after:] += STEP * 3
    return t


def test_segments_split_at_gaps():
    assert windows.segments(_times(10), STEP) == [(0, 10)]
    assert windows.segments(_times(10, gap_after=4), STEP) == [(0, 4), (4, 10)]
    with pytest.raises(ValueError, match="increasing"):
        windows.segments(_times(3)[::-1], STEP)


def test_windows_never_span_gap_or_splits():
    t = _times(20, gap_after=6)
    out = windows.split_windows(t, STEP, 4, (0.5, 0.0, 0.5), {"train": 1, "test": 1})
    assert out["train"] == [0, 1, 2, 6]  # 3..5 would span the gap at 6; train block is [0, 10)
    assert out["test"] == list(range(10, 17))
    used = {name: {s + k for s in starts for k in range(4)} for name, starts in out.items()}
    assert not used["train"] & used["test"]


def test_split_fractions_checked():
    with pytest.raises(ValueError, match="sum to 1"):
        windows.split_blocks(10, (0.5, 0.1, 0.1))


def test_block_mean_propagates_missing():
    f = np.arange(16, dtype=float).reshape(4, 4)
    f[0, 0] = np.nan
    out = block_mean(f, 2)
    assert np.isnan(out[0, 0]) and out[1, 1] == (10 + 11 + 14 + 15) / 4


def _dataset(n=16, size=24, hole=False):
    import xarray as xr

    rng = np.random.default_rng(0)
    rain = rng.gamma(0.8, 2.0, (n, size, size)).astype(np.float32)
    if hole:
        rain[:, :4, :4] = np.nan
    return xr.Dataset({"rain_rate": (("time", "y", "x"), rain, {"units": "mm h-1"})},
                      coords={"time": _times(n).astype("datetime64[ns]")}, attrs={"timestep_minutes": 5})


def test_check_dataset_names_the_problem():
    ds = _dataset()
    with pytest.raises(ValueError, match="expected a variable 'rain_rate'"):
        check_dataset(ds.rename({"rain_rate": "precip"}))
    with pytest.raises(ValueError, match="dims"):
        check_dataset(ds.transpose("time", "x", "y"))
    bad = ds.copy()
    bad["rain_rate"].attrs["units"] = "dBZ"
    with pytest.raises(ValueError, match="units"):
        check_dataset(bad)


def test_make_windows_shapes_stats_and_missing_masked():
    cfg = WeatherData(downsample=1, patch=8, n_past=3, n_future=2, split=(0.5, 0.0, 0.5), patches_per_window=2,
                      min_rain_fraction=0.0)
    out = make_windows(_dataset(hole=True), cfg, seed=0)
    assert out["train_past"].shape[1:] == (3, 8, 8) and out["train_future"].shape[1:] == (2, 8, 8)
    assert out["test_past"].shape[0] == 16 // 2 - 5 + 1
    for k in ("train_past", "train_future", "test_past", "test_future"):
        assert out[k].isfinite().all()
    assert bool(out["test_mask"].all())  # the test crop avoids the uncovered corner
    assert (out["test_origin"][:, 1:] >= 0).all()
    # training statistics come from the training block only and standardise it
    logs = np.concatenate([out["train_past"].numpy().ravel(), out["train_future"].numpy().ravel()])
    assert abs(logs.mean()) < 0.2 and 0.8 < logs.std() < 1.2


def test_make_windows_too_long_raises():
    cfg = WeatherData(downsample=1, patch=8, n_past=6, n_future=6, split=(0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="shorten"):
        make_windows(_dataset(n=16), cfg, seed=0)
