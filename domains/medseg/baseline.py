"""The deterministic baseline: MONAI's 3-D U-Net with Dice + cross-entropy, on the same patches.

Trained on exactly the rows the diffusion model sees, with the same number of optimizer steps and
batch size (comparable budget), batches drawn by :func:`core.training.trainer.tensor_batch_fn` with
``derive_seed(seed, "baseline", "batch", step)``. Saved as safetensors + JSON config next to the
diffusion checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from core.seeding import derive_seed, make_generator
from core.training.trainer import tensor_batch_fn
from domains.medseg.config import BaselineConfig

FILE, CONFIG = "baseline.safetensors", "baseline.json"


def build_baseline(in_channels: int, out_channels: int, channels: tuple[int, ...]) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=in_channels, out_channels=out_channels, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=1, norm="instance")


def train_baseline(images: torch.Tensor, masks: torch.Tensor, cfg: BaselineConfig, steps: int, batch_size: int,
                   seed: int, progress: bool = True) -> tuple[nn.Module, list[float]]:
    """Fit the baseline to patches ``images [N,C,*p]`` → ``masks [N,R,*p]``; returns it and the loss history."""
    from monai.losses import DiceCELoss

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "baseline", "init"))
        net = build_baseline(images.shape[1], masks.shape[1], cfg.channels)
    loss_fn = DiceCELoss(sigmoid=True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    batches = tensor_batch_fn(masks.float(), batch_size, {"image": images})
    history = []
    net.train()
    for step in tqdm(range(steps), desc="medseg: baseline", disable=not progress):
        target, cond = batches(step, make_generator(derive_seed(seed, "baseline", "batch", step)))
        loss = loss_fn(net(cond["image"]), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
    return net.eval(), history


def save_baseline(net: nn.Module, folder: Path, config: dict[str, Any]) -> Path:
    path = folder / FILE
    tmp = path.with_name(f".{FILE}.tmp")
    save_file({k: v.detach().contiguous() for k, v in net.state_dict().items()}, str(tmp))
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
