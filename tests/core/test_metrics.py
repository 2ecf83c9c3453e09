"""Two-sample metrics and the fast exact mixture denoiser, on hand-checkable cases."""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.analytic_fast import fast_denoiser
from core.metrics import mixture_moment_errors, mmd_rbf, sliced_wasserstein
from core.processes import make_process

F64 = torch.float64


def test_sliced_wasserstein_identical_and_shifted():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 3, generator=g, dtype=F64)
    assert float(sliced_wasserstein(x, x.clone(), 64, torch.Generator().manual_seed(1))) == 0.0
    # a translation by c: SW_2^2 = E_θ (θ·c)^2 = |c|^2 / D
    c = torch.tensor([3.0, 0.0, 4.0], dtype=F64)
    sw = sliced_wasserstein(x, x + c, 4000, torch.Generator().manual_seed(2))
    assert float(sw) == pytest.approx(5.0 / math.sqrt(3), rel=0.03)


def test_sliced_wasserstein_one_dimensional_and_unequal_sizes():
    """In 1-D SW is W_2: between N(0, 1) and N(0, 4) it is |2 - 1| = 1."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(40_000, 1, generator=g, dtype=F64)
    y = 2.0 * torch.randn(30_000, 1, generator=g, dtype=F64)
    assert float(sliced_wasserstein(x, y, 4, torch.Generator().manual_seed(4))) == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ValueError):
        sliced_wasserstein(x, torch.zeros(5, 2))


def test_sliced_wasserstein_is_seeded():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(300, 4, generator=g), torch.randn(200, 4, generator=g) + 0.3
    a = sliced_wasserstein(x, y, 32, torch.Generator().manual_seed(9))
    b = sliced_wasserstein(x, y, 32, torch.Generator().manual_seed(9))
    assert float(a) == float(b)


def test_mmd_same_and_different_distributions():
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(1500, 2, generator=g, dtype=F64), torch.randn(1500, 2, generator=g, dtype=F64)
    same = float(mmd_rbf(x, y, chunk=256))
    shifted = float(mmd_rbf(x, y + 1.0))
    assert abs(same) < 5e-3 < shifted
    # chunking does not change the value
    assert float(mmd_rbf(x, y + 1.0, chunk=97)) == pytest.approx(shifted, rel=1e-10)


def test_mmd_hand_computed():
    """Two points each side, one kernel of width 1."""
    x = torch.tensor([[0.0], [1.0]], dtype=F64)
    y = torch.tensor([[0.0], [2.0]], dtype=F64)
    k = lambda d2: math.exp(-d2 / 2)  # noqa: E731
    kxx, kyy = k(1.0), k(4.0)
    kxy = (k(0.0) + k(4.0) + k(1.0) + k(1.0)) / 4
    assert float(mmd_rbf(x, y, bandwidths=(1.0,))) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-12)


def test_mixture_moment_errors_vanish_for_exact_samples():
    gmm = GaussianMixture.ring2d(std=0.6)  # strongly overlapping components
    x = gmm.sample(100_000, torch.Generator().manual_seed(7), dtype=F64)
    e = mixture_moment_errors(x, gmm.means, gmm.variances, gmm.weights)
    assert float(e.weight_tv) < 0.01 and float(e.mean_rms) < 0.01 and abs(float(e.var_err)) < 0.01
    wide = mixture_moment_errors(x * 1.05, gmm.means, gmm.variances, gmm.weights)
    assert float(wide.var_err) > 0.05


@pytest.mark.parametrize("name", ["vp", "ve", "linear"])
def test_fast_denoiser_equals_exact_denoiser(name):
    gmm = GaussianMixture.random(k=5, dim=7, seed=1)
    process = make_process(name)
    slow, fast = gmm.denoiser(process), fast_denoiser(gmm, process)
    g = torch.Generator().manual_seed(8)
    for t in (0.01, 0.3, 0.9):
        x = process.perturb(gmm.sample(64, g, dtype=F64), torch.full((64,), t, dtype=F64),
                            torch.randn(64, 7, generator=g, dtype=F64))
        torch.testing.assert_close(fast(x, torch.tensor(t)), slow(x, torch.tensor(t)), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(fast(x.reshape(64, 7, 1).float(), torch.full((64,), t)),
                                   slow(x.reshape(64, 7, 1).float(), torch.full((64,), t)), rtol=1e-5, atol=1e-5)
    mixed = torch.linspace(0.1, 0.9, 64, dtype=F64)  # per-sample times take the general path
    x = torch.randn(64, 7, generator=g, dtype=F64)
    torch.testing.assert_close(fast(x, mixed), slow(x, mixed))
