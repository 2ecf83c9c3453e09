"""Conditional generation of trajectories on any grid (the shared routine behind sample and validate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from core.samplers import sample
from core.seeding import PerSampleGenerator, derive_seed, make_generator
from domains.pde.state import Conditioning, Representation, Task, TrajectorySpace, known_mask, pack, unpack


def condition(rep: Representation, u: Tensor, f: Tensor, scales: Tensor, task: Task,
              mode: Conditioning = "broadcast") -> dict[str, Tensor]:
    """Sampling conditioning for ground-truth trajectories: network channels plus known values and mask."""
    nt, nx = f.shape[-2:]
    known = pack(u.float(), f.float(), scales.float())
    mask = known_mask(task, nt, nx, known.shape[0])
    known = known * mask
    return {"channels": rep.cond_channels(known, mask, mode), "known": known, "mask": mask}


def generate(model: Callable[..., Any], rep: Representation, cond: dict[str, Tensor], indices: Sequence[int],
             seed: int, sc: Any, *, denoiser: Callable[..., Any] | None = None, progress: bool = False,
             desc: str = "pde: sampling") -> tuple[Tensor, int]:
    """Samples for ``indices`` (sample k seeded by ``derive_seed(seed, 'sample', k)``); returns states and NFE.

    ``denoiser`` (default: ``model``) may wrap the model, e.g. with guidance.
    """
    process = model.process  # type: ignore[attr-defined]
    space = TrajectorySpace(process, rep, make_generator(derive_seed(seed, "inpaint", int(indices[0]))))
    chunks, nfe = [], 0
    idx = list(indices)
    starts = range(0, len(idx), sc.batch_size)
    for s in tqdm(starts, desc=desc, disable=not progress or len(starts) < 2):
        b = idx[s:s + sc.batch_size]
        rows = slice(s, s + len(b))
        c = {k: v[rows] for k, v in cond.items()}
        gen = PerSampleGenerator.for_samples(seed, b)
        like = torch.empty((len(b), *rep.state_shape()))
        x_init = space.project(process.prior_like(like, gen), None, c)
        res = sample(denoiser or model, process, x_init, sampler=sc.sampler, steps=sc.steps, schedule=sc.schedule,
                     schedule_options=sc.schedule_options, space=space, generator=gen, cond=c, **sc.options)
        chunks.append(res.x)
        nfe = res.nfe
    return torch.cat(chunks), nfe


def member_sampling(cfg: Any) -> Any:
    """The sample config of one ensemble member: ``sample`` with ``validate.ensemble_steps`` steps when set."""
    return cfg.sample.model_copy(update={"steps": cfg.validate_.ensemble_steps or cfg.sample.steps})


def ensemble_mean(model: Callable[..., Any], rep: Representation, cond: dict[str, Tensor], seeds: Sequence[int],
                  sc: Any, scales: Tensor) -> tuple[Tensor, int]:
    """The mean ``u`` of one sample per seed in ``seeds`` (each a full :func:`generate` of every row of
    ``cond``), in physical units, and the total NFE per row."""
    n = cond["known"].shape[0]
    total, nfe = None, 0
    for seed in seeds:
        x, k = generate(model, rep, cond, range(n), seed, sc)
        u = unpack(rep.decode(x), scales)[0]
        total, nfe = (u if total is None else total + u), nfe + k
    if total is None:
        raise ValueError("ensemble_mean needs at least one seed")
    return total / len(seeds), nfe


__all__ = ["condition", "ensemble_mean", "generate", "member_sampling"]
