"""Conditioning and steering: classifier-free guidance, reconstruction guidance, inpainting, FK."""

from __future__ import annotations

import math

import pytest
import torch

from core.analytic import GaussianMixture
from core.processes import make_process
from core.samplers import InpaintingSpace, make_schedule, sample
from core.samplers.base import CountingDenoiser, coefs
from core.samplers.guidance import ClassifierFreeGuidance, ReconstructionGuidance
from core.samplers.steering import (
    effective_sample_size,
    fk_steering,
    potential_increment,
    systematic_resample,
)


def test_cfg_combines_conditional_and_unconditional_in_one_call() -> None:
    def den(x, t, cond):
        if cond is None:
            return x * 0
        v = cond["vector"] * (~cond["drop"]).to(x.dtype)[:, None]
        return x * 0 + v + 1.0  # unconditional: 1, conditional: vector + 1

    counter = CountingDenoiser(den)
    cfg = ClassifierFreeGuidance(counter, scale=3.0)
    x = torch.zeros(4, 2)
    out = cfg(x, torch.full((4,), 0.5), {"vector": torch.full((4, 2), 2.0)})
    assert torch.allclose(out, torch.full((4, 2), 1.0 + 3.0 * 2.0))
    assert counter.nfe == 1
    assert torch.allclose(cfg(x, torch.full((4,), 0.5), None), torch.zeros(4, 2))  # cond=None: plain model


def test_reconstruction_guidance_shifts_x0_by_the_scaled_gradient() -> None:
    process = make_process("vp")
    gmm = GaussianMixture(torch.zeros(1, 3), 1.0)
    den = gmm.denoiser(process)
    y = torch.tensor([1.0, -2.0, 0.5])

    def loglik(x0, cond):
        return -0.5 * ((x0 - y) ** 2).sum(1) / 0.1**2

    guided = ReconstructionGuidance(den, process, loglik, scale=0.5)
    x = torch.randn(5, 3, dtype=torch.float64)
    t = torch.full((5,), 0.4, dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loglik(den(xg, t), None).sum(), xg)
    c = coefs(process, t, x)
    expected = den(x, t) + 0.5 * c.s**2 / c.a * grad
    assert torch.allclose(guided(x, t), expected)
    x_init = process.prior_sample((400, 3), torch.Generator().manual_seed(0), dtype=torch.float64)
    plain = sample(den, process, x_init, sampler="ddim", steps=30).x
    steered = sample(guided, process, x_init, sampler="ddim", steps=30).x
    assert (steered.mean(0) - y).norm() < 0.5 * (plain.mean(0) - y).norm()
    with pytest.raises(ValueError, match=r"one value per sample"):
        ReconstructionGuidance(den, process, lambda x0, c: x0.sum(), 1.0)(x, t)


def test_inpainting_keeps_known_values_and_completes_consistently() -> None:
    process = make_process("vp")
    gmm = GaussianMixture(torch.tensor([[-2.0, -2.0], [2.0, 2.0]]), 0.1)
    n = 300
    known = torch.zeros(n, 2)
    known[:, 0] = 2.0
    mask = torch.zeros(n, 2)
    mask[:, 0] = 1.0
    gen = torch.Generator().manual_seed(0)
    space = InpaintingSpace(process, known, mask, generator=gen)
    x_init = process.prior_sample((n, 2), gen)
    out = sample(gmm.denoiser(process), process, x_init, sampler="ddpm", steps=100, schedule="uniform",
                 space=space, generator=gen).x
    assert torch.equal(out[:, 0], known[:, 0])
    assert float((out[:, 1] > 0).float().mean()) > 0.9  # the completion follows the known part


def test_fk_weights_by_hand() -> None:
    r_prev = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    r = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(potential_increment("difference", 2.0, r, r_prev, None), torch.tensor([[2.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(potential_increment("sum", 2.0, r, r_prev, None), torch.tensor([[2.0, 2.0]], dtype=torch.float64))
    r_max = torch.tensor([[0.5, 3.0]], dtype=torch.float64)
    assert torch.allclose(potential_increment("max", 2.0, r, r_prev, r_max), torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    logw = torch.log(torch.tensor([[0.5, 0.25, 0.25, 0.0]], dtype=torch.float64))
    assert math.isclose(float(effective_sample_size(logw)), 1.0 / (0.25 + 0.0625 + 0.0625))
    idx = systematic_resample(torch.tensor([[0.5, 0.25, 0.25, 0.0]], dtype=torch.float64),
                              torch.tensor([0.5], dtype=torch.float64))
    assert idx.tolist() == [[0, 0, 1, 2]]  # positions 1/8, 3/8, 5/8, 7/8


def test_fk_steering_moves_mass_to_the_rewarded_component() -> None:
    """Target ∝ p(x0) exp(λ x0_1): component weights ∝ π_k exp(λ μ_k + λ² v / 2)."""
    gmm = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.25)
    process = make_process("vp")
    lam = 0.5
    exact = 1.0 / (1.0 + math.exp(-2 * lam * 2.0))  # ≈ 0.881
    ts = make_schedule("uniform", process, 40)
    gen = torch.Generator().manual_seed(0)
    b, n = 600, 8
    x = process.prior_sample((b * n, 2), gen)
    res = fk_steering(gmm.denoiser(process), process, x, ts, reward_fn=lambda x0, c: x0[:, 0],
                      num_particles=n, lmbda=lam, generator=gen)
    frac = float((res.x[:, 0] > 0).float().mean())
    assert res.x.shape == (b, 2)
    assert abs(frac - exact) < 0.05, (frac, exact)
    assert res.resample_steps and res.nfe == 41
    unsteered = sample(gmm.denoiser(process), process, x[:b], sampler="ddpm", steps=40, schedule="uniform",
                       generator=gen).x
    assert abs(float((unsteered[:, 0] > 0).float().mean()) - 0.5) < 0.08


def test_fk_steering_with_per_particle_generators_is_reproducible_per_sample() -> None:
    from core.seeding import PerSampleGenerator

    gmm = GaussianMixture(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), 0.25)
    process = make_process("vp")
    ts = make_schedule("uniform", process, 10)
    n = 4

    def run(samples: list[int]):
        gen = PerSampleGenerator.for_samples(7, [k * n + j for k in samples for j in range(n)])
        x = process.prior_like(torch.empty(len(samples) * n, 2), gen)
        return fk_steering(gmm.denoiser(process), process, x, ts, reward_fn=lambda x0, c: x0[:, 0],
                           num_particles=n, lmbda=1.0, ess_threshold=1.0, resampling="multinomial",
                           generator=gen).x

    both, alone = run([0, 1]), run([1])
    assert torch.allclose(both[1], alone[0], atol=1e-6)
