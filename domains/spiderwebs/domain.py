"""``spiderwebs``: conditional diffusion of 3D bio-inspired web graphs (model 1 of Lu, Lee & Buehler 2023).

Data: procedural orb and sheet-and-tangle webs (``generator.py``) cut into connected patches of ≤ 64
nodes (``patches.py``), stored in the paper's ``dataset_webs_medium.pt`` row layout (``layout.py``)
with the 7 design quantities and their min-max normalisation (``properties.py``). A catalog entry
of another format than ``generated`` is read with the paper-file loader instead.
Model: continuous diffusion over xyz + neighbour slots (``[10, L]``), conditioned on the normalised
design vector, trained with condition dropout and sampled with classifier-free guidance.
Decoding: ``decode.py`` (symmetric, degree cap, connected, no zero-length edges). Validation:
``validation.py`` (conditioning accuracy, validity, MMD, mechanics, fabrication output, assembly).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.catalog import CatalogEntry, data_root
from core.provenance import RunDir
from core.types import State
from domains.base import DiffusionDomain
from domains.refs import CheckpointRef
from domains.spiderwebs import networks
from domains.spiderwebs.config import SpiderwebsConfig
from domains.spiderwebs.decode import Decoded, decode_graph
from domains.spiderwebs.layout import layout_to_state, state_to_geometric, state_to_raw
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
        x0 = layout_to_state(data["rows_train"], float(data["scale"]), cfg.data.max_neighbors)
        return x0, {"vector": self.normaliser(data).encode(data["y_train"])}

    # ---- model ------------------------------------------------------------------------------
    def build_network(self, cfg: SpiderwebsConfig) -> nn.Module:
        return networks.build(cfg.network.kind, self.channels(cfg), cfg.data.max_length, 7, cfg.network)

    def channels(self, cfg: SpiderwebsConfig) -> int:
        return 4 + cfg.data.max_neighbors  # presence + xyz + slots (STATE_CHANNELS for the paper's 6)

    def sample_shape(self, cfg: SpiderwebsConfig) -> tuple[int, ...]:
        return (self.channels(cfg), cfg.data.max_length)

    def load_model(self, cfg: SpiderwebsConfig, ckpt: CheckpointRef):  # type: ignore[override]
        return networks.GuidedDenoiser(super().load_model(cfg, ckpt), cfg.network.guidance).eval()

    def requested_designs(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor],
                          indices: torch.Tensor) -> torch.Tensor:
        """Raw design vectors requested for samples ``indices``: the held-out designs, cycled."""
        y = data["y_test"]
        return y[indices.long() % y.shape[0]]

    def sample_cond(self, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor] | None, indices: torch.Tensor) -> Any:
        if data is None:
            raise ValueError("spiderwebs sampling needs the dataset (design vectors and their normalisation)")
        return self.design_cond(data, self.requested_designs(cfg, data, indices))

    def design_cond(self, data: dict[str, torch.Tensor], y: torch.Tensor) -> dict[str, torch.Tensor]:
        norm = self.normaliser(data)
        msg = range_warning(norm, y)
        if msg:
            warnings.warn(msg, stacklevel=2)
        return {"vector": norm.encode(y)}

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
        _atomic_save({"x": x, "__nfe__": torch.tensor(nfe)}, path)  # type: ignore[dict-item]
        return path

    # ---- decoding and output ----------------------------------------------------------------
    def decode(self, cfg: SpiderwebsConfig, x: torch.Tensor, scale: float) -> list[Decoded]:
        v = cfg.validate_
        x = x.detach().cpu().float()
        raw = state_to_raw(x, scale, v.snap_window) if v.decoder == "slots" else state_to_geometric(x, scale)
        return [decode_graph(pos, claims, max_degree=cfg.data.max_neighbors, symmetry=v.symmetry, connect=v.connect)
                for pos, claims in raw]

    def write_samples(self, cfg: SpiderwebsConfig, x: State, run: RunDir) -> list[Path]:
        from domains.spiderwebs.layout import save_paper_file

        assert isinstance(x, torch.Tensor)
        graphs = [d.graph for d in self.decode(cfg, x, float(self.run_data(run)["scale"]))]
        return [save_paper_file(run.samples / "generated_webs.pt", graphs, cfg.data.max_length,
                                cfg.data.max_neighbors)]

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        from domains.spiderwebs.validation import HEADLINE

        return {k: metrics[k] for k in HEADLINE if k in metrics}

    def evaluate(self, cfg: SpiderwebsConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: dict[str, Any]) -> dict[str, Any]:
        from domains.spiderwebs.validation import evaluate

        assert isinstance(x, torch.Tensor)
        return evaluate(self, cfg, x, data, run, info)


