"""Pictures of graphs: a grid of generated graphs beside reference (test) graphs (PNG, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.provenance import atomic_save_figure


def graph_grid(gen: Sequence[Any], ref: Sequence[Any], path: Path, n: int = 8, seed: int = 0) -> Path:
    """Row 1: reference graphs; row 2: generated graphs (spring layouts with a fixed seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    cols = max(1, min(n, len(gen), len(ref)))
    fig, axes = plt.subplots(2, cols, figsize=(2.2 * cols, 4.6), squeeze=False)
    for row, (graphs, label, color) in enumerate(((ref, "test", "tab:blue"), (gen, "generated", "tab:orange"))):
        for c in range(cols):
            ax = axes[row][c]
            g = graphs[c]
            pos = nx.spring_layout(g, seed=seed) if g.number_of_nodes() else {}
            nx.draw_networkx(g, pos, ax=ax, node_size=30, node_color=color, with_labels=False, width=0.6)
            ax.set_title(f"{label} n={g.number_of_nodes()} e={g.number_of_edges()}", fontsize=7)
            ax.set_axis_off()
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
