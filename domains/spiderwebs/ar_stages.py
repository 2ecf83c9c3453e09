"""The model and sampling of model 3 (``network.kind = autoregressive``, ``autoregressive.py``).

Training runs the shared training loop (core's trainer: optimiser, schedule, EMA, checkpoints, resume)
with this network and the teacher-forcing likelihood in place of a denoiser and a denoising loss;
sampling generates node by node and stores the patches in the paper's row layout, which
``SpiderwebsDomain.decode`` reads like any other model's output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from core.seeding import derive_seed
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


def generate(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, model: Any, data: dict[str, torch.Tensor],
             y: torch.Tensor, key: tuple[Any, ...]) -> torch.Tensor:
    """Patches for the raw design vectors ``y [B, 7]`` (warning outside the trained range) as paper rows
    ``[B, L, 16]``; the draw is seeded by ``derive_seed(cfg.seed, *key)``."""
    cond = dom.design_cond(data, y)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "autoregressive", *key))
    graphs = sample_graphs(model, cond["vector"], y[:, 0].float(), cfg.network.temperature, gen)
    return graphs_to_layout(graphs, cfg.data.max_length, cfg.data.max_neighbors)
