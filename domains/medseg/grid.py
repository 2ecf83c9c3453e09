"""Back from the processed grid to the input image's own grid (the inverse of resampling and cropping).

Preprocessing (orientation, spacing, foreground crop) changes only the voxel grid: every processed
voxel keeps its world (mm) position, recorded in the processed affine. The exact inverse is therefore
a resampling through world coordinates: original voxel ``i`` sits at ``A_orig @ i``, which is the
(fractional) processed voxel ``A_proc^-1 @ A_orig @ i``; values are read there by trilinear or
nearest-neighbour interpolation, and original voxels outside the processed (cropped) box are 0.
Where the two grids share their spacing (a pure reorientation and crop) this is an exact permutation
of voxels, so a perfect prediction on the processed grid is the original label voxel for voxel.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

Mode = Literal["linear", "nearest"]


def _as_affine(a: Tensor) -> Tensor:
    a = torch.as_tensor(a, dtype=torch.float64)
    if a.shape != (4, 4):
        raise ValueError(f"an affine must be 4 x 4, got {tuple(a.shape)}")
    return a


def index_map(src_affine: Tensor, dst_affine: Tensor) -> Tensor:
    """The 4 x 4 map from destination voxel indices to (fractional) source voxel indices."""
    return torch.linalg.inv(_as_affine(src_affine)) @ _as_affine(dst_affine)


def _is_permutation(m: Tensor, tol: float = 1e-4) -> bool:
    """True when ``m`` maps integer indices to integer indices (axis permutation, flips, integer shift)."""
    lin = m[:3, :3]
    return bool(((lin.abs() - 1).abs() < tol).sum() == 3 and (lin.abs() < tol).sum() == 6
                and ((m[:3, 3] - m[:3, 3].round()).abs() < tol).all())


def resample_to_grid(volume: Tensor, src_affine: Tensor, dst_affine: Tensor, dst_shape: tuple[int, ...] | list[int],
                     mode: Mode = "linear") -> Tensor:
    """``volume [C, *src]`` on the grid ``src_affine`` resampled onto ``dst_shape`` / ``dst_affine``.

    Outside the source grid the result is 0. Integer-aligned grids (same spacing, reoriented and
    cropped) are copied voxel for voxel whatever ``mode`` is."""
    if volume.ndim != 4:
        raise ValueError(f"expected a [C, X, Y, Z] volume, got shape {tuple(volume.shape)}")
    dst_shape = tuple(int(s) for s in dst_shape)
    m = index_map(src_affine, dst_affine)
    dtype = volume.dtype
    src = volume.float()
    if _is_permutation(m):
        return _copy_permuted(src, m, dst_shape).to(dtype)
    out = torch.zeros((src.shape[0], *dst_shape), dtype=torch.float32)
    box = _covered_box(m, src.shape[1:], dst_shape)
    if box is None:
        return out.to(dtype)
    lo, hi = box
    axes = [torch.arange(a, b, dtype=torch.float64) for a, b in zip(lo, hi, strict=True)]
    size = torch.tensor(src.shape[1:], dtype=torch.float64)
    # grid_sample's last dim is (W, H, D) = (z, y, x) of a [N, C, D=x, H=y, W=z] input, align_corners=True:
    # normalised source coordinate of axis a = scale_a * (m[a, :3] @ (i, j, k) + m[a, 3]) - 1, built by broadcasting
    scale = 2 / (size - 1).clamp(min=1)
    for z0 in range(0, len(axes[2]), 32):  # slabs keep the coordinate grid small for 1 mm volumes
        zs = axes[2][z0:z0 + 32]
        coords = []
        for a in (2, 1, 0):
            c = (m[a, 0] * axes[0][:, None, None] + m[a, 1] * axes[1][None, :, None] + m[a, 2] * zs[None, None, :]
                 + m[a, 3]) * scale[a] - 1
            coords.append(c.float().expand(len(axes[0]), len(axes[1]), len(zs)))
        grid = torch.stack(coords, -1)[None]
        sampled = torch.nn.functional.grid_sample(src[None], grid, mode="bilinear" if mode == "linear" else "nearest",
                                                  padding_mode="zeros", align_corners=True)
        out[:, lo[0]:hi[0], lo[1]:hi[1], lo[2] + z0:lo[2] + z0 + len(zs)] = sampled[0]
    return out.round().to(dtype) if not dtype.is_floating_point and dtype != torch.bool else out.to(dtype)


def _covered_box(m: Tensor, src_shape: tuple[int, ...], dst_shape: tuple[int, ...]) -> tuple[list[int], list[int]] | None:
    """Destination index box (``lo``, ``hi`` exclusive) that can map inside the source grid; ``None`` if empty."""
    inv = torch.linalg.inv(m)
    corners = torch.tensor([[x, y, z, 1.0] for x in (-1, src_shape[0]) for y in (-1, src_shape[1])
                            for z in (-1, src_shape[2])], dtype=torch.float64) @ inv.T
    lo = [max(0, int(torch.floor(corners[:, a].min()))) for a in range(3)]
    hi = [min(dst_shape[a], int(torch.ceil(corners[:, a].max())) + 1) for a in range(3)]
    return None if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)) else (lo, hi)


def _copy_permuted(src: Tensor, m: Tensor, dst_shape: tuple[int, ...]) -> Tensor:
    """Exact voxel copy when ``m`` is an axis permutation with flips and an integer offset."""
    lin = m[:3, :3].round().long()
    out = torch.zeros((src.shape[0], *dst_shape), dtype=src.dtype)
    # destination axis j reads source axis p[j] (index sign[j] * i_j + offset[p[j]])
    perm = [int(lin[:, j].abs().argmax()) for j in range(3)]
    sign = [int(lin[perm[j], j]) for j in range(3)]
    offset = [int(round(float(m[perm[j], 3]))) for j in range(3)]
    ranges = []
    for j in range(3):
        i = torch.arange(dst_shape[j])
        s = sign[j] * i + offset[j]
        ok = (s >= 0) & (s < src.shape[1 + perm[j]])
        ranges.append((i[ok], s[ok]))
    if any(len(d) == 0 for d, _ in ranges):
        return out
    moved = src.permute(0, *(1 + p for p in perm))  # source axes in destination order
    sub = moved[:, ranges[0][1]][:, :, ranges[1][1]][:, :, :, ranges[2][1]]
    out[:, ranges[0][0][0]:ranges[0][0][-1] + 1, ranges[1][0][0]:ranges[1][0][-1] + 1,
        ranges[2][0][0]:ranges[2][0][-1] + 1] = sub
    return out


def covered_box(src_affine: Tensor, src_shape: tuple[int, ...], dst_affine: Tensor,
                dst_shape: tuple[int, ...]) -> tuple[list[int], list[int]] | None:
    """The box (``lo``, ``hi`` exclusive) of destination voxels the source grid can reach."""
    return _covered_box(index_map(src_affine, dst_affine), tuple(src_shape), tuple(dst_shape))


def shifted_affine(affine: Tensor, lo: list[int]) -> Tensor:
    """The affine of the sub-grid whose voxel 0 is voxel ``lo`` of ``affine``'s grid."""
    a = _as_affine(affine).clone()
    a[:3, 3] = a[:3, 3] + a[:3, :3] @ torch.tensor([float(v) for v in lo], dtype=torch.float64)
    return a


def spacing_of(affine: Tensor) -> list[float]:
    """Voxel spacing (mm) along each array axis: the column norms of the affine."""
    return [float(v) for v in torch.linalg.norm(_as_affine(affine)[:3, :3], dim=0)]
