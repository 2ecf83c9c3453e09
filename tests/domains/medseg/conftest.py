"""Synthetic cases in the BraTS 2013 (DeepMedic) and HECKTOR 2022 layouts, built per test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHAPE = (20, 18, 16)
# a non-trivial affine: 2 mm x 1.5 mm x 3 mm voxels, LPS-like flips, an offset
AFFINE = np.array([[-2.0, 0, 0, 30.0], [0, -1.5, 0, 40.0], [0, 0, 3.0, -20.0], [0, 0, 0, 1]])


def save(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def label_volume(shape: tuple[int, ...] = SHAPE, classes: tuple[int, ...] = (1, 2, 4)) -> np.ndarray:
    lab = np.zeros(shape, np.float32)
    lab[6:14, 5:12, 4:10] = classes[1]  # "oedema" box
    lab[8:12, 7:10, 5:8] = classes[0]
    lab[9:11, 8:9, 6:7] = classes[-1]
    return lab


def make_brats_case(folder: Path, seed: int = 0, shape: tuple[int, ...] = SHAPE) -> Path:
    rng = np.random.default_rng(seed)
    lab = label_volume(shape)
    brain = np.zeros(shape, np.float64)
    brain[2:-2, 2:-2, 1:-1] = 1.0
    for name, gain in (("Flair", 2.0), ("T1c", 1.0)):
        img = (rng.normal(0, 0.3, shape) + gain * (lab > 0)).astype(np.float32) * brain.astype(np.float32)
        save(folder / f"{name}_subtrMeanDivStd.nii.gz", img)
    save(folder / "brainmask.nii.gz", brain)
    save(folder / "OTMultiClass.nii.gz", lab)
    return folder


@pytest.fixture
def brats_case(tmp_path: Path):
    from domains.medseg.layouts import brats_cases

    make_brats_case(tmp_path / "train" / "case_a")
    return brats_cases(tmp_path, ["train/case_a"])[0]


@pytest.fixture
def hecktor_root(tmp_path: Path) -> Path:
    """Two HECKTOR-2022-layout cases: CT (HU) and label on one grid, PET (SUV) on a coarser one."""
    rng = np.random.default_rng(1)
    root = tmp_path / "hecktor"
    pet_affine = AFFINE.copy()
    pet_affine[:3, :3] *= 2.0
    for cid in ("CHUP-001", "CHUP-002"):
        lab = label_volume(classes=(1, 2, 2))
        lab[lab == 1] = 1
        ct = rng.normal(40.0, 20.0, SHAPE).astype(np.float32)
        ct[:, :, :2] = -1000.0  # air
        pet = (rng.random((10, 9, 8)) * 3).astype(np.float32)
        pet[4:7, 3:6, 2:5] += 10.0
        save(root / "imagesTr" / f"{cid}__CT.nii.gz", ct)
        save(root / "imagesTr" / f"{cid}__PT.nii.gz", pet, pet_affine)
        save(root / "labelsTr" / f"{cid}.nii.gz", lab.astype(np.uint8))
    return root
