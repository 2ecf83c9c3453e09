"""Scores of one forecast method by lead time: ``forecast [N, M, F, H, W]`` vs ``obs [N, F, H, W]``.

CRPS, RMSE and spread are averaged over all verified pixels of all N cases at a lead time; CSI and
FSS pool the contingency tables / FSS sums over cases and members (member-pooled scores, so an
ensemble is not smoothed into its mean before scoring categorical events).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from domains.weather import metrics as M


def _lead_scores(f: np.ndarray, o: np.ndarray, mask: np.ndarray, thresholds: Sequence[float],
                 scales: Sequence[int], fss_thr: float, weights: np.ndarray | None) -> dict[str, float]:
    """``f [N, M, H, W]``, ``o``/``mask [N, H, W]``: the scores at one lead time."""
    ens, obs, msk, w = np.moveaxis(f, 1, 0), o, mask, weights  # [M, N, H, W]
    row = {"crps": M.crps(ens, obs, msk, weights=w), "rmse": M.rmse_mean(ens, obs, msk, w),
           "spread": M.spread(ens, msk, w), "spread_skill": M.spread_skill(ens, obs, msk, w) if ens.shape[0] > 1
           else float("nan")}
    for thr in thresholds:
        table = sum(M.contingency(ens[k], obs, thr, msk) for k in range(ens.shape[0]))
        row[f"csi_{thr:g}"] = M.csi_from(table)
    for s in scales:
        sums = sum(M.fss_sums(ens[k, n], obs[n], fss_thr, s, msk[n])
                   for k in range(ens.shape[0]) for n in range(obs.shape[0]))
        row[f"fss_{fss_thr:g}_{s}"] = M.fss_from(sums)
    return row


def score_by_lead(forecast: np.ndarray, obs: np.ndarray, mask: np.ndarray, thresholds: Sequence[float],
                  scales: Sequence[int], fss_thr: float, x_min: float | None = 0.1,
                  seed: int = 0, weights: np.ndarray | None = None) -> dict[str, Any]:
    """``{"by_lead": [row per lead], "rank_hist": [...] or None}`` for one method; ``weights`` (e.g.
    latitude weights ``[H, 1]``) broadcast against one field ``[H, W]``."""
    if forecast.ndim != 5 or forecast.shape[:1] + forecast.shape[2:] != obs.shape:
        raise ValueError(f"forecast must be [N, M, F, H, W] matching obs [N, F, H, W]; got {forecast.shape}, "
                         f"{obs.shape}")
    obs = np.where(mask, obs, np.nan)
    rows = [_lead_scores(forecast[:, :, k], obs[:, k], mask[:, k], thresholds, scales, fss_thr, weights)
            for k in range(obs.shape[1])]
    rank = None
    if forecast.shape[1] > 1:
        ens = np.moveaxis(forecast, 1, 0)
        rank = M.rank_histogram(ens, obs, mask, np.random.default_rng(seed), x_min=x_min).tolist()
    return {"by_lead": rows, "rank_hist": rank}
