"""Past->future windows cropped into patches, log-transformed and standardised (train stats only)."""

from __future__ import annotations

import numpy as np
import torch

from domains.weather import windows
from domains.weather.data import WeatherData, check_dataset, to_log


def _valid_rainy(block: np.ndarray, min_rain: float) -> bool:
    return bool(np.isfinite(block).all() and (block >= 0.1).mean() >= min_rain)


def random_patches(block: np.ndarray, cfg: WeatherData, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``n`` crop origins of fully covered, rainy patches of a ``[T, H, W]`` block."""
    p, (_, h, w) = cfg.patch, block.shape
    if h < p or w < p:
        raise ValueError(f"data.patch={p} is larger than the field ({h} x {w}); lower data.patch or data.downsample")
    out: list[tuple[int, int]] = []
    for _ in range(50 * n):
        i, j = int(rng.integers(0, h - p + 1)), int(rng.integers(0, w - p + 1))
        if _valid_rainy(block[:, i:i + p, j:j + p], cfg.min_rain_fraction):
            out.append((i, j))
            if len(out) == n:
                break
    return out


def best_crops(block: np.ndarray, cfg: WeatherData, k: int) -> list[tuple[int, int]]:
    """The ``k`` fully covered crops (on a half-patch grid) with the most rain over a ``[T, H, W]`` block."""
    p, (_, h, w) = cfg.patch, block.shape
    cands = []
    for i in range(0, h - p + 1, max(p // 2, 1)):
        for j in range(0, w - p + 1, max(p // 2, 1)):
            crop = block[:, i:i + p, j:j + p]
            if np.isfinite(crop).all():
                cands.append((float((crop >= 0.1).mean()), i, j))
    if not cands:
        raise ValueError("no fully covered crop in the test block; lower data.patch")
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [(i, j) for _, i, j in cands[:k]]


def make_windows(ds, cfg: WeatherData, seed: int) -> dict[str, torch.Tensor]:
    """Named tensors: normalised train/test windows, test rain rates (mm/h), masks and statistics."""
    check_dataset(ds)
    rain = ds["rain_rate"].values.astype(np.float32)
    times = ds["time"].values.astype("datetime64[s]")
    step = np.timedelta64(int(ds.attrs.get("timestep_minutes", 5)) * 60, "s")
    length = cfg.n_past + cfg.n_future
    starts = windows.split_windows(times, step, length, cfg.split,
                                   {"train": cfg.train_stride, "val": cfg.test_stride, "test": cfg.test_stride})
    if not starts["train"] or not starts["test"]:
        raise ValueError(f"windows of {length} frames leave train={len(starts['train'])}, test={len(starts['test'])} "
                         f"windows in {len(times)} frames; shorten data.n_past/n_future or change data.split")
    rng = np.random.default_rng(seed)
    train = [rain[s:s + length, i:i + cfg.patch, j:j + cfg.patch] for s in starts["train"]
             for i, j in random_patches(rain[s:s + length], cfg, cfg.patches_per_window, rng)]
    if not train:
        raise ValueError("no fully covered rainy training patch found; lower data.min_rain_fraction or data.patch")
    t0, t1 = starts["test"][0], starts["test"][-1] + length
    crops = best_crops(rain[t0:t1], cfg, cfg.test_crops)
    test = [rain[s:s + length, i:i + cfg.patch, j:j + cfg.patch] for s in starts["test"] for i, j in crops]
    train_a, test_a = np.stack(train), np.stack(test)
    logs = to_log(train_a, cfg.log_offset)
    mean, std = float(np.nanmean(logs)), float(np.nanstd(logs))
    norm = lambda a: torch.from_numpy(np.nan_to_num((to_log(a, cfg.log_offset) - mean) / std))  # noqa: E731
    p = cfg.n_past
    origin = [(s, i, j) for s in starts["test"] for i, j in crops]
    return {"train_past": norm(train_a[:, :p]), "train_future": norm(train_a[:, p:]),
            "test_past": norm(test_a[:, :p]), "test_future": norm(test_a[:, p:]),
            "test_past_phys": torch.from_numpy(test_a[:, :p]), "test_future_phys": torch.from_numpy(test_a[:, p:]),
            "test_mask": torch.from_numpy(np.isfinite(test_a[:, p:])),
            "test_origin": torch.tensor(origin, dtype=torch.int64),
            "test_time": torch.from_numpy(times[[s + p for s, _, _ in origin]].astype(np.int64)),
            "stats": torch.tensor([mean, std, cfg.log_offset], dtype=torch.float64)}
