"""Tiny overrides that keep toy-domain pipeline tests to a few seconds."""

TINY = [
    "train.steps=40",
    "train.checkpoint_every=20",
    "train.log_every=20",
    "train.batch_size=128",
    "data.n_train=2000",
    "sample.n=200",
    "sample.batch_size=100",
    "sample.steps=8",
    "validate.n_ref=400",
    "validate.compare_samplers=[dpmpp_2m]",
    "validate.compare_steps=[5]",
    "validate.compare_n=200",
]
