"""Where the files of each case live, per dataset layout, and the label conventions.

A :class:`Case` names its image files (one per modality, in channel order), its label file and an
optional foreground mask. Layouts:

* ``brats2013`` — the DeepMedic BraTS 2013 copy: ``<split>/<case>/{Flair,T1c}_subtrMeanDivStd.nii.gz``,
  ``OTMultiClass.nii.gz`` (0 background, 1 necrosis, 2 oedema, 3 non-enhancing, 4 enhancing) and
  ``brainmask.nii.gz``; splits as listed in the catalog entry.
* ``totalseg_example`` — TotalSegmentator's example CT and its organ label map (a multi-organ demo).
* ``hecktor2022`` — the HECKTOR 2022 training release: ``imagesTr/<id>__CT.nii.gz`` (HU),
  ``imagesTr/<id>__PT.nii.gz`` (PET in SUV), ``labelsTr/<id>.nii.gz`` (1 GTVp, 2 GTVn); no official
  split of the training set, so cases are split deterministically by sorted id (see
  :func:`hecktor_cases`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Modality:
    """One input channel: its file suffix and how its intensities are normalised."""

    name: str
    file: str
    clip: tuple[float, float] | None = None  # clip (e.g. HU window) before z-scoring
    nonzero: bool = False  # z-score inside the foreground only
    on_label_grid: bool = True  # False: resampled onto the label's grid (HECKTOR PET)


@dataclass(frozen=True)
class LayoutSpec:
    modalities: tuple[Modality, ...]
    classes: tuple[int, ...]  # label values that may occur
    regions: dict[str, tuple[int, ...]] = field(default_factory=dict)  # evaluated regions -> label values
    fg_threshold: float = 0.5  # foreground (crop) = foreground mask, or the first modality, above this


BRATS = LayoutSpec(
    modalities=(Modality("flair", "Flair_subtrMeanDivStd.nii.gz", nonzero=True),
                Modality("t1c", "T1c_subtrMeanDivStd.nii.gz", nonzero=True)),
    classes=(0, 1, 2, 3, 4),
    regions={"wt": (1, 2, 3, 4), "tc": (1, 3, 4), "et": (4,)},
)

HECKTOR = LayoutSpec(
    modalities=(Modality("ct", "__CT.nii.gz", clip=(-200.0, 300.0)),
                Modality("pet", "__PT.nii.gz", clip=(0.0, 25.0), on_label_grid=False)),
    classes=(0, 1, 2),
    regions={"gtv": (1, 2), "gtvp": (1,), "gtvn": (2,)},
    fg_threshold=-500.0,  # body in CT (HU)
)

TOTALSEG = LayoutSpec(
    modalities=(Modality("ct", "example_ct_sm.nii.gz", clip=(-1000.0, 1000.0)),),
    classes=tuple(range(118)),  # TotalSegmentator v2 "total" task: 0 background + 117 structures
    regions={"organs": (1, 2, 3, 5, 6, 7), "liver": (5,), "spleen": (1,), "kidneys": (2, 3)},
    fg_threshold=-500.0,
)

LAYOUTS = {"brats2013": BRATS, "hecktor2022": HECKTOR, "totalseg_example": TOTALSEG}


@dataclass(frozen=True)
class Case:
    case_id: str
    images: tuple[Path, ...]
    label: Path
    foreground: Path | None = None


def task_regions(spec: LayoutSpec, task: str) -> dict[str, tuple[int, ...]]:
    """The regions the model segments: the first (union of all foreground classes) or all of them."""
    names = list(spec.regions)
    return {names[0]: spec.regions[names[0]]} if task == "whole_tumour" else dict(spec.regions)


def brats_cases(root: Path, split_dirs: list[str]) -> list[Case]:
    """Cases of one split from the catalog's list of case folders (relative to the data root)."""
    cases = []
    for rel in split_dirs:
        d = root / rel
        cases.append(Case(d.name, tuple(d / m.file for m in BRATS.modalities), d / "OTMultiClass.nii.gz",
                          d / "brainmask.nii.gz"))
    return cases


def totalseg_cases(folder: Path) -> list[Case]:
    """The single TotalSegmentator example CT (its label map is the model's output, not a manual
    annotation): every split is this one case, so it shows multi-organ segmentation runs on CT and is
    never evidence of accuracy."""
    return [Case("totalseg_example", (folder / TOTALSEG.modalities[0].file,), folder / "example_seg.nii.gz")]


def _hecktor_image_id(folder: Path, label_id: str) -> str:
    """The image prefix of a label file: the same id, or (labels named ``CHUM_001`` next to images named
    ``CHUM-001__CT``) the id with its first ``_`` read as ``-``."""
    for cand in (label_id, label_id.replace("_", "-", 1)):
        if (folder / "imagesTr" / f"{cand}{HECKTOR.modalities[0].file}").exists():
            return cand
    return label_id  # the missing file is named when the case is read


def hecktor_cases(folder: Path, split: str, fractions: tuple[float, float] = (0.7, 0.1)) -> list[Case]:
    """HECKTOR 2022 cases of ``split``: sorted ids, the first 70 % train, next 10 % validation, rest test."""
    labels = folder / "labelsTr"
    if not labels.is_dir():
        raise FileNotFoundError(f"{labels} not found: the HECKTOR 2022 layout has imagesTr/ and labelsTr/ "
                                f"under {folder} (get the data at https://hecktor.grand-challenge.org/)")
    ids = sorted(p.name[: -len(".nii.gz")] for p in labels.glob("*.nii.gz"))
    n_train = int(round(fractions[0] * len(ids)))
    n_val = int(round(fractions[1] * len(ids)))
    chosen = {"train": ids[:n_train], "validation": ids[n_train:n_train + n_val],
              "test": ids[n_train + n_val:]}[split]
    cases = []
    for i in chosen:
        img = _hecktor_image_id(folder, i)
        cases.append(Case(img, tuple(folder / "imagesTr" / f"{img}{m.file}" for m in HECKTOR.modalities),
                          labels / f"{i}.nii.gz"))
    return cases
