"""Exponential moving average (EMA) of model weights.

After every optimizer update, each floating-point entry of the model's ``state_dict`` (parameters
and buffers) is averaged into a shadow copy:

    shadow <- d * shadow + (1 - d) * value,   d = min(decay, (1 + n) / (10 + n)) with warm-up, else decay

where ``n`` is the number of updates done so far. Integer buffers (counters) are copied. The shadow
is saved next to the model (``ema.safetensors``) and swapped in for evaluation with
:meth:`EMA.swapped`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn


class EMA:
    """A shadow copy of ``model.state_dict()`` updated as an exponential moving average."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.shadow: dict[str, Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` applies."""
        if not self.warmup:
            return self.decay
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Average the current weights of ``model`` (the unwrapped module) into the shadow."""
        d = self.current_decay()
        for name, value in model.state_dict().items():
            s = self.shadow[name]
            if s.is_floating_point():
                s.mul_(d).add_(value.detach().to(s.dtype), alpha=1.0 - d)
            else:
                s.copy_(value)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the EMA weights into ``model`` (overwrites its weights)."""
        model.load_state_dict(self.shadow)

    @contextmanager
    def swapped(self, model: nn.Module) -> Iterator[nn.Module]:
        """Temporarily put the EMA weights into ``model`` (e.g. for evaluation); restored on exit."""
        backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.copy_to(model)
        try:
            yield model
        finally:
            with torch.no_grad():
                model.load_state_dict(backup)

    def to(self, device: torch.device | str) -> EMA:
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}
        return self

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the shadow (copied into the existing tensors, keeping their device) and the update
        count; ``decay`` and ``warmup`` stay as constructed (the current config decides them)."""
        shadow = state["shadow"]
        missing, extra = set(self.shadow) - set(shadow), set(shadow) - set(self.shadow)
        if missing or extra:
            raise KeyError(f"EMA state mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}")
        with torch.no_grad():
            for k, v in shadow.items():
                self.shadow[k].copy_(v)
        self.num_updates = int(state["num_updates"])
