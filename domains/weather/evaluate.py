"""Validation of the diffusion ensemble against the baselines, in one table by lead time."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from core.provenance import RunDir, atomic_write_json
from core.seeding import derive_seed
from domains.weather import baselines, plots
from domains.weather.metrics import latitude_weights
from domains.weather.output import ensemble_array
from domains.weather.verify import score_by_lead


def clean(v: Any) -> Any:
    """NaN -> None, recursively (valid JSON)."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [clean(x) for x in v]
    return v


def baseline_forecasts(cfg: Any, data: Mapping[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    if cfg.data.source == "era5":  # persistence and the training-period climatology (per hour of day)
        past = data["test_past_phys"].numpy()
        return {"persistence": baselines.persistence(past, cfg.data.n_future),
                "climatology": data["test_climatology"].numpy()[:, None]}, {}
    past = data["test_past_phys"].numpy().astype(np.float64)
    if not np.isfinite(past).all():  # test crops are chosen fully covered; missing is never turned into dry
        raise ValueError("a test window has missing radar pixels in its past frames; the baselines need fully "
                         "covered crops (lower data.patch or re-ingest)")
    f, v = cfg.data.n_future, cfg.validate_
    out, secs = {}, {}
    velocity = baselines.motion_fields(past) if {"extrapolation", "steps"} & set(v.baselines) else None
    for name in v.baselines:
        t0 = time.perf_counter()
        if name == "persistence":
            out[name] = baselines.persistence(past, f)
        elif name == "extrapolation":
            out[name] = baselines.extrapolation(past, velocity, f)
        else:
            out[name] = baselines.steps(past, velocity, f, v.steps_members, derive_seed(cfg.seed, "steps") % 2**31,
                                        float(cfg.data.downsample), 5.0)
        secs[name] = time.perf_counter() - t0
    return out, secs


def markdown(table: Mapping[str, Any], keys: list[str], minutes: int = 5) -> str:
    head = "| method | lead (min) | " + " | ".join(keys) + " |\n|---|---:|" + "---:|" * len(keys) + "\n"
    rows = []
    for method, res in table.items():
        for k, r in enumerate(res["by_lead"]):
            cells = " | ".join("—" if r.get(key) is None else f"{r[key]:.3f}" for key in keys)
            rows.append(f"| {method} | {minutes * (k + 1)} | {cells} |\n")
    return head + "".join(rows)


def evaluate(cfg: Any, x: torch.Tensor, data: Mapping[str, torch.Tensor], run: RunDir, info: Mapping[str, Any],
             ablations: Mapping[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """Scores of the model, its guidance ablations (``model_plain``: conditional model alone,
    ``model_cfg``: uniform guidance at the same scale) and the baselines, by lead time."""
    v, m = cfg.validate_, cfg.ensemble.members
    obs, mask = data["test_future_phys"].numpy(), data["test_mask"].numpy()
    methods = {"model": ensemble_array(x, dict(data), cfg)}
    for name, samples in (ablations or {}).items():
        methods[name] = ensemble_array(samples, dict(data), cfg)
    base, secs = baseline_forecasts(cfg, data)
    methods.update(base)
    if cfg.data.source == "era5":  # latitude-weighted, no precipitation categories
        w = latitude_weights(data["latitude"].numpy())[:, None]
        table = {name: score_by_lead(f, obs, mask, [], [], 0.0, x_min=None, seed=cfg.seed, weights=w)
                 for name, f in methods.items()}
    else:
        table = {name: score_by_lead(f, obs, mask, v.thresholds, v.fss_scales, v.fss_threshold, seed=cfg.seed)
                 for name, f in methods.items()}
    table = clean(table)
    keys = list(table["model"]["by_lead"][0])
    atomic_write_json(run.path / "verification.json", {"table": table, "baseline_seconds": secs})
    (run.path / "verification.md").write_text(markdown(table, keys, 60 if cfg.data.source == "era5" else 5))
    case = min(v.plot_case, obs.shape[0] - 1)
    plots.panels(obs[case], methods["model"][case], run.plots / "panels.png", source=cfg.data.source)
    second = "rmse" if cfg.data.source == "era5" else f"csi_{v.thresholds[0]:g}"
    plots.scores_vs_lead(table, ["crps", second, "spread_skill"], run.plots / "scores_vs_lead.png",
                         minutes=60 if cfg.data.source == "era5" else 5)
    return summary(table, v, info, obs.shape[0], m, categorical=cfg.data.source == "radar")


def summary(table: Mapping[str, Any], v: Any, info: Mapping[str, Any], n_cases: int, members: int,
            categorical: bool = True) -> dict[str, Any]:
    """Flat headline metrics: scores averaged over lead times, per method."""
    def avg(method: str, key: str) -> float:
        vals = [r[key] for r in table[method]["by_lead"] if r.get(key) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    out: dict[str, Any] = {"n_cases": n_cases, "members": members, "nfe": int(info.get("nfe", 0))}
    mid = v.fss_scales[len(v.fss_scales) // 2]
    for method in table:
        out[f"crps_{method}"] = avg(method, "crps")
        out[f"rmse_{method}"] = avg(method, "rmse")
        if categorical:
            out[f"csi_{v.thresholds[0]:g}_{method}"] = avg(method, f"csi_{v.thresholds[0]:g}")
            out[f"fss_{method}"] = avg(method, f"fss_{v.fss_threshold:g}_{mid}")
        if table[method]["rank_hist"] is not None:
            out[f"spread_skill_{method}"] = avg(method, "spread_skill")
    out["crps_by_lead_model"] = [r["crps"] for r in table["model"]["by_lead"]]
    out["rank_hist_model"] = table["model"]["rank_hist"]
    return out
