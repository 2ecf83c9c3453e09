"""Back to the input's own grid: exact inverse of reorientation and cropping, world-aligned NIfTIs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from domains.medseg import grid, report
from domains.medseg.config import MedsegData
from domains.medseg.data import encode_id, process_case, region_masks
from domains.medseg.layouts import BRATS
from tests.domains.medseg.conftest import AFFINE, SHAPE, label_volume

WT = {"wt": (1, 2, 3, 4)}
NATIVE = MedsegData(spacing_mm=(2.0, 1.5, 3.0))  # the synthetic files' own spacing: reorient + crop only


def _sample_set(case: dict, members: torch.Tensor, baseline: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"0/members": members.to(torch.uint8), "0/baseline": baseline, "0/affine": case["affine"],
            "0/orig_affine": case["orig_affine"], "0/id": encode_id("case_a"),
            "0/orig_shape": torch.tensor(case["orig_label"].shape)}


def test_original_label_and_affine_are_kept(brats_case):
    out = process_case(brats_case, BRATS, NATIVE)
    assert np.allclose(out["orig_affine"].numpy(), AFFINE)
    assert torch.equal(out["orig_label"], torch.as_tensor(label_volume()).to(torch.uint8))
    assert not np.allclose(out["affine"].numpy(), AFFINE)  # reoriented (LPS-like -> RAS)
    assert not torch.equal(out["label"], out["orig_label"])


def test_processed_label_maps_back_voxel_for_voxel(brats_case):
    out = process_case(brats_case, BRATS, NATIVE)
    back = grid.resample_to_grid(out["label"][None], out["affine"], out["orig_affine"], SHAPE, "nearest")[0]
    assert torch.equal(back, out["orig_label"])
    lin = grid.resample_to_grid(out["label"][None].float(), out["affine"], out["orig_affine"], SHAPE, "linear")[0]
    assert torch.equal(lin.round().to(torch.uint8), out["orig_label"])


def test_general_path_agrees_with_the_exact_copy(brats_case, monkeypatch: pytest.MonkeyPatch):
    out = process_case(brats_case, BRATS, NATIVE)
    exact = grid.resample_to_grid(out["label"][None].float(), out["affine"], out["orig_affine"], SHAPE)
    monkeypatch.setattr(grid, "_is_permutation", lambda m, tol=1e-4: False)
    sampled = grid.resample_to_grid(out["label"][None].float(), out["affine"], out["orig_affine"], SHAPE)
    assert torch.allclose(exact, sampled, atol=1e-4)


def test_perfect_processed_prediction_scores_dice_one_on_the_original_grid(brats_case):
    case = {**process_case(brats_case, BRATS, NATIVE), "id": "case_a"}
    truth = region_masks(case["label"], WT)
    x = _sample_set(case, torch.stack([truth, truth]), truth.float())
    rows, masks = report.case_rows(0, case, x, WT, [1, 2])
    assert rows[0]["dice_diffusion"] == 1.0 and rows[0]["dice_baseline"] == 1.0 and rows[0]["dice_ens1"] == 1.0
    assert rows[0]["hd95_diffusion"] == 0.0
    assert masks["gt"].shape == (1, *SHAPE)  # scored on the input's grid


def test_every_region_is_scored_on_the_original_grid(brats_case):
    case = {**process_case(brats_case, BRATS, NATIVE), "id": "case_a"}
    truth = region_masks(case["label"], BRATS.regions)
    wrong = truth.clone()
    wrong[2] = False  # no enhancing tumour predicted
    x = _sample_set(case, torch.stack([truth, wrong, truth]), wrong.float())
    rows, _ = report.case_rows(0, case, x, BRATS.regions, [1, 2, 3])
    assert [r["region"] for r in rows] == ["wt", "tc", "et"]
    assert [r["dice_diffusion"] for r in rows] == [1.0, 1.0, 1.0]  # 2 of 3 members right
    assert [r["dice_baseline"] for r in rows] == [1.0, 1.0, 0.0]
    assert rows[2]["dice_ens1"] == 1.0 and rows[2]["dice_ens2"] == 0.0  # a 1-1 tie is background
    assert rows[2]["unc_on_errors"] is None and rows[2]["unc_on_correct"] > 0  # majority right, uncertain


def test_coarse_grid_maps_back_into_place(brats_case):
    out = process_case(brats_case, BRATS, MedsegData(spacing_mm=(3.0, 3.0, 3.0)))
    mask = region_masks(out["label"], WT).float()
    back = grid.resample_to_grid(mask, out["affine"], out["orig_affine"], SHAPE)[0] > 0.5
    truth = out["orig_label"] > 0
    dice = 2 * (back & truth).sum() / (back.sum() + truth.sum())
    assert dice > 0.75  # only what 3 mm voxels lose
    centre = [np.argwhere(m.numpy()).mean(0) for m in (back, truth)]
    assert np.abs(centre[0] - centre[1]).max() < 1.0  # original voxels


def test_written_niftis_carry_the_input_grid(brats_case, tmp_path: Path):
    import nibabel as nib

    case = {**process_case(brats_case, BRATS, MedsegData(spacing_mm=(3.0, 3.0, 3.0))), "id": "case_a"}
    truth = region_masks(case["label"], WT)
    x = _sample_set(case, torch.stack([truth, truth, ~truth]), truth.float())
    files = report.write_case_niftis(x, ["wt"], tmp_path)
    assert sorted(p.name for p in files) == ["case_a_baseline_wt.nii.gz", "case_a_diffusion_wt.nii.gz",
                                             "case_a_uncertainty_wt.nii.gz"]
    source = nib.load(str(brats_case.label))
    for path in files:
        img = nib.load(str(path))
        assert img.shape == source.shape and np.allclose(img.affine, source.affine)  # affine round-trips
        assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(source.affine)
    unc = np.asarray(nib.load(str(tmp_path / "case_a_uncertainty_wt.nii.gz")).dataobj)
    assert unc.min() >= 0.0 and unc.max() <= 1.0 and unc.max() > 0.8  # 2 of 3 members agree inside
