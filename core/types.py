"""States: a tensor or a dict of named tensors that supports arithmetic.

Samplers and losses are written once with plain arithmetic (``a * x0 + s * eps``). When the state
is a :class:`StateDict` the arithmetic applies field by field, so graphs (``{"x", "adj"}``) and
volumes share every code path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor


class StateDict(dict):
    """A dict of named tensors with field-wise arithmetic.

    Operands may be another ``StateDict`` with the same keys (field by field), or a scalar/tensor
    applied to every field.
    """

    def _op(self, other: Any, fn: Callable[[Any, Any], Any]) -> StateDict:
        if isinstance(other, Mapping):
            if set(other.keys()) != set(self.keys()):
                raise KeyError(f"state fields differ: {sorted(self)} vs {sorted(other)}")
            return StateDict({k: fn(v, other[k]) for k, v in self.items()})
        return StateDict({k: fn(v, other) for k, v in self.items()})

    def __add__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: a + b)

    def __radd__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: b + a)

    def __sub__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: a - b)

    def __rsub__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: b - a)

    def __mul__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: a * b)

    def __rmul__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: b * a)

    def __truediv__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: a / b)

    def __rtruediv__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: b / a)

    def __pow__(self, o: Any) -> StateDict:
        return self._op(o, lambda a, b: a**b)

    def __neg__(self) -> StateDict:
        return StateDict({k: -v for k, v in self.items()})

    # dict defines __or__; keep the dict meaning.


State = Tensor | StateDict


def as_state(x: Tensor | Mapping[str, Tensor]) -> State:
    """Wrap a plain mapping of tensors into a :class:`StateDict`; tensors pass through."""
    if isinstance(x, (StateDict, Tensor)):
        return x
    if isinstance(x, Mapping):
        return StateDict(x)
    raise TypeError(f"a state is a tensor or a dict of tensors, got {type(x).__name__}")


def tree_map(fn: Callable[..., Tensor], x: State, *rest: Any) -> State:
    """Apply ``fn`` to a tensor, or to each field of a dict state (zipping ``rest`` by key)."""
    if isinstance(x, Mapping):
        return StateDict(
            {k: fn(v, *[r[k] if isinstance(r, Mapping) else r for r in rest]) for k, v in x.items()}
        )
    return fn(x, *rest)


def leaves(x: State) -> list[Tensor]:
    """The tensors of a state in a fixed (sorted-key) order."""
    if isinstance(x, Mapping):
        return [x[k] for k in sorted(x)]
    return [x]


def batch_size(x: State) -> int:
    return leaves(x)[0].shape[0]


def state_device(x: State) -> torch.device:
    return leaves(x)[0].device


def state_dtype(x: State) -> torch.dtype:
    return leaves(x)[0].dtype


def batch_sum(x: State) -> Tensor:
    """Sum over every non-batch dimension (and over fields): returns ``[B]``."""
    return sum(v.reshape(v.shape[0], -1).sum(1) for v in leaves(x))  # type: ignore[return-value]


def batch_dot(x: State, y: State) -> Tensor:
    return batch_sum(tree_map(lambda a, b: a * b, x, y))


def numel_per_sample(x: State) -> int:
    return sum(v[0].numel() for v in leaves(x))


def index_batch(x: State, idx: Tensor | slice) -> State:
    return tree_map(lambda v: v[idx], x)


def cat_batch(states: list[State]) -> State:
    first = states[0]
    if isinstance(first, Mapping):
        return StateDict({k: torch.cat([s[k] for s in states]) for k in first})  # type: ignore[index]
    return torch.cat(states)  # type: ignore[arg-type]


def check_finite(x: State, what: str) -> None:
    """Raise :class:`FloatingPointError` naming ``what`` (and the field) if a NaN/Inf is present."""
    items = x.items() if isinstance(x, Mapping) else [("", x)]
    for k, v in items:
        if not torch.isfinite(v).all():
            field = f"[{k!r}]" if k else ""
            n_bad = int((~torch.isfinite(v)).sum())
            raise FloatingPointError(f"{what}{field} has {n_bad} non-finite values (NaN/Inf)")
