"""Seeds: one root seed per run, child seeds derived by purpose, per-sample generators.

``derive_seed(root, "sample", k)`` is stable across Python versions and machines (BLAKE2 of the
parts). :class:`PerSampleGenerator` holds one ``torch.Generator`` per sample so that sample *k*
gets the same noise whatever the batch size (the EDM ``StackedRandomGenerator`` idea).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.types import State, StateDict


def derive_seed(root: int, *purpose: Any) -> int:
    """A 63-bit child seed of ``root`` for a purpose such as ``("sample", 3)``."""
    text = "/".join([str(int(root))] + [str(p) for p in purpose])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


class PerSampleGenerator:
    """One generator per sample; draws are stacked along the batch dimension."""

    def __init__(self, seeds: Sequence[int], device: str | torch.device = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.device = torch.device(device)
        self.generators = [make_generator(s, self.device) for s in self.seeds]

    @classmethod
    def for_samples(cls, root: int, indices: Sequence[int], device: str | torch.device = "cpu",
                    purpose: str = "sample") -> PerSampleGenerator:
        return cls([derive_seed(root, purpose, int(k)) for k in indices], device)

    def __len__(self) -> int:
        return len(self.generators)

    def randn(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        if shape[0] != len(self.generators):
            raise ValueError(f"batch {shape[0]} != {len(self.generators)} per-sample generators")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, device=self.device, dtype=dtype)
                            for g in self.generators])

    def rand(self, shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
        return torch.stack([torch.rand(tuple(shape[1:]), generator=g, device=self.device, dtype=dtype)
                            for g in self.generators])

    def get_state(self) -> list[Tensor]:
        return [g.get_state() for g in self.generators]

    def set_state(self, states: list[Tensor]) -> None:
        for g, s in zip(self.generators, states, strict=True):
            g.set_state(s)


Generator = torch.Generator | PerSampleGenerator | None


def randn(shape: Sequence[int], generator: Generator = None, *, device: Any = "cpu",
          dtype: torch.dtype = torch.float32) -> Tensor:
    if isinstance(generator, PerSampleGenerator):
        return generator.randn(shape, dtype=dtype).to(device)
    if generator is not None and torch.device(device).type != generator.device.type:
        return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def rand(shape: Sequence[int], generator: Generator = None, *, device: Any = "cpu",
         dtype: torch.dtype = torch.float32) -> Tensor:
    if isinstance(generator, PerSampleGenerator):
        return generator.rand(shape, dtype=dtype).to(device)
    if generator is not None and torch.device(device).type != generator.device.type:
        return torch.rand(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
    return torch.rand(tuple(shape), generator=generator, device=device, dtype=dtype)


def randn_like(x: State, generator: Generator = None) -> State:
    """Standard normal noise with the structure, shape, dtype and device of ``x``.

    Dict states draw fields in sorted-key order so the result is independent of insertion order.
    """
    if isinstance(x, Mapping):
        return StateDict({k: randn(x[k].shape, generator, device=x[k].device, dtype=x[k].dtype)
                          for k in sorted(x)})
    return randn(x.shape, generator, device=x.device, dtype=x.dtype)


def seed_everything(seed: int) -> None:
    """Seed the global RNGs (only for third-party code that uses them; library code never does)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Global RNG state, for exact checkpoint resume."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state
