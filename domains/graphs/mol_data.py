"""Molecule datasets: QM9 (with the GDSS test split), ZINC250k (full table + GDSS split) and MOSES readers.

Invalid (unparseable) SMILES are counted and returned with their rows, never silently dropped. Every
file is reached through its catalog entry (paths relative to the data root), never a fixed path.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from core.catalog import CatalogEntry, DataError, data_root, get_entry
from domains.graphs.molecules import QM9_ATOMS, MoleculeError, smiles_to_graph

ZINC250K_TABLE = "250k_rndm_zinc_drugs_clean_3.csv"


@dataclass
class MolGraphs:
    """Dense kekulised graphs: ``types [M, N]`` (-1 = padding), ``bonds [M, N, N]`` (0..3), and the rows."""

    types: Tensor
    bonds: Tensor
    rows: list[int]
    invalid_rows: list[int] = field(default_factory=list)


def _file(entry: CatalogEntry, name: str) -> Path:
    for f in entry.files:
        if f.path.endswith(name):
            return data_root() / f.path
    raise KeyError(f"catalog entry {entry.name!r} lists no file ending in {name!r}")


def read_qm9(entry: CatalogEntry) -> list[str]:
    """All QM9 SMILES in GDB-9 order (row i = gdb_{i+1})."""
    with _file(entry, "qm9_smiles.csv").open() as fh:
        rd = csv.reader(fh)
        header = next(rd)
        if header != ["smiles"]:
            raise ValueError(f"qm9_smiles.csv header {header} != ['smiles']; see data/molecules/PROVENANCE.md")
        return [r[0] for r in rd]


def qm9_test_rows(entry: CatalogEntry) -> list[int]:
    """GDSS test split: ``valid_idxs`` used as 0-based rows (GDSS convention; MoFlow subtracts 1)."""
    doc = json.loads(_file(entry, "valid_idx_qm9.json").read_text())
    return sorted(int(i) for i in doc["valid_idxs"])


def qm9_split(entry: CatalogEntry) -> tuple[list[int], list[int]]:
    test = set(qm9_test_rows(entry))
    n = len(read_qm9(entry))
    return [i for i in range(n) if i not in test], sorted(test)


def to_graphs(smiles: Sequence[str] | Mapping[int, str], rows: Sequence[int], atoms: Sequence[str] = QM9_ATOMS,
              max_atoms: int = 9, source: str | None = None) -> MolGraphs:
    """Dense graphs of the given rows; unparseable SMILES are collected in ``invalid_rows``.

    ``smiles`` is indexed by row (a list, or a mapping of file row -> SMILES when only a subset was
    read); ``source`` (a file name) prefixes ingest errors, so an over-size row names its file."""
    types = torch.full((len(rows), max_atoms), -1, dtype=torch.long)
    bonds = torch.zeros(len(rows), max_atoms, max_atoms)
    kept, bad = [], []
    for r in rows:
        try:
            g = smiles_to_graph(smiles[r], atoms, max_atoms, row=r)
        except MoleculeError as exc:
            if source is None:
                raise
            raise MoleculeError(f"{source}: {exc}") from None
        if g is None:
            bad.append(r)
            continue
        k, n = len(kept), len(g[0])
        types[k, :n], bonds[k, :n, :n] = g
        kept.append(r)
    return MolGraphs(types[: len(kept)], bonds[: len(kept)], kept, bad)


def read_smiles_lines(path: str | Path) -> list[str]:
    """One SMILES per line, no header (the ZINC250k JT-VAE split files)."""
    return [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]


def read_zinc250k(path: str | Path) -> list[str]:
    """The full ZINC250k table ``250k_rndm_zinc_drugs_clean_3.csv`` (columns smiles, logP, qed, SAS;
    SMILES carry a trailing newline inside quotes, stripped here). Not mirrored: get it from the URL in
    the catalog entry ``zinc250k``; use its split with :func:`zinc250k_split`."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; download {ZINC250K_TABLE} (URL in catalog entry zinc250k) "
                                "into the data root")
    with p.open(newline="") as fh:
        rd = csv.DictReader(fh)
        if not rd.fieldnames or "smiles" not in rd.fieldnames:
            raise ValueError(f"{p}: no 'smiles' column (got {rd.fieldnames})")
        return [row["smiles"].strip() for row in rd]


def zinc250k_test_rows(path: str | Path) -> list[int]:
    """GDSS ZINC250k test split: a plain JSON list of 0-based rows of the full table."""
    return sorted(int(i) for i in json.loads(Path(path).read_text()))


def zinc250k_table(entry: CatalogEntry) -> Path:
    """Where the full table lives: its pinned file if the entry lists one, else ``schema.table`` under
    the data root (the entry is ``access: external`` until someone pins the downloaded file)."""
    try:
        return _file(entry, ZINC250K_TABLE)
    except KeyError:
        rel = entry.data_schema.get("table")
        if not rel:
            raise KeyError(f"catalog entry {entry.name!r} lists neither a file {ZINC250K_TABLE!r} nor "
                           "schema.table") from None
        return data_root() / str(rel)


def zinc250k_split(entry: CatalogEntry) -> tuple[list[str], list[int], list[int]]:
    """``(smiles, train_rows, test_rows)`` of the full ZINC250k table with the GDSS split.

    The test rows come from the index file of the entry named in ``schema.test_index_entry``
    (checksum-verified); train is every other row. A missing table, or a table that is not the full
    one (row count or an index beyond its end), is a :class:`DataError` that says what to download."""
    from core.catalog import verify

    table = zinc250k_table(entry)
    if not table.is_file():
        raise DataError(f"dataset {entry.name!r}: {table} is missing (data root {data_root()}: $DIFFUSCI_DATA, "
                        f"else ../shared/data next to the checkout); the table is not mirrored: download it from {entry.url} to that "
                        "path, then pin it with its sha256sum as described in catalogs/molecules.yaml")
    index_entry = get_entry(str(entry.data_schema.get("test_index_entry", "zinc250k_test_idx")))
    verify(index_entry)
    smiles = read_zinc250k(table)
    expected = entry.data_schema.get("rows")
    if expected is not None and len(smiles) != int(expected):
        raise DataError(f"dataset {entry.name!r}: {table} has {len(smiles)} rows, expected {int(expected)} "
                        f"(catalog schema.rows); download the full table from {entry.url}")
    test = zinc250k_test_rows(_file(index_entry, "valid_idx_zinc250k.json"))
    if test and test[-1] >= len(smiles):
        raise DataError(f"dataset {entry.name!r}: test index {test[-1]} is beyond the {len(smiles)} rows of "
                        f"{table}; the GDSS indices need the full table from {entry.url}")
    held = set(test)
    return smiles, [i for i in range(len(smiles)) if i not in held], test


def iter_moses(path: str | Path, limit: int | None = None) -> Iterator[str]:
    """SMILES from a MOSES ``*.csv.gz`` split (column ``SMILES``), streamed (the train split has 1.6M)."""
    with gzip.open(path, "rt", newline="") as fh:
        rd = csv.DictReader(fh)
        if not rd.fieldnames or "SMILES" not in rd.fieldnames:
            raise ValueError(f"{path}: no 'SMILES' column (got {rd.fieldnames})")
        for k, row in enumerate(rd):
            if limit is not None and k >= limit:
                return
            yield row["SMILES"]


def moses_file(entry: CatalogEntry, split: str) -> Path:
    """The MOSES ``<split>.csv.gz`` of the catalog entry (``train``, ``test`` or ``test_scaffolds``)."""
    return _file(entry, f"/{split}.csv.gz")


def moses_count(entry: CatalogEntry, split: str) -> int:
    """Row count of a MOSES split from the catalog schema (lets a subset be chosen before reading)."""
    rows = entry.data_schema.get("rows")
    if not isinstance(rows, dict) or split not in rows:
        raise KeyError(f"catalog entry {entry.name!r} has no schema.rows.{split}")
    return int(rows[split])


def read_moses_rows(path: Path, rows: Collection[int] | None, expected: int) -> dict[int, str]:
    """``{row: SMILES}`` of the wanted rows (``None`` = all) of a MOSES split, streamed: the strings of
    other rows are never kept. The file must have ``expected`` rows (the catalog count the subset
    was drawn from); a different count is a :class:`DataError`."""
    wanted = None if rows is None else set(rows)
    out: dict[int, str] = {}
    n = 0
    for n, smi in enumerate(iter_moses(path), start=1):
        if wanted is None or n - 1 in wanted:
            out[n - 1] = smi
    if n != expected:
        raise DataError(f"{path}: {n} rows, the catalog schema says {expected}; the file is a different "
                        "version (check it with `diffusci catalog verify moses`)")
    return out
