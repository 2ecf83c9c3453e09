"""A residual MLP for flat states (toy 2-D data, low-dimensional physics states).

Architecture: ``x -> Linear -> depth x [h + W2 silu(W1 silu(FiLM(LN(h))))] -> LN -> silu -> Linear``.
The noise level (and any vector/label conditioning) enters every block as a FiLM scale and shift of
the normalised activations, ``LN(h) * (1 + scale) + shift``, which lets the whole residual stream
change with ``t`` (a purely additive embedding can only shift it). The output layer is zero-initialised
so the untrained network predicts 0, a neutral start for every parameterisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from core.networks.embeddings import TimeConditioning, TimeEmbeddingKind, batch_time, check_cond


class MLPBlock(nn.Module):
    """Pre-norm residual block with FiLM time conditioning."""

    def __init__(self, hidden: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)  # FiLM supplies the affine part
        self.film = nn.Linear(emb_dim, 2 * hidden)
        self.fc1, self.fc2 = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.film(F.silu(emb)).chunk(2, dim=-1)
        z = self.norm(h) * (1 + scale) + shift
        return h + self.fc2(F.silu(self.fc1(F.silu(z))))


class MLPDenoiserNet(nn.Module):
    """``forward(x, t, cond) -> same shape as x`` for states ``[B, dim]`` or ``[B, *shape]`` with
    ``prod(shape) == dim`` (flattened in, reshaped back out)."""

    def __init__(self, dim: int, hidden: int = 256, depth: int = 4, emb_dim: int = 128,
                 cond_vector_dim: int | None = None, num_classes: int | None = None,
                 time_embedding: TimeEmbeddingKind = "sinusoidal") -> None:
        super().__init__()
        self.dim = int(dim)
        self.time = TimeConditioning(emb_dim, cond_vector_dim, num_classes, kind=time_embedding)
        self.inp = nn.Linear(self.dim, hidden)
        self.blocks = nn.ModuleList(MLPBlock(hidden, emb_dim) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, self.dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        check_cond(cond, self.time.cond_keys)
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.dim:
            raise ValueError(f"expected {self.dim} features per sample, got shape {tuple(x.shape)} "
                             f"({math.prod(x.shape[1:])} features)")
        emb = self.time(batch_time(t, x.shape[0], x.device), cond)
        h = self.inp(flat)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(F.silu(self.out_norm(h))).reshape(x.shape)
