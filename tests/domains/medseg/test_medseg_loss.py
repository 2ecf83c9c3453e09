"""The medseg mask loss (x0-space MSE + BCE + soft Dice) and the MONAI denoiser's full-resolution head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.config import ConfigError
from core.losses import DenoisingLoss
from core.parameterization import Denoiser
from core.processes import make_process
from domains import get_domain
from domains.medseg.config import MaskLossConfig
from domains.medseg.losses import MaskDenoisingLoss, soft_dice_loss
from domains.medseg.networks import MonaiDenoiserNet


def _masks(b: int = 3) -> torch.Tensor:
    m = torch.zeros(b, 1, 8, 8, 8)
    m[:, :, 2:6, 2:6, 2:6] = 1.0
    return m * 2.0 - 1.0


class _Fixed(nn.Module):
    """A denoiser whose x0 prediction is a fixed tensor (the process is the only thing losses read)."""

    def __init__(self, out: torch.Tensor, process, prediction: str = "x0") -> None:
        super().__init__()
        self.out, self.process, self.prediction, self.sigma_data = out, process, prediction, 1.0

    def forward(self, x, t, cond=None):
        return self.out


def test_soft_dice_is_zero_for_a_perfect_mask_and_near_one_for_the_complement():
    m = (_masks() + 1) / 2
    assert torch.allclose(soft_dice_loss(m, m), torch.zeros(3), atol=1e-6)
    assert (soft_dice_loss(1 - m, m) > 0.99).all()


def test_mask_terms_reward_the_right_mask_and_punish_the_wrong_one():
    x0, proc = _masks(), make_process({"name": "vp_cosine"})
    loss = MaskDenoisingLoss("uniform", MaskLossConfig(mse=1.0, bce=1.0, dice=1.0))
    g = torch.Generator().manual_seed(0)
    right = loss(_Fixed(x0, proc), x0, None, g)
    wrong = loss(_Fixed(-x0, proc), x0, None, g)
    assert right.shape == (3,) and (right < 0.01).all()
    # MSE 4, BCE -ln(1e-4) ~ 9.2, Dice ~ 1
    assert torch.allclose(wrong, torch.full((3,), 4.0 + 9.2103 + 1.0), atol=0.02)


def test_mse_only_under_edm_is_the_core_edm_loss():
    torch.manual_seed(0)
    proc = make_process({"name": "edm", "sigma_max": 10.0, "sigma_data": 1.0})
    net = MonaiDenoiserNet(1, 2, (8, 16))
    model = Denoiser(net, proc, "edm", sigma_data=1.0)
    x0, cond = _masks(4), {"channels": torch.randn(4, 2, 8, 8, 8)}
    fixed_t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    ours = MaskDenoisingLoss("uniform", MaskLossConfig())
    ours.sample_time = lambda process, b, gen, dev: fixed_t
    core = DenoisingLoss(proc, time_sampler="uniform")
    core.sample_time = lambda process, b, gen, dev: fixed_t
    a = ours(model, x0, cond, torch.Generator().manual_seed(3))
    b = core(model, x0, cond, torch.Generator().manual_seed(3))
    assert torch.allclose(a, b.to(a.dtype), rtol=1e-4)


def test_gradients_reach_the_network_and_time_options_are_used():
    proc = make_process({"name": "vp_cosine"})
    model = Denoiser(MonaiDenoiserNet(1, 2, (8, 16), head_channels=4), proc, "x0")
    loss = MaskDenoisingLoss("lognormal", MaskLossConfig(bce=1.0, dice=1.0, time_options={"p_mean": 0.0}))
    out = loss(model, _masks(2), {"channels": torch.randn(2, 2, 8, 8, 8)}, torch.Generator().manual_seed(1))
    out.mean().backward()
    head = model.net.head[0].weight.grad
    assert head is not None and head.abs().sum() > 0
    with pytest.raises(TypeError):  # an option the time sampler does not take
        MaskDenoisingLoss("lognormal", MaskLossConfig(time_options={"bogus": 1.0}))(
            model, _masks(2), {"channels": torch.randn(2, 2, 8, 8, 8)})


def test_mask_loss_config_errors_name_the_fix():
    dom = get_domain("medseg")
    with pytest.raises(ConfigError, match="at least one of mse, bce, dice"):
        dom.load_config("smoke", ["mask_loss.mse=0", "mask_loss.bce=0", "mask_loss.dice=0"])
    with pytest.raises(ConfigError, match="loss.weighting=none"):
        dom.load_config("smoke", ["loss.weighting=snr"])


def test_full_resolution_head_gives_a_per_voxel_path():
    torch.manual_seed(0)
    net = MonaiDenoiserNet(1, 2, (8, 16), head_channels=8).eval()
    x, cond = torch.zeros(1, 1, 8, 8, 8), {"channels": torch.zeros(1, 2, 8, 8, 8)}
    x2 = x.clone()
    x2[0, 0, 4, 4, 4] = 5.0
    with torch.no_grad():
        d = (net(x2, torch.zeros(1), cond) - net(x, torch.zeros(1), cond)).abs()[0, 0]
    # a change at one voxel moves that voxel's output through the head's 1x1x1 path
    assert d[4, 4, 4] > 0 and d[4, 4, 4] >= d.max() * 0.1
