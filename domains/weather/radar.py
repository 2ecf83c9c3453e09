"""Reading the FMI radar composite: gzip binary PGM frames -> reflectivity -> rain rate.

Decoding constants (dBZ gain/offset, the missing-value code, the Z-R coefficients) are read from the
event's ``metadata.json`` rather than hard-coded, so a different archive with other constants decodes
correctly or fails loudly. Missing values become NaN (and a mask), never zero rain.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Decoding:
    """``dBZ = (value - offset) / divisor``; ``Z = a R^b``; ``missing`` marks no coverage."""

    offset: float = 64.0
    divisor: float = 2.0
    missing: int = 255
    a: float = 223.0
    b: float = 1.53

    @classmethod
    def from_metadata(cls, meta: dict) -> Decoding:
        try:
            dbz = meta["decode"]["dBZ"]
            zr = meta["rain_rate_conversion"]["Z_R"]
            missing = int(meta["decode"]["missing_value"])
        except KeyError as exc:
            raise ValueError(f"radar metadata lacks {exc}; expected keys decode.dBZ, decode.missing_value and "
                             "rain_rate_conversion.Z_R (see data/weather/PROVENANCE.md)") from None
        m = re.fullmatch(r"\s*\(value\s*-\s*([\d.]+)\)\s*/\s*([\d.]+)\s*", dbz)
        ma, mb = re.search(r"a\s*=\s*([\d.]+)", zr), re.search(r"b\s*=\s*([\d.]+)", zr)
        if m is None or ma is None or mb is None:
            raise ValueError(f"cannot parse the radar decoding {dbz!r} / {zr!r}; expected "
                             "'(value - OFFSET) / DIVISOR' and 'Z = a R^b with a=..., b=...'")
        return cls(float(m[1]), float(m[2]), missing, float(ma[1]), float(mb[1]))

    def dbz(self, raw: np.ndarray) -> np.ndarray:
        """Reflectivity in dBZ, NaN where ``raw == missing``."""
        out = (raw.astype(np.float64) - self.offset) / self.divisor
        out[raw == self.missing] = np.nan
        return out

    def rain_rate(self, dbz: np.ndarray) -> np.ndarray:
        """Rain rate in mm/h from ``Z = a R^b`` with ``Z = 10^(dBZ/10)``; NaN stays NaN."""
        z = np.power(10.0, dbz / 10.0)
        return np.power(z / self.a, 1.0 / self.b)

    def rain_rate_lut(self) -> np.ndarray:
        """Rain rate (float32, NaN for ``missing``) for every possible 8-bit value: ``lut[raw]`` decodes."""
        return self.rain_rate(self.dbz(np.arange(256, dtype=np.uint8))).astype(np.float32)


def read_pgm(path: str | Path) -> np.ndarray:
    """A (gzip) binary PGM (P5, 8-bit) as a ``uint8 [rows, cols]`` array (first row = north)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        blob = fh.read()
    tokens, pos = [], 0
    while len(tokens) < 4:  # magic, width, height, maxval; '#' comments may sit between them
        while blob[pos:pos + 1].isspace():
            pos += 1
        if blob[pos:pos + 1] == b"#":
            pos = blob.index(b"\n", pos) + 1
            continue
        end = pos
        while not blob[end:end + 1].isspace():
            end += 1
        tokens.append(blob[pos:end])
        pos = end
    if tokens[0] != b"P5":
        raise ValueError(f"{path}: expected a binary PGM (magic P5), got {tokens[0]!r}")
    width, height, maxval = (int(t) for t in tokens[1:])
    if maxval > 255:
        raise ValueError(f"{path}: expected an 8-bit PGM (maxval <= 255), got maxval {maxval}")
    data = np.frombuffer(blob, dtype=np.uint8, count=width * height, offset=pos + 1)
    return data.reshape(height, width)


def load_metadata(folder: Path) -> dict:
    path = folder / "metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the radar event needs its metadata.json (catalog entry files)")
    return json.loads(path.read_text())


def frame_times(meta: dict) -> tuple[list[str], np.ndarray]:
    """File names and valid times (``datetime64[s]``, UTC) listed in the metadata, sorted by time."""
    rows = sorted(meta["files"], key=lambda r: r["valid_time_utc"])
    times = np.array([np.datetime64(r["valid_time_utc"].rstrip("Z"), "s") for r in rows])
    return [r["file"] for r in rows], times
