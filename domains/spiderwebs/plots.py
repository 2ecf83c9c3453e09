"""Plots of the spiderwebs domain (matplotlib Agg, PNG): 3D webs/patches, requested-vs-achieved scatter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.provenance import atomic_save_figure
from domains.spiderwebs.graph import WebGraph
from domains.spiderwebs.properties import PROPERTY_NAMES


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _draw(ax, g: WebGraph, title: str, node_size: float = 4) -> None:
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    if g.n_edges:
        ax.add_collection3d(Line3DCollection(g.pos[g.edges], colors="0.25", linewidths=0.5))
    ax.scatter(*g.pos.T, s=node_size, c="tab:red", depthshade=False)
    lo, hi = g.pos.min(0), g.pos.max(0)
    mid, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6)
    for set_lim, m in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), mid, strict=True):
        set_lim(m - half, m + half)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])


def _save(fig, path: Path) -> Path:
    atomic_save_figure(fig, path, dpi=90)
    _plt().close(fig)
    return path


def web_gallery(graphs: Sequence[WebGraph], titles: Sequence[str], path: Path, cols: int = 4) -> Path:
    """A grid of 3D graph drawings."""
    plt = _plt()
    rows = max(1, -(-len(graphs) // cols))
    fig = plt.figure(figsize=(3 * cols, 3 * rows))
    for k, (g, t) in enumerate(zip(graphs, titles, strict=True)):
        _draw(fig.add_subplot(rows, cols, k + 1, projection="3d"), g, t, node_size=2 if g.n_nodes > 200 else 5)
    fig.tight_layout()
    return _save(fig, path)


def conditioning_scatter(requested: np.ndarray, achieved: np.ndarray, path: Path,
                         beyond: np.ndarray | None = None) -> Path:
    """Requested vs achieved per design quantity (beyond-range requests in orange)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.5))
    for k, ax in enumerate(axes.flat):
        if k >= len(PROPERTY_NAMES):
            ax.axis("off")
            continue
        mask = np.zeros(len(requested), bool) if beyond is None else beyond
        ax.scatter(requested[~mask, k], achieved[~mask, k], s=8, label="within range")
        if mask.any():
            ax.scatter(requested[mask, k], achieved[mask, k], s=8, c="tab:orange", label="beyond range")
        lim = [min(requested[:, k].min(), achieved[:, k].min()), max(requested[:, k].max(), achieved[:, k].max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_title(PROPERTY_NAMES[k], fontsize=9)
        ax.set_xlabel("requested", fontsize=8)
        ax.set_ylabel("achieved", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
