"""HECKTOR 2022: the checksum manifest, its catalog entry, the label-name variants, the listed-file check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.catalog import DataError, load_catalog_file, verify
from domains.medseg import hecktor
from domains.medseg.layouts import hecktor_cases


def test_manifest_and_entry_verify_through_the_catalog(hecktor_root: Path, tmp_path: Path):
    text = hecktor.main([str(hecktor_root), "--data-root", str(hecktor_root.parent)])
    listed = hecktor.read_manifest(hecktor_root)
    assert sorted(listed) == ["imagesTr/CHUP-001__CT.nii.gz", "imagesTr/CHUP-001__PT.nii.gz",
                              "imagesTr/CHUP-002__CT.nii.gz", "imagesTr/CHUP-002__PT.nii.gz",
                              "labelsTr/CHUP-001.nii.gz", "labelsTr/CHUP-002.nii.gz"]
    catalog = tmp_path / "catalogs" / "medical.yaml"
    catalog.parent.mkdir()
    catalog.write_text("entries:\n" + text)
    (entry,) = load_catalog_file(catalog)
    assert entry.name == "hecktor2022" and entry.path == "hecktor" and "hecktor.grand-challenge.org" in entry.url
    assert "GTVp (1)" in entry.description and "Andrearczyk" in entry.citation
    assert len(verify(entry, hecktor_root.parent).files) == 1
    (hecktor_root / hecktor.MANIFEST).write_text("0" * 64 + "  imagesTr/x.nii.gz\n")
    with pytest.raises(DataError, match="checksum mismatch"):
        verify(entry, hecktor_root.parent)


def test_unlisted_case_files_are_refused(hecktor_root: Path):
    hecktor.write_manifest(hecktor_root)
    cases = hecktor_cases(hecktor_root, "test", fractions=(0.5, 0.0))
    hecktor.check_listed(hecktor_root, [p for c in cases for p in (*c.images, c.label)])
    for name in ("CHUP-003__CT.nii.gz", "CHUP-003__PT.nii.gz"):
        shutil.copy(hecktor_root / "imagesTr" / name.replace("003", "002"), hecktor_root / "imagesTr" / name)
    shutil.copy(hecktor_root / "labelsTr" / "CHUP-002.nii.gz", hecktor_root / "labelsTr" / "CHUP-003.nii.gz")
    late = hecktor_cases(hecktor_root, "test", fractions=(0.5, 0.0))
    with pytest.raises(DataError, match=r"not in .*SHA256SUMS .*CHUP-003"):
        hecktor.check_listed(hecktor_root, [p for c in late for p in (*c.images, c.label)])


def test_labels_named_with_an_underscore_find_their_images(hecktor_root: Path):
    (hecktor_root / "labelsTr" / "CHUP-002.nii.gz").rename(hecktor_root / "labelsTr" / "CHUP_002.nii.gz")
    (case,) = hecktor_cases(hecktor_root, "test", fractions=(0.5, 0.0))
    assert case.case_id == "CHUP-002" and case.label.name == "CHUP_002.nii.gz"
    assert all(p.is_file() for p in case.images)


def test_manifest_needs_the_release_layout(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="imagesTr/ and labelsTr/"):
        hecktor.write_manifest(tmp_path)


def test_catalog_template_matches_the_printed_entry(tmp_path: Path):
    import yaml

    from core.catalog import catalogs_dir

    text = (catalogs_dir() / "medical.yaml").read_text()
    block = text[text.index("# - name: hecktor2022"):].split("\n\n")[0]
    template = yaml.safe_load("\n".join(line[2:] for line in block.splitlines()).replace(
        "<printed by python -m domains.medseg.hecktor>", "0" * 64))[0]
    printed = yaml.safe_load(hecktor.catalog_entry("medical/hecktor2022", "0" * 64))[0]
    assert {k: v for k, v in printed.items() if k != "schema"} == template
