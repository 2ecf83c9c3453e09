import json
from pathlib import Path

import pytest
import torch

from domains import get_domain
from domains.pipeline import run_pipeline

TINY = ["data.n_webs=2", "data.patches_per_web=8", "train.steps=20", "train.checkpoint_every=20",
        "train.log_every=10", "train.batch_size=16", "network.hidden=64", "network.depth=1", "sample.n=6",
        "sample.batch_size=6", "sample.steps=4", "validate.beyond_n=2", "validate.mechanics_n=2",
        "validate.export_n=1", "validate.assembly_patches=2", "validate.plot_n=2"]


def test_smoke_pipeline_end_to_end(tmp_path):
    out = run_pipeline("spiderwebs", "smoke", TINY, runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["n"] == 6 and m["valid_rate"] == 1.0 and 0 <= m["raw_valid_rate"] <= 1
    assert m["beyond_range_warned"] is True
    assert m["stl_watertight_rate"] == 1.0 and m["assembly_helix_connected"] is True
    for name in ("r2_n_nodes", "mre_avg_edge_length", "mmd_degree", "mmd_edge_length",
                 "baseline_retrieval_r2_n_nodes", "stiffness_median_generated", "mass_mean_test"):
        assert name in m
    for png in ("conditioning.png", "samples.png", "patches.png", "webs.png", "assembly.png"):
        assert (run / "plots" / png).stat().st_size > 0
    assert (run / "samples" / "generated_webs.pt").exists()
    assert (run / "samples" / "fabrication" / "web_000.graphml").exists()
    assert set(out["headline"]) <= set(m)


GRAPH_TINY = ["data.n_webs=2", "data.patches_per_web=6", "train.steps=4", "train.checkpoint_every=4",
              "train.batch_size=4", "network.hidden=8", "network.depth=1", "sample.n=3", "sample.batch_size=3",
              "sample.steps=2", "validate.beyond_n=2", "validate.mechanics_n=2", "validate.export_n=1",
              "validate.assembly_patches=2", "validate.plot_n=2", "network.candidates=2"]


def test_model2_graph_pipeline_end_to_end(tmp_path):
    out = run_pipeline("spiderwebs", "graph_smoke", GRAPH_TINY, runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    m = json.loads((run / "metrics.json").read_text())
    assert m["n"] == 3 and m["valid_rate"] == 1.0 and m["beyond_range_warned"] is True
    # model 2 fixes the node mask from the requested n_nodes: met exactly
    assert m["r2_n_nodes"] == pytest.approx(1.0) and m["mre_n_nodes"] == pytest.approx(0.0)
    assert (run / "samples" / "generated_webs.pt").exists()


def test_config_rejects_unknown_keys_and_bad_sizes():
    dom = get_domain("spiderwebs")
    with pytest.raises(ValueError, match="bogus"):
        dom.load_config("smoke", ["data.bogus=1"])
    with pytest.raises(ValueError, match="min_nodes"):
        dom.load_config("smoke", ["data.min_nodes=70"])
    with pytest.raises(ValueError, match="mlp"):
        dom.load_config("smoke", ["network.kind=gat"])


def test_out_of_range_design_warns_with_the_trained_range():
    dom = get_domain("spiderwebs")
    data = {"y_min": torch.tensor([1.0, -1, -1, -1, 16, 15, 0.9]), "y_max": torch.tensor([5.0, 1, 1, 1, 64, 90, 1.5])}
    with pytest.warns(UserWarning, match=r"avg_edge_length .*trained range 1..5"):
        cond = dom.design_cond(data, torch.tensor([[9.0, 0, 0, 0, 30, 40, 1.3]]))
    assert cond["vector"].shape == (1, 7) and float(cond["vector"][0, 0]) == pytest.approx(3.0)
