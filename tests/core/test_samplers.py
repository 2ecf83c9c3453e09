"""Samplers: oracle tests with exact Gaussian-mixture denoisers, and the contract every registered
sampler passes (parametrised over ``SAMPLERS.names()``, so a new sampler is tested for free).

Oracle bounds (N sampler draws, a large exact reference sample, exact mean ``m`` and covariance ``C``):

* mean:        ``|m_hat - m| <= 4 sqrt(tr C / N)``                 (``E|m_hat - m|^2 = tr C / N``)
* covariance:  ``|C_hat - C|_F <= 3 F``, ``F^2 = (E|x - m|^4 - |C|_F^2) / N``  (its RMS for exact draws)
* SW_2:        ``SW(x, ref) <= 2 SW_floor``, the floor being the mean SW of exact N-draws to ``ref``
  (same projections); the floor's draw-to-draw spread is about 30 %.
* within-component variance error (:func:`core.metrics.mixture_moment_errors`) ``|var_err| <= 0.05``.
"""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.analytic_fast import fast_denoiser
from core.metrics import mixture_moment_errors, sliced_wasserstein
from core.processes import make_process
from core.samplers import SAMPLERS, SCHEDULES, make_schedule, sample
from core.seeding import PerSampleGenerator
from core.types import StateDict

F64 = torch.float64
NAMES = SAMPLERS.names()
# steps per sampler for the oracle tests (new samplers get DEFAULT_STEPS)
STEPS = {"ddpm": 200, "ddim": 100, "euler_maruyama": 200, "pc": 100, "ode_euler": 100, "ode_heun": 25,
         "ode_adaptive": 1, "dpmpp_2m": 30, "dpmpp_3m": 30, "dpmpp_2m_sde": 100, "unipc": 30}
DEFAULT_STEPS = 200
# network evaluations for n steps (the last one is the final denoising at t_min)
NFE = {"ddpm": lambda n: n + 1, "ddim": lambda n: n + 1, "euler_maruyama": lambda n: n + 1,
       "pc": lambda n: 2 * n + 1, "ode_euler": lambda n: n + 1, "ode_heun": lambda n: 2 * n + 1,
       "dpmpp_2m": lambda n: n + 1, "dpmpp_3m": lambda n: n + 1, "dpmpp_2m_sde": lambda n: n + 1,
       "unipc": lambda n: n + 1}
# an adaptive solver shares its step sizes across the batch: batch invariance holds to its tolerance
TIGHT = {"ode_adaptive": {"rtol": 1e-10, "atol": 1e-10}}


class Oracle:
    """A mixture with its exact moments, a large reference sample and the two-sample floors."""

    def __init__(self, gmm: GaussianMixture, n: int, seed: int = 0):
        self.gmm, self.n = gmm, n
        self.mean, self.cov = gmm.mean(), gmm.covariance()
        self.ref = gmm.sample(20_000, torch.Generator().manual_seed(seed + 1), dtype=F64)
        z = self.ref - self.mean
        self.cov_floor = math.sqrt(((z * z).sum(1) ** 2).mean() - (self.cov**2).sum()) / math.sqrt(n)
        exact = [gmm.sample(n, torch.Generator().manual_seed(seed + 2 + i), dtype=F64) for i in range(3)]
        self.sw_floor = sum(self.sw(x) for x in exact) / len(exact)

    def sw(self, x: torch.Tensor) -> float:
        return float(sliced_wasserstein(x, self.ref, 128, torch.Generator().manual_seed(7)))

    def check(self, x: torch.Tensor) -> None:
        x = x.to(F64)
        assert torch.isfinite(x).all()
        mean_err = float((x.mean(0) - self.mean).norm())
        cov_err = float((torch.cov(x.T) - self.cov).norm())
        sw = self.sw(x)
        var_err = float(mixture_moment_errors(x, self.gmm.means, self.gmm.variances, self.gmm.weights).var_err)
        msg = f"mean {mean_err:.4f} cov {cov_err:.4f} (floor {self.cov_floor:.4f}) sw {sw:.4f} " \
              f"(floor {self.sw_floor:.4f}) var_err {var_err:+.4f}"
        assert mean_err <= 4 * math.sqrt(float(self.cov.trace()) / self.n), msg
        assert cov_err <= 3 * self.cov_floor, msg
        assert sw <= 2 * self.sw_floor, msg
        assert abs(var_err) <= 0.05, msg


@pytest.fixture(scope="module")
def ring() -> Oracle:
    return Oracle(GaussianMixture.ring2d(), 4000)


@pytest.fixture(scope="module")
def mix64() -> Oracle:
    return Oracle(GaussianMixture.random(k=8, dim=64, seed=3), 2000)


def run_oracle(oracle: Oracle, sampler: str, process_name: str, seed: int = 0) -> None:
    process = make_process(process_name)
    g = torch.Generator().manual_seed(seed)
    x_init = process.prior_sample((oracle.n, oracle.gmm.dim), g, dtype=F64)
    res = sample(fast_denoiser(oracle.gmm, process), process, x_init, sampler=sampler,
                 steps=STEPS.get(sampler, DEFAULT_STEPS), schedule="logsnr", generator=g)
    oracle.check(res.x)


@pytest.mark.parametrize("process_name", ["vp", "edm", "linear"])
@pytest.mark.parametrize("sampler", NAMES)
def test_oracle_ring(ring, sampler, process_name):
    run_oracle(ring, sampler, process_name)


@pytest.mark.parametrize("process_name", ["vp", "ve"])
@pytest.mark.parametrize("sampler", NAMES)
def test_oracle_mixture64(mix64, sampler, process_name):
    run_oracle(mix64, sampler, process_name)


def test_exact_samples_pass_the_oracle(ring, mix64):
    """The bounds are attainable: fresh exact draws pass them."""
    ring.check(ring.gmm.sample(ring.n, torch.Generator().manual_seed(100), dtype=F64))
    mix64.check(mix64.gmm.sample(mix64.n, torch.Generator().manual_seed(100), dtype=F64))
