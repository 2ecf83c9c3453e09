"""Noise-level embeddings and the conditioning interface shared by every network.

A network is called as ``net(x, t, cond)``. ``t`` is a float ``[B]`` tensor (or a scalar): diffusion
time in ``[0, 1]``, or EDM's ``c_noise = ln(sigma) / 4`` under EDM preconditioning. Both are small
numbers, so the sinusoidal embedding multiplies ``t`` by ``input_scale`` (1000, the DDPM step range)
before applying its geometric ladder of frequencies.

``cond`` is ``None`` (fully unconditional) or a dict with optional keys

============  ========================  ==================================================
``vector``    float ``[B, D]``          global conditioning vector (learned projection)
``labels``    long ``[B]``              class labels in ``[0, num_classes)``
``channels``  float ``[B, C, *spatial]``  per-position fields, concatenated to ``x`` (U-Net)
``drop``      bool ``[B]``              True = unconditional for that sample (CFG dropout)
============  ========================  ==================================================

A dropped (or missing) vector/label is replaced by a learned null embedding and dropped channels by
zeros, so ``drop=True`` gives exactly the output of ``cond=None``: one network serves both terms of
classifier-free guidance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from core.registry import UnknownNameError

COND_KEYS: tuple[str, ...] = ("vector", "labels", "channels", "drop")
TimeEmbeddingKind = Literal["sinusoidal", "fourier"]


def check_cond(cond: Mapping[str, Any] | None, supported: Iterable[str]) -> None:
    """Reject network conditioning the network was not built for (never ignore it silently).

    Keys outside :data:`COND_KEYS` belong to other components (a state space's ``mask``, a
    domain's known values) and are left alone.
    """
    if cond is None:
        return
    if not isinstance(cond, Mapping):
        raise TypeError(f"cond must be None or a dict, got {type(cond).__name__}")
    unsupported = sorted(k for k in cond if k in COND_KEYS and k != "drop" and k not in set(supported))
    if unsupported:
        raise ValueError(f"this network was built without {unsupported} conditioning")


def batch_time(t: Tensor | float, batch: int, device: torch.device) -> Tensor:
    """``t`` as a float ``[B]`` tensor (a scalar or ``[1]`` is broadcast over the batch)."""
    t = torch.as_tensor(t, device=device)
    if not t.is_floating_point():
        t = t.float()
    t = t.reshape(-1)
    if t.shape[0] == 1 and batch != 1:
        t = t.expand(batch)
    if t.shape[0] != batch:
        raise ValueError(f"t has {t.shape[0]} entries for a batch of {batch}")
    return t


def keep_mask(cond: Mapping[str, Any] | None, batch: int, device: torch.device) -> Tensor:
    """Bool ``[B]``: True where the conditioning of a sample is used (``~drop``; all False for None)."""
    if cond is None:
        return torch.zeros(batch, dtype=torch.bool, device=device)
    drop = cond.get("drop")
    if drop is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    drop = torch.as_tensor(drop, device=device).to(torch.bool).reshape(-1)
    if drop.shape[0] == 1 and batch != 1:
        drop = drop.expand(batch)
    if drop.shape[0] != batch:
        raise ValueError(f"cond['drop'] has {drop.shape[0]} entries for a batch of {batch}")
    return ~drop


def cond_channels(cond: Mapping[str, Any] | None, x: Tensor, n: int) -> Tensor:
    """``cond['channels']`` ``[B, n, *spatial]`` with dropped/missing samples set to zero."""
    keep = keep_mask(cond, x.shape[0], x.device)
    c = None if cond is None else cond.get("channels")
    if c is None:
        return x.new_zeros((x.shape[0], n, *x.shape[2:]))
    if c.shape != (x.shape[0], n, *x.shape[2:]):
        raise ValueError(f"cond['channels'] has shape {tuple(c.shape)}, expected {(x.shape[0], n, *x.shape[2:])}")
    return c.to(x) * keep.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))


class SinusoidalEmbedding(nn.Module):
    """Transformer-style features ``[cos(w_k s), sin(w_k s)]`` of ``s = input_scale * t``.

    The frequencies ``w_k = max_period^(-k / half)`` form a geometric ladder from 1 down to
    ``1 / max_period``, so both coarse and fine changes of the noise level are resolved.
    """

    freqs: Tensor

    def __init__(self, dim: int, max_period: float = 10_000.0, input_scale: float = 1000.0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding dim must be even and >= 2, got {dim}")
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim, self.input_scale = dim, float(input_scale)

    def forward(self, t: Tensor) -> Tensor:
        args = (t.float() * self.input_scale)[:, None] * self.freqs[None, :]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class FourierFeatures(nn.Module):
    """Random Fourier features ``[cos(2 pi W t), sin(2 pi W t)]`` with ``W ~ N(0, scale^2)``.

    ``W`` is fixed (a buffer) and drawn from a private generator seeded with ``seed``, so it does not
    depend on, or disturb, the global RNG (Tancik et al. 2020; NCSN++ uses ``scale = 16``).
    """

    weight: Tensor

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"embedding dim must be even and >= 2, got {dim}")
        gen = torch.Generator().manual_seed(int(seed))
        self.register_buffer("weight", torch.randn(dim // 2, generator=gen) * scale)
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        args = 2 * math.pi * t.float()[:, None] * self.weight[None, :]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


_FEATURES: dict[str, type[nn.Module]] = {"sinusoidal": SinusoidalEmbedding, "fourier": FourierFeatures}


class TimeConditioning(nn.Module):
    """``(t, cond) -> emb [B, dim]``: noise-level features, plus vector/label embeddings, through an MLP.

    ``emb = W2 silu(W1 phi(t) + P vector + E[label])``: the conditioning is added to the hidden layer,
    so the same vector that carries the noise level modulates every block (FiLM) downstream. Dropped
    or absent vectors/labels use learned null embeddings (a parameter and an extra label row).
    """

    def __init__(self, dim: int, cond_vector_dim: int | None = None, num_classes: int | None = None,
                 kind: TimeEmbeddingKind = "sinusoidal") -> None:
        super().__init__()
        if kind not in _FEATURES:
            raise UnknownNameError(f"unknown time embedding {kind!r}; valid choices: {', '.join(_FEATURES)}")
        feat_dim = max(2, dim + dim % 2)
        self.features = _FEATURES[kind](feat_dim)
        self.fc1, self.fc2 = nn.Linear(feat_dim, dim), nn.Linear(dim, dim)
        self.dim, self.num_classes = dim, num_classes
        self.vector_proj = nn.Linear(cond_vector_dim, dim) if cond_vector_dim else None
        self.null_vector = nn.Parameter(torch.zeros(dim)) if cond_vector_dim else None
        self.label_emb = nn.Embedding(num_classes + 1, dim) if num_classes else None  # last row = null

    @property
    def cond_keys(self) -> tuple[str, ...]:
        """The cond keys this module consumes."""
        return tuple(k for k, m in (("vector", self.vector_proj), ("labels", self.label_emb)) if m is not None)

    def forward(self, t: Tensor, cond: Mapping[str, Any] | None = None) -> Tensor:
        h = self.fc1(self.features(t).to(self.fc1.weight.dtype))
        keep = keep_mask(cond, t.shape[0], t.device)
        if self.vector_proj is not None:
            h = h + self._vector(cond, keep)
        if self.label_emb is not None:
            h = h + self._labels(cond, keep)
        return self.fc2(F.silu(h))

    def _vector(self, cond: Mapping[str, Any] | None, keep: Tensor) -> Tensor:
        null = self.null_vector.expand(keep.shape[0], -1)  # type: ignore[union-attr]
        v = None if cond is None else cond.get("vector")
        if v is None:
            return null
        proj = self.vector_proj(v.to(device=null.device, dtype=null.dtype))  # type: ignore[misc]
        return torch.where(keep[:, None], proj, null)

    def _labels(self, cond: Mapping[str, Any] | None, keep: Tensor) -> Tensor:
        null = torch.full_like(keep, self.num_classes, dtype=torch.long)  # type: ignore[arg-type]
        y = None if cond is None else cond.get("labels")
        idx = null if y is None else torch.where(keep, y.to(device=keep.device, dtype=torch.long).reshape(-1), null)
        return self.label_emb(idx)  # type: ignore[misc]
