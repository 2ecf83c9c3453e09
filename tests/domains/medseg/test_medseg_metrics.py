"""Hand-computed checks of the segmentation metrics and the ensemble statistics."""

from __future__ import annotations

import math

import pytest
import torch

from domains.medseg import metrics as M
from domains.medseg.inference import ensemble_summary


def test_dice_two_by_two_by_one():
    pred = torch.tensor([[[1, 1], [0, 0]]], dtype=torch.bool)[..., None]  # [R=1, 2, 2, 1]
    gt = torch.tensor([[[1, 0], [1, 0]]], dtype=torch.bool)[..., None]
    assert M.dice(pred, gt) == pytest.approx([2 * 1 / (2 + 2)])
    empty = torch.zeros_like(pred)
    assert M.dice(empty, empty) == [1.0]
    assert M.dice(pred, empty) == [0.0]


def test_hd95_of_shifted_cubes_in_mm():
    vol = torch.zeros(1, 12, 12, 12, dtype=torch.bool)
    a, b = vol.clone(), vol.clone()
    a[0, 2:6, 2:6, 2:6] = True
    b[0, 5:9, 2:6, 2:6] = True  # shifted by 3 voxels along axis 0
    assert M.hd95(a, b, [2.0, 1.0, 1.0])[0] == pytest.approx(6.0)  # 3 voxels x 2 mm
    assert M.hd95(a, b, [1.0, 1.0, 1.0])[0] == pytest.approx(3.0)
    assert M.hd95(a, torch.zeros_like(a), [1.0, 1.0, 1.0]) == [None]


def test_aggregated_dice_pools_cases():
    p1 = torch.tensor([[1, 1, 0, 0]], dtype=torch.bool)
    g1 = torch.tensor([[1, 0, 0, 0]], dtype=torch.bool)
    p2 = torch.tensor([[0, 0, 0, 0]], dtype=torch.bool)
    g2 = torch.tensor([[0, 0, 1, 1]], dtype=torch.bool)
    # intersections 1 + 0, sizes (2 + 1) + (0 + 2)
    assert M.aggregated_dice([p1, p2], [g1, g2]) == pytest.approx([2 * 1 / 5])


def test_ensemble_summary_mean_majority_entropy():
    members = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 0]], dtype=torch.bool)[:, None]  # [K=4,R=1,3]
    s = ensemble_summary(members)
    assert s["mean"][0].tolist() == [1.0, 0.5, 0.0]
    assert s["majority"][0].tolist() == [True, False, False]  # a 2-2 tie is background
    assert s["entropy"][0].tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-5)  # bits
    first = ensemble_summary(members, 2)
    assert first["mean"][0].tolist() == [1.0, 0.5, 0.0]


def test_uncertainty_vs_error():
    pred = torch.tensor([1, 1, 0, 0], dtype=torch.bool)
    gt = torch.tensor([1, 0, 0, 1], dtype=torch.bool)
    unc = torch.tensor([0.0, 1.0, 0.0, 1.0])  # uncertain exactly where wrong
    out = M.uncertainty_vs_error(unc, pred, gt)
    assert out["corr"] == pytest.approx(1.0)
    assert out["mean_on_errors"] == 1.0 and out["mean_on_correct"] == 0.0
    assert M.pearson(torch.ones(3), torch.arange(3.0)) is None
    assert math.isclose(M.pearson(torch.arange(3.0), -torch.arange(3.0)), -1.0)


def test_dice_and_hd95_agree_with_monai():
    from monai.metrics import compute_dice, compute_hausdorff_distance

    g = torch.Generator().manual_seed(0)
    blobs = torch.nn.functional.avg_pool3d(torch.rand(2, 1, 20, 18, 16, generator=g), 5, 1, 2) > 0.5
    pred, gt = blobs[0], blobs[1]
    pred[0, 0, 0, 0] = True  # a stray voxel on the border
    sp = [1.5, 1.0, 2.5]
    ref_d = compute_dice(pred[None].float(), gt[None].float(), include_background=True, ignore_empty=False)
    assert M.dice(pred, gt) == pytest.approx([float(ref_d[0, 0])], abs=1e-6)
    ref_h = compute_hausdorff_distance(pred[None].float(), gt[None].float(), include_background=True,
                                       percentile=95, spacing=sp)
    assert M.hd95(pred, gt, sp)[0] == pytest.approx(float(ref_h.reshape(-1)[0]), rel=1e-4, abs=1e-4)
