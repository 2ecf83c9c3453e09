"""Self-conditioning for channel-conditioned networks (e.g. :class:`~core.networks.unet.UNet` with
``cond_channels``): the earlier ``x0`` estimate becomes extra conditioning channels.

:class:`ChannelSelfCondition` wraps a network built with ``cond_channels = base + C`` (``C`` = channels
of the state) and exposes ``net(x, t, cond, self_cond=x0_prev)``, the interface
:class:`~core.parameterization.Denoiser` uses with ``self_condition=True``: ``cond['channels']`` (``base``
channels, zeros when absent) is followed by ``self_cond`` (zeros when ``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn


class ChannelSelfCondition(nn.Module):
    supports_self_condition = True

    def __init__(self, net: nn.Module, base_channels: int) -> None:
        super().__init__()
        if base_channels < 0:
            raise ValueError(f"base_channels must be >= 0, got {base_channels}")
        self.net, self.base_channels = net, int(base_channels)

    def forward(self, x: Tensor, t: Tensor | float, cond: Mapping[str, Any] | None = None,
                self_cond: Tensor | None = None) -> Tensor:
        sc = torch.zeros_like(x) if self_cond is None else self_cond.to(x)
        if sc.shape != x.shape:
            raise ValueError(f"self_cond has shape {tuple(sc.shape)}, expected the state's {tuple(x.shape)}")
        cond = dict(cond or {})
        base = cond.get("channels")
        if base is None:
            base = x.new_zeros((x.shape[0], self.base_channels, *x.shape[2:]))
        cond["channels"] = torch.cat([base.to(x), sc], 1)
        return self.net(x, t, cond)


__all__ = ["ChannelSelfCondition"]
