"""One molecule evaluation for generated samples and for external files (SMILES / SDF), so both are
scored by exactly the same code: validity without correction, validity (GDSS valency correction),
uniqueness, novelty against the training split, NSPDK MMD and property distances (QED, logP, SA,
molecular weight) against the test split, optional FCD; plots: property histograms and a grid.

External files: ``.smi`` / ``.txt`` (first whitespace-separated token of each non-empty line; a
first line ``smiles`` is a header; ``None`` lines count as invalid samples), ``.csv`` (the column
named ``smiles``, any case) and ``.sdf``. A record RDKit cannot even parse without sanitisation is
an invalid sample (counted in ``n_unparseable``); the others go through the same validity check and
valency correction as generated graphs.

The reference side of every metric (canonical training SMILES for novelty, NSPDK vectors, properties
and ChemNet statistics of the test split) depends only on the reference lists, so it is computed once
per process and reused (:func:`reference`): scoring many checkpoints or sampler settings of one run
against QM9's 120,803 / 13,082 molecules then pays for it once, not per sample set.
"""

from __future__ import annotations

import csv
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from domains.graphs.mol_metrics import canonical_smiles_of, molecule_metrics
from domains.graphs.nspdk import graph_features, nspdk_mmd, smiles_graphs
from domains.graphs.properties import properties_of, property_distances, property_histograms

SMILES_SUFFIXES = (".smi", ".txt", ".smiles")


#: reference sets kept per process (a run's train/test pair; a benchmark may alternate two datasets)
_REFERENCES: OrderedDict[str, dict[str, Any]] = OrderedDict()
_MAX_REFERENCES = 2


def _digest(smiles: Sequence[str]) -> str:
    h = hashlib.sha256()
    for s in smiles:
        h.update(s.encode())
        h.update(b"\n")
    return h.hexdigest()


def reference(train_smiles: Sequence[str], test_smiles: Sequence[str], *, fcd: bool = False) -> dict[str, Any]:
    """The reference side of :func:`score_molecules` for one (train, test) pair, memoised by content:
    ``train`` (canonical SMILES set), ``nspdk`` (test-split feature vectors), ``props`` (test-split
    properties) and, once asked for, ``fcd`` (test-split ChemNet statistics)."""
    from domains.graphs.qm9 import fcd_reference

    key = _digest(train_smiles) + _digest(test_smiles)
    ref = _REFERENCES.get(key)
    if ref is None:
        ref = {"train": {canonical_smiles_of(s) for s in train_smiles},
               "nspdk": [graph_features(*g) for g in smiles_graphs(test_smiles)],
               "props": properties_of(test_smiles)}
        _REFERENCES[key] = ref
        while len(_REFERENCES) > _MAX_REFERENCES:
            _REFERENCES.popitem(last=False)
    _REFERENCES.move_to_end(key)
    if fcd and "fcd" not in ref:
        ref["fcd"] = fcd_reference(list(test_smiles))
    return ref


def score_molecules(mols: Sequence[Any], train_smiles: Sequence[str], test_smiles: Sequence[str], *,
                    fcd: bool = False, plots: Path | None = None, label: str = "generated") -> dict[str, Any]:
    """All molecule metrics of ``mols`` (RDKit molecules, ``None`` = unparseable sample)."""
    from domains.graphs.qm9 import fcd_score, molecule_grid

    if len(mols) == 0:
        raise ValueError("no molecules to score: the sample set is empty")
    ref = reference(train_smiles, test_smiles, fcd=fcd)
    parsed = [m for m in mols if m is not None]
    m = molecule_metrics(parsed, train_canonical=ref["train"]) if parsed else {
        "validity_wo_correction": 0.0, "validity": 0.0, "uniqueness": 0.0, "novelty": 0.0,
        "invalid_overfull": {}, "invalid_other": 0.0, "smiles": []}
    scale = len(parsed) / len(mols)  # unparseable samples are invalid samples; shares are of all samples
    m["validity_wo_correction"] *= scale
    m["validity"] *= scale
    m["invalid_other"] *= scale
    m["invalid_overfull"] = {el: v * scale for el, v in m["invalid_overfull"].items()}
    valid = m["smiles"]
    m["nspdk_mmd"] = nspdk_mmd(ref["nspdk"], smiles_graphs(valid)) if valid and ref["nspdk"] else None
    gen_props, ref_props = properties_of(valid), ref["props"]
    m.update(property_distances(gen_props, ref_props))
    if fcd:
        m["fcd"] = fcd_score(valid, ref_stats=ref["fcd"]) if ref["fcd"] is not None else None
        m["fcd_reference"] = f"{len(test_smiles)} test-split molecules"
    if plots is not None:
        property_histograms(gen_props, ref_props, plots / "properties.png", label)
        molecule_grid(valid, plots / "molecules.png")
    m.update({"n": len(mols), "n_unparseable": len(mols) - len(parsed), "n_valid": len(valid),
              "nspdk_reference": f"{len(test_smiles)} test-split molecules"})
    return m


def _smiles_column(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = {c.lower(): c for c in (reader.fieldnames or [])}
        if "smiles" not in cols:
            raise ValueError(f"{path}: no 'smiles' column (columns: {reader.fieldnames}); name the SMILES column "
                             "'smiles' or pass a .smi file")
        return [row[cols["smiles"]] or "" for row in reader]


def _smiles_lines(path: Path) -> list[str]:
    lines = [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]
    if lines and lines[0].lower() == "smiles":
        lines = lines[1:]
    return lines


def _from_smiles(smiles: Sequence[str]) -> list[Any]:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s, sanitize=False) if s and s != "None" else None
        out.append(_prepared(m))
    return out


def _prepared(m: Any) -> Any:
    """Heavy atoms only; a sanitisable molecule kekulised (bond orders 1/2/3, as decoded graphs), any other
    left as parsed (it is invalid without correction; the correction may fix it)."""
    from rdkit import Chem

    if m is None:
        return None
    try:
        k = Chem.RemoveHs(m)  # sanitises; heavy-atom graphs as the datasets
        Chem.Kekulize(k, clearAromaticFlags=True)
        return k
    except Exception:  # noqa: BLE001 - invalid as written: validity decides, correction may fix it
        try:
            return Chem.RemoveHs(m, sanitize=False)
        except Exception:  # noqa: BLE001
            return m


def read_molecules(path: Path) -> list[Any]:
    """RDKit molecules of an external sample file (``None`` for records RDKit cannot parse)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sample file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in SMILES_SUFFIXES:
        return _from_smiles(_smiles_lines(path))
    if suffix == ".csv":
        return _from_smiles(_smiles_column(path))
    if suffix == ".sdf":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        return [_prepared(m) for m in Chem.SDMolSupplier(str(path), sanitize=False, removeHs=False)]
    raise ValueError(f"{path}: unsupported sample file type {suffix!r}; use .smi/.txt (SMILES per line), .csv "
                     "(a 'smiles' column) or .sdf")
