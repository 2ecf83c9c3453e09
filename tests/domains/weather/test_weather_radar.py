"""Radar decoding: hand-computed values, the PGM reader, bad input, and pysteps' importer as oracle."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from core.catalog import data_root
from domains.weather import radar

META = {"decode": {"dBZ": "(value - 64) / 2", "missing_value": 255},
        "rain_rate_conversion": {"Z_R": "Z = a R^b with a=223, b=1.53 (FMI)"}}
EVENT = data_root() / "weather" / "fmi_radar_20160928"


def test_decoding_from_metadata_and_hand_values():
    dec = radar.Decoding.from_metadata(META)
    assert (dec.offset, dec.divisor, dec.missing, dec.a, dec.b) == (64.0, 2.0, 255, 223.0, 1.53)
    dbz = dec.dbz(np.array([64, 0, 255, 100], dtype=np.uint8))
    assert dbz[0] == 0.0 and dbz[1] == -32.0 and np.isnan(dbz[2]) and dbz[3] == 18.0
    # Z = 223 R^1.53: R = 1 mm/h at dBZ = 10 log10(223); R = 10 at 10 log10(223 * 10^1.53)
    r = dec.rain_rate(np.array([10 * np.log10(223.0), 10 * np.log10(223.0 * 10**1.53), np.nan]))
    np.testing.assert_allclose(r[:2], [1.0, 10.0], rtol=1e-12)
    assert np.isnan(r[2])  # missing stays missing, never zero rain


def test_lut_matches_direct_decoding():
    dec = radar.Decoding.from_metadata(META)
    raw = np.arange(256, dtype=np.uint8)
    np.testing.assert_allclose(dec.rain_rate_lut(), dec.rain_rate(dec.dbz(raw)).astype(np.float32), equal_nan=True)
    assert np.isnan(dec.rain_rate_lut()[255])


@pytest.mark.parametrize("meta", [{}, {"decode": {"dBZ": "value * 2", "missing_value": 255},
                                       "rain_rate_conversion": {"Z_R": "a=200, b=1.6"}}])
def test_bad_metadata_names_what_is_expected(meta):
    with pytest.raises(ValueError, match="decod|expected"):
        radar.Decoding.from_metadata(meta)


def test_read_pgm_with_comment(tmp_path):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = tmp_path / "f.pgm.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"P5\n# a comment\n4 3\n255\n" + img.tobytes())
    np.testing.assert_array_equal(radar.read_pgm(path), img)


def test_read_pgm_rejects_other_formats(tmp_path):
    path = tmp_path / "f.pgm"
    path.write_bytes(b"P2\n2 1\n255\n0 1\n")
    with pytest.raises(ValueError, match="P5"):
        radar.read_pgm(path)


def test_frame_times_sorted(tmp_path):
    meta = {"files": [{"file": "b", "valid_time_utc": "2016-09-28T14:50:00Z"},
                      {"file": "a", "valid_time_utc": "2016-09-28T14:45:00Z"}]}
    names, times = radar.frame_times(meta)
    assert names == ["a", "b"] and (np.diff(times) == np.timedelta64(300, "s")).all()


@pytest.mark.skipif(not EVENT.is_dir(), reason="shared data root not available")
def test_real_frame_matches_pil_and_pysteps():
    """Reader vs PIL; the missing code vs pysteps' FMI header parser; rain rate vs pysteps' converter."""
    from PIL import Image
    from pysteps.io.importers import _import_fmi_pgm_metadata
    from pysteps.utils.conversion import to_rainrate

    meta = json.loads((EVENT / "metadata.json").read_text())
    path = EVENT / meta["files"][0]["file"]
    raw = radar.read_pgm(path)
    with gzip.open(path) as fh:
        np.testing.assert_array_equal(raw, np.asarray(Image.open(fh)))
    dec = radar.Decoding.from_metadata(meta)
    assert dec.missing == int(_import_fmi_pgm_metadata(str(path), gzipped=True)["missingval"])
    dbz = dec.dbz(raw)
    assert dbz.shape == (1226, 760) and np.isnan(dbz).sum() == 226_844  # count in PROVENANCE.md
    ref, _ = to_rainrate(dbz.copy(), {"transform": "dB", "unit": "dBZ", "zr_a": 223.0, "zr_b": 1.53,
                                      "threshold": -32.0, "zerovalue": -32.0, "accutime": 5.0})
    ours = dec.rain_rate(dbz)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, equal_nan=True)
