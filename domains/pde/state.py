"""The diffusion state of a trajectory: layout, representation (wavelet or physical) and state space.

Layout: ``u`` (``nt+1`` frames incl. ``u0``) and ``f`` (``nt`` frames) share one physical array
``[B, 2, H, W]`` with ``H = nt + 2`` and ``W = nx + 1``: the extra row (and ``f``'s unused last rows)
and the last column (the right wall, where ``u = 0``) are padding that is always *known to be zero*,
which makes both axes even for the wavelet transform. Fields are divided by their RMS on the training
set. The ``wavelet`` representation is the 2-D DWT of each field (``[B, 8, H/2, W/2]``, divided by
the bands' training RMS: one global value by default, or per band, ``network.band_scaling``);
``physical`` is the array itself (the baseline).

Conditioning (simulation: ``u0`` and ``f`` known; control: ``u0`` and ``u_T`` known) is replacement
conditioning, done **in physical space** for both representations: known values are encoded,
re-noised to the sampler's time *in the representation* (so their noise has the statistics the
network was trained on), decoded, written into the known physical entries, and the result is
encoded again. A known entry of the wavelet state is not one coefficient but a linear combination,
so masking coefficients directly would be wrong; for the physical representation this is exactly
:class:`core.samplers.InpaintingSpace`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor

from core.processes.base import ForwardProcess
from core.samplers import InpaintingSpace
from domains.pde.wavelet import Wavelet2D

Task = Literal["simulation", "control"]
Conditioning = Literal["broadcast", "known"]


def layout_shape(nt: int, nx: int) -> tuple[int, int]:
    if nt % 2 or (nx + 1) % 2:
        raise ValueError(f"grid nt={nt}, nx={nx}: the layout needs nt even and nx odd (nx+1 even) so the "
                         f"wavelet transform halves both axes; set data.nt / data.nx accordingly")
    return nt + 2, nx + 1


def pack(u: Tensor, f: Tensor, scales: Tensor) -> Tensor:
    """``u [B, nt+1, nx]``, ``f [B, nt, nx]`` -> normalised physical array ``[B, 2, nt+2, nx+1]``."""
    b, n1, nx = u.shape
    h, w = layout_shape(n1 - 1, nx)
    x = u.new_zeros((b, 2, h, w))
    x[:, 0, :n1, :nx] = u / scales[0]
    x[:, 1, : n1 - 1, :nx] = f / scales[1]
    return x


def unpack(x: Tensor, scales: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack`: ``(u [B, nt+1, nx], f [B, nt, nx])`` in physical units."""
    n1, nx = x.shape[-2] - 1, x.shape[-1] - 1
    return x[:, 0, :n1, :nx] * scales[0], x[:, 1, : n1 - 1, :nx] * scales[1]


def known_mask(task: Task, nt: int, nx: int, batch: int = 1) -> Tensor:
    """1 where the physical array is known: the padding, ``u0``, and ``f`` (simulation) or ``u_T`` (control)."""
    h, w = layout_shape(nt, nx)
    m = torch.ones((batch, 2, h, w))
    m[:, 0, 1: nt + 1, :nx] = 0.0
    m[:, 1, :nt, :nx] = 0.0
    if task == "simulation":
        m[:, 1, :nt, :nx] = 1.0
    else:
        m[:, 0, nt, :nx] = 1.0
    return m


def broadcast_conditioning(known: Tensor, mask: Tensor) -> Tensor:
    """``[B, 4, H, W]``: ``u0`` and ``u_T`` (where known, else 0) repeated over all rows, known ``f``, ``f``'s mask."""
    h, nt = known.shape[-2], known.shape[-2] - 2
    u = known[:, 0] * mask[:, 0]
    has_target = mask[:, 0, nt, :1].amax(dim=-1)  # [B] 1 for control, 0 for simulation
    u0 = u[:, :1].expand(-1, h, -1)
    ut = (u[:, nt:nt + 1] * has_target[:, None, None]).expand(-1, h, -1)
    return torch.stack([u0, ut, known[:, 1] * mask[:, 1], mask[:, 1]], dim=1)


class Representation:
    """``encode``/``decode`` between the normalised physical array and the diffusion state."""

    def __init__(self, kind: Literal["wavelet", "physical"], shape: tuple[int, int], wavelet: str = "bior2.4",
                 band_scales: Tensor | None = None, tol: float = 1e-10) -> None:
        self.kind, self.shape = kind, shape
        self.dwt = Wavelet2D(wavelet, shape, tol) if kind == "wavelet" else None
        self.band_scales = band_scales

    @property
    def channels(self) -> int:
        return 8 if self.kind == "wavelet" else 2

    def state_shape(self) -> tuple[int, int, int]:
        h, w = self.shape
        return (8, h // 2, w // 2) if self.kind == "wavelet" else (2, h, w)

    def transform(self, x: Tensor) -> Tensor:
        """Unscaled representation (the wavelet bands, or the array itself)."""
        if self.dwt is None:
            return x
        c = self.dwt.forward(x)  # [B, C, 4, h, w]
        return c.reshape(c.shape[0], 4 * c.shape[1], *c.shape[-2:])

    def encode(self, x: Tensor) -> Tensor:
        c = self.transform(x)
        return c if self.band_scales is None or self.dwt is None else c / self.band_scales.to(c)[:, None, None]

    def decode(self, c: Tensor) -> Tensor:
        if self.dwt is None:
            return c
        if self.band_scales is not None:
            c = c * self.band_scales.to(c)[:, None, None]
        return self.dwt.inverse(c.reshape(c.shape[0], 2, 4, *c.shape[-2:]))

    def cond_channels(self, known: Tensor, mask: Tensor, mode: Conditioning = "broadcast") -> Tensor:
        """Network conditioning channels, in the state's representation.

        ``broadcast`` (default): the physical array ``(u0, u_T, f, f-mask)`` with ``u0`` and ``u_T``
        (zero when not given) copied into every frame, transformed like the state, so every
        coefficient sees the initial (and target) state at its own ``x``. ``known``: the encoded known
        entries (zero elsewhere) and the transformed mask; ``u0`` then reaches only the first
        coefficient rows.
        """
        if mode == "known":
            return torch.cat([self.encode(known * mask), self.transform(mask)], dim=1)
        return self.transform(broadcast_conditioning(known, mask))

    @property
    def cond_count(self) -> int:
        """Conditioning channels (either mode): four physical channels, four bands each for wavelets."""
        return 16 if self.kind == "wavelet" else 4


LossSpace = Literal["state", "physical", "physical_unknown"]


def training_cond(channels: Tensor, mask: Tensor, loss_space: LossSpace) -> dict[str, Tensor]:
    """Training conditioning: the network's channels, plus the generated entries (``1 - mask``) when the
    loss is measured only there."""
    cond = {"channels": channels}
    if loss_space == "physical_unknown":
        cond["unknown"] = 1.0 - mask
    return cond


class TrajectorySpace(InpaintingSpace):
    """Replacement conditioning in physical space; ``cond['known']``/``cond['mask']`` are physical arrays.

    ``loss_space`` chooses where training errors are measured: on the state itself (``state``), on the
    physical array it decodes to (``physical``; the representation is linear, so the residual is
    decoded), or only on the physical entries the task generates (``physical_unknown``, which needs
    ``cond['unknown']``, 1 there, from the training data). The bior wavelets are biorthogonal, not
    orthonormal, so a coefficient error and a physical error of the same size are not the same.
    """

    def __init__(self, process: ForwardProcess, rep: Representation, generator: torch.Generator | None = None,
                 loss_space: LossSpace = "state") -> None:
        super().__init__(process, known=torch.zeros(()), mask=torch.zeros(()), generator=generator)
        if loss_space not in ("state", "physical", "physical_unknown"):
            raise ValueError(f"loss_space {loss_space!r}: choose 'state', 'physical' or 'physical_unknown'")
        self.rep, self.loss_space = rep, loss_space
        self._decoders: dict[tuple[int, int], Representation] = {}

    def _decoder(self, state_hw: tuple[int, int]) -> Representation:
        """The representation of the grid a residual lives on (multi-resolution batches change it)."""
        if self.rep.dwt is None:  # physical: decoding is the identity on every grid
            return self.rep
        shape = (2 * state_hw[0], 2 * state_hw[1])
        if shape == self.rep.shape:
            return self.rep
        if shape not in self._decoders:
            self._decoders[shape] = Representation(self.rep.kind, shape, self.rep.dwt.wavelet, self.rep.band_scales)
        return self._decoders[shape]

    def loss_residual(self, diff: Tensor, cond: Any = None) -> Tensor:  # type: ignore[override]
        if self.loss_space == "state":
            return diff
        phys = self._decoder(tuple(diff.shape[-2:])).decode(diff)
        if self.loss_space == "physical_unknown":
            if cond is None or "unknown" not in cond:
                raise KeyError("loss_space 'physical_unknown' needs cond['unknown'] (1 where the task generates "
                               "the entry); the domain's training data provides it")
            phys = phys * cond["unknown"].to(phys)
        return phys

    def project(self, x: Tensor, t: Tensor | None = None, cond: Any = None) -> Tensor:  # type: ignore[override]
        if cond is None or "known" not in cond:
            return x
        known, mask = cond["known"].to(x), cond["mask"].to(x)
        known_c = self.rep.encode(known)
        if t is not None and not bool((t <= 0).all()):
            known_c = self.process.perturb(known_c, t, self.base.noise_like(known_c, self.generator))
        phys = mask * self.rep.decode(known_c) + (1.0 - mask) * self.rep.decode(x)
        return self.rep.encode(phys)


__all__ = ["Conditioning", "LossSpace", "Representation", "Task", "broadcast_conditioning", "TrajectorySpace", "known_mask", "layout_shape", "pack", "training_cond", "unpack"]
