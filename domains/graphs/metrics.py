"""Generic-graph metrics with the GDSS / GraphRNN kernels.

``MMD² = mean k(X,X) + mean k(Y,Y) - 2 mean k(X,Y)`` (means over all pairs, diagonals included, as
GraphRNN's ``compute_mmd``) with

* degree: normalised degree histograms, Gaussian-EMD kernel ``exp(-EMD²/(2σ²))``, ``σ = 1``;
* clustering: 100-bin histograms of clustering coefficients on [0, 1], normalised, Gaussian-EMD with
  ``σ = 0.1`` and bin distance ``|i-j| / 100``;
* orbit: per-graph mean (over nodes) of the 15 four-node orbit counts, Gaussian kernel on the
  Euclidean distance, ``σ = 30``, not normalised.

For histograms on a line the EMD is the L1 distance between the cumulative sums (what ``pyemd``
computes with the ``|i-j|/scaling`` ground distance).

Protocol (:func:`gdss_protocol_mmds`): GDSS scores one generated set of the test split's size (20
graphs on community-small, 40 on ego-small) against the test split. The biased MMD² above depends
on the set size (the ``1/n`` diagonal of ``k(Y,Y)``), so the headline numbers use that size too: the
generated graphs are cut into consecutive disjoint sets of ``len(test)`` graphs, each set is scored
as GDSS scores its one set, and the mean (and std) over the sets is reported; ``*_all`` is the MMD
of all generated graphs at once (lower, not comparable with the published numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from domains.graphs.orbits import orbit_counts

CLUSTER_BINS = 100


def _pad_stack(hists: Sequence[Tensor], length: int) -> Tensor:
    out = torch.zeros(len(hists), length, dtype=torch.float64)
    for i, h in enumerate(hists):
        out[i, : len(h)] = h
    return out


def _normalise(h: Tensor) -> Tensor:
    return h / h.sum(-1, keepdim=True).clamp_min(1e-300)


def gaussian_emd_gram(a: Tensor, b: Tensor, sigma: float, scaling: float = 1.0) -> Tensor:
    """``k_ij = exp(-EMD(a_i, b_j)² / 2σ²)`` for histograms on a line (rows of equal length)."""
    emd = torch.cdist(torch.cumsum(a, -1), torch.cumsum(b, -1), p=1) / scaling
    return torch.exp(-emd * emd / (2 * sigma * sigma))


def gaussian_gram(a: Tensor, b: Tensor, sigma: float) -> Tensor:
    d = torch.cdist(a, b, p=2)
    return torch.exp(-d * d / (2 * sigma * sigma))


def mmd_from_grams(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> float:
    return float(kxx.mean() + kyy.mean() - 2 * kxy.mean())


def hist_mmd(ref: Sequence[Tensor], gen: Sequence[Tensor], sigma: float, scaling: float = 1.0) -> float:
    """MMD² between two sets of histograms under the Gaussian-EMD kernel (histograms normalised)."""
    if not ref or not gen:
        raise ValueError("MMD needs at least one reference and one generated graph")
    length = max(max(len(h) for h in ref), max(len(h) for h in gen))
    x, y = _normalise(_pad_stack(ref, length)), _normalise(_pad_stack(gen, length))
    k = lambda a, b: gaussian_emd_gram(a, b, sigma, scaling)  # noqa: E731
    return mmd_from_grams(k(x, x), k(y, y), k(x, y))


def degree_hist(g: Any) -> Tensor:
    import networkx as nx

    return torch.tensor(nx.degree_histogram(g), dtype=torch.float64)


def clustering_hist(g: Any, bins: int = CLUSTER_BINS) -> Tensor:
    import networkx as nx

    coeffs = torch.tensor(list(nx.clustering(g).values()), dtype=torch.float64)
    if coeffs.numel() == 0:
        return torch.zeros(bins, dtype=torch.float64)
    idx = (coeffs * bins).long().clamp(0, bins - 1)  # numpy.histogram: last bin closed at 1.0
    return torch.bincount(idx, minlength=bins).double()


def mean_orbit_counts(g: Any) -> Tensor:
    import networkx as nx

    n = g.number_of_nodes()
    if n == 0:
        return torch.zeros(15, dtype=torch.float64)
    adj = torch.as_tensor(nx.to_numpy_array(g, nodelist=list(g.nodes())))
    return orbit_counts(adj).sum(0).double() / n


def graph_features(graphs: Sequence[Any]) -> dict[str, Any]:
    """Per-graph statistics the three MMDs compare (computed once, sliced per set)."""
    return {"degree": [degree_hist(g) for g in graphs], "cluster": [clustering_hist(g) for g in graphs],
            "orbit": torch.stack([mean_orbit_counts(g) for g in graphs]) if graphs else torch.zeros(0, 15)}


def mmds_from_features(ref: dict[str, Any], gen: dict[str, Any]) -> dict[str, float]:
    k = lambda a, b: gaussian_gram(a, b, 30.0)  # noqa: E731
    x, y = ref["orbit"], gen["orbit"]
    return {"degree_mmd": hist_mmd(ref["degree"], gen["degree"], sigma=1.0),
            "cluster_mmd": hist_mmd(ref["cluster"], gen["cluster"], sigma=0.1, scaling=float(CLUSTER_BINS)),
            "orbit_mmd": mmd_from_grams(k(x, x), k(y, y), k(x, y))}


def _subset(feats: dict[str, Any], lo: int, hi: int) -> dict[str, Any]:
    return {k: v[lo:hi] for k, v in feats.items()}


def degree_mmd(ref: Sequence[Any], gen: Sequence[Any]) -> float:
    return hist_mmd([degree_hist(g) for g in ref], [degree_hist(g) for g in gen], sigma=1.0)


def clustering_mmd(ref: Sequence[Any], gen: Sequence[Any]) -> float:
    return hist_mmd([clustering_hist(g) for g in ref], [clustering_hist(g) for g in gen],
                    sigma=0.1, scaling=float(CLUSTER_BINS))


def orbit_mmd(ref: Sequence[Any], gen: Sequence[Any]) -> float:
    x = torch.stack([mean_orbit_counts(g) for g in ref])
    y = torch.stack([mean_orbit_counts(g) for g in gen])
    k = lambda a, b: gaussian_gram(a, b, 30.0)  # noqa: E731
    return mmd_from_grams(k(x, x), k(y, y), k(x, y))


def graph_mmds(ref: Sequence[Any], gen: Sequence[Any]) -> dict[str, float]:
    """The three GDSS generic-graph metrics of ``gen`` as one set (lower is better)."""
    if not ref or not gen:
        raise ValueError("MMD needs at least one reference and one generated graph")
    return mmds_from_features(graph_features(ref), graph_features(gen))


def gdss_protocol_mmds(ref: Sequence[Any], gen: Sequence[Any], set_size: int | None = None) -> dict[str, Any]:
    """The three MMDs as GDSS reports them: generated sets of ``set_size`` (default ``len(ref)``) graphs.

    ``gen`` is cut into ``len(gen) // set_size`` consecutive disjoint sets (the remainder is unused);
    returns the mean over sets (``degree_mmd`` …), their std (``*_std``, 0 for one set), the MMD of
    all of ``gen`` at once (``*_all``), ``n_sets`` and ``set_size``. Fewer generated graphs than
    ``set_size``: one set of all of them (``set_size`` then reports its real size)."""
    if not ref or not gen:
        raise ValueError("MMD needs at least one reference and one generated graph")
    size = set_size or len(ref)
    if size < 1:
        raise ValueError(f"set_size must be >= 1, got {size}")
    size = min(size, len(gen))
    fr, fg = graph_features(ref), graph_features(gen)
    sets = [mmds_from_features(fr, _subset(fg, i * size, (i + 1) * size)) for i in range(len(gen) // size)]
    out: dict[str, Any] = {"n_sets": len(sets), "set_size": size}
    for key in sets[0]:
        vals = torch.tensor([s[key] for s in sets], dtype=torch.float64)
        out[key] = float(vals.mean())
        out[f"{key}_std"] = float(vals.std(unbiased=False))
    out.update({f"{k}_all": v for k, v in mmds_from_features(fr, fg).items()})
    return out


def erdos_renyi_like(ref: Sequence[Any], n: int, generator: torch.Generator) -> list[Any]:
    """Baseline: ``n`` G(n_i, p) graphs with sizes and edge density drawn to match ``ref``."""
    import networkx as nx

    sizes = [g.number_of_nodes() for g in ref]
    pairs = sum(s * (s - 1) / 2 for s in sizes)
    p = sum(g.number_of_edges() for g in ref) / max(pairs, 1.0)
    out = []
    for _ in range(n):
        k = sizes[int(torch.randint(len(sizes), (1,), generator=generator))]
        iu = torch.triu_indices(k, k, 1)
        keep = torch.rand(iu.shape[1], generator=generator) < p
        g = nx.empty_graph(k)
        g.add_edges_from(zip(iu[0][keep].tolist(), iu[1][keep].tolist(), strict=True))
        out.append(g)
    return out


def connectivity_stats(graphs: Sequence[Any]) -> dict[str, float]:
    """Share of connected graphs and mean number of connected components (networkx graphs; an
    empty graph counts as connected with one component). Community-small and ego-small graphs are
    all connected, so a generated set's connected share is a direct check of its global structure
    that the MMDs only see indirectly."""
    import networkx as nx

    if not graphs:
        return {"connected_frac": float("nan"), "mean_components": float("nan")}
    comps = [nx.number_connected_components(g) if g.number_of_nodes() else 1 for g in graphs]
    return {"connected_frac": sum(c == 1 for c in comps) / len(comps), "mean_components": sum(comps) / len(comps)}
