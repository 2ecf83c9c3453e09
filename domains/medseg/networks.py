"""MONAI's 3-D U-Net behind the core network contract ``net(x, t, cond) -> output``.

MONAI's U-Net has no time embedding, so the (preconditioned) noise level enters as one more input
channel, a constant map of ``t`` (for ``edm`` prediction this is ``c_noise = ln(sigma) / 4``); the
image channels ``cond["channels"]`` are concatenated like the core U-Net's conditioning channels.
It is several times faster than the core U-Net on CPU at these sizes, which is why the CPU presets
use it; the ``full`` preset uses the core U-Net (FiLM time conditioning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from core.networks.embeddings import batch_time, check_cond, cond_channels


class MonaiDenoiserNet(nn.Module):
    def __init__(self, in_channels: int, cond_channels: int, channels: Sequence[int] = (16, 32, 64),
                 num_res_units: int = 1) -> None:
        from monai.networks.nets import UNet

        super().__init__()
        self.in_channels, self.cond_channels = in_channels, cond_channels
        self.net = UNet(spatial_dims=3, in_channels=in_channels + cond_channels + 1, out_channels=in_channels,
                        channels=tuple(channels), strides=(2,) * (len(channels) - 1), num_res_units=num_res_units,
                        norm="instance")

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None) -> Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [B, {self.in_channels}, D, H, W], got {tuple(x.shape)}")
        check_cond(cond, ("channels",))
        tb = batch_time(t, x.shape[0], x.device).to(x.dtype)
        tmap = tb.reshape(-1, 1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[2:])
        return self.net(torch.cat([x, cond_channels(cond, x, self.cond_channels), tmap], dim=1))
