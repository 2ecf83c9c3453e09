"""Molecular property distributions of generated vs reference molecules: QED, Crippen logP,
synthetic accessibility (Ertl & Schuffenhauer's SA score, RDKit Contrib ``sascorer``) and molecular
weight; the distance per property is the 1-Wasserstein distance between the two empirical
distributions, and a 2 × 2 PNG of overlaid histograms shows them."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.provenance import atomic_save_figure

PROPERTIES = ("qed", "logp", "sa", "mw")
LABELS = {"qed": "QED", "logp": "logP (Crippen)", "sa": "SA score", "mw": "molecular weight"}


@lru_cache(maxsize=1)
def _sascorer() -> Any:
    import importlib.util
    import os

    from rdkit.Chem import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score", "sascorer.py")
    if not os.path.exists(path):
        raise FileNotFoundError(f"RDKit's Contrib SA_Score/sascorer.py is missing at {path}; install an RDKit "
                                "wheel that ships Contrib (the PyPI 'rdkit' wheel does)")
    spec = importlib.util.spec_from_file_location("sascorer", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def properties_of(smiles: Sequence[str]) -> dict[str, list[float]]:
    """Property values of the parseable SMILES (unparseable ones are skipped)."""
    from rdkit import Chem, RDLogger
    from rdkit.Chem import QED, Crippen, Descriptors

    RDLogger.DisableLog("rdApp.*")
    sa = _sascorer()
    out: dict[str, list[float]] = {p: [] for p in PROPERTIES}
    for s in smiles:
        m = Chem.MolFromSmiles(s)
        if m is None or m.GetNumAtoms() == 0:
            continue
        out["qed"].append(float(QED.qed(m)))
        out["logp"].append(float(Crippen.MolLogP(m)))
        out["sa"].append(float(sa.calculateScore(m)))
        out["mw"].append(float(Descriptors.MolWt(m)))
    return out


def property_distances(gen: dict[str, list[float]], ref: dict[str, list[float]]) -> dict[str, float | None]:
    """``w1_<property>``: 1-Wasserstein distance (``None`` when either side is empty) and the means."""
    from scipy.stats import wasserstein_distance

    out: dict[str, float | None] = {}
    for p in PROPERTIES:
        g, r = gen[p], ref[p]
        out[f"w1_{p}"] = float(wasserstein_distance(g, r)) if g and r else None
        out[f"mean_{p}"] = float(sum(g) / len(g)) if g else None
        out[f"ref_mean_{p}"] = float(sum(r) / len(r)) if r else None
    return out


def property_histograms(gen: dict[str, list[float]], ref: dict[str, list[float]], path: Path,
                        label: str = "generated") -> Path:
    """2 × 2 overlaid density histograms (reference vs generated), written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(2, 2, figsize=(8, 6))
    for ax, p in zip(axes.flat, PROPERTIES, strict=True):
        both = gen[p] + ref[p]
        if both:
            bins = np.linspace(min(both), max(both), 31) if max(both) > min(both) else 10
            ax.hist(ref[p], bins=bins, density=True, alpha=0.5, label=f"test ({len(ref[p])})", color="tab:blue")
            ax.hist(gen[p], bins=bins, density=True, alpha=0.5, label=f"{label} ({len(gen[p])})", color="tab:orange")
        ax.set_title(LABELS[p])
        ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path
