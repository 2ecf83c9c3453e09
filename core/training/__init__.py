"""Training: the loop (:class:`Trainer`), EMA, atomic checkpoints, LR schedules and DDP helpers."""

from core.training.checkpoint import (
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_rng_state,
    prune_checkpoints,
    read_meta,
    save_checkpoint,
)
from core.training.distributed import (
    DistInfo,
    cleanup_distributed,
    init_distributed,
    launched_by_torchrun,
    unwrap_model,
    wrap_model,
)
from core.training.ema import EMA
from core.training.lr import lr_factor, make_lr_scheduler
from core.training.trainer import TrainConfig, Trainer, TrainResult, choice_batch_fn, tensor_batch_fn

__all__ = [
    "EMA",
    "DistInfo",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "choice_batch_fn",
    "cleanup_distributed",
    "init_distributed",
    "latest_checkpoint",
    "launched_by_torchrun",
    "list_checkpoints",
    "load_checkpoint",
    "load_rng_state",
    "lr_factor",
    "make_lr_scheduler",
    "prune_checkpoints",
    "read_meta",
    "save_checkpoint",
    "tensor_batch_fn",
    "unwrap_model",
    "wrap_model",
]
