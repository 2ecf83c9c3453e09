"""Samplers: oracle tests with exact Gaussian-mixture denoisers, and the contract every registered
sampler passes (parametrised over ``SAMPLERS.names()``, so a new sampler is tested for free).

Oracle bounds (N sampler draws, a large exact reference sample, exact mean ``m`` and covariance ``C``):

* mean:        ``|m_hat - m| <= 4 sqrt(tr C / N)``                 (``E|m_hat - m|^2 = tr C / N``)
* covariance:  ``|C_hat - C|_F <= 3 F``, ``F^2 = (E|x - m|^4 - |C|_F^2) / N``  (its RMS for exact draws)
* SW_2:        ``SW(x, ref) <= 2 SW_floor``, the floor being the mean SW of exact N-draws to ``ref``
  (same projections); the floor's draw-to-draw spread is about 30 %.
* within-component variance error (:func:`core.metrics.mixture_moment_errors`):
  ``|var_err| <= 0.03 + 4 sqrt(2 / (N D))`` (3 % systematic on top of four standard errors).
"""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.analytic_fast import fast_denoiser
from core.metrics import (
    mixture_moment_errors,
    random_directions,
    sliced_wasserstein_sorted,
    sorted_projections,
)
from core.processes import make_process
from core.samplers import SAMPLERS, make_schedule, sample
from core.seeding import PerSampleGenerator
from core.types import StateDict

F64 = torch.float64
NAMES = SAMPLERS.names()
# steps per sampler for the oracle tests (new samplers get DEFAULT_STEPS)
# (first-order Euler in t is slow on VE/EDM, where t is log sigma / the Karras ramp: hence 600)
STEPS = {"ddpm": 400, "ddim": 200, "euler_maruyama": 400, "pc": 200, "ode_euler": 600, "ode_heun": 100,
         "ode_adaptive": 1, "dpmpp_2m": 50, "dpmpp_3m": 50, "dpmpp_2m_sde": 100, "unipc": 50}
DEFAULT_STEPS = 400
# network evaluations for n steps (the last one is the final denoising at t_min)
NFE = {"ddpm": lambda n: n + 1, "ddim": lambda n: n + 1, "euler_maruyama": lambda n: n + 1,
       "pc": lambda n: 2 * n + 1, "ode_euler": lambda n: n + 1, "ode_heun": lambda n: 2 * n + 1,
       "dpmpp_2m": lambda n: n + 1, "dpmpp_3m": lambda n: n + 1, "dpmpp_2m_sde": lambda n: n + 1,
       "unipc": lambda n: n + 1}
# an adaptive solver shares its step sizes across the batch: batch invariance holds to its tolerance
TIGHT = {"ode_adaptive": {"rtol": 1e-10, "atol": 1e-10}}


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Thousands of small-tensor steps: one intra-op thread avoids OpenMP overhead and contention."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Oracle:
    """A mixture with its exact moments, a large reference sample and the two-sample floors."""

    def __init__(self, gmm: GaussianMixture, n: int, dtype: torch.dtype = F64, seed: int = 0):
        self.gmm, self.n, self.dtype = gmm, n, dtype
        self.mean, self.cov = gmm.mean(), gmm.covariance()
        ref = gmm.sample(20_000, torch.Generator().manual_seed(seed + 1), dtype=F64)
        self.theta = random_directions(gmm.dim, 128, torch.Generator().manual_seed(7))
        self.ref_sorted = sorted_projections(ref, self.theta)  # sorted once
        z = ref - self.mean
        self.cov_floor = math.sqrt(((z * z).sum(1) ** 2).mean() - (self.cov**2).sum()) / math.sqrt(n)
        exact = [gmm.sample(n, torch.Generator().manual_seed(seed + 2 + i), dtype=F64) for i in range(3)]
        self.sw_floor = sum(self.sw(x) for x in exact) / len(exact)

    def sw(self, x: torch.Tensor) -> float:
        return float(sliced_wasserstein_sorted(sorted_projections(x, self.theta), self.ref_sorted))

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
        assert abs(var_err) <= 0.03 + 4 * math.sqrt(2 / (self.n * self.gmm.dim)), msg


@pytest.fixture(scope="module")
def ring() -> Oracle:
    return Oracle(GaussianMixture.ring2d(), 2000)


@pytest.fixture(scope="module")
def mix64() -> Oracle:
    return Oracle(GaussianMixture.random(k=8, dim=64, seed=3), 2000, dtype=torch.float32)


def run_oracle(oracle: Oracle, sampler: str, process_name: str, seed: int = 0) -> None:
    process = make_process(process_name)
    g = torch.Generator().manual_seed(seed)
    x_init = process.prior_sample((oracle.n, oracle.gmm.dim), g, dtype=oracle.dtype)
    res = sample(fast_denoiser(oracle.gmm, process), process, x_init, sampler=sampler,
                 steps=STEPS.get(sampler, DEFAULT_STEPS), schedule="logsnr", generator=g)
    oracle.check(res.x)


@pytest.mark.parametrize("process_name", ["vp", "ve", "edm"])
@pytest.mark.parametrize("sampler", NAMES)
def test_oracle_ring(ring, sampler, process_name):
    run_oracle(ring, sampler, process_name)


@pytest.mark.parametrize("process_name", ["vp", "linear"])
@pytest.mark.parametrize("sampler", NAMES)
def test_oracle_mixture64(mix64, sampler, process_name):
    run_oracle(mix64, sampler, process_name)


def test_exact_samples_pass_the_oracle(ring, mix64):
    """The bounds are attainable: fresh exact draws pass them."""
    ring.check(ring.gmm.sample(ring.n, torch.Generator().manual_seed(100), dtype=F64))
    mix64.check(mix64.gmm.sample(mix64.n, torch.Generator().manual_seed(100), dtype=F64))


# ---- DPM-Solver++(2M) against Euler–Maruyama -------------------------------------------------
@pytest.fixture(scope="module")
def efficiency() -> dict[str, float]:
    """Within-component variance error (:func:`mixture_moment_errors`) of DPM-Solver++(2M) and
    Euler–Maruyama on the 64-D mixture (VP, float32, N = 4000; noise floor ``sqrt(2/(N D)) = 0.0028``).

    This statistic resolves systematic errors that a sliced Wasserstein distance of the same
    sample cannot (SW at N = 8000 does not tell EM at 50 NFE from EM at 500). What it shows: with the
    exact score, DPM-Solver++(2M) at 20 NFE over-disperses each component by ~2-3 % in variance
    (second-order truncation error, ~h^2 with h ≈ 0.5 in half-log-SNR; it is +2.9 % even for N(0, 1)
    data, whose probability-flow ODE is the identity), while EM at 500 NFE is within ~0.3 %. So the
    tested claims are: 2M at 20 NFE beats EM at 50 NFE, 2M at 100 NFE matches EM at 500; the
    stronger "2M at 20 NFE matches EM at 500" is recorded as a strict xfail."""
    gmm = GaussianMixture.random(k=8, dim=64, seed=3)
    process = make_process("vp")
    den = fast_denoiser(gmm, process)
    out = {}
    for key, sampler, steps, schedule in [("dpm20", "dpmpp_2m", 19, "logsnr"), ("dpm100", "dpmpp_2m", 99, "logsnr"),
                                          ("em50", "euler_maruyama", 49, "uniform"),
                                          ("em500", "euler_maruyama", 499, "uniform")]:
        g = torch.Generator().manual_seed(11)
        x_init = process.prior_sample((4000, 64), g, dtype=torch.float32)
        res = sample(den, process, x_init, sampler=sampler, steps=steps, schedule=schedule, generator=g)
        assert res.nfe == steps + 1
        out[key] = float(mixture_moment_errors(res.x, gmm.means, gmm.variances, gmm.weights).var_err)
    out["se"] = math.sqrt(2 / (4000 * 64))
    return out


def test_dpmpp_2m_at_20_nfe_beats_euler_maruyama_at_50(efficiency):
    e = efficiency
    assert abs(e["dpm20"]) + 3 * math.sqrt(2) * e["se"] < abs(e["em50"]), e


def test_dpmpp_2m_at_100_nfe_matches_euler_maruyama_at_500(efficiency):
    e = efficiency
    assert abs(e["dpm100"]) <= abs(e["em500"]) + 2 * math.sqrt(2) * e["se"], e


@pytest.mark.xfail(strict=True, reason="measured: DPM-Solver++(2M) at 20 NFE has a +3% within-component "
                   "variance error (truncation), Euler–Maruyama at 500 NFE +0.2%; see bench/results/samplers.md")
def test_dpmpp_2m_at_20_nfe_matches_euler_maruyama_at_500(efficiency):
    e = efficiency
    assert abs(e["dpm20"]) <= abs(e["em500"]) + 2 * math.sqrt(2) * e["se"], e


# ---- ODE solvers against the exact flow map of Gaussian data ---------------------------------
ORDER = {"ddim": 1, "ode_euler": 1, "ode_heun": 2, "dpmpp_2m": 2, "dpmpp_3m": 2, "unipc": 2}


def gaussian_flow_map(process, mu, v, x_T, t0: float, t1: float):
    """For ``x0 ~ N(mu, diag v)`` the probability-flow ODE maps quantiles to quantiles:
    ``x_t0 = a0 mu + sqrt(a0² v + s0²) / sqrt(a1² v + s1²) (x_t1 - a1 mu)``; then ``E[x0 | x_t0]``."""
    a0, s0 = process.alpha(torch.tensor(t0, dtype=F64)), process.sigma(torch.tensor(t0, dtype=F64))
    a1, s1 = process.alpha(torch.tensor(t1, dtype=F64)), process.sigma(torch.tensor(t1, dtype=F64))
    x = a0 * mu + torch.sqrt(a0**2 * v + s0**2) / torch.sqrt(a1**2 * v + s1**2) * (x_T - a1 * mu)
    return mu + a0 * v / (a0**2 * v + s0**2) * (x - a0 * mu)


@pytest.mark.parametrize("sampler", NAMES)
def test_ode_solvers_converge_at_their_order(sampler):
    process = make_process("vp")
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(1, 16, generator=g, dtype=F64)
    v = (0.3 * (0.5 + torch.rand(1, 16, generator=g, dtype=F64))) ** 2
    den = fast_denoiser(GaussianMixture(mu, v), process)
    x_T = process.prior_sample((64, 16), g, dtype=F64)
    exact = gaussian_flow_map(process, mu, v, x_T, process.t_min, process.t_max)
    runs = [sample(den, process, x_T, sampler=sampler, steps=n, generator=torch.Generator().manual_seed(1)).x
            for n in (40, 80)]
    again = sample(den, process, x_T, sampler=sampler, steps=40, generator=torch.Generator().manual_seed(2)).x
    if not torch.equal(runs[0], again):
        pytest.skip(f"{sampler} is stochastic")
    err = [float((x - exact).norm(dim=1).mean() / exact.norm(dim=1).mean()) for x in runs]
    if sampler == "ode_adaptive":  # steps do not matter; the tolerance does
        assert err[0] < 1e-3
        return
    assert err[1] < err[0] / (0.8 * 2 ** ORDER.get(sampler, 0.25)), err


def test_dpmpp_2m_is_the_published_algorithm():
    """DPM-Solver++(2M), Lu et al. 2022b Algorithm 2 / k-diffusion ``sample_dpmpp_2m``, written out in
    σ for the EDM process (alpha = 1, λ = -log σ)."""
    process = make_process("edm")
    gmm = GaussianMixture.random(k=3, dim=4, seed=2)
    den = fast_denoiser(gmm, process)
    g = torch.Generator().manual_seed(0)
    x = process.prior_sample((16, 4), g, dtype=F64)
    ts = make_schedule("karras", process, 12)
    sigmas = process.sigma(ts)
    ref, old = x.clone(), None
    for i in range(len(sigmas) - 1):
        denoised = den(ref, ts[i])
        h = float(torch.log(sigmas[i] / sigmas[i + 1]))
        d = denoised
        if old is not None:
            r = float(torch.log(sigmas[i - 1] / sigmas[i])) / h
            d = (1 + 1 / (2 * r)) * denoised - 1 / (2 * r) * old
        ref = (sigmas[i + 1] / sigmas[i]) * ref - math.expm1(-h) * d
        old = denoised
    ref = den(ref, ts[-1])
    torch.testing.assert_close(sample(den, process, x, sampler="dpmpp_2m", ts=ts).x, ref, rtol=1e-10, atol=1e-10)


def test_pc_step_rules():
    """``step_rule="norms"`` (realised per-sample norms, as score SDE / GDSS for large states) stays
    usable on a 64-D mixture; an unknown rule lists the valid ones. (The default ``"sigma"`` rule is
    what the oracle tests above run; ``"norms"`` diverges on the 2-D ring.)"""
    gmm = GaussianMixture.random(k=8, dim=64, seed=3)
    process = make_process("vp")
    g = torch.Generator().manual_seed(0)
    x_init = process.prior_sample((1000, 64), g)
    res = sample(fast_denoiser(gmm, process), process, x_init, sampler="pc", steps=100, generator=g,
                 step_rule="norms")
    assert abs(float(mixture_moment_errors(res.x, gmm.means, gmm.variances, gmm.weights).var_err)) < 0.15
    with pytest.raises(KeyError, match="sigma, norms"):
        sample(fast_denoiser(gmm, process), process, x_init[:2], sampler="pc", steps=2, step_rule="batch")


# ---- the contract every sampler passes -------------------------------------------------------
SMALL = GaussianMixture.random(k=3, dim=12, seed=5)  # states [B, 3, 4]
CONTRACT_STEPS = 6


def draw(sampler: str, process, x_init, generator=None, steps: int = CONTRACT_STEPS, gmm=SMALL,
         tight: bool = False, **kw):
    den = fast_denoiser(gmm, process)
    opts = TIGHT.get(sampler, {}) if tight else {}
    return sample(den, process, x_init, sampler=sampler, steps=steps, generator=generator, **{**opts, **kw})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("sampler", NAMES)
def test_shape_and_dtype_kept(sampler, dtype):
    process = make_process("vp")
    g = torch.Generator().manual_seed(0)
    x_init = process.prior_sample((5, 3, 4), g, dtype=dtype)
    x = draw(sampler, process, x_init, g).x
    assert x.shape == (5, 3, 4) and x.dtype == dtype and torch.isfinite(x).all()


@pytest.mark.parametrize("sampler", NAMES)
def test_deterministic_under_fixed_generator(sampler):
    process = make_process("ve")
    runs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(42)
        runs.append(draw(sampler, process, process.prior_sample((4, 3, 4), g), g).x)
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("sampler", NAMES)
def test_batch_size_invariance(sampler):
    """With per-sample generators (prior noise included), sample k does not depend on the batch."""
    process = make_process("vp")
    out = {}
    for b in (3, 8):
        gen = PerSampleGenerator.for_samples(2024, range(b))
        x_init = process.prior_like(torch.zeros(b, 3, 4), gen)
        out[b] = draw(sampler, process, x_init, gen, tight=True).x
    torch.testing.assert_close(out[3], out[8][:3], rtol=1e-5, atol=1e-5)


def dict_setup():
    process = make_process({"x": {"name": "vp"}, "adj": {"name": "ve"}})
    mixtures = {"x": GaussianMixture.random(k=2, dim=6, seed=1), "adj": GaussianMixture.random(k=2, dim=9, seed=2)}
    dens = {k: fast_denoiser(m, process.processes[k]) for k, m in mixtures.items()}

    def denoiser(x, t, cond=None):
        return StateDict({k: dens[k](x[k], t) for k in x})

    return process, denoiser


@pytest.mark.parametrize("sampler", NAMES)
def test_dict_states_with_process_dict(sampler):
    process, denoiser = dict_setup()
    g = torch.Generator().manual_seed(3)
    x_init = process.prior_like(StateDict({"x": torch.zeros(4, 3, 2), "adj": torch.zeros(4, 3, 3)}), g)
    res = sample(denoiser, process, x_init, sampler=sampler, steps=CONTRACT_STEPS, schedule="uniform", generator=g)
    assert isinstance(res.x, StateDict) and set(res.x) == {"x", "adj"}
    assert res.x["x"].shape == (4, 3, 2) and res.x["adj"].shape == (4, 3, 3)
    assert all(torch.isfinite(v).all() for v in res.x.values())


@pytest.mark.parametrize("sampler", NAMES)
def test_dict_fields_match_single_field_runs(sampler):
    """Deterministic samplers treat fields independently: each field equals a run of its own process
    on the same time grid (a check that per-field coefficients reach every step)."""
    process, denoiser = dict_setup()
    g = torch.Generator().manual_seed(4)
    x_init = process.prior_like(StateDict({"x": torch.zeros(4, 6, dtype=F64), "adj": torch.zeros(4, 9, dtype=F64)}), g)
    ts = make_schedule("uniform", process, CONTRACT_STEPS)
    opts = TIGHT.get(sampler, {})
    runs = [sample(denoiser, process, x_init, sampler=sampler, ts=ts, generator=torch.Generator().manual_seed(s),
                   **opts).x for s in (0, 1)]
    if not torch.equal(runs[0]["x"], runs[1]["x"]):
        pytest.skip(f"{sampler} is stochastic")
    for k, sub in process.processes.items():
        den = fast_denoiser(GaussianMixture.random(k=2, dim=6 if k == "x" else 9, seed=1 if k == "x" else 2), sub)
        single = sample(den, sub, x_init[k], sampler=sampler, ts=ts, **opts).x
        torch.testing.assert_close(runs[0][k], single, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 2, 10])
@pytest.mark.parametrize("sampler", NAMES)
def test_nfe_counted(sampler, steps):
    process = make_process("vp")
    calls, events = [0], []
    den = fast_denoiser(SMALL, process)

    def counted(x, t, cond=None):
        calls[0] += 1
        return den(x, t, cond)

    g = torch.Generator().manual_seed(0)
    res = sample(counted, process, process.prior_sample((3, 3, 4), g), sampler=sampler, steps=steps, generator=g,
                 callback=events.append)
    assert res.nfe == calls[0] > 0
    assert len(res.ts) == steps + 1
    assert events and {"i", "t", "x", "x0_hat"} <= set(events[0])
    if sampler in NFE:
        assert res.nfe == NFE[sampler](steps)
        assert [e["i"] for e in events] == list(range(steps))


def test_dpmpp_2m_nfe_example():
    process = make_process("vp")
    g = torch.Generator().manual_seed(0)
    assert draw("dpmpp_2m", process, process.prior_sample((2, 3, 4), g), steps=10).nfe == 11


def test_unknown_sampler_lists_choices():
    process = make_process("vp")
    with pytest.raises(KeyError) as err:
        draw("euler_heun_magic", process, torch.zeros(2, 3, 4))
    for name in NAMES:
        assert name in str(err.value)
