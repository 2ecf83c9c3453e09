"""HECKTOR 2022 (head-and-neck FDG-PET/CT, GTVp = 1, GTVn = 2): the checksum manifest and its catalog entry.

The training release (``hecktor2022_training/``: ``imagesTr/<id>__CT.nii.gz`` in HU,
``imagesTr/<id>__PT.nii.gz`` in SUV on the PET grid, ``labelsTr/<id>.nii.gz`` on the CT grid, plus the
clinical and endpoint CSVs) is given out only after registration and the challenge's data-use
agreement, so no copy can ship with the project. The catalog therefore describes it through a
checksum manifest that a user holding the data writes once::

    python -m domains.medseg.hecktor <data root>/medical/hecktor2022

This writes ``SHA256SUMS`` (``sha256sum`` format, paths relative to the folder) and prints the
catalog entry with the manifest's sha256 filled in, ready to paste into ``catalogs/medical.yaml``.
``diffusci catalog verify hecktor2022`` then checks the manifest, and ingest checks that every case
it reads is listed in it (:func:`check_listed`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

from core.catalog import DataError

MANIFEST = "SHA256SUMS"
OFFICIAL = "https://hecktor.grand-challenge.org/Data/"
ENTRY = """\
- name: hecktor2022
  domain: medical
  description: >-
    HECKTOR 2022 training set (MICCAI 2022 challenge, task 1): FDG-PET/CT of head-and-neck cancer from
    7 centres, 524 cases; CT in HU and PET in SUV on their own grids, GTVp (1) and GTVn (2) masks on the
    CT grid. Layout imagesTr/<id>__CT.nii.gz, imagesTr/<id>__PT.nii.gz, labelsTr/<id>.nii.gz; the files
    are checked through the SHA256SUMS manifest written by `python -m domains.medseg.hecktor`.
  format: nifti
  path: {path}
  files:
  - path: {path}/{manifest}
    sha256: {sha256}
  url: {url}
  licence: >-
    HECKTOR 2022 data-use agreement (registration at hecktor.grand-challenge.org; research use, no
    redistribution)
  citation: >-
    Andrearczyk et al., 'Overview of the HECKTOR Challenge at MICCAI 2022: Automatic Head and Neck Tumor
    Segmentation and Outcome Prediction in PET/CT', LNCS 13626, 1-30 (2023); official code
    github.com/voreille/hecktor
  splits:
    train: first 70 % of the sorted case ids (no official split of the training release)
    validation: next 10 %
    test: last 20 %
  schema:
    channels:
      CT: HU, clipped to -200..300 then z-scored
      PT: SUV, resampled onto the CT grid, clipped to 0..25 then z-scored
    label:
      0: background
      1: GTVp (primary tumour)
      2: GTVn (lymph nodes)
"""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_members(folder: Path) -> list[Path]:
    """The release's files, sorted: every NIfTI under ``imagesTr``/``labelsTr`` and the CSVs at the top."""
    if not (folder / "labelsTr").is_dir() or not (folder / "imagesTr").is_dir():
        raise FileNotFoundError(f"{folder} has no imagesTr/ and labelsTr/; unpack the HECKTOR 2022 training "
                                f"release (from {OFFICIAL}) there")
    files = [*folder.glob("imagesTr/*.nii.gz"), *folder.glob("labelsTr/*.nii.gz"), *folder.glob("*.csv")]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def write_manifest(folder: Path) -> tuple[Path, str]:
    """Write ``folder/SHA256SUMS`` atomically; returns its path and its own sha256."""
    lines = [f"{_sha256(p)}  {p.relative_to(folder).as_posix()}\n" for p in manifest_members(folder)]
    path = folder / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)
    return path, _sha256(path)


def read_manifest(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` from ``folder/SHA256SUMS``."""
    out = {}
    for n, line in enumerate((folder / MANIFEST).read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, _, rel = line.partition("  ")
        if len(digest) != 64 or not rel:
            raise DataError(f"{folder / MANIFEST} line {n} is not '<sha256>  <path>'; rewrite it with "
                            f"`python -m domains.medseg.hecktor {folder}`")
        out[rel.strip()] = digest
    return out


def check_listed(folder: Path, files: list[Path]) -> None:
    """Refuse case files that the manifest does not list (files added after it was written, or a
    manifest from another folder). Without a manifest there is nothing to check."""
    if not (folder / MANIFEST).is_file():
        return
    listed = read_manifest(folder)
    missing = [p.relative_to(folder).as_posix() for p in files if p.relative_to(folder).as_posix() not in listed]
    if missing:
        raise DataError(f"{len(missing)} HECKTOR file(s) are not in {folder / MANIFEST} (e.g. {missing[:3]}); "
                        f"rewrite the manifest with `python -m domains.medseg.hecktor {folder}` and update "
                        f"its sha256 in catalogs/medical.yaml")


def catalog_entry(rel_path: str, sha256: str) -> str:
    """The ``catalogs/medical.yaml`` entry for a manifest at ``<data root>/<rel_path>/SHA256SUMS``."""
    return ENTRY.format(path=rel_path, manifest=MANIFEST, sha256=sha256, url=OFFICIAL)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description="Write the HECKTOR 2022 checksum manifest and print its catalog entry.")
    p.add_argument("folder", type=Path, help="the unpacked training release (imagesTr/, labelsTr/)")
    p.add_argument("--data-root", type=Path, default=None, help="default: $DIFFUSCI_DATA or ../shared/data")
    args = p.parse_args(argv)
    from core.catalog import data_root

    root = (args.data_root or data_root()).resolve()
    folder = args.folder.resolve()
    try:
        rel = folder.relative_to(root).as_posix()
    except ValueError as exc:
        raise SystemExit(f"{folder} is not under the data root {root}; move it there (e.g. "
                         f"{root}/medical/hecktor2022) or pass --data-root") from exc
    path, digest = write_manifest(folder)
    text = catalog_entry(rel, digest)
    print(f"# wrote {path} ({len(read_manifest(folder))} files); add this entry to catalogs/medical.yaml:\n{text}")
    return text


if __name__ == "__main__":
    main()
