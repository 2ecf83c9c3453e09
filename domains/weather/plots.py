"""Pictures: forecast panels per lead time, and scores against lead time for every method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panels(obs: np.ndarray, ens: np.ndarray, path: Path, members: int = 3, source: str = "radar") -> Path:
    """Rows: observed, ``members`` ensemble members, ensemble mean; columns: lead times.

    ``obs [F, H, W]``, ``ens [M, F, H, W]`` in mm/h (radar) or K (ERA5)."""
    plt = _plt()
    rows = [("observed", obs)] + [(f"member {k}", ens[k]) for k in range(min(members, ens.shape[0]))]
    rows.append(("ensemble mean", ens.mean(0)))
    f = obs.shape[0]
    fig, axes = plt.subplots(len(rows), f, figsize=(1.8 * f, 1.8 * len(rows)), squeeze=False)
    radar = source == "radar"
    vmin = 0.0 if radar else float(np.nanmin(obs))
    vmax = max(float(np.nanmax(obs)), 1.0) if radar else float(np.nanmax(obs))
    minutes, cmap, label = (5, "Blues", "rain rate (mm/h)") if radar else (60, "coolwarm", "2 m temperature (K)")
    for i, (name, field) in enumerate(rows):
        for j in range(f):
            ax = axes[i][j]
            im = ax.imshow(field[j], vmin=vmin, vmax=vmax, cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"+{minutes * (j + 1)} min", fontsize=8)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label=label)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def scores_vs_lead(table: dict[str, Any], keys: list[str], path: Path, minutes: int = 5) -> Path:
    """One panel per score, one line per method, against lead time (minutes)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for method, res in table.items():
            vals = [r.get(key) for r in res["by_lead"]]
            lead = minutes * np.arange(1, len(vals) + 1)
            ax.plot(lead, [np.nan if v is None else v for v in vals], marker="o", label=method)
        ax.set_xlabel("lead time (min)")
        ax.set_title(key)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
