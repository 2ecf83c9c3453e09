"""Tests for core.config: presets, --set overrides, error messages, hashing, YAML round trip."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any, Literal

import pytest
from pydantic import Field

from core.config import (
    ConfigError,
    ConfigModel,
    apply_overrides,
    config_hash,
    from_yaml,
    load_config,
    parse_override,
    to_yaml,
)


class Precision(StrEnum):
    fp32 = "fp32"
    bf16 = "bf16"


class Train(ConfigModel):
    steps: int = 10
    lr: float = 1e-3
    ema: float | None = None
    precision: Precision = Precision.fp32


class Sampler(ConfigModel):
    name: Literal["euler", "heun", "dpmpp_2m"] = "euler"
    steps: int = 20


class Experiment(ConfigModel):
    name: str
    seed: int = 0
    train: Train = Field(default_factory=Train)
    sampler: Sampler = Field(default_factory=Sampler)
    shape: tuple[int, int] = (2, 2)
    extra: dict[str, Any] = Field(default_factory=dict)


@pytest.fixture
def preset(tmp_path):
    path = tmp_path / "smoke.yaml"
    path.write_text("name: smoke\ntrain:\n  steps: 5\n  lr: 0.01\n")
    return path


def test_load_preset_and_overrides(preset):
    cfg = load_config(
        Experiment, preset,
        ["train.steps=100", "sampler.name=dpmpp_2m", "train.lr=1e-4", "shape=[3, 4]", "train.ema=0.999",
         "train.precision=bf16", "extra.model.width=64"],
    )
    assert cfg.train.steps == 100 and isinstance(cfg.train.steps, int)
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.sampler.name == "dpmpp_2m" and cfg.sampler.steps == 20
    assert cfg.shape == (3, 4) and cfg.train.ema == 0.999 and cfg.train.precision is Precision.bf16
    assert cfg.extra == {"model": {"width": 64}}
    assert cfg.name == "smoke"


def test_override_can_supply_required_key():
    assert load_config(Experiment, None, ["name=cli"]).name == "cli"


def test_unknown_override_key_lists_valid_keys(preset):
    with pytest.raises(ConfigError) as info:
        load_config(Experiment, preset, ["train.stepz=3"])
    assert str(info.value) == (
        "unknown config key 'train.stepz'; valid keys under 'train': steps, lr, ema, precision"
    )


def test_unknown_top_level_override_key():
    with pytest.raises(ConfigError, match="unknown config key 'trian.steps'; valid keys at the top level: name, seed"):
        load_config(Experiment, {"name": "x"}, ["trian.steps=3"])


def test_override_type_error_names_key_and_type(preset):
    with pytest.raises(ConfigError) as info:
        load_config(Experiment, preset, ["train.steps=abc"])
    msg = str(info.value)
    assert "'train.steps'" in msg and "expected int" in msg and "'abc'" in msg
    assert str(preset) in msg


def test_choice_error_lists_choices():
    with pytest.raises(ConfigError, match="'sampler.name': expected one of 'euler', 'heun', 'dpmpp_2m'"):
        load_config(Experiment, {"name": "x"}, ["sampler.name=rk45"])
    with pytest.raises(ConfigError, match="expected one of 'fp32', 'bf16'"):
        load_config(Experiment, {"name": "x"}, ["train.precision=fp8"])


def test_optional_type_named():
    with pytest.raises(ConfigError, match=re.escape("'train.ema': expected float | None, got [1]")):
        load_config(Experiment, {"name": "x"}, ["train.ema=[1]"])


def test_scalar_has_no_sub_keys():
    with pytest.raises(ConfigError, match="config key 'train.steps' has type int; it has no sub-key 'x'"):
        load_config(Experiment, {"name": "x"}, ["train.steps.x=1"])


def test_unknown_key_in_preset_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: a\ntrain:\n  stepz: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(Experiment, path)
    msg = str(info.value)
    assert str(path) in msg and "unknown key 'train.stepz'; valid keys under 'train': steps, lr" in msg


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'name' \\(expected str\\)"):
        load_config(Experiment, {})


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_override("train.steps")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_override("shape=[1, 2")
    assert parse_override("a.b= 3 ") == ("a.b", 3)
    assert parse_override("name=a=b") == ("name", "a=b")


def test_apply_overrides_does_not_mutate_input():
    data = {"name": "x", "train": {"steps": 1}}
    out = apply_overrides(data, ["train.steps=2", "sampler.steps=7"], Experiment)
    assert data == {"name": "x", "train": {"steps": 1}}
    assert out == {"name": "x", "train": {"steps": 2}, "sampler": {"steps": 7}}


def test_top_level_must_be_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Experiment, path)


# --------------------------------------------------------------------------- hashing and YAML


def test_config_hash_is_canonical_sha256():
    cfg = Experiment(name="x", train=Train(steps=3))
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert config_hash(cfg) == hashlib.sha256(canonical.encode()).hexdigest()


def test_config_hash_stability():
    a = load_config(Experiment, {"name": "x", "seed": 1, "train": {"lr": 0.5, "steps": 2}})
    b = load_config(Experiment, {"train": {"steps": 2, "lr": 0.5}, "seed": 1, "name": "x"})
    assert config_hash(a) == config_hash(b)  # key order does not matter
    assert config_hash(a) == config_hash(a.model_dump())  # model and plain dict agree
    assert config_hash(a) != config_hash(a.model_copy(update={"seed": 2}))
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})


def test_yaml_round_trip():
    cfg = load_config(
        Experiment, {"name": "rt"},
        ["train.lr=1e-10", "train.precision=bf16", "sampler.name=heun", "shape=[5, 6]", "extra.k=[1, 2]"],
    )
    text = to_yaml(cfg)
    back = from_yaml(Experiment, text)
    assert back == cfg and config_hash(back) == config_hash(cfg)
    assert text.index("name:") < text.index("train:")  # field order kept


def test_from_yaml_rejects_unknown_key():
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        from_yaml(Experiment, "name: a\nbogus: 1\n")
