"""Scoring external SMILES / SDF / CSV files with the run's molecule metrics (hand-counted cases)."""

import json

import pytest

from core.catalog import data_root

pytestmark = pytest.mark.skipif(not (data_root() / "molecules" / "qm9_smiles.csv").exists(),
                                reason="data root absent")
OVR = ["data.n_train=50", "data.n_test=20", "validate.fcd=false"]
# valid, valid (aromatic), pentavalent C (invalid as written, fixed by the valency correction),
# unparseable, a "None" line of a sample file
LINES = ["CCO", "c1ccoc1", "CC(C)(C)(C)(C)C", "xyz(", "None"]


def _domain():
    from domains import get_domain

    dom = get_domain("graphs")
    return dom, dom.load_config("qm9_smoke", OVR)


def test_smiles_file_hand_counted(tmp_path):
    dom, cfg = _domain()
    path = tmp_path / "samples.smi"
    path.write_text("smiles\n" + "\n".join(LINES) + "\n")
    m = dom.score_external(cfg, path, tmp_path / "out")
    assert m["n"] == 5 and m["n_unparseable"] == 2
    assert m["validity_wo_correction"] == pytest.approx(2 / 5)
    assert m["validity"] == pytest.approx(3 / 5) and m["n_valid"] == 3
    assert m["uniqueness"] == pytest.approx(1.0)
    assert 0.0 <= m["nspdk_mmd"] <= 2.0 and m["w1_mw"] > 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["validity"] == pytest.approx(3 / 5)
    assert (tmp_path / "out" / "plots" / "properties.png").exists()
    assert (tmp_path / "out" / "plots" / "molecules.png").exists()


def test_sdf_and_csv_match_the_smiles_file(tmp_path):
    from rdkit import Chem

    dom, cfg = _domain()
    sdf = tmp_path / "mols.sdf"
    with Chem.SDWriter(str(sdf)) as w:
        for s in ("CCO", "c1ccoc1", "CCO"):
            w.write(Chem.AddHs(Chem.MolFromSmiles(s)))  # explicit hydrogens are removed on reading
    csv = tmp_path / "mols.csv"
    csv.write_text("id,SMILES\n1,CCO\n2,c1ccoc1\n3,CCO\n")
    smi = tmp_path / "mols.txt"
    smi.write_text("CCO a\nc1ccoc1 b\nCCO c\n")
    res = [dom.score_external(cfg, p, tmp_path / p.stem) for p in (sdf, csv, smi)]
    for m in res:
        assert m["validity_wo_correction"] == 1.0 and m["uniqueness"] == pytest.approx(2 / 3)
        assert m["nspdk_mmd"] == pytest.approx(res[2]["nspdk_mmd"])


def test_bad_files_are_clear_errors(tmp_path):
    dom, cfg = _domain()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        dom.score_external(cfg, tmp_path / "missing.smi", tmp_path)
    bad = tmp_path / "x.csv"
    bad.write_text("id,name\n1,a\n")
    with pytest.raises(ValueError, match="'smiles' column"):
        dom.score_external(cfg, bad, tmp_path)
    other = tmp_path / "x.xyz"
    other.write_text("C 0 0 0\n")
    with pytest.raises(ValueError, match="unsupported sample file type"):
        dom.score_external(cfg, other, tmp_path)


@pytest.mark.skipif(not (data_root() / "graphs" / "community_small.json").exists(), reason="data root absent")
def test_generic_graph_file_scored_against_the_test_split(tmp_path):
    """The test split itself (the first 20% of the file) scores MMD 0 on all three metrics."""
    from domains import get_domain

    dom = get_domain("graphs")
    cfg = dom.load_config("smoke")
    doc = json.loads((data_root() / "graphs" / "community_small.json").read_text())
    doc["graphs"] = doc["graphs"][:20]
    doc["num_graphs"] = 20
    path = tmp_path / "graphs.json"
    path.write_text(json.dumps(doc))
    m = dom.score_external(cfg, path, tmp_path / "out")
    assert m["n"] == 20 and m["n_test"] == 20
    for k in ("degree_mmd", "cluster_mmd", "orbit_mmd"):
        assert abs(m[k]) < 1e-9, k
    with pytest.raises(ValueError, match="json"):
        dom.score_external(cfg, tmp_path / "graphs.smi", tmp_path)
