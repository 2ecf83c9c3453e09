"""Broadcasting helpers: per-sample coefficients ``[B]`` against states of any rank."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from core.types import State, StateDict


def append_dims(x: Tensor, ndim: int) -> Tensor:
    """Append trailing singleton dimensions so ``x`` has ``ndim`` dimensions."""
    extra = ndim - x.ndim
    if extra < 0:
        raise ValueError(f"cannot broadcast a {x.ndim}-d tensor to {ndim} dims")
    return x[(...,) + (None,) * extra]


def bcast(coef: Tensor | Mapping[str, Tensor] | float, like: State) -> Tensor | StateDict | float:
    """Broadcast a per-sample coefficient (or a dict of them) against a state.

    ``coef`` is ``[B]`` (or a scalar) for tensor states; for dict states it is either one ``[B]``
    tensor shared by every field or a dict with one ``[B]`` tensor per field.
    """
    if isinstance(coef, float | int):
        return float(coef)
    if isinstance(like, Mapping):
        if isinstance(coef, Mapping):
            return StateDict({k: append_dims(coef[k].to(v.dtype), v.ndim) for k, v in like.items()})
        return StateDict({k: append_dims(coef.to(v.dtype), v.ndim) for k, v in like.items()})
    if isinstance(coef, Mapping):
        raise TypeError("per-field coefficients need a dict state")
    return append_dims(coef.to(like.dtype), like.ndim)
