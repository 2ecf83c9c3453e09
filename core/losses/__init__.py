"""Training losses: denoising score matching in every parameterisation, flow matching, time samplers
and weightings."""

from core.losses.denoising import DenoisingLoss, flow_matching_loss
from core.losses.time_sampling import TIME_SAMPLERS, make_time_sampler
from core.losses.weighting import WEIGHTINGS

__all__ = ["TIME_SAMPLERS", "WEIGHTINGS", "DenoisingLoss", "flow_matching_loss", "make_time_sampler"]
