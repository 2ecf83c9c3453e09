"""The dense graph state space: dict states of node fields ``[B,N,...]`` and pair fields ``[B,N,N,...]``
with a node mask ``cond[mask_key]`` (``[B,N]``, 1 = real node) and symmetric pair fields.

One code path for every field: each field has a *structure mask* built from the node mask (``m_i``
for node fields, ``m_i m_j (1 - δ_ij)`` for pair fields); noise and projected states are multiplied
by it, and pair fields are symmetric in their node dimensions (noise ``z_ij = z_ji`` with unit
variance and a zero diagonal; projection ``(a + a^T) / 2``). ``reduce`` is the masked mean over all
fields.

>>> space = GraphSpace(pair_fields=("adj",))
>>> z = space.noise_like({"x": x, "adj": adj}, generator, {"mask": mask})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from core.samplers.spaces import EuclideanSpace
from core.seeding import Generator, randn_like
from core.types import State, StateDict, batch_sum


def symmetrize_pairs(a: Tensor) -> Tensor:
    """``(a + a^T) / 2`` over the node dimensions 1 and 2 of ``a [B,N,N,...]``."""
    return 0.5 * (a + a.transpose(1, 2))


def symmetric_noise(z: Tensor) -> Tensor:
    """Unit-variance symmetric noise over dims 1, 2 from i.i.d. ``z [B,N,N,...]``: the strict upper
    triangle mirrored (zero diagonal)."""
    n = z.shape[1]
    up = torch.triu(torch.ones(n, n, dtype=z.dtype, device=z.device), diagonal=1)
    up = up.reshape(1, n, n, *([1] * (z.ndim - 3)))
    zu = z * up
    return zu + zu.transpose(1, 2)


class GraphSpace(EuclideanSpace):
    """State space of padded dense graphs; ``pair_fields`` name the ``[B,N,N,...]`` fields, every
    other field is a node field ``[B,N,...]``."""

    def __init__(self, pair_fields: tuple[str, ...] = ("adj",), mask_key: str = "mask") -> None:
        self.pair_fields, self.mask_key = tuple(pair_fields), mask_key

    def node_mask(self, cond: Any) -> Tensor:
        if not isinstance(cond, Mapping) or self.mask_key not in cond:
            raise KeyError(f"the graph space needs cond[{self.mask_key!r}] ([B, N], 1 = real node); pass the node "
                           "mask with the data / sample conditioning")
        return cond[self.mask_key]

    def structure_masks(self, x: State, mask: Tensor) -> StateDict:
        """Per-field masks broadcastable to each field (see the module docstring)."""
        if not isinstance(x, Mapping):
            raise TypeError(f"graph states are dicts of tensors (pair fields {self.pair_fields}), got {type(x)}")
        out = {}
        for k, v in x.items():
            m = mask.to(v.dtype)
            if k in self.pair_fields:
                if v.ndim < 3 or v.shape[1] != v.shape[2]:
                    raise ValueError(f"pair field {k!r} must be [B,N,N,...], got shape {tuple(v.shape)}")
                eye = torch.eye(m.shape[1], dtype=v.dtype, device=v.device)
                pm = m[:, :, None] * m[:, None, :] * (1.0 - eye)
                out[k] = pm.reshape(*pm.shape, *([1] * (v.ndim - 3)))
            else:
                out[k] = m.reshape(*m.shape, *([1] * (v.ndim - 2)))
        return StateDict(out)

    def noise_like(self, x: State, generator: Generator = None, cond: Any = None) -> State:
        z = randn_like(x, generator)
        assert isinstance(z, Mapping), "GraphSpace states are dicts of fields"
        z = StateDict({k: symmetric_noise(v) if k in self.pair_fields else v for k, v in z.items()})
        return z * self.structure_masks(x, self.node_mask(cond))

    def project(self, x: State, t: Tensor | None = None, cond: Any = None) -> State:
        masks = self.structure_masks(x, self.node_mask(cond))
        assert isinstance(x, Mapping), "GraphSpace states are dicts of fields"
        x = StateDict({k: symmetrize_pairs(v) if k in self.pair_fields else v for k, v in x.items()})
        return x * masks

    def reduce(self, err: State, cond: Any = None) -> Tensor:
        masks = self.structure_masks(err, self.node_mask(cond))
        count = batch_sum(StateDict({k: m.expand_as(err[k]) for k, m in masks.items()}))
        return batch_sum(err * masks) / count.clamp_min(1.0)


__all__ = ["GraphSpace", "symmetric_noise", "symmetrize_pairs"]
