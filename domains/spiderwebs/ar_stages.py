"""The model, loading and sampling of model 3 (``network.kind = autoregressive``, ``autoregressive.py``).

Training runs the shared training loop (core's trainer: optimiser, schedule, EMA, checkpoints, resume)
with this network and the teacher-forcing likelihood in place of a denoiser and a denoising loss;
sampling generates node by node and stores the patches in the paper's row layout, which
``SpiderwebsDomain.decode`` reads like any other model's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core.seeding import derive_seed
from domains.refs import CheckpointRef, check_ref
from domains.spiderwebs.autoregressive import NodeSequenceModel, sample_graphs
from domains.spiderwebs.layout import graphs_to_layout

if TYPE_CHECKING:
    from domains.spiderwebs.config import SpiderwebsConfig
    from domains.spiderwebs.domain import SpiderwebsDomain


def training_model(dom: SpiderwebsDomain, cfg: SpiderwebsConfig) -> NodeSequenceModel:
    """The network with its initial weights seeded by the run seed (as every domain's denoiser)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        net = dom.build_network(cfg)
    assert isinstance(net, NodeSequenceModel)
    return net


def load(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, ckpt: CheckpointRef) -> NodeSequenceModel:
    """The trained network (EMA weights when recorded and ``sample.use_ema``), in eval mode."""
    from core.training.checkpoint import load_checkpoint
    from core.training.ema import EMA

    check_ref(ckpt, Path(ckpt.path) / "model.safetensors")
    net = dom.build_network(cfg)
    assert isinstance(net, NodeSequenceModel)
    if cfg.sample.use_ema and (Path(ckpt.path) / "ema.safetensors").exists():
        ema = EMA(net, 0.0)
        load_checkpoint(ckpt.path, net, ema=ema)
        ema.copy_to(net)
    else:
        load_checkpoint(ckpt.path, net)
    return net.eval()


def generate(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, model: Any, data: dict[str, torch.Tensor],
             y: torch.Tensor, key: tuple[Any, ...]) -> torch.Tensor:
    """Patches for the raw design vectors ``y [B, 7]`` (warning outside the trained range) as paper rows
    ``[B, L, 16]``; the draw is seeded by ``derive_seed(cfg.seed, *key)``."""
    cond = dom.design_cond(data, y)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "autoregressive", *key))
    graphs = sample_graphs(model, cond["vector"], y[:, 0].float(), cfg.network.temperature, gen)
    return graphs_to_layout(graphs, cfg.data.max_length, cfg.data.max_neighbors)
