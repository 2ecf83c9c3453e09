"""Molecule datasets: QM9 (with the GDSS test split), ZINC250k and MOSES readers.

Invalid (unparseable) SMILES are counted and returned with their rows, never silently dropped.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from core.catalog import CatalogEntry, data_root
from domains.graphs.molecules import QM9_ATOMS, smiles_to_graph


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


def to_graphs(smiles: Sequence[str], rows: Sequence[int], atoms: Sequence[str] = QM9_ATOMS,
              max_atoms: int = 9) -> MolGraphs:
    """Dense graphs of the given rows; unparseable SMILES are collected in ``invalid_rows``."""
    types = torch.full((len(rows), max_atoms), -1, dtype=torch.long)
    bonds = torch.zeros(len(rows), max_atoms, max_atoms)
    kept, bad = [], []
    for r in rows:
        g = smiles_to_graph(smiles[r], atoms, max_atoms, row=r)
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
    SMILES carry a trailing newline inside quotes). Not mirrored: get it from the URL in the catalog
    entry ``zinc250k_test_idx``; use its indices with :func:`zinc250k_test_rows`."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; download 250k_rndm_zinc_drugs_clean_3.csv (see catalog "
                                "entry zinc250k_test_idx) into the data root")
    with p.open(newline="") as fh:
        rd = csv.DictReader(fh)
        if not rd.fieldnames or "smiles" not in rd.fieldnames:
            raise ValueError(f"{p}: no 'smiles' column (got {rd.fieldnames})")
        return [row["smiles"].strip() for row in rd]


def zinc250k_test_rows(path: str | Path) -> list[int]:
    return sorted(int(i) for i in json.loads(Path(path).read_text()))


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
