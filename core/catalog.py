"""The data catalog: one YAML file per data domain under ``catalogs/``, validated here.

Each ``catalogs/<domain>.yaml`` holds ``entries:``, a list of :class:`CatalogEntry`. Unknown keys
are errors that name the YAML file and the key.

Paths: ``CatalogEntry.path`` and every ``FileEntry.path`` are POSIX paths **relative to the data
root** (:func:`data_root`). ``entry.path`` is the entry's main file or folder and every file of the
entry must be that path or lie under it. Per-file paths are written out in full (rather than
relative to ``entry.path``) so that a path in an error message can be copied as is.

Large folders: list the files one by one when there are up to ~50 of them; beyond that, list a
checksum manifest (e.g. ``SHA256SUMS``) as the entry's file and let the domain's loader check the
members against it.

The data root is ``$DIFFUSCI_DATA`` or ``../shared/data`` relative to the repository root.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from tqdm.auto import tqdm

from core.config import describe_validation_error
from core.provenance import repo_root
from core.registry import UnknownNameError

CHUNK = 1 << 20  # 1 MiB
PROGRESS_MIN_BYTES = 64 << 20  # show a progress bar when hashing files above this size
Format = Literal[
    "csv", "json", "npz", "netcdf", "grib", "nifti", "smiles", "txt", "pgm", "hdf5", "pt", "generated",
]


class DataError(RuntimeError):
    """A data file is missing or corrupt; the message says where to get it."""


class CatalogError(ValueError):
    """A catalog YAML file is invalid; the message names the file and the key."""


# --------------------------------------------------------------------------- schema


def _check_relative(path: str) -> str:
    p = PurePosixPath(path)
    if not path or "\\" in path or p.is_absolute() or ".." in p.parts:
        raise ValueError(f"{path!r} must be a relative POSIX path under the data root, without '..'")
    return str(p)


class FileEntry(BaseModel):
    """One file: path relative to the data root, its sha256, optional size and download URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=0)
    url: str | None = None

    @field_validator("path")
    @classmethod
    def _path_relative(cls, v: str) -> str:
        return _check_relative(v)


class CatalogEntry(BaseModel):
    """A dataset: what it is, where it lives, its files with checksums, licence and citation."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_]*$")
    domain: str
    description: str
    format: Format
    access: Literal["pinned", "external"] = "pinned"
    obtain: str | None = None
    path: str | None = None
    files: tuple[FileEntry, ...] = ()
    url: str | None = None
    licence: str
    citation: str
    splits: dict[str, str | list[str]] = Field(default_factory=dict)
    data_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")

    @field_validator("path")
    @classmethod
    def _path_relative(cls, v: str | None) -> str | None:
        return None if v is None else _check_relative(v)

    @model_validator(mode="after")
    def _consistent(self) -> CatalogEntry:
        if self.format == "generated":
            if self.files:
                raise ValueError("a 'generated' entry has no files")
            return self
        if self.access == "external":
            # not mirrored and not pinnable from here (registration-only, or no published checksums):
            # the user obtains it and pins it by listing its files with their sha256
            if self.files or not (self.path and self.url and self.obtain):
                raise ValueError("an 'external' entry needs 'path', 'url' and 'obtain' (how to get and pin the "
                                 "data) and no files; once you have the data, list its files with sha256 and "
                                 "drop 'access: external'")
            return self
        if not (self.path and self.url and self.files):
            raise ValueError("an entry with external data needs 'path', 'url' and at least one file")
        prefix = self.path.rstrip("/") + "/"
        outside = [f.path for f in self.files if f.path != self.path and not f.path.startswith(prefix)]
        if outside:
            raise ValueError(f"files {outside} are not under the entry path {self.path!r}")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("duplicate file paths")
        return self

    @property
    def size_bytes(self) -> int | None:
        """Total size of the files when every size is known."""
        sizes = [f.size_bytes for f in self.files]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]


class VerifiedFile(BaseModel):
    """One checked file: path under the data root, its sha256 and size."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str
    size_bytes: int


class VerifyReport(BaseModel):
    """Result of :func:`verify`: every file checked, and the entry checksum for cache keys."""

    model_config = ConfigDict(frozen=True)

    entry: str
    root: str
    files: tuple[VerifiedFile, ...]
    checksum: str


# --------------------------------------------------------------------------- locations, loading


def data_root() -> Path:
    """``$DIFFUSCI_DATA`` if set, else ``../shared/data`` relative to the repository root."""
    env = os.environ.get("DIFFUSCI_DATA")
    return Path(env).expanduser() if env else (repo_root().parent / "shared" / "data")


def catalogs_dir() -> Path:
    """``catalogs/`` at the repository root."""
    return repo_root() / "catalogs"


def load_catalog_file(path: str | Path) -> list[CatalogEntry]:
    """Read one ``catalogs/<domain>.yaml``; errors name the file, the entry and the bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict) or set(raw) - {"entries"}:
        extra = sorted(set(raw) - {"entries"}) if isinstance(raw, dict) else []
        raise CatalogError(f"{path}: the top level must be a mapping with the single key 'entries'"
                           + (f"; unknown key(s): {', '.join(map(str, extra))}" if extra else ""))
    items = raw.get("entries") or []
    if not isinstance(items, list):
        raise CatalogError(f"{path}: 'entries' must be a list")
    return [_load_entry(path, i, item) for i, item in enumerate(items)]


def _load_entry(path: Path, index: int, item: Any) -> CatalogEntry:
    label = f"entry #{index}"
    if not isinstance(item, dict):
        raise CatalogError(f"{path}: {label} must be a mapping")
    label += f" ({item.get('name', '?')!r})"
    try:
        entry = CatalogEntry.model_validate(item)
    except ValidationError as exc:
        raise CatalogError(f"{path}: {label}: {describe_validation_error(exc, CatalogEntry)}") from None
    if entry.domain != path.stem:
        raise CatalogError(f"{path}: {label}: domain {entry.domain!r} does not match the file name "
                           f"(expected {path.stem!r})")
    return entry


def load_catalogs(directory: str | Path | None = None) -> dict[str, CatalogEntry]:
    """All entries of ``directory/*.yaml`` (default :func:`catalogs_dir`), keyed by name."""
    directory = Path(directory) if directory is not None else catalogs_dir()
    if not directory.is_dir():
        raise CatalogError(f"catalog folder {directory} does not exist")
    entries: dict[str, CatalogEntry] = {}
    origin: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")):
        for entry in load_catalog_file(path):
            if entry.name in entries:
                raise CatalogError(f"{path}: duplicate entry name {entry.name!r} (also in {origin[entry.name]})")
            entries[entry.name], origin[entry.name] = entry, path
    return entries


def get_entry(name: str, catalogs: Mapping[str, CatalogEntry] | None = None) -> CatalogEntry:
    """The entry called ``name``; an unknown name raises an error listing the valid ones."""
    catalogs = load_catalogs() if catalogs is None else catalogs
    try:
        return catalogs[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown dataset {name!r}; valid names: {', '.join(sorted(catalogs)) or '(none)'}"
        ) from None


# --------------------------------------------------------------------------- checksums, verify


def sha256_file(path: str | Path, *, progress: bool | None = None) -> str:
    """Streamed sha256 (1 MiB chunks); a tqdm bar for files above ``PROGRESS_MIN_BYTES``."""
    path = Path(path)
    size = path.stat().st_size
    show = size >= PROGRESS_MIN_BYTES if progress is None else progress
    digest = hashlib.sha256()
    with open(path, "rb") as fh, tqdm(total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}",
                                      disable=not show, leave=False) as bar:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def entry_checksum(entry: CatalogEntry) -> str:
    """One stable sha256 over the entry's (path, sha256) pairs, for cache keys.

    A generated entry (no files) hashes its name, format and schema instead, so a change of the
    generator description invalidates caches.
    """
    if entry.files:
        payload: Any = sorted([f.path, f.sha256] for f in entry.files)
    else:
        payload = {"name": entry.name, "format": entry.format, "schema": entry.data_schema}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _where_to_get(entry: CatalogEntry, f: FileEntry) -> str:
    if f.url:
        return f"download it with `diffusci catalog fetch {entry.name}` (from {f.url})"
    return (f"no direct download URL: get it from {entry.url} (see the data folder's PROVENANCE.md); "
            f"`diffusci catalog fetch {entry.name}` fetches only the files that have a URL")


def _resolve_root(root: str | Path | None) -> Path:
    return Path(root) if root is not None else data_root()


def verify(entry: CatalogEntry, root: str | Path | None = None) -> VerifyReport:
    """Check that every file of ``entry`` exists under ``root`` with the recorded sha256.

    Raises :class:`DataError` naming the file, the entry and where to get it (missing) or the
    expected and actual checksums (corrupt).
    """
    base = _resolve_root(root)
    if entry.access == "external":
        raise DataError(f"dataset {entry.name!r} is not mirrored and its files are not pinned yet: {entry.obtain} "
                        f"(official source {entry.url}); place it under {base / (entry.path or '')} and add its "
                        "files with their sha256 to the catalog entry")
    missing = [f for f in entry.files if not (base / f.path).is_file()]
    if missing:
        lines = [f"  {base / f.path}: {_where_to_get(entry, f)}" for f in missing]
        raise DataError(f"dataset {entry.name!r}: {len(missing)} missing file(s) under data root {base}:\n"
                        + "\n".join(lines))
    checked = []
    for f in entry.files:
        target = base / f.path
        actual = sha256_file(target)
        if actual != f.sha256:
            raise DataError(
                f"dataset {entry.name!r}: checksum mismatch for {target}\n  expected sha256 {f.sha256}\n"
                f"  actual   sha256 {actual}\n  the file is corrupt or a different version; "
                f"{_where_to_get(entry, f)}"
            )
        checked.append(VerifiedFile(path=f.path, sha256=actual, size_bytes=target.stat().st_size))
    return VerifyReport(entry=entry.name, root=str(base), files=tuple(checked), checksum=entry_checksum(entry))


# --------------------------------------------------------------------------- fetch


def _download(url: str, dest: Path, expected: str, *, timeout: float = 60.0) -> None:
    """Stream ``url`` into a temp file next to ``dest``; check sha256; ``os.replace`` into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, leave=False) as bar:
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected:
            raise DataError(f"download of {url} failed its checksum for {dest}\n  expected sha256 {expected}\n"
                            f"  actual   sha256 {digest.hexdigest()}")
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError) as exc:
        os.unlink(tmp)
        raise DataError(f"download of {url} to {dest} failed: {exc}") from exc
    except BaseException:
        os.unlink(tmp)
        raise


def fetch(entry: CatalogEntry, root: str | Path | None = None, *, timeout: float = 60.0) -> VerifyReport:
    """Download the missing or corrupt files of ``entry`` from their URLs; return the verify report.

    Files already present with the right sha256 are kept. Downloads are written atomically (temp
    file in the target folder + ``os.replace``) and only after their sha256 matched, so a failed
    download never leaves a partial or wrong file behind (a corrupt old file stays until replaced).
    """
    if entry.access == "external":
        verify(entry, root)  # raises: how to obtain it, where to put it, how to pin it
    base = _resolve_root(root)
    checked = []
    for f in entry.files:
        target = base / f.path
        present = target.is_file()
        if not (present and sha256_file(target) == f.sha256):
            if not f.url:
                state = "is corrupt (checksum mismatch)" if present else "is missing"
                raise DataError(f"dataset {entry.name!r}: {target} {state} and has no download URL; "
                                f"get it by hand from {entry.url}")
            _download(f.url, target, f.sha256, timeout=timeout)
        checked.append(VerifiedFile(path=f.path, sha256=f.sha256, size_bytes=target.stat().st_size))
    return VerifyReport(entry=entry.name, root=str(base), files=tuple(checked), checksum=entry_checksum(entry))


# --------------------------------------------------------------------------- CLI helpers


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def _status(entry: CatalogEntry, base: Path) -> str:
    if entry.access == "external":
        return "external (not mirrored)"
    if not entry.files:
        return "generated"
    present = sum((base / f.path).is_file() for f in entry.files)
    return "present" if present == len(entry.files) else ("missing" if present == 0 else "partial")


def catalog_table(entries: Iterable[CatalogEntry], root: str | Path | None = None) -> list[dict[str, str]]:
    """Rows for a CLI table: name, domain, format, files, size, licence, status (existence only)."""
    base = _resolve_root(root)
    return [
        {
            "name": e.name, "domain": e.domain, "format": e.format, "files": str(len(e.files)),
            "size": _human(e.size_bytes) if e.files else "-", "licence": e.licence,
            "status": _status(e, base),
        }
        for e in sorted(entries, key=lambda e: (e.domain, e.name))
    ]
