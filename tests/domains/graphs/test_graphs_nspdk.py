"""NSPDK on hand-computed small graphs (values derived in the comments)."""

import math

import pytest

from domains.graphs.nspdk import graph_features, nspdk_mmd, smiles_graphs


def _k(g1, g2):
    f1, f2 = graph_features(*g1), graph_features(*g2)
    return sum(v * f2.get(k, 0.0) for k, v in f1.items())


C = (["C"], [])
N = (["N"], [])
CC = (["C", "C"], [(0, 1, 1)])
C_DOUBLE_C = (["C", "C"], [(0, 1, 2)])


def test_single_atom_vector():
    # one block (ρ=0, δ=0) with the pair and context features, each 1/√2
    f = graph_features(*C)
    assert len(f) == 2 and all(math.isclose(v, 1 / math.sqrt(2)) for v in f.values())


def test_two_atoms_vector():
    # blocks (ρ, δ) ∈ {0,1}²; each holds 2 features of count 2 → 1/√2, then /2 over 4 blocks
    f = graph_features(*CC)
    assert len(f) == 8 and all(math.isclose(v, 1 / (2 * math.sqrt(2))) for v in f.values())


def test_hand_computed_kernel_values():
    assert math.isclose(_k(CC, CC), 1.0)
    assert _k(C, N) == 0.0  # different labels
    assert _k(C, CC) == 0.0  # same label, different degree: no shared code
    # C-C vs C=C share the radius-0 blocks (δ = 0 and 1): 2 blocks × 2 features × (1/(2√2))² = 1/2
    assert math.isclose(_k(CC, C_DOUBLE_C), 0.5)


def test_kernel_is_invariant_to_node_order():
    path = (["C", "N", "O"], [(0, 1, 1), (1, 2, 2)])
    perm = (["O", "C", "N"], [(1, 2, 1), (2, 0, 2)])
    assert math.isclose(_k(path, perm), 1.0)


def test_mmd_hand_computed_and_zero_for_identical_sets():
    # MMD²({C},{N}) = 1 + 1 - 2·0
    assert math.isclose(nspdk_mmd([C], [N]), 2.0)
    assert abs(nspdk_mmd([CC, C], [C, CC])) < 1e-12
    # {CC} vs {C=C}: 1 + 1 - 2·0.5
    assert math.isclose(nspdk_mmd([CC], [C_DOUBLE_C]), 1.0)


def test_radius_and_distance_limits():
    # a path of 6 carbons: with r = d = 0 only the (0, 0) block exists
    chain = (["C"] * 6, [(i, i + 1, 1) for i in range(5)])
    assert {k[0] for k in graph_features(*chain, r=0, d=0)} == {(0, 0)}
    assert (4, 1) in {k[0] for k in graph_features(*chain)}  # an end atom reaches expanded distance 8
    # a path of 4: the end atoms reach expanded distance 6 (radius 3 exists, between them δ = 3), none 8
    blocks = {k[0] for k in graph_features(["C"] * 4, [(0, 1, 1), (1, 2, 1), (2, 3, 1)])}
    assert (3, 3) in blocks and (3, 0) in blocks and not any(rho == 4 for rho, _ in blocks)
    assert not any(delta == 4 for _, delta in blocks)


def test_molecules_and_bad_input():
    g = smiles_graphs(["c1ccccc1", "CCO", "not a smiles"])
    assert len(g) == 2 and g[0][1][0][2] == 1  # aromatic bonds label int(1.5) = 1, as GDSS
    with pytest.raises(ValueError, match="empty graph"):
        graph_features([], [])
    with pytest.raises(ValueError, match="outside"):
        graph_features(["C"], [(0, 3, 1)])
