"""``toy``: a 2-D Gaussian-mixture domain, the reference example for domain authors.

It exercises every stage with real work and stays small enough for CPU smoke runs: data are drawn
from :class:`core.analytic.GaussianMixture` (a seeded generator, catalog entry ``gmm2d``), the
network is core's MLP, samples are written as CSV, and validation scores the samples against the
*true* distribution (exact log-likelihood, sliced Wasserstein and MMD to fresh draws), then compares
several samplers on the trained model (distance vs NFE) with a picture.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from pydantic import Field
from torch import nn

from core.analytic import GaussianMixture
from core.catalog import CatalogEntry
from core.config import ConfigModel
from core.metrics import mmd_rbf, sliced_wasserstein
from core.networks import MLPDenoiserNet
from core.provenance import RunDir, atomic_write_json
from core.seeding import make_generator
from core.types import State
from domains.base import DiffusionDomain
from domains.config import DomainConfig
from domains.toy import plots


class ToyData(ConfigModel):
    n_train: int = Field(20000, ge=16)
    components: int = Field(8, ge=1)
    radius: float = Field(2.0, gt=0)
    std: float = Field(0.2, gt=0)


class ToyNetwork(ConfigModel):
    hidden: int = Field(128, ge=8)
    depth: int = Field(3, ge=1)
    emb_dim: int = Field(64, ge=8)


class ToyValidate(ConfigModel):
    n_ref: int = Field(4000, ge=100)
    compare_samplers: list[str] = Field(default_factory=lambda: ["ddpm", "euler_maruyama", "ode_heun", "dpmpp_2m"])
    compare_steps: list[int] = Field(default_factory=lambda: [5, 10, 25])
    compare_n: int = Field(1000, ge=100)


class ToyConfig(DomainConfig):
    data: ToyData = Field(default_factory=ToyData)  # type: ignore[assignment]
    network: ToyNetwork = Field(default_factory=ToyNetwork)  # type: ignore[assignment]
    validate_: ToyValidate = Field(default_factory=ToyValidate, alias="validate")  # type: ignore[assignment]


class ToyDomain(DiffusionDomain):
    name = "toy"
    config_cls = ToyConfig

    def mixture(self, cfg: ToyConfig) -> GaussianMixture:
        return GaussianMixture.ring2d(cfg.data.components, cfg.data.radius, cfg.data.std)

    def prepare(self, cfg: ToyConfig, entry: CatalogEntry) -> dict[str, torch.Tensor]:
        from core.seeding import derive_seed

        gmm = self.mixture(cfg)
        train = gmm.sample(cfg.data.n_train, make_generator(derive_seed(cfg.seed, "data", "train")))
        test = gmm.sample(cfg.validate_.n_ref, make_generator(derive_seed(cfg.seed, "data", "test")))
        return {"train": train, "test": test}

    def training_data(self, cfg: ToyConfig, data: dict[str, torch.Tensor]) -> tuple[State, Any]:
        return data["train"], None

    def build_network(self, cfg: ToyConfig) -> nn.Module:
        n = cfg.network
        return MLPDenoiserNet(2, hidden=n.hidden, depth=n.depth, emb_dim=n.emb_dim)

    def sample_shape(self, cfg: ToyConfig) -> tuple[int, ...]:
        return (2,)

    def write_samples(self, cfg: ToyConfig, x: State, run: RunDir) -> list[Path]:
        path = run.samples / "samples.csv"
        tmp = path.with_name(".samples.csv.tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["x", "y"])
            w.writerows(x.tolist())  # type: ignore[union-attr]
        tmp.replace(path)
        return [path]

    def score_external(self, cfg: ToyConfig, path: Path, out_dir: Path) -> dict[str, Any]:
        """Score points from a CSV with columns ``x, y`` (the toy's own sample format) against the mixture."""
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows or [c.strip() for c in rows[0]] != ["x", "y"]:
            raise ValueError(f"{path}: expected a CSV with header 'x,y' (one 2-D point per row)")
        try:
            x = torch.tensor([[float(a), float(b)] for a, b in rows[1:]], dtype=torch.float32)
        except ValueError as exc:
            raise ValueError(f"{path}: a row is not two numbers ({exc})") from None
        if x.shape[0] < 2 or not torch.isfinite(x).all():
            raise ValueError(f"{path}: need at least 2 finite points, got {x.shape[0]} rows")
        ref = self.prepare(cfg, self.entry(cfg))["test"]
        metrics: dict[str, Any] = dict(self.scores(cfg, x, ref), n=int(x.shape[0]))
        atomic_write_json(out_dir / "metrics.json", metrics)
        return metrics

    def scores(self, cfg: ToyConfig, x: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
        gmm = self.mixture(cfg)
        gen = make_generator(0)
        return {
            "log_likelihood": float(gmm.log_prob(x).mean()),
            "sliced_wasserstein": float(sliced_wasserstein(x, ref, n_proj=256, generator=gen)),
            "mmd": float(mmd_rbf(x, ref)),
            "mean_error": float((x.double().mean(0) - gmm.mean()).norm()),
        }

    def evaluate(self, cfg: ToyConfig, x: State, data: dict[str, torch.Tensor], run: RunDir,
                 info: dict[str, Any]) -> dict[str, Any]:
        assert isinstance(x, torch.Tensor)
        ref = data["test"]
        metrics: dict[str, Any] = self.scores(cfg, x, ref)
        metrics["true_log_likelihood"] = float(self.mixture(cfg).log_prob(ref).mean())
        metrics["n"] = int(x.shape[0])
        metrics["nfe"] = int(info.get("nfe", 0))
        table = self.compare_samplers(cfg, info, ref, run)
        atomic_write_json(run.path / "sampler_comparison.json", table)
        (run.path / "sampler_comparison.md").write_text(plots.comparison_markdown(table))
        plots.sample_scatter(x, ref, run.plots / "samples.png")
        return metrics

    def compare_samplers(self, cfg: ToyConfig, info: dict[str, Any], ref: torch.Tensor, run: RunDir) -> list[dict[str, Any]]:
        """Sample the trained model with several samplers and step counts: distance to truth vs NFE."""
        from domains.refs import CheckpointRef

        ckpt = CheckpointRef(self.name, info["checkpoint"], info["checkpoint_sha256"], 0, "")
        model = self.load_model(cfg, ckpt)
        rows, grids = [], {}
        v = cfg.validate_
        for name in v.compare_samplers:
            for steps in v.compare_steps:
                c = cfg.model_copy(update={"sample": cfg.sample.model_copy(
                    update={"sampler": name, "steps": steps, "n": v.compare_n, "batch_size": v.compare_n})})
                x, nfe = self.generate(c, model, range(v.compare_n), progress=False)
                rows.append({"sampler": name, "steps": steps, "nfe": nfe, **self.scores(cfg, x, ref)})
                grids[(name, steps)] = x
        plots.sampler_grid(grids, ref, run.plots / "samplers.png")
        return rows

