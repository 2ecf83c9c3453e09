"""Config validation, networks under the core contract, patch sampling, sliding-window ensembles."""

from __future__ import annotations

import pytest
import torch

from core.config import ConfigError
from core.parameterization import Denoiser
from core.processes import make_process
from domains import get_domain
from domains.medseg.config import MedsegData
from domains.medseg.inference import diffusion_ensemble
from domains.medseg.patches import case_patches


def test_presets_load_and_bad_keys_are_errors():
    dom = get_domain("medseg")
    for preset in ("smoke", "default", "full"):
        cfg = dom.load_config(preset)
        assert cfg.sample.steps <= 20
    with pytest.raises(ConfigError, match="bogus"):
        dom.load_config("smoke", ["data.bogus=1"])
    with pytest.raises(ConfigError, match="task"):
        dom.load_config("smoke", ["data.task=everything"])
    with pytest.raises(ConfigError, match="<= 20 steps"):
        dom.load_config("smoke", ["sample.steps=50"])
    with pytest.raises(ConfigError, match="multiples of"):
        dom.load_config("smoke", ["data.patch=[15,16,16]"])


@pytest.mark.parametrize("arch", ["unet", "monai_unet"])
def test_networks_follow_the_core_contract(arch: str):
    dom = get_domain("medseg")
    cfg = dom.load_config("smoke", [f"network.arch={arch}", "network.base_channels=8", "network.channel_mults=[1,2]",
                                    "network.monai_channels=[8,16]", "data.task=regions"])
    net = dom.build_network(cfg)
    x = torch.randn(2, 3, 16, 16, 16)
    out = net(x, torch.rand(2), {"channels": torch.randn(2, 2, 16, 16, 16)})
    assert out.shape == x.shape
    with pytest.raises(ValueError):
        net(torch.randn(2, 1, 16, 16, 16), torch.rand(2), {"channels": torch.randn(2, 2, 16, 16, 16)})


def test_patches_are_seeded_and_aligned():
    g = torch.Generator().manual_seed(0)
    fg = torch.zeros(1, 24, 24, 24, dtype=torch.bool)
    fg[0, 8:14, 8:14, 8:14] = True
    image = torch.randn(2, 24, 24, 24, generator=g) * 0.1 + fg.float() * 3.0
    cfg = MedsegData(patch=(8, 8, 8), patches_per_case=6, intensity_jitter=0.0)
    a_img, a_mask = case_patches(image, fg, cfg, seed=5)
    b_img, b_mask = case_patches(image, fg, cfg, seed=5)
    assert a_img.shape == (6, 2, 8, 8, 8) and a_mask.shape == (6, 1, 8, 8, 8)
    assert torch.equal(a_img, b_img) and torch.equal(a_mask, b_mask)
    assert torch.equal(a_mask[:, 0], a_img[:, 0] > 1.5)  # image and mask stay aligned through flips
    c_img, _ = case_patches(image, fg, cfg, seed=6)
    assert not torch.equal(a_img, c_img)


def test_ensemble_members_have_their_own_seeds():
    dom = get_domain("medseg")
    cfg = dom.load_config("smoke", ["network.monai_channels=[8,16]", "sample.steps=2", "inference.ensemble=3",
                                    "data.patch=[8,8,8]"])
    torch.manual_seed(0)
    model = Denoiser(dom.build_network(cfg), make_process(cfg.process), cfg.model.prediction, cfg.model.sigma_data)
    image = torch.randn(2, 12, 10, 9)
    members, nfe = diffusion_ensemble(model.eval(), cfg, image, 1, case_index=0)
    assert members.shape == (3, 1, 12, 10, 9) and members.dtype == torch.float16
    assert float(members.min()) >= 0.0 and float(members.max()) <= 1.0
    assert 0 < nfe <= 20
    two = cfg.model_copy(update={"inference": cfg.inference.model_copy(update={"ensemble": 2})})
    again, _ = diffusion_ensemble(model.eval(), two, image, 1, case_index=0)
    assert torch.equal(again, members[:2])  # member k does not depend on the ensemble size


def test_baseline_resumes_exactly_from_its_checkpoint(tmp_path):
    from core.training.checkpoint import list_checkpoints
    from domains.medseg.baseline import baseline_train_config, train_baseline
    from domains.medseg.config import BaselineConfig

    g = torch.Generator().manual_seed(0)
    images = torch.randn(6, 2, 8, 8, 8, generator=g)
    masks = (images[:, :1] > 0.5).float()
    b = BaselineConfig(channels=(4, 8))
    tc = baseline_train_config(b, steps=4, batch_size=2, seed=3, checkpoint_every=2, device="cpu",
                               log_every=1)
    full, res = train_baseline(images, masks, b, tc, tmp_path / "a", progress=False)
    assert res.step == 4 and res.loss is not None
    _, _ = train_baseline(images, masks, b, tc, tmp_path / "b", progress=False)
    last = list_checkpoints(tmp_path / "b")[-1]
    assert last.name == "step_000004"
    import shutil

    shutil.rmtree(last)  # as if the run had stopped after step 2
    (tmp_path / "b" / "latest").unlink(missing_ok=True)
    resumed, res_b = train_baseline(images, masks, b, tc, tmp_path / "b", progress=False)
    assert res_b.step == 4 and [s for s, _ in res_b.history] == [2, 3]  # only the missing steps ran
    assert res_b.history == res.history[2:]
    for (k, v), w in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
