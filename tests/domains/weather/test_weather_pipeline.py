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


def test_config_errors_name_the_key():
    dom = get_domain("weather")
    with pytest.raises(Exception, match="guidance"):
        dom.load_config("smoke", ["ensemble.guidance=bogus"])
    with pytest.raises(Exception, match="nonsense"):
        dom.load_config("smoke", ["data.nonsense=1"])
    cfg = dom.load_config("smoke")
    assert dom.sample_shape(cfg) == (cfg.data.n_future, cfg.data.patch, cfg.data.patch)


@pytest.mark.parametrize("preset", ["smoke", "default", "full"])
def test_presets_load(preset):
    cfg = get_domain("weather").load_config(preset)
    assert cfg.dataset == "fmi_radar_20160928" and cfg.data.n_past >= 3


ERA5 = data_root() / "weather" / "era5-2mt-2019-03-uk.nc"
ERA5_TINY = ["dataset=era5_t2m_uk", "data.source=era5", "data.n_past=3", "data.n_future=2",
             "data.split=[0.774,0,0.226]", "data.train_stride=24", "data.test_stride=48", "train.steps=4",
             "train.checkpoint_every=4", "train.batch_size=4", "network.base_channels=8", "ensemble.members=2",
             "sample.steps=3"]


@pytest.mark.skipif(not ERA5.is_file(), reason="shared data root not available")
def test_era5_pipeline_end_to_end(tmp_path):
    import xarray as xr

    from domains.pipeline import run_pipeline

    out = run_pipeline("weather", "smoke", ERA5_TINY, runs_root=str(tmp_path))
    run = Path(out["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"crps_model", "crps_persistence", "crps_climatology"} <= set(metrics)
    assert "csi_1_model" not in metrics  # no precipitation categories for temperature
    with xr.open_dataset(run / "samples" / "forecast.nc") as fc:
        assert fc["t2m"].dims == ("case", "member", "lead_time", "latitude", "longitude")
        assert fc["t2m"].attrs["units"] == "K" and 250 < float(fc["observed"].mean()) < 300


@pytest.mark.skipif(not EVENT.is_dir(), reason="shared data root not available")
def test_source_and_dataset_must_agree(tmp_path):
    from domains.pipeline import run_pipeline

    with pytest.raises(ValueError, match="needs a netcdf dataset"):
        run_pipeline("weather", "smoke", ["data.source=era5"], runs_root=str(tmp_path))
