"""A 2-D Fourier Neural Operator over the (t, x) plane (Li et al. 2021), written with ``torch.fft``.

Input channels at every grid point: ``u0(x)`` (broadcast over time), ``f(t, x)``, and the coordinates
``t/T`` and ``x``; output: ``u(t, x)`` at the ``nt`` frames after ``u0``. The spectral weights act on
the lowest ``modes`` Fourier modes, so the same operator applies to finer grids. The lifted field is
zero-padded (the problem is not periodic) by a fixed *fraction of the domain* (half the time span, a
quarter of the space interval, :func:`padding`): the padded box then has the same physical size on every
grid, so Fourier mode ``k`` is the same physical frequency at 1x, 2x and 4x. (Padding a fixed number of
grid points would shrink the box on finer grids and shift every learnt spectral weight to another
frequency.)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class SpectralConv2d(nn.Module):
    """``x -> irfft2(W · rfft2(x))`` keeping ``modes[0]`` (both signs) x ``modes[1]`` modes."""

    def __init__(self, channels: int, modes: tuple[int, int]) -> None:
        super().__init__()
        self.modes = modes
        scale = 1.0 / (channels * channels)
        shape = (2, channels, channels, modes[0], modes[1])
        self.weight = nn.Parameter(scale * torch.randn(*shape, dtype=torch.cfloat))

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        m0, m1 = min(self.modes[0], h // 2), min(self.modes[1], w // 2 + 1)
        xf = torch.fft.rfft2(x, norm="ortho")
        out = torch.zeros_like(xf)
        out[..., :m0, :m1] = _mix(xf[..., :m0, :m1], self.weight[0, :, :, :m0, :m1])
        out[..., -m0:, :m1] = _mix(xf[..., -m0:, :m1], self.weight[1, :, :, :m0, :m1])
        return torch.fft.irfft2(out, s=(h, w), norm="ortho")


def _mix(x: Tensor, w: Tensor) -> Tensor:
    """``out[b, o, h, w] = sum_i x[b, i, h, w] W[i, o, h, w]`` as one batched matmul over modes."""
    b, i, m0, m1 = x.shape
    xs = x.permute(2, 3, 0, 1).reshape(m0 * m1, b, i)
    ws = w.permute(2, 3, 0, 1).reshape(m0 * m1, i, w.shape[1])
    return torch.bmm(xs, ws).reshape(m0, m1, b, -1).permute(2, 3, 0, 1)


def padding(nt: int, nx: int) -> tuple[int, int]:
    """Zero rows / columns appended to the ``nt x nx`` field: ``ceil(nt / 2)`` frames and
    ``ceil((nx + 1) / 4) + 1`` points (the right wall plus a quarter of ``[0, 1]``), so the padded box spans
    ``1.5 T`` x ``1.25`` on every grid whose ``nt`` and ``nx + 1`` scale together."""
    return -(-nt // 2), -(-(nx + 1) // 4) + 1


class FNO2d(nn.Module):
    """``forward(u0 [B, nx], f [B, nt, nx]) -> u [B, nt, nx]`` (normalised units)."""

    def __init__(self, width: int = 32, modes: tuple[int, int] = (8, 8), layers: int = 4) -> None:
        super().__init__()
        self.lift = nn.Conv2d(4, width, 1)
        self.spectral = nn.ModuleList(SpectralConv2d(width, modes) for _ in range(layers))
        self.pointwise = nn.ModuleList(nn.Conv2d(width, width, 1) for _ in range(layers))
        self.head = nn.Sequential(nn.Conv2d(width, 2 * width, 1), nn.GELU(), nn.Conv2d(2 * width, 1, 1))

    def forward(self, u0: Tensor, f: Tensor) -> Tensor:
        b, nt, nx = f.shape
        t = torch.linspace(1.0 / nt, 1.0, nt, device=f.device, dtype=f.dtype)[None, :, None].expand(b, nt, nx)
        x = torch.linspace(1.0 / (nx + 1), nx / (nx + 1), nx, device=f.device, dtype=f.dtype)[None, None].expand(b, nt, nx)
        h = self.lift(torch.stack([u0[:, None].expand(b, nt, nx), f, t, x], dim=1))
        pt, px = padding(nt, nx)
        h = F.pad(h, (0, px, 0, pt))  # non-periodic domain: the same physical box on every grid
        for i, (sc, pw) in enumerate(zip(self.spectral, self.pointwise, strict=True)):
            h = sc(h) + pw(h)
            if i < len(self.spectral) - 1:
                h = F.gelu(h)
        return self.head(h)[:, 0, :nt, :nx]


def train_fno(model: FNO2d, u: Tensor, f: Tensor, scales: Tensor, steps: int, batch_size: int, lr: float,
              generator: torch.Generator, progress: bool = False) -> list[float]:
    """Adam on the MSE of ``u[:, 1:]`` (normalised), cosine learning rate; returns the loss history."""
    from tqdm.auto import trange

    un, fn = (u / scales[0]).float(), (f / scales[1]).float()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    history = []
    model.train()
    for _ in trange(steps, desc="pde: training FNO baseline", disable=not progress):
        idx = torch.randint(un.shape[0], (batch_size,), generator=generator)
        loss = F.mse_loss(model(un[idx, 0], fn[idx]), un[idx, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
    return history


@torch.no_grad()
def predict_fno(model: FNO2d, u0: Tensor, f: Tensor, scales: Tensor, batch_size: int = 256) -> Tensor:
    """Physical-unit prediction ``u [B, nt, nx]`` (the frames after ``u0``)."""
    model.eval()
    out = [model((u0[i:i + batch_size] / scales[0]).float(), (f[i:i + batch_size] / scales[1]).float())
           for i in range(0, u0.shape[0], batch_size)]
    return torch.cat(out) * scales[0]


__all__ = ["FNO2d", "SpectralConv2d", "padding", "predict_fno", "train_fno"]
