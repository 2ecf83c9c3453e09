"""Native outputs: NIfTI masks and uncertainty maps with the processed grid's affine, PNG overlays.

The affine written is the one MONAI tracked through orientation, spacing and cropping, so each output
maps voxels to the same world (RAS, mm) coordinates as the input scan and overlays it in any viewer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def write_nifti(array: Tensor, affine: Tensor, path: Path) -> Path:
    """``array [*vol]`` (bool/uint8 masks as uint8, else float32) as NIfTI with ``affine``, atomically."""
    import nibabel as nib

    a = array.detach().cpu()
    data = a.to(torch.uint8).numpy() if a.dtype in (torch.bool, torch.uint8) else a.float().numpy()
    img = nib.Nifti1Image(np.ascontiguousarray(data), affine.double().numpy())
    img.set_qform(affine.double().numpy(), code=1)
    img.set_sform(affine.double().numpy(), code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    nib.save(img, str(tmp))
    tmp.replace(path)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def overlay_png(image: Tensor, gt: Tensor, diffusion: Tensor, baseline: Tensor | None, uncertainty: Tensor,
                path: Path, title: str) -> Path:
    """Axial slice through the ground truth's largest cross-section: image with contours, and uncertainty.

    All inputs are ``[*vol]`` for one region (``image`` is one channel)."""
    plt = _plt()
    z = int(gt.flatten(0, 1).sum(0).argmax()) if gt.any() else image.shape[-1] // 2
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    img = image[..., z].T.numpy()
    for ax in axes:
        ax.imshow(img, cmap="gray", origin="lower")
        ax.set_xticks([])
        ax.set_yticks([])
    layers = [(gt, "lime", "truth"), (diffusion, "red", "diffusion"), (baseline, "cyan", "baseline")]
    for mask, colour, _ in layers:
        if mask is not None and mask[..., z].any():
            axes[0].contour(mask[..., z].T.float().numpy(), levels=[0.5], colors=colour, linewidths=1)
    axes[0].set_title(f"{title}: truth (green), diffusion (red), U-Net (cyan)", fontsize=7)
    im = axes[1].imshow(uncertainty[..., z].T.numpy(), cmap="magma", origin="lower", vmin=0, vmax=1, alpha=0.8)
    axes[1].set_title("ensemble uncertainty (entropy, bits)", fontsize=7)
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def ensemble_curve_png(sizes: list[int], dice_by_size: dict[str, list[float]], baseline: dict[str, float],
                       path: Path) -> Path:
    """Mean Dice against ensemble size, one line per region, baseline as dashed lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for region, values in dice_by_size.items():
        line = ax.plot(sizes, values, marker="o", label=f"diffusion {region}")[0]
        if region in baseline:
            ax.axhline(baseline[region], ls="--", color=line.get_color(), lw=1, label=f"U-Net {region}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ensemble size")
    ax.set_ylabel("mean Dice")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
