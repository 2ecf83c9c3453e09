"""Tests for core.catalog: schema, YAML loading errors, verify, fetch (local HTTP server), checksums."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import core
from core.catalog import (
    CatalogEntry,
    CatalogError,
    DataError,
    FileEntry,
    catalog_table,
    catalogs_dir,
    data_root,
    entry_checksum,
    fetch,
    get_entry,
    load_catalog_file,
    load_catalogs,
    sha256_file,
    verify,
)

DATA_DOMAINS = ("graphs", "molecules", "pde", "weather", "medical", "spiderwebs", "toy")
MAX_REAL_BYTES = 200 << 20


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(files: dict[str, bytes], *, name: str = "demo", urls: dict[str, str] | None = None) -> CatalogEntry:
    """A small entry under 'demo/' whose checksums match ``files`` (relative names → content)."""
    urls = urls or {}
    return CatalogEntry(
        name=name, domain="demo", description="test entry", format="txt", path="demo",
        files=tuple(FileEntry(path=f"demo/{n}", sha256=_sha(b), size_bytes=len(b), url=urls.get(n))
                    for n, b in files.items()),
        url="https://example.org/demo", licence="CC0", citation="nobody",
    )


def _write(root: Path, files: dict[str, bytes]) -> None:
    for n, b in files.items():
        (root / "demo" / n).parent.mkdir(parents=True, exist_ok=True)
        (root / "demo" / n).write_bytes(b)


def _entry_dict(**overrides: object) -> dict:
    d = {"name": "x", "domain": "demo", "description": "d", "format": "txt", "path": "demo/a.txt",
         "files": [{"path": "demo/a.txt", "sha256": "0" * 64}], "url": "https://example.org",
         "licence": "CC0", "citation": "c"}
    d.update(overrides)
    return d


def _write_catalog(directory: Path, domain: str, entries: list) -> Path:
    path = directory / f"{domain}.yaml"
    path.write_text(yaml.safe_dump({"entries": entries}))
    return path


# --------------------------------------------------------------------------- locations


def test_data_root_default_is_relative_to_checkout(monkeypatch):
    monkeypatch.delenv("DIFFUSCI_DATA", raising=False)
    repo = Path(core.__file__).resolve().parents[1]
    assert data_root() == repo.parent / "shared" / "data"


def test_data_root_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    assert data_root() == tmp_path


# --------------------------------------------------------------------------- the real catalogs


def test_real_catalogs_load_one_file_per_domain():
    names = {p.stem for p in catalogs_dir().glob("*.yaml")}
    assert set(DATA_DOMAINS) <= names
    entries = load_catalogs()
    assert {"community_small", "qm9", "moses", "burgers1d_neuralop_res16", "fmi_radar_20160928",
            "brats2013_deepmedic", "gmm2d"} <= set(entries)
    # spider webs: the procedural set is "generated"; the paper's file is "external" (not mirrored)
    assert {e.format if e.access == "pinned" else e.access
            for e in load_catalog_file(catalogs_dir() / "spiderwebs.yaml")} == {"generated", "external"}
    for entry in entries.values():
        assert entry.licence and entry.citation
        assert entry.format == "generated" or (entry.url and (entry.files or entry.obtain))


def _real_entries() -> list[CatalogEntry]:
    return [e for e in load_catalogs().values() if e.files]


@pytest.mark.parametrize("entry", _real_entries(), ids=lambda e: e.name)
def test_verify_real_data(entry):
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"data root {root} not present")
    sizes = [(root / f.path).stat().st_size for f in entry.files if (root / f.path).is_file()]
    if len(sizes) < len(entry.files):
        pytest.skip(f"{entry.name}: files not present under {root}")
    if sum(sizes) > MAX_REAL_BYTES:
        pytest.skip(f"{entry.name}: larger than {MAX_REAL_BYTES} bytes")
    report = verify(entry, root)
    assert len(report.files) == len(entry.files)
    assert report.checksum == entry_checksum(entry)
    assert all(f.size_bytes == e.size_bytes for f, e in zip(report.files, entry.files, strict=True))


# --------------------------------------------------------------------------- schema and YAML errors


def test_unknown_entry_key_names_file_and_key(tmp_path):
    path = _write_catalog(tmp_path, "demo", [_entry_dict(licnce="MIT")])
    with pytest.raises(CatalogError) as info:
        load_catalogs(tmp_path)
    msg = str(info.value)
    assert str(path) in msg and "'licnce'" in msg and "entry #0 ('x')" in msg
    assert "valid keys" in msg and "licence" in msg


def test_unknown_file_key_names_nested_key(tmp_path):
    bad = _entry_dict(files=[{"path": "demo/a.txt", "sha265": "0" * 64}])
    _write_catalog(tmp_path, "demo", [bad])
    with pytest.raises(CatalogError, match=r"unknown key 'files\[0\]\.sha265'.*path, sha256, size_bytes, url"):
        load_catalogs(tmp_path)


def test_unknown_top_level_key(tmp_path):
    (tmp_path / "demo.yaml").write_text("entries: []\nentires: []\n")
    with pytest.raises(CatalogError, match="entires"):
        load_catalogs(tmp_path)


def test_invalid_yaml_names_file(tmp_path):
    (tmp_path / "demo.yaml").write_text("entries: [\n")
    with pytest.raises(CatalogError, match="demo.yaml: invalid YAML"):
        load_catalogs(tmp_path)


def test_domain_must_match_file_name(tmp_path):
    _write_catalog(tmp_path, "other", [_entry_dict()])
    with pytest.raises(CatalogError, match="domain 'demo' does not match the file name"):
        load_catalogs(tmp_path)


def test_duplicate_names_across_files(tmp_path):
    _write_catalog(tmp_path, "demo", [_entry_dict()])
    _write_catalog(tmp_path, "more", [_entry_dict(domain="more")])
    with pytest.raises(CatalogError, match="duplicate entry name 'x'"):
        load_catalogs(tmp_path)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"format": "xlsx"}, "format"),
        ({"files": [{"path": "../etc/passwd", "sha256": "0" * 64}], "path": "demo"}, "relative POSIX path"),
        ({"files": [{"path": "other/a.txt", "sha256": "0" * 64}]}, "not under the entry path"),
        ({"files": [{"path": "demo/a.txt", "sha256": "abc"}]}, "sha256"),
        ({"url": None}, "needs 'path', 'url'"),
        ({"access": "external"}, "needs 'path', 'url' and 'obtain'"),
        ({"access": "external", "files": [], "obtain": "register"} | {"path": None}, "needs 'path', 'url' and 'obtain'"),
        ({"access": "somewhere"}, "access"),
    ],
)
def test_invalid_entries_rejected(tmp_path, overrides, needle):
    _write_catalog(tmp_path, "demo", [_entry_dict(**overrides)])
    with pytest.raises(CatalogError, match=needle):
        load_catalogs(tmp_path)


def test_entries_are_frozen():
    entry = _entry({"a.txt": b"a"})
    with pytest.raises(ValueError):
        entry.name = "other"  # type: ignore[misc]


def test_get_entry_lists_valid_names():
    catalogs = {"a": _entry({"x": b"1"}, name="a"), "b": _entry({"x": b"1"}, name="b")}
    assert get_entry("a", catalogs).name == "a"
    with pytest.raises(KeyError, match="unknown dataset 'zz'; valid names: a, b"):
        get_entry("zz", catalogs)


# --------------------------------------------------------------------------- verify, checksums


def test_verify_ok(monkeypatch, tmp_path):
    files = {"a.txt": b"hello", "sub/b.bin": b"\x00" * 1000}
    _write(tmp_path, files)
    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    entry = _entry(files)
    report = verify(entry)
    assert report.root == str(tmp_path)
    assert [f.path for f in report.files] == ["demo/a.txt", "demo/sub/b.bin"]
    assert report.checksum == entry_checksum(entry)


def test_verify_missing_file_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    _write(tmp_path, {"a.txt": b"hello"})
    entry = _entry({"a.txt": b"hello", "b.txt": b"world"})
    with pytest.raises(DataError) as info:
        verify(entry)
    msg = str(info.value)
    assert str(tmp_path / "demo" / "b.txt") in msg and "'demo'" in msg
    assert "https://example.org/demo" in msg and "diffusci catalog fetch demo" in msg
    assert str(tmp_path / "demo" / "a.txt") not in msg


def test_verify_corrupt_file_reports_both_checksums(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    _write(tmp_path, {"a.txt": b"hellO"})
    entry = _entry({"a.txt": b"hello"}, urls={"a.txt": "https://example.org/a.txt"})
    with pytest.raises(DataError) as info:
        verify(entry)
    msg = str(info.value)
    assert "checksum mismatch" in msg and str(tmp_path / "demo" / "a.txt") in msg
    assert _sha(b"hello") in msg and _sha(b"hellO") in msg and "https://example.org/a.txt" in msg


def test_sha256_file_streams_with_progress(tmp_path):
    data = bytes(range(256)) * 9000  # > 2 chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f", progress=True) == _sha(data)
    assert sha256_file(tmp_path / "f") == _sha(data)


def test_entry_checksum_stable_and_sensitive():
    a = _entry({"a.txt": b"1", "b.txt": b"2"})
    b = _entry({"b.txt": b"2", "a.txt": b"1"}, name="renamed")
    c = _entry({"a.txt": b"1", "b.txt": b"3"})
    assert entry_checksum(a) == entry_checksum(b)  # order and name do not matter, only the data
    assert entry_checksum(a) != entry_checksum(c)
    assert len(entry_checksum(a)) == 64


def test_generated_entry_checksum_depends_on_schema():
    toy = get_entry("gmm2d")
    assert toy.format == "generated" and not toy.files and toy.path is None
    changed = toy.model_copy(update={"data_schema": {**toy.data_schema, "dims": 3}})
    assert entry_checksum(toy) != entry_checksum(changed)
    assert verify(toy).files == ()


def test_catalog_table_rows(tmp_path):
    _write(tmp_path, {"a.txt": b"x"})
    rows = catalog_table([_entry({"a.txt": b"x"}, name="b"), _entry({"zz.txt": b"y"}, name="a")], tmp_path)
    assert [r["name"] for r in rows] == ["a", "b"]
    assert rows[0]["status"] == "missing" and rows[1]["status"] == "present"
    assert rows[1]["files"] == "1" and rows[1]["size"] == "1 B"
    toy_row = catalog_table([get_entry("gmm2d")], tmp_path)[0]
    assert toy_row["status"] == "generated" and toy_row["size"] == "-"


# --------------------------------------------------------------------------- fetch over local HTTP


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def http_dir(tmp_path) -> Iterator[tuple[Path, str]]:
    """A temp folder served on 127.0.0.1; yields (folder, base URL)."""
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.startswith(".") or p.suffix == ".part")


def test_fetch_downloads_missing_files(http_dir, tmp_path):
    served, base = http_dir
    files = {"a.txt": b"alpha" * 1000, "b.txt": b"beta"}
    for n, b in files.items():
        (served / n).write_bytes(b)
    root = tmp_path / "data"
    _write(root, {"b.txt": b"beta"})  # already present: left alone
    entry = _entry(files, urls={n: f"{base}/{n}" for n in files})
    report = fetch(entry, root)
    assert (root / "demo" / "a.txt").read_bytes() == files["a.txt"]
    assert len(report.files) == 2
    assert _leftovers(root) == []


def test_fetch_checksum_failure_leaves_no_file(http_dir, tmp_path):
    served, base = http_dir
    (served / "a.txt").write_bytes(b"tampered")
    root = tmp_path / "data"
    entry = _entry({"a.txt": b"original"}, urls={"a.txt": f"{base}/a.txt"})
    with pytest.raises(DataError, match="failed its checksum") as info:
        fetch(entry, root)
    assert _sha(b"original") in str(info.value) and _sha(b"tampered") in str(info.value)
    assert not (root / "demo" / "a.txt").exists()
    assert _leftovers(root) == []


def test_fetch_http_error_is_data_error(http_dir, tmp_path):
    _, base = http_dir
    root = tmp_path / "data"
    entry = _entry({"gone.txt": b"x"}, urls={"gone.txt": f"{base}/gone.txt"})
    with pytest.raises(DataError, match="404"):
        fetch(entry, root)
    assert _leftovers(root) == [] and not (root / "demo" / "gone.txt").exists()


def test_fetch_without_url_points_to_source(tmp_path):
    entry = _entry({"a.txt": b"x"})
    with pytest.raises(DataError, match="no download URL; get it by hand from https://example.org/demo"):
        fetch(entry, tmp_path)


def test_fetch_replaces_corrupt_file(http_dir, tmp_path):
    served, base = http_dir
    (served / "a.txt").write_bytes(b"good")
    root = tmp_path / "data"
    _write(root, {"a.txt": b"bad"})
    entry = _entry({"a.txt": b"good"}, urls={"a.txt": f"{base}/a.txt"})
    report = fetch(entry, root)
    assert (root / "demo" / "a.txt").read_bytes() == b"good"
    assert report.files[0].sha256 == _sha(b"good") and _leftovers(root) == []


def test_fetch_keeps_old_file_when_download_is_wrong(http_dir, tmp_path):
    served, base = http_dir
    (served / "a.txt").write_bytes(b"also bad")
    root = tmp_path / "data"
    _write(root, {"a.txt": b"bad"})
    entry = _entry({"a.txt": b"good"}, urls={"a.txt": f"{base}/a.txt"})
    with pytest.raises(DataError, match="failed its checksum"):
        fetch(entry, root)
    assert (root / "demo" / "a.txt").read_bytes() == b"bad" and _leftovers(root) == []


def test_fetch_corrupt_file_without_url(tmp_path):
    _write(tmp_path, {"a.txt": b"bad"})
    with pytest.raises(DataError, match="is corrupt .* no download URL"):
        fetch(_entry({"a.txt": b"good"}), tmp_path)


def test_external_entry_explains_how_to_obtain_and_pin(tmp_path):
    _write_catalog(tmp_path, "demo", [_entry_dict(access="external", files=[], path="demo",
                                                   obtain="register at example.org and download the archive")])
    entry = load_catalogs(tmp_path)["x"]
    assert entry.access == "external" and not entry.files
    for call in (verify, fetch):
        with pytest.raises(DataError, match="not mirrored.*register at example.org.*add its files with their sha256"):
            call(entry, tmp_path)
    assert catalog_table([entry], tmp_path)[0]["status"] == "external (not mirrored)"
