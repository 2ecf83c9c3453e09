"""Single-level 2-D discrete wavelet transform of whole (t, x) trajectories, as matrices.

PyWavelets supplies the filter bank: the 1-D analysis matrix of length ``n`` is ``pywt.dwt`` (mode
``periodization``, non-expansive) applied to the identity, and the synthesis matrix ``pywt.idwt``
of the identity coefficients. The 2-D transform of a ``[..., H, W]`` array is then
``A_H X A_W^T``, split into pywt.dwt2's four bands (approximation; detail along H, along W, both) (``[..., 4, H/2, W/2]``); the inverse is
``S_H C S_W^T``. Written as matmuls it is exact, batched, differentiable (control guidance goes
through it) and runs on any device. A wavelet whose reconstruction error on the grid exceeds the
tolerance is refused with the error printed.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor


class WaveletError(ValueError):
    """The wavelet cannot represent this grid exactly."""


@lru_cache(maxsize=32)
def _matrices(wavelet: str, n: int) -> tuple[Tensor, Tensor]:
    import numpy as np
    import pywt

    if n % 2:
        raise WaveletError(f"wavelet grid axis has odd length {n}; the state layout must pad it to even")
    try:
        w = pywt.Wavelet(wavelet)
    except ValueError as err:
        raise WaveletError(f"unknown wavelet {wavelet!r}; choose one of pywt.wavelist(kind='discrete'), "
                           f"e.g. 'bior2.4', 'haar', 'db2'") from err
    eye = np.eye(n)
    ca, cd = pywt.dwt(eye, w, mode="periodization", axis=0)
    analysis = np.concatenate([ca, cd], axis=0)  # [n, n]: column j is the transform of e_j
    h = n // 2
    synthesis = pywt.idwt(eye[:h], eye[h:], w, mode="periodization", axis=0)  # [n, n]
    return torch.from_numpy(analysis.copy()), torch.from_numpy(synthesis.copy())


class Wavelet2D:
    """``forward [..., H, W] -> [..., 4, H/2, W/2]`` and its inverse for one wavelet and grid."""

    def __init__(self, wavelet: str, shape: tuple[int, int], tol: float = 1e-10) -> None:
        self.wavelet, self.shape = wavelet, shape
        (self.ah, self.sh), (self.aw, self.sw) = _matrices(wavelet, shape[0]), _matrices(wavelet, shape[1])
        err = self.reconstruction_error()
        if err > tol:
            raise WaveletError(f"wavelet {wavelet!r} reconstructs a {shape[0]}x{shape[1]} grid with max error "
                               f"{err:.3e} > tolerance {tol:.1e}; choose a wavelet with exact periodized "
                               f"reconstruction (e.g. 'bior2.4', 'haar', 'db2')")

    def reconstruction_error(self) -> float:
        eh = (self.sh @ self.ah - torch.eye(self.shape[0], dtype=self.ah.dtype)).abs().max()
        ew = (self.sw @ self.aw - torch.eye(self.shape[1], dtype=self.aw.dtype)).abs().max()
        return float(max(eh, ew))

    def forward(self, x: Tensor) -> Tensor:
        h, w = self.shape
        if tuple(x.shape[-2:]) != (h, w):
            raise ValueError(f"expected [..., {h}, {w}], got {tuple(x.shape)}")
        c = self.ah.to(x) @ x @ self.aw.to(x).T
        top, bottom = c[..., : h // 2, :], c[..., h // 2:, :]
        # pywt.dwt2 order: approximation, then details high-pass along H, along W, along both
        bands = [top[..., : w // 2], bottom[..., : w // 2], top[..., w // 2:], bottom[..., w // 2:]]
        return torch.stack(bands, dim=-3)

    def inverse(self, c: Tensor) -> Tensor:
        ll, dh, dw, dd = c.unbind(dim=-3)
        full = torch.cat([torch.cat([ll, dw], dim=-1), torch.cat([dh, dd], dim=-1)], dim=-2)
        return self.sh.to(c) @ full @ self.sw.to(c).T


__all__ = ["Wavelet2D", "WaveletError"]
