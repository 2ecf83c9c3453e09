"""Baselines scored in the same run: persistence, pysteps Lucas-Kanade extrapolation and STEPS.

All take ``past [N, P, H, W]`` rain rates in mm/h and return ``[N, M, F, H, W]`` in mm/h (``M = 1``
for the deterministic ones). pysteps is what meteorologists use operationally; it is imported lazily.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np

DB_THRESHOLD, DB_ZERO = 0.1, -15.0  # mm/h below which it is dry; dBR value given to dry pixels


def persistence(past: np.ndarray, n_future: int) -> np.ndarray:
    return np.repeat(past[:, None, -1:], n_future, axis=2)


def _quiet():
    """pysteps prints progress tables; keep the run log readable."""
    return contextlib.redirect_stdout(io.StringIO())


def _to_db(r: np.ndarray) -> np.ndarray:
    out = np.full(r.shape, DB_ZERO, dtype=np.float64)
    wet = r >= DB_THRESHOLD
    out[wet] = 10.0 * np.log10(r[wet])
    return out


def _from_db(d: np.ndarray) -> np.ndarray:
    r = np.power(10.0, d / 10.0)
    r[d < 10.0 * np.log10(DB_THRESHOLD)] = 0.0
    return np.nan_to_num(r, nan=0.0)


def motion_field(past_db: np.ndarray) -> np.ndarray:
    """Lucas-Kanade optical flow ``[2, H, W]`` (pixels per step) of ``[P, H, W]`` dBR frames; zero
    motion when no trackable feature exists (a dry crop)."""
    from pysteps import motion

    with _quiet():
        try:
            v = motion.get_method("LK")(past_db, verbose=False)
        except (ValueError, IndexError):
            v = np.zeros((2, *past_db.shape[1:]))
    return np.nan_to_num(v)


def motion_fields(past: np.ndarray) -> np.ndarray:
    """LK motion ``[N, 2, H, W]`` of every case (shared by extrapolation and STEPS)."""
    return np.stack([motion_field(_to_db(case)) for case in past])


def extrapolation(past: np.ndarray, velocity: np.ndarray, n_future: int) -> np.ndarray:
    """Semi-Lagrangian advection of the last frame along the LK motion field."""
    from pysteps import nowcasts

    out = []
    for case, v in zip(past, velocity, strict=True):
        with _quiet():
            f = nowcasts.get_method("extrapolation")(case[-1].astype(np.float64), v, n_future,
                                                     extrap_kwargs={"allow_nonfinite_values": True})
        out.append(np.nan_to_num(f, nan=0.0)[None])
    return np.stack(out).astype(np.float32)


def steps(past: np.ndarray, velocity: np.ndarray, n_future: int, members: int, seed: int, km_per_pixel: float,
          timestep: float) -> np.ndarray:
    """The STEPS ensemble nowcast (Bowler et al. 2006; Seed et al. 2013) from the last 3 frames."""
    from pysteps import nowcasts

    levels = max(2, min(6, int(math.log2(min(past.shape[-2:]))) - 1))
    out = []
    for n, (case, v) in enumerate(zip(past, velocity, strict=True)):
        db = _to_db(case)
        if (case[-1] >= DB_THRESHOLD).mean() < 0.01:  # STEPS needs rain to fit its cascade
            out.append(np.zeros((members, n_future, *case.shape[1:]), np.float32))
            continue
        with _quiet():
            f = nowcasts.get_method("steps")(
                db[-3:], v, n_future, n_ens_members=members, n_cascade_levels=levels,
                precip_thr=10.0 * np.log10(DB_THRESHOLD), kmperpixel=km_per_pixel, timestep=timestep,
                noise_method="nonparametric", vel_pert_method="bps", mask_method="incremental",
                seed=int(seed + n) % (2**31 - 1))
        out.append(_from_db(np.asarray(f)).astype(np.float32))
    return np.stack(out)
