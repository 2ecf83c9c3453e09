"""The training loop: AdamW, warm-up + cosine LR, clipping, accumulation, EMA, checkpoints, DDP.

Randomness is explicit and derived per step from the run seed, so a run interrupted at step ``k`` and
resumed from its checkpoint continues exactly as if it had never stopped:

* the global batch of step ``s`` comes from ``batch_fn(s, Generator(derive_seed(seed, "batch", s)))``
  (the same on every rank; each rank keeps its slice, then splits it into ``grad_accum`` micro-batches);
* the loss of micro-batch ``m`` gets ``Generator(derive_seed(seed, "loss", s, rank, m))``, or with
  ``loss_generator="per_sample"`` one generator per global sample index, so its noise does not depend
  on the number of ranks or micro-batches (DDP then matches a single process up to float rounding);
* the global torch RNG (dropout) is seeded from the run seed at a fresh start and saved per rank in
  every checkpoint.

Step numbering: ``step`` is the 0-based index of an update (what ``batch_fn``, error messages, the
loss history and the callback see); a checkpoint ``step_000100`` holds the state after 100 updates.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.config import ConfigModel
from core.seeding import Generator, PerSampleGenerator, derive_seed, make_generator
from core.training.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    load_rng_state,
    resolve_checkpoint,
    save_checkpoint,
    step_dir_name,
)
from core.training.distributed import (
    ModelProxy,
    all_gather_objects,
    all_reduce_mean,
    barrier,
    init_distributed,
    rank_slice,
    resolve_device,
    slice_rows,
    wrap_model,
)
from core.training.ema import EMA
from core.training.lr import make_lr_scheduler
from core.types import State, as_state, check_finite, index_batch, leaves

BatchFn = Callable[[int, torch.Generator], tuple[Any, Any]]
LossFn = Callable[[Any, State, Any, Generator], Tensor]
Callback = Callable[[int, dict[str, float]], None]


class TrainConfig(ConfigModel):
    """Optimisation settings of one run (unknown keys are errors)."""

    steps: int = Field(1000, ge=0, description="optimizer updates in total")
    batch_size: int = Field(64, ge=1, description="global batch per update (all ranks, all micro-batches)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="AdamW decay of >=2-D weights (not biases/norms)")
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(0, ge=0)
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    schedule_steps: int | None = Field(None, ge=1, description="LR schedule length (default: steps)")
    grad_clip: float | None = Field(1.0, gt=0)
    grad_accum: int = Field(1, ge=1)
    ema_decay: float | None = Field(0.999, ge=0, lt=1)
    ema_warmup: bool = True
    checkpoint_every: int = Field(1000, ge=1)
    keep_last: int | None = Field(3, ge=1)
    log_every: int = Field(50, ge=1)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    loss_generator: Literal["batch", "per_sample"] = "batch"

    @model_validator(mode="after")
    def _check_accum(self) -> TrainConfig:
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by grad_accum {self.grad_accum}")
        return self


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    step: int
    loss: float | None
    history: list[tuple[int, float]] = field(default_factory=list)
    wall_time: float = 0.0
    checkpoint: Path | None = None


def tensor_batch_fn(data: Tensor | Mapping[str, Tensor], batch_size: int,
                    cond: Mapping[str, Any] | None = None) -> BatchFn:
    """A ``batch_fn`` drawing ``batch_size`` rows (uniformly, with replacement) from ``data``.

    ``cond`` entries that are tensors with the same number of rows are indexed alongside; other
    entries are passed through unchanged.
    """
    state = as_state(data)
    n = leaves(state)[0].shape[0]

    def batch_fn(step: int, generator: torch.Generator) -> tuple[State, Any]:
        idx = torch.randint(n, (batch_size,), generator=generator, device=generator.device)
        idx = idx.to(leaves(state)[0].device)
        c = None if cond is None else {k: _take(v, idx, n) for k, v in cond.items()}
        return index_batch(state, idx), c

    return batch_fn


def choice_batch_fn(batch_fns: Sequence[BatchFn]) -> BatchFn:
    """A ``batch_fn`` that draws, every step, one of ``batch_fns`` uniformly (from the step's generator) and
    returns its batch: one source per batch, e.g. one grid per batch in multi-resolution training."""
    fns = list(batch_fns)
    if not fns:
        raise ValueError("choice_batch_fn needs at least one batch_fn")

    def batch_fn(step: int, generator: torch.Generator) -> tuple[State, Any]:
        return fns[int(torch.randint(len(fns), (1,), generator=generator))](step, generator)

    return batch_fn


def _take(v: Any, idx: Tensor, n: int) -> Any:
    return v[idx] if isinstance(v, Tensor) and v.ndim and v.shape[0] == n else v


def _to_device(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return type(x)({k: _to_device(v, device) for k, v in x.items()})
    return x


class Trainer:
    """Train ``model`` on ``loss_fn`` with batches from ``data`` (a ``batch_fn`` or an iterable of
    global batches ``(x0, cond)``). Checkpoints go to ``checkpoint_dir`` (none when ``None``);
    ``resume=True`` continues from its latest checkpoint when there is one."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: BatchFn | Iterable[Any],
                 config: TrainConfig | Mapping[str, Any] | None = None, *,
                 checkpoint_dir: str | Path | None = None, model_config: Mapping[str, Any] | None = None,
                 callback: Callback | None = None, resume: bool = False, progress: bool = True) -> None:
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.model_validate(dict(config or {}))
        self.config = cfg
        self.dist = init_distributed(cfg.device)
        self.device = resolve_device(cfg.device, self.dist)
        if cfg.batch_size % (cfg.grad_accum * self.dist.world_size):
            raise ValueError(f"batch_size {cfg.batch_size} does not split into grad_accum {cfg.grad_accum}"
                             f" x {self.dist.world_size} ranks")
        self.module = model.to(self.device)
        self.model = wrap_model(self.module, self.dist, self.device, cfg.compile)
        self.loss_fn, self.callback, self.progress, self.resume = loss_fn, callback, progress, resume
        self.data = data
        self._iterator: Any = None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.model_config = dict(model_config or {})
        self.optimizer = _make_optimizer(self.module, cfg)
        self.scheduler = make_lr_scheduler(
            self.optimizer, warmup_steps=cfg.warmup_steps, total_steps=cfg.schedule_steps or cfg.steps,
            schedule=cfg.lr_schedule, min_lr_ratio=cfg.min_lr_ratio)
        self.ema = EMA(self.module, cfg.ema_decay, cfg.ema_warmup) if cfg.ema_decay is not None else None
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and self.device.type == "cuda")
        self.amp_dtype = torch.bfloat16 if bf16 else None
        self.step = 0
        self._last: tuple[float | None, Path | None] = (None, None)
        # training seconds before this fit (restored from a resumed checkpoint) and this fit's start
        self._seconds_before, self._fit_t0 = 0.0, time.perf_counter()

    # ------------------------------------------------------------------------------------ loop
    def fit(self, resume_from: str | Path | None = None) -> TrainResult:
        """Train until ``config.steps`` updates are done; returns a :class:`TrainResult`."""
        cfg, t0 = self.config, time.perf_counter()
        self.step = self._restore(resume_from)
        self._fit_t0 = time.perf_counter()
        self.module.train()
        history: list[tuple[int, float]] = []
        loss, ckpt = self._last
        window: list[float] = []
        t_window = time.perf_counter()
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not (self.progress and self.dist.is_main))
        try:
            for step in range(self.step, cfg.steps):
                metrics = self._train_step(step)
                loss, self.step = metrics["loss"], step + 1
                window.append(loss)
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    metrics.update(loss=sum(window) / len(window), samples_per_s=len(window) * cfg.batch_size
                                   / max(time.perf_counter() - t_window, 1e-9))
                    history.append((step, metrics["loss"]))
                    self._report(step, metrics, bar)
                    window, t_window = [], time.perf_counter()
                if self.checkpoint_dir is not None and (self.step % cfg.checkpoint_every == 0
                                                        or self.step == cfg.steps):
                    ckpt = self._save(loss)
        finally:
            bar.close()
        self._last = (loss, ckpt)
        return TrainResult(self.step, loss, history, time.perf_counter() - t0, ckpt)

    def _train_step(self, step: int) -> dict[str, float]:
        """One update: global batch → this rank's slice → micro-batches → checks → AdamW step."""
        cfg = self.config
        x0, cond = self._global_batch(step)
        check_finite(x0, f"step {step}: batch x0")
        n, accum = cfg.batch_size, cfg.grad_accum
        mine = rank_slice(n, self.dist)
        per = (mine.stop - mine.start) // accum
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for m in range(accum):
            rows = slice(mine.start + m * per, mine.start + (m + 1) * per)
            xb = _to_device(slice_rows(x0, rows, n), self.device)
            cb = _to_device(slice_rows(cond, rows, n), self.device)
            with self._no_sync(last=m == accum - 1):
                with self._autocast():
                    per_sample = self.loss_fn(self.model, xb, cb, self._loss_generator(step, m, rows))
                if per_sample.shape != (per,):
                    raise ValueError(f"loss_fn must return a per-sample tensor of shape [{per}], "
                                     f"got {tuple(per_sample.shape)}")
                loss = per_sample.float().mean() / accum
                loss.backward()
            total += loss.detach()
        loss_value = float(all_reduce_mean(total, self.dist))
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"step {step}: loss is non-finite ({loss_value})")
        grad_norm = self._check_and_clip(step)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.module)
        return {"loss": loss_value, "grad_norm": grad_norm, "lr": lr}

    def _no_sync(self, last: bool) -> Any:
        """DDP: skip the gradient all-reduce on all but the last micro-batch."""
        if last or not isinstance(self.model, ModelProxy):
            return nullcontext()
        return self.model.no_sync()

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _global_batch(self, step: int) -> tuple[State, Any]:
        if callable(self.data):
            out = self.data(step, make_generator(derive_seed(self.config.seed, "batch", step)))
        else:
            out = self._next_item()
        x0, cond = (out[0], out[1]) if isinstance(out, tuple | list) else (out, None)
        x0 = as_state(x0)
        rows = leaves(x0)[0].shape[0]
        if rows != self.config.batch_size:
            raise ValueError(f"step {step}: the batch has {rows} rows, config.batch_size is "
                             f"{self.config.batch_size}")
        return x0, cond

    def _next_item(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self.data)  # type: ignore[arg-type]
        try:
            return next(self._iterator)
        except StopIteration:  # next epoch
            self._iterator = iter(self.data)  # type: ignore[arg-type]
            return next(self._iterator)

    def _loss_generator(self, step: int, micro: int, rows: slice) -> Generator:
        root = derive_seed(self.config.seed, "loss", step)
        if self.config.loss_generator == "per_sample":
            return PerSampleGenerator.for_samples(root, range(rows.start, rows.stop), self.device, "loss")
        return make_generator(derive_seed(root, self.dist.rank, micro), self.device)

    def _check_and_clip(self, step: int) -> float:
        """Raise on a non-finite gradient (naming the parameter), then clip; returns the grad norm."""
        named = [(k, p) for k, p in self.module.named_parameters() if p.grad is not None]
        if not named:
            return 0.0
        grads: list[Tensor] = [p.grad for _, p in named]  # type: ignore[misc]
        norm = torch.nn.utils.get_total_norm(grads)
        if not torch.isfinite(norm):
            bad = next((k for (k, _), g in zip(named, grads, strict=True) if not torch.isfinite(g).all()), None)
            what = f"gradient of parameter {bad!r}" if bad else "gradient norm (overflow)"
            raise FloatingPointError(f"step {step}: {what} is non-finite (NaN/Inf)")
        if self.config.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_([p for _, p in named], self.config.grad_clip, norm)
        return float(norm)

    def _report(self, step: int, metrics: dict[str, float], bar: Any) -> None:
        bar.set_postfix(loss=f"{metrics['loss']:.4g}", lr=f"{metrics['lr']:.3g}",
                        samples_s=f"{metrics['samples_per_s']:.0f}")
        if self.callback is not None and self.dist.is_main:
            self.callback(step, dict(metrics))

    # ----------------------------------------------------------------------------- checkpoints
    def _save(self, loss: float) -> Path:
        """Write a checkpoint of the state after ``self.step`` updates (rank 0 writes; all wait)."""
        assert self.checkpoint_dir is not None
        ranks = all_gather_objects(_rng_snapshot(self.device), self.dist)
        path = self.checkpoint_dir / step_dir_name(self.step)
        if self.dist.is_main:
            meta = {"config": self.config.model_dump(mode="json"), "model_config": self.model_config,
                    "loss": loss, "world_size": self.dist.world_size, "torch": torch.__version__,
                    "train_seconds": self.train_seconds(), "device": describe_device(self.device)}
            path = save_checkpoint(self.checkpoint_dir, self.step, model=self.module,
                                   optimizer=self.optimizer, scheduler=self.scheduler, ema=self.ema,
                                   rng={"ranks": ranks, "seed": self.config.seed}, meta=meta,
                                   keep_last=self.config.keep_last)
        barrier(self.dist)
        return path

    def _restore(self, resume_from: str | Path | None) -> int:
        """Load the checkpoint to resume from, if any; returns the number of updates already done."""
        path = None
        if resume_from is not None:
            path = resolve_checkpoint(resume_from)
        elif self.resume and self.checkpoint_dir is not None:
            path = latest_checkpoint(self.checkpoint_dir)
        if path is None:
            if self.step == 0:  # fresh start: dropout & co. follow the run seed
                torch.manual_seed(derive_seed(self.config.seed, "torch_global", self.dist.rank))
            return self.step
        meta = load_checkpoint(path, self.module, self.ema, self.optimizer, self.scheduler,
                               map_location=self.device)
        step = int(meta["step"])
        self._set_rng(load_rng_state(path), step)
        if not callable(self.data):  # replay an iterable up to where the run stopped
            for _ in range(step):
                self._next_item()
        self._last = (meta.get("loss"), path)
        self._seconds_before = float(meta.get("train_seconds") or 0.0)
        return step

    def train_seconds(self) -> float:
        """Wall seconds spent in :meth:`fit` up to now, summed over the fits a resumed run went through
        (checkpoints record it as ``train_seconds``, with the ``device``: the x-axis of a training curve)."""
        return self._seconds_before + (time.perf_counter() - self._fit_t0)

    def _set_rng(self, state: Mapping[str, Any] | None, step: int) -> None:
        ranks = (state or {}).get("ranks", [])
        if self.dist.rank >= len(ranks):
            warnings.warn(f"checkpoint has no RNG state for rank {self.dist.rank}; reseeding", stacklevel=3)
            torch.manual_seed(derive_seed(self.config.seed, "torch_global", self.dist.rank, step))
            return
        torch.set_rng_state(ranks[self.dist.rank]["torch"])
        if self.device.type == "cuda" and "cuda" in ranks[self.dist.rank]:
            torch.cuda.set_rng_state(ranks[self.dist.rank]["cuda"], self.device)


def describe_device(device: torch.device) -> str:
    """``"cpu (N threads)"`` or the CUDA device's name, as checkpoints record it."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


def _rng_snapshot(device: torch.device) -> dict[str, Tensor]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _make_optimizer(module: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on >=2-D weights only (biases and norm scales are not decayed)."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr, betas=cfg.betas)


__all__ = ["BatchFn", "Callback", "LossFn", "TrainConfig", "TrainResult", "Trainer", "choice_batch_fn",
           "tensor_batch_fn"]
