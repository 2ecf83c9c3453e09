"""Reverse-diffusion predictor, its Langevin corrector and S4, against exact Gaussian / mixture
denoisers (the registry-wide oracle and contract tests in test_samplers.py cover their defaults)."""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.analytic_fast import fast_denoiser
from core.metrics import mixture_moment_errors
from core.processes import make_process
from core.samplers import make_schedule, sample
from core.samplers.reverse_diffusion import transition

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_transition_coefficients_match_the_processes():
    t, s = torch.tensor([0.6], dtype=F64), torch.tensor([0.5], dtype=F64)
    x = torch.zeros(1, 3, dtype=F64)
    ve = make_process("ve")
    a, g2 = transition(ve, t, s, x)
    assert torch.allclose(a, torch.ones(1, 1, dtype=F64))
    assert torch.allclose(g2, (ve.sigma(t) ** 2 - ve.sigma(s) ** 2).reshape(1, 1))
    vp = make_process("vp")
    a, g2 = transition(vp, t, s, x)
    assert torch.allclose(a * a + g2, torch.ones(1, 1, dtype=F64))  # VP: a² = 1 - beta_i, G² = beta_i
    assert float(a) < 1.0


def test_one_step_is_the_published_update():
    """``x_s = x - (a-1) x + G² score + G z`` with the exact score of a Gaussian, same noise."""
    process = make_process("vp")
    gmm = GaussianMixture(torch.tensor([[0.5, -1.0]], dtype=F64), 0.3)
    den = fast_denoiser(gmm, process)
    x = torch.tensor([[0.2, 0.4], [-1.0, 2.0]], dtype=F64)
    ts = torch.tensor([0.7, 0.6, 1e-3], dtype=F64)
    events = []
    sample(den, process, x, sampler="reverse_diffusion", ts=ts, generator=torch.Generator().manual_seed(0),
           callback=events.append)
    t, s = torch.full((2,), 0.7, dtype=F64), torch.full((2,), 0.6, dtype=F64)
    a_t, s_t = process.alpha(t)[:, None], process.sigma(t)[:, None]
    score = -(x - a_t * torch.tensor([[0.5, -1.0]], dtype=F64)) / (a_t**2 * 0.3 + s_t**2)
    a, g2 = transition(process, t, s, x)
    z = torch.randn(2, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    torch.testing.assert_close(events[0]["x"], x - (a - 1) * x + g2 * score + g2.sqrt() * z)


def _gaussian_check(sampler: str, process_name: str, n: int = 4000, steps: int = 200, **opts) -> None:
    mean, var = torch.tensor([[1.5, -0.5, 0.0]], dtype=F64), torch.tensor([0.25, 1.0, 2.0], dtype=F64)
    gmm = GaussianMixture(mean, var)
    process = make_process(process_name)
    g = torch.Generator().manual_seed(1)
    x = process.prior_sample((n, 3), g, dtype=F64)
    res = sample(fast_denoiser(gmm, process), process, x, sampler=sampler, steps=steps, generator=g, **opts)
    se = (var / n).sqrt()
    assert torch.all((res.x.mean(0) - mean[0]).abs() <= 4 * se), res.x.mean(0)
    assert torch.all((res.x.var(0) / var - 1).abs() <= 4 * math.sqrt(2 / n) + 0.03), res.x.var(0)


@pytest.mark.parametrize("process_name", ["vp", "ve"])
def test_predictor_alone_recovers_a_gaussian(process_name):
    _gaussian_check("reverse_diffusion", process_name)


@pytest.mark.parametrize("rule", ["sigma", "batch"])
def test_predictor_corrector_recovers_a_gaussian(rule):
    _gaussian_check("reverse_diffusion", "vp", snr=0.1, step_rule=rule)


def test_s4_recovers_a_gaussian():
    _gaussian_check("s4", "ve", snr=0.1, scale_eps=1.0)


def test_corrector_with_gdss_settings_on_a_64d_mixture():
    """GDSS's community-small settings (snr 0.05, scale_eps 0.7, batch-averaged norms) stay accurate."""
    gmm = GaussianMixture.random(k=8, dim=64, seed=3)
    process = make_process("vp")
    g = torch.Generator().manual_seed(0)
    x = process.prior_sample((1000, 64), g)
    for sampler in ("reverse_diffusion", "s4"):
        res = sample(fast_denoiser(gmm, process), process, x, sampler=sampler, steps=100, generator=g, snr=0.05,
                     scale_eps=0.7, step_rule="batch")
        err = mixture_moment_errors(res.x, gmm.means, gmm.variances, gmm.weights)
        assert abs(float(err.var_err)) < 0.1, (sampler, float(err.var_err))


@pytest.mark.parametrize(("sampler", "opts", "nfe"), [
    ("reverse_diffusion", {}, lambda n: n + 1),
    ("reverse_diffusion", {"snr": 0.1}, lambda n: 2 * n + 1),
    ("reverse_diffusion", {"snr": 0.1, "corrector_steps": 2}, lambda n: 3 * n + 1),
    ("s4", {}, lambda n: n + 1)])
def test_nfe(sampler, opts, nfe):
    process = make_process("vp")
    gmm = GaussianMixture.random(k=2, dim=4, seed=0)
    x = process.prior_sample((3, 4), torch.Generator().manual_seed(0))
    res = sample(fast_denoiser(gmm, process), process, x, sampler=sampler, steps=7, **opts)
    assert res.nfe == nfe(7)


def test_dict_states_use_per_field_coefficients():
    process = make_process({"x": {"name": "vp"}, "adj": {"name": "ve"}})
    ts = make_schedule("uniform", process, 4)
    x = {"x": torch.zeros(2, 3, dtype=F64), "adj": torch.zeros(2, 3, dtype=F64)}
    a, g2 = transition(process, torch.full((2,), float(ts[0]), dtype=F64), torch.full((2,), float(ts[1]), dtype=F64), x)
    assert torch.all(a["adj"] == 1.0) and torch.all(a["x"] < 1.0)
    assert torch.all(g2["adj"] > g2["x"])


def test_bad_options_are_clear_errors():
    process = make_process("vp")
    den = fast_denoiser(GaussianMixture.random(k=2, dim=4, seed=0), process)
    x = torch.zeros(2, 4)
    with pytest.raises(KeyError, match="sigma, norms, batch"):
        sample(den, process, x, sampler="reverse_diffusion", steps=2, snr=0.1, step_rule="magic")
    with pytest.raises(ValueError, match="snr"):
        sample(den, process, x, sampler="s4", steps=2, snr=-1.0)
