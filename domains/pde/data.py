"""Seeded Burgers data sets (WDNO distribution of initial conditions and forcings), cached as netCDF.

Sample ``k`` of split ``s`` draws its initial condition and forcing from its own generator seeded by
``derive_seed(seed, "data", s, k)``, so a sample never depends on the set size or the batch size.
A set is written once to ``<runs root>/_cache/pde/<hash>.nc`` (hash of every parameter that shapes it
and a format version) with an atomic rename, and read back from there afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor
from tqdm.auto import tqdm

from core.config import ConfigModel, config_hash
from core.seeding import derive_seed, make_generator
from domains.pde.solver import SolverConfig, check_stability, fine_size, interior_grid, simulate

FORMAT_VERSION = 1


class PDEData(ConfigModel):
    """Grid, set sizes and solver of the generated data (the 1x training grid is ``nt+1`` x ``nx``)."""

    nx: int = Field(23, ge=3, description="interior points of the 1x grid; nx+1 must be even")
    nt: int = Field(16, ge=2, description="frames after u0 on the 1x grid (even)")
    n_train: int = Field(256, ge=1)
    n_test: int = Field(32, ge=1)
    n_super: int = Field(8, ge=0, description="test samples at 2x and 4x resolution (0: none)")
    super_levels: list[int] = Field(default_factory=lambda: [1, 2], description="k for 2^k x grids")
    n_forcing_terms: int = Field(8, ge=1)
    solver: SolverConfig = Field(default_factory=SolverConfig)
    batch_size: int = Field(512, ge=1, description="trajectories integrated together")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where the solver integrates (float64): 'auto' the GPU when there is one, else the "
                            "CPU. The draws are made on the CPU either way, so the sets agree to round-off; the "
                            "cache key leaves the device out and the netCDF records it (attribute solver_device)")
    cache: bool = True


def level_grid(d: PDEData, level: int) -> tuple[int, int, SolverConfig]:
    """``(nx, nt, solver)`` of the ``2^level``-times finer grid that nests in the same fine solver grid."""
    s, f = d.solver, 2 ** level
    if s.refine_x % f or s.steps_per_frame % f:
        raise ValueError(f"level {level} needs data.solver.refine_x ({s.refine_x}) and steps_per_frame "
                         f"({s.steps_per_frame}) divisible by {f}")
    solver = s.model_copy(update={"refine_x": s.refine_x // f, "steps_per_frame": s.steps_per_frame // f})
    return f * (d.nx + 1) - 1, f * d.nt, solver


def draw_initial(n_fine: int, g: torch.Generator) -> Tensor:
    """Two Gaussians of opposite sign: ``a1 ~ U(0,2), mu1 ~ U(.2,.4); a2 ~ U(-2,0), mu2 ~ U(.6,.8)``."""
    r = torch.rand(6, generator=g, dtype=torch.float64)
    a1, mu1, s1 = 2 * r[0], 0.2 + 0.2 * r[1], 0.05 + 0.1 * r[2]
    a2, mu2, s2 = -2 * r[3], 0.6 + 0.2 * r[4], 0.05 + 0.1 * r[5]
    x = interior_grid(n_fine)
    return a1 * torch.exp(-(x - mu1) ** 2 / (2 * s1 ** 2)) + a2 * torch.exp(-(x - mu2) ** 2 / (2 * s2 ** 2))


def draw_forcing_params(n_terms: int, g: torch.Generator) -> Tensor:
    """Rows ``(A, m, s, c, r)``: ``A_1 ~ U(-1.5,1.5)``, ``A_k = B_k U(-1.5,1.5)``; ``m, c ~ U(0,1)``; ``s, r ~ U(.1,.4)``."""
    r = torch.rand(n_terms, 6, generator=g, dtype=torch.float64)
    amp = 3 * r[:, 0] - 1.5
    keep = (r[:, 1] < 0.5).to(amp.dtype)
    keep[0] = 1.0
    return torch.stack([amp * keep, r[:, 2], 0.1 + 0.3 * r[:, 3], r[:, 4], 0.1 + 0.3 * r[:, 5]], dim=1)


def forcing_field(params: Tensor, nt: int, nx: int) -> Tensor:
    """``f(tau, x) = sum_k A_k exp(-(x-m_k)^2/2s_k^2) 2 exp(-(tau-c_k)^2/2r_k^2)`` at frame midpoints ``[nt, nx]``."""
    x = interior_grid(nx)
    tau = (torch.arange(nt, dtype=torch.float64) + 0.5) / nt
    a, m, s, c, r = (params[:, i, None] for i in range(5))
    space = torch.exp(-(x[None] - m) ** 2 / (2 * s ** 2))  # [K, nx]
    time = 2 * torch.exp(-(tau[None] - c) ** 2 / (2 * r ** 2))  # [K, nt]
    return torch.einsum("k,kt,kx->tx", a[:, 0], time, space)


def solver_device(d: PDEData) -> torch.device:
    """The device ``data.device`` names (``auto``: CUDA when available)."""
    if d.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("data.device=cuda but torch sees no CUDA device here; set data.device=auto or cpu")
    return torch.device("cuda" if d.device == "cuda" or (d.device == "auto" and torch.cuda.is_available()) else "cpu")


def generate(d: PDEData, split: str, n: int, seed: int, level: int = 0, progress: bool = True) -> dict[str, Tensor]:
    """``u [n, nt+1, nx]``, ``f [n, nt, nx]`` (float64) and the per-sample ``seed`` [n] of one split."""
    nx, nt, solver = level_grid(d, level)
    check_stability(nx, nt, solver)  # refuse before any work
    dev = solver_device(d)
    n_fine = fine_size(nx, solver.refine_x)
    us, fs, seeds = [], [], [derive_seed(seed, "data", split, k) for k in range(n)]
    batches = [range(i, min(i + d.batch_size, n)) for i in range(0, n, d.batch_size)]
    for b in tqdm(batches, desc=f"pde: solving {split} ({n} x {nt + 1}x{nx})", disable=not progress):
        u0, f = [], []
        for k in b:
            g = make_generator(seeds[k])
            u0.append(draw_initial(n_fine, g))
            f.append(forcing_field(draw_forcing_params(d.n_forcing_terms, g), nt, nx))
        ff = torch.stack(f)
        us.append(simulate(torch.stack(u0).to(dev), ff.to(dev), nt, solver, seeds=[seeds[k] for k in b]).cpu())
        fs.append(ff)
    return {"u": torch.cat(us), "f": torch.cat(fs), "seed": torch.tensor(seeds, dtype=torch.int64)}


def set_key(d: PDEData, split: str, n: int, seed: int, level: int) -> str:
    spec = d.model_dump(mode="json", exclude={"n_train", "n_test", "n_super", "super_levels", "batch_size", "cache",
                                              "device"})
    return config_hash({"v": FORMAT_VERSION, "data": spec, "split": split, "n": n, "seed": seed, "level": level})[:24]


def to_dataset(arrays: dict[str, Tensor], d: PDEData, split: str, seed: int, level: int) -> Any:
    """An ``xarray.Dataset`` with dims ``(sample, t, x)`` / ``(sample, t_f, x)``, coordinates and attributes."""
    import xarray as xr

    nx, nt, solver = level_grid(d, level)
    t = torch.linspace(0, solver.horizon, nt + 1).numpy()
    return xr.Dataset(
        {"u": (("sample", "t", "x"), arrays["u"].numpy(), {"long_name": "velocity u(t, x)"}),
         "f": (("sample", "t_f", "x"), arrays["f"].numpy(),
               {"long_name": "forcing, constant over [t_f, t_f + dt_frame)"}),
         "seed": (("sample",), arrays["seed"].numpy(), {"long_name": "derive_seed(seed, 'data', split, k)"})},
        coords={"t": t, "t_f": t[:-1], "x": interior_grid(nx).numpy(), "sample": range(arrays["u"].shape[0])},
        attrs={"title": "forced viscous Burgers (WDNO set-up), diffusci pde domain", "split": split,
               "seed": seed, "level": level, "nu": solver.nu, "horizon": solver.horizon,
               "boundary": "homogeneous Dirichlet", "scheme": "forward Euler, central differences",
               "solver_device": str(solver_device(d)), "config": json.dumps(d.model_dump(mode="json"))})


def load_or_generate(d: PDEData, split: str, n: int, seed: int, cache_dir: Path | None,
                     level: int = 0) -> dict[str, Tensor]:
    """A split from the netCDF cache, or generated (and cached) when missing."""
    import xarray as xr

    path = None if cache_dir is None or not d.cache else cache_dir / f"{set_key(d, split, n, seed, level)}.nc"
    if path is not None and path.exists():
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            return {k: torch.from_numpy(ds[k].values.copy()) for k in ("u", "f", "seed")}
    arrays = generate(d, split, n, seed, level)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{id(arrays)}.tmp")
        to_dataset(arrays, d, split, seed, level).to_netcdf(tmp, engine="h5netcdf")
        tmp.replace(path)
    return arrays


def coarsen(u: Tensor, f: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The same trajectories on the ``2^k``-times coarser grid that nests in theirs.

    ``u`` keeps every ``2^k``-th frame and the points ``x = j 2^k / (nx+1)``; ``f`` (constant per
    frame) is averaged over the ``2^k`` frames each coarse frame covers, at the same points.
    """
    s = 2 ** k
    nt, nx = f.shape[-2:]
    if nt % (2 * s) or (nx + 1) % (2 * s):
        raise ValueError(f"grid nt={nt}, nx={nx} cannot be coarsened {s}x with an even layout; need nt and nx+1 "
                         f"divisible by {2 * s} (drop k={k} from network.multires_coarse)")
    fc = f.reshape(*f.shape[:-2], nt // s, s, nx).mean(dim=-2)
    return u[..., ::s, s - 1::s], fc[..., s - 1::s]


def physical_scales(u: Tensor, f: Tensor) -> Tensor:
    """RMS of u and f (per field), used to normalise the state."""
    return torch.stack([u.pow(2).mean().sqrt(), f.pow(2).mean().sqrt()]).clamp_min(1e-6)



__all__ = ["PDEData", "coarsen", "draw_forcing_params", "draw_initial", "forcing_field", "generate", "level_grid",
           "load_or_generate", "physical_scales", "set_key", "solver_device", "to_dataset"]
