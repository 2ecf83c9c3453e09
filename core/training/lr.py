"""Learning-rate schedules: linear warm-up, then cosine decay (or a constant rate).

The schedule is a multiplier ``f(step)`` of the base learning rate, where ``step`` is the index of
the optimizer update about to be taken (``0`` for the first). With ``W`` warm-up steps and a schedule
of ``T`` steps:

    f(s) = (s + 1) / W                                        for s < W
    f(s) = r + (1 - r) * (1 + cos(pi * p)) / 2,  p = (s - W) / (T - W)  clamped to [0, 1]   (cosine)
    f(s) = 1                                                  (constant)

with ``r = min_lr_ratio``. :func:`make_lr_scheduler` wraps it in a ``LambdaLR`` whose counters are
saved in checkpoints; the shape of the schedule always comes from the current config.
"""

from __future__ import annotations

import math
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from core.registry import UnknownNameError

LRSchedule = Literal["cosine", "constant"]
LR_SCHEDULES: tuple[str, ...] = ("cosine", "constant")


def lr_factor(step: int, *, warmup_steps: int, total_steps: int, schedule: str = "cosine",
              min_lr_ratio: float = 0.0) -> float:
    """The learning-rate multiplier for update ``step`` (0-based)."""
    if schedule not in LR_SCHEDULES:
        raise UnknownNameError(f"unknown lr schedule {schedule!r}; valid choices: {', '.join(LR_SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = min(max((step - warmup_steps) / max(1, total_steps - warmup_steps), 0.0), 1.0)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_lr_scheduler(optimizer: Optimizer, *, warmup_steps: int, total_steps: int,
                      schedule: str = "cosine", min_lr_ratio: float = 0.0) -> LambdaLR:
    """A ``LambdaLR`` following :func:`lr_factor`; call ``.step()`` after every optimizer update.

    The multiplier is a plain function, so ``LambdaLR.state_dict`` stores only the counters and a
    resumed run keeps the schedule of its own config.
    """
    lr_factor(0, warmup_steps=warmup_steps, total_steps=total_steps, schedule=schedule,
              min_lr_ratio=min_lr_ratio)  # validate the arguments now

    def factor(step: int) -> float:
        return lr_factor(step, warmup_steps=warmup_steps, total_steps=total_steps, schedule=schedule,
                         min_lr_ratio=min_lr_ratio)

    return LambdaLR(optimizer, factor)
