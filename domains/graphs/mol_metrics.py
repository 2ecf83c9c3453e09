"""Molecule metrics as GDSS reports them: validity without correction, validity (after valency
correction), uniqueness and novelty (FCD: ``qm9.fcd_score``; NSPDK: ``nspdk``; both combined in
``mol_eval.score_molecules``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch import Tensor

from domains.graphs.molecules import QM9_ATOMS, canonical_smiles, correct_valency, graph_to_mol, is_valid


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
    (the training SMILES already canonicalised) replaces ``train_smiles`` when given."""
    n = len(mols)
    if n == 0:
        raise ValueError("molecule_metrics needs at least one molecule")
    valid_raw = sum(is_valid(m) for m in mols)
    smiles = [canonical_smiles(correct_valency(m)) for m in mols]
    valid = [s for s in smiles if s]
    train = train_canonical if train_canonical is not None else {canonical_smiles_of(s) for s in train_smiles}
    return {"validity_wo_correction": valid_raw / n, "validity": len(valid) / n,
            "uniqueness": len(set(valid)) / max(len(valid), 1),
            "novelty": sum(s not in train for s in valid) / max(len(valid), 1), "smiles": valid}


def canonical_smiles_of(smiles: str) -> str | None:
    from rdkit import Chem

    m = Chem.MolFromSmiles(smiles)
    return Chem.MolToSmiles(m) if m is not None else None
