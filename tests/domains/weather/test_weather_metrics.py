"""Verification scores vs hand computation and maintained implementations (properscoring,
xskillscore, pysteps.verification)."""

from __future__ import annotations

import numpy as np
import pytest

from domains.weather import metrics as M
from domains.weather.verify import score_by_lead


@pytest.fixture
def ens_obs():
    rng = np.random.default_rng(1)
    return rng.gamma(1.0, 2.0, (7, 12, 10)), rng.gamma(1.0, 2.0, (12, 10))


def test_crps_hand_values():
    ens, obs = np.array([[1.0], [3.0]]), np.array([2.0])
    # plain: mean|x-y| - sum|xi-xj| / (2 M^2) = 1 - 4/8 = 0.5 ; fair: 1 - 4/(2*2*1) = 0
    assert M.crps(ens, obs, fair=False) == pytest.approx(0.5)
    assert M.crps(ens, obs, fair=True) == pytest.approx(0.0)
    assert M.crps(np.array([[5.0]]), np.array([2.0])) == pytest.approx(3.0)  # one member: absolute error


def test_crps_matches_properscoring_and_xskillscore(ens_obs):
    import properscoring as ps
    import xarray as xr
    import xskillscore as xs

    ens, obs = ens_obs
    ref = ps.crps_ensemble(obs, np.moveaxis(ens, 0, -1))
    np.testing.assert_allclose(M.crps_pointwise(ens, obs, fair=False), ref, rtol=1e-10)
    xref = xs.crps_ensemble(xr.DataArray(obs, dims=("y", "x")), xr.DataArray(ens, dims=("member", "y", "x")))
    assert M.crps(ens, obs, fair=False) == pytest.approx(float(xref), rel=1e-10)
    # fair = plain + sum|xi-xj| (1/(2M^2) - 1/(2M(M-1)))
    m = ens.shape[0]
    pair = np.abs(ens[:, None] - ens[None]).sum((0, 1))
    np.testing.assert_allclose(M.crps_pointwise(ens, obs), ref + pair * (1 / (2 * m * m) - 1 / (2 * m * (m - 1))))


def test_fair_crps_is_unbiased_across_ensemble_sizes():
    """The fair CRPS of M-member ensembles has the same expectation for every M (here vs M=50)."""
    rng = np.random.default_rng(0)
    obs = rng.normal(size=20000)
    small = M.crps(rng.normal(size=(3, 20000)), obs)
    large = M.crps(rng.normal(size=(50, 20000)), obs)
    assert small == pytest.approx(large, abs=0.01)
    assert M.crps(rng.normal(size=(3, 20000)), obs, fair=False) > large + 0.03  # the plain one is biased up


def test_spread_skill_hand(ens_obs):
    ens, obs = ens_obs
    m = ens.shape[0]
    rmse = np.sqrt(((ens.mean(0) - obs) ** 2).mean())
    spread = np.sqrt(ens.var(0, ddof=1).mean())
    assert M.spread_skill(ens, obs) == pytest.approx(np.sqrt((m + 1) / m) * spread / rmse)
    # a perfectly calibrated Gaussian ensemble has ratio ~1
    rng = np.random.default_rng(3)
    mu = rng.normal(size=40000)
    assert M.spread_skill(mu + rng.normal(size=(10, 40000)), mu + rng.normal(size=40000)) == pytest.approx(1, abs=0.03)


def test_mask_excludes_points():
    ens, obs = np.array([[0.0, 100.0]]), np.array([0.0, 0.0])
    assert M.crps(ens, obs, np.array([True, False])) == 0.0
    assert M.rmse_mean(ens, obs, np.array([True, False])) == 0.0


def test_rank_histogram_matches_pysteps(ens_obs):
    from pysteps.verification.ensscores import rankhist

    ens, obs = ens_obs  # continuous: no ties
    ours = M.rank_histogram(ens, obs)
    theirs = rankhist(ens, obs, normalize=False)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum() == obs.size


def test_csi_matches_pysteps_and_hand():
    from pysteps.verification.detcatscores import det_cat_fct

    rng = np.random.default_rng(2)
    f, o = rng.gamma(1.0, 2.0, (30, 30)), rng.gamma(1.0, 2.0, (30, 30))
    for thr in (1.0, 4.0, 8.0):
        assert M.csi(f, o, thr) == pytest.approx(det_cat_fct(f, o, thr, ["CSI"])["CSI"])
    assert M.csi(np.array([5.0, 5.0, 0.0]), np.array([5.0, 0.0, 5.0]), 1.0) == pytest.approx(1 / 3)
    assert np.isnan(M.csi(np.zeros(3), np.zeros(3), 1.0))


@pytest.mark.parametrize("scale", [1, 3, 8])
def test_fss_matches_pysteps(scale):
    from pysteps.verification.spatialscores import fss

    rng = np.random.default_rng(scale)
    f, o = rng.gamma(1.0, 2.0, (24, 20)), rng.gamma(1.0, 2.0, (24, 20))
    assert M.fss(f, o, 2.0, scale) == pytest.approx(fss(f, o, 2.0, scale))
    assert M.fss(o, o, 2.0, scale) == pytest.approx(1.0)


def test_score_by_lead_shapes_and_errors():
    rng = np.random.default_rng(0)
    f, o = rng.gamma(1, 2, (2, 4, 3, 16, 16)), rng.gamma(1, 2, (2, 3, 16, 16))
    out = score_by_lead(f, o, np.ones_like(o, bool), [1.0], [1, 4], 1.0)
    assert len(out["by_lead"]) == 3 and sum(out["rank_hist"]) > 0
    assert set(out["by_lead"][0]) == {"crps", "rmse", "spread", "spread_skill", "csi_1", "fss_1_1", "fss_1_4"}
    with pytest.raises(ValueError, match="N, M, F, H, W"):
        score_by_lead(f[0], o, np.ones_like(o, bool), [1.0], [1], 1.0)
