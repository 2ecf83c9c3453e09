"""Contract suite for forward processes: every name in ``PROCESSES`` gets every test.

Oracles: autograd and finite differences for the derivatives; closed-form Gaussian moments for
``perturb``; a Monte-Carlo Euler–Maruyama simulation of the forward SDE for the marginals.
"""

from __future__ import annotations

import math

import pytest
import torch

from core.processes import PROCESSES, ForwardProcess, ProcessDict, make_process
from core.registry import UnknownNameError
from core.types import StateDict

NAMES = PROCESSES.names()
F64 = torch.float64
# fractions of [t_min, t_max] away from VPDiscrete's grid points (its log-alpha is piecewise linear)
FRACTIONS = torch.tensor([0.0537, 0.1913, 0.3371, 0.5129, 0.6643, 0.8217, 0.9461], dtype=F64)


def interior_times(p: ForwardProcess) -> torch.Tensor:
    return p.t_min + (p.t_max - p.t_min) * FRACTIONS


@pytest.fixture(params=NAMES)
def process(request) -> ForwardProcess:
    return make_process(request.param)


def test_registry_is_populated():
    assert {"vp", "ve", "subvp", "edm", "linear", "trig", "vp_cosine", "vp_discrete"} <= set(NAMES)


def test_unknown_process_lists_choices():
    with pytest.raises(UnknownNameError) as err:
        make_process("nope")
    for name in NAMES:
        assert name in str(err.value)


def test_time_range(process):
    assert 0.0 <= process.t_min < process.t_max <= 1.0


def test_derivatives_match_autograd(process):
    t = interior_times(process).requires_grad_(True)
    for fn, dfn in [(process.alpha, process.d_alpha), (process.sigma, process.d_sigma)]:
        (grad,) = torch.autograd.grad(fn(t).sum() + 0.0 * t.sum(), t)  # constant alpha has no graph
        torch.testing.assert_close(dfn(t.detach()), grad, rtol=1e-6, atol=1e-9)


def test_derivatives_match_finite_differences(process):
    t, h = interior_times(process), 1e-6
    for fn, dfn in [(process.alpha, process.d_alpha), (process.sigma, process.d_sigma)]:
        fd = (fn(t + h) - fn(t - h)) / (2 * h)
        torch.testing.assert_close(dfn(t), fd, rtol=1e-5, atol=1e-6)


def test_diffusion_matches_marginal_variance(process):
    """``g^2 = d(sigma^2)/dt - 2 f sigma^2`` and ``f = alpha'/alpha`` (finite differences)."""
    t, h = interior_times(process), 1e-6
    d_var = (process.sigma(t + h) ** 2 - process.sigma(t - h) ** 2) / (2 * h)
    f = (torch.log(process.alpha(t + h)) - torch.log(process.alpha(t - h))) / (2 * h)
    torch.testing.assert_close(process.drift_coef(t), f, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(process.diffusion_sq(t), d_var - 2 * f * process.sigma(t) ** 2, rtol=1e-4, atol=1e-5)


def test_log_snr_decreasing(process):
    t = torch.linspace(process.t_min, process.t_max, 513, dtype=F64)
    lam = process.log_snr(t)
    assert torch.isfinite(lam).all()
    assert (lam[1:] < lam[:-1]).all()
    torch.testing.assert_close(lam, 2 * (torch.log(process.alpha(t)) - torch.log(process.sigma(t))))


def test_t_from_log_snr_inverts_log_snr(process):
    t = interior_times(process)
    torch.testing.assert_close(process.t_from_log_snr(process.log_snr(t)), t, rtol=1e-7, atol=1e-7)
    lam = process.log_snr(t)
    torch.testing.assert_close(process.log_snr(process.t_from_log_snr(lam)), lam, rtol=1e-6, atol=1e-6)


def test_perturb_gaussian_moments(process):
    """``x0 ~ N(m, s0^2)`` → ``x_t ~ N(alpha m, alpha^2 s0^2 + sigma^2)``."""
    g = torch.Generator().manual_seed(0)
    n, m, s0 = 200_000, 1.5, 0.7
    for t in interior_times(process)[[0, 3, 6]]:
        x0 = m + s0 * torch.randn(n, generator=g, dtype=F64)
        xt = process.perturb(x0, t.expand(n), torch.randn(n, generator=g, dtype=F64))
        a, s = process.alpha(t), process.sigma(t)
        sd = math.sqrt(a**2 * s0**2 + s**2)
        assert abs(xt.mean() - a * m) < 5 * sd / math.sqrt(n)
        assert abs(xt.var() / sd**2 - 1) < 5 * math.sqrt(2 / n)


def simulate_forward_sde(p: ForwardProcess, x: torch.Tensor, t0: float, t1: float, steps: int,
                         g: torch.Generator) -> torch.Tensor:
    """Euler–Maruyama for ``dx = f x dt + g dW`` from ``t0`` to ``t1`` (coefficients of ``p.sde``,
    tabulated once on the grid; ``test_sde_shapes_and_drift`` ties them to ``sde``)."""
    ts = torch.linspace(t0, t1, steps + 1, dtype=F64)
    dt = (t1 - t0) / steps
    f, g2 = p.drift_coef(ts[:-1]), p.diffusion_sq(ts[:-1])
    for i in range(steps):
        x = x + f[i] * x * dt + math.sqrt(float(g2[i]) * dt) * torch.randn(x.shape, generator=g, dtype=F64)
    return x


def test_marginals_match_sde_simulation(process):
    """From a point ``x`` at ``t0 = t_min`` the SDE transition to ``t1`` is Gaussian with mean
    ``(a1/a0) x`` and variance ``s1^2 - (a1/a0)^2 s0^2`` (= ``sigma(t1)^2`` when ``sigma(t0) = 0``;
    the variance increment ``sigma(t1)^2 - sigma(t0)^2`` for VE/EDM)."""
    g = torch.Generator().manual_seed(1)
    n, t0, t1 = 20_000, process.t_min, 0.5
    x_start = torch.tensor([1.5, -0.5], dtype=F64).expand(n, 2)
    x1 = simulate_forward_sde(process, x_start, t0, t1, 1000, g)
    a0, s0 = process.alpha(torch.tensor(t0, dtype=F64)), process.sigma(torch.tensor(t0, dtype=F64))
    a1, s1 = process.alpha(torch.tensor(t1, dtype=F64)), process.sigma(torch.tensor(t1, dtype=F64))
    mean = (a1 / a0) * x_start[0]
    var = s1**2 - (a1 / a0) ** 2 * s0**2
    sd = float(var.sqrt())
    assert ((x1.mean(0) - mean).abs() < 5 * sd / math.sqrt(n) + 2e-3 * mean.abs()).all()
    assert ((x1.var(0) / var - 1).abs() < 5 * math.sqrt(2 / n) + 5e-3).all()


def test_sde_shapes_and_drift(process):
    x = torch.randn(4, 3, 5, dtype=F64)
    t = torch.full((4,), 0.3, dtype=F64)
    drift, diff = process.sde(x, t)
    assert drift.shape == x.shape and diff.shape == (4, 1, 1)
    torch.testing.assert_close(drift, process.drift_coef(t)[:, None, None] * x)
    torch.testing.assert_close(diff**2, process.diffusion_sq(t)[:, None, None].expand_as(diff))


def test_prior_sample_std(process):
    g = torch.Generator().manual_seed(2)
    x = process.prior_sample((50_000, 4), g, dtype=F64)
    assert x.shape == (50_000, 4) and x.dtype == F64
    assert abs(x.std() / process.prior_std() - 1) < 0.01
    assert abs(x.mean()) < 0.01 * process.prior_std()
    assert math.isclose(process.prior_std(), float(process.sigma(torch.tensor(process.t_max, dtype=F64))))


def test_prior_logp_is_gaussian(process):
    x = torch.randn(5, 3, dtype=F64)
    s = process.prior_std()
    ref = torch.distributions.Normal(0.0, s).log_prob(x).sum(1)
    torch.testing.assert_close(process.prior_logp(x), ref)


def test_known_sdes():
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    vp, ve, subvp = make_process("vp"), make_process("ve"), make_process("subvp")
    beta = 0.1 + t * (20.0 - 0.1)
    torch.testing.assert_close(vp.diffusion_sq(t), beta)
    torch.testing.assert_close(vp.drift_coef(t), -0.5 * beta)
    torch.testing.assert_close(ve.diffusion_sq(t), 2 * ve.sigma(t) ** 2 * math.log(50.0 / 0.01))
    torch.testing.assert_close(subvp.diffusion_sq(t), beta * (1 - torch.exp(-2 * (0.1 * t + 0.5 * t**2 * 19.9))))


# ---- dict states -----------------------------------------------------------------------------
def gdss_process() -> ProcessDict:
    return make_process({"x": {"name": "vp"}, "adj": {"name": "ve"}})  # type: ignore[return-value]


def test_make_process_dict():
    p = gdss_process()
    assert isinstance(p, ProcessDict)
    assert p.t_min == 1e-3 and p.t_max == 1.0
    assert p.config()["x"]["name"] == "VPLinear"


def test_process_dict_perturb_and_sde():
    p = gdss_process()
    b = 3
    x0 = StateDict({"x": torch.randn(b, 5, 2, dtype=F64), "adj": torch.randn(b, 5, 5, dtype=F64)})
    noise = StateDict({k: torch.randn_like(v) for k, v in x0.items()})
    t = torch.full((b,), 0.4, dtype=F64)
    xt = p.perturb(x0, t, noise)
    assert isinstance(xt, StateDict) and {k: v.shape for k, v in xt.items()} == {k: v.shape for k, v in x0.items()}
    for k, sub in p.processes.items():
        torch.testing.assert_close(xt[k], sub.perturb(x0[k], t, noise[k]))
    drift, diff = p.sde(xt, t)
    assert drift["x"].shape == (b, 5, 2) and drift["adj"].shape == (b, 5, 5)
    assert diff["x"].shape == (b, 1, 1) and diff["adj"].shape == (b, 1, 1)
    torch.testing.assert_close(drift["adj"], torch.zeros_like(drift["adj"]))  # VE has no drift
    assert set(p.alpha(t)) == {"x", "adj"} and set(p.log_snr(t)) == {"x", "adj"}


def test_process_dict_prior():
    p = gdss_process()
    g = torch.Generator().manual_seed(3)
    x = p.prior_sample({"x": (20_000, 2), "adj": (20_000, 3)}, g, dtype=F64)
    assert abs(x["x"].std() / p.prior_std()["x"] - 1) < 0.02
    assert abs(x["adj"].std() / p.prior_std()["adj"] - 1) < 0.02
    like = p.prior_like(StateDict({"x": torch.zeros(2, 4), "adj": torch.zeros(2, 4, 4)}), g)
    assert like["x"].shape == (2, 4) and like["adj"].shape == (2, 4, 4) and like["x"].dtype == torch.float32
    lp = p.prior_logp(x)
    torch.testing.assert_close(lp, p.processes["x"].prior_logp(x["x"]) + p.processes["adj"].prior_logp(x["adj"]))
    with pytest.raises(NotImplementedError):
        p.t_from_log_snr(torch.zeros(1))
