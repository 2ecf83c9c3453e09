"""``pde``: forced 1-D viscous Burgers with a Wavelet Diffusion Neural Operator (WDNO, Hu et al. ICLR 2025).

Data come from this package's batched solver (``solver.py``) with WDNO's distribution of initial
conditions and forcings, generated per sample from seeds and cached as netCDF (``data.py``; catalog
entry ``burgers1d_wdno_generated``). A trajectory ``(u, f)`` is laid out as one physical array and
diffused in its 2-D wavelet representation (``wavelet.py``, ``state.py``) by the core's 2-D U-Net,
conditioned on the known values (``u0`` and ``f`` for simulation) by network channels *and*
replacement conditioning in physical space. Validation compares the sampled ``u`` with the solver's
(MSE over ``t > 0``) against an FNO and the same diffusion model in physical space, trained in the
same run with the same budget, at 1x and on finer test grids (``evaluate.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.catalog import CatalogEntry
from core.networks import UNet
from core.provenance import RunDir, runs_root
from core.seeding import derive_seed
from core.types import State
from domains.base import DiffusionDomain
from domains.pde import evaluate as ev
from domains.pde.config import PDEConfig
from domains.pde.data import coarsen, load_or_generate, physical_scales
from domains.pde.sampling import condition, generate
from domains.pde.state import (
    Representation,
    TrajectorySpace,
    known_mask,
    layout_shape,
    pack,
    training_cond,
    unpack,
)
from domains.refs import CheckpointRef, DatasetRef, SamplesRef


class PDEDomain(DiffusionDomain):
    name = "pde"
    config_cls = PDEConfig

    def __init__(self) -> None:
        self._cache_dir: Path | None = None
        self._band_scales: torch.Tensor | None = None

    # ---- data ---------------------------------------------------------------------------
    def ingest(self, cfg: PDEConfig, run: RunDir) -> DatasetRef:  # type: ignore[override]
        self._cache_dir = run.path.parent.parent / "_cache" / "pde"  # <runs root>/_cache/pde
        return super().ingest(cfg, run)

    def prepare(self, cfg: PDEConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:  # type: ignore[override]
        d, cache = cfg.data, self._cache_dir or runs_root() / "_cache" / "pde"
        seed = derive_seed(cfg.seed, "data")
        layout_shape(d.nt, d.nx)  # refuse a bad grid before solving anything
        train = load_or_generate(d, "train", d.n_train, seed, cache)
        test = load_or_generate(d, "test", d.n_test, seed, cache)
        scales = physical_scales(train["u"], train["f"])
        out = {"u_train": train["u"].float(), "f_train": train["f"].float(), "u_test": test["u"].float(),
               "f_test": test["f"].float(), "seed_test": test["seed"], "scales": scales.float()}
        raw = Representation("wavelet", layout_shape(d.nt, d.nx), cfg.network.wavelet, tol=cfg.network.wavelet_tol)
        bands = raw.transform(pack(train["u"], train["f"], scales))
        out["band_scales"] = bands.pow(2).mean(dim=(0, 2, 3)).sqrt().clamp_min(1e-3).float()
        if "sr" in cfg.validate_.coarse_to_fine:  # finer training sets for the super-resolution pairs
            for k in (k for k in cfg.validate_.sr_train_levels if k > 0):
                fine = load_or_generate(d, "train", cfg.validate_.sr_n_train or d.n_train, seed, cache, level=k)
                out[f"u_train_l{k}"], out[f"f_train_l{k}"] = fine["u"].float(), fine["f"].float()
        if cfg.validate_.super_resolution and d.n_super:
            for k in d.super_levels:
                sup = load_or_generate(d, "test", min(d.n_super, d.n_test), seed, cache, level=k)
                out[f"u_test_l{k}"], out[f"f_test_l{k}"] = sup["u"].float(), sup["f"].float()
        return out

    def representation(self, cfg: PDEConfig, data: dict[str, torch.Tensor], nt: int | None = None,
                       nx: int | None = None) -> Representation:
        bands = data["band_scales"]
        if cfg.network.band_scaling == "global":
            bands = bands.pow(2).mean().sqrt().expand(bands.shape[0]).clone()
        elif cfg.network.band_scaling == "approx":
            bands = bands[[0, 4]].repeat_interleave(4)
        self._band_scales = bands
        shape = layout_shape(nt or cfg.data.nt, nx or cfg.data.nx)
        return Representation(cfg.network.representation, shape, cfg.network.wavelet, bands, cfg.network.wavelet_tol)

    def training_data(self, cfg: PDEConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:  # type: ignore[override]
        return self._training_grid(cfg, data, data["u_train"], data["f_train"])

    def _training_grid(self, cfg: PDEConfig, data: dict[str, torch.Tensor], u: torch.Tensor,
                       f: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        nt, nx = f.shape[-2:]
        rep = self.representation(cfg, data, nt, nx)
        full = pack(u, f, data["scales"])
        tasks = cfg.network.tasks
        mask = torch.cat([known_mask(tasks[i % len(tasks)], nt, nx) for i in range(full.shape[0])])
        channels = rep.cond_channels(full * mask, mask, cfg.network.conditioning)
        return rep.encode(full), training_cond(channels, mask, cfg.network.loss_space)

    def training_grids(self, cfg: PDEConfig, data: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, Any]]:
        """The training set on the 1x grid and, for multi-resolution training, on the coarser grids."""
        grids = [self.training_data(cfg, data)]
        for k in cfg.network.multires_coarse:
            grids.append(self._training_grid(cfg, data, *coarsen(data["u_train"], data["f_train"], k)))
        self.representation(cfg, data)  # the 1x representation stays the run's state
        return grids

    def train_batches(self, cfg: PDEConfig, data: dict[str, torch.Tensor], batch_size: int) -> Any:  # type: ignore[override]
        """With multi-resolution training, each batch is drawn from one grid, chosen at random."""
        if not cfg.network.multires_coarse:
            return super().train_batches(cfg, data, batch_size)
        from core.training.trainer import choice_batch_fn, tensor_batch_fn

        return choice_batch_fn([tensor_batch_fn(x0, batch_size, cond) for x0, cond in self.training_grids(cfg, data)])

    # ---- model ---------------------------------------------------------------------------
    def build_network(self, cfg: PDEConfig) -> nn.Module:  # type: ignore[override]
        n = cfg.network
        ch = 8 if n.representation == "wavelet" else 2
        sc = ch if cfg.model.self_condition else 0  # the earlier x0 estimate as extra input channels
        net = UNet(2, ch, ch, base_channels=n.base_channels, channel_mults=n.channel_mults,
                   num_res_blocks=n.num_res_blocks, attention_levels=n.attention_levels,
                   cond_channels=4 * (ch // 2) + sc, norm_groups=n.norm_groups)
        if not sc:
            return net
        from core.networks.self_condition import ChannelSelfCondition

        return ChannelSelfCondition(net, 4 * (ch // 2))

    def sample_shape(self, cfg: PDEConfig) -> tuple[int, ...]:  # type: ignore[override]
        return Representation(cfg.network.representation, layout_shape(cfg.data.nt, cfg.data.nx),
                              cfg.network.wavelet).state_shape()

    def state_space(self, cfg: PDEConfig) -> TrajectorySpace:  # type: ignore[override]
        rep = Representation(cfg.network.representation, layout_shape(cfg.data.nt, cfg.data.nx),
                             cfg.network.wavelet, self._band_scales)
        return TrajectorySpace(self.process(cfg), rep, loss_space=cfg.network.loss_space)

    # ---- sampling ----------------------------------------------------------------------------
    def _generate(self, cfg: PDEConfig, ckpt: CheckpointRef, run: RunDir, start: int, stop: int,
                  progress: bool) -> tuple[torch.Tensor, int]:
        data = self.run_data(run)
        n_test = data["u_test"].shape[0]
        if stop > n_test:
            raise ValueError(f"sample.n = {stop} exceeds the {n_test} test trajectories; set sample.n <= data.n_test")
        rep = self.representation(cfg, data)
        rows = slice(start, stop)
        cond = condition(rep, data["u_test"][rows], data["f_test"][rows], data["scales"], "simulation",
                         cfg.network.conditioning)
        return generate(self.load_model(cfg, ckpt), rep, cond, range(start, stop), cfg.seed, cfg.sample,
                        progress=progress)

    def sample(self, cfg: PDEConfig, ckpt: CheckpointRef, run: RunDir) -> SamplesRef:  # type: ignore[override]
        x, nfe = self._generate(cfg, ckpt, run, 0, cfg.sample.n, progress=True)
        return self._write_sample_set(cfg, ckpt, run, x, nfe)

    def sample_shard(self, cfg: PDEConfig, ckpt: CheckpointRef, run: RunDir, start: int, stop: int) -> Path:  # type: ignore[override]
        from domains.base import _atomic_save

        x, nfe = self._generate(cfg, ckpt, run, start, stop, progress=False)
        path = run.samples / "shards" / f"shard_{start:08d}_{stop:08d}.safetensors"
        path.parent.mkdir(exist_ok=True)
        _atomic_save({"x": x, "__nfe__": torch.tensor(nfe)}, path)
        return path

    def decode(self, cfg: PDEConfig, x: torch.Tensor, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples (diffusion states) -> ``(u [B, nt+1, nx], f [B, nt, nx])`` in physical units."""
        return unpack(self.representation(cfg, data).decode(x), data["scales"])

    def write_samples(self, cfg: PDEConfig, x: State, run: RunDir) -> list[Path]:  # type: ignore[override]
        assert isinstance(x, torch.Tensor)
        data = self.run_data(run)
        u, f = self.decode(cfg, x, data)
        path = run.samples / "trajectories.nc"
        ev.write_trajectories(path, u, f, data["seed_test"][: u.shape[0]], cfg)
        return [path]

    # ---- validation ------------------------------------------------------------------------
    def evaluate(self, cfg: PDEConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,  # type: ignore[override]
                 info: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(x, torch.Tensor)
        ckpt = CheckpointRef(self.name, info["checkpoint"], info["checkpoint_sha256"], 0, "")
        return ev.evaluate(self, cfg, x, data, run, info, ckpt)

    def headline(self, metrics: Any) -> dict[str, Any]:
        keys = ("mse_wdno", "mse_fno", "mse_physical_diffusion", "mse_wdno_2x", "mse_wdno_sr_2x", "mse_wdno_sr_4x", "mse_fno_4x",
                "J_wdno", "J_solver_adam", "nfe")
        return {k: metrics[k] for k in keys if isinstance(metrics.get(k), int | float)}



__all__ = ["PDEDomain"]
