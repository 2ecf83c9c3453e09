"""``weather``: probabilistic radar nowcasting with a conditional diffusion model (after CogDPM).

Data: the FMI radar event (catalog ``fmi_radar_20160928``) decoded to rain rate, block-averaged,
log-transformed and standardised; windows of ``n_past`` frames -> ``n_future`` frames split by time.
Model: core's 2-D U-Net with the past frames as conditioning channels and the future frames as the
state (EDM preconditioning); trained with conditioning dropout so that it also knows the
unconditional forecast, which the CogDPM precision-weighted guidance needs. An ensemble of
``ensemble.members`` samples per case, sample ``k`` seeded by ``derive_seed(seed, "sample", k)``
(case ``k // members``, member ``k % members``). Validation scores it against persistence, pysteps
Lucas-Kanade extrapolation and the STEPS ensemble in the same run (see ``evaluate.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from core.catalog import CatalogEntry, data_root, entry_checksum, sha256_file, verify
from core.networks import UNet
from core.provenance import RunDir
from core.seeding import derive_seed, make_generator
from core.types import State
from domains.base import DiffusionDomain
from domains.refs import CheckpointRef, DatasetRef, SamplesRef
from domains.weather import evaluate, output
from domains.weather.config import WeatherConfig
from domains.weather.guidance import PrecisionGuidedDenoiser


class WeatherDomain(DiffusionDomain):
    name = "weather"
    config_cls = WeatherConfig

    # ---- data ------------------------------------------------------------------------------
    def event(self, cfg: WeatherConfig, entry: CatalogEntry):
        from domains.weather.data import load_event

        folder = data_root() / entry.path
        if not folder.is_dir():
            raise FileNotFoundError(f"radar event folder {folder} not found; set DIFFUSCI_DATA to the shared data "
                                    f"root or run `diffusci catalog fetch {entry.name}`")
        return load_event(folder, cfg.data.downsample)

    def windows(self, cfg: WeatherConfig, entry: CatalogEntry) -> tuple[Any, dict[str, torch.Tensor]]:
        """The source as xarray and its windows: radar event (folder of PGM) or ERA5 t2m (GRIB or netCDF)."""
        expected = {"radar": ("pgm",), "era5": ("grib", "netcdf")}[cfg.data.source]
        if entry.format not in expected:
            raise ValueError(f"data.source={cfg.data.source} needs a {' or '.join(expected)} dataset; catalog entry "
                             f"{entry.name!r} is {entry.format} (radar: fmi_radar_20160928, era5: era5_t2m_uk_grib "
                             "or era5_t2m_uk)")
        if cfg.data.source == "era5":
            from domains.weather import era5

            ds = era5.load_t2m(data_root() / entry.path)
            return ds, era5.make_windows(ds, cfg.data)
        from domains.weather.patches import make_windows

        ds = self.event(cfg, entry)
        return ds, make_windows(ds, cfg.data, derive_seed(cfg.seed, "data"))

    def prepare(self, cfg: WeatherConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        return self.windows(cfg, entry)[1]

    def ingest(self, cfg: WeatherConfig, run: RunDir) -> DatasetRef:
        """Processed windows (safetensors) plus the processed source as CF netCDF with its statistics."""
        entry = self.entry(cfg)
        verify(entry)
        ds, data = self.windows(cfg, entry)
        folder = run.path / "data"
        folder.mkdir(exist_ok=True)
        mean, std, offset = (float(v) for v in data["stats"])
        transform = ("y = (log10(R + {offset:g}) - mean) / std" if cfg.data.source == "radar"
                     else "y = (t2m - mean) / std").format(offset=offset)
        ds.attrs.update(norm_transform=transform, norm_mean=mean, norm_std=std, norm_log_offset=offset,
                        norm_source="training block only")
        output.write_netcdf(ds, folder / f"{cfg.data.source}.nc")
        path = folder / "processed.safetensors"
        tmp = path.with_name(".processed.safetensors.tmp")
        save_file({k: v.contiguous() for k, v in data.items()}, str(tmp))
        tmp.replace(path)
        info = {k: list(v.shape) for k, v in data.items()}
        return DatasetRef(self.name, cfg.dataset, str(path), sha256_file(path), entry_checksum(entry),
                          self.stage_hash(cfg, "ingest"), info)

    def training_data(self, cfg: WeatherConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        """Rows ``(future, {channels: past})`` plus a ``p_uncond`` share of copies with dropped conditioning."""
        x0, past = data["train_future"], data["train_past"]
        if cfg.data.target == "residual":
            x0 = x0 - past[:, -1:]
        n_drop = round(cfg.data.p_uncond * x0.shape[0])
        idx = torch.randperm(x0.shape[0], generator=make_generator(derive_seed(cfg.seed, "uncond")))[:n_drop]
        drop = torch.cat([torch.zeros(x0.shape[0], dtype=torch.bool), torch.ones(n_drop, dtype=torch.bool)])
        return torch.cat([x0, x0[idx]]), {"channels": torch.cat([past, past[idx]]), "drop": drop}

    # ---- model -----------------------------------------------------------------------------
    def build_network(self, cfg: WeatherConfig) -> nn.Module:
        n, d = cfg.network, cfg.data
        return UNet(2, d.n_future, d.n_future, base_channels=n.base_channels, channel_mults=n.channel_mults,
                    num_res_blocks=n.num_res_blocks, attention_levels=n.attention_levels, dropout=n.dropout,
                    cond_channels=d.n_past, norm_groups=n.norm_groups)

    def sample_shape(self, cfg: WeatherConfig) -> tuple[int, ...]:
        grid = tuple(cfg.data.era5_grid) if cfg.data.source == "era5" else (cfg.data.patch, cfg.data.patch)
        return (cfg.data.n_future, *grid)

    def load_model(self, cfg: WeatherConfig, ckpt: CheckpointRef) -> nn.Module:  # type: ignore[override]
        e = cfg.ensemble
        return PrecisionGuidedDenoiser(super().load_model(cfg, ckpt), e.guidance, e.scale, e.precision_window,
                                       e.precision_eps, e.precision_max_weight).eval()

    def sample_cond(self, cfg: WeatherConfig, data: dict[str, torch.Tensor] | None, indices: torch.Tensor) -> Any:
        if data is None:
            raise RuntimeError("weather sampling is conditional: it needs the ingested test windows")
        return {"channels": data["test_past"][indices // cfg.ensemble.members]}

    # ---- sampling: the sample stage reads the test windows recorded by the ingest stage ---------------
    def total(self, cfg: WeatherConfig, data: Mapping[str, torch.Tensor]) -> int:
        return int(data["test_past"].shape[0]) * cfg.ensemble.members

    def sample(self, cfg: WeatherConfig, ckpt: CheckpointRef, run: RunDir) -> SamplesRef:
        data = self.run_data(run)
        n = self.total(cfg, data)
        cfg = cfg.model_copy(update={"sample": cfg.sample.model_copy(update={"n": n})})
        x, nfe = self.generate(cfg, self.load_model(cfg, ckpt), range(n), data)
        return self._write_sample_set(cfg, ckpt, run, x, nfe)

    def shard_range(self, cfg: WeatherConfig, data: Mapping[str, torch.Tensor], start: int, stop: int) -> range:
        """The samples of one shard. The pipeline splits ``[0, sample.n)`` into ``sample.shards`` parts
        before the test windows are known; for weather ``sample.n`` only counts those parts (the sample
        set is always every test case x member), so each bound maps proportionally onto the set."""
        n, total = cfg.sample.n, self.total(cfg, data)
        if not 0 <= start < stop <= n:
            raise ValueError(f"shard bounds [{start}, {stop}) must lie in [0, sample.n={n})")
        return range(round(start * total / n), round(stop * total / n))

    def sample_shard(self, cfg: WeatherConfig, ckpt: CheckpointRef, run: RunDir, start: int, stop: int) -> Path:
        """One part of the ensemble (per-sample seeds: the merged shards equal the unsharded set)."""
        from domains.base import _atomic_save

        data = self.run_data(run)
        rows = self.shard_range(cfg, data, start, stop)
        x, nfe = self.generate(cfg, self.load_model(cfg, ckpt), rows, data, progress=False)
        path = run.samples / "shards" / f"shard_{rows.start:08d}_{rows.stop:08d}.safetensors"
        path.parent.mkdir(exist_ok=True)
        _atomic_save({"x": x, "__nfe__": torch.tensor(nfe)}, path)
        return path

    def merge_shards(self, cfg: WeatherConfig, ckpt: CheckpointRef, run: RunDir, shards: Sequence[str]) -> SamplesRef:
        n = self.total(cfg, self.run_data(run))
        ref = super().merge_shards(cfg.model_copy(update={"sample": cfg.sample.model_copy(update={"n": n})}),
                                   ckpt, run, shards)
        if self.load_samples(ref).shape[0] != n:
            raise RuntimeError(f"merged shards hold {self.load_samples(ref).shape[0]} samples, expected {n}; "
                               "a shard is missing or duplicated")
        return ref

    def write_samples(self, cfg: WeatherConfig, x: State, run: RunDir) -> list[Path]:
        assert isinstance(x, torch.Tensor)
        data = self.run_data(run)
        return [output.write_forecast(x, data, cfg, run.samples / "forecast.nc")]

    # ---- validation -------------------------------------------------------------------------
    def evaluate(self, cfg: WeatherConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: Mapping[str, Any]) -> dict[str, Any]:
        assert isinstance(x, torch.Tensor)
        ablations: dict[str, torch.Tensor] = {}
        if cfg.validate_.ablation and cfg.ensemble.guidance != "none":
            # same checkpoint, seeds and guidance scale; only the guidance weighting differs
            modes = {"model_plain": "none", "model_cfg": "cfg"} if cfg.ensemble.guidance == "precision" else \
                {"model_plain": "none"}
            ckpt = CheckpointRef(self.name, info["checkpoint"], info["checkpoint_sha256"], 0, "")
            for name, mode in modes.items():
                alt = cfg.model_copy(update={"ensemble": cfg.ensemble.model_copy(update={"guidance": mode})})
                ablations[name], _ = self.generate(alt, self.load_model(alt, ckpt), range(self.total(cfg, data)),
                                                   data, progress=False)
        return evaluate.evaluate(cfg, x, data, run, info, ablations)

    def headline(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("crps_model", "crps_persistence", "crps_steps", "crps_climatology", "spread_skill_model", "csi_1_model",
                "fss_model")
        return {k: metrics[k] for k in keys if k in metrics}
