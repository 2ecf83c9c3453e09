"""Tiny training run for the DDP-equivalence test.

``torchrun --standalone --nproc_per_node=2 tests/core/ddp_script.py OUT.safetensors [CKPT_DIR]`` trains
a small eps-prediction MLP for 20 steps; rank 0 writes the final weights and EMA to ``OUT``. The test
imports :func:`train` to do the same run in a single process and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from core.parameterization import Denoiser
from core.processes import make_process
from core.seeding import Generator, make_generator, rand, randn_like
from core.training import TrainConfig, Trainer, cleanup_distributed, tensor_batch_fn

CONFIG = dict(steps=20, batch_size=32, lr=1e-2, warmup_steps=5, lr_schedule="cosine", ema_decay=0.9,
              grad_clip=1.0, grad_accum=2, checkpoint_every=10, keep_last=2, log_every=5, device="cpu",
              loss_generator="per_sample", seed=3)


class TinyNet(nn.Module):
    """``net(x, t, cond) -> eps_hat`` for 2-D states."""

    def __init__(self, dim: int = 2, hidden: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim + 1, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, t: Tensor, cond: object = None) -> Tensor:
        return self.body(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def build_model() -> Denoiser:
    torch.manual_seed(0)
    return Denoiser(TinyNet(), make_process("vp"), prediction="eps")


def eps_loss(model, x0: Tensor, cond: object, generator: Generator) -> Tensor:
    """Per-sample eps-prediction MSE at a uniformly drawn time."""
    t = 1e-3 + (1 - 1e-3) * rand((x0.shape[0],), generator, device=x0.device)
    noise = randn_like(x0, generator)
    x_t = model.process.perturb(x0, t, noise)
    return ((model.native(x_t, t, cond) - noise) ** 2).mean(dim=1)


def make_data(n: int = 256) -> Tensor:
    g = make_generator(1)
    return torch.randn(n, 2, generator=g) * torch.tensor([1.0, 0.3]) + torch.tensor([0.5, -1.0])


def train(checkpoint_dir: str | Path | None = None) -> Trainer:
    cfg = TrainConfig(**CONFIG)
    trainer = Trainer(build_model(), eps_loss, tensor_batch_fn(make_data(), cfg.batch_size), cfg,
                      checkpoint_dir=checkpoint_dir, progress=False)
    trainer.fit()
    return trainer


def weights(trainer: Trainer) -> dict[str, Tensor]:
    """Model and EMA tensors, prefixed ``model.`` / ``ema.``."""
    out = {f"model.{k}": v.detach().clone() for k, v in trainer.module.state_dict().items()}
    out.update({f"ema.{k}": v.detach().clone() for k, v in trainer.ema.shadow.items()})
    return out


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    trainer = train(argv[2] if len(argv) > 2 else None)
    if trainer.dist.is_main:
        save_file(weights(trainer), argv[1])
    cleanup_distributed(sync=True)


if __name__ == "__main__":
    main(sys.argv)
