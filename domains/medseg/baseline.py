"""The deterministic baseline: MONAI's 3-D U-Net with Dice + cross-entropy, on the same patches.

Trained by the core :class:`~core.training.trainer.Trainer` (AdamW, cosine LR, clipping, checkpoints
with optimizer, scheduler and RNG state) on exactly the rows the diffusion model sees, with the same
batch size and, by default, the same number of optimizer steps (comparable budget). Checkpoints go to
``<diffusion train workdir>/baseline/``, so an interrupted train stage resumes the baseline exactly
where it stopped. The final weights are copied next to the diffusion checkpoint as safetensors + JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from core.seeding import derive_seed
from core.training.trainer import TrainConfig, Trainer, TrainResult, tensor_batch_fn
from domains.medseg.config import BaselineConfig

FILE, CONFIG = "baseline.safetensors", "baseline.json"


def build_baseline(in_channels: int, out_channels: int, channels: tuple[int, ...]) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1, norm="instance")


class DiceCELoss:
    """Per-sample soft Dice (sigmoid, per channel, averaged) + binary cross-entropy, the core loss contract
    ``loss(model, x0, cond, generator) -> [B]``; ``x0`` holds the target masks in {0, 1}."""

    def __init__(self) -> None:
        from monai.losses import DiceLoss

        self.dice = DiceLoss(sigmoid=True, reduction="none")

    def __call__(self, model: nn.Module, x0: Tensor, cond: dict[str, Tensor], generator: Any = None) -> Tensor:
        logits = model(cond["image"])
        dice = self.dice(logits, x0).flatten(1).mean(1)
        ce = nn.functional.binary_cross_entropy_with_logits(logits, x0, reduction="none").flatten(1).mean(1)
        return dice + ce


def baseline_train_config(cfg: BaselineConfig, steps: int, batch_size: int, seed: int, checkpoint_every: int,
                          device: str = "auto", log_every: int = 100) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=batch_size, lr=cfg.lr, weight_decay=1e-2, warmup_steps=0,
                       lr_schedule="cosine", grad_clip=1.0, ema_decay=None, checkpoint_every=min(checkpoint_every, steps),
                       keep_last=2, log_every=max(1, min(log_every, steps)), device=device,  # type: ignore[arg-type]
                       seed=derive_seed(seed, "baseline"))


def train_baseline(images: Tensor, masks: Tensor, cfg: BaselineConfig, train: TrainConfig,
                   checkpoint_dir: Path | None = None, progress: bool = True) -> tuple[nn.Module, TrainResult]:
    """Fit the baseline to patches ``images [N,C,*p]`` → ``masks [N,R,*p]``; resumes from the latest
    checkpoint in ``checkpoint_dir`` when there is one. Returns the network and the trainer's result."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(train.seed, "init"))
        net = build_baseline(images.shape[1], masks.shape[1], cfg.channels)
    trainer = Trainer(net, DiceCELoss(), tensor_batch_fn(masks.float(), train.batch_size, {"image": images}), train,
                      checkpoint_dir=checkpoint_dir, model_config={"baseline": cfg.model_dump(mode="json")},
                      resume=checkpoint_dir is not None, progress=progress)
    result = trainer.fit()
    return trainer.module.cpu().eval(), result


def save_baseline(net: nn.Module, folder: Path, config: dict[str, Any]) -> Path:
    path = folder / FILE
    tmp = path.with_name(f".{FILE}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
    tmp.replace(path)
    tmp_cfg = folder / f".{CONFIG}.tmp"
    tmp_cfg.write_text(json.dumps(config, indent=2))
    tmp_cfg.replace(folder / CONFIG)
    return path


def load_baseline(folder: Path) -> nn.Module:
    path = folder / FILE
    if not path.is_file():
        raise FileNotFoundError(f"no baseline checkpoint {path}; rerun the train stage with baseline.enabled=true")
    c = json.loads((folder / CONFIG).read_text())
    net = build_baseline(c["in_channels"], c["out_channels"], tuple(c["channels"]))
    net.load_state_dict(load_file(str(path)))
    return net.eval()
