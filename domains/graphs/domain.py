"""``graphs``: GDSS — score-based graph generation with a system of SDEs over node features and adjacency.

The state is ``{"x": [B,N,F], "adj": [B,N,N]}`` with ``cond["mask"]`` the node mask; the process is
a core :class:`~core.processes.ProcessDict` (VP on X, VE on A, set in the preset), the state space
(core :class:`~core.samplers.graph_space.GraphSpace`) gives symmetric adjacency noise and masks, the
networks are the GDSS X/A score networks (core :mod:`core.networks.gnn`), sampling is any core sampler (``pc`` = reverse SDE + Langevin corrector,
``dpmpp_2m``, ``ode_heun`` …) and the adjacency is quantised at 0.5. Validation: degree, clustering
and 4-node-orbit MMD against the test split (GDSS kernels and GDSS's set size: the mean over disjoint
generated sets of the test split's size, :func:`~domains.graphs.metrics.gdss_protocol_mmds`), beside two baselines (the training graphs
themselves, and Erdős–Rényi graphs of matching size and density), plus a picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from core.catalog import CatalogEntry
from core.config import ConfigModel
from core.networks.gnn import DenseGraphScoreNet
from core.provenance import RunDir, atomic_write_json
from core.samplers.graph_space import GraphSpace
from core.seeding import derive_seed, make_generator
from core.types import State, StateDict
from domains.base import DiffusionDomain
from domains.config import DomainConfig
from domains.graphs import data as gdata
from domains.graphs import metrics as gm
from domains.graphs import qm9
from domains.graphs.plots import graph_grid


class GraphData(ConfigModel):
    kind: Literal["generic", "molecule"] = "generic"
    max_nodes: int = Field(20, ge=2, description="padding size N; larger graphs are an ingest error")
    max_feat: int = Field(10, ge=1, description="generic: one-hot degree size; molecule: len(atoms)")
    atoms: list[str] = Field(default_factory=lambda: ["C", "N", "O", "F"], description="molecule vocabulary")
    n_train: int | None = Field(None, ge=1, description="molecule: fixed random training subset (CPU presets)")
    n_test: int | None = Field(None, ge=1, description="molecule: reference subset of the test split")

    @model_validator(mode="after")
    def _check(self) -> GraphData:
        if self.kind == "molecule" and self.max_feat != len(self.atoms):
            raise ValueError(f"data.max_feat={self.max_feat} must equal len(data.atoms)={len(self.atoms)} "
                             "for molecules")
        return self


class GraphNetwork(ConfigModel):
    """GDSS score networks (core :class:`~core.networks.gnn.DenseGraphScoreNet`); GDSS names in brackets."""

    hidden: int = Field(32, ge=2, description="node hidden size (nhid)")
    depth_x: int = Field(2, ge=1, description="GCN layers of the X network (depth)")
    layers_a: int = Field(3, ge=1, description="attention layers of the A network (num_layers)")
    attn_dim: int = Field(32, ge=1, description="attention size (adim)")
    c_init: int = Field(2, ge=1, description="adjacency powers A..A^c_init fed to the A network")
    c_hid: int = Field(8, ge=1)
    c_final: int = Field(4, ge=1)
    heads: int = Field(4, ge=1)
    num_linears: int = Field(2, ge=1)
    emb_dim: int = Field(0, ge=0, description="time-embedding size (0 = none, as GDSS)")
    adj_clip: float = Field(4.0, gt=0, description="clip of the adjacency input of the networks")
    normalize_powers: bool = Field(False, description="divide A^c by n^(c-1)")
    spectral: int = Field(0, ge=0, description="extra pair channels λ_k u_k u_kᵀ of the k leading eigenpairs of "
                          "the noisy adjacency (0 = GDSS; see domains/graphs/spectral.py)")
    bridge: bool = Field(False, description="with spectral > 0: two more pair channels, the Fiedler bisection of the "
                         "current graph and the weight crossing it (a global bridge count; spectral.py)")
    node_struct: int = Field(0, ge=0, description="per-node structure inputs of both networks: weighted degree "
                             "(valence) and closed walks (A^c)_ii up to c = node_struct (0 = GDSS inputs; "
                             "core.networks.gnn.node_structure_features)")


    @model_validator(mode="after")
    def _bridge_needs_spectral(self) -> GraphNetwork:
        if self.bridge and not self.spectral:
            raise ValueError("network.bridge adds channels to the spectral adjacency network; set network.spectral "
                             ">= 1 too")
        return self


class GraphValidate(ConfigModel):
    baselines: bool = True
    n_baseline: int = Field(64, ge=1, description="Erdős–Rényi baseline graphs")
    compare_samplers: list[str] = Field(default_factory=list)
    compare_steps: list[int] = Field(default_factory=list)
    plot_n: int = Field(8, ge=1)
    fcd: bool = Field(False, description="molecules: Fréchet ChemNet Distance to the test subset (fcd_torch)")
    steer_particles: int = Field(0, ge=0, description="molecules: FK steering toward QED with this many "
                                 "particles (0 = off)")
    steer_lambda: float = Field(10.0, gt=0)
    steer_n: int = Field(16, ge=1)
    steer_steps: int = Field(50, ge=2)


class GraphsConfig(DomainConfig):
    data: GraphData = Field(default_factory=GraphData)  # type: ignore[assignment]
    network: GraphNetwork = Field(default_factory=GraphNetwork)  # type: ignore[assignment]
    validate_: GraphValidate = Field(default_factory=GraphValidate, alias="validate")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _molecule_dataset(self) -> GraphsConfig:
        if self.data.kind == "molecule" and self.dataset not in qm9.MOLECULE_DATASETS:
            raise ValueError(f"dataset {self.dataset!r} has no molecule reader; with data.kind=molecule use one of "
                             f"{', '.join(qm9.MOLECULE_DATASETS)}")
        return self

    @model_validator(mode="after")
    def _steering_without_self_condition(self) -> GraphsConfig:
        if self.model.self_condition and self.validate_.steer_particles:
            raise ValueError("FK steering resamples particles, which a self-conditioned denoiser's fed-back "
                             "estimate does not follow; set validate.steer_particles=0 or model.self_condition=false")
        return self


class GraphsDomain(DiffusionDomain):
    name = "graphs"
    config_cls = GraphsConfig

    def prepare(self, cfg: GraphsConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        d = cfg.data
        if d.kind == "molecule":
            return qm9.prepare(entry, d.atoms, d.max_nodes, d.n_train, d.n_test)
        return gdata.prepare_graphs(entry, d.max_nodes, d.max_feat)

    def node_counts(self, cfg: GraphsConfig) -> torch.Tensor:
        d = cfg.data
        if d.kind == "molecule":
            return qm9.train_node_counts(self.entry(cfg), d.atoms, d.max_nodes, d.n_train, d.n_test)
        return gdata.train_node_counts(self.entry(cfg))

    def training_data(self, cfg: GraphsConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        return StateDict({"x": data["train_x"], "adj": data["train_adj"]}), {"mask": data["train_mask"]}

    def build_network(self, cfg: GraphsConfig) -> nn.Module:
        n = cfg.network
        if n.spectral:
            from domains.graphs.spectral import spectral_score_net

            return spectral_score_net(cfg.data.max_feat, n.hidden, n.depth_x, n.layers_a, n.attn_dim, n.c_init,
                                      n.c_hid, n.c_final, n.heads, n.num_linears, n.emb_dim, n.adj_clip,
                                      n.normalize_powers, n.spectral, n.bridge, cfg.model.self_condition,
                                      n.node_struct)
        return DenseGraphScoreNet(cfg.data.max_feat, n.hidden, n.depth_x, n.layers_a, n.attn_dim, n.c_init, n.c_hid,
                                  n.c_final, n.heads, n.num_linears, n.emb_dim, n.adj_clip, n.normalize_powers,
                                  self_condition=cfg.model.self_condition, node_struct=n.node_struct)

    def sample_shape(self, cfg: GraphsConfig) -> dict[str, tuple[int, ...]]:
        n = cfg.data.max_nodes
        return {"x": (n, cfg.data.max_feat), "adj": (n, n)}

    def state_space(self, cfg: GraphsConfig) -> GraphSpace:
        return GraphSpace(pair_fields=("adj",))

    def sample_cond(self, cfg: GraphsConfig, data: dict[str, torch.Tensor] | None, indices: torch.Tensor) -> Any:
        """Node masks: sample ``k``'s size is drawn from the training sizes with its own seed."""
        counts = self.node_counts(cfg)
        mask = torch.zeros(len(indices), cfg.data.max_nodes)
        for row, k in enumerate(indices.tolist()):
            g = make_generator(derive_seed(cfg.seed, "nodes", int(k)))
            mask[row, : int(counts[int(torch.randint(len(counts), (1,), generator=g))])] = 1.0
        return {"mask": mask}

    def sizes(self, cfg: GraphsConfig, x: State) -> torch.Tensor:
        """Sample ``k`` has the size its node mask was drawn with (same seed rule)."""
        assert isinstance(x, dict)
        return self.sample_cond(cfg, None, torch.arange(x["adj"].shape[0]))["mask"].sum(-1)

    def molecules(self, cfg: GraphsConfig, x: State) -> list[Any]:
        from domains.graphs.mol_metrics import decode_molecules

        assert isinstance(x, dict)
        return decode_molecules(*qm9.decode(x, self.sizes(cfg, x)), cfg.data.atoms)

    def decode(self, cfg: GraphsConfig, x: State) -> list[gdata.Graph]:
        """Quantised graphs (nodes beyond the sampled size are padding)."""
        assert isinstance(x, dict)
        sizes = self.sizes(cfg, x)
        node = (torch.arange(cfg.data.max_nodes)[None, :] < sizes[:, None]).float()
        return gdata.dense_to_graphs(gdata.quantize_adj(x["adj"]), node)

    def write_samples(self, cfg: GraphsConfig, x: State, run: RunDir) -> list[Path]:
        if cfg.data.kind == "molecule":
            return qm9.write_outputs(self.molecules(cfg, x), run.samples)
        graphs = self.decode(cfg, x)
        doc = {"dataset": f"generated:{cfg.dataset}", "num_graphs": len(graphs),
               "note": "adjacency quantised at 0.5; node count = sampled size (isolated nodes kept here)",
               "graphs": [{"num_nodes": n, "num_edges": len(e), "edges": [list(p) for p in e]} for n, e in graphs]}
        path = run.samples / "graphs.json"
        atomic_write_json(path, doc)
        return [path]

    def evaluate(self, cfg: GraphsConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: dict[str, Any]) -> dict[str, Any]:
        if cfg.data.kind == "molecule":
            return self.evaluate_molecules(cfg, x, data, run, info)
        ref = gdata.to_networkx(gdata.dense_to_graphs(data["test_adj"], data["test_mask"]))
        gen = gdata.to_networkx(self.decode(cfg, x), drop_isolates=True)
        metrics: dict[str, Any] = {**gm.gdss_protocol_mmds(ref, gen), "n": len(gen), "nfe": int(info.get("nfe", 0)),
                                   "n_test": len(ref), "n_self_loops_dropped": int(data["n_self_loops"]),
                                   "n_nonfinite": nonfinite(x)}
        metrics["mean_nodes"] = sum(g.number_of_nodes() for g in gen) / max(len(gen), 1)
        metrics["mean_edges"] = sum(g.number_of_edges() for g in gen) / max(len(gen), 1)
        metrics.update(gm.connectivity_stats(gen))
        metrics["connected_frac_test"] = gm.connectivity_stats(ref)["connected_frac"]
        if cfg.validate_.baselines:
            metrics.update(self.baselines(cfg, data, ref))
        rows = self.compare_samplers(cfg, info, ref)
        if rows:
            atomic_write_json(run.path / "sampler_comparison.json", rows)
        graph_grid(gen, ref, run.plots / "graphs.png", n=cfg.validate_.plot_n)
        return metrics

    def evaluate_molecules(self, cfg: GraphsConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                           info: dict[str, Any]) -> dict[str, Any]:
        m = qm9.evaluate(self.molecules(cfg, x), self.entry(cfg), data, cfg.data.n_train, cfg.data.n_test,
                         fcd=cfg.validate_.fcd, plots=run.plots)
        m.pop("smiles")
        v = cfg.validate_
        if v.steer_particles and "checkpoint" in info:
            from domains.graphs.steering import steered_vs_plain
            from domains.refs import CheckpointRef

            model = self.load_model(cfg, CheckpointRef(self.name, info["checkpoint"], info["checkpoint_sha256"], 0, ""))
            steer = steered_vs_plain(self, cfg, model, v.steer_n, v.steer_particles, v.steer_lambda, v.steer_steps)
            atomic_write_json(run.path / "steering.json", steer)
            m.update({k: steer[k] for k in ("qed_steered", "qed_plain", "qed_plain_same_steps", "qed_shift", "nfe_per_sample")})
        return {**m, "n": int(x["adj"].shape[0]), "nfe": int(info.get("nfe", 0)), "n_nonfinite": nonfinite(x)}

    def score_external(self, cfg: GraphsConfig, path: Path, out_dir: Path) -> dict[str, Any]:
        """Score an external sample file exactly as a run's samples; writes ``out_dir/metrics.json``.

        Molecules (``data.kind: molecule``): SMILES (``.smi``/``.txt``/``.csv``) or SDF, against the
        configured train (novelty) and test (NSPDK, properties, FCD) subsets; plots in ``out_dir/plots``.
        Generic graphs: a GDSS-layout JSON of edge lists (e.g. ``samples/graphs.json``), the three MMDs
        against the test split (GDSS set size, isolated nodes removed, as for generated graphs)."""
        path, out_dir = Path(path), Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.data.kind == "molecule":
            from domains.graphs.mol_eval import read_molecules, score_molecules

            train, test = qm9.reference_smiles(self.entry(cfg), cfg.data.n_train, cfg.data.n_test)
            m = score_molecules(read_molecules(path), train, test, fcd=cfg.validate_.fcd, plots=out_dir / "plots",
                                label=path.name)
            m.pop("smiles")
        else:
            if path.suffix.lower() != ".json":
                raise ValueError(f"{path}: generic graphs are scored from a GDSS-layout .json of edge lists")
            data = self.prepare(cfg, self.entry(cfg))
            ref = gdata.to_networkx(gdata.dense_to_graphs(data["test_adj"], data["test_mask"]))
            gen = gdata.to_networkx(read_graphs_json(path), drop_isolates=True)
            m = {**gm.gdss_protocol_mmds(ref, gen), "n": len(gen), "n_test": len(ref)}
        m.update({"source": str(path), "dataset": cfg.dataset})
        atomic_write_json(out_dir / "metrics.json", m)
        return m

    def baselines(self, cfg: GraphsConfig, data: dict[str, torch.Tensor], ref: list[Any]) -> dict[str, float]:
        train = gdata.to_networkx(gdata.dense_to_graphs(data["train_adj"], data["train_mask"]))
        er = gm.erdos_renyi_like(train, cfg.validate_.n_baseline, make_generator(derive_seed(cfg.seed, "er")))
        out: dict[str, float] = {}
        for name, graphs in (("train", train), ("er", er)):
            res = gm.gdss_protocol_mmds(ref, graphs)
            out.update({f"{name}_{k}": v for k, v in res.items() if "mmd" in k})
        return out

    def compare_samplers(self, cfg: GraphsConfig, info: dict[str, Any], ref: list[Any]) -> list[dict[str, Any]]:
        """The trained model under other samplers/step counts: the three MMDs against NFE."""
        from domains.refs import CheckpointRef

        v = cfg.validate_
        if not v.compare_samplers or "checkpoint" not in info:
            return []
        model = self.load_model(cfg, CheckpointRef(self.name, info["checkpoint"], info["checkpoint_sha256"], 0, ""))
        rows = []
        for name in v.compare_samplers:
            for steps in v.compare_steps:
                c = cfg.model_copy(update={"sample": cfg.sample.model_copy(update={"sampler": name, "steps": steps, "options": {}})})
                x, nfe = self.generate(c, model, range(cfg.sample.n), progress=False)
                gen = gdata.to_networkx(self.decode(cfg, x), drop_isolates=True)
                rows.append({"sampler": name, "steps": steps, "nfe": nfe, **gm.gdss_protocol_mmds(ref, gen)})
        return rows


def nonfinite(x: State) -> int:
    """Samples with any NaN/Inf (decoded with those entries as 0; reported, never hidden)."""
    assert isinstance(x, dict)
    bad = sum((~torch.isfinite(v)).flatten(1).any(1).long() for v in x.values())
    return int((bad > 0).sum())  # type: ignore[union-attr]


def read_graphs_json(path: str | Path) -> list[gdata.Graph]:
    """Graphs from a GDSS-layout JSON file (the dataset files, or ``samples/graphs.json``)."""
    return gdata.parse_graphs(json.loads(Path(path).read_text()), str(path))[0]
