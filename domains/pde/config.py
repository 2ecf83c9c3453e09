"""Typed configuration of the ``pde`` domain (``data``, ``network`` and ``validate`` sections)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.config import ConfigModel
from domains.config import DomainConfig
from domains.pde.data import PDEData
from domains.pde.state import Task


class PDENetwork(ConfigModel):
    """The core 2-D U-Net over the trajectory's wavelet bands (or the physical array, for the baseline)."""

    representation: Literal["wavelet", "physical"] = "wavelet"
    wavelet: str = Field("bior2.4", description="a PyWavelets discrete wavelet")
    wavelet_tol: float = Field(1e-10, gt=0, description="largest accepted reconstruction error")
    band_scaling: Literal["approx", "global", "per_band"] = Field(
        "global", description="divide each field's four bands by the RMS of its approximation band ('approx': "
                              "coefficients on the scale of the physical values, relative band weights kept), "
                              "all bands by one RMS ('global') or each band by its own RMS ('per_band', "
                              "WDNO's rescalers)")
    conditioning: Literal["broadcast", "known"] = Field(
        "broadcast", description="network conditioning: u0 (and u_T) repeated over time plus f ('broadcast'), "
                                 "or only the known entries and the mask ('known')")
    loss_space: Literal["state", "physical", "physical_unknown"] = Field(
        "state", description="where the denoising loss is measured: on the diffusion state (the wavelet "
                             "coefficients, or the array for the baseline), on the physical array the state decodes "
                             "to ('physical'), or on its entries the task must generate ('physical_unknown': "
                             "not u0, f in simulation or u_T in control, nor the padding)")
    multires_coarse: list[int] = Field(
        default_factory=list, description="multi-resolution training: also train on the training trajectories "
                                          "coarsened 2^k x (k in this list), one grid per batch")
    tasks: list[Task] = Field(default_factory=lambda: ["simulation"], min_length=1,
                              description="conditioning patterns trained (sample i gets tasks[i % len])")
    base_channels: int = Field(32, ge=4)
    channel_mults: list[int] = Field(default_factory=lambda: [1, 2], min_length=1)
    num_res_blocks: int = Field(1, ge=1)
    attention_levels: list[int] = Field(default_factory=list)
    norm_groups: int = Field(8, ge=1)


class PDEValidate(ConfigModel):
    """Baselines trained in the same run, resolutions evaluated, plots."""

    baselines: list[Literal["fno", "physical_diffusion"]] = Field(default_factory=lambda: ["fno", "physical_diffusion"])
    baseline_steps: int | None = Field(None, ge=1, description="training steps of each baseline (default: train.steps)")
    physical_sigma_data: float | None = Field(
        None, gt=0, description="sigma_data of the physical-space diffusion baseline (process and model); None: "
                                "the run's. Each representation has its own best value (see the README)")
    physical_base_channels: int | None = Field(
        None, ge=4, description="U-Net base channels of the physical-space baseline; None: network.base_channels. "
                                "The physical state has 4x the positions of the wavelet state, so half the "
                                "channels gives the same convolution FLOPs per sample")
    ensemble: int = Field(1, ge=1, description="simulation estimate of each diffusion model (wdno and the physical "
                                               "baseline alike): the mean of this many samples (MSE is minimised by "
                                               "the conditional mean); NFE = ensemble x the sampler's")
    ensemble_steps: int | None = Field(None, ge=1, description="sampler steps of each ensemble member (None: "
                                                              "sample.steps)")
    fno_width: int = Field(32, ge=4)
    fno_modes: tuple[int, int] = (8, 8)
    fno_layers: int = Field(4, ge=1)
    fno_lr: float = Field(2e-3, gt=0)
    super_resolution: bool = Field(True, description="evaluate on the 2^k x test sets of data.super_levels")
    coarse_to_fine: list[Literal["interp", "sr"]] = Field(
        default_factory=list, description="extra rows on the finer test grids, generated octave by octave from the "
                                          "1x grid (superres.py): 'interp' bilinear octaves after each 1x diffusion "
                                          "model (<method>_c2f), 'sr' a super-resolution model per diffusion "
                                          "model in its own representation (<method>_sr)")
    sr_steps: int | None = Field(None, ge=1, description="training steps of the super-resolution model "
                                                         "(default: train.steps)")
    sr_train_levels: list[int] = Field(
        default_factory=lambda: [0], min_length=1,
        description="grids the super-resolution pairs come from: 0 the 1x training set (0.5x -> 1x pairs), k >= 1 a "
                    "training set generated on the 2^k x grid (same seeds as the 1x set)")
    sr_n_train: int | None = Field(None, ge=1, description="trajectories of each finer training set (default: "
                                                           "data.n_train)")
    plot_examples: int = Field(3, ge=1)
    external_steps: int = Field(0, ge=0, description="train steps of the external check on the real periodic set "
                                                     "burgers1d_neuralop_res16 (0: skip it)")
    external_n: int = Field(400, ge=1, description="test trajectories of the external check")
    control_n: int = Field(0, ge=0, description="test targets for the control task (0: no control evaluation)")
    control_steps: int | None = Field(
        None, ge=1, description="training steps of the separate control model, trained in validate when 'control' is "
                                "not in network.tasks (u0 and u_T known, as WDNO's control model; default: "
                                "train.steps). A run whose model was trained with 'control' uses that model")
    control_guidance: float = Field(1.0, ge=0, description="scale of the guidance by -J")
    control_schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="guidance weight over the sampler's noise levels: cosine ramp from 0 at the highest "
                              "noise to 1 at the end, or constant")
    control_energy_weight: float = Field(1e-3, ge=0, description="w_E in J + w_E E")
    control_optimizer_steps: int = Field(10, ge=1, description="Adam steps of the solver-gradient baseline")
    control_optimizer_lr: float = Field(0.2, gt=0)
    control_keep_best: bool = Field(True, description="the solver-gradient Adam returns each target's best iterate "
                                                      "by J + w_E E (False: the last iterate)")
    control_refine: bool = Field(True, description="also run the solver-gradient Adam from the diffusion model's "
                                                   "control (row wdno_adam: the generated f as a starting point)")


class PDEConfig(DomainConfig):
    data: PDEData = Field(default_factory=PDEData)  # type: ignore[assignment]
    network: PDENetwork = Field(default_factory=PDENetwork)  # type: ignore[assignment]
    validate_: PDEValidate = Field(default_factory=PDEValidate, alias="validate")  # type: ignore[assignment]

    @model_validator(mode="after")
    def _coarse_grids_fit(self) -> PDEConfig:
        d = self.data
        for k in self.network.multires_coarse:
            if k < 1 or d.nt % 2 ** (k + 1) or (d.nx + 1) % 2 ** (k + 1):
                raise ValueError(f"network.multires_coarse: k={k} needs k >= 1 and data.nt ({d.nt}) and data.nx+1 "
                                 f"({d.nx + 1}) divisible by {2 ** (k + 1)} (the 2^k-coarser grid must keep an even "
                                 f"layout); drop k or change the grid")
        return self

    @model_validator(mode="after")
    def _super_resolution_fits(self) -> PDEConfig:
        v = self.validate_
        if "sr" in v.coarse_to_fine:
            bad = [k for k in v.sr_train_levels if k < 0]
            if bad:
                raise ValueError(f"validate.sr_train_levels {v.sr_train_levels}: levels are >= 0 (0 = the 1x "
                                 "training set)")
            if self.data.nt % 4 or (self.data.nx + 1) % 4:
                raise ValueError(f"validate.coarse_to_fine 'sr' trains on 2x-coarsened pairs: data.nt ({self.data.nt}) "
                                 f"and data.nx+1 ({self.data.nx + 1}) must be divisible by 4")
        return self


__all__ = ["PDEConfig", "PDENetwork", "PDEValidate"]
