"""Time handling: split a series at gaps, cut past->future windows, split by time without overlap.

A series with gaps is split at the gaps (never interpolated); a window never spans a gap; the
train/val/test blocks are consecutive stretches of time, and a window belongs to the block that holds
all of its frames, so no frame is shared between splits.
"""

from __future__ import annotations

import numpy as np


def segments(times: np.ndarray, step: np.timedelta64) -> list[tuple[int, int]]:
    """``[start, stop)`` index ranges of the gap-free stretches of a sorted time axis."""
    if len(times) == 0:
        return []
    d = np.diff(times)
    if (d <= np.timedelta64(0, "s")).any():
        raise ValueError("time axis must be strictly increasing (duplicate or unsorted timestamps)")
    breaks = np.flatnonzero(d != step) + 1
    edges = [0, *breaks.tolist(), len(times)]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def windows(start: int, stop: int, length: int, stride: int = 1) -> list[int]:
    """First indices of the windows of ``length`` frames that fit inside ``[start, stop)``."""
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
    return list(range(start, stop - length + 1, stride))


def split_blocks(n: int, fractions: tuple[float, float, float]) -> dict[str, tuple[int, int]]:
    """Consecutive ``[start, stop)`` frame blocks for train/val/test from fractions of ``n`` frames."""
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    a = round(fractions[0] * n)
    b = a + round(fractions[1] * n)
    return {"train": (0, a), "val": (a, b), "test": (b, n)}


def split_windows(times: np.ndarray, step: np.timedelta64, length: int, fractions: tuple[float, float, float],
                  strides: dict[str, int]) -> dict[str, list[int]]:
    """Window start indices per split: inside one split block and one gap-free segment."""
    out: dict[str, list[int]] = {}
    for name, (b0, b1) in split_blocks(len(times), fractions).items():
        starts: list[int] = []
        for s0, s1 in segments(times, step):
            lo, hi = max(b0, s0), min(b1, s1)
            if hi > lo:
                starts += windows(lo, hi, length, strides.get(name, 1))
        out[name] = starts
    return out
