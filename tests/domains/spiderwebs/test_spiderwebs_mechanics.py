import numpy as np
import pytest

from domains.spiderwebs.graph import make_graph
from domains.spiderwebs.mechanics import pull_test, stiffness_matrix

E, R = 1000.0, 0.5
A = np.pi * R**2


def test_single_bar_has_stiffness_EA_over_L_and_mass_rho_A_L():
    g = make_graph([[0, 0, 0], [0, 0, 2.0]], [[0, 1]])
    res = pull_test(g, youngs=E, radius=R, density=1e-3, anchor_fraction=0.4)
    assert res.stiffness == pytest.approx(E * A / 2.0, rel=1e-9)
    assert res.mass == pytest.approx(1e-3 * A * 2.0)


def test_series_and_parallel_bars():
    series = make_graph([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]], [[0, 1], [1, 2]])
    k = pull_test(series, youngs=E, radius=R, anchor_fraction=0.2, eps=1e-9).stiffness
    assert k == pytest.approx(E * A / 2.0, rel=1e-5)
    par = make_graph([[0, 0, 0], [1, 0, 0], [0, 0, 1.0], [1, 0, 1.0]], [[0, 2], [1, 3]])
    assert pull_test(par, youngs=E, radius=R, anchor_fraction=0.3).stiffness == pytest.approx(2 * E * A, rel=1e-9)


def test_stiffness_matrix_is_symmetric_with_rigid_translation_nullspace():
    rng = np.random.default_rng(0)
    g = make_graph(rng.normal(size=(6, 3)), [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 0], [0, 3]])
    k = stiffness_matrix(g, E, A).toarray()
    assert np.allclose(k, k.T)
    assert np.allclose(k @ np.tile([1.0, 0, 0], 6), 0, atol=1e-9)


def test_bad_trusses_are_rejected():
    with pytest.raises(ValueError, match="zero-length"):
        stiffness_matrix(make_graph([[0, 0, 0], [0, 0, 0]], [[0, 1]]), E, A)
    with pytest.raises(ValueError, match="at least two nodes"):
        pull_test(make_graph([[0, 0, 0]], []))
