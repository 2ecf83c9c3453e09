"""Run records: environment, code version, atomic writes and the run directory.

Every run leaves ``runs/<domain>/<run-id>/`` with ``config.yaml``, ``config_hash``, ``seeds.json``,
``env.json``, ``data.json`` (dataset checksums) and ``record.json`` (stage statuses), plus the
``checkpoints/``, ``samples/`` and ``plots/`` folders. All files are written atomically (temp file
in the same folder, fsync, ``os.replace``), so a crash never leaves a half-written record.

This module is orchestration-agnostic: it never imports Prefect (a flow passes its flow-run id in).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel

from core.config import config_hash, to_yaml

try:  # POSIX advisory locks for record.json updates; a no-op elsewhere
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

StageStatus = Literal["pending", "running", "completed", "failed", "skipped"]
STAGE_STATUSES: tuple[str, ...] = get_args(StageStatus)
CORE_PACKAGES = ("torch", "numpy", "scipy", "prefect", "pydantic")
OPTIONAL_PACKAGES = (
    "pyyaml", "typer", "tqdm", "safetensors", "matplotlib", "prefect-dask", "dask", "ray",
    "torch-geometric", "rdkit", "networkx", "fcd-torch", "PyWavelets", "ptwt", "xarray", "netCDF4",
    "h5netcdf", "pysteps", "trimesh", "monai", "nibabel", "SimpleITK",
)
SUBFOLDERS = ("checkpoints", "samples", "plots")
TRACEBACK_LINES = 20


def repo_root() -> Path:
    """The repository root (the folder holding ``core/``)."""
    return Path(__file__).resolve().parents[1]


def runs_root() -> Path:
    """Where run directories go: ``$DIFFUSCI_RUNS`` or ``runs/`` at the repository root."""
    env = os.environ.get("DIFFUSCI_RUNS")
    return Path(env).expanduser() if env else repo_root() / "runs"


def portable_run_path(path: str | Path, run: str | Path | None = None) -> str:
    """``path`` — a run directory ``<runs root>/<domain>/<run-id>`` or, with ``run``, a folder inside that run
    (a resample) — as ``runs/<domain>/<run-id>/...``: the run's place under any runs root rather than this
    machine's directories, so results files name a run the same on every machine."""
    path = Path(path).resolve()
    run = path if run is None else Path(run).resolve()
    return str(Path("runs", run.parent.name, run.name, path.relative_to(run)))


def utc_now() -> str:
    """The current UTC time as ISO 8601 with millisecond resolution and a ``Z`` suffix."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- environment, code version


def package_versions(names: tuple[str, ...] = CORE_PACKAGES, *, include_missing: bool = True) -> dict:
    """Installed distribution versions, read from metadata (nothing is imported)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            if include_missing:
                out[name] = None
    return out


def _torch_info() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"torch": None, "cuda_available": False, "cuda_device": None}
    cuda = bool(torch.cuda.is_available())
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_device_count": torch.cuda.device_count() if cuda else 0,
    }


def collect_environment() -> dict[str, Any]:
    """Python, platform, host, torch/CUDA, CPU count and package versions of this process."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(affinity(0)) if affinity else None,
        **_torch_info(),
        "packages": {
            **package_versions(CORE_PACKAGES),
            **package_versions(OPTIONAL_PACKAGES, include_missing=False),
        },
    }


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git -C root ARGS`` or None (git missing, not a repo, error, timeout)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        proc = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *args],
            capture_output=True, text=True, timeout=10, env=env, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_info(root: str | Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git checkout at ``root``.

    Read-only (``--no-optional-locks``); robust when git is missing or ``root`` is not a repo.
    """
    root = Path(root) if root is not None else repo_root()
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return {"commit": None, "dirty": None}
    status = _git(root, "status", "--porcelain")
    return {"commit": head.strip(), "dirty": None if status is None else bool(status.strip())}


def code_version(root: str | Path | None = None) -> str:
    """The git commit (``+ "-dirty"`` when there are local changes) or else the package version."""
    info = git_info(root)
    if info["commit"]:
        return info["commit"] + ("-dirty" if info["dirty"] else "")
    try:
        return md.version("diffusci")
    except md.PackageNotFoundError:
        from core import __version__

        return __version__


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every platform / filesystem
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, fsync, ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Atomically write UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_figure(fig: Any, path: str | Path, *, dpi: int = 90) -> Path:
    """Render a matplotlib figure (duck-typed: anything with ``savefig``) and write it atomically;
    the format follows the file suffix. The caller closes the figure."""
    import io

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    return atomic_write_bytes(path, buf.getvalue())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True)
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Path | dt.datetime | dt.date):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (pydantic models, paths and enums allowed)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (POSIX); used around read-modify-write."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- run directory


def new_run_id() -> str:
    """UTC timestamp plus a short random suffix, e.g. ``20250101T120000Z-3fa9c2``."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _summarise_error(error: BaseException | str | None) -> dict[str, Any]:
    if error is None:
        return {}
    if isinstance(error, str):
        return {"error": error}
    lines = "".join(traceback.format_exception(error)).rstrip().splitlines()
    return {"error": f"{type(error).__name__}: {error}", "traceback": lines[-TRACEBACK_LINES:]}


class RunDir:
    """One run's folder: ``<runs root>/<domain>/<run-id>/``.

    Create with :meth:`create`, re-open with :meth:`open`. ``record.json`` holds one entry per
    stage (``pending``/``running``/``completed``/``failed``, timestamps, error and traceback
    summary) and the overall status; :meth:`mark_stage` updates it atomically under a lock.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ---- construction
    @classmethod
    def create(
        cls, domain: str, *, root: str | Path | None = None, run_id: str | None = None,
        flow_run_id: str | None = None, parent: str | Path | None = None,
        record_extra: dict[str, Any] | None = None,
    ) -> RunDir:
        """Create a fresh run folder (with sub-folders and an initial ``record.json``).

        The folder goes under ``<root>/<domain>/``, or directly under ``parent`` when given (a re-sample's
        ``RUN/resamples/``); ``record_extra`` adds entries to the record (e.g. the parent run).
        """
        base = Path(parent) if parent is not None else (Path(root) if root is not None else runs_root()) / domain
        base.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            rid = run_id or new_run_id()
            try:
                (base / rid).mkdir()
                break
            except FileExistsError:
                if run_id is not None:
                    raise
        else:  # pragma: no cover - ten random collisions in one second
            raise RuntimeError(f"could not create a unique run folder under {base}")
        run = cls(base / rid)
        for sub in SUBFOLDERS:
            (run.path / sub).mkdir()
        now = utc_now()
        record: dict[str, Any] = {"run_id": rid, "domain": domain, "created": now, "updated": now,
                  "flow_run_id": flow_run_id, "code_version": code_version(), "status": "pending",
                  "stages": {}, **(record_extra or {})}
        atomic_write_json(run.record_path, record)
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run folder; raise FileNotFoundError if it has no ``record.json``."""
        run = cls(path)
        if not run.record_path.is_file():
            raise FileNotFoundError(f"{run.path} is not a run directory (no record.json)")
        return run

    # ---- paths
    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def domain(self) -> str:
        return self.path.parent.name

    @property
    def record_path(self) -> Path:
        return self.path / "record.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    # ---- writers
    def write_config(self, config: BaseModel | Mapping[str, Any]) -> str:
        """Write ``config.yaml`` and ``config_hash``; return the hash."""
        digest = config_hash(config)
        atomic_write_text(self.path / "config.yaml", to_yaml(config))
        atomic_write_text(self.path / "config_hash", digest + "\n")
        return digest

    def write_seeds(self, seeds: Mapping[str, Any]) -> Path:
        """Write ``seeds.json`` (the root seed and any derived seeds)."""
        return atomic_write_json(self.path / "seeds.json", dict(seeds))

    def write_env(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Write ``env.json``: :func:`collect_environment`, git info and code version."""
        env = {**collect_environment(), "git": git_info(), "code_version": code_version(), **(extra or {})}
        atomic_write_json(self.path / "env.json", env)
        return env

    def write_data(self, checksums: Mapping[str, Any]) -> Path:
        """Write ``data.json``: dataset name → checksum (or a verify report)."""
        return atomic_write_json(self.path / "data.json", dict(checksums))

    def read_json(self, name: str) -> Any:
        """Read one of the run's JSON files (``record.json``, ``seeds.json`` ...)."""
        return json.loads((self.path / name).read_text(encoding="utf-8"))

    # ---- record
    def record(self) -> dict[str, Any]:
        """The current ``record.json`` contents."""
        return self.read_json("record.json")

    def stage_status(self, stage: str) -> str:
        """The status of ``stage`` (``pending`` if never marked)."""
        return self.record()["stages"].get(stage, {}).get("status", "pending")

    def mark_stage(
        self, stage: str, status: StageStatus, *, error: BaseException | str | None = None,
        flow_run_id: str | None = None, **info: Any,
    ) -> dict[str, Any]:
        """Set ``stage`` to ``status`` (with timestamps, error summary and extra ``info``)."""
        if status not in STAGE_STATUSES:
            raise ValueError(f"unknown stage status {status!r}; valid choices: {', '.join(STAGE_STATUSES)}")
        with _locked(self.path / ".record.lock"):
            record = self.record()
            entry = _update_stage(record["stages"].get(stage, {}), status, error, info)
            if flow_run_id is not None:
                entry["flow_run_id"] = record["flow_run_id"] = flow_run_id
            record["stages"][stage] = entry
            record["updated"] = utc_now()
            record["status"] = overall_status(record["stages"])
            atomic_write_json(self.record_path, record)
        return entry

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"


def _update_stage(old: Mapping[str, Any], status: str, error: Any, info: Mapping[str, Any]) -> dict:
    """A stage entry moved to ``status``; ``running`` stamps ``started``, final states ``finished``."""
    now = utc_now()
    entry = {k: v for k, v in old.items() if k not in ("error", "traceback")}
    entry.update(info, status=status)
    if status == "running":
        entry["started"] = now
        entry.pop("finished", None)
    elif status in ("completed", "failed"):
        entry.setdefault("started", now)
        entry["finished"] = now
        started = dt.datetime.fromisoformat(entry["started"])
        entry["duration_s"] = (dt.datetime.fromisoformat(now) - started).total_seconds()
    entry.update(_summarise_error(error))
    return entry


def overall_status(stages: Mapping[str, Mapping[str, Any]]) -> str:
    """``failed`` if any stage failed, else ``running`` if any runs, ``completed`` if all did (``skipped``
    stages, e.g. train and sample when scoring external samples, count as done)."""
    statuses = {s.get("status", "pending") for s in stages.values()}
    for status in ("failed", "running"):
        if status in statuses:
            return status
    return "completed" if statuses and statuses <= {"completed", "skipped"} and "completed" in statuses else "pending"
