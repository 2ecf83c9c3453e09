"""Ensemble verification, the way operational centres verify (pure functions on numpy arrays).

Conventions: an ensemble is ``ens [M, ...]``, the observation ``obs [...]`` and an optional boolean
``mask [...]`` (True = verify here; missing radar pixels are excluded, never counted as dry).

- fair CRPS (Ferro 2014): ``mean_i |x_i - y| - sum_ij |x_i - x_j| / (2 M (M-1))`` — unbiased for the
  CRPS of the distribution the members are drawn from; ``crps_ensemble`` is the plain estimator
  (``/ 2 M^2``, the one properscoring computes).
- spread/skill (Fortin et al. 2014): ``sqrt((M+1)/M) * spread / RMSE(ensemble mean)`` with spread the
  root of the mean unbiased ensemble variance; 1 is a calibrated ensemble.
- CSI at a threshold, FSS at a neighbourhood scale (Roberts & Lean 2008, accumulated over fields
  the way pysteps does), rank histogram with random tie-breaking.
"""

from __future__ import annotations

import numpy as np


def _masked_mean(a: np.ndarray, mask: np.ndarray | None, weights: np.ndarray | None = None) -> float:
    """Mean over ``mask`` (all points if None), weighted by ``weights`` (broadcast to ``a``) if given."""
    w = np.ones(a.shape) if weights is None else np.broadcast_to(weights, a.shape)
    keep = np.ones(a.shape, bool) if mask is None else np.broadcast_to(mask, a.shape)
    return float(np.average(a[keep], weights=w[keep])) if keep.any() else float("nan")


def _pair_sum(ens: np.ndarray) -> np.ndarray:
    """``sum_{i,j} |x_i - x_j|`` over the member axis 0, in O(M log M) from the sorted members."""
    m = ens.shape[0]
    srt = np.sort(ens, axis=0)
    w = (2 * np.arange(m) - m + 1).reshape(-1, *([1] * (ens.ndim - 1)))
    return 2.0 * (w * srt).sum(axis=0)


def crps_pointwise(ens: np.ndarray, obs: np.ndarray, fair: bool = True) -> np.ndarray:
    """CRPS at every point (fair or plain ensemble estimator); ``M = 1`` gives the absolute error."""
    ens, obs = np.asarray(ens, np.float64), np.asarray(obs, np.float64)
    if ens.shape[1:] != obs.shape:
        raise ValueError(f"ensemble {ens.shape} must be [M, *obs.shape] with obs {obs.shape}")
    m = ens.shape[0]
    skill = np.abs(ens - obs).mean(axis=0)
    if m == 1:
        return skill
    return skill - _pair_sum(ens) / (2 * m * (m - 1) if fair else 2 * m * m)


def crps(ens: np.ndarray, obs: np.ndarray, mask: np.ndarray | None = None, fair: bool = True,
         weights: np.ndarray | None = None) -> float:
    """Mean CRPS; ``weights`` (e.g. latitude weights) broadcast against ``obs``."""
    return _masked_mean(crps_pointwise(ens, obs, fair), mask, weights)


def rmse_mean(ens: np.ndarray, obs: np.ndarray, mask: np.ndarray | None = None,
              weights: np.ndarray | None = None) -> float:
    """RMSE of the ensemble mean."""
    return float(np.sqrt(_masked_mean((np.asarray(ens, np.float64).mean(0) - obs) ** 2, mask, weights)))


def spread(ens: np.ndarray, mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> float:
    """Root of the mean unbiased ensemble variance (0 for one member)."""
    if ens.shape[0] < 2:
        return 0.0
    return float(np.sqrt(_masked_mean(np.asarray(ens, np.float64).var(0, ddof=1), mask, weights)))


def spread_skill(ens: np.ndarray, obs: np.ndarray, mask: np.ndarray | None = None,
                 weights: np.ndarray | None = None) -> float:
    m = ens.shape[0]
    skill = rmse_mean(ens, obs, mask, weights)
    return float(np.sqrt((m + 1) / m) * spread(ens, mask, weights) / skill) if skill > 0 else float("nan")


def latitude_weights(lat_deg: np.ndarray) -> np.ndarray:
    """Area weights of latitude rows, normalised to mean 1 (WeatherBench 2 convention).

    Each row is the band between the midpoints to its neighbours (the outer rows extend by half their
    spacing), clipped to +-90 deg; its area is ``sin(upper) - sin(lower)``. On a regular grid this is
    WeatherBench 2's cell-area weight, ``~cos(lat)`` away from the poles, and it stays positive for
    rows at the poles, where ``cos(lat)`` would give them no weight."""
    lat = np.asarray(lat_deg, np.float64)
    if lat.ndim != 1 or lat.size == 0 or np.abs(lat).max() > 90:
        raise ValueError(f"latitude must be a 1-D array of degrees in [-90, 90], got shape {lat.shape}")
    if lat.size == 1:
        return np.ones(1)
    order = np.argsort(lat)
    srt = lat[order]
    if (np.diff(srt) <= 0).any():
        raise ValueError("latitude values must be distinct")
    mid = 0.5 * (srt[1:] + srt[:-1])
    lower = np.concatenate([[srt[0] - (mid[0] - srt[0])], mid])
    upper = np.concatenate([mid, [srt[-1] + (srt[-1] - mid[-1])]])
    area = np.sin(np.deg2rad(np.clip(upper, -90, 90))) - np.sin(np.deg2rad(np.clip(lower, -90, 90)))
    w = np.empty_like(area)
    w[order] = area
    return w / w.mean()


def rank_histogram(ens: np.ndarray, obs: np.ndarray, mask: np.ndarray | None = None,
                   rng: np.random.Generator | None = None, x_min: float | None = None) -> np.ndarray:
    """Counts of the observation's rank among ``M`` members (``M + 1`` bins), ties broken at random.

    With ``x_min``, points where the observation and all members are below it are skipped and values
    below it tie (pysteps convention for rain)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    m = ens.shape[0]
    f = ens.reshape(m, -1).T.astype(np.float64)
    o = np.asarray(obs, np.float64).reshape(-1)
    keep = np.ones_like(o, bool) if mask is None else mask.reshape(-1).copy()
    if x_min is not None:
        keep &= (o >= x_min) | (f >= x_min).any(1)
        f, o = np.where(f < x_min, x_min - 1, f), np.where(o < x_min, x_min - 1, o)
    f, o = f[keep], o[keep]
    below = (f < o[:, None]).sum(1)
    ties = (f == o[:, None]).sum(1)
    rank = below + np.floor(rng.uniform(size=len(o)) * (ties + 1)).astype(int)
    return np.bincount(rank, minlength=m + 1)


def contingency(pred: np.ndarray, obs: np.ndarray, thr: float, mask: np.ndarray | None = None) -> np.ndarray:
    """``[hits, misses, false alarms, correct negatives]`` of ``value >= thr`` events."""
    p, o = pred >= thr, obs >= thr
    if mask is not None:
        p, o = p[mask], o[mask]
    return np.array([(p & o).sum(), (~p & o).sum(), (p & ~o).sum(), (~p & ~o).sum()], dtype=np.int64)


def csi_from(table: np.ndarray) -> float:
    h, m, f = table[:3]
    return float(h / (h + m + f)) if h + m + f else float("nan")


def csi(pred: np.ndarray, obs: np.ndarray, thr: float, mask: np.ndarray | None = None) -> float:
    return csi_from(contingency(pred, obs, thr, mask))


def fss_sums(pred: np.ndarray, obs: np.ndarray, thr: float, scale: int,
             mask: np.ndarray | None = None) -> np.ndarray:
    """``[sum Sf^2, sum Sf So, sum So^2]`` of one 2-D field pair (masked points are non-events)."""
    from scipy.ndimage import uniform_filter

    if pred.ndim != 2 or pred.shape != obs.shape:
        raise ValueError(f"FSS needs two 2-D fields of one shape, got {pred.shape} and {obs.shape}")
    ok = np.ones(pred.shape, bool) if mask is None else mask
    i_f = ((pred >= thr) & ok & np.isfinite(pred)).astype(float)
    i_o = ((obs >= thr) & ok & np.isfinite(obs)).astype(float)
    if scale > 1:
        i_f = uniform_filter(i_f, size=scale, mode="constant", cval=0.0)
        i_o = uniform_filter(i_o, size=scale, mode="constant", cval=0.0)
    return np.array([(i_f**2).sum(), (i_f * i_o).sum(), (i_o**2).sum()])


def fss_from(sums: np.ndarray) -> float:
    ff, fo, oo = sums
    return float(1.0 - (ff - 2 * fo + oo) / (ff + oo)) if ff + oo > 0 else float("nan")


def fss(pred: np.ndarray, obs: np.ndarray, thr: float, scale: int, mask: np.ndarray | None = None) -> float:
    return fss_from(fss_sums(pred, obs, thr, scale, mask))
