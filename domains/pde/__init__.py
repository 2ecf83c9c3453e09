"""``pde``: 1-D viscous Burgers simulation with a wavelet diffusion neural operator (see ``domain.py``)."""
