"""MOSES and ZINC250k as molecule datasets of the graphs pipeline: subset ingest on the real MOSES files,
the ZINC250k table reader and GDSS split (temporary tables in the real layout + the real index file),
the missing-table error, and the new presets."""

import json
import os

import pytest
import torch

from core.catalog import DataError, data_root, get_entry
from domains.graphs import mol_data, qm9
from domains.graphs.molecules import ZINC_ATOMS, MoleculeError

MOLS = data_root() / "molecules"
MOSES_ATOMS = ["C", "N", "S", "O", "F", "Cl", "Br"]
needs_moses = pytest.mark.skipif(not (MOLS / "moses" / "train.csv.gz").exists(), reason="data root absent")
needs_zinc_idx = pytest.mark.skipif(not (MOLS / "valid_idx_zinc250k.json").exists(), reason="data root absent")


@pytest.fixture(autouse=True)
def _fresh_split_cache():
    """The split caches are keyed by dataset name, not data root: clear them around tests that move the root."""
    qm9._split_by_name.cache_clear()
    qm9._train_counts.cache_clear()
    yield
    qm9._split_by_name.cache_clear()
    qm9._train_counts.cache_clear()


@pytest.fixture(scope="module")
def moses_small():
    qm9._split_by_name.cache_clear()
    data = qm9.prepare(get_entry("moses"), MOSES_ATOMS, 27, 300, 100)
    return data, qm9.reference_smiles(get_entry("moses"), 300, 100)


# --------------------------------------------------------------------------- MOSES (real files)


@needs_moses
def test_moses_subset_ingest_shapes_vocabulary_and_rows(moses_small):
    data, (train_smi, test_smi) = moses_small
    assert data["train_x"].shape == (300, 27, 7) and data["train_adj"].shape == (300, 27, 27)
    assert data["test_x"].shape == (100, 27, 7) and data["test_mask"].shape == (100, 27)
    assert int(data["n_invalid_smiles"]) == 0  # MOSES has no unparseable rows; the count is still reported
    # one-hot rows exactly on the real nodes; bonds symmetric, orders 0..3, only between real nodes
    assert torch.equal(data["train_x"].sum(-1), data["train_mask"])
    adj, mask = data["train_adj"], data["train_mask"]
    assert torch.equal(adj, adj.transpose(1, 2)) and set(adj.unique().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert not (adj * (1 - mask[:, :, None])).any()
    # rows are sorted, distinct file rows of the split, and the kept SMILES are those rows of the file
    rows = data["train_rows"].tolist()
    assert rows == sorted(set(rows)) and rows[0] >= 0 and rows[-1] < 1584663
    assert data["test_rows"].max() < 176074
    first = next(s for k, s in enumerate(mol_data.iter_moses(mol_data.moses_file(get_entry("moses"), "test")))
                 if k == int(data["test_rows"][0]))
    assert test_smi[0] == first and len(train_smi) == 300
    # every atom of the subset is in the vocabulary, and the subset uses most of it
    used = {MOSES_ATOMS[i] for i in data["train_x"].argmax(-1)[mask.bool()].tolist()}
    assert {"C", "N", "O", "S"} <= used <= set(MOSES_ATOMS)
    assert int(mask.sum(1).max()) <= 27


@needs_moses
def test_moses_subset_is_fixed_and_node_counts_match(moses_small):
    data, _ = moses_small
    again = qm9._split_by_name("moses", 300, 100)
    assert again.train == data["train_rows"].tolist()
    counts = qm9.train_node_counts(get_entry("moses"), MOSES_ATOMS, 27, 300, 100)
    assert torch.equal(counts, data["train_mask"].sum(1).long())


@needs_moses
def test_moses_oversize_molecule_is_an_ingest_error_naming_file_and_row():
    with pytest.raises(MoleculeError, match=r"train\.csv\.gz: row \d+ \('.+'\): \d+ heavy atoms > max_atoms=15"):
        qm9.prepare(get_entry("moses"), MOSES_ATOMS, 15, 50, 10)


@needs_moses
def test_moses_atom_outside_vocabulary_is_an_ingest_error():
    with pytest.raises(MoleculeError, match=r"\.csv\.gz: row \d+ .*atom 'S' not in the vocabulary"):
        qm9.prepare(get_entry("moses"), ["C", "N", "O", "F", "Cl", "Br"], 27, 200, 10)


@needs_moses
def test_moses_reader_checks_the_catalog_row_count():
    path = mol_data.moses_file(get_entry("moses"), "test")
    rows = mol_data.read_moses_rows(path, [0, 5], mol_data.moses_count(get_entry("moses"), "test"))
    assert sorted(rows) == [0, 5]
    with pytest.raises(DataError, match="176074 rows, the catalog schema says 176075"):
        mol_data.read_moses_rows(path, [0], 176075)


def test_unparseable_smiles_are_counted_with_their_rows():
    mg = mol_data.to_graphs({3: "CCO", 8: "C1CC", 9: "c1ccccc1"}, [3, 8, 9], MOSES_ATOMS, 27, source="x.csv.gz")
    assert mg.rows == [3, 9] and mg.invalid_rows == [8] and mg.types.shape == (2, 27)


# --------------------------------------------------------------------------- ZINC250k


ZINC_LINES = ['"CC(C)(C)c1ccc2occ(CC(=O)Nc3ccccc3F)c2c1\n",5.0506,0.702012232801,2.0840945720726807',
              '"C[NH+](C)Cc1ccc(Cl)cc1\n",2.1,0.7,2.5',
              '"O=C([O-])c1ccccc1I\n",1.2,0.6,2.1']


def _zinc_table(path, n_rows=None, bad_every=None):
    """A table in the layout of 250k_rndm_zinc_drugs_clean_3.csv (quoted SMILES ending in a newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["smiles,logP,qed,SAS"]
    for k in range(n_rows or len(ZINC_LINES)):
        lines.append('"C1CC\n",0,0,0' if bad_every and k % bad_every == 0 else ZINC_LINES[k % len(ZINC_LINES)])
    path.write_text("\n".join(lines) + "\n")
    return path


def _zinc_root(tmp_path, monkeypatch, **table):
    """A data root holding a temporary table and a link (not a copy) to the real GDSS index file."""
    root = tmp_path / "data"
    _zinc_table(root / "molecules" / mol_data.ZINC250K_TABLE, **table)
    os.symlink(MOLS / "valid_idx_zinc250k.json", root / "molecules" / "valid_idx_zinc250k.json")
    monkeypatch.setenv("DIFFUSCI_DATA", str(root))
    return root


def test_zinc250k_reader_strips_quoted_newlines_and_parses_every_atom(tmp_path):
    smiles = mol_data.read_zinc250k(_zinc_table(tmp_path / "t.csv"))
    assert smiles[1] == "C[NH+](C)Cc1ccc(Cl)cc1" and not any(s.endswith("\n") for s in smiles)
    mg = mol_data.to_graphs(smiles, range(3), ZINC_ATOMS, 38)
    assert mg.invalid_rows == [] and mg.types.shape == (3, 38)
    assert ZINC_ATOMS[int(mg.types[2][mg.types[2] >= 0].max())] == "I"
    (tmp_path / "bad.csv").write_text("SMILES,logP\nCCO,1\n")
    with pytest.raises(ValueError, match="no 'smiles' column"):
        mol_data.read_zinc250k(tmp_path / "bad.csv")


@needs_zinc_idx
def test_zinc250k_real_index_file_matches_the_catalog():
    entry = get_entry("zinc250k_test_idx")
    rows = mol_data.zinc250k_test_rows(mol_data._file(entry, "valid_idx_zinc250k.json"))
    assert len(rows) == entry.data_schema["count"] == 24887 == len(set(rows))
    assert (rows[0], rows[-1]) == (entry.data_schema["min"], entry.data_schema["max"])
    table = get_entry("zinc250k")
    assert table.access == "external" and table.data_schema["rows"] == 249455
    assert table.data_schema["test_index_entry"] == entry.name


@needs_zinc_idx
def test_zinc250k_gdss_split_on_a_full_length_table(tmp_path, monkeypatch):
    _zinc_root(tmp_path, monkeypatch, n_rows=249455, bad_every=7)
    smiles, train, test = mol_data.zinc250k_split(get_entry("zinc250k"))
    assert len(smiles) == 249455 and len(train) == 224568 and len(test) == 24887
    assert not set(train) & set(test) and sorted(train + test) == list(range(249455))
    data = qm9.prepare(get_entry("zinc250k"), list(ZINC_ATOMS), 38, 70, 30)
    kept = data["train_rows"].tolist() + data["test_rows"].tolist()
    assert all(r % 7 for r in kept)  # every unparseable row ("C1CC", every 7th) was dropped and counted
    assert int(data["n_invalid_smiles"]) == 100 - len(kept) > 0
    assert set(data["test_rows"].tolist()) <= set(test) and data["train_x"].shape[1:] == (38, 9)


@needs_zinc_idx
def test_zinc250k_partial_table_is_rejected(tmp_path, monkeypatch):
    _zinc_root(tmp_path, monkeypatch)
    with pytest.raises(DataError, match=r"has 3 rows, expected 249455 .*chemical_vae"):
        mol_data.zinc250k_split(get_entry("zinc250k"))


def test_zinc250k_missing_table_names_file_root_and_url(tmp_path, monkeypatch):
    from domains import get_domain

    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    dom = get_domain("graphs")
    cfg = dom.load_config("zinc250k_full", [])
    with pytest.raises(DataError) as err:
        dom.prepare(cfg, dom.entry(cfg))
    msg = str(err.value)
    assert str(tmp_path / "molecules" / "250k_rndm_zinc_drugs_clean_3.csv") in msg
    assert f"data root {tmp_path}" in msg
    assert "https://raw.githubusercontent.com/aspuru-guzik-group/chemical_vae/master/models/zinc_properties/" \
           "250k_rndm_zinc_drugs_clean_3.csv" in msg


# --------------------------------------------------------------------------- presets and config


@pytest.mark.parametrize("preset,dataset,n_atoms,max_nodes", [
    ("moses_smoke", "moses", 7, 27), ("qm9_full", "qm9", 4, 9), ("moses_full", "moses", 7, 27),
    ("zinc250k_full", "zinc250k", 9, 38)])
def test_new_presets_load(preset, dataset, n_atoms, max_nodes):
    from domains import get_domain

    cfg = get_domain("graphs").load_config(preset, [])
    assert cfg.dataset == dataset and cfg.data.kind == "molecule"
    assert len(cfg.data.atoms) == cfg.data.max_feat == n_atoms and cfg.data.max_nodes == max_nodes
    schema = get_entry(dataset).data_schema
    assert set(cfg.data.atoms) == set(schema["elements"]) and max_nodes == schema["max_heavy_atoms"]
    if preset.endswith("_full"):
        assert cfg.train.keep_last is None and cfg.sample.n == 10000 and cfg.validate_.fcd
        nfe = cfg.sample.steps * (2 if cfg.sample.options.get("snr", 0) > 0 else 1) + 1  # + the final denoising
        assert cfg.sample.sampler == "reverse_diffusion" and nfe <= 100
        assert cfg.train.steps // cfg.train.checkpoint_every >= 10
    else:
        assert cfg.data.n_train and cfg.data.n_train <= 2000


def test_molecule_kind_needs_a_molecule_dataset():
    from domains import get_domain

    with pytest.raises(Exception, match="'zinc250k_jtvae' has no molecule reader"):
        get_domain("graphs").load_config("moses_smoke", ["dataset=zinc250k_jtvae"])
    with pytest.raises(ValueError, match="molecule datasets: qm9, moses, zinc250k"):
        qm9._split_by_name("community_small", None, None)


def test_catalog_documents_the_zinc250k_table():
    entry = get_entry("zinc250k")
    assert entry.url and entry.url.endswith("250k_rndm_zinc_drugs_clean_3.csv") and entry.obtain
    assert entry.data_schema["columns"] == ["smiles", "logP", "qed", "SAS"]
    assert "Gomez-Bombarelli" in entry.citation and "GDSS" in entry.citation
    assert json.dumps(entry.data_schema["elements"]) == json.dumps(list(ZINC_ATOMS))
