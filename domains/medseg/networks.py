"""MONAI's 3-D U-Net behind the core network contract ``net(x, t, cond) -> output``.

MONAI's U-Net has no time embedding, so the (preconditioned) noise level enters as one more input
channel, a constant map of ``t`` (for ``edm`` prediction this is ``c_noise = ln(sigma) / 4``); the
image channels ``cond["channels"]`` are concatenated like the core U-Net's conditioning channels.
It is several times faster than the core U-Net on CPU at these sizes, which is why the CPU presets
use it; the ``full`` preset uses the core U-Net (FiLM time conditioning).

MONAI's U-Net downsamples in its very first layer, so it has no full-resolution features: its output
is smooth at the voxel scale. A denoiser with a skip path (EDM's ``c_skip x``) must cancel the noise
of ``x`` voxel by voxel, which such a network cannot do, and the leaked noise turns into speckle in
the samples. ``head_channels > 0`` adds a full-resolution head (a voxel-wise MLP, 1x1x1 convolutions,
over the U-Net output concatenated with the network input, added to the U-Net output) that gives the denoiser a per-voxel path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from core.networks.embeddings import batch_time, check_cond, cond_channels


class MonaiDenoiserNet(nn.Module):
    def __init__(self, in_channels: int, cond_channels: int, channels: Sequence[int] = (16, 32, 64),
                 num_res_units: int = 1, head_channels: int = 0) -> None:
        from monai.networks.nets import UNet

        super().__init__()
        self.in_channels, self.cond_channels = in_channels, cond_channels
        n_in = in_channels + cond_channels + 1
        self.net = UNet(spatial_dims=3, in_channels=n_in, out_channels=in_channels,
                        channels=tuple(channels), strides=(2,) * (len(channels) - 1), num_res_units=num_res_units,
                        norm="instance")
        self.head: nn.Module | None = None
        if head_channels:
            self.head = nn.Sequential(
                nn.Conv3d(in_channels + n_in, head_channels, 1), nn.PReLU(),
                nn.Conv3d(head_channels, in_channels, 1))

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [B, {self.in_channels}, D, H, W], got {tuple(x.shape)}")
        check_cond(cond, ("channels",))
        tb = batch_time(t, x.shape[0], x.device).to(x.dtype)
        tmap = tb.reshape(-1, 1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        inp = torch.cat([x, cond_channels(cond, x, self.cond_channels), tmap], dim=1)
        out = self.net(inp)
        return out if self.head is None else out + self.head(torch.cat([out, inp], dim=1))
