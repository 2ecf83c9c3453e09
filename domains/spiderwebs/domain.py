"""``spiderwebs``: conditional generation of 3D bio-inspired web graphs (the three models of Lu, Lee &
Buehler 2023).

Data: procedural orb and sheet-and-tangle webs (``generator.py``) cut into connected patches of ≤ 64
nodes (``patches.py``), stored in the paper's ``dataset_webs_medium.pt`` row layout (``layout.py``)
with the 7 design quantities and their min-max normalisation (``properties.py``). A catalog entry
of another format than ``generated`` is read with the paper-file loader instead.
Model 1 (``network.kind`` mlp | unet | transformer): continuous diffusion over xyz + neighbour slots
(``offsets.py``: neighbour offsets, the default; ``layout.py``: the paper's neighbour numbers). Model 2
(``network.kind = graph``, ``dense.py``): xyz + adjacency under core's GraphSpace with core's dense
graph networks. Both are conditioned on the normalised design vector, trained with condition dropout
and sampled with classifier-free guidance. Model 3 (``network.kind = autoregressive``,
``autoregressive.py``, ``ar_stages.py``): a causal transformer over nodes trained by teacher forcing.
``network.candidates = k``: best of k draws per request, judged on the decoded design vector.
Decoding: ``decode.py`` (symmetric, degree cap, connected, no zero-length edges). Validation:
``validation.py`` (conditioning accuracy, validity, MMD, mechanics, fabrication output, assembly).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.catalog import CatalogEntry, data_root
from core.provenance import RunDir
from core.samplers.graph_space import GraphSpace
from core.samplers.spaces import EuclideanSpace
from core.types import State
from domains.base import DiffusionDomain
from domains.refs import CheckpointRef
from domains.spiderwebs import ar_stages, dense, networks
from domains.spiderwebs.config import SpiderwebsConfig
from domains.spiderwebs.decode import Decoded, decode_graph
from domains.spiderwebs.layout import layout_to_state, state_to_geometric, state_to_raw
from domains.spiderwebs.offsets import channels as offset_channels
from domains.spiderwebs.offsets import (
    layout_to_offset_state,
    offset_scale,
    offset_state_to_raw,
    position_scale,
)
from domains.spiderwebs.properties import Normaliser, range_warning


class SpiderwebsDomain(DiffusionDomain):
    name = "spiderwebs"
    config_cls = SpiderwebsConfig

    # ---- data -------------------------------------------------------------------------------
    def prepare(self, cfg: SpiderwebsConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        from domains.spiderwebs import data

        d = cfg.data
        if entry.format == "generated":
            patches, webs = data.generated_patches(list(d.kinds), d.n_webs, d.patches_per_web, d.min_nodes,
                                                   d.max_nodes, cfg.seed)
        else:
            from domains.spiderwebs.layout import load_paper_file

            patches, _ = load_paper_file(data_root() / entry.files[0].path)
            webs = []
        return data.build_tensors(patches, webs, d.max_length, d.max_neighbors, d.test_fraction, cfg.seed)

    def normaliser(self, data: dict[str, torch.Tensor]) -> Normaliser:
        return Normaliser(data["y_min"], data["y_max"])

    def training_data(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        cond = {"vector": self.normaliser(data).encode(data["y_train"])}
        if cfg.network.kind == "autoregressive":
            from domains.spiderwebs.autoregressive import growth_order

            return growth_order(data["rows_train"]), {**cond, "unit": data["y_train"][:, 0].float()}
        if cfg.network.kind == "graph":
            x0, cond["mask"] = dense.rows_to_dense(data["rows_train"], float(data["scale"]), cfg.data.max_neighbors)
            return x0, cond
        return self.encode_rows(cfg, data, data["rows_train"], data["y_train"]), cond

    def encode_rows(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor], rows: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
        """Paper-layout rows (with their design vectors ``y``) → the model-1 state of ``cfg.data.slots``."""
        k = cfg.data.max_neighbors
        if cfg.data.slots == "offsets":
            return layout_to_offset_state(rows, *_offset_scales(cfg, data), k, _unit(cfg, y), cfg.data.flag_scale)
        return layout_to_state(rows, float(data["scale"]), k)

    # ---- model ------------------------------------------------------------------------------
    def build_network(self, cfg: SpiderwebsConfig) -> nn.Module:
        if cfg.network.kind == "graph":
            n = cfg.network
            net = dense.GraphDenoiserNet(7, hidden=n.hidden, depth_x=n.depth, layers_a=n.depth, attn_dim=n.hidden,
                                         heads=n.heads, emb_dim=n.emb_dim)
            return networks.CondDropout(net, n.cond_drop)
        if cfg.network.kind == "autoregressive":
            from domains.spiderwebs.autoregressive import NodeSequenceModel

            n = cfg.network
            return NodeSequenceModel(cfg.data.max_length, 7, dim=n.hidden, depth=n.depth, heads=n.heads,
                                     mixtures=n.mixtures, max_degree=cfg.data.max_neighbors)
        return networks.build(cfg.network.kind, self.channels(cfg), cfg.data.max_length, 7, cfg.network)

    def channels(self, cfg: SpiderwebsConfig) -> int:
        if cfg.data.slots == "offsets":
            return offset_channels(cfg.data.max_neighbors)  # presence + xyz + occupancy + 3 per slot
        return 4 + cfg.data.max_neighbors  # presence + xyz + slots (STATE_CHANNELS for the paper's 6)

    def sample_shape(self, cfg: SpiderwebsConfig) -> tuple[int, ...] | dict[str, tuple[int, ...]]:
        length = cfg.data.max_length
        if cfg.network.kind == "graph":
            return {"x": (length, 3), "adj": (length, length)}
        if cfg.network.kind == "autoregressive":
            return (length, 4 + 2 * cfg.data.max_neighbors)  # samples are stored in the paper's row layout
        return (self.channels(cfg), length)

    def state_space(self, cfg: SpiderwebsConfig) -> EuclideanSpace:
        return GraphSpace(pair_fields=("adj",)) if cfg.network.kind == "graph" else EuclideanSpace()

    def load_model(self, cfg: SpiderwebsConfig, ckpt: CheckpointRef):  # type: ignore[override]
        model = super().load_model(cfg, ckpt)
        if cfg.network.kind == "autoregressive":
            return model
        return networks.GuidedDenoiser(model, cfg.network.guidance).eval()

    def training_model(self, cfg: SpiderwebsConfig) -> nn.Module:
        return ar_stages.training_model(self, cfg) if cfg.network.kind == "autoregressive" else super().training_model(cfg)

    def training_loss(self, cfg: SpiderwebsConfig, model: Any) -> Any:
        if cfg.network.kind == "autoregressive":
            from domains.spiderwebs.autoregressive import teacher_forcing_loss

            return teacher_forcing_loss
        return super().training_loss(cfg, model)

    def generate(self, cfg: SpiderwebsConfig, model: Any, indices: Sequence[int],  # type: ignore[override]
                 data: dict[str, torch.Tensor] | None = None, progress: bool = True) -> tuple[State, int]:
        """Samples for ``indices``; ``network.candidates = k > 1``: k draws per request (draw 0 is the
        plain sample, draw c is re-seeded with ``derive_seed(seed, "candidate", c)``), keeping per request
        the draw whose decoded design vector is closest to it (``metrics.closest_candidate``)."""
        k = cfg.network.candidates
        if k == 1:
            return self._generate_once(cfg, model, indices, data, progress)
        if data is None:
            raise ValueError("spiderwebs sampling needs the dataset (design vectors and their normalisation)")
        from core.seeding import derive_seed
        from domains.spiderwebs.metrics import closest_candidate
        from domains.spiderwebs.properties import design_vector

        idx = torch.as_tensor(list(indices))
        y = self.requested_designs(cfg, data, idx)
        mask = dense.mask_for(y[:, 4], cfg.data.max_length) if cfg.network.kind == "graph" else None
        draws, achieved, nfe = [], [], 0
        for c in range(k):
            cfg_c = cfg if c == 0 else cfg.model_copy(update={"seed": derive_seed(cfg.seed, "candidate", c)})
            x, used = self._generate_once(cfg_c, model, indices, data, progress)
            draws.append(x)
            nfe += used
            achieved.append(np.stack([design_vector(d.graph) for d in self.decode(cfg, x, data, mask, y)]))
        best = torch.from_numpy(closest_candidate(y.double().numpy(), np.stack(achieved),
                                                  data["y_train"].double().std(0).numpy()))
        rows = torch.arange(len(idx))
        if isinstance(draws[0], dict):
            return type(draws[0])({f: torch.stack([d[f] for d in draws])[best, rows] for f in draws[0]}), nfe
        return torch.stack(draws)[best, rows], nfe  # type: ignore[arg-type]

    def _generate_once(self, cfg: SpiderwebsConfig, model: Any, indices: Sequence[int],
                       data: dict[str, torch.Tensor] | None, progress: bool) -> tuple[State, int]:
        if cfg.network.kind != "autoregressive":
            return super().generate(cfg, model, indices, data, progress)
        if data is None:
            raise ValueError("spiderwebs sampling needs the dataset (design vectors and their normalisation)")
        idx, bs, chunks = torch.as_tensor(list(indices)), cfg.sample.batch_size, []
        for i in range(0, len(idx), bs):
            b = idx[i:i + bs]
            chunks.append(ar_stages.generate(self, cfg, model, data, self.requested_designs(cfg, data, b),
                                             ("sample", int(b[0]))))
        x = torch.cat(chunks)
        return x, int((x[..., 0] > 0).sum(1).max())  # transformer passes: one per generated node

    def requested_designs(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor],
                          indices: torch.Tensor) -> torch.Tensor:
        """Raw design vectors requested for samples ``indices``: the held-out designs, cycled."""
        y = data["y_test"]
        return y[indices.long() % y.shape[0]]

    def sample_cond(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor] | None, indices: torch.Tensor) -> Any:
        if data is None:
            raise ValueError("spiderwebs sampling needs the dataset (design vectors and their normalisation)")
        length = cfg.data.max_length if cfg.network.kind == "graph" else None
        return self.design_cond(data, self.requested_designs(cfg, data, indices), length)

    def design_cond(self, data: dict[str, torch.Tensor], y: torch.Tensor,
                    length: int | None = None) -> dict[str, torch.Tensor]:
        """Normalised design vectors (warning outside the trained range); ``length``: model 2's node
        masks too (the first ``n_nodes`` of ``length`` rows)."""
        norm = self.normaliser(data)
        msg = range_warning(norm, y)
        if msg:
            warnings.warn(msg, stacklevel=2)
        cond = {"vector": norm.encode(y)}
        if length is not None:
            cond["mask"] = dense.mask_for(y[:, 4], length)
        return cond

    def sample(self, cfg: SpiderwebsConfig, ckpt: CheckpointRef, run: RunDir):  # type: ignore[override]
        model = self.load_model(cfg, ckpt)
        x, nfe = self.generate(cfg, model, range(cfg.sample.n), data=self.run_data(run))
        return self._write_sample_set(cfg, ckpt, run, x, nfe)

    def sample_shard(self, cfg: SpiderwebsConfig, ckpt: CheckpointRef, run: RunDir, start: int, stop: int) -> Path:
        from domains.base import _atomic_save

        model = self.load_model(cfg, ckpt)
        x, nfe = self.generate(cfg, model, range(start, stop), data=self.run_data(run), progress=False)
        path = run.samples / "shards" / f"shard_{start:08d}_{stop:08d}.safetensors"
        path.parent.mkdir(exist_ok=True)
        tensors = dict(x) if isinstance(x, dict) else {"x": x}
        _atomic_save({**tensors, "__nfe__": torch.tensor(nfe)}, path)
        return path

    # ---- decoding and output ----------------------------------------------------------------
    def decode(self, cfg: SpiderwebsConfig, x: State, data: dict[str, torch.Tensor],
               mask: torch.Tensor | None = None, y: torch.Tensor | None = None) -> list[Decoded]:
        """Generated states → repaired graphs. Model 2 needs the node masks it was sampled with, model 1
        with ``data.unit = edge_length`` the requested designs ``y`` (default for both: those of the
        held-out requests ``0 … B−1``, as the sample stage draws them)."""
        v, k, scale = cfg.validate_, cfg.data.max_neighbors, float(data["scale"])
        if cfg.network.kind == "graph":
            assert isinstance(x, dict)
            x = {f: t.detach().cpu().float() for f, t in x.items()}
            if mask is None:
                n = x["adj"].shape[0]
                mask = dense.mask_for(self.requested_designs(cfg, data, torch.arange(n))[:, 4], cfg.data.max_length)
            raw = dense.dense_to_raw(x, mask, scale)
        elif cfg.network.kind == "autoregressive":
            from domains.spiderwebs.autoregressive import rows_to_raw

            raw = rows_to_raw(x.detach().cpu().float(), k)  # type: ignore[union-attr]
        elif cfg.data.slots == "offsets":
            assert isinstance(x, torch.Tensor)
            x = x.detach().cpu().float()
            if y is None:
                y = self.requested_designs(cfg, data, torch.arange(x.shape[0]))
            raw = offset_state_to_raw(x, *_offset_scales(cfg, data), k, match=v.match, unit=_unit(cfg, y),
                                      reconcile=v.reconcile)
        elif v.decoder == "slots":
            raw = state_to_raw(x.detach().cpu().float(), scale, v.snap_window)  # type: ignore[union-attr]
        else:
            raw = state_to_geometric(x.detach().cpu().float(), scale)  # type: ignore[union-attr]
        return [decode_graph(pos, claims, max_degree=cfg.data.max_neighbors, symmetry=v.symmetry, connect=v.connect)
                for pos, claims in raw]

    def write_samples(self, cfg: SpiderwebsConfig, x: State, run: RunDir) -> list[Path]:
        from domains.spiderwebs.layout import save_paper_file

        graphs = [d.graph for d in self.decode(cfg, x, self.run_data(run))]
        return [save_paper_file(run.samples / "generated_webs.pt", graphs, cfg.data.max_length,
                                cfg.data.max_neighbors)]

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        from domains.spiderwebs.validation import HEADLINE

        return {k: metrics[k] for k in HEADLINE if k in metrics}

    def evaluate(self, cfg: SpiderwebsConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: dict[str, Any]) -> dict[str, Any]:
        from domains.spiderwebs.validation import evaluate

        return evaluate(self, cfg, x, data, run, info)


def _unit(cfg: SpiderwebsConfig, y: torch.Tensor) -> torch.Tensor | None:
    """Per-sample length unit of the offset state: the (requested) average edge length, or none."""
    return y[:, 0].float() if cfg.data.unit == "edge_length" else None


def _offset_scales(cfg: SpiderwebsConfig, data: dict[str, torch.Tensor]) -> tuple[float, float]:
    """``(position scale, offset scale)`` of the offset state, fitted on the training rows (std 0.5)."""
    rows, unit = data["rows_train"], _unit(cfg, data["y_train"])
    return position_scale(rows, unit), offset_scale(rows, cfg.data.max_neighbors, unit)
