"""The Domain contract and the shared diffusion implementation of its four stages.

``ingest(cfg, run) -> DatasetRef``, ``train(cfg, data, run) -> CheckpointRef``,
``sample(cfg, ckpt, run) -> SamplesRef``, ``validate(cfg, samples, data, run) -> metrics``.

:class:`DiffusionDomain` implements ``train`` and ``sample`` once on top of ``core``; a domain supplies
its data preparation, state space, network, decoding to its native format, metrics and plots.
Nothing here knows about Prefect: the same calls run from a flow, a script or a GPU box.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from core.catalog import CatalogEntry, entry_checksum, get_entry, sha256_file, verify
from core.config import config_hash, load_config, to_yaml
from core.losses import DenoisingLoss
from core.parameterization import Denoiser
from core.processes import ForwardProcess, make_process
from core.provenance import RunDir, atomic_write_json
from core.samplers import EuclideanSpace, sample
from core.seeding import PerSampleGenerator, derive_seed
from core.training.checkpoint import load_checkpoint
from core.training.trainer import BatchFn, Trainer, tensor_batch_fn
from core.types import State, StateDict, cat_batch
from domains.config import DomainConfig
from domains.refs import CheckpointRef, DatasetRef, SamplesRef, check_ref

STAGES = ("ingest", "train", "sample", "validate")


class Domain(ABC):
    """One scientific domain: its config model, presets and the four pipeline stages."""

    name: str = ""
    config_cls: type[DomainConfig] = DomainConfig

    # ---- configuration -------------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        import importlib

        module = importlib.import_module(type(self).__module__)
        return Path(module.__file__).parent / "configs"  # type: ignore[arg-type]

    def presets(self) -> list[str]:
        return sorted(p.stem for p in self.config_dir.glob("*.yaml"))

    def load_config(self, preset: str = "smoke", overrides: Sequence[str] = ()) -> DomainConfig:
        from core.registry import UnknownNameError

        path = self.config_dir / f"{preset}.yaml"
        if not path.is_file():
            raise UnknownNameError(f"unknown preset {preset!r} for domain {self.name!r}; "
                                   f"valid choices: {', '.join(self.presets())}")
        return load_config(self.config_cls, path, overrides)

    def stage_hash(self, cfg: DomainConfig, stage: str) -> str:
        """Hash of the config sections a stage depends on (for caching)."""
        sections = {"ingest": ("dataset", "data"),
                    "train": ("dataset", "data", "seed", "process", "model", "network", "loss", "train"),
                    "sample": ("seed", "process", "model", "network", "sample"),
                    "validate": ("validate",)}[stage]
        return config_hash(cfg.section(*sections))

    def entry(self, cfg: DomainConfig) -> CatalogEntry:
        return get_entry(cfg.dataset)

    # ---- the four stages -------------------------------------------------------------------
    @abstractmethod
    def ingest(self, cfg: DomainConfig, run: RunDir) -> DatasetRef: ...

    @abstractmethod
    def train(self, cfg: DomainConfig, data: DatasetRef, run: RunDir) -> CheckpointRef: ...

    @abstractmethod
    def sample(self, cfg: DomainConfig, ckpt: CheckpointRef, run: RunDir) -> SamplesRef: ...

    @abstractmethod
    def validate(self, cfg: DomainConfig, samples: SamplesRef, data: DatasetRef, run: RunDir) -> dict[str, Any]: ...

    def score_external(self, cfg: DomainConfig, path: Path, out_dir: Path) -> dict[str, Any]:
        """Score a sample file made elsewhere (another model's output) with this domain's metrics.

        Domains that can read an outside sample format override this; it writes ``metrics.json`` into
        ``out_dir`` and returns the metrics."""
        raise NotImplementedError(f"domain {self.name!r} cannot score external sample files; validate a "
                                  "diffusci run directory instead (diffusci validate RUN_DIR)")

    def headline(self, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """The few metrics a summary table shows (default: all scalar ones)."""
        return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


class DiffusionDomain(Domain):
    """Shared ``ingest``/``train``/``sample`` on top of core; subclasses supply the science."""

    # ---- what a domain supplies ------------------------------------------------------------
    @abstractmethod
    def prepare(self, cfg: DomainConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        """Load (or generate) and preprocess the dataset into named tensors."""

    @abstractmethod
    def training_data(self, cfg: DomainConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        """``(x0, cond)`` with one row per training example."""

    @abstractmethod
    def build_network(self, cfg: DomainConfig) -> nn.Module:
        """The network ``net(x, t, cond)`` (its native output is ``cfg.model.prediction``)."""

    @abstractmethod
    def sample_shape(self, cfg: DomainConfig) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
        """Shape of one sample (without the batch dimension), or one per field."""

    @abstractmethod
    def write_samples(self, cfg: DomainConfig, x: State, run: RunDir) -> list[Path]:
        """Decode samples into the domain's native format under ``run.samples``."""

    @abstractmethod
    def evaluate(self, cfg: DomainConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: Mapping[str, Any]) -> dict[str, Any]:
        """Metrics (and plots under ``run.plots``) of samples against the data; ``info`` is the sample
        stage's record (sampler, NFE, checkpoint path)."""

    def state_space(self, cfg: DomainConfig) -> EuclideanSpace:
        return EuclideanSpace()

    def sample_cond(self, cfg: DomainConfig, data: dict[str, torch.Tensor] | None, indices: torch.Tensor) -> Any:
        """Conditioning for the samples ``indices`` (``None``: unconditional)."""
        return None

    # ---- shared machinery -------------------------------------------------------------------
    def process(self, cfg: DomainConfig) -> ForwardProcess:
        return make_process(cfg.process)

    def denoiser(self, cfg: DomainConfig) -> Denoiser:
        """The network wrapped as a denoiser; its initial weights follow the run seed."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(cfg.seed, "init"))
            net = self.build_network(cfg)
        return Denoiser(net, self.process(cfg), cfg.model.prediction, cfg.model.sigma_data, cfg.model.self_condition)

    def ingest(self, cfg: DomainConfig, run: RunDir) -> DatasetRef:
        entry = self.entry(cfg)
        if entry.files:
            verify(entry)  # checksum errors name the file and where to get it, before any work
        data = self.prepare(cfg, entry)
        path = run.path / "data" / "processed.safetensors"
        path.parent.mkdir(exist_ok=True)
        _atomic_save(data, path)
        info = {k: list(v.shape) for k, v in data.items()}
        return DatasetRef(self.name, cfg.dataset, str(path), sha256_file(path), entry_checksum(entry),
                          self.stage_hash(cfg, "ingest"), info)

    def load_data(self, ref: DatasetRef) -> dict[str, torch.Tensor]:
        return load_file(str(check_ref(ref)))

    def run_data(self, run: RunDir) -> dict[str, torch.Tensor]:
        """The dataset this run ingested (through its recorded ``DatasetRef`` in ``refs.json``).

        Conditional domains need it in the sample stage (the test conditioning); a re-sample folder
        ``RUN/resamples/<id>`` finds the record of its parent run.
        """
        for folder in (run.path, run.path.parent.parent):
            refs = folder / "refs.json"
            if refs.is_file() and "ingest" in (recorded := json.loads(refs.read_text())):
                return self.load_data(DatasetRef(**recorded["ingest"]))
        raise FileNotFoundError(f"no recorded ingest stage for {run.path}; run the pipeline from its ingest stage")

    def train_workdir(self, cfg: DomainConfig, data: DatasetRef, run: RunDir) -> Path:
        """Where training checkpoints live: keyed by (data, training config, code version), so rerunning
        the same command after a crash resumes from the last checkpoint. ``--force`` trains afresh."""
        from core.provenance import code_version

        key = config_hash({"data": data.sha256, "train": self.stage_hash(cfg, "train"), "code": code_version()})
        invocation = run.path / "invocation.json"
        if invocation.exists() and json.loads(invocation.read_text()).get("force"):
            key = f"{key[:16]}-{run.run_id}"
        return run.path.parent / "_train" / key[:32]

    def train_batches(self, cfg: DomainConfig, data: dict[str, torch.Tensor], batch_size: int) -> BatchFn:
        """``batch_fn(step, generator) → (x0, cond)`` for the trainer: minibatches of :meth:`training_data`
        (a domain that mixes several training sets, e.g. grids of several resolutions, overrides this)."""
        x0, cond = self.training_data(cfg, data)
        return tensor_batch_fn(x0, batch_size, cond)

    def training_model(self, cfg: DomainConfig) -> Any:
        """The module the trainer fits: the denoiser (a domain whose model is not a denoiser, e.g. an
        autoregressive network trained by likelihood, overrides this together with :meth:`training_loss`)."""
        return self.denoiser(cfg)

    def training_loss(self, cfg: DomainConfig, model: Any) -> Any:
        """``loss(model, x0, cond, generator) → [B]`` for the trainer: the core denoising loss (a domain
        with extra supervision on the denoised state, e.g. segmentation terms on a mask, overrides this)."""
        return DenoisingLoss(model.process, weighting=cfg.loss.weighting, time_sampler=cfg.loss.time_sampler,
                             space=self.state_space(cfg), self_condition_rate=cfg.loss.self_condition_rate)

    def train(self, cfg: DomainConfig, data: DatasetRef, run: RunDir) -> CheckpointRef:
        model = self.training_model(cfg)
        loss = self.training_loss(cfg, model)
        train_cfg = cfg.train.model_copy(update={"seed": derive_seed(cfg.seed, "train")})
        workdir = self.train_workdir(cfg, data, run)
        atomic_write_json(run.path / "train_workdir.json", {"path": str(workdir)})
        trainer = Trainer(model, loss, self.train_batches(cfg, self.load_data(data), train_cfg.batch_size), train_cfg,
                          checkpoint_dir=workdir, model_config=cfg.model_dump(mode="json", by_alias=True),
                          resume=True)
        result = trainer.fit()
        if not trainer.dist.is_main:
            return CheckpointRef(self.name, "", "", result.step, self.stage_hash(cfg, "train"))
        if result.checkpoint is None:
            raise RuntimeError("training wrote no checkpoint; set train.checkpoint_every <= train.steps")
        final = _link_tree(Path(result.checkpoint), run.checkpoints / Path(result.checkpoint).name)
        return CheckpointRef(self.name, str(final), sha256_file(final / "model.safetensors"), result.step,
                             self.stage_hash(cfg, "train"))

    def load_model(self, cfg: DomainConfig, ckpt: CheckpointRef) -> Denoiser:
        """The trained :meth:`training_model` (EMA weights when recorded and ``sample.use_ema``), in eval mode."""
        check_ref(ckpt, Path(ckpt.path) / "model.safetensors")
        model = self.training_model(cfg)
        if cfg.sample.use_ema and (Path(ckpt.path) / "ema.safetensors").exists():
            from core.training.ema import EMA

            ema = EMA(model, 0.0)
            load_checkpoint(ckpt.path, model, ema=ema)
            ema.copy_to(model)
        else:
            load_checkpoint(ckpt.path, model)
        return model.eval()

    def generate(self, cfg: DomainConfig, model: Denoiser, indices: Sequence[int],
                 data: dict[str, torch.Tensor] | None = None, progress: bool = True) -> tuple[State, int]:
        """Samples ``indices`` (sample k seeded by ``derive_seed(seed, "sample", k)``) and the NFE used."""
        process, space, sc = model.process, self.state_space(cfg), cfg.sample
        device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
        shape = self.sample_shape(cfg)
        chunks, nfe = [], 0
        idx = torch.as_tensor(list(indices))
        batches = [idx[i:i + sc.batch_size] for i in range(0, len(idx), sc.batch_size)]
        for b in tqdm(batches, desc=f"{self.name}: sampling", disable=not progress or len(batches) < 2):
            gen = PerSampleGenerator.for_samples(cfg.seed, b.tolist(), device)
            cond = self.sample_cond(cfg, data, b)
            if isinstance(shape, dict):
                like = StateDict({k: torch.empty((len(b), *s), device=device) for k, s in shape.items()})
            else:
                like = torch.empty((len(b), *shape), device=device)
            x_init = space.project(process.prior_like(like, gen), None, cond)
            res = sample(model, process, x_init, sampler=sc.sampler, steps=sc.steps, schedule=sc.schedule,
                         schedule_options=sc.schedule_options,
                         space=space, generator=gen, cond=cond, **sc.options)
            chunks.append(res.x)
            nfe = res.nfe
        return cat_batch(chunks), nfe

    def sample(self, cfg: DomainConfig, ckpt: CheckpointRef, run: RunDir) -> SamplesRef:
        model = self.load_model(cfg, ckpt)
        x, nfe = self.generate(cfg, model, range(cfg.sample.n))
        return self._write_sample_set(cfg, ckpt, run, x, nfe)

    def sample_shard(self, cfg: DomainConfig, ckpt: CheckpointRef, run: RunDir, start: int, stop: int) -> Path:
        """Samples ``start … stop-1`` into a shard file (per-sample seeds: shards merge to the same set)."""
        model = self.load_model(cfg, ckpt)
        x, nfe = self.generate(cfg, model, range(start, stop), progress=False)
        path = run.samples / "shards" / f"shard_{start:08d}_{stop:08d}.safetensors"
        path.parent.mkdir(exist_ok=True)
        tensors = dict(x) if isinstance(x, dict) else {"x": x}
        _atomic_save({**tensors, "__nfe__": torch.tensor(nfe)}, path)
        return path

    def merge_shards(self, cfg: DomainConfig, ckpt: CheckpointRef, run: RunDir, shards: Sequence[str]) -> SamplesRef:
        parts = [load_file(str(p)) for p in sorted(shards)]
        nfe = int(parts[0].pop("__nfe__"))
        for p in parts[1:]:
            p.pop("__nfe__")
        states: list[State] = [p["x"] if set(p) == {"x"} else StateDict(p) for p in parts]
        return self._write_sample_set(cfg, ckpt, run, cat_batch(states), nfe)

    def _write_sample_set(self, cfg: DomainConfig, ckpt: CheckpointRef, run: RunDir, x: State, nfe: int) -> SamplesRef:
        raw = run.samples / "samples.safetensors"
        _atomic_save(x if isinstance(x, dict) else {"x": x}, raw)
        files = [str(p) for p in self.write_samples(cfg, x, run)]
        return SamplesRef(self.name, str(raw), sha256_file(raw), cfg.sample.n, tuple(files),
                          {"nfe": nfe, "sampler": cfg.sample.sampler, "steps": cfg.sample.steps,
                           "checkpoint": ckpt.path, "checkpoint_sha256": ckpt.sha256})

    def load_samples(self, ref: SamplesRef) -> State:
        tensors = load_file(str(check_ref(ref)))
        return tensors["x"] if set(tensors) == {"x"} else StateDict(tensors)

    def validate(self, cfg: DomainConfig, samples: SamplesRef, data: DatasetRef, run: RunDir) -> dict[str, Any]:
        metrics = self.evaluate(cfg, self.load_samples(samples), self.load_data(data), run, samples.info)
        metrics = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
        atomic_write_json(run.path / "metrics.json", metrics)
        return metrics


def _link_tree(src: Path, dst: Path) -> Path:
    """Hard-link (or copy) a finished checkpoint folder into the run directory, atomically."""
    import os
    import shutil

    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.iterdir():
        try:
            os.link(f, tmp / f.name)
        except OSError:
            shutil.copy2(f, tmp / f.name)
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return dst


def _atomic_save(tensors: Mapping[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path)


def write_config(run: RunDir, cfg: DomainConfig) -> str:
    """Resolved config into the run (``config.yaml`` + hash); returns the hash."""
    run.write_config(cfg)
    return config_hash(cfg)


__all__ = ["STAGES", "DiffusionDomain", "Domain", "to_yaml", "write_config"]
