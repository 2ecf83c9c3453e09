"""Model-1 networks over the sparse state ``[C, L]`` (one column per node row), conditioned on the
design vector, with classifier-free-guidance training dropout and a guided denoiser for sampling.

``kind``: ``transformer`` (default) — one token per node row (its C state values + a learned
embedding of the row number, which carries the patch's growth order), adaptive-LayerNorm blocks
(self-attention and MLP, each modulated and gated by the noise-level + design-vector embedding), a
zero-initialised output head; ``mlp`` — core's residual MLP over the flattened state (the paper's
first model is a flat network of this kind); ``unet`` — core's 1-D UNet along the node axis."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from core.networks import MLPDenoiserNet
from core.networks.embeddings import TimeConditioning, batch_time, check_cond
from core.samplers.guidance import ClassifierFreeGuidance
from core.types import batch_size


class CondDropout(nn.Module):
    """Drops ``cond["vector"]`` for a random fraction ``p`` of the batch while training (CFG training).

    The draw uses the global torch RNG, like ``nn.Dropout`` (the trainer seeds and checkpoints it).
    """

    def __init__(self, net: nn.Module, p: float) -> None:
        super().__init__()
        self.net, self.p = net, float(p)

    def forward(self, x: Any, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Any:
        if self.training and self.p > 0 and cond is not None and "drop" not in cond:
            n, device = batch_size(x), cond["vector"].device
            cond = {**cond, "drop": torch.rand(n, device=device) < self.p}
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


class AdaBlock(nn.Module):
    """Pre-norm transformer block whose LayerNorms take scale/shift/gate from the conditioning embedding."""

    def __init__(self, dim: int, heads: int, emb_dim: int) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim, elementwise_affine=False), nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, dim))
        self.mod = nn.Linear(emb_dim, 6 * dim)
        nn.init.zeros_(self.mod.weight)
        nn.init.zeros_(self.mod.bias)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        s1, b1, g1, s2, b2, g2 = self.mod(torch.nn.functional.silu(emb))[:, None].chunk(6, dim=-1)
        z = self.n1(h) * (1 + s1) + b1
        h = h + (1 + g1) * self.attn(z, z, z, need_weights=False)[0]
        z = self.n2(h) * (1 + s2) + b2
        return h + (1 + g2) * self.mlp(z)


class NodeTransformer(nn.Module):
    """``forward(x [B, C, L], t, cond) -> [B, C, L]``: a conditioned transformer over the L node rows."""

    def __init__(self, channels: int, length: int, cond_dim: int, dim: int = 128, depth: int = 4,
                 heads: int = 4, emb_dim: int = 128) -> None:
        super().__init__()
        self.channels, self.length = channels, length
        self.time = TimeConditioning(emb_dim, cond_dim)
        self.inp = nn.Linear(channels, dim)
        self.row = nn.Parameter(torch.randn(length, dim) * 0.02)
        self.blocks = nn.ModuleList(AdaBlock(dim, heads, emb_dim) for _ in range(depth))
        self.out_norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        check_cond(cond, self.time.cond_keys)
        if x.shape[1:] != (self.channels, self.length):
            raise ValueError(f"expected states [B, {self.channels}, {self.length}], got {tuple(x.shape)}")
        emb = self.time(batch_time(t, x.shape[0], x.device), cond)
        h = self.inp(x.transpose(1, 2)) + self.row
        for block in self.blocks:
            h = block(h, emb)
        return self.out(torch.nn.functional.silu(self.out_norm(h))).transpose(1, 2)


def build(kind: str, channels: int, length: int, cond_dim: int, net_cfg: Any) -> nn.Module:
    if kind == "transformer":
        net: nn.Module = NodeTransformer(channels, length, cond_dim, dim=net_cfg.hidden, depth=net_cfg.depth,
                                         heads=net_cfg.heads, emb_dim=net_cfg.emb_dim)
    elif kind == "mlp":
        net = MLPDenoiserNet(channels * length, hidden=net_cfg.hidden, depth=net_cfg.depth,
                                        emb_dim=net_cfg.emb_dim, cond_vector_dim=cond_dim)
    else:
        from core.networks.unet import UNet

        net = UNet(1, channels, channels, base_channels=net_cfg.base_channels,
                   channel_mults=tuple(net_cfg.channel_mults), cond_vector_dim=cond_dim, emb_dim=net_cfg.emb_dim)
    return CondDropout(net, net_cfg.cond_drop)
