"""Checkpoints: one directory per step, written atomically, loaded without unpickling code.

Layout under a root (usually ``runs/<domain>/<run-id>/checkpoints/``)::

    step_000100/  model.safetensors  ema.safetensors  optimizer.pt  scheduler.pt  rng.pt  meta.json
    latest        (a text file naming the newest complete step directory)

A checkpoint is written into a temporary sibling directory (``.tmp-…``) and renamed into place, and
``latest`` is replaced atomically afterwards, so a crash never leaves a half-written ``step_*``
directory and never damages an earlier checkpoint. The ``.pt`` files hold tensors and primitive
containers only and are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.optim import Optimizer

from core.training.ema import EMA

LATEST = "latest"
META = "meta.json"
_TMP_PREFIX = ".tmp-"
_STEP_RE = re.compile(r"^step_(\d+)$")


def step_dir_name(step: int) -> str:
    """``step_000100`` for step 100."""
    return f"step_{int(step):06d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if (m := _STEP_RE.match(p.name)) and (p / META).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(root: str | Path) -> Path | None:
    """The checkpoint ``latest`` names (or, if that is missing, the newest complete one); ``None``
    when ``root`` holds no checkpoint."""
    root = Path(root)
    pointer = root / LATEST
    if pointer.is_file():
        candidate = root / pointer.read_text().strip()
        if (candidate / META).is_file():
            return candidate
    found = list_checkpoints(root)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory itself, or the latest checkpoint under a root."""
    path = Path(path)
    if (path / META).is_file():
        return path
    found = latest_checkpoint(path)
    if found is None:
        raise FileNotFoundError(f"no checkpoint in {path}")
    return found


def read_meta(path: str | Path) -> dict[str, Any]:
    return json.loads((resolve_checkpoint(path) / META).read_text())


# ------------------------------------------------------------------------------------------ saving


def save_checkpoint(root: str | Path, step: int, *, model: nn.Module, optimizer: Optimizer | None = None,
                    scheduler: Any = None, ema: EMA | None = None, rng: Mapping[str, Any] | None = None,
                    meta: Mapping[str, Any] | None = None, keep_last: int | None = None) -> Path:
    """Write ``root/step_XXXXXX`` atomically, point ``latest`` at it and prune old checkpoints.

    ``model`` is the plain module (not a DDP/compile wrapper). ``meta`` must be JSON-serialisable;
    ``step`` is added to it. Returns the checkpoint directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-", dir=root))
    try:
        _write_files(tmp, step, model, optimizer, scheduler, ema, rng, meta)
        _replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)
    _atomic_write_text(root / LATEST, final.name + "\n")
    if keep_last is not None:
        prune_checkpoints(root, keep_last)
    return final


def _write_files(d: Path, step: int, model: nn.Module, optimizer: Optimizer | None, scheduler: Any,
                 ema: EMA | None, rng: Mapping[str, Any] | None, meta: Mapping[str, Any] | None) -> None:
    save_file(_plain_tensors(model.state_dict()), d / "model.safetensors", metadata={"format": "pt"})
    if ema is not None:
        save_file(_plain_tensors(ema.shadow), d / "ema.safetensors",
                  metadata={"format": "pt", "num_updates": str(ema.num_updates), "decay": str(ema.decay)})
    for name, obj in (("optimizer", optimizer), ("scheduler", scheduler), ("rng", rng)):
        if obj is not None:
            torch.save(obj.state_dict() if hasattr(obj, "state_dict") else dict(obj), d / f"{name}.pt")
    (d / META).write_text(json.dumps({**(meta or {}), "step": int(step)}, indent=2, sort_keys=True))
    for f in d.iterdir():
        _fsync_file(f)
    _fsync_dir(d)


def _plain_tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Detached, contiguous CPU copies (safetensors refuses tensors that share memory)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _replace_dir(src: Path, dst: Path) -> None:
    """Move ``src`` to ``dst``, replacing an existing ``dst`` (a re-saved step)."""
    if not dst.exists():
        os.replace(src, dst)
        return
    trash = dst.with_name(f"{_TMP_PREFIX}old-{dst.name}-{uuid.uuid4().hex[:8]}")
    os.replace(dst, trash)
    os.replace(src, dst)
    shutil.rmtree(trash, ignore_errors=True)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.write_text(text)
    _fsync_file(tmp)
    os.replace(tmp, path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prune_checkpoints(root: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints (never the one ``latest`` names)."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be >= 1, got {keep_last}")
    root = Path(root)
    found = list_checkpoints(root)
    protected = {latest_checkpoint(root)}
    removed = []
    for path in found[:-keep_last]:
        if path in protected:
            continue
        trash = path.with_name(f"{_TMP_PREFIX}del-{path.name}-{uuid.uuid4().hex[:8]}")
        os.replace(path, trash)  # gone from the listing at once; then delete
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(path)
    return removed


# ----------------------------------------------------------------------------------------- loading


def load_checkpoint(path: str | Path, model: nn.Module, ema: EMA | None = None,
                    optimizer: Optimizer | None = None, scheduler: Any = None, *,
                    map_location: str | torch.device | None = None) -> dict[str, Any]:
    """Load a checkpoint (a ``step_*`` directory, or the latest one under a root) into the given
    objects and return its ``meta.json`` (with ``"path"`` added).

    Weights go to ``map_location`` (default: the device of ``model``'s first parameter).
    """
    path = resolve_checkpoint(path)
    device = torch.device(map_location) if map_location is not None else _module_device(model)
    model.load_state_dict(load_file(path / "model.safetensors", device=str(device)))
    if ema is not None:
        shadow, info = load_safetensors(path / "ema.safetensors", device)
        ema.load_state_dict({"shadow": shadow, "num_updates": int(info.get("num_updates", 0))})
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    if scheduler is not None:
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True))
    return {**read_meta(path), "path": str(path)}


def load_safetensors(path: str | Path, device: str | torch.device = "cpu") -> tuple[dict[str, Tensor],
                                                                                    dict[str, str]]:
    """Tensors and string metadata of a ``.safetensors`` file."""
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})  # noqa: SIM118


def load_rng_state(path: str | Path) -> dict[str, Any] | None:
    """The ``rng.pt`` of a checkpoint, or ``None`` when it has none."""
    f = resolve_checkpoint(path) / "rng.pt"
    return torch.load(f, map_location="cpu", weights_only=True) if f.is_file() else None


def _module_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
