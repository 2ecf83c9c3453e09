"""Losses: targets, weightings, time samplers, masks; a short real training run."""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.losses import TIME_SAMPLERS, WEIGHTINGS, DenoisingLoss, flow_matching_loss, make_time_sampler
from core.metrics import sliced_wasserstein
from core.networks import MLPDenoiserNet
from core.parameterization import Denoiser, from_x0
from core.processes import make_process
from core.registry import UnknownNameError
from core.samplers import MaskedSpace, sample
from core.samplers.base import coefs
from core.training.trainer import Trainer, tensor_batch_fn
from core.types import StateDict


class ExactNet(torch.nn.Module):
    """Outputs the exact native target of a GMM (the loss's minimiser)."""

    def __init__(self, gmm: GaussianMixture, process, prediction: str) -> None:
        super().__init__()
        self.gmm, self.process, self.prediction = gmm, process, prediction
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, cond=None):
        t = t.double()
        c = coefs(self.process, t, x)
        x0 = self.gmm.denoiser(self.process)(x, t)
        return from_x0(self.prediction, x0, x, c.a, c.s, c.da, c.ds).to(x.dtype)


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "score", "velocity"])
def test_exact_denoiser_beats_a_perturbed_one(prediction: str) -> None:
    gmm = GaussianMixture.ring2d()
    process = make_process("vp")
    x0 = gmm.sample(4096, torch.Generator().manual_seed(0))
    exact = Denoiser(ExactNet(gmm, process, prediction), process, prediction)
    loss = DenoisingLoss(process, time_sampler="antithetic")
    l_exact = loss(exact, x0, None, torch.Generator().manual_seed(1)).mean()

    class Shifted(ExactNet):
        def forward(self, x, t, cond=None):
            return super().forward(x, t, cond) + 0.1

    l_shift = loss(Denoiser(Shifted(gmm, process, prediction), process, prediction), x0, None,
                   torch.Generator().manual_seed(1)).mean()
    assert l_exact < l_shift
    assert math.isfinite(float(l_exact))


def test_loss_is_per_sample_and_deterministic_under_a_generator() -> None:
    process = make_process("vp")
    net = MLPDenoiserNet(2, hidden=16, depth=1, emb_dim=16)
    model = Denoiser(net, process, "eps")
    x0 = torch.randn(32, 2)
    loss = DenoisingLoss(process)
    a = loss(model, x0, None, torch.Generator().manual_seed(3))
    b = loss(model, x0, None, torch.Generator().manual_seed(3))
    assert a.shape == (32,) and torch.equal(a, b)


def test_masked_space_ignores_padding() -> None:
    """Padded elements (mask 0) never change the loss, whatever their values."""
    process = make_process("vp")
    net = MLPDenoiserNet(8, hidden=16, depth=1, emb_dim=16)
    torch.nn.init.normal_(net.out.weight) if hasattr(net, "out") else None
    model = Denoiser(net, process, "x0")
    mask = torch.ones(4, 8)
    mask[:, 5:] = 0
    x0 = torch.randn(4, 8) * mask
    loss = DenoisingLoss(process, space=MaskedSpace())
    a = loss(model, x0, {"mask": mask}, torch.Generator().manual_seed(0))
    x0b = x0 + 100.0 * (1 - mask)
    b = loss(model, x0b, {"mask": mask}, torch.Generator().manual_seed(0))
    assert torch.allclose(a, b, atol=1e-6)


def test_time_samplers_cover_the_range() -> None:
    process = make_process("vp")
    for name in TIME_SAMPLERS.names():
        t = make_time_sampler(name)(process, 512, torch.Generator().manual_seed(0))
        assert t.shape == (512,) and t.dtype == torch.float64
        assert (t >= process.t_min).all() and (t <= process.t_max).all()
    t = make_time_sampler("antithetic")(process, 8, torch.Generator().manual_seed(0))
    gaps = torch.diff(torch.sort(t).values)
    assert torch.allclose(gaps, torch.full_like(gaps, (process.t_max - process.t_min) / 8), atol=1e-9)
    edm = make_process("edm")
    t = make_time_sampler("lognormal")(edm, 20000, torch.Generator().manual_seed(0))
    log_sigma = torch.log(edm.sigma(t))
    assert abs(float(log_sigma.mean()) + 1.2) < 0.05 and abs(float(log_sigma.std()) - 1.2) < 0.05


def test_weightings_by_hand() -> None:
    vp = make_process("vp")
    t = torch.tensor([0.3], dtype=torch.float64)
    snr = torch.exp(vp.log_snr(t))
    assert torch.allclose(WEIGHTINGS.get("snr")(vp, t), snr)
    assert torch.allclose(WEIGHTINGS.get("min_snr")(vp, t, gamma=5.0), snr.clamp_max(5.0) / snr)
    edm = make_process("edm")
    s = edm.sigma(t)
    assert torch.allclose(WEIGHTINGS.get("edm")(edm, t), (s**2 + 0.25) / (s * 0.5) ** 2)
    with pytest.raises(UnknownNameError, match="valid choices"):
        DenoisingLoss(vp, weighting="nope")


def test_dict_state_loss_with_per_field_processes() -> None:
    process = make_process({"x": {"name": "vp"}, "adj": {"name": "ve", "sigma_max": 1.0, "sigma_min": 0.2}})

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))

        def forward(self, x, t, cond=None):
            return StateDict({k: self.w * v for k, v in x.items()})

    model = Denoiser(Net(), process, "eps")
    x0 = StateDict({"x": torch.randn(6, 3, 2), "adj": torch.randn(6, 3, 3)})
    val = DenoisingLoss(process)(model, x0, None, torch.Generator().manual_seed(0))
    assert val.shape == (6,) and torch.isfinite(val).all()
    val.mean().backward()
    assert model.net.w.grad is not None


def test_small_network_learns_a_2d_mixture() -> None:
    """Flow matching on a rectified-flow interpolant: samples land on the ring within a bound."""
    torch.manual_seed(0)
    gmm = GaussianMixture.ring2d(k=4, radius=2.0, std=0.15)
    data = gmm.sample(8000, torch.Generator().manual_seed(0))
    process = make_process("linear")
    model = Denoiser(MLPDenoiserNet(2, hidden=128, depth=3, emb_dim=64), process, "velocity")
    trainer = Trainer(model, flow_matching_loss(process, time_sampler="antithetic"), tensor_batch_fn(data, 256),
                      {"steps": 1200, "batch_size": 256, "lr": 2e-3, "warmup_steps": 50, "ema_decay": 0.99, "seed": 0,
                       "log_every": 400}, progress=False)
    trainer.fit()
    trainer.ema.copy_to(model)
    x_init = process.prior_sample((2000, 2), torch.Generator().manual_seed(1))
    out = sample(model.eval(), process, x_init, sampler="ode_heun", steps=25, schedule="uniform").x
    ref = gmm.sample(2000, torch.Generator().manual_seed(2))
    floor = sliced_wasserstein(gmm.sample(2000, torch.Generator().manual_seed(3)), ref,
                               generator=torch.Generator().manual_seed(0))
    dist = sliced_wasserstein(out, ref, generator=torch.Generator().manual_seed(0))
    prior_dist = sliced_wasserstein(x_init, ref, generator=torch.Generator().manual_seed(0))
    assert dist < 2.0 * floor, (dist, floor)  # two independent 2000-point samples: floor ≈ 0.14
    assert dist < 0.5 * prior_dist
    assert float(gmm.log_prob(out).mean()) > float(gmm.log_prob(ref).mean()) - 1.0


def test_loss_squares_the_space_residual() -> None:
    """The residual goes through ``space.loss_residual`` before squaring: a space that doubles it gives 4x
    the loss; the identity (the default) gives the plain loss."""
    from core.samplers import EuclideanSpace

    class Doubling(EuclideanSpace):
        def loss_residual(self, diff, cond=None):
            return 2.0 * diff

    process = make_process("vp")
    torch.manual_seed(0)
    model = Denoiser(MLPDenoiserNet(3, hidden=16, depth=1, emb_dim=16), process, "eps")
    x0 = torch.randn(16, 3)
    plain = DenoisingLoss(process)(model, x0, None, torch.Generator().manual_seed(5))
    doubled = DenoisingLoss(process, space=Doubling())(model, x0, None, torch.Generator().manual_seed(5))
    assert torch.allclose(doubled, 4.0 * plain, rtol=1e-5)
    assert bool((plain > 0).all())
