"""Plots of the pde domain (matplotlib, headless): space-time images, forcing, MSE vs resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from core.provenance import atomic_save_figure


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path, plt: Any) -> Path:
    atomic_save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


def spacetime(u_true: Tensor, preds: dict[str, Tensor], path: Path) -> Path:
    """Rows: examples; columns: true u(t, x), each method's u and its error (x across, t down)."""
    plt = _plt()
    k, names = u_true.shape[0], list(preds)
    cols = 1 + 2 * len(names)
    fig, axes = plt.subplots(k, cols, figsize=(2.2 * cols, 2.2 * k), squeeze=False)
    vmax = float(u_true.abs().max())
    for i in range(k):
        panels = [("true u", u_true[i], "RdBu_r", vmax)]
        for n in names:
            err = preds[n][i] - u_true[i]
            panels += [(f"{n} u", preds[n][i], "RdBu_r", vmax), (f"{n} error", err, "PuOr", vmax / 4)]
        for j, (title, img, cmap, vm) in enumerate(panels):
            ax = axes[i][j]
            ax.imshow(img.detach().cpu().numpy(), aspect="auto", cmap=cmap, vmin=-vm, vmax=vm, origin="upper")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def forcing(f: Tensor, path: Path) -> Path:
    plt = _plt()
    k = f.shape[0]
    fig, axes = plt.subplots(1, k, figsize=(2.4 * k, 2.4), squeeze=False)
    vm = float(f.abs().max())
    for i in range(k):
        axes[0][i].imshow(f[i].cpu().numpy(), aspect="auto", cmap="PiYG", vmin=-vm, vmax=vm)
        axes[0][i].set_title(f"f, test {i}", fontsize=8)
        axes[0][i].set_xlabel("x")
        axes[0][i].set_ylabel("t")
    fig.tight_layout()
    return _save(fig, path, plt)


def mse_vs_resolution(rows: list[dict[str, Any]], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for m in dict.fromkeys(r["method"] for r in rows):
        pts = [r for r in rows if r["method"] == m]
        ref = m == "solver_1x_interp"  # the discretisation floor, not a method
        ax.plot([r["resolution"] for r in pts], [r["mse"] for r in pts], marker="x" if ref else "o",
                linestyle="--" if ref else "-", color="0.5" if ref else None,
                label="floor: 1x solver, interpolated" if ref else m)
    ax.set_yscale("log")
    ax.set_xlabel("test grid")
    ax.set_ylabel("simulation MSE (t > 0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def j_across_test_set(rows: list[dict[str, Any]], path: Path) -> Path:
    """Control objective J (re-simulated) per test target, one marker per method."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for m in dict.fromkeys(r["method"] for r in rows):
        pts = [r for r in rows if r["method"] == m]
        ax.plot([r["sample"] for r in pts], [r["J"] for r in pts], marker="o", linestyle="none", label=m)
    ax.set_yscale("log")
    ax.set_xlabel("test target")
    ax.set_ylabel("J = mean_x (u_T - target)^2")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


def control_curves(curves: dict[str, list[float]], levels: dict[str, float], path: Path) -> Path:
    """Mean J (re-simulated) against solver iterations for each Adam start (``curves``: J of iterate 0..k),
    with horizontal lines at the J of controls that use no solver iteration (``levels``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for name, js in curves.items():
        ax.plot(range(len(js)), js, marker="o", markersize=3, label=f"Adam from {'zero' if name == 'solver_adam' else 'wdno f'}")
    for name, j in levels.items():
        ax.axhline(j, linestyle="--", linewidth=1, color="0.5" if name == "zero_f" else "C3", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("solver iterations (forward + backward); last: the returned control")
    ax.set_ylabel("mean J over test targets")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path, plt)


__all__ = ["control_curves", "forcing", "j_across_test_set", "mse_vs_resolution", "spacetime"]
