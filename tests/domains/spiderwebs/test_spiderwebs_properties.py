import numpy as np
import pytest
import torch

from domains.spiderwebs.graph import make_graph
from domains.spiderwebs.metrics import (
    closest_candidate,
    conditioning_accuracy,
    distribution_mmd,
    histogram_mmd,
    r2_score,
)
from domains.spiderwebs.properties import PROPERTY_NAMES, Normaliser, design_vector, range_warning


def test_design_vector_by_hand():
    # path 0-1-2: edges (0,1) and (1,2); x_i - x_j for i<j: (0-3, 0-0, 0-0) and (3-3, 0-4, 0-0)
    g = make_graph([[0, 0, 0], [3, 0, 0], [3, 4, 0]], [[1, 0], [1, 2]])
    y = design_vector(g)
    assert np.allclose(y, [3.5, -1.5, -2.0, 0.0, 3, 2, 2 / 3])
    assert len(PROPERTY_NAMES) == 7


def test_normaliser_roundtrip_and_range_warning():
    y = torch.tensor([[1.0, 0, 0, 0, 10, 12, 1.2], [3.0, 1, -1, 2, 60, 100, 1.7]])
    norm = Normaliser.fit(y)
    z = norm.encode(y)
    assert torch.allclose(z.abs().max(0).values, torch.ones(7))
    assert torch.allclose(norm.decode(z).float(), y)
    assert range_warning(norm, y) is None
    bad = y.clone()
    bad[0, 4] = 80
    msg = range_warning(norm, bad)
    assert "n_nodes" in msg and "trained range 10..60" in msg and "requested" in msg
    with pytest.raises(ValueError, match="design vectors"):
        Normaliser.fit(torch.zeros(0, 7))


def test_r2_and_conditioning_accuracy():
    r = np.array([1.0, 2.0, 3.0])
    assert r2_score(r, r) == 1.0
    assert r2_score(r, np.full(3, 2.0)) == pytest.approx(0.0)
    req = np.tile(np.arange(1.0, 8.0), (4, 1)) * np.arange(1, 5)[:, None]
    acc = conditioning_accuracy(req, req * 1.1, req.min(0), req.max(0))
    assert acc["n_nodes"]["mre"] == pytest.approx(0.1)
    assert acc["avg_degree"]["r2"] < 1.0


def test_mmd_is_zero_for_identical_sets_and_positive_otherwise():
    a = [np.array([0.5, 0.5]), np.array([1.0, 0.0])]
    assert histogram_mmd(a, a) == pytest.approx(0.0, abs=1e-12)
    assert histogram_mmd(a, [np.array([0.0, 1.0])] * 2) > 0.05
    g = make_graph([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1], [1, 2]])
    h = make_graph([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]], [[0, 1], [0, 2], [0, 3]])
    m = distribution_mmd([g, g], [g, g])
    assert m["mmd_degree"] == pytest.approx(0.0, abs=1e-12)
    assert distribution_mmd([h, h], [g, g])["mmd_degree"] > 0


def test_closest_candidate_weighs_quantities_by_scale():
    req = np.array([[5.0, 0, 0, 0, 40, 60, 1.5], [5.0, 0, 0, 0, 40, 60, 1.5]])
    a = req.copy()
    a[:, 5] = 64  # off by 4 edges (one std) ...
    b = req.copy()
    b[:, 6] = 1.3  # ... or by 0.2 in degree (two std)
    b[1, 6] = 1.55  # (half a std: better than a)
    scale = np.array([1.0, 1, 1, 1, 10, 4, 0.1])
    assert closest_candidate(req, np.stack([a, b]), scale).tolist() == [0, 1]
    # the signed means are not selected on; ties go to the first draw
    c = req.copy()
    c[:, 1] = 100.0
    assert closest_candidate(req, np.stack([a, c, req]), scale).tolist() == [1, 1]
