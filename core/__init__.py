"""diffusci core: domain-agnostic diffusion building blocks.

Time convention: ``t`` in [0, 1], ``t = 0`` is data and ``t = 1`` is the prior.
A *state* is a tensor or a :class:`~core.types.StateDict` of named tensors, batch first.
"""

__version__ = "0.1.0"
