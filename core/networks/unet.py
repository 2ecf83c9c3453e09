"""A U-Net for 1-D, 2-D and 3-D fields (``[B,C,L]``, ``[B,C,H,W]``, ``[B,C,D,H,W]``).

One code path serves every rank: the only rank-specific choice is the convolution class, picked by
``dims`` in :func:`conv_nd`; norms, attention (over flattened positions), resampling and padding
are written rank-free.

Architecture (DDPM/ADM style)::

    [x, cond channels] -> conv -> per level: res blocks (+attn) -> skip, strided-conv down
                       -> middle: res, (attn), res
                       -> per level, coarse to fine: nearest-up + conv, concat skip, res blocks (+attn)
                       -> GroupNorm, SiLU, zero-initialised conv

Residual blocks are modulated by the time/conditioning embedding through FiLM,
``GN(h) * (1 + scale) + shift``. Inputs whose sizes are not multiples of ``2^(levels-1)`` are
padded at the end of each spatial axis and the output is cropped back, so any size works.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.networks.embeddings import (
    TimeConditioning,
    TimeEmbeddingKind,
    batch_time,
    check_cond,
    cond_channels,
)
from core.tensor_utils import append_dims

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
PadMode = Literal["reflect", "replicate", "constant"]


def conv_nd(dims: int, in_ch: int, out_ch: int, kernel: int, **kwargs: Any) -> nn.Module:
    """A ``dims``-dimensional convolution (the one place the spatial rank matters)."""
    if dims not in _CONV:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims}")
    return _CONV[dims](in_ch, out_ch, kernel, **kwargs)


def num_groups(channels: int, max_groups: int = 32) -> int:
    """The largest group count <= ``max_groups`` that divides ``channels``."""
    return max(g for g in range(1, min(max_groups, channels) + 1) if channels % g == 0)


def group_norm(channels: int, max_groups: int = 32) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups(channels, max_groups), channels)


class ResBlock(nn.Module):
    """``skip(x) + conv(drop(silu(FiLM(GN(conv(silu(GN(x))))))))`` with FiLM from the embedding."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, emb_dim: int, dropout: float = 0.0,
                 norm_groups: int = 32) -> None:
        super().__init__()
        self.norm1, self.norm2 = group_norm(in_ch, norm_groups), group_norm(out_ch, norm_groups)
        self.conv1 = conv_nd(dims, in_ch, out_ch, 3, padding=1)
        self.conv2 = conv_nd(dims, out_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.dropout = nn.Dropout(dropout)
        self.skip = conv_nd(dims, in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=1)
        h = self.norm2(h) * (1 + append_dims(scale, h.ndim)) + append_dims(shift, h.ndim)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all spatial positions (flattened), residual, pre-norm."""

    def __init__(self, dims: int, channels: int, num_heads: int, norm_groups: int = 32) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the channel count {channels}")
        self.heads = num_heads
        self.norm = group_norm(channels, norm_groups)
        self.qkv = conv_nd(dims, channels, 3 * channels, 1)
        self.proj = conv_nd(dims, channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c = x.shape[:2]
        qkv = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, -1)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each [B, heads, N, c/heads]
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(x.shape))


class Downsample(nn.Module):
    """Halve every spatial size with a stride-2 3^d convolution."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double every spatial size: nearest-neighbour repeat, then a 3^d convolution (no checkerboard)."""

    def __init__(self, dims: int, channels: int) -> None:
        super().__init__()
        self.conv = conv_nd(dims, channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Module):
    """``n`` residual blocks at one resolution, each followed by self-attention if ``attention``."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, n: int, emb_dim: int, dropout: float,
                 attention: bool, num_heads: int, norm_groups: int = 32) -> None:
        super().__init__()
        self.res = nn.ModuleList(ResBlock(dims, in_ch if i == 0 else out_ch, out_ch, emb_dim, dropout,
                                          norm_groups) for i in range(n))
        self.attn = nn.ModuleList(SelfAttention(dims, out_ch, num_heads, norm_groups) if attention
                                  else nn.Identity() for _ in range(n))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        for res, attn in zip(self.res, self.attn, strict=True):
            h = attn(res(h, emb))
        return h


class UNet(nn.Module):
    """``forward(x, t, cond) -> [B, out_channels, *spatial]`` for ``dims``-dimensional fields.

    ``attention_levels`` are indices into ``channel_mults`` (0 = finest resolution); the middle block
    gets attention when the coarsest level is listed. GroupNorm uses the largest divisor of the channel
    count up to ``norm_groups``; with very few channels per group *and* few positions (tiny test nets,
    coarse levels of small inputs) the normalisation is ill-conditioned, so lower ``norm_groups`` there. ``cond_channels`` extra input channels come from
    ``cond["channels"]``; ``cond_vector_dim``/``num_classes`` enable ``cond["vector"]``/``["labels"]``.
    """

    def __init__(self, dims: int, in_channels: int, out_channels: int, base_channels: int = 32,
                 channel_mults: Sequence[int] = (1, 2, 2), num_res_blocks: int = 1,
                 attention_levels: Sequence[int] = (), num_heads: int = 4, dropout: float = 0.0,
                 cond_channels: int = 0, cond_vector_dim: int | None = None,
                 num_classes: int | None = None, emb_dim: int | None = None,
                 time_embedding: TimeEmbeddingKind = "sinusoidal", pad_mode: PadMode = "reflect",
                 norm_groups: int = 32) -> None:
        super().__init__()
        levels = len(channel_mults)
        if levels < 1 or num_res_blocks < 1:
            raise ValueError("need at least one level and one res block per level")
        bad = [i for i in attention_levels if not 0 <= i < levels]
        if bad:
            raise ValueError(f"attention_levels {bad} out of range for {levels} levels")
        self.dims, self.in_channels, self.out_channels = dims, in_channels, out_channels
        self.cond_channels, self.pad_mode, self.levels = cond_channels, pad_mode, levels
        emb_dim = emb_dim or 4 * base_channels
        chs = [base_channels * m for m in channel_mults]
        attn = {int(i) for i in attention_levels}

        def stage(in_ch: int, out_ch: int, level: int, n: int = num_res_blocks) -> Stage:
            return Stage(dims, in_ch, out_ch, n, emb_dim, dropout, level in attn, num_heads, norm_groups)

        self.time = TimeConditioning(emb_dim, cond_vector_dim, num_classes, kind=time_embedding)
        self.in_conv = conv_nd(dims, in_channels + cond_channels, chs[0], 3, padding=1)
        self.down = nn.ModuleList(stage(chs[max(i - 1, 0)], ch, i) for i, ch in enumerate(chs))
        self.downsample = nn.ModuleList(Downsample(dims, ch) for ch in chs[:-1])
        self.mid = stage(chs[-1], chs[-1], levels - 1, n=1)
        self.mid_out = ResBlock(dims, chs[-1], chs[-1], emb_dim, dropout, norm_groups)
        self.upsample = nn.ModuleList(Upsample(dims, ch) for ch in chs[1:])  # level i+1 -> i
        self.up = nn.ModuleList(  # coarsest first
            stage(chs[min(i + 1, levels - 1)] + chs[i], chs[i], i) for i in reversed(range(levels)))
        self.out_norm = group_norm(chs[0], norm_groups)
        self.out_conv = conv_nd(dims, chs[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.out_conv.weight)  # type: ignore[arg-type]
        nn.init.zeros_(self.out_conv.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        self._check_input(x, cond)
        if self.cond_channels:
            x = torch.cat([x, cond_channels(cond, x, self.cond_channels)], dim=1)
        spatial = x.shape[2:]
        emb = self.time(batch_time(t, x.shape[0], x.device), cond)
        h = self.in_conv(self._pad(x))
        skips = []
        for i, stage in enumerate(self.down):
            h = stage(h, emb)
            skips.append(h)
            if i < self.levels - 1:
                h = self.downsample[i](h)
        h = self.mid_out(self.mid(h, emb), emb)
        for j, stage in enumerate(self.up):
            i = self.levels - 1 - j
            if i < self.levels - 1:
                h = self.upsample[i](h)
            h = stage(torch.cat([h, skips[i]], dim=1), emb)
        out = self.out_conv(F.silu(self.out_norm(h)))
        return out[(..., *(slice(0, s) for s in spatial))]

    def _check_input(self, x: Tensor, cond: Mapping[str, Any] | None) -> None:
        if x.ndim != self.dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [B, {self.in_channels}, *{self.dims} spatial dims], "
                             f"got {tuple(x.shape)}")
        check_cond(cond, (*self.time.cond_keys, *(("channels",) if self.cond_channels else ())))

    def _pad(self, x: Tensor) -> Tensor:
        """Pad the end of each spatial axis up to a multiple of ``2^(levels-1)``.

        Reflection avoids an artificial edge; where an axis is too short to reflect (pad >= size) the
        edge value is replicated instead.
        """
        factor = 2 ** (self.levels - 1)
        pads = [(-s) % factor for s in x.shape[2:]]
        if not any(pads):
            return x
        mode = self.pad_mode
        if mode == "reflect" and any(p >= s for p, s in zip(pads, x.shape[2:], strict=True)):
            mode = "replicate"
        flat = [v for p in reversed(pads) for v in (0, p)]  # F.pad lists the last axis first
        return F.pad(x, flat, mode=mode)
