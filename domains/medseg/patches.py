"""Training patches: MONAI's positive/negative patch sampling plus flips and intensity jitter, seeded.

Patches are drawn once per training run (``patches_per_case`` per case) with MONAI transforms whose
random state comes from ``derive_seed(seed, "patches", case_index)``; both the diffusion model and the
baseline train on exactly these rows.
"""

from __future__ import annotations

from typing import Any

import torch

from core.seeding import derive_seed
from domains.medseg.config import MedsegData


def _augment(cfg: MedsegData) -> Any:
    from monai import transforms as T

    keys = ["image", "label"]
    n_pos = cfg.pos_fraction
    chain: list[Any] = [
        T.RandCropByPosNegLabeld(keys, label_key="label", spatial_size=cfg.patch, pos=n_pos, neg=1.0 - n_pos,
                                 num_samples=cfg.patches_per_case, allow_smaller=False),
        T.SpatialPadd(keys, spatial_size=cfg.patch),
    ]
    chain += [T.RandFlipd(keys, prob=cfg.flip_prob, spatial_axis=a) for a in range(3)]
    if cfg.intensity_jitter > 0:
        chain += [T.RandScaleIntensityd("image", factors=cfg.intensity_jitter, prob=1.0),
                  T.RandShiftIntensityd("image", offsets=cfg.intensity_jitter, prob=1.0)]
    return T.Compose(chain)


def case_patches(image: torch.Tensor, fg: torch.Tensor, cfg: MedsegData, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``patches_per_case`` patches of ``image [C,*vol]`` and the foreground masks ``fg [R,*vol]``."""
    if any(s < p for s, p in zip(image.shape[1:], cfg.patch, strict=True)):
        pad = [max(p - s, 0) for s, p in zip(image.shape[1:], cfg.patch, strict=True)]
        flat = [v for p in reversed(pad) for v in (0, p)]
        image, fg = torch.nn.functional.pad(image, flat), torch.nn.functional.pad(fg, flat)
    chain = _augment(cfg)
    chain.set_random_state(seed=seed % (2**32))
    # the sampler picks centres on the union of regions; the label channels ride along
    label = torch.cat([fg.any(0, keepdim=True), fg]).float()
    items = chain({"image": image, "label": label})
    imgs = torch.stack([torch.as_tensor(it["image"]).as_subclass(torch.Tensor) for it in items])
    masks = torch.stack([torch.as_tensor(it["label"]).as_subclass(torch.Tensor)[1:] > 0.5 for it in items])
    return imgs.float().contiguous(), masks.contiguous()


def training_patches(cases: list[dict[str, Any]], regions: dict[str, tuple[int, ...]], cfg: MedsegData,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stacked patches of every case: images ``[N,C,*patch]`` and region masks ``[N,R,*patch]`` (bool)."""
    from domains.medseg.data import region_masks

    imgs, masks = [], []
    for i, case in enumerate(cases):
        im, m = case_patches(case["image"], region_masks(case["label"], regions), cfg,
                             derive_seed(seed, "patches", i))
        imgs.append(im)
        masks.append(m)
    return torch.cat(imgs), torch.cat(masks)
