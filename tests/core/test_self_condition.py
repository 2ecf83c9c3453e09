"""Self-conditioning (Chen et al. 2023): the denoiser feeds back its previous x0 estimate within a
trajectory, starts each trajectory from zeros, and the loss trains on a first no-grad estimate."""

import pytest
import torch
from torch import nn

from core.losses.denoising import DenoisingLoss
from core.parameterization.denoiser import Denoiser
from core.processes import make_process
from core.samplers import sample


class Recorder(nn.Module):
    """x0-predicting net ``0.5 x + self_cond + 1`` that records the ``self_cond`` it was given."""

    supports_self_condition = True

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.seen: list[torch.Tensor] = []

    def forward(self, x, t, cond=None, self_cond=None):
        self.seen.append(self_cond.detach().clone())
        return self.w * x + self_cond + 1.0


def _denoiser():
    return Denoiser(Recorder(), make_process({"name": "vp"}), "x0", self_condition=True)


def test_needs_a_network_that_supports_it():
    with pytest.raises(ValueError, match="self_cond"):
        Denoiser(nn.Identity(), make_process({"name": "vp"}), "x0", self_condition=True)
    plain = Denoiser(lambda x, t, c: x, make_process({"name": "vp"}), "x0")
    with pytest.raises(ValueError, match="without self_condition"):
        plain.native(torch.zeros(2, 3), torch.full((2,), 0.5), None, self_cond=torch.zeros(2, 3))


def test_feedback_within_a_trajectory_and_reset_on_a_new_one():
    d = _denoiser().eval()
    x = torch.ones(2, 3)
    with torch.no_grad():
        out1 = d(x, torch.full((2,), 0.8))
        out2 = d(x, torch.full((2,), 0.5))
        out3 = d(x, torch.full((2,), 0.5))  # same time (a corrector step): still the same trajectory
        d(x, torch.full((2,), 0.9))  # later time than before: a new trajectory
        d.reset_self_condition()
        d(x, torch.full((2,), 0.3))
        d(torch.ones(4, 3), torch.full((4,), 0.2))  # another batch shape: a new trajectory
    seen = d.net.seen
    assert torch.equal(seen[0], torch.zeros(2, 3))
    assert torch.equal(seen[1], out1) and torch.equal(seen[2], out2) and torch.equal(out3, 0.5 * x + out2 + 1)
    assert torch.equal(seen[3], torch.zeros(2, 3))
    assert torch.equal(seen[4], torch.zeros(2, 3)) and torch.equal(seen[5], torch.zeros(4, 3))


def test_explicit_self_cond_and_training_mode_do_not_use_the_feedback():
    d = _denoiser()
    x = torch.ones(2, 3)
    d.train()
    d(x, torch.full((2,), 0.5))
    assert d._sc_prev is None and torch.equal(d.net.seen[-1], torch.zeros(2, 3))
    d.eval()
    given = torch.full((2, 3), 7.0)
    d(x, torch.full((2,), 0.5), self_cond=given)
    assert torch.equal(d.net.seen[-1], given) and d._sc_prev is None


@pytest.mark.parametrize("rate", [0.0, 1.0, 0.5])
def test_loss_trains_on_a_first_estimate_for_the_chosen_share(rate):
    d = _denoiser()
    loss = DenoisingLoss(d.process, self_condition_rate=rate)
    x0 = torch.randn(64, 3)
    out = loss(d, x0, None, torch.Generator().manual_seed(0))
    first, used = d.net.seen[-2], d.net.seen[-1]  # the no-grad estimate, then the trained call's input
    assert torch.equal(first, torch.zeros(64, 3))
    chosen = used.abs().sum(1) > 0
    n = int(chosen.sum())
    if rate == 0.0:
        assert n == 0
    elif rate == 1.0:
        assert n == 64
    else:
        assert 16 < n < 48
    out.mean().backward()  # gradient flows through the trained call only
    assert d.net.w.grad is not None and torch.isfinite(d.net.w.grad)
    with pytest.raises(ValueError, match="self_condition_rate"):
        DenoisingLoss(d.process, self_condition_rate=1.5)


def test_loss_first_estimate_is_the_denoiser_output():
    d = _denoiser()
    loss = DenoisingLoss(d.process, self_condition_rate=1.0)
    torch.manual_seed(0)
    x0 = torch.randn(8, 3)
    loss(d, x0, None, torch.Generator().manual_seed(3))
    used = d.net.seen[-1]
    # replay the loss's draws: time, noise, then the share
    g = torch.Generator().manual_seed(3)
    t = loss.sample_time(d.process, 8, g, torch.device("cpu"))
    noise = torch.randn(8, 3, generator=g)
    x_t = d.process.perturb(x0, t, noise)
    with torch.no_grad():
        expect = d(x_t, t, None, self_cond=torch.zeros(8, 3))
    assert torch.allclose(used, expect, atol=1e-6) and used.abs().sum() > 0


def test_sample_resets_so_repeated_runs_agree():
    d = _denoiser().eval()
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    a = sample(d, d.process, x, sampler="ddim", steps=5)
    b = sample(d, d.process, x, sampler="ddim", steps=5)
    assert torch.equal(a.x, b.x)
    starts = [s for s in d.net.seen if not s.abs().sum()]
    assert len(starts) == 2  # each run started once from zeros, the other calls got feedback


def test_channel_self_condition_appends_the_estimate_to_the_conditioning_channels():
    from core.networks.self_condition import ChannelSelfCondition
    from core.networks.unet import UNet

    torch.manual_seed(0)
    unet = UNet(2, 2, 2, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, cond_channels=3 + 2,
                norm_groups=4)
    net = ChannelSelfCondition(unet, 3)
    x, t = torch.randn(2, 2, 8, 8), torch.full((2,), 0.5)
    given = torch.randn(2, 3, 8, 8)
    sc = torch.randn(2, 2, 8, 8)
    out = net(x, t, {"channels": given}, self_cond=sc)
    assert torch.allclose(out, unet(x, t, {"channels": torch.cat([given, sc], 1)}))
    assert torch.allclose(net(x, t, {"channels": given}), unet(x, t, {"channels": torch.cat([given, 0 * sc], 1)}))
    assert torch.allclose(net(x, t, None, self_cond=sc), unet(x, t, {"channels": torch.cat([0 * given, sc], 1)}))
    with pytest.raises(ValueError, match="self_cond has shape"):
        net(x, t, {"channels": given}, self_cond=torch.zeros(2, 1, 8, 8))
    d = Denoiser(net, make_process({"name": "vp"}), "x0", self_condition=True)
    loss = DenoisingLoss(d.process, self_condition_rate=0.5)
    value = loss(d, torch.randn(4, 2, 8, 8), {"channels": torch.randn(4, 3, 8, 8)}, torch.Generator().manual_seed(0))
    assert value.shape == (4,) and torch.isfinite(value).all()


def test_edm_denoiser_feeds_the_estimate_at_unit_scale():
    d = Denoiser(Recorder(), make_process({"name": "edm", "sigma_data": 0.1}), "edm", sigma_data=0.1,
                 self_condition=True)
    x, t = torch.randn(2, 3), torch.full((2,), 0.5)
    est = torch.full((2, 3), 0.2)
    d(x, t, self_cond=est)
    assert torch.allclose(d.net.seen[-1], est / 0.1)
    d.native(x, t, self_cond=est)
    assert torch.allclose(d.net.seen[-1], est / 0.1)
