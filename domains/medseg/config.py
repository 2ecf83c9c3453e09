"""Typed config sections of the ``medseg`` domain (unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config import ConfigModel
from domains.config import DomainConfig

Task = Literal["whole_tumour", "regions"]
Layout = Literal["brats2013", "hecktor2022", "totalseg_example"]


class MedsegData(ConfigModel):
    """How volumes are read, resampled, normalised, cropped and cut into training patches."""

    layout: Layout = "brats2013"
    task: Task = Field("whole_tumour", description="whole_tumour: one mask; regions: WT, TC, ET masks")
    spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0)
    orientation: str = Field("RAS", pattern=r"^[LRAPSI]{3}$")
    patch: tuple[int, int, int] = (16, 16, 16)
    patches_per_case: int = Field(64, ge=1)
    pos_fraction: float = Field(0.5, ge=0, le=1, description="share of patches centred on tumour")
    flip_prob: float = Field(0.5, ge=0, le=1)
    intensity_jitter: float = Field(0.1, ge=0, description="random scale/shift of intensities (augmentation)")
    max_cases: int | None = Field(None, ge=1, description="cap on cases per split (smoke runs)")
    cache: bool = True


class MedsegNetwork(ConfigModel):
    """``unet``: the core U-Net (FiLM time conditioning); ``monai_unet``: MONAI's U-Net with the noise
    level as an input channel (much faster on CPU)."""

    arch: Literal["unet", "monai_unet"] = "unet"
    base_channels: int = Field(16, ge=4)
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = Field(1, ge=1)
    norm_groups: int = Field(8, ge=1)
    monai_channels: tuple[int, ...] = (16, 32, 64)
    monai_head: int = Field(0, ge=0, description="channels of a full-resolution head on the MONAI U-Net (0: none)")


class BaselineConfig(ConfigModel):
    """MONAI's deterministic U-Net with Dice + cross-entropy, on the same patches."""

    enabled: bool = True
    channels: tuple[int, ...] = (16, 32, 64)
    steps: int | None = Field(None, ge=1, description="optimizer steps (default: train.steps, equal budget)")
    lr: float = Field(2e-3, gt=0)
    batch_size: int | None = Field(None, ge=1, description="default: train.batch_size")


class InferenceConfig(ConfigModel):
    ensemble: int = Field(4, ge=1, description="diffusion samples per case")
    overlap: float = Field(0.25, ge=0, lt=1)
    sw_batch_size: int = Field(8, ge=1)
    blend: Literal["gaussian", "constant"] = "gaussian"
    split: Literal["train", "validation", "test", "held_out"] = Field(
        "test", description="cases to segment and score; held_out = validation + test")


class MaskLossConfig(ConfigModel):
    """Diffusion training loss (``losses.py``): x0-space MSE plus mask terms on the predicted mask, and
    the options of ``loss.time_sampler`` (e.g. ``{p_mean: 0.0, p_std: 1.2}`` for ``lognormal``)."""

    mse: float = Field(1.0, ge=0, description="weight of the denoising MSE (x0 space; EDM-weighted under edm)")
    bce: float = Field(0.0, ge=0, description="weight of binary cross-entropy on the predicted mask")
    dice: float = Field(0.0, ge=0, description="weight of the soft Dice loss on the predicted mask")
    time_options: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive(self) -> MaskLossConfig:
        if self.mse + self.bce + self.dice <= 0:
            raise ValueError("mask_loss: at least one of mse, bce, dice must be > 0")
        return self


class MedsegValidate(ConfigModel):
    ensemble_sizes: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    overlay_png: bool = True


class MedsegConfig(DomainConfig):
    data: MedsegData = Field(default_factory=MedsegData)  # type: ignore[assignment]
    network: MedsegNetwork = Field(default_factory=MedsegNetwork)  # type: ignore[assignment]
    baseline: BaselineConfig = Field(default_factory=BaselineConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    mask_loss: MaskLossConfig = Field(default_factory=MaskLossConfig)
    validate_: MedsegValidate = Field(default_factory=MedsegValidate, alias="validate")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _check(self) -> MedsegConfig:
        if self.sample.steps > 20:
            raise ValueError(f"sample.steps={self.sample.steps}: medseg samples with <= 20 steps (few-step sampler)")
        if self.sample.shards != 1:
            raise ValueError("medseg samples whole volumes per case; set sample.shards=1")
        if self.loss.weighting != "none":
            raise ValueError(f"loss.weighting={self.loss.weighting!r}: medseg trains with its mask loss (x0-space "
                             "MSE, EDM-weighted under edm preconditioning); set loss.weighting=none")
        n = self.network
        levels = len(n.channel_mults) if n.arch == "unet" else len(n.monai_channels)
        bad = [p for p in self.data.patch if p % 2 ** (levels - 1)]
        if bad:
            raise ValueError(f"data.patch {self.data.patch} must be multiples of {2 ** (levels - 1)} "
                             f"for {levels} U-Net levels")
        return self
