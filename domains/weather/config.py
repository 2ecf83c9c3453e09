"""Typed config of the weather domain (unknown keys are errors; choices are Literals)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
    scale: float = Field(1.0, ge=0)
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
    ablation: bool = Field(False, description="also sample with plain conditioning (guidance none) and score it")
    plot_case: int = Field(0, ge=0)


class WeatherConfig(DomainConfig):
    data: WeatherData = Field(default_factory=WeatherData)  # type: ignore[assignment]
    network: WeatherNetwork = Field(default_factory=WeatherNetwork)  # type: ignore[assignment]
    ensemble: WeatherEnsemble = Field(default_factory=WeatherEnsemble)
    validate_: WeatherValidate = Field(default_factory=WeatherValidate, alias="validate")  # type: ignore[assignment]
