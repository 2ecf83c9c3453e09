"""Data-parallel helpers for runs launched with ``torchrun``.

A run under ``torchrun`` sees ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its environment;
:func:`init_distributed` then starts the process group (NCCL on CUDA, Gloo on CPU). Every rank draws
the *same* global batch from the same seed and keeps a disjoint slice of it (:func:`shard_rows`), so a
run on ``W`` processes follows the single-process run with the same global batch. Only rank 0 writes
files; :func:`barrier` keeps the others from racing ahead of a checkpoint.

``DistributedDataParallel`` only synchronises gradients for calls that go through its ``forward``.
Losses call methods such as ``model.native(...)``; :class:`ModelProxy` routes those through
``forward`` so they are synchronised (and compiled) too.
"""

from __future__ import annotations

import inspect
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from core.types import State

_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly trivial) process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (``torch.distributed.run``) set this process's rank variables."""
    return all(k in os.environ for k in _ENV_KEYS)


def current_info() -> DistInfo:
    """The rank layout of the initialised process group (trivial when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return DistInfo()


def resolve_device(kind: str = "auto", info: DistInfo | None = None) -> torch.device:
    """``"auto"`` is CUDA when available, else CPU; under DDP each rank takes ``cuda:LOCAL_RANK``."""
    if kind not in ("auto", "cpu", "cuda"):
        raise ValueError(f"unknown device {kind!r}; valid choices: auto, cpu, cuda")
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device='cuda' requested but CUDA is not available")
    return torch.device("cuda", info.local_rank if info is not None else torch.cuda.current_device())


def init_distributed(device: str = "auto") -> DistInfo:
    """Start the process group when launched by ``torchrun`` (idempotent); a no-op otherwise."""
    if not dist.is_available():
        return DistInfo()
    if dist.is_initialized():
        return current_info()
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    on_cuda = resolve_device(device, info).type == "cuda"
    if on_cuda:
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend="nccl" if on_cuda else "gloo")
    return info


def cleanup_distributed(sync: bool = False) -> None:
    """Destroy the process group if one is running. ``sync``: wait for every rank first (on the success path:
    a rank that tears its group down while another is still finishing, e.g. rank 0 writing a file, can make
    gloo abort the other); never on an error path, where the other ranks may not arrive."""
    if dist.is_available() and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.is_distributed:
        dist.barrier()


def all_reduce_mean(x: Tensor, info: DistInfo) -> Tensor:
    """Mean of ``x`` over ranks (in place; returned for chaining)."""
    if info.is_distributed:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        x /= info.world_size
    return x


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """``[obj from rank 0, obj from rank 1, ...]`` (just ``[obj]`` without a process group)."""
    if not info.is_distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def rank_slice(n: int, info: DistInfo) -> slice:
    """The rows ``[rank * n / W, (rank + 1) * n / W)`` of a global batch of ``n`` rows."""
    if n % info.world_size:
        raise ValueError(f"global batch of {n} rows does not split over {info.world_size} ranks")
    per = n // info.world_size
    return slice(info.rank * per, (info.rank + 1) * per)


def slice_rows(x: Any, rows: slice, n: int) -> Any:
    """Slice a state, a tensor, or a dict's tensor entries with ``n`` leading rows; other values pass."""
    if isinstance(x, Tensor):
        return x[rows] if x.ndim and x.shape[0] == n else x
    if isinstance(x, dict):
        return type(x)({k: slice_rows(v, rows, n) for k, v in x.items()})
    return x


def shard_rows(x: State, info: DistInfo) -> State:
    """This rank's disjoint slice of a global batch."""
    n = _rows(x)
    return slice_rows(x, rank_slice(n, info), n)


def _rows(x: State) -> int:
    return (next(iter(x.values())) if isinstance(x, dict) else x).shape[0]


class _MethodDispatch(nn.Module):
    """``forward(*args, _method=name)`` calls ``inner.<name>(*args)``: lets DDP see every method call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: Any, _method: str = "forward", **kwargs: Any) -> Any:
        return getattr(self.inner, _method)(*args, **kwargs)


class ModelProxy:
    """What a loss sees when the model is wrapped (DDP and/or ``torch.compile``): ``model(...)`` and
    the inner module's own methods (``native``…) run through the wrapper's ``forward``; other
    attributes (``process``, submodules, ``parameters``…) come straight from the inner module."""

    def __init__(self, call: nn.Module, inner: nn.Module, ddp: DistributedDataParallel | None) -> None:
        self._call, self._inner, self._ddp = call, inner, ddp

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "forward":
            return self._call
        attr = getattr(self._inner, name)
        if inspect.ismethod(attr) and not name.startswith("_") and not hasattr(nn.Module, name):
            return lambda *args, **kwargs: self._call(*args, _method=name, **kwargs)
        return attr

    def no_sync(self) -> AbstractContextManager[Any]:
        """Skip DDP's gradient all-reduce (for all but the last gradient-accumulation micro-step)."""
        return self._ddp.no_sync() if self._ddp is not None else nullcontext()


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device,
               compile: bool = False) -> nn.Module | ModelProxy:
    """Wrap ``model`` (already on ``device``) in DDP when distributed and ``torch.compile`` when asked;
    a plain single-process model is returned unchanged."""
    if not info.is_distributed and not compile:
        return model
    call: nn.Module = _MethodDispatch(model)
    ddp = None
    if info.is_distributed:
        ids = [device.index] if device.type == "cuda" else None
        call = ddp = DistributedDataParallel(call, device_ids=ids)
    if compile:
        call = torch.compile(call)  # type: ignore[assignment]
    return ModelProxy(call, model, ddp)


def unwrap_model(model: Any) -> nn.Module:
    """The plain module inside DDP / ``torch.compile`` / :class:`ModelProxy` wrappers."""
    while True:
        if isinstance(model, ModelProxy):
            model = model._inner
        elif isinstance(model, DistributedDataParallel):
            model = model.module
        elif isinstance(model, _MethodDispatch):
            model = model.inner
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model
