"""The validate stage of spiderwebs: conditioning accuracy (within and beyond the trained range),
validity, degree/edge-length MMD against held-out patches, truss mechanics, fabrication output
(STL + GraphML), assembly along a helix and a parametric curve, and plots."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from core.provenance import RunDir, atomic_write_json
from domains.refs import CheckpointRef
from domains.spiderwebs import plots
from domains.spiderwebs.decode import is_valid
from domains.spiderwebs.graph import WebGraph, make_graph
from domains.spiderwebs.layout import layout_to_graphs
from domains.spiderwebs.metrics import conditioning_accuracy, distribution_mmd, nearest_design_baseline
from domains.spiderwebs.properties import PROPERTY_NAMES, design_vector

if TYPE_CHECKING:
    from domains.spiderwebs.config import SpiderwebsConfig
    from domains.spiderwebs.domain import SpiderwebsDomain

HEADLINE = ("r2_n_nodes", "r2_n_edges", "r2_avg_degree", "r2_avg_edge_length", "valid_rate", "raw_valid_rate",
            "mmd_degree", "mmd_edge_length")


def _flat_accuracy(acc: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    out = {}
    for name, d in acc.items():
        out[f"{prefix}r2_{name}"] = d["r2"]
        out[f"{prefix}mre_{name}"] = d["mre"]
    return out


def evaluate(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, x: torch.Tensor, data: dict[str, torch.Tensor],
             run: RunDir, info: dict[str, Any]) -> dict[str, Any]:
    maxdeg = cfg.data.max_neighbors
    decoded = dom.decode(cfg, x, data)
    graphs = [d.graph for d in decoded]
    requested = dom.requested_designs(cfg, data, torch.arange(len(graphs))).double().numpy()
    achieved = np.stack([design_vector(g) for g in graphs])
    lo, hi = data["y_min"].double().numpy(), data["y_max"].double().numpy()
    test = layout_to_graphs(data["rows_test"], maxdeg)
    train = layout_to_graphs(data["rows_train"][:max(len(test), 64)], maxdeg)
    m: dict[str, Any] = {"n": len(graphs), "nfe": int(info.get("nfe", 0)), "guidance": cfg.network.guidance}
    m.update(_flat_accuracy(conditioning_accuracy(requested, achieved, lo, hi)))
    m["valid_rate"] = float(np.mean([is_valid(g, maxdeg) for g in graphs]))
    m["raw_valid_rate"] = float(np.mean([d.raw_valid for d in decoded]))
    m.update(_slot_degree(cfg, x, requested))
    m["requested_spread"] = {q: {"std": float(requested[:, k].std()), "min": float(requested[:, k].min()),
                                 "max": float(requested[:, k].max())}
                             for k, q in enumerate(PROPERTY_NAMES) if q in ("n_nodes", "n_edges", "avg_degree",
                                                                            "avg_edge_length")}
    m.update(distribution_mmd(graphs, test, maxdeg))
    ref = distribution_mmd(train, test, maxdeg)
    m.update({f"baseline_train_vs_test_{k}": v for k, v in ref.items()})
    nn_y = nearest_design_baseline(torch.from_numpy(requested), data["y_train"].double(), data["y_min"].double(),
                                   data["y_max"].double()).numpy()
    m.update(_flat_accuracy(conditioning_accuracy(requested, nn_y, lo, hi), "baseline_retrieval_"))
    beyond = _beyond(dom, cfg, data, info, run)
    m.update(beyond.pop("metrics"))
    m.update(_mechanics(cfg, graphs, test))
    m.update(_fabrication(cfg, graphs, run))
    m.update(_assembly(cfg, graphs, run))
    req_all = np.concatenate([requested, beyond["requested"]])
    ach_all = np.concatenate([achieved, beyond["achieved"]])
    mask = np.r_[np.zeros(len(requested), bool), np.ones(len(beyond["requested"]), bool)]
    plots.conditioning_scatter(req_all, ach_all, run.plots / "conditioning.png", mask)
    _gallery(cfg, data, graphs, test, run)
    atomic_write_json(run.path / "conditioning.json", {"names": PROPERTY_NAMES, "requested": req_all.tolist(),
                                                        "achieved": ach_all.tolist(), "beyond": mask.tolist()})
    return m


def _slot_degree(cfg: SpiderwebsConfig, x: Any, requested: np.ndarray) -> dict[str, float]:
    """Model 1 (offset slots): R² of the average degree the generated state itself states (occupied
    slots / 2 per present node), before matching and repair — the network's share of the error."""
    if cfg.network.kind in ("graph", "autoregressive") or cfg.data.slots != "offsets":
        return {}
    from domains.spiderwebs.metrics import r2_score

    k = cfg.data.max_neighbors
    present = x[:, 0] > 0
    slots = ((x[:, 4:4 + k] > 0) & present[:, None]).sum((1, 2)).double().numpy()
    deg = slots / 2 / np.maximum(present.sum(1).double().numpy(), 1)
    return {"r2_avg_degree_slots": r2_score(requested[:, 6], deg)}


def _beyond(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor], info: dict[str, Any],
            run: RunDir) -> dict[str, Any]:
    """Requests beyond the trained range (avg edge length pushed past the maximum): warned, then scored."""
    n = cfg.validate_.beyond_n
    empty = np.zeros((0, 7))
    if n == 0 or "checkpoint" not in info:
        return {"metrics": {}, "requested": empty, "achieved": empty}
    y = dom.requested_designs(cfg, data, torch.arange(n)).clone()
    y[:, 0] = data["y_max"][0] * cfg.validate_.beyond_factor
    graph = cfg.network.kind == "graph"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cond = dom.design_cond(data, y, cfg.data.max_length if graph else None)
    model = dom.load_model(cfg, CheckpointRef(dom.name, info["checkpoint"], info["checkpoint_sha256"], 0, ""))
    if cfg.network.kind == "autoregressive":
        from domains.spiderwebs import ar_stages

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already recorded above
            xs = ar_stages.generate(dom, cfg, model, data, y, ("beyond",))
        return _scored_beyond(dom, cfg, data, xs, None, y, bool(caught))
    from core.samplers import sample
    from core.seeding import PerSampleGenerator, derive_seed
    from core.types import StateDict

    gen = PerSampleGenerator.for_samples(derive_seed(cfg.seed, "beyond"), list(range(n)), "cpu")
    shape = dom.sample_shape(cfg)
    like = (StateDict({k: torch.empty(n, *s) for k, s in shape.items()}) if isinstance(shape, dict)
            else torch.empty(n, *shape))
    space = dom.state_space(cfg)
    x_init = space.project(model.process.prior_like(like, gen), None, cond)
    res = sample(model, model.process, x_init, sampler=cfg.sample.sampler, steps=cfg.sample.steps,
                 schedule=cfg.sample.schedule, schedule_options=cfg.sample.schedule_options, space=space,
                 generator=gen, cond=cond, **cfg.sample.options)
    return _scored_beyond(dom, cfg, data, res.x, cond.get("mask"), y, bool(caught))


def _scored_beyond(dom: SpiderwebsDomain, cfg: SpiderwebsConfig, data: dict[str, torch.Tensor], x: Any,
                   mask: torch.Tensor | None, y: torch.Tensor, warned: bool) -> dict[str, Any]:
    graphs = [d.graph for d in dom.decode(cfg, x, data, mask, y)]
    ach = np.stack([design_vector(g) for g in graphs])
    req = y.double().numpy()
    rel = np.abs(ach[:, 0] - req[:, 0]) / req[:, 0]
    return {"metrics": {"beyond_range_warned": warned, "beyond_mre_avg_edge_length": float(rel.mean()),
                        "beyond_valid_rate": float(np.mean([is_valid(g) for g in graphs]))},
            "requested": req, "achieved": ach}


def _mechanics(cfg: SpiderwebsConfig, gen: list[WebGraph], ref: list[WebGraph]) -> dict[str, float]:
    from domains.spiderwebs.mechanics import pull_test

    mc, n = cfg.validate_.mechanics, cfg.validate_.mechanics_n
    if n == 0:
        return {}
    out = {}
    for label, graphs in (("generated", gen[:n]), ("test", ref[:n])):
        res = []
        for g in graphs:
            try:
                res.append(pull_test(g, youngs=mc.youngs_modulus, radius=mc.strut_radius, density=mc.density,
                                     axis=mc.axis, anchor_fraction=mc.anchor_fraction))
            except ValueError:
                continue
        if res:
            out[f"stiffness_median_{label}"] = float(np.median([r.stiffness for r in res]))
            out[f"mass_mean_{label}"] = float(np.mean([r.mass for r in res]))
            out[f"specific_stiffness_median_{label}"] = float(np.median([r.stiffness / r.mass for r in res]))
    return out


def _fabrication(cfg: SpiderwebsConfig, graphs: list[WebGraph], run: RunDir) -> dict[str, Any]:
    from domains.spiderwebs.export import write_graphml, write_stl

    k = min(cfg.validate_.export_n, len(graphs))
    if k == 0:
        return {}
    out_dir = run.samples / "fabrication"
    out_dir.mkdir(parents=True, exist_ok=True)
    tight = []
    for i in range(k):
        tight.append(write_stl(graphs[i], out_dir / f"web_{i:03d}.stl", cfg.validate_.mechanics.strut_radius)["watertight"])
        write_graphml(graphs[i], out_dir / f"web_{i:03d}.graphml")
    return {"stl_written": k, "stl_watertight_rate": float(np.mean(tight))}


def _assembly(cfg: SpiderwebsConfig, graphs: list[WebGraph], run: RunDir) -> dict[str, Any]:
    from domains.spiderwebs.assembly import assemble, helix
    from domains.spiderwebs.export import write_stl

    k = min(cfg.validate_.assembly_patches, len(graphs))
    if k == 0:
        return {}
    size = float(np.median([np.ptp(g.pos, axis=0).max() for g in graphs[:k]]))
    tol = 0.1 * size
    curves = {"helix": helix(radius=1.5 * size, pitch=0.6 * k * size / cfg.validate_.helix_turns,
                             turns=cfg.validate_.helix_turns),
              "wave": lambda s: np.stack([s * k * size * 0.8, 0.5 * size * np.sin(2 * np.pi * s),
                                          0.3 * size * np.cos(4 * np.pi * s)], -1)}
    out: dict[str, Any] = {}
    pics, titles = [], []
    for name, curve in curves.items():
        g, rep = assemble(graphs[:k], curve, tol)
        atomic_write_json(run.path / f"assembly_{name}.json", rep)
        out[f"assembly_{name}_connected"] = rep["connected"]
        out[f"assembly_{name}_relative_mean_distance"] = rep["relative_mean_distance"]
        write_stl(g, run.samples / f"assembly_{name}.stl", cfg.validate_.mechanics.strut_radius)
        pics.append(g)
        titles.append(f"{name}: {g.n_nodes} nodes, connected={rep['connected']}")
    plots.web_gallery(pics, titles, run.plots / "assembly.png", cols=2)
    return out


def _gallery(cfg: SpiderwebsConfig, data: dict[str, torch.Tensor], gen: list[WebGraph], test: list[WebGraph],
             run: RunDir) -> None:
    k = cfg.validate_.plot_n
    if k == 0:
        return
    webs = [make_graph(data[f"web_{i}_pos"].double().numpy(), data[f"web_{i}_edges"].numpy())
            for i in range(8) if f"web_{i}_pos" in data]
    if webs:
        plots.web_gallery(webs, [f"generated web {i}: {w.n_nodes} nodes" for i, w in enumerate(webs)],
                          run.plots / "webs.png", cols=len(webs))
    plots.web_gallery(test[:k], [f"held-out patch {i}: {g.n_nodes} nodes" for i, g in enumerate(test[:k])],
                      run.plots / "patches.png")
    plots.web_gallery(gen[:k], [f"sample {i}: {g.n_nodes} n / {g.n_edges} e" for i, g in enumerate(gen[:k])],
                      run.plots / "samples.png")
