"""CogDPM precision-weighted guidance: precision oracle, the ablation modes, trajectory resets."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from domains.weather.guidance import PrecisionGuidedDenoiser, precision_weights


def test_precision_weights_oracle():
    # two pixels: predictions [0, 2] (var 2) and [1, 1] (var 0); eps = 1 -> P = [1/3, 1] -> / mean (2/3)
    hist = torch.tensor([[[0.0, 1.0]], [[2.0, 1.0]]])  # [K=2, B=1, 2]
    w = precision_weights(hist, eps=1.0, max_weight=10.0)
    torch.testing.assert_close(w, torch.tensor([[0.5, 1.5]]))
    assert torch.equal(precision_weights(hist[:1], 1.0, 10.0), torch.ones(1, 2))  # one step: uniform
    assert precision_weights(hist, eps=1e-6, max_weight=1.2).max() <= 1.2


class Toy(nn.Module):
    """x0 = conditional value where not dropped, 0 for the unconditional half; records calls."""

    def __init__(self) -> None:
        super().__init__()
        self.process = object()
        self.calls = 0

    def forward(self, x, t, cond=None):
        self.calls += 1
        c = cond["channels"][:, :1] if cond is not None else torch.zeros_like(x)
        keep = ~cond["drop"] if cond is not None and "drop" in cond else torch.ones(x.shape[0], dtype=torch.bool)
        return c * keep.reshape(-1, 1, 1, 1) + 0 * x


def test_modes():
    x, t = torch.zeros(2, 1, 2, 2), torch.tensor(1.0)
    cond = {"channels": torch.full((2, 1, 2, 2), 3.0)}
    assert torch.equal(PrecisionGuidedDenoiser(Toy(), "none")(x, t, cond), torch.full_like(x, 3.0))
    assert torch.equal(PrecisionGuidedDenoiser(Toy(), "cfg", scale=2.0)(x, t, cond), torch.full_like(x, 6.0))
    # first step of a trajectory: no variance yet -> uniform precision = plain CFG
    assert torch.equal(PrecisionGuidedDenoiser(Toy(), "precision", scale=2.0)(x, t, cond), torch.full_like(x, 6.0))


def test_precision_history_and_reset():
    g = PrecisionGuidedDenoiser(Toy(), "precision", window=3, eps=1e-3)
    x = torch.zeros(1, 1, 1, 2)
    for k, t in enumerate((1.0, 0.5, 0.2)):
        c = torch.tensor([[[[float(k), 1.0]]]])  # pixel 0 changes every step, pixel 1 is settled
        g(x, torch.tensor(t), {"channels": c})
    w = g.last_weights
    assert w[0, 0, 0, 0] < 0.01 and w[0, 0, 0, 1] > 1.9  # settled pixel gets the guidance
    assert len(g._history) == 3
    g(x, torch.tensor(1.0), {"channels": torch.zeros(1, 1, 1, 2)})  # noise level goes up: a new trajectory
    assert len(g._history) == 1


def test_window_checked():
    with pytest.raises(ValueError, match="precision_window"):
        PrecisionGuidedDenoiser(Toy(), "precision", window=1)


def test_scale_one_is_plain_conditioning_and_precision_moves_guidance_to_settled_pixels():
    x = torch.zeros(1, 1, 1, 2)
    cond = {"channels": torch.tensor([[[[2.0, 2.0]]]])}
    for mode in ("none", "cfg", "precision"):  # guidance term (scale - 1) * P * (x0_c - x0_u) vanishes
        assert torch.equal(PrecisionGuidedDenoiser(Toy(), mode, scale=1.0)(x, torch.tensor(1.0), cond),
                           torch.full_like(x, 2.0))
    g = PrecisionGuidedDenoiser(Toy(), "precision", scale=1.5, window=2, eps=1e-3, max_weight=10.0)
    g(x, torch.tensor(1.0), {"channels": torch.tensor([[[[0.0, 2.0]]]])})
    out = g(x, torch.tensor(0.5), cond)  # pixel 0 moved 0 -> 2, pixel 1 stayed at 2
    w = g.last_weights
    assert w.mean() == pytest.approx(1.0) and w[0, 0, 0, 1] > 1.99
    # x0_c + (scale - 1) * w * (x0_c - x0_u), with x0_u = 0 for the toy
    torch.testing.assert_close(out, 2.0 + 0.5 * w * 2.0)
    assert out[0, 0, 0, 1] > 3.9 and out[0, 0, 0, 0] < 2.01
