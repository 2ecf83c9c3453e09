"""GDSS kernels and MMDs on hand-computed cases."""

import math

import networkx as nx
import pytest
import torch

from domains.graphs import metrics as gm


def test_gaussian_emd_hand_case():
    a = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)  # mass moved by 2 bins: EMD = 2
    assert math.isclose(float(gm.gaussian_emd_gram(a, b, sigma=1.0)), math.exp(-2.0))
    assert math.isclose(float(gm.gaussian_emd_gram(a, b, sigma=1.0, scaling=2.0)), math.exp(-0.5))


def test_hist_mmd_hand_case():
    # one histogram each, normalised: [1,0] vs [0,1] (EMD 1): MMD = 1 + 1 - 2 e^{-1/2}
    mmd = gm.hist_mmd([torch.tensor([3.0, 0.0])], [torch.tensor([0.0, 5.0])], sigma=1.0)
    assert math.isclose(mmd, 2 - 2 * math.exp(-0.5), rel_tol=1e-12)


def test_mmd_of_identical_sets_is_zero_and_positive_otherwise():
    ref = [nx.cycle_graph(5), nx.path_graph(4), nx.complete_graph(4)]
    for fn in (gm.degree_mmd, gm.clustering_mmd, gm.orbit_mmd):
        assert abs(fn(ref, ref)) < 1e-12
    assert gm.degree_mmd(ref, [nx.star_graph(6)]) > 0.1
    assert gm.clustering_mmd([nx.complete_graph(5)], [nx.cycle_graph(5)]) > 0.5


def test_degree_mmd_hand_value():
    # C4: degree hist [0,0,4] -> [0,0,1]; P3: [0,2,1] -> [0,2/3,1/3]; cdf L1 distance = 2/3
    val = gm.degree_mmd([nx.cycle_graph(4)], [nx.path_graph(3)])
    assert math.isclose(val, 2 - 2 * math.exp(-(2 / 3) ** 2 / 2), rel_tol=1e-9)


def test_clustering_hist_bins():
    h = gm.clustering_hist(nx.complete_graph(3))  # every coefficient is 1.0 -> last bin
    assert h[-1] == 3 and h.sum() == 3
    assert gm.clustering_hist(nx.path_graph(3))[0] == 3


def test_mean_orbit_counts_triangle():
    c = gm.mean_orbit_counts(nx.complete_graph(3))
    assert c[0] == 2 and c[3] == 1 and c[1] == 0 and c[14] == 0


def test_empty_sets_are_an_error():
    with pytest.raises(ValueError, match="at least one"):
        gm.hist_mmd([], [torch.ones(2)], sigma=1.0)


def test_erdos_renyi_baseline_matches_density():
    ref = [nx.gnp_random_graph(12, 0.3, seed=s) for s in range(10)]
    er = gm.erdos_renyi_like(ref, 50, torch.Generator().manual_seed(0))
    dens = sum(g.number_of_edges() for g in er) / sum(66 for _ in er)
    ref_dens = sum(g.number_of_edges() for g in ref) / (66 * 10)
    assert len(er) == 50 and abs(dens - ref_dens) < 0.05


def test_gdss_protocol_scores_disjoint_sets_of_the_test_size():
    ref = [nx.cycle_graph(5), nx.path_graph(4)]
    gen = [nx.complete_graph(4), nx.cycle_graph(5), nx.star_graph(3), nx.path_graph(4), nx.cycle_graph(6)]
    res = gm.gdss_protocol_mmds(ref, gen)  # sets {0,1}, {2,3}; graph 4 unused
    assert res["n_sets"] == 2 and res["set_size"] == 2
    sets = [gm.graph_mmds(ref, gen[0:2]), gm.graph_mmds(ref, gen[2:4])]
    for k in ("degree_mmd", "cluster_mmd", "orbit_mmd"):
        vals = [s[k] for s in sets]
        assert math.isclose(res[k], sum(vals) / 2, rel_tol=1e-12, abs_tol=1e-15)
        assert math.isclose(res[f"{k}_std"], abs(vals[0] - vals[1]) / 2, rel_tol=1e-9, abs_tol=1e-15)
        assert math.isclose(res[f"{k}_all"], gm.graph_mmds(ref, gen)[k], rel_tol=1e-12, abs_tol=1e-15)


def test_gdss_protocol_small_generated_set_and_identity():
    ref = [nx.cycle_graph(5), nx.path_graph(4), nx.complete_graph(4)]
    one = gm.gdss_protocol_mmds(ref, ref[:2])  # fewer than len(ref): one set of both
    assert one["n_sets"] == 1 and one["set_size"] == 2 and one["degree_mmd_std"] == 0.0
    same = gm.gdss_protocol_mmds(ref, ref * 2)  # two copies of the test set: MMD 0 on each
    assert same["n_sets"] == 2 and all(abs(same[k]) < 1e-12 for k in ("degree_mmd", "cluster_mmd", "orbit_mmd"))
    # the set size matters: the same graphs score a lower MMD as one large set (smaller 1/n diagonal)
    gen = [nx.star_graph(k) for k in range(3, 9)]
    small = gm.gdss_protocol_mmds(ref, gen, set_size=2)
    assert small["degree_mmd"] > small["degree_mmd_all"] > 0
    with pytest.raises(ValueError, match="at least one"):
        gm.gdss_protocol_mmds(ref, [])


def test_connectivity_stats():
    two_parts = nx.disjoint_union(nx.complete_graph(3), nx.path_graph(2))
    stats = gm.connectivity_stats([nx.cycle_graph(5), two_parts, nx.empty_graph(0), nx.empty_graph(3)])
    assert stats["connected_frac"] == pytest.approx(2 / 4)  # the cycle and the empty graph
    assert stats["mean_components"] == pytest.approx((1 + 2 + 1 + 3) / 4)
    assert math.isnan(gm.connectivity_stats([])["connected_frac"])
