"""Reading cases: checks that name the case and file, MONAI preprocessing, and a cache of the results.

Every case goes through one MONAI chain: load (nibabel) → channel first → (PET resampled onto the
label grid) → orientation → spacing → foreground crop → per-modality clipping and z-scoring. Each case
also keeps its label on the original grid (``orig_label``, ``orig_affine``): predictions are mapped back
there (:mod:`domains.medseg.grid`) and scored against it. The processed volumes are cached under ``<runs root>/medseg/_cache/`` keyed by the input files (path,
size, mtime), the preprocessing settings and :data:`PROCESS_VERSION`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.catalog import DataError
from core.config import config_hash
from domains.medseg.config import MedsegData
from domains.medseg.layouts import LAYOUTS, Case, LayoutSpec

PROCESS_VERSION = 2
GRID_ATOL_MM = 1e-3


def _load(path: Path, case: Case, what: str) -> Any:
    import nibabel as nib

    if not path.is_file():
        raise DataError(f"case {case.case_id}: {what} file {path} is missing; every case needs "
                        f"{', '.join(p.name for p in (*case.images, case.label))}")
    return nib.load(str(path))


def check_headers(case: Case, spec: LayoutSpec) -> None:
    """Refuse a case whose files are missing or whose images are off the label's grid (headers only)."""
    label = _load(case.label, case, "label")
    others = [(p, m.name, m.on_label_grid) for p, m in zip(case.images, spec.modalities, strict=True)]
    if case.foreground is not None:
        others.append((case.foreground, "foreground mask", True))
    for path, what, same_grid in others:
        img = _load(path, case, what)
        if same_grid and img.shape[:3] != label.shape[:3]:
            raise DataError(f"case {case.case_id}: {path.name} has shape {img.shape[:3]} but the label "
                            f"{case.label.name} has {label.shape[:3]}; images and labels must share one grid")
        if same_grid and not np.allclose(img.affine, label.affine, atol=GRID_ATOL_MM):
            raise DataError(f"case {case.case_id}: the affine of {path.name} differs from the label's "
                            f"({case.label.name}); resample both onto one grid first")


def check_values(case: Case, spec: LayoutSpec, loaded: dict[str, Any]) -> None:
    """Refuse non-finite intensities and label values outside the layout's classes (on loaded arrays)."""
    for m, path in zip(spec.modalities, case.images, strict=True):
        if not torch.isfinite(torch.as_tensor(loaded[m.name])).all():
            raise DataError(f"case {case.case_id}: {path} contains NaN or infinite values; fix or drop the case")
    values = torch.unique(torch.as_tensor(loaded["label"]).as_tensor() if hasattr(loaded["label"], "as_tensor")
                          else torch.as_tensor(loaded["label"]))
    bad = [float(v) for v in values if float(v) not in spec.classes]
    if bad:
        raise DataError(f"case {case.case_id}: label file {case.label} has values {bad[:10]} outside the "
                        f"expected classes {list(spec.classes)}")


def _keys(spec: LayoutSpec, has_fg: bool) -> list[str]:
    return [*(m.name for m in spec.modalities), "label", *(["fg"] if has_fg else [])]


def _loader(spec: LayoutSpec, has_fg: bool) -> Any:
    from monai import transforms as T

    keys = _keys(spec, has_fg)
    return T.Compose([T.LoadImaged(keys, image_only=True, reader="NibabelReader"), T.EnsureChannelFirstd(keys)])


def _transforms(spec: LayoutSpec, cfg: MedsegData, has_fg: bool) -> Any:
    from monai import transforms as T

    names = [m.name for m in spec.modalities]
    keys = _keys(spec, has_fg)
    interp = ["bilinear"] * len(names) + ["nearest"] * (len(keys) - len(names))
    chain: list[Any] = []
    off_grid = [m.name for m in spec.modalities if not m.on_label_grid]
    if off_grid:
        chain.append(T.ResampleToMatchd(off_grid, key_dst="label", mode="bilinear"))
    chain += [T.Orientationd(keys, axcodes=cfg.orientation, labels=None),
              T.Spacingd(keys, pixdim=cfg.spacing_mm, mode=interp),
              T.CropForegroundd(keys, source_key="fg" if has_fg else names[0], margin=2, allow_smaller=True,
                                select_fn=lambda x: x > spec.fg_threshold)]
    for m in spec.modalities:
        if m.clip is not None:
            chain.append(T.ScaleIntensityRanged(m.name, a_min=m.clip[0], a_max=m.clip[1], b_min=m.clip[0],
                                                b_max=m.clip[1], clip=True))
        chain.append(T.NormalizeIntensityd(m.name, nonzero=m.nonzero))
    return T.Compose(chain)


def process_case(case: Case, spec: LayoutSpec, cfg: MedsegData) -> dict[str, torch.Tensor]:
    """One checked, preprocessed case: ``image [C,*vol]``, ``label [*vol]`` (uint8), ``affine [4,4]``,
    ``spacing [3]`` on the processed grid, and ``orig_label`` / ``orig_affine`` on the label file's grid."""
    check_headers(case, spec)
    item = {m.name: str(p) for m, p in zip(spec.modalities, case.images, strict=True)}
    item["label"] = str(case.label)
    if case.foreground is not None:
        item["fg"] = str(case.foreground)
    loaded = _loader(spec, case.foreground is not None)(item)
    check_values(case, spec, loaded)
    raw = loaded["label"]
    orig_label = torch.as_tensor(raw).as_subclass(torch.Tensor)[0].round().to(torch.uint8).contiguous()
    orig_affine = torch.as_tensor(np.asarray(raw.affine), dtype=torch.float64).clone()
    out = _transforms(spec, cfg, case.foreground is not None)(loaded)
    image = torch.cat([torch.as_tensor(out[m.name]).float().as_subclass(torch.Tensor)
                       for m in spec.modalities]).contiguous()
    label = torch.as_tensor(out["label"]).as_subclass(torch.Tensor)[0].round().to(torch.uint8).contiguous()
    affine = torch.as_tensor(np.asarray(out["label"].affine), dtype=torch.float64)
    spacing = torch.linalg.norm(affine[:3, :3], dim=0)
    return {"image": image, "label": label, "affine": affine, "spacing": spacing, "orig_label": orig_label,
            "orig_affine": orig_affine}


def cache_key(case: Case, cfg: MedsegData) -> str:
    files = [p for p in (*case.images, case.label, case.foreground) if p is not None]
    stamp = [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]
    settings = cfg.model_dump(mode="json", include={"layout", "spacing_mm", "orientation"})
    return config_hash({"files": stamp, "settings": settings, "version": PROCESS_VERSION})[:24]


def load_case(case: Case, cfg: MedsegData, cache_dir: Path | None) -> dict[str, torch.Tensor]:
    """:func:`process_case`, through the on-disk cache when ``cache_dir`` is given."""
    from safetensors.torch import load_file, save_file

    spec = LAYOUTS[cfg.layout]
    if cache_dir is None:
        return process_case(case, spec, cfg)
    path = cache_dir / f"{case.case_id}-{cache_key(case, cfg)}.safetensors"
    if path.is_file():
        return load_file(str(path))
    tensors = process_case(case, spec, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata={"case": case.case_id, "settings": json.dumps(cfg.model_dump(mode="json"))})
    tmp.replace(path)
    return tensors


def encode_id(case_id: str) -> torch.Tensor:
    return torch.tensor(list(case_id.encode()), dtype=torch.uint8)


def decode_id(t: torch.Tensor) -> str:
    return bytes(t.tolist()).decode()


def split_cases(data: dict[str, torch.Tensor], split: str) -> list[dict[str, Any]]:
    """The cases of ``split`` from a processed dataset (keys ``<split>/<i>/<field>``)."""
    out: list[dict[str, Any]] = []
    i = 0
    while f"{split}/{i}/image" in data:
        p = f"{split}/{i}/"
        out.append({"id": decode_id(data[p + "id"]), "image": data[p + "image"], "label": data[p + "label"],
                    "affine": data[p + "affine"], "spacing": data[p + "spacing"],
                    "orig_label": data[p + "orig_label"], "orig_affine": data[p + "orig_affine"]})
        i += 1
    return out


def eval_splits(split: str) -> tuple[str, ...]:
    """The dataset splits an inference split names: ``held_out`` is validation + test (never trained on)."""
    return ("validation", "test") if split == "held_out" else (split,)


def eval_cases(data: dict[str, torch.Tensor], split: str) -> list[dict[str, Any]]:
    """The cases segmented and scored for ``inference.split``, in a fixed order."""
    return [c for s in eval_splits(split) for c in split_cases(data, s)]


def region_masks(label: torch.Tensor, regions: dict[str, tuple[int, ...]]) -> torch.Tensor:
    """Binary masks ``[R, *vol]`` (bool) of each region's label values."""
    values = [torch.tensor(v, dtype=label.dtype) for v in regions.values()]
    return torch.stack([torch.isin(label, v) for v in values])
