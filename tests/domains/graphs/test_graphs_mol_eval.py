"""The molecule evaluation's reference memo gives exactly the numbers of a fresh computation."""

import pytest

pytest.importorskip("rdkit")

TRAIN = ["CCO", "CCN", "CC(=O)O", "c1ccccc1", "CCOC", "OCCO", "CC#N", "C1CC1", "CNC", "CC(C)O"]
TEST = ["CCCO", "CCCN", "CC(=O)N", "c1ccncc1", "COC", "OCC(O)CO", "CCC#N", "C1CCC1", "CN(C)C", "CC(C)(C)O",
        "O=CC=O", "FC(F)F", "CC=CC", "N#CC#N"]
GEN = ["CCO", "CCCO", "c1ccccc1", "CC(=O)N", "FC(F)F", "CCC", "OCC(O)CO", "CN", "C1CCC1", "CCCC"]


def _mols(smiles):
    from rdkit import Chem

    return [Chem.MolFromSmiles(s) for s in smiles]


def test_reference_memo_matches_a_fresh_computation():
    from fcd_torch import FCD

    from domains.graphs import mol_eval
    from domains.graphs.mol_metrics import molecule_metrics
    from domains.graphs.nspdk import nspdk_mmd, smiles_graphs

    mol_eval._REFERENCES.clear()
    first = mol_eval.score_molecules(_mols(GEN), TRAIN, TEST, fcd=True)
    assert len(mol_eval._REFERENCES) == 1
    again = mol_eval.score_molecules(_mols(GEN), TRAIN, TEST, fcd=True)
    assert len(mol_eval._REFERENCES) == 1  # the same reference pair is not computed twice
    for k in ("validity", "uniqueness", "novelty", "nspdk_mmd", "fcd", "w1_qed", "w1_sa"):
        assert again[k] == first[k], k
    # the numbers are those of the direct, unmemoised computations
    plain = molecule_metrics(_mols(GEN), TRAIN)
    assert first["novelty"] == plain["novelty"] == pytest.approx(8 / 10)  # CCO and c1ccccc1 are in TRAIN
    direct_nspdk = nspdk_mmd(smiles_graphs(TEST), smiles_graphs(plain["smiles"]))
    assert first["nspdk_mmd"] == pytest.approx(direct_nspdk, abs=1e-12) and first["nspdk_mmd"] > 0
    direct_fcd = float(FCD(device="cpu", n_jobs=1)(plain["smiles"], TEST))
    assert first["fcd"] == pytest.approx(direct_fcd, rel=1e-6) and first["fcd"] > 0


def test_reference_memo_keeps_the_two_latest_pairs_and_keys_by_content():
    from domains.graphs import mol_eval

    mol_eval._REFERENCES.clear()
    a = mol_eval.reference(TRAIN, TEST)
    assert mol_eval.reference(list(TRAIN), list(TEST)) is a  # equal content, other list objects
    b = mol_eval.reference(TRAIN, TEST[:-1])
    assert b is not a and len(b["nspdk"]) == len(TEST) - 1
    mol_eval.reference(TRAIN[:-1], TEST)
    assert len(mol_eval._REFERENCES) == 2 and mol_eval.reference(TRAIN, TEST[:-1]) is b
    assert mol_eval.reference(TRAIN, TEST) is not a  # the oldest pair was dropped, so it is recomputed


def test_fcd_of_a_set_against_itself_is_zero():
    from domains.graphs.qm9 import fcd_reference, fcd_score

    stats = fcd_reference(TEST)
    assert fcd_score(TEST, ref_stats=stats) == pytest.approx(0.0, abs=1e-4)
    assert fcd_score(GEN, TEST) == pytest.approx(fcd_score(GEN, ref_stats=stats), rel=1e-9)
    assert fcd_score(GEN[:1], TEST) is None and fcd_reference(TEST[:1]) is None
