"""Small frozen references passed between pipeline stages (and cached by the orchestrator).

Stages never hand tensors to each other: they write files into the run directory and pass these
records (path, sha256, the hash of the config that made them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.catalog import sha256_file


@dataclass(frozen=True)
class DatasetRef:
    domain: str
    dataset: str
    path: str
    sha256: str
    entry_checksum: str
    config_hash: str
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointRef:
    domain: str
    path: str
    sha256: str
    step: int
    config_hash: str


@dataclass(frozen=True)
class SamplesRef:
    domain: str
    path: str
    sha256: str
    n: int
    files: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


def to_dict(ref: Any) -> dict[str, Any]:
    return asdict(ref)


def check_ref(ref: DatasetRef | CheckpointRef | SamplesRef, file: str | Path | None = None) -> Path:
    """Check a referenced file still exists and has the recorded checksum."""
    path = Path(file) if file is not None else Path(ref.path)
    if not path.exists():
        raise FileNotFoundError(
            f"{type(ref).__name__} points to {path}, which no longer exists; rerun with --force to rebuild it")
    actual = sha256_file(path)
    if actual != ref.sha256:
        raise RuntimeError(f"{path} changed since it was recorded (sha256 {actual[:12]}…, expected "
                           f"{ref.sha256[:12]}…); rerun with --force")
    return path
