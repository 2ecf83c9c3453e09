"""Typed config of the weather domain (unknown keys are errors; choices are Literals)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config import ConfigModel
from domains.config import DomainConfig
from domains.weather.data import WeatherData
from domains.weather.guidance import GuidanceMode


class WeatherNetwork(ConfigModel):
    base_channels: int = Field(32, ge=4)
    channel_mults: list[int] = Field(default_factory=lambda: [1, 2, 2])
    num_res_blocks: int = Field(1, ge=1)
    attention_levels: list[int] = Field(default_factory=list)
    dropout: float = Field(0.0, ge=0, lt=1)
    norm_groups: int = Field(8, ge=1)


class WeatherEnsemble(ConfigModel):
    """The ensemble forecast: members per case and the (CogDPM) guidance used to sample them."""

    members: int = Field(8, ge=1)
    guidance: GuidanceMode = "precision"
    scale: float = Field(1.0, ge=0, description="guidance scale: 1 = plain conditioning, > 1 sharpens the ensemble")
    precision_window: int = Field(4, ge=2)
    precision_eps: float = Field(1e-3, gt=0)
    precision_max_weight: float = Field(4.0, gt=0)


Baseline = Literal["persistence", "extrapolation", "steps"]


class WeatherValidate(ConfigModel):
    thresholds: list[float] = Field(default_factory=lambda: [1.0, 4.0, 8.0], description="CSI thresholds, mm/h")
    fss_threshold: float = Field(1.0, gt=0)
    fss_scales: list[int] = Field(default_factory=lambda: [1, 4, 8])
    baselines: list[Baseline] = Field(default_factory=lambda: ["persistence", "extrapolation", "steps"])
    steps_members: int = Field(8, ge=2)
    ablation: bool = Field(False, description="also sample with plain conditioning (model_plain) and, for precision "
                                              "guidance, uniform guidance at the same scale (model_cfg); score both")
    plot_case: int = Field(0, ge=0)


class WeatherConfig(DomainConfig):
    data: WeatherData = Field(default_factory=WeatherData)  # type: ignore[assignment]
    network: WeatherNetwork = Field(default_factory=WeatherNetwork)  # type: ignore[assignment]
    ensemble: WeatherEnsemble = Field(default_factory=WeatherEnsemble)
    validate_: WeatherValidate = Field(default_factory=WeatherValidate, alias="validate")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _shard_units(self) -> WeatherConfig:
        """The sample set is every test case x member whatever ``sample.n`` says; ``sample.n`` only
        counts the units the pipeline splits into ``sample.shards`` parts, so it is raised to
        ``sample.shards`` (``--set sample.shards=4`` alone fans sampling out into 4 tasks)."""
        if self.sample.n < self.sample.shards:
            self.sample.n = self.sample.shards
        return self
