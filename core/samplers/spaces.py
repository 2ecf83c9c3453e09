"""State spaces: where noise comes from and what a valid state is.

A sampler never knows about masks, symmetry or known values: it asks the space for noise
(``noise_like``), projects every new state (``project``) and reduces errors (``reduce``). Domains
subclass :class:`EuclideanSpace` (graphs: symmetric adjacency noise and node masks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from core.processes.base import ForwardProcess
from core.seeding import Generator, randn_like
from core.tensor_utils import bcast
from core.types import State, StateDict, batch_sum, tree_map


class EuclideanSpace:
    """Unconstrained states: i.i.d. Gaussian noise, identity projection, mean reduction."""

    def noise_like(self, x: State, generator: Generator = None, cond: Any = None) -> State:
        return randn_like(x, generator)

    def project(self, x: State, t: Tensor | None = None, cond: Any = None) -> State:
        return x

    def loss_residual(self, diff: State, cond: Any = None) -> State:
        """The residual a loss squares, from ``prediction - target`` in the state: the identity here.

        A space whose state is a linear transform of the quantity that matters (wavelet coefficients
        of a field, say) can map the residual back, so the loss is measured where the error counts.
        """
        return diff

    def reduce(self, err: State, cond: Any = None) -> Tensor:
        """Mean of a per-element error over every non-batch element: ``[B]``."""
        total = batch_sum(err)
        count = sum(v[0].numel() for v in (err.values() if isinstance(err, Mapping) else [err]))
        return total / count


class MaskedSpace(EuclideanSpace):
    """Padded states: ``cond[mask_key]`` holds a mask with the state's structure (1 = real element).

    Noise and projected states are zero outside the mask; ``reduce`` is a masked mean.
    """

    def __init__(self, mask_key: str = "mask") -> None:
        self.mask_key = mask_key

    def _mask(self, x: State, cond: Any) -> State:
        if cond is None or self.mask_key not in cond:
            raise KeyError(f"MaskedSpace needs cond[{self.mask_key!r}] holding the padding mask")
        return tree_map(lambda v, m: m.to(v.dtype).expand_as(v), x, cond[self.mask_key])

    def noise_like(self, x: State, generator: Generator = None, cond: Any = None) -> State:
        return randn_like(x, generator) * self._mask(x, cond)

    def project(self, x: State, t: Tensor | None = None, cond: Any = None) -> State:
        return x * self._mask(x, cond)

    def reduce(self, err: State, cond: Any = None) -> Tensor:
        mask = self._mask(err, cond)
        return batch_sum(err * mask) / batch_sum(mask).clamp_min(1.0)


class InpaintingSpace(EuclideanSpace):
    """Replacement conditioning: where ``mask`` is 1 the state is ``known`` (re-noised to time ``t``).

    Forecasting (known past frames) and segmentation-style completion use this: after each step the
    known part is replaced by ``alpha(t) known + sigma(t) z``; at ``t = 0`` (the final projection) it
    is exactly ``known``.
    """

    def __init__(self, process: ForwardProcess, known: State, mask: State, base: EuclideanSpace | None = None,
                 generator: Generator = None) -> None:
        self.process, self.known, self.mask = process, known, mask
        self.base = base or EuclideanSpace()
        self.generator = generator

    def noise_like(self, x: State, generator: Generator = None, cond: Any = None) -> State:
        return self.base.noise_like(x, generator, cond)

    def project(self, x: State, t: Tensor | None = None, cond: Any = None) -> State:
        x = self.base.project(x, t, cond)
        mask = tree_map(lambda v, m: m.to(v.dtype).expand_as(v), x, self.mask)
        if t is None or bool((t <= 0).all()):
            known_t = self.known
        else:
            known_t = self.process.perturb(self.known, t, self.base.noise_like(self.known, self.generator, cond))
        return mask * known_t + (1.0 - mask) * x

    def loss_residual(self, diff: State, cond: Any = None) -> State:
        return self.base.loss_residual(diff, cond)

    def reduce(self, err: State, cond: Any = None) -> Tensor:
        return self.base.reduce(err, cond)


def cmap(fn: Any, c: Any) -> Any:
    """Apply ``fn`` to a per-sample coefficient or to each entry of a dict of them."""
    if isinstance(c, Mapping):
        return StateDict({k: fn(v) for k, v in c.items()})
    return fn(c)


def per_sample_norm(x: State) -> Any:
    """Per-sample L2 norm ``[B]`` (a dict of them for dict states)."""
    if isinstance(x, Mapping):
        return StateDict({k: v.reshape(v.shape[0], -1).norm(dim=1) for k, v in x.items()})
    return x.reshape(x.shape[0], -1).norm(dim=1)


__all__ = ["EuclideanSpace", "InpaintingSpace", "MaskedSpace", "bcast", "cmap", "per_sample_norm"]
