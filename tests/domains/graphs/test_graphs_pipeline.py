"""End to end: ingest, train, sample, validate on community-small with tiny settings."""

import json
from pathlib import Path

import pytest

from core.catalog import data_root

TINY = ["train.steps=20", "train.checkpoint_every=10", "train.log_every=10", "train.batch_size=8",
        "sample.n=6", "sample.batch_size=6", "sample.steps=5", "validate.n_baseline=6",
        "validate.compare_steps=[3]", "network.hidden=8", "network.c_hid=2", "network.c_final=2", "network.attn_dim=4", "network.heads=2",
        "network.layers_a=1", "network.depth_x=1", "network.emb_dim=0"]


@pytest.mark.skipif(not (data_root() / "graphs" / "community_small.json").exists(), reason="data root absent")
def test_smoke_pipeline(tmp_path):
    from domains.pipeline import run_pipeline

    out = run_pipeline("graphs", "smoke", TINY, runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    for k in ("degree_mmd", "cluster_mmd", "orbit_mmd", "train_degree_mmd", "er_orbit_mmd"):
        assert metrics[k] is not None and metrics[k] >= -1e-9
    assert metrics["n"] == 6 and metrics["nfe"] > 0 and metrics["n_test"] == 20
    assert metrics["connected_frac_test"] == 1.0 and 0.0 <= metrics["connected_frac"] <= 1.0
    doc = json.loads((run / "samples" / "graphs.json").read_text())
    assert doc["num_graphs"] == 6 and all(12 <= g["num_nodes"] <= 20 for g in doc["graphs"])
    assert (run / "plots" / "graphs.png").stat().st_size > 1000
    rows = json.loads((run / "sampler_comparison.json").read_text())
    assert rows[0]["sampler"] == "dpmpp_2m" and rows[0]["nfe"] > 0


@pytest.mark.skipif(not (data_root() / "graphs" / "community_small.json").exists(), reason="data root absent")
def test_self_conditioned_pipeline(tmp_path):
    from domains.pipeline import run_pipeline

    out = run_pipeline("graphs", "smoke", [*TINY, "model.self_condition=true", "validate.compare_samplers=[]",
                                            "network.spectral=2"], runs_root=str(tmp_path))
    assert out["status"] == "completed"
    metrics = json.loads((Path(out["run_dir"]) / "metrics.json").read_text())
    assert metrics["n"] == 6 and metrics["nfe"] > 0 and metrics["n_nonfinite"] == 0


def test_unknown_config_key_is_an_error():
    from domains import get_domain

    with pytest.raises(Exception, match="nonsense"):
        get_domain("graphs").load_config("smoke", ["data.nonsense=1"])


QM9_TINY = ["train.steps=10", "train.checkpoint_every=10", "train.batch_size=16", "data.n_train=100",
            "data.n_test=20", "sample.n=8", "sample.batch_size=8", "sample.steps=10", "network.hidden=8",
            "network.c_hid=2", "network.c_final=2", "network.attn_dim=4", "network.heads=2", "network.layers_a=1", "network.depth_x=1", "network.emb_dim=0",
            "validate.steer_particles=2", "validate.steer_n=3", "validate.steer_steps=3"]


@pytest.mark.skipif(not (data_root() / "molecules" / "qm9_smiles.csv").exists(), reason="data root absent")
def test_qm9_pipeline(tmp_path):
    from domains.pipeline import run_pipeline

    out = run_pipeline("graphs", "qm9_smoke", QM9_TINY, runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    for k in ("validity_wo_correction", "validity", "uniqueness", "novelty"):
        assert 0.0 <= m[k] <= 1.0
    assert m["n"] == 8 and m["n_invalid_smiles_in_dataset"] == 0 and m["n_nonfinite"] == 0
    assert m["fcd"] is None or m["fcd"] >= 0.0
    lines = (run / "samples" / "samples.smi").read_text().splitlines()
    assert len(lines) == 8
    assert (run / "samples" / "samples.sdf").exists()
    assert m["nspdk_mmd"] is None or m["nspdk_mmd"] >= -1e-9
    assert {"w1_qed", "w1_logp", "w1_sa", "w1_mw"} <= set(m)
    assert (run / "plots" / "properties.png").stat().st_size > 1000
    # the run's own corrected samples, scored as an external file, give the run's numbers
    from domains import get_domain

    dom = get_domain("graphs")
    cfg = dom.load_config("qm9_smoke", QM9_TINY)
    ext = dom.score_external(cfg, run / "samples" / "samples.smi", tmp_path / "ext")
    for k in ("validity", "uniqueness", "novelty", "nspdk_mmd", "w1_qed", "w1_mw"):
        assert ext[k] == pytest.approx(m[k], abs=1e-9), k
    assert json.loads((tmp_path / "ext" / "metrics.json").read_text())["n"] == 8
    steer = json.loads((run / "steering.json").read_text())
    assert steer["nfe_per_particle"] == 4 and 0.0 <= steer["qed_steered"] <= 1.0
    assert steer["nfe_per_sample"] == 8 and steer["nfe_plain_equal_nfe"] == 8 and steer["nfe_plain_same_steps"] == 4
    assert abs(steer["qed_shift"] - (steer["qed_steered"] - steer["qed_plain"])) < 1e-12
    # the finished run joins the benchmark table as a row (bench/graphs.py --from-runs)
    import bench.graphs as bg

    row = bg.row_from_run(run)
    record = json.loads((run / "record.json").read_text())
    tiny = "qm9_smoke + " + ", ".join(QM9_TINY)  # a preset run with overrides is its own row group
    assert (row["dataset"], row["preset"], row["seed"], row["train_steps"]) == ("qm9", tiny, 0, 10)
    assert row["wall_s"] == pytest.approx(sum(st["duration_s"] for st in record["stages"].values()), abs=0.1)
    assert row["validity_wo_correction"] == m["validity_wo_correction"] and row["overrides"] == QM9_TINY
    table = "\n".join(bg.molecule_table([row]))
    assert f"ours `{tiny}` (1 seed, 10 training steps, 8 samples)" in table
    assert f"at {m['nfe']} NFE" in table and "1 of the 3 seeds" in table
    # so does a resample of it (other sample settings, same checkpoint), as a row of its own
    from domains.pipeline import resample

    res = Path(resample(str(run), n=4, steps=3, validate=True)["run_dir"])
    rrow = bg.row_from_run(res)
    assert rrow["preset"] == f"{tiny}, resampled: sample.n=4, sample.steps=3" and rrow["n"] == 4
    rec = json.loads((res / "record.json").read_text())["stages"]
    assert rrow["wall_s"] == pytest.approx(record["stages"]["ingest"]["duration_s"] + record["stages"]["train"][
        "duration_s"] + rec["sample"]["duration_s"] + rec["validate"]["duration_s"], abs=0.1)
    assert rrow["nfe"] < m["nfe"] and rrow["train_steps"] == 10
    merged = bg.merge([row], [rrow])
    assert len(merged) == 2 and "resampled: sample.n=4" in "\n".join(bg.molecule_table(merged))


def test_molecule_benchmark_verdict_compares_each_metric_with_gdss():
    import bench.graphs as bg

    good = {"validity_wo_correction": 0.97, "nspdk_mmd": 0.002, "fcd": 1.5, "nfe": 100}
    bad = {"validity_wo_correction": 0.90, "nspdk_mmd": 0.002, "fcd": 3.5, "nfe": 201}
    v = bg._mol_verdict([good, good, good], "qm9")
    assert v.count("NOT met") == 0 and v.count(" met") == 3 and "within the ≤ 100 NFE target" in v
    v = bg._mol_verdict([bad], "qm9")
    assert "validity_wo_correction 0.9 vs 0.9572 NOT met" in v and "nspdk_mmd 0.002 vs 0.003 met" in v
    assert "fcd 3.5 vs 2.9 NOT met" in v and "over the ≤ 100 NFE target" in v and "1 of the 3 seeds" in v


def test_molecule_config_checks_vocabulary_size():
    from domains import get_domain

    with pytest.raises(Exception, match="len\\(data.atoms\\)"):
        get_domain("graphs").load_config("qm9_smoke", ["data.max_feat=5"])


@pytest.mark.parametrize("preset", ["smoke", "default", "full", "qm9_smoke", "qm9_default",
                                    "qm9_full", "moses_smoke", "moses_full", "zinc250k_full"])
def test_presets_validate(preset):
    from domains import get_domain

    cfg = get_domain("graphs").load_config(preset)
    assert cfg.domain == "graphs" and set(cfg.process) == {"x", "adj"}
