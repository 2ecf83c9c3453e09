"""Plots and tables of the toy domain (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sample_scatter(x: torch.Tensor, ref: torch.Tensor, path: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    for ax, pts, title in ((axes[0], ref, "data (true mixture)"), (axes[1], x, "samples")):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5)
        ax.set_title(title)
        ax.set_aspect("equal")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sampler_grid(grids: dict[tuple[str, int], torch.Tensor], ref: torch.Tensor, path: Path) -> Path:
    plt = _plt()
    names = sorted({k[0] for k in grids}, key=lambda n: [k[0] for k in grids].index(n))
    steps = sorted({k[1] for k in grids})
    fig, axes = plt.subplots(len(names), len(steps), figsize=(2.6 * len(steps), 2.6 * len(names)),
                             sharex=True, sharey=True, squeeze=False)
    for i, name in enumerate(names):
        for j, s in enumerate(steps):
            ax = axes[i][j]
            ax.scatter(ref[:, 0], ref[:, 1], s=1, c="0.8")
            if (name, s) in grids:
                pts = grids[(name, s)]
                ax.scatter(pts[:, 0], pts[:, 1], s=1)
            ax.set_title(f"{name}, {s} steps", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    head = "| sampler | steps | NFE | sliced W | MMD | log-lik |\n|---|---:|---:|---:|---:|---:|\n"
    body = "".join(f"| {r['sampler']} | {r['steps']} | {r['nfe']} | {r['sliced_wasserstein']:.4f} | "
                   f"{r['mmd']:.4f} | {r['log_likelihood']:.3f} |\n" for r in rows)
    return head + body
