"""``medseg``: 3-D diffusion segmentation with ensemble uncertainty, against a MONAI U-Net baseline."""
