"""Molecule metrics as GDSS reports them: validity without correction, validity (after valency
correction), uniqueness and novelty (FCD: ``qm9.fcd_score``; NSPDK: ``nspdk``; both combined in
``mol_eval.score_molecules``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor

from domains.graphs.molecules import (
    QM9_ATOMS,
    canonical_smiles,
    correct_valency,
    graph_to_mol,
    is_valid,
    overfull_atom,
)


def decode_molecules(types: Tensor, bonds: Tensor, atoms: Sequence[str] = QM9_ATOMS) -> list[Any]:
    """RDKit molecules from padded graphs (type ``-1`` = no atom)."""
    mols = []
    for t, b in zip(types, bonds, strict=True):
        keep = t >= 0
        mols.append(graph_to_mol(t[keep], b[keep][:, keep], atoms))
    return mols


def molecule_metrics(mols: Sequence[Any], train_smiles: Iterable[str] = (), *,
                     train_canonical: set[str | None] | None = None) -> dict[str, Any]:
    """``validity_wo_correction``, ``validity``, ``uniqueness`` (of valid), ``novelty`` (valid not in
    train), as fractions; plus the canonical SMILES of the corrected valid molecules. ``train_canonical``
    (the training SMILES already canonicalised) replaces ``train_smiles`` when given.

    Why molecules fail without correction: ``invalid_overfull`` maps an element to the share of all
    molecules whose first over-full atom (more bond order than its valence) is that element;
    ``invalid_other`` is the share RDKit rejects without an over-full atom."""
    n = len(mols)
    if n == 0:
        raise ValueError("molecule_metrics needs at least one molecule")
    ok = [is_valid(m) for m in mols]
    valid_raw = sum(ok)
    overfull: dict[str, int] = {}
    other = 0
    for m, good in zip(mols, ok, strict=True):
        if good:
            continue
        if (idx := overfull_atom(m)) is None:
            other += 1
        else:
            el = m.GetAtomWithIdx(idx).GetSymbol()
            overfull[el] = overfull.get(el, 0) + 1
    smiles = [canonical_smiles(correct_valency(m)) for m in mols]
    valid = [s for s in smiles if s]
    train = train_canonical if train_canonical is not None else {canonical_smiles_of(s) for s in train_smiles}
    return {"validity_wo_correction": valid_raw / n, "validity": len(valid) / n,
            "uniqueness": len(set(valid)) / max(len(valid), 1),
            "novelty": sum(s not in train for s in valid) / max(len(valid), 1),
            "invalid_overfull": {el: c / n for el, c in sorted(overfull.items())}, "invalid_other": other / n,
            "smiles": valid}


def canonical_smiles_of(smiles: str) -> str | None:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(m) if m is not None else None
