"""End to end on the real BraTS files (skipped when the data root is absent), at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from core.catalog import data_root

pytestmark = pytest.mark.skipif(not (data_root() / "medical" / "brats2013_deepmedic").is_dir(),
                                reason="BraTS data not under the data root")

TINY = ["data.max_cases=1", "data.spacing_mm=[8,8,8]", "data.patch=[8,8,8]", "data.patches_per_case=8",
        "network.monai_channels=[8,16]", "baseline.channels=[8,16]", "train.steps=3",
        "train.checkpoint_every=3", "train.batch_size=4", "sample.steps=2", "inference.ensemble=2",
        "validate.ensemble_sizes=[1,2]"]


def test_smoke_pipeline_end_to_end(tmp_path: Path):
    from domains.pipeline import run_pipeline

    summary = run_pipeline("medseg", "smoke", TINY, runs_root=str(tmp_path))
    assert summary["status"] == "completed"
    run = Path(summary["run_dir"])
    metrics = json.loads((run / "metrics.json").read_text())
    for method in ("diffusion", "baseline"):
        assert 0.0 <= metrics[f"dice_wt_{method}"] <= 1.0
        assert metrics[f"hd95_wt_{method}"] is None or metrics[f"hd95_wt_{method}"] > 0.0
    assert "dice_wt_ens2" in metrics
    assert 0 < metrics["nfe"] <= 20 and metrics["ensemble"] == 2 and metrics["n_cases"] == 1
    assert len(metrics["per_case"]) == 1
    assert (run / "medseg_table.md").read_text().startswith("| case |")
    assert list((run / "plots").glob("overlay_*.png")) and (run / "plots" / "dice_vs_ensemble.png").exists()
    masks = sorted((run / "samples" / "nifti").glob("*_diffusion_wt.nii.gz"))
    unc = sorted((run / "samples" / "nifti").glob("*_uncertainty_wt.nii.gz"))
    assert len(masks) == 1 and len(unc) == 1
    img = nib.load(str(masks[0]))
    case = masks[0].name.split("_diffusion_")[0]
    source = nib.load(str(data_root() / "medical" / "brats2013_deepmedic" / "test" / case / "OTMultiClass.nii.gz"))
    assert img.shape == source.shape and np.allclose(img.affine, source.affine)  # the input's own grid
    assert set(np.unique(np.asarray(img.dataobj)).tolist()) <= {0, 1}
