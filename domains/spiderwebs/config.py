"""Typed config of the spiderwebs domain (unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config import ConfigModel
from domains.config import DomainConfig
from domains.spiderwebs.generator import WebKind


class WebData(ConfigModel):
    kinds: list[WebKind] = Field(default_factory=lambda: ["sheet_tangle", "orb"])
    n_webs: int = Field(40, ge=1)
    patches_per_web: int = Field(50, ge=1)
    min_nodes: int = Field(16, ge=2)
    max_nodes: int = Field(64, ge=2)
    max_length: int = Field(64, ge=2, description="node rows per sample (the paper's max_length)")
    max_neighbors: int = Field(6, ge=1, description="neighbour slots = degree cap")
    slots: Literal["offsets", "ids"] = Field(
        "offsets", description="model-1 slot content: offsets (vector to the neighbour, offsets.py) or ids "
        "(the paper's neighbour numbers as continuous values, layout.py)")
    unit: Literal["edge_length", "global"] = Field(
        "edge_length", description="offset slots: coordinates and offsets of each patch in units of its "
        "(requested) average edge length, or one global unit for all")
    flag_scale: float = Field(1.0, gt=0, description="offset slots: magnitude of the presence and slot-occupancy "
                              "channels (±flag_scale); larger values weigh the discrete structure more in the loss "
                              "and settle it at higher noise levels")
    test_fraction: float = Field(0.1, gt=0, lt=1)

    @model_validator(mode="after")
    def _sizes(self) -> WebData:
        if not self.min_nodes <= self.max_nodes <= self.max_length:
            raise ValueError(f"need min_nodes <= max_nodes <= max_length, got {self.min_nodes}, "
                             f"{self.max_nodes}, {self.max_length}")
        return self


class WebNetwork(ConfigModel):
    kind: Literal["mlp", "unet", "transformer", "graph", "autoregressive"] = Field(
        "mlp", description="model 1 (sparse state): mlp | unet | transformer; model 2 (xyz + adjacency): graph; "
        "model 3 (node by node, autoregressive.py): autoregressive")
    hidden: int = Field(128, ge=8, description="transformer width / MLP hidden size")
    heads: int = Field(4, ge=1, description="transformer attention heads (hidden must be divisible)")
    depth: int = Field(4, ge=1)
    emb_dim: int = Field(128, ge=8)
    base_channels: int = Field(32, ge=8)
    channel_mults: list[int] = Field(default_factory=lambda: [1, 2, 2])
    cond_drop: float = Field(0.1, ge=0, lt=1, description="classifier-free guidance: training drop rate")
    guidance: float = Field(1.5, ge=0, description="CFG scale at sampling (1 = plain conditional)")
    candidates: int = Field(1, ge=1, description="draws per requested design; the one whose decoded design "
                            "vector is closest to the request is kept (metrics.closest_candidate; 1 = plain)")
    temperature: float = Field(1.0, gt=0, description="model 3: sampling temperature (logits / T, mixture "
                               "widths x T)")
    mixtures: int = Field(8, ge=1, description="model 3: Gaussian components of the offset distribution")


class Mechanics(ConfigModel):
    youngs_modulus: float = Field(2000.0, gt=0, description="MPa (printed PLA-like polymer)")
    strut_radius: float = Field(0.5, gt=0, description="mm, in physical web units")
    density: float = Field(1.2e-3, gt=0, description="g/mm^3")
    axis: int = Field(2, ge=0, le=2)
    anchor_fraction: float = Field(0.15, gt=0, lt=0.5)


class WebValidate(ConfigModel):
    decoder: Literal["slots", "geometric"] = Field(
        "geometric", description="slots: neighbour numbers from the slots (the paper); geometric: slot count "
        "as degree, partners = nearest nodes in space")
    symmetry: Literal["union", "mutual"] = "mutual"
    connect: Literal["bridge", "largest"] = "bridge"
    match: bool = Field(True, description="offset slots: degree-preserving matching of slot proposals "
                        "(False: each slot claims the node nearest to its target)")
    reconcile: float = Field(0.1, ge=0, description="offset slots: weight of the generated coordinates when "
                             "re-solving them to follow the matched edges' offsets (0 = keep them)")
    snap_window: int = Field(2, ge=0, description="decode a neighbour slot to the spatially nearest node "
                             "whose number is within this window of the predicted number")
    beyond_n: int = Field(16, ge=0, description="extra requests beyond the trained range")
    beyond_factor: float = Field(1.15, gt=1, description="avg_edge_length request = factor x trained max")
    mechanics_n: int = Field(16, ge=0)
    mechanics: Mechanics = Field(default_factory=Mechanics)
    export_n: int = Field(2, ge=0, description="samples written as STL + GraphML")
    assembly_patches: int = Field(6, ge=0)
    helix_turns: float = Field(1.0, gt=0)
    plot_n: int = Field(8, ge=0)


class SpiderwebsConfig(DomainConfig):
    data: WebData = Field(default_factory=WebData)  # type: ignore[assignment]
    network: WebNetwork = Field(default_factory=WebNetwork)  # type: ignore[assignment]
    validate_: WebValidate = Field(default_factory=WebValidate, alias="validate")  # type: ignore[assignment]
