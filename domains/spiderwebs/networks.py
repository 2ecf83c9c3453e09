"""Model-1 networks: core MLP / 1-D UNet over the ``[10, L]`` sparse state, conditioned on the design
vector, with classifier-free-guidance training dropout and a guided denoiser for sampling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from core.networks import MLPDenoiserNet
from core.samplers.guidance import ClassifierFreeGuidance


class CondDropout(nn.Module):
    """Drops ``cond["vector"]`` for a random fraction ``p`` of the batch while training (CFG training).

    The draw uses the global torch RNG, like ``nn.Dropout`` (the trainer seeds and checkpoints it).
    """

    def __init__(self, net: nn.Module, p: float) -> None:
        super().__init__()
        self.net, self.p = net, float(p)

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        if self.training and self.p > 0 and cond is not None and "drop" not in cond:
            cond = {**cond, "drop": torch.rand(x.shape[0], device=x.device) < self.p}
        return self.net(x, t, cond)


class GuidedDenoiser(nn.Module):
    """A denoiser with classifier-free guidance of scale ``w`` (keeps ``.process`` for the samplers)."""

    def __init__(self, denoiser: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner = denoiser
        self.process = denoiser.process  # type: ignore[attr-defined]
        self.guided = ClassifierFreeGuidance(denoiser, scale)

    def forward(self, x: Tensor, t: Tensor, cond: Mapping[str, Any] | None = None) -> Tensor:
        return self.guided(x, t, cond)  # type: ignore[return-value]


def build(kind: str, channels: int, length: int, cond_dim: int, net_cfg: Any) -> nn.Module:
    if kind == "mlp":
        net: nn.Module = MLPDenoiserNet(channels * length, hidden=net_cfg.hidden, depth=net_cfg.depth,
                                        emb_dim=net_cfg.emb_dim, cond_vector_dim=cond_dim)
    else:
        from core.networks.unet import UNet

        net = UNet(1, channels, channels, base_channels=net_cfg.base_channels,
                   channel_mults=tuple(net_cfg.channel_mults), cond_vector_dim=cond_dim, emb_dim=net_cfg.emb_dim)
    return CondDropout(net, net_cfg.cond_drop)
