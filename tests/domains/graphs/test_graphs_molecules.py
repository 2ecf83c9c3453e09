"""Molecule graphs: SMILES round trips, bad input, valency correction, metrics; real QM9/ZINC/MOSES files."""

import pytest
import torch

from core.catalog import data_root, get_entry
from domains.graphs import mol_data
from domains.graphs.mol_metrics import decode_molecules, molecule_metrics
from domains.graphs.molecules import (
    MoleculeError,
    canonical_smiles,
    correct_valency,
    graph_to_mol,
    is_valid,
    smiles_to_graph,
)

MOLS = data_root() / "molecules"
needs_data = pytest.mark.skipif(not (MOLS / "qm9_smiles.csv").exists(), reason="data root absent")


def test_kekulised_benzene_has_alternating_bonds():
    types, bonds = smiles_to_graph("c1ccccc1F", max_atoms=9)
    assert types.tolist() == [0] * 6 + [3]
    ring = bonds[:6, :6]
    assert sorted(ring[ring > 0].tolist()).count(2.0) == 6 and ring.sum() == 18  # 3 double + 3 single, x2


def test_round_trip_canonical_smiles():
    for smi in ["CC(=O)N", "C#N", "OC1CC1", "c1ccncc1", "C[NH3+]"]:
        g = smiles_to_graph(smi, max_atoms=9)
        out = canonical_smiles(graph_to_mol(*g))
        if smi == "C[NH3+]":  # charges other than the N+ rule are not represented (4 bonds needed)
            assert out == "CN"
        else:
            assert out == canonical_smiles(graph_to_mol(*smiles_to_graph(out, max_atoms=9)))


def test_bad_input_errors_and_invalid_smiles():
    with pytest.raises(MoleculeError, match=r"row 7 .*'S' not in the vocabulary"):
        smiles_to_graph("CS", row=7)
    with pytest.raises(MoleculeError, match="max_atoms=3"):
        smiles_to_graph("CCCC", max_atoms=3)
    assert smiles_to_graph("C1CC") is None
    mg = mol_data.to_graphs(["CC", "not-a-smiles", "O"], [0, 1, 2])
    assert mg.invalid_rows == [1] and mg.rows == [0, 2] and mg.types.shape == (2, 9)


def test_valency_correction_hand_case():
    # carbon with five single bonds: invalid; correction removes one bond
    types = torch.zeros(6, dtype=torch.long)
    bonds = torch.zeros(6, 6)
    bonds[0, 1:] = bonds[1:, 0] = 1.0
    mol = graph_to_mol(types, bonds)
    assert not is_valid(mol)
    fixed = correct_valency(mol)
    assert is_valid(fixed) and fixed.GetNumBonds() == 4
    # a C=O double bond on an over-full O is lowered first (O with 3 bonds: O=C and C-O ... )
    t2 = torch.tensor([2, 0, 0])
    b2 = torch.tensor([[0.0, 2, 1], [2, 0, 0], [1, 0, 0]])
    fixed2 = correct_valency(graph_to_mol(t2, b2))
    assert is_valid(fixed2) and [b.GetBondTypeAsDouble() for b in fixed2.GetBonds()] == [1.0, 1.0]


def test_n_plus_rule():
    mol = graph_to_mol(*smiles_to_graph("C[N+](C)(C)C", max_atoms=9))
    assert is_valid(mol) and mol.GetAtomWithIdx(1).GetFormalCharge() == 1


def test_molecule_metrics_hand_case():
    graphs = [smiles_to_graph(s) for s in ["CCO", "CCO", "CN"]]
    types = torch.full((4, 9), -1, dtype=torch.long)
    bonds = torch.zeros(4, 9, 9)
    for k, (t, b) in enumerate(graphs):
        types[k, : len(t)], bonds[k, : len(t), : len(t)] = t, b
    types[3, :2] = 3  # F-F=... make an invalid F2 with a double bond
    bonds[3, 0, 1] = bonds[3, 1, 0] = 2.0
    m = molecule_metrics(decode_molecules(types, bonds), ["OCC"])
    assert m["validity_wo_correction"] == 0.75 and m["validity"] == 1.0
    assert m["uniqueness"] == 0.75 and m["novelty"] == 0.5  # CCO is in train; CN and FF are new
    assert m["invalid_overfull"] == {"F": 0.25} and m["invalid_other"] == 0.0


def test_invalid_molecules_are_attributed_to_the_overfull_element():
    # O with three single bonds (an N mistyped as O), C with five bonds, and a valid N+ with four
    types = torch.full((3, 9), -1, dtype=torch.long)
    bonds = torch.zeros(3, 9, 9)
    types[0, :4] = torch.tensor([2, 0, 0, 0])  # O(C)(C)C
    types[1, :6] = torch.tensor([0, 0, 0, 0, 0, 0])  # C(C)(C)(C)(C)C
    types[2, :5] = torch.tensor([1, 0, 0, 0, 0])  # [N+](C)(C)(C)C
    for k, n in ((0, 4), (1, 6), (2, 5)):
        for j in range(1, n):
            bonds[k, 0, j] = bonds[k, j, 0] = 1.0
    m = molecule_metrics(decode_molecules(types, bonds))
    assert m["validity_wo_correction"] == pytest.approx(1 / 3)
    assert m["invalid_overfull"] == pytest.approx({"C": 1 / 3, "O": 1 / 3})
    assert m["invalid_other"] == 0.0


@needs_data
def test_real_qm9_rows_and_split():
    entry = get_entry("qm9")
    smiles = mol_data.read_qm9(entry)
    assert len(smiles) == 133885 and smiles[:3] == ["C", "N", "O"]
    test = mol_data.qm9_test_rows(entry)
    assert len(test) == 13082 and len(set(test)) == 13082
    rows = list(range(0, 133885, 2677))  # 51 rows spread over the set
    mg = mol_data.to_graphs(smiles, rows)
    assert len(mg.rows) + len(mg.invalid_rows) == len(rows)
    mols = decode_molecules(mg.types, mg.bonds)
    same = sum(canonical_smiles(m) == canonical_smiles(graph_to_mol(*smiles_to_graph(smiles[r])))
               for m, r in zip(mols, mg.rows, strict=True))
    assert same == len(mg.rows)
    assert sum(is_valid(m) for m in mols) >= 0.9 * len(mols)


@needs_data
def test_real_zinc_and_moses_partial_files():
    zinc = mol_data.read_smiles_lines(MOLS / "zinc250k_jtvae_test.txt")
    assert len(zinc) == 5000
    from domains.graphs.molecules import ZINC_ATOMS

    mg = mol_data.to_graphs(zinc, range(50), ZINC_ATOMS, max_atoms=38)
    assert len(mg.rows) == 50 and int((mg.types >= 0).sum(1).max()) <= 38
    idx = mol_data.zinc250k_test_rows(MOLS / "valid_idx_zinc250k.json")
    assert len(idx) == 24887 and idx[0] == 2 and idx[-1] == 249429
    moses = list(mol_data.iter_moses(MOLS / "moses" / "test.csv.gz", limit=20))
    assert len(moses) == 20 and all(smiles_to_graph(s, ZINC_ATOMS, 38) is not None for s in moses)


def test_zinc250k_table_reader(tmp_path):
    p = tmp_path / "250k_rndm_zinc_drugs_clean_3.csv"
    p.write_text('smiles,logP,qed,SAS\n"CCO\n",0.1,0.4,2.0\n"c1ccccc1\n",1.2,0.5,1.5\n')
    assert mol_data.read_zinc250k(p) == ["CCO", "c1ccccc1"]
    with pytest.raises(FileNotFoundError, match="250k_rndm_zinc_drugs_clean_3.csv"):
        mol_data.read_zinc250k(tmp_path / "missing.csv")


def test_qed_reward_matches_rdkit():
    from rdkit import Chem
    from rdkit.Chem import QED

    from core.types import StateDict
    from domains.graphs.steering import qed_reward

    t, b = smiles_to_graph("CCO")
    x = torch.zeros(2, 9, 4)
    x[0, :3] = torch.nn.functional.one_hot(t, 4).float()
    x[1, :2, 3] = 1.0  # F-F with a triple bond: corrected to F-F
    adj = torch.zeros(2, 9, 9)
    adj[0, :3, :3] = b
    adj[1, 0, 1] = adj[1, 1, 0] = 3.0
    mask = torch.zeros(2, 9)
    mask[0, :3], mask[1, :2] = 1, 1
    r = qed_reward(["C", "N", "O", "F"])(StateDict({"x": x, "adj": adj}), {"mask": mask})
    assert abs(float(r[0]) - QED.qed(Chem.MolFromSmiles("CCO"))) < 1e-9
    assert abs(float(r[1]) - QED.qed(Chem.MolFromSmiles("FF"))) < 1e-9
