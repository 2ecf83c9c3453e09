"""Molecules as graphs: kekulised SMILES ↔ (atom types, bond-order adjacency), GDSS-style decoding.

* :func:`smiles_to_graph` — heavy atoms in SMILES order, bonds 1/2/3 (kekulised: no aromatic
  bonds). An atom outside the vocabulary or too many atoms is a :class:`MoleculeError` naming the row;
  an unparseable SMILES returns ``None`` (callers count it).
* :func:`graph_to_mol` — the reverse; as GDSS, an N with four bonds gets a formal charge of +1
  (the only charge the graph representation can recover).
* :func:`is_valid` — validity *without* correction (RDKit valence check passes).
* :func:`correct_valency` — GDSS's correction: while an atom exceeds its valence, lower the order of
  its highest-order bond by one (a single bond is removed); reported separately from validity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

QM9_ATOMS = ("C", "N", "O", "F")
ZINC_ATOMS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
MAX_VALENCE = {"C": 4, "N": 3, "O": 2, "F": 1, "P": 5, "S": 6, "Cl": 1, "Br": 1, "I": 1}


class MoleculeError(ValueError):
    """A molecule that the configured vocabulary or size cannot represent."""


def smiles_to_graph(smiles: str, atoms: Sequence[str] = QM9_ATOMS, max_atoms: int = 9,
                    row: int | None = None) -> tuple[Tensor, Tensor] | None:
    """``(types [n] long, bonds [n,n] float in {0,1,2,3})`` or ``None`` if RDKit cannot parse it."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    Chem.Kekulize(mol, clearAromaticFlags=True)
    where = f"row {row} ({smiles!r})" if row is not None else repr(smiles)
    n = mol.GetNumAtoms()
    if n > max_atoms:
        raise MoleculeError(f"{where}: {n} heavy atoms > max_atoms={max_atoms}; raise data.max_nodes")
    types = []
    for a in mol.GetAtoms():
        if a.GetSymbol() not in atoms:
            raise MoleculeError(f"{where}: atom {a.GetSymbol()!r} not in the vocabulary {list(atoms)}; "
                                "extend data.atoms or filter the dataset")
        types.append(atoms.index(a.GetSymbol()))
    bonds = torch.zeros(n, n)
    for b in mol.GetBonds():
        order = b.GetBondTypeAsDouble()
        if order not in (1.0, 2.0, 3.0):
            raise MoleculeError(f"{where}: bond order {order} after kekulisation is not 1, 2 or 3")
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        bonds[i, j] = bonds[j, i] = order
    return torch.tensor(types, dtype=torch.long), bonds


def graph_to_mol(types: Tensor, bonds: Tensor, atoms: Sequence[str] = QM9_ATOMS) -> Any:
    """An RDKit ``RWMol`` (not sanitised) from atom types and a bond-order matrix."""
    from rdkit import Chem

    kinds = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE}
    mol = Chem.RWMol()
    for t in types.tolist():
        mol.AddAtom(Chem.Atom(atoms[int(t)]))
    n = len(types)
    for i in range(n):
        for j in range(i + 1, n):
            order = int(round(float(bonds[i, j])))
            if order > 0:
                mol.AddBond(i, j, kinds[min(order, 3)])
    for a in mol.GetAtoms():
        if a.GetSymbol() == "N" and sum(b.GetBondTypeAsDouble() for b in a.GetBonds()) == 4:
            a.SetFormalCharge(1)
    return mol


def is_valid(mol: Any) -> bool:
    """RDKit valence check passes (validity without correction)."""
    from rdkit import Chem

    try:
        Chem.SanitizeMol(Chem.Mol(mol), sanitizeOps=Chem.SanitizeFlags.SANITIZE_PROPERTIES)
        return True
    except Exception:  # noqa: BLE001 - RDKit raises several exception types for bad valences
        return False


def overfull_atom(mol: Any) -> int | None:
    """Index of the first atom whose bond orders exceed its valence (N⁺ counts one more), or ``None``."""
    for a in mol.GetAtoms():
        allowed = MAX_VALENCE.get(a.GetSymbol(), 4) + max(a.GetFormalCharge(), 0)
        if sum(b.GetBondTypeAsDouble() for b in a.GetBonds()) > allowed:
            return a.GetIdx()
    return None


def correct_valency(mol: Any) -> Any:
    """GDSS valency correction on a copy: lower the highest-order bond of an over-full atom, repeatedly."""
    from rdkit import Chem

    mol = Chem.RWMol(mol)
    lower = {3.0: Chem.BondType.DOUBLE, 2.0: Chem.BondType.SINGLE}
    for _ in range(4 * mol.GetNumBonds() + 1):
        idx = overfull_atom(mol)
        if idx is None:
            break
        bond = max(mol.GetAtomWithIdx(idx).GetBonds(), key=lambda b: (b.GetBondTypeAsDouble(), -b.GetIdx()))
        order = bond.GetBondTypeAsDouble()
        if order in lower:
            bond.SetBondType(lower[order])
        else:
            mol.RemoveBond(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx())
    for a in mol.GetAtoms():  # recompute the N+ rule after bonds changed
        if a.GetSymbol() == "N":
            a.SetFormalCharge(1 if sum(b.GetBondTypeAsDouble() for b in a.GetBonds()) == 4 else 0)
    return mol


def canonical_smiles(mol: Any, largest_fragment: bool = True) -> str | None:
    """Canonical SMILES (of the largest fragment, as GDSS reports corrected molecules), or ``None``."""
    from rdkit import Chem

    try:
        m = Chem.Mol(mol)
        Chem.SanitizeMol(m)
    except Exception:  # noqa: BLE001
        return None
    smi = Chem.MolToSmiles(m)
    if largest_fragment and "." in smi:
        smi = max(smi.split("."), key=len)
        return Chem.MolToSmiles(Chem.MolFromSmiles(smi)) if Chem.MolFromSmiles(smi) else None
    return smi
