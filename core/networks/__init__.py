"""Domain-agnostic denoiser networks: ``net(x, t, cond) -> tensor shaped like the target``.

``t`` is diffusion time in ``[0, 1]`` or EDM ``c_noise``; ``cond`` is ``None`` or a dict with optional
``vector``/``labels``/``channels``/``drop`` entries (see :mod:`core.networks.embeddings`).
"""

from core.networks.embeddings import (
    COND_KEYS,
    FourierFeatures,
    SinusoidalEmbedding,
    TimeConditioning,
    batch_time,
    check_cond,
    cond_channels,
    keep_mask,
)
from core.networks.gnn import DenseGCN, DenseGraphScoreNet, GraphMultiHeadAttention  # noqa: F401
from core.networks.mlp import MLPBlock, MLPDenoiserNet
from core.networks.unet import (
    Downsample,
    ResBlock,
    SelfAttention,
    Stage,
    UNet,
    Upsample,
    conv_nd,
    group_norm,
    num_groups,
)

__all__ = [
    "COND_KEYS",
    "Downsample",
    "FourierFeatures",
    "MLPBlock",
    "MLPDenoiserNet",
    "ResBlock",
    "SelfAttention",
    "SinusoidalEmbedding",
    "Stage",
    "TimeConditioning",
    "UNet",
    "Upsample",
    "batch_time",
    "check_cond",
    "cond_channels",
    "conv_nd",
    "group_norm",
    "keep_mask",
    "num_groups",
]
