"""The graph state space: ``{"x": [B,N,F], "adj": [B,N,N]}`` with node masks and symmetric adjacency.

One code path for both fields: each field has a *structure mask* built from the node mask
``cond["mask"]`` (``m_i`` for X, ``m_i m_j (1 - δ_ij)`` for A), noise and states are multiplied by
it, and the adjacency field is additionally symmetrised (noise as ``z_ij = z_ji`` with unit
variance, zero diagonal). ``reduce`` is the masked mean over both fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from core.samplers import EuclideanSpace
from core.seeding import Generator, randn_like
from core.types import State, StateDict, batch_sum

#: fields whose last two dimensions form a symmetric node × node matrix
SYMMETRIC_FIELDS = ("adj",)


def node_mask(cond: Any) -> Tensor:
    if not isinstance(cond, Mapping) or "mask" not in cond:
        raise KeyError("the graph space needs cond['mask'] ([B, N], 1 = real node); pass it from the data")
    return cond["mask"]


def structure_masks(x: State, mask: Tensor) -> StateDict:
    """Per-field masks broadcastable to the field: ``m_i`` for node fields, ``m_i m_j (1-δ_ij)`` for pairs."""
    if not isinstance(x, Mapping):
        raise TypeError("graph states are dicts {'x': [B,N,F], 'adj': [B,N,N]}")
    out = {}
    for k, v in x.items():
        m = mask.to(v.dtype)
        if k in SYMMETRIC_FIELDS:
            eye = torch.eye(m.shape[1], dtype=v.dtype, device=v.device)
            out[k] = m[:, :, None] * m[:, None, :] * (1.0 - eye)
        else:
            out[k] = m.reshape(*m.shape, *([1] * (v.ndim - 2)))
    return StateDict(out)


def symmetrize(a: Tensor) -> Tensor:
    return 0.5 * (a + a.transpose(-1, -2))


def symmetric_noise(z: Tensor) -> Tensor:
    """Unit-variance symmetric noise from i.i.d. noise: the strict upper triangle mirrored."""
    up = torch.triu(z, diagonal=1)
    return up + up.transpose(-1, -2)


class GraphSpace(EuclideanSpace):
    def noise_like(self, x: State, generator: Generator = None, cond: Any = None) -> State:
        z = randn_like(x, generator)
        z = StateDict({k: symmetric_noise(v) if k in SYMMETRIC_FIELDS else v for k, v in z.items()})
        return z * structure_masks(x, node_mask(cond))

    def project(self, x: State, t: Tensor | None = None, cond: Any = None) -> State:
        x = StateDict({k: symmetrize(v) if k in SYMMETRIC_FIELDS else v for k, v in x.items()})
        return x * structure_masks(x, node_mask(cond))

    def reduce(self, err: State, cond: Any = None) -> Tensor:
        masks = structure_masks(err, node_mask(cond))
        count = batch_sum(StateDict({k: m.expand_as(err[k]) for k, m in masks.items()}))
        return batch_sum(err * masks) / count.clamp_min(1.0)


def quantize_adj(adj: Tensor, threshold: float = 0.5) -> Tensor:
    """GDSS quantisation of a generic-graph adjacency: ``1`` where ``a > threshold``, else ``0``."""
    return (adj > threshold).to(adj.dtype)
