"""``weather``: probabilistic radar nowcasting with a conditional diffusion model (see ``domain.py``)."""
