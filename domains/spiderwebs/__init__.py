"""Spider webs: conditional diffusion of 3D bio-inspired web graphs (Lu, Lee & Buehler, PNAS 2023)."""
