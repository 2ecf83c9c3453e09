"""The config every diffusion domain shares (domains extend ``data``, ``network`` and ``validate``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from core.config import ConfigModel
from core.losses import TIME_SAMPLERS, WEIGHTINGS
from core.processes import make_process
from core.registry import Registry
from core.samplers import SAMPLERS, SCHEDULES, check_schedule_options
from core.training.trainer import TrainConfig


class ModelConfig(ConfigModel):
    prediction: Literal["eps", "x0", "v", "score", "velocity", "edm"] = "eps"
    sigma_data: float = Field(0.5, gt=0)
    #: feed the network an earlier x0 estimate (core Denoiser self-conditioning); needs a network
    #: that supports it (graphs)
    self_condition: bool = False


def registered(registry: Registry) -> Any:
    """A ``str`` field that must name an entry of ``registry`` (the error lists the valid choices)."""

    def check(v: str) -> str:
        registry.get(v)
        return v

    return Annotated[str, AfterValidator(check)]


class LossConfig(ConfigModel):
    weighting: registered(WEIGHTINGS) = "none"  # type: ignore[valid-type]
    time_sampler: registered(TIME_SAMPLERS) = "uniform"  # type: ignore[valid-type]
    #: share of each batch trained with a first no-grad x0 estimate as self-conditioning input
    self_condition_rate: float = Field(0.5, ge=0, le=1)


class SampleConfig(ConfigModel):
    sampler: registered(SAMPLERS) = "dpmpp_2m"  # type: ignore[valid-type]
    steps: int = Field(20, ge=1)
    schedule: registered(SCHEDULES) = "logsnr"  # type: ignore[valid-type]
    #: options of the step schedule, e.g. ``{rho: 3}`` for ``power`` or ``karras``
    schedule_options: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(1000, ge=1)
    batch_size: int = Field(1000, ge=1)
    use_ema: bool = True
    shards: int = Field(1, ge=1, description="split sampling into this many independent tasks (fan-out)")
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_schedule_options(self) -> SampleConfig:
        check_schedule_options(self.schedule, self.schedule_options)
        return self


class LaunchConfig(ConfigModel):
    """How the train stage is launched: ``nproc_per_node * nnodes > 1`` runs it under ``torchrun``."""

    nproc_per_node: int = Field(1, ge=1)
    nnodes: int = Field(1, ge=1)
    node_rank: int = Field(0, ge=0)
    master_addr: str | None = None
    master_port: int | None = Field(None, ge=1, le=65535)
    rdzv_endpoint: str | None = None

    @model_validator(mode="after")
    def _check_nodes(self) -> LaunchConfig:
        if self.nnodes > 1 and not (self.rdzv_endpoint or self.master_addr):
            raise ValueError("launch.nnodes > 1 needs launch.rdzv_endpoint or launch.master_addr")
        if self.node_rank >= self.nnodes:
            raise ValueError(f"launch.node_rank {self.node_rank} must be below launch.nnodes {self.nnodes}")
        return self


class DomainConfig(ConfigModel):
    """Resolved config of one domain run. Domain subclasses narrow ``data``/``network``/``validate``."""

    domain: str
    dataset: str
    seed: int = 0
    process: dict[str, Any] = Field(default_factory=lambda: {"name": "vp"})
    model: ModelConfig = Field(default_factory=ModelConfig)
    network: dict[str, Any] = Field(default_factory=dict)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    launch: LaunchConfig = Field(default_factory=LaunchConfig)
    data: dict[str, Any] = Field(default_factory=dict)
    validate_: dict[str, Any] = Field(default_factory=dict, alias="validate")

    @field_validator("process")
    @classmethod
    def _p(cls, v: dict[str, Any]) -> dict[str, Any]:
        make_process(v)  # raises with the valid choices
        return v

    def section(self, *names: str) -> dict[str, Any]:
        """The named sections as plain data (for stage-specific hashes)."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {n: dumped[n] for n in names}
