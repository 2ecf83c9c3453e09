"""Loader checks on synthetic cases: preprocessing, bad input errors, HECKTOR layout, NIfTI affines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.catalog import DataError
from domains.medseg.config import MedsegData
from domains.medseg.data import load_case, process_case, region_masks
from domains.medseg.layouts import BRATS, HECKTOR, hecktor_cases
from domains.medseg.outputs import write_nifti
from tests.domains.medseg.conftest import AFFINE, SHAPE, label_volume, save

CFG = MedsegData(spacing_mm=(2.0, 2.0, 2.0))


def _world_centroid(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask).mean(0)
    return (affine @ np.append(idx, 1.0))[:3]


def test_brats_case_is_resampled_cropped_and_normalised(brats_case):
    out = process_case(brats_case, BRATS, CFG)
    assert out["image"].shape[0] == 2 and out["image"].shape[1:] == out["label"].shape
    assert out["spacing"].tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert set(out["label"].unique().tolist()) <= {0, 1, 2, 4}
    assert torch.isfinite(out["image"]).all()
    # the tumour keeps its place in world (mm) coordinates through orientation, spacing and cropping
    orig = label_volume() > 0
    new = out["label"].numpy() > 0
    shift = _world_centroid(new, out["affine"].numpy()) - _world_centroid(orig, AFFINE)
    assert np.abs(shift).max() < 1.5


def test_written_masks_keep_the_affine(brats_case, tmp_path: Path):
    import nibabel as nib

    out = process_case(brats_case, BRATS, CFG)
    wt = region_masks(out["label"], {"wt": (1, 2, 3, 4)})[0]
    path = write_nifti(wt, out["affine"], tmp_path / "wt.nii.gz")
    back = nib.load(str(path))
    assert np.allclose(back.affine, out["affine"].numpy())
    assert np.array_equal(np.asarray(back.dataobj) > 0, wt.numpy())
    shift = _world_centroid(np.asarray(back.dataobj) > 0, back.affine) - _world_centroid(label_volume() > 0, AFFINE)
    assert np.abs(shift).max() < 1.5  # overlays the original scan in world coordinates


def test_cache_returns_the_same_tensors(brats_case, tmp_path: Path):
    a = load_case(brats_case, CFG, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    b = load_case(brats_case, CFG, tmp_path / "cache")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_shape_mismatch_names_case_and_file(brats_case):
    save(brats_case.images[1], np.zeros((SHAPE[0] - 1, *SHAPE[1:]), np.float32))
    with pytest.raises(DataError, match=r"case_a: T1c_subtrMeanDivStd.nii.gz has shape"):
        process_case(brats_case, BRATS, CFG)


def test_affine_mismatch_names_case_and_file(brats_case):
    moved = AFFINE.copy()
    moved[0, 3] += 5.0
    save(brats_case.images[0], np.zeros(SHAPE, np.float32), moved)
    with pytest.raises(DataError, match=r"case_a: the affine of Flair_subtrMeanDivStd.nii.gz differs"):
        process_case(brats_case, BRATS, CFG)


def test_labels_outside_classes_are_refused(brats_case):
    lab = label_volume()
    lab[0, 0, 0] = 7
    save(brats_case.label, lab)
    with pytest.raises(DataError, match=r"case_a: label file .*OTMultiClass.nii.gz has values \[7.0\]"):
        process_case(brats_case, BRATS, CFG)


def test_missing_modality_names_case_and_file(brats_case):
    brats_case.images[1].unlink()
    with pytest.raises(DataError, match=r"case_a: t1c file .*T1c_subtrMeanDivStd.nii.gz is missing"):
        process_case(brats_case, BRATS, CFG)


def test_nan_in_image_is_refused(brats_case):
    img = np.zeros(SHAPE, np.float32)
    img[3, 3, 3] = np.nan
    save(brats_case.images[0], img)
    with pytest.raises(DataError, match=r"case_a: .*Flair_subtrMeanDivStd.nii.gz contains NaN"):
        process_case(brats_case, BRATS, CFG)


def test_hecktor_layout_resamples_pet_onto_ct(hecktor_root: Path):
    cases = hecktor_cases(hecktor_root, "train", fractions=(0.5, 0.0))
    assert [c.case_id for c in cases] == ["CHUP-001"]
    assert [c.case_id for c in hecktor_cases(hecktor_root, "test", fractions=(0.5, 0.0))] == ["CHUP-002"]
    out = process_case(cases[0], HECKTOR, CFG)
    assert out["image"].shape[0] == 2 and out["image"].shape[1:] == out["label"].shape
    assert set(out["label"].unique().tolist()) <= {0, 1, 2}
    # the air slab (CT < -500 HU) is cropped away; each channel is z-scored
    assert out["image"].mean(dim=(1, 2, 3)).abs().max() < 1e-3
    with pytest.raises(FileNotFoundError, match="labelsTr"):
        hecktor_cases(hecktor_root / "nope", "train")


def test_domain_prepares_a_hecktor_dataset(hecktor_root: Path, monkeypatch: pytest.MonkeyPatch):
    from core.catalog import CatalogEntry, FileEntry
    from domains import get_domain

    monkeypatch.setenv("DIFFUSCI_DATA", str(hecktor_root.parent))
    entry = CatalogEntry(name="hecktor_test", domain="medical", description="synthetic", format="nifti",
                         path="hecktor", url="https://hecktor.grand-challenge.org/", licence="test", citation="test",
                         files=(FileEntry(path="hecktor/SHA256SUMS", sha256="0" * 64),))
    dom = get_domain("medseg")
    cfg = dom.load_config("smoke", ["data.layout=hecktor2022", "data.cache=false", "data.spacing_mm=[2,2,2]",
                                    "data.patch=[8,8,8]", "data.patches_per_case=4"])
    data = dom.prepare(cfg, entry)
    assert {"train/0/image", "test/0/image"} <= set(data) and "train/1/image" not in data
    x0, cond = dom.training_data(cfg, data)
    assert x0.shape == (4, 1, 8, 8, 8) and cond["channels"].shape == (4, 2, 8, 8, 8)
    assert set(x0.unique().tolist()) <= {-1.0, 1.0}
    assert list(dom.regions(cfg)) == ["gtv"]


def test_totalsegmentator_example_reads_as_a_multi_organ_case():
    from core.catalog import data_root
    from domains.medseg.layouts import TOTALSEG, task_regions, totalseg_cases

    folder = data_root() / "medical" / "totalsegmentator_example"
    if not folder.is_dir():
        pytest.skip("TotalSegmentator example not under the data root")
    out = process_case(totalseg_cases(folder)[0], TOTALSEG, MedsegData(spacing_mm=(6.0, 6.0, 6.0)))
    assert out["image"].shape[0] == 1 and out["image"].shape[1:] == out["label"].shape
    masks = region_masks(out["label"], task_regions(TOTALSEG, "regions"))
    assert masks.shape[0] == 4 and bool(masks[1].any())  # the liver is in the field of view
    assert torch.equal(masks[0], masks[1:].any(0) | torch.isin(out["label"], torch.tensor([6, 7], dtype=torch.uint8)))
