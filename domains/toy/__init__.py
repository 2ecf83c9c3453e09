"""The reference domain: a 2-D Gaussian mixture with a closed-form score (see ``domain.py``)."""
