"""Exact likelihood through the probability-flow ODE, against the closed-form mixture density."""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.likelihood import (
    bits_per_dim,
    divergence_exact,
    divergence_hutchinson,
    log_likelihood,
    make_probe,
)
from core.processes import make_process
from core.seeding import PerSampleGenerator
from core.types import StateDict

F64 = torch.float64
RING = GaussianMixture.ring2d()


def points(n: int = 32, seed: int = 0) -> torch.Tensor:
    return RING.sample(n, torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("name", ["vp", "linear", "ve", "edm"])
def test_exact_divergence_matches_mixture_log_prob(name):
    """The ODE with the exact score transports densities exactly: only solver and prior errors remain."""
    process = make_process(name, t_min=1e-5) if name in ("vp", "linear") else make_process(name)
    x = points()
    res = log_likelihood(RING.denoiser(process), process, x, divergence="exact")
    assert res.logp.shape == (32,) and res.logp.dtype == F64
    err = (res.logp - RING.log_prob(x)).abs().mean()
    assert err < 0.05, f"mean abs error {err:.4f} nats"
    # the density of x_{t_min} itself, to solver accuracy
    t0 = torch.tensor(process.t_min, dtype=F64)
    exact_tmin = RING.log_prob(x, process.alpha(t0), process.sigma(t0))
    assert (res.logp - exact_tmin).abs().mean() < 5e-3
    torch.testing.assert_close(res.logp, res.prior_logp + res.delta_logp)
    assert res.x_prior.shape == x.shape and res.nfe > 10


def test_result_is_the_density_of_the_noised_data():
    """With a large t_min the answer is log p_{t_min}, visibly different from the data density."""
    process = make_process("vp", t_min=0.05)
    x = points(16, seed=1)
    res = log_likelihood(RING.denoiser(process), process, x)
    t0 = torch.tensor(0.05, dtype=F64)
    exact_tmin = RING.log_prob(x, process.alpha(t0), process.sigma(t0))
    assert (res.logp - exact_tmin).abs().mean() < 5e-3
    assert (res.logp - RING.log_prob(x)).abs().mean() > 0.1


def test_divergence_estimators_on_a_linear_map():
    """``v = A x``: the divergence is ``tr A``; Hutchinson gives ``z^T A z``."""
    a = torch.tensor([[2.0, 1.0], [-3.0, 0.5]], dtype=F64)
    x = torch.randn(5, 2, dtype=F64, requires_grad=True)
    v = x @ a.T
    torch.testing.assert_close(divergence_exact(v, x), torch.full((5,), 2.5, dtype=F64))
    z = make_probe(x.detach(), "rademacher", torch.Generator().manual_seed(0))
    torch.testing.assert_close(divergence_hutchinson(v, x, z), ((z @ a.T) * z).sum(1))


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_probes_have_identity_covariance(probe):
    z = make_probe(torch.zeros(20_000, 3, dtype=F64), probe, torch.Generator().manual_seed(1))
    torch.testing.assert_close(z.T @ z / len(z), torch.eye(3, dtype=F64), atol=0.05, rtol=0)
    if probe == "rademacher":
        assert set(z.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("probe", ["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    """Each of 8 points is replicated 48 times with its own probe (one ODE solve): the mean of the
    estimates is within four standard errors of the exact log-likelihood."""
    process = make_process("vp", t_min=1e-5)
    x = points(8, seed=2)
    reps = 48
    xr = x.repeat_interleave(reps, 0)
    gen = PerSampleGenerator.for_samples(7, range(len(xr)), purpose="probe")
    est = log_likelihood(RING.denoiser(process), process, xr, divergence="hutchinson", probe=probe,
                         generator=gen, rtol=1e-4, atol=1e-4).logp.reshape(8, reps)
    exact = log_likelihood(RING.denoiser(process), process, x, divergence="exact").logp
    diff = est.mean(1) - exact
    se = est.std(1) / math.sqrt(reps)
    assert (est.std(1) > 0).all()
    assert (diff.abs() < 4 * se + 0.02).all(), (diff, se)
    assert abs(diff.mean()) < 4 * float(se.pow(2).mean().sqrt()) / math.sqrt(8) + 0.02


def test_hutchinson_probe_is_reproducible():
    process = make_process("vp", t_min=1e-5)
    x = points(4, seed=3)
    runs = [log_likelihood(RING.denoiser(process), process, x, divergence="hutchinson",
                           generator=torch.Generator().manual_seed(5), rtol=1e-4, atol=1e-4).logp for _ in range(2)]
    torch.testing.assert_close(runs[0], runs[1])


def test_bits_per_dim():
    logp = torch.tensor([-2 * math.log(2.0), 0.0], dtype=F64)
    torch.testing.assert_close(bits_per_dim(logp, 2), torch.tensor([1.0, 0.0], dtype=F64))
    # 8-bit data mapped to [-1, 1] (scale 1/128) adds log2(128) = 7 bits per dimension
    torch.testing.assert_close(bits_per_dim(logp, 2, scale=1 / 128), torch.tensor([8.0, 7.0], dtype=F64))


def test_bad_choices_and_dict_states():
    process = make_process("vp")
    x = points(2)
    with pytest.raises(ValueError, match="exact, hutchinson"):
        log_likelihood(RING.denoiser(process), process, x, divergence="skilling")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rademacher, gaussian"):
        log_likelihood(RING.denoiser(process), process, x, divergence="hutchinson", probe="sphere",  # type: ignore[arg-type]
                       generator=torch.Generator())
    with pytest.raises(ValueError, match="explicit generator"):
        log_likelihood(RING.denoiser(process), process, x, divergence="hutchinson")
    with pytest.raises(NotImplementedError, match="dict states"):
        log_likelihood(RING.denoiser(process), process, StateDict({"x": x}))  # type: ignore[arg-type]


class GaussianNet(torch.nn.Module):
    """A float32 module with the exact x0-prediction for ``x0 ~ N(0, v I)``: ``a v x / (a² v + s²)``."""

    def __init__(self, process, v: float):
        super().__init__()
        self.process, self.log_v = process, torch.nn.Parameter(torch.tensor(math.log(v)))

    def forward(self, x, t, cond=None):
        a, s = self.process.alpha(t.double()).float()[:, None], self.process.sigma(t.double()).float()[:, None]
        v = self.log_v.exp()
        return a * v * x / (a * a * v + s * s)


def test_float32_module_denoiser():
    from core.parameterization import Denoiser

    process = make_process("vp", t_min=1e-5)
    den = Denoiser(GaussianNet(process, 0.25), process, prediction="x0")
    x = 0.5 * torch.randn(6, 3, generator=torch.Generator().manual_seed(4))
    res = log_likelihood(den, process, x, rtol=1e-6, atol=1e-6)
    ref = torch.distributions.Normal(0.0, 0.5).log_prob(x.double()).sum(1)
    assert res.logp.dtype == F64
    torch.testing.assert_close(res.logp, ref, rtol=0, atol=2e-3)
