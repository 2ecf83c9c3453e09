"""End to end through the plain pipeline on the real radar event (tiny sizes), and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.catalog import data_root
from domains import get_domain

EVENT = data_root() / "weather" / "fmi_radar_20160928"
TINY = ["train.steps=6", "train.checkpoint_every=6", "train.batch_size=4", "network.base_channels=8",
        "data.patch=16", "data.patches_per_window=2", "data.test_stride=4", "ensemble.members=2",
        "sample.steps=3", "validate.steps_members=2", "validate.baselines=[persistence,steps]",
        "validate.fss_scales=[1,4]", "validate.ablation=true"]


@pytest.mark.skipif(not EVENT.is_dir(), reason="shared data root not available")
def test_smoke_pipeline_end_to_end(tmp_path):
    import xarray as xr

    from domains.pipeline import run_pipeline

    out = run_pipeline("weather", "smoke", TINY, runs_root=str(tmp_path))
    assert out["status"] == "completed"
    run = Path(out["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    for method in ("model", "model_plain", "persistence", "steps"):
        assert metrics[f"crps_{method}"] >= 0
    assert metrics["members"] == 2 and len(metrics["crps_by_lead_model"]) == 4
    assert sum(metrics["rank_hist_model"]) > 0
    with xr.open_dataset(run / "samples" / "forecast.nc") as fc:
        assert fc["rain_rate"].dims == ("case", "member", "lead_time", "y", "x")
        assert fc["rain_rate"].attrs["units"] == "mm h-1" and fc.attrs["Conventions"] == "CF-1.8"
        assert fc.sizes["member"] == 2 and float(fc["rain_rate"].min()) >= 0
    with xr.open_dataset(run / "data" / "radar.nc") as ds:
        assert ds["rain_rate"].dims == ("time", "y", "x") and "norm_mean" in ds.attrs
        assert bool(ds["rain_rate"].isnull().any())  # uncovered pixels stay missing, not zero rain
    assert (run / "plots" / "panels.png").stat().st_size > 0
    assert (run / "plots" / "scores_vs_lead.png").stat().st_size > 0
    assert "| steps |" in (run / "verification.md").read_text()
    assert "| model_cfg |" in (run / "verification.md").read_text()  # both guidance ablations are scored
    _check_sharded_sampling(run)


def _check_sharded_sampling(run: Path) -> None:
    """Sampling split into 3 shards (uneven over 2 windows x 2 members) merges to the same ensemble."""
    import torch
    from safetensors.torch import load_file

    from core.provenance import RunDir
    from domains.pipeline import load_run_config
    from domains.refs import CheckpointRef

    dom = get_domain("weather")
    _, cfg = load_run_config(run)
    whole = load_file(str(run / "samples" / "samples.safetensors"))["x"]
    cfg = cfg.model_copy(update={"sample": cfg.sample.model_copy(update={"n": 3, "shards": 3})})
    ckpt = CheckpointRef(**json.loads((run / "refs.json").read_text())["train"])
    rd = RunDir.open(run)
    paths = [str(dom.sample_shard(cfg, ckpt, rd, a, a + 1)) for a in range(3)]
    sizes = [load_file(p)["x"].shape[0] for p in paths]
    assert sum(sizes) == whole.shape[0] and min(sizes) >= 1
    ref = dom.merge_shards(cfg, ckpt, rd, paths)
    assert ref.n == whole.shape[0]
    torch.testing.assert_close(dom.load_samples(ref), whole, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="shard bounds"):
        dom.sample_shard(cfg, ckpt, rd, 2, 4)


def test_config_errors_name_the_key():
    dom = get_domain("weather")
    with pytest.raises(Exception, match="guidance"):
        dom.load_config("smoke", ["ensemble.guidance=bogus"])
    with pytest.raises(Exception, match="nonsense"):
        dom.load_config("smoke", ["data.nonsense=1"])
    cfg = dom.load_config("smoke")
    assert dom.sample_shape(cfg) == (cfg.data.n_future, cfg.data.patch, cfg.data.patch)
    # the sample set is every test case x member: sample.n only counts shard units, raised to sample.shards
    assert dom.load_config("smoke", ["sample.shards=4"]).sample.n == 4


@pytest.mark.parametrize("preset", ["smoke", "default", "full", "era5_smoke"])
def test_presets_load(preset):
    cfg = get_domain("weather").load_config(preset)
    expect = "era5_t2m_uk_grib" if preset.startswith("era5") else "fmi_radar_20160928"
    assert cfg.dataset == expect and cfg.data.n_past >= 3


ERA5 = data_root() / "weather" / "era5-2mt-2019-03-uk.nc"
ERA5_TINY = ["data.n_future=2", "data.train_stride=24", "data.test_stride=48", "train.steps=4",
             "train.checkpoint_every=4", "train.batch_size=4", "network.base_channels=8", "ensemble.members=2",
             "sample.steps=3"]


@pytest.mark.skipif(not ERA5.is_file(), reason="shared data root not available")
def test_era5_pipeline_end_to_end(tmp_path):
    import xarray as xr

    from domains.pipeline import run_pipeline

    try:  # the preset reads the original GRIB file; without cfgrib, the netCDF copy
        import cfgrib  # noqa: F401

        source = []
    except ImportError:
        source = ["dataset=era5_t2m_uk"]
    out = run_pipeline("weather", "era5_smoke", ERA5_TINY + source, runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"crps_model", "crps_persistence", "crps_climatology"} <= set(metrics)
    assert "csi_1_model" not in metrics  # no precipitation categories for temperature
    table = json.loads((run / "verification.json").read_text())["table"]
    assert {"model", "model_plain", "model_cfg", "persistence", "climatology"} <= set(table)
    with xr.open_dataset(run / "samples" / "forecast.nc") as fc:
        assert fc["t2m"].dims == ("case", "member", "lead_time", "latitude", "longitude")
        assert fc["t2m"].attrs["units"] == "K" and 250 < float(fc["observed"].mean()) < 300


@pytest.mark.skipif(not EVENT.is_dir(), reason="shared data root not available")
def test_source_and_dataset_must_agree(tmp_path):
    from domains.pipeline import run_pipeline

    with pytest.raises(ValueError, match="needs a grib or netcdf dataset"):
        run_pipeline("weather", "smoke", ["data.source=era5"], runs_root=str(tmp_path))
