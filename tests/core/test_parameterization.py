"""Conversions between network outputs and ``x0_hat``; the Denoiser wrapper; EDM preconditioning."""

from __future__ import annotations

import pytest
import torch

from core.parameterization import (
    PARAMETERIZATIONS,
    PREDICTIONS,
    Denoiser,
    edm_coefficients,
    edm_loss_weight,
    from_x0,
    target,
    to_x0,
)
from core.processes import make_process
from core.registry import UnknownNameError
from core.tensor_utils import bcast
from core.types import StateDict

F64 = torch.float64
PROCESS_NAMES = ["vp", "ve", "subvp", "edm", "linear", "trig", "vp_cosine"]
FRACTIONS = [0.02, 0.3, 0.7, 0.98]


def coefs(process, t, x):
    return (bcast(process.alpha(t), x), bcast(process.sigma(t), x),
            bcast(process.d_alpha(t), x), bcast(process.d_sigma(t), x))


def case(name: str, frac: float, b: int = 4, dict_state: bool = False, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    if dict_state:
        process = make_process({"x": {"name": name}, "adj": {"name": "ve"}})
        x0 = StateDict({"x": torch.randn(b, 3, 2, generator=g, dtype=F64),
                        "adj": torch.randn(b, 3, 3, generator=g, dtype=F64)})
        eps = StateDict({k: torch.randn(v.shape, generator=g, dtype=F64) for k, v in x0.items()})
    else:
        process = make_process(name)
        x0 = torch.randn(b, 5, generator=g, dtype=F64)
        eps = torch.randn(b, 5, generator=g, dtype=F64)
    t = torch.full((b,), process.t_min + frac * (process.t_max - process.t_min), dtype=F64)
    return process, x0, eps, t


def assert_state_close(a, b, **kw):
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            torch.testing.assert_close(a[k], b[k], **kw)
    else:
        torch.testing.assert_close(a, b, **kw)


@pytest.mark.parametrize("pred", PREDICTIONS)
@pytest.mark.parametrize("name", PROCESS_NAMES)
@pytest.mark.parametrize("dict_state", [False, True], ids=["tensor", "dict"])
def test_round_trip(pred, name, dict_state):
    for frac in FRACTIONS:
        process, x0, eps, t = case(name, frac, dict_state=dict_state)
        x = process.perturb(x0, t, eps)
        c = coefs(process, t, x)
        out = from_x0(pred, x0, x, *c)
        assert_state_close(to_x0(pred, out, x, *c), x0, rtol=1e-6, atol=1e-6)
        assert_state_close(target(pred, x0, eps, *c), out, rtol=1e-6, atol=1e-6)


def test_targets_are_the_textbook_ones():
    process, x0, eps, t = case("vp", 0.4)
    a, s, da, ds = coefs(process, t, x0)
    x = a * x0 + s * eps
    torch.testing.assert_close(target("eps", x0, eps, a, s, da, ds), eps)
    torch.testing.assert_close(target("v", x0, eps, a, s, da, ds), a * eps - s * x0)
    torch.testing.assert_close(target("score", x0, eps, a, s, da, ds), -eps / s)
    # the velocity target is d x_t / dt along the noising path
    h = 1e-6
    tp, tm = t + h, t - h
    dx = (bcast(process.alpha(tp), x0) * x0 + bcast(process.sigma(tp), x0) * eps
          - bcast(process.alpha(tm), x0) * x0 - bcast(process.sigma(tm), x0) * eps) / (2 * h)
    torch.testing.assert_close(target("velocity", x0, eps, a, s, da, ds), dx, rtol=1e-5, atol=1e-5)
    assert x.shape == x0.shape


class OracleNet(torch.nn.Module):
    """Outputs the exact regression target of ``pred`` for known clean data ``x0``."""

    def __init__(self, process, pred: str, x0):
        super().__init__()
        self.process, self.pred, self.x0 = process, pred, x0

    def forward(self, x, t, cond=None):
        t = t.to(F64)
        return from_x0(self.pred, self.x0, x, *coefs(self.process, t, x))


class EDMOracleNet(torch.nn.Module):
    """Recovers ``sigma~`` from ``c_noise`` and outputs ``F = (x0 - c_skip x~) / c_out``."""

    def __init__(self, x0, sigma_data: float):
        super().__init__()
        self.x0, self.sigma_data = x0, sigma_data

    def forward(self, x_in, c_noise, cond=None):
        sig = torch.exp(4.0 * c_noise.to(F64))
        c = edm_coefficients(sig, self.sigma_data)
        x_tilde = x_in / bcast(c.c_in, x_in)
        return (self.x0 - bcast(c.c_skip, x_in) * x_tilde) / bcast(c.c_out, x_in)


@pytest.mark.parametrize("pred", PREDICTIONS)
@pytest.mark.parametrize("name", ["vp", "ve", "edm", "linear"])
def test_denoiser_with_exact_net_reproduces_x0(pred, name):
    for frac in FRACTIONS:
        process, x0, eps, t = case(name, frac)
        x = process.perturb(x0, t, eps)
        d = Denoiser(OracleNet(process, pred, x0), process, prediction=pred)
        torch.testing.assert_close(d(x, t), x0, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(d.native(x, t), target(pred, x0, eps, *coefs(process, t, x)), rtol=1e-6, atol=1e-6)


def test_denoiser_dict_state():
    process, x0, eps, t = case("vp", 0.5, dict_state=True)
    x = process.perturb(x0, t, eps)
    d = Denoiser(OracleNet(process, "eps", x0), process, prediction="eps")
    assert_state_close(d(x, t), x0, rtol=1e-6, atol=1e-6)


def test_denoiser_accepts_scalar_time():
    process, x0, eps, t = case("vp", 0.5)
    x = process.perturb(x0, t, eps)
    d = Denoiser(OracleNet(process, "v", x0), process, prediction="v")
    torch.testing.assert_close(d(x, torch.tensor(float(t[0]))), x0, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["vp", "ve", "edm", "linear"])
def test_edm_preconditioned_denoiser_with_exact_net(name):
    for frac in FRACTIONS:
        process, x0, eps, t = case(name, frac)
        x = process.perturb(x0, t, eps)
        d = Denoiser(EDMOracleNet(x0, 0.5), process, prediction="edm", sigma_data=0.5)
        torch.testing.assert_close(d(x, t), x0, rtol=1e-6, atol=1e-6)


def test_edm_coefficients_limits():
    sd = 0.5
    sig = torch.logspace(-8, 2, 41, dtype=F64)
    c = edm_coefficients(sig, sd)
    torch.testing.assert_close(c.c_in * torch.sqrt(sig**2 + sd**2), torch.ones_like(sig))
    torch.testing.assert_close(c.c_skip * (sig**2 + sd**2), torch.full_like(sig, sd**2))
    torch.testing.assert_close(edm_loss_weight(sig, sd) * c.c_out**2, torch.ones_like(sig))
    tiny = edm_coefficients(torch.tensor([1e-8], dtype=F64), sd)
    assert abs(float(tiny.c_skip) - 1) < 1e-12 and float(tiny.c_out) < 1e-7
    big = edm_coefficients(torch.tensor([1e4], dtype=F64), sd)
    assert float(big.c_skip) < 1e-8 and abs(float(big.c_out) - sd) < 1e-6


def test_edm_denoiser_is_identity_at_tiny_sigma():
    """Whatever the network outputs, ``D(x, σ) → x`` as ``σ → 0``."""
    process = make_process("edm", sigma_min=1e-7)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=F64)
    wild = torch.randn(6, 4, generator=g, dtype=F64) * 10.0

    def net(x_in, c_noise, cond=None):
        return wild

    d = Denoiser(net, process, prediction="edm")
    out = d(x, torch.zeros(6, dtype=F64))
    assert (out - x).abs().max() < 1e-5


def test_unknown_parameterization_lists_choices():
    process = make_process("vp")
    with pytest.raises(UnknownNameError) as err:
        Denoiser(lambda x, t, c: x, process, prediction="noise")
    for name in PARAMETERIZATIONS:
        assert name in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        to_x0("noise", None, None, None, None)
    for name in PREDICTIONS:
        assert name in str(err.value)
    with pytest.raises(UnknownNameError):
        target("x_1", None, None, None, None)
