"""Molecules in the GDSS domain (QM9, MOSES, ZINC250k): kekulised graphs in, SMILES + SDF + molecule
metrics out.

Node features are one-hot atom types (``data.atoms``; zero rows are padding), the adjacency holds bond
orders 1/2/3; decoding takes the argmax type of each real node and rounds bond values to 0..3.
The dataset is chosen by its catalog entry name (``cfg.dataset``, see :data:`MOLECULE_DATASETS`).
CPU presets train on a fixed random subset of the training split (``data.n_train``; the subset does
not depend on the run seed, so sampling can recover the node-count distribution without the data).
For MOSES the subset rows are drawn from the catalog's row count first, so only they are parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.catalog import CatalogEntry
from core.seeding import make_generator
from domains.graphs import mol_data
from domains.graphs.mol_metrics import canonical_smiles_of
from domains.graphs.molecules import correct_valency

MOLECULE_DATASETS = ("qm9", "moses", "zinc250k")


@dataclass(frozen=True)
class MolSplit:
    """Train and test SMILES indexed by row of their file (QM9 and ZINC250k: one table for both; MOSES:
    ``train.csv.gz`` / ``test.csv.gz``, holding only the chosen rows), the chosen rows, and the file
    names that ingest errors name (``None``: the row alone, as QM9 always reported)."""

    train_smiles: Sequence[str] | Mapping[int, str]
    train: list[int]
    test_smiles: Sequence[str] | Mapping[int, str]
    test: list[int]
    train_source: str | None = None
    test_source: str | None = None


def _subset(rows: list[int], n: int | None, purpose: int) -> list[int]:
    if n is None or n >= len(rows):
        return rows
    perm = torch.randperm(len(rows), generator=make_generator(purpose))[:n]
    return sorted(rows[i] for i in perm.tolist())


def _split(entry: CatalogEntry, n_train: int | None, n_test: int | None) -> MolSplit:
    return _split_by_name(entry.name, n_train, n_test)


@lru_cache(maxsize=4)
def _split_by_name(name: str, n_train: int | None, n_test: int | None) -> MolSplit:
    from core.catalog import get_entry

    entry = get_entry(name)
    if name == "qm9":
        smiles = tuple(mol_data.read_qm9(entry))
        train, test = mol_data.qm9_split(entry)
        return MolSplit(smiles, _subset(train, n_train, 11), smiles, _subset(test, n_test, 12))
    if name == "zinc250k":
        table, train, test = mol_data.zinc250k_split(entry)
        src = mol_data.zinc250k_table(entry).name
        return MolSplit(table, _subset(train, n_train, 11), table, _subset(test, n_test, 12), src, src)
    if name == "moses":
        picked = {}
        for split, n, purpose in (("train", n_train, 11), ("test", n_test, 12)):
            count = mol_data.moses_count(entry, split)
            rows = _subset(list(range(count)), n, purpose)
            read = mol_data.read_moses_rows(mol_data.moses_file(entry, split), None if n is None else rows, count)
            picked[split] = (read, rows)
        return MolSplit(picked["train"][0], picked["train"][1], picked["test"][0], picked["test"][1],
                        "train.csv.gz", "test.csv.gz")
    raise ValueError(f"dataset {name!r} has no molecule reader (data.kind: molecule); molecule datasets: "
                     f"{', '.join(MOLECULE_DATASETS)}")


def _dense(mg: mol_data.MolGraphs, n_types: int) -> dict[str, Tensor]:
    real = mg.types >= 0
    x = torch.nn.functional.one_hot(mg.types.clamp(min=0), n_types).float() * real[..., None]
    return {"x": x, "adj": mg.bonds, "mask": real.float()}


def prepare(entry: CatalogEntry, atoms: list[str], max_atoms: int, n_train: int | None,
            n_test: int | None) -> dict[str, Tensor]:
    sp = _split(entry, n_train, n_test)
    out: dict[str, Tensor] = {}
    invalid = 0
    for name, smiles, rows, src in (("train", sp.train_smiles, sp.train, sp.train_source),
                                    ("test", sp.test_smiles, sp.test, sp.test_source)):
        mg = mol_data.to_graphs(smiles, rows, atoms, max_atoms, source=src)
        invalid += len(mg.invalid_rows)
        out.update({f"{name}_{k}": v for k, v in _dense(mg, len(atoms)).items()})
        out[f"{name}_rows"] = torch.tensor(mg.rows)
    out["n_invalid_smiles"] = torch.tensor(invalid)
    out["n_self_loops"] = torch.tensor(0)
    return out


def train_node_counts(entry: CatalogEntry, atoms: list[str], max_atoms: int, n_train: int | None,
                      n_test: int | None = None) -> Tensor:
    """Heavy-atom counts of the training subset (the train rows do not depend on ``n_test``; passing
    the configured one reuses the cached split instead of reading the test split again)."""
    return _train_counts(entry.name, tuple(atoms), max_atoms, n_train, n_test)


@lru_cache(maxsize=4)
def _train_counts(name: str, atoms: tuple[str, ...], max_atoms: int, n_train: int | None,
                  n_test: int | None) -> Tensor:
    sp = _split_by_name(name, n_train, n_test)
    mg = mol_data.to_graphs(sp.train_smiles, sp.train, atoms, max_atoms, source=sp.train_source)
    return (mg.types >= 0).sum(1)


def decode(x: dict[str, Tensor], sizes: Tensor) -> tuple[Tensor, Tensor]:
    """Padded ``(types, bonds)``: argmax type on real nodes, bond values rounded to 0..3 (NaN -> 0;
    the domain reports the number of non-finite samples separately)."""
    n_max = x["adj"].shape[1]
    real = torch.arange(n_max)[None, :] < sizes[:, None]
    types = torch.where(real, x["x"].nan_to_num(0.0).argmax(-1), torch.full_like(real, -1, dtype=torch.long))
    bonds = x["adj"].nan_to_num(0.0).round().clamp(0, 3) * (real[:, :, None] & real[:, None, :])
    return types, bonds


def write_outputs(mols: list[Any], out_dir: Path) -> list[Path]:
    """``samples.smi`` (one SMILES per line, after valency correction; invalid lines are ``None``) and
    ``samples.sdf`` (the corrected molecules that RDKit can write)."""
    from rdkit import Chem

    smi_path, sdf_path = out_dir / "samples.smi", out_dir / "samples.sdf"
    fixed = [correct_valency(m) for m in mols]
    lines = []
    tmp = sdf_path.with_name(".samples.sdf.tmp")
    with Chem.SDWriter(str(tmp)) as w:
        for k, m in enumerate(fixed):
            try:
                mm = Chem.Mol(m)
                Chem.SanitizeMol(mm)
                mm.SetProp("_Name", f"sample_{k}")
                w.write(mm)
                lines.append(Chem.MolToSmiles(mm))
            except Exception:  # noqa: BLE001 - an unfixable molecule is written as None
                lines.append("None")
    tmp.replace(sdf_path)
    tmp_smi = smi_path.with_name(".samples.smi.tmp")
    tmp_smi.write_text("\n".join(lines) + "\n")
    tmp_smi.replace(smi_path)
    return [smi_path, sdf_path]


def reference_smiles(entry: CatalogEntry, n_train: int | None, n_test: int | None) -> tuple[list[str], list[str]]:
    """``(train, test)`` SMILES of the configured split subsets (novelty / NSPDK, FCD, property references)."""
    sp = _split(entry, n_train, n_test)
    return [sp.train_smiles[r] for r in sp.train], [sp.test_smiles[r] for r in sp.test]


def evaluate(mols: list[Any], entry: CatalogEntry, data: dict[str, Tensor], n_train: int | None,
             n_test: int | None = None, fcd: bool = False, plots: Path | None = None) -> dict[str, Any]:
    from domains.graphs.mol_eval import score_molecules

    train, test = reference_smiles(entry, n_train, n_test)
    m = score_molecules(mols, train, test, fcd=fcd, plots=plots)
    m["novelty_reference"] = f"{len(train)} training molecules" + (" (subset)" if n_train else "")
    m["n_invalid_smiles_in_dataset"] = int(data["n_invalid_smiles"])
    return m


@lru_cache(maxsize=1)
def _chemnet() -> Any:
    """One ``fcd_torch`` ChemNet per process (loading it is the fixed cost of every FCD)."""
    from fcd_torch import FCD

    return FCD(device="cpu", n_jobs=1)


def fcd_score(gen: list[str], ref: list[str] | None = None, *, ref_stats: dict[str, Any] | None = None) -> float | None:
    """Fréchet ChemNet Distance (``fcd_torch``, CPU) of valid generated SMILES to the reference (SMILES, or
    its ChemNet statistics from :func:`fcd_reference`); ``None`` with fewer than two valid molecules on
    either side (the covariance is undefined)."""
    if len(gen) < 2:
        return None
    if ref_stats is None and (ref_stats := fcd_reference(ref or [])) is None:
        return None
    return float(_chemnet()(pref=ref_stats, gen=gen))


def fcd_reference(ref: list[str]) -> dict[str, Any] | None:
    """ChemNet activation statistics (mean, covariance) of the reference SMILES, for :func:`fcd_score`."""
    if len(ref) < 2:
        return None
    return dict(_chemnet().precalc(ref))


def molecule_grid(smiles: list[str], path: Path, n: int = 16) -> Path | None:
    """A PNG grid of the first ``n`` valid generated molecules (RDKit drawing)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    mols = [Chem.MolFromSmiles(s) for s in smiles[:n]]
    mols = [m for m in mols if m is not None]
    if not mols:
        return None
    img = Draw.MolsToGridImage(mols, molsPerRow=4, subImgSize=(200, 200), legends=[canonical_smiles_of(
        Chem.MolToSmiles(m)) or "" for m in mols])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    img.save(str(tmp))
    tmp.replace(path)
    return path
