"""What the network predicts, and how that becomes ``x0_hat``."""

from core.parameterization.conversions import PREDICTIONS, eps_from_x0, from_x0, target, to_x0
from core.parameterization.denoiser import PARAMETERIZATIONS, Denoiser
from core.parameterization.preconditioning import edm_coefficients, edm_loss_weight

__all__ = ["PARAMETERIZATIONS", "PREDICTIONS", "Denoiser", "edm_coefficients", "edm_loss_weight",
           "eps_from_x0", "from_x0", "target", "to_x0"]
