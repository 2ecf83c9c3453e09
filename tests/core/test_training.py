"""Tests for core.training: loss goes down, exact resume, checkpoints, NaN guard, LR, EMA, DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from core.parameterization import Denoiser
from core.processes import make_process
from core.seeding import make_generator, rand, randn_like
from core.training import (
    EMA,
    TrainConfig,
    Trainer,
    latest_checkpoint,
    load_checkpoint,
    lr_factor,
    tensor_batch_fn,
    unwrap_model,
)
from core.training import checkpoint as checkpoint_module
from core.training.distributed import ModelProxy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors gain nothing from intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class TinyNet(nn.Module):
    """``net(x, t, cond) -> eps_hat`` for 2-D states, with optional dropout."""

    def __init__(self, hidden: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, 2))

    def forward(self, x: Tensor, t: Tensor, cond: object = None) -> Tensor:
        return self.body(torch.cat([x, t[:, None].to(x.dtype)], dim=1))


def make_model(seed: int = 0, dropout: float = 0.0) -> Denoiser:
    torch.manual_seed(seed)
    return Denoiser(TinyNet(dropout=dropout), make_process("vp"), prediction="eps")


def eps_loss(model, x0, cond, generator) -> Tensor:
    t = 1e-3 + (1 - 1e-3) * rand((x0.shape[0],), generator, device=x0.device)
    noise = randn_like(x0, generator)
    return ((model.native(model.process.perturb(x0, t, noise), t, cond) - noise) ** 2).mean(dim=1)


def gaussian_data(n: int = 512) -> Tensor:
    return torch.randn(n, 2, generator=make_generator(7)) * torch.tensor([1.0, 0.2]) + torch.tensor([1.0, -2.0])


def config(**kw) -> TrainConfig:
    base = dict(steps=12, batch_size=16, lr=5e-3, warmup_steps=3, ema_decay=0.9, checkpoint_every=4,
                keep_last=None, log_every=1, device="cpu", seed=11)
    return TrainConfig(**{**base, **kw})


def trainer(cfg: TrainConfig, ckpt: Path | None = None, model: nn.Module | None = None, **kw) -> Trainer:
    data = tensor_batch_fn(gaussian_data(), cfg.batch_size)
    return Trainer(model if model is not None else make_model(), eps_loss, data, cfg, checkpoint_dir=ckpt,
                   progress=False, **kw)


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for (k, v), (k2, v2) in zip(a.module.state_dict().items(), b.module.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    if a.ema is not None:
        assert a.ema.num_updates == b.ema.num_updates
        for k, v in a.ema.shadow.items():
            assert torch.equal(v, b.ema.shadow[k]), f"ema {k}"


# ----------------------------------------------------------------------------------- training


def test_loss_decreases_on_vp_eps_loss():
    cfg = config(steps=300, batch_size=64, lr=1e-2, warmup_steps=10, log_every=30, checkpoint_every=1000)
    seen = []
    result = trainer(cfg, callback=lambda step, m: seen.append((step, m))).fit()
    losses = [loss for _, loss in result.history]
    assert result.step == 300 and len(result.history) == 10 and result.checkpoint is None
    assert losses[-1] < 0.8 * losses[0], losses
    assert [s for s, _ in seen] == [s for s, _ in result.history]
    assert {"loss", "lr", "grad_norm", "samples_per_s"} <= set(seen[-1][1])
    assert seen[-1][1]["samples_per_s"] > 0 and result.wall_time > 0


def test_progress_bar_path_runs(capsys):
    result = Trainer(make_model(), eps_loss, tensor_batch_fn(gaussian_data(), 8),
                     config(steps=3, batch_size=8), progress=True).fit()
    assert result.step == 3 and math.isfinite(result.loss)


@pytest.mark.parametrize("k", [5, 8])
def test_interrupted_and_resumed_is_bit_identical(tmp_path, k):
    """Dropout + grad_accum=2 + warm-up/cosine + EMA: stop at k, resume to 12 == straight to 12."""
    cfg = config(grad_accum=2, schedule_steps=12, min_lr_ratio=0.1)
    straight = trainer(cfg, tmp_path / "a", make_model(dropout=0.2))
    straight.fit()
    first = trainer(cfg.model_copy(update={"steps": k}), tmp_path / "b", make_model(dropout=0.2))
    assert first.fit().step == k
    resumed = trainer(cfg, tmp_path / "b", make_model(seed=99, dropout=0.2), resume=True)
    result = resumed.fit()
    assert result.step == 12 and result.history[0][0] == k
    assert_same_state(straight, resumed)
    # fit(resume_from=...) from one of the straight run's checkpoints, without writing anything
    again = trainer(cfg, None, make_model(seed=5, dropout=0.2))
    again.fit(resume_from=tmp_path / "a" / "step_000004")
    assert_same_state(straight, again)


def test_checkpoints_record_training_seconds_summed_over_resumed_fits(tmp_path, monkeypatch):
    from core.training import trainer as trainer_module
    from core.training.checkpoint import read_meta

    clock = [100.0]  # a fake wall clock: every reading advances it by one second

    def tick() -> float:
        clock[0] += 1.0
        return clock[0]

    monkeypatch.setattr(trainer_module.time, "perf_counter", tick)
    cfg = config(steps=8)
    trainer(cfg.model_copy(update={"steps": 4}), tmp_path).fit()
    first = read_meta(tmp_path / "step_000004")
    assert first["train_seconds"] > 0 and first["device"].startswith("cpu")
    clock[0] += 3600.0  # an hour between the two sessions does not count as training
    trainer(cfg, tmp_path, resume=True).fit()
    t4, t8 = first["train_seconds"], read_meta(tmp_path / "step_000008")["train_seconds"]
    assert t4 < t8 < t4 + 100  # counted on from the resumed checkpoint, without the gap
    assert read_meta(tmp_path / "step_000004")["train_seconds"] == t4  # earlier checkpoints untouched


def test_resume_with_iterable_data(tmp_path):
    batches = [gaussian_data(8 * 6)[i * 8:(i + 1) * 8] for i in range(6)]  # an "epoch" of 6 batches
    cfg = config(steps=10, batch_size=8, checkpoint_every=3, schedule_steps=10)
    straight = Trainer(make_model(), eps_loss, batches, cfg, checkpoint_dir=tmp_path / "a", progress=False)
    straight.fit()
    Trainer(make_model(), eps_loss, batches, cfg.model_copy(update={"steps": 7}),
            checkpoint_dir=tmp_path / "b", progress=False).fit()
    resumed = Trainer(make_model(1), eps_loss, batches, cfg, checkpoint_dir=tmp_path / "b", resume=True,
                      progress=False)
    resumed.fit()
    assert_same_state(straight, resumed)


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    t = trainer(config(steps=2), tmp_path / "none", resume=True)
    assert t.fit().step == 2


# ---------------------------------------------------------------------------------- checkpoints


def test_checkpoint_layout_pruning_and_weights_only_loading(tmp_path):
    root = tmp_path / "checkpoints"
    t = trainer(config(steps=10, checkpoint_every=2, keep_last=2), root, model_config={"hidden": 32})
    result = t.fit()
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000008", "step_000010"]  # no temp dirs
    assert (root / "latest").read_text().strip() == "step_000010"
    assert result.checkpoint == root / "step_000010" == latest_checkpoint(root)
    ckpt = result.checkpoint
    names = {"model.safetensors", "ema.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "meta.json"}
    assert {p.name for p in ckpt.iterdir()} == names
    for name in ("optimizer.pt", "scheduler.pt", "rng.pt"):
        torch.load(ckpt / name, weights_only=True)
    meta = json.loads((ckpt / "meta.json").read_text())
    assert meta["step"] == 10 and meta["model_config"] == {"hidden": 32} and meta["config"]["steps"] == 10
    assert meta["loss"] == pytest.approx(result.loss)
    weights = load_file(ckpt / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in t.module.state_dict().items())
    fresh, ema = make_model(seed=3), EMA(make_model(seed=4), 0.9)
    assert load_checkpoint(root, fresh, ema=ema)["step"] == 10
    assert all(torch.equal(v, fresh.state_dict()[k]) for k, v in t.module.state_dict().items())
    assert ema.num_updates == 10 and all(torch.equal(v, ema.shadow[k]) for k, v in t.ema.shadow.items())


def test_resave_of_same_step_replaces_atomically(tmp_path):
    root = tmp_path / "c"
    t = trainer(config(steps=4, checkpoint_every=4), root)
    t.fit()
    t.fit(resume_from=root / "step_000004")  # already at the end: nothing to do, nothing rewritten
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000004"]
    t._save(0.5)  # an explicit re-save of the same step replaces the directory
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000004"]
    assert json.loads((root / "step_000004" / "meta.json").read_text())["loss"] == 0.5


def test_failed_write_leaves_previous_checkpoint_and_no_temp_dirs(tmp_path, monkeypatch):
    root = tmp_path / "c"
    t = trainer(config(steps=2, checkpoint_every=2), root)
    t.fit()
    before = (root / "step_000002" / "model.safetensors").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", broken)
    t.config = t.config.model_copy(update={"steps": 4})
    with pytest.raises(OSError, match="disk full"):
        t.fit()
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000002"]
    assert (root / "latest").read_text().strip() == "step_000002"
    assert (root / "step_000002" / "model.safetensors").read_bytes() == before


# ------------------------------------------------------------------------------------ NaN guard


def _nan_batch_fn(bad_step: int):
    data = {"x": gaussian_data(), "y": gaussian_data().flip(0)}
    draw = tensor_batch_fn(data, 16)

    def batch_fn(step, generator):
        x0, cond = draw(step, generator)
        if step == bad_step:
            x0["y"][3, 1] = float("nan")
        return x0, cond

    return batch_fn


def _dict_loss(model, x0, cond, generator):
    return ((model(x0["x"]) - x0["y"]) ** 2).mean(dim=1)


def test_nan_in_batch_names_step_and_field_and_keeps_checkpoint(tmp_path):
    root = tmp_path / "ck"
    torch.manual_seed(0)
    t = Trainer(nn.Linear(2, 2), _dict_loss, _nan_batch_fn(5), config(checkpoint_every=2), checkpoint_dir=root,
                progress=False)
    with pytest.raises(FloatingPointError, match=r"step 5: batch x0\['y'\]"):
        t.fit()
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000002", "step_000004"]
    fresh = nn.Linear(2, 2)
    assert load_checkpoint(root, fresh, ema=EMA(fresh, 0.9))["step"] == 4
    assert all(torch.isfinite(p).all() for p in fresh.parameters())


def test_nan_loss_names_step_and_keeps_checkpoint(tmp_path):
    def loss_fn(model, x0, cond, generator):
        out = eps_loss(model, x0, cond, generator)
        return out * float("nan") if next_step[0] == 3 else out

    next_step = [0]
    root = tmp_path / "ck"
    t = trainer(config(checkpoint_every=2), root, callback=lambda s, m: next_step.__setitem__(0, s + 1))
    t.loss_fn = loss_fn
    with pytest.raises(FloatingPointError, match=r"step 3: loss is non-finite"):
        t.fit()
    assert all(torch.isfinite(v).all() for v in t.module.state_dict().values())  # no bad update applied
    fresh = make_model(seed=1)
    assert load_checkpoint(root, fresh)["step"] == 2


def test_nan_gradient_names_parameter():
    def loss_fn(model, x0, cond, generator):
        w = model.net.body[0].weight
        poison = (w - w.detach()).abs().sqrt().sum()  # value 0, gradient NaN (0 * inf)
        return eps_loss(model, x0, cond, generator) + (poison if step_box[0] >= 2 else 0.0)

    step_box = [0]
    t = trainer(config(steps=5), None, callback=lambda s, m: step_box.__setitem__(0, s + 1))
    t.loss_fn = loss_fn
    with pytest.raises(FloatingPointError, match=r"step 2: gradient of parameter 'net\.body\.0\.weight'"):
        t.fit()


# ------------------------------------------------------------------------------------- LR & EMA


def test_warmup_cosine_values():
    f = lambda s: lr_factor(s, warmup_steps=10, total_steps=110, schedule="cosine", min_lr_ratio=0.1)  # noqa: E731
    assert f(0) == pytest.approx(0.1) and f(4) == pytest.approx(0.5) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.1 + 0.9 * 0.5)  # half way through the cosine
    assert f(110) == pytest.approx(0.1) and f(500) == pytest.approx(0.1)
    assert lr_factor(50, warmup_steps=10, total_steps=110, schedule="constant") == 1.0


def test_trainer_uses_the_schedule():
    lrs = {}
    cfg = config(steps=8, warmup_steps=4, lr=1.0e-2, min_lr_ratio=0.0, ema_decay=None)
    trainer(cfg, callback=lambda s, m: lrs.__setitem__(s, m["lr"])).fit()
    expect = {s: 1e-2 * lr_factor(s, warmup_steps=4, total_steps=8) for s in range(8)}
    assert lrs == pytest.approx(expect)
    assert lrs[0] == pytest.approx(2.5e-3) and lrs[4] == pytest.approx(1e-2)


def test_ema_update_formula_hand_computed():
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema, ema_wu = EMA(model, 0.9, warmup=False), EMA(model, 0.9, warmup=True)
    for value in (3.0, 0.0):
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
        ema_wu.update(model)
    assert ema.shadow["weight"].item() == pytest.approx(0.9 * (0.9 * 1 + 0.1 * 3) + 0.1 * 0)  # 1.08
    d0, d1 = 1 / 10, 2 / 11  # (1 + n) / (10 + n) < 0.9 for the first updates
    assert ema_wu.shadow["weight"].item() == pytest.approx(d1 * (d0 * 1 + (1 - d0) * 3))
    with ema.swapped(model):
        assert model.weight.item() == pytest.approx(1.08)
    assert model.weight.item() == 0.0
    other = EMA(nn.Linear(1, 1, bias=False), 0.9, warmup=False)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 2 and torch.equal(other.shadow["weight"], ema.shadow["weight"])


# ------------------------------------------------------------------------------- data & config


def test_tensor_batch_fn_is_a_function_of_seed_and_step():
    data, labels = torch.arange(40.0).reshape(20, 2), torch.arange(20)
    fn = tensor_batch_fn(data, 6, cond={"label": labels, "scale": 2.0})
    (x1, c1), (x2, _) = fn(3, make_generator(5)), fn(3, make_generator(5))
    assert torch.equal(x1, x2) and x1.shape == (6, 2)
    assert torch.equal(c1["label"] * 2.0, x1[:, 0]) and c1["scale"] == 2.0  # rows stay aligned


def test_choice_batch_fn_takes_each_batch_from_one_source_seeded_by_the_step():
    from core.training import choice_batch_fn

    small, big = torch.zeros(10, 2), torch.ones(10, 3)
    fn = choice_batch_fn([tensor_batch_fn(small, 4), tensor_batch_fn(big, 4)])
    shapes = [fn(step, make_generator(step))[0].shape for step in range(40)]
    assert set(shapes) == {(4, 2), (4, 3)}  # both sources are used, never mixed within a batch
    assert [fn(step, make_generator(step))[0].shape for step in range(40)] == shapes  # same seed, same source
    with pytest.raises(ValueError, match="at least one"):
        choice_batch_fn([])


def test_config_validation():
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(stepz=3)
    with pytest.raises(ValueError, match="grad_accum"):
        TrainConfig(batch_size=10, grad_accum=3)
    with pytest.raises(ValueError):
        TrainConfig(lr_schedule="linear")


def test_wrong_batch_size_and_loss_shape_are_reported():
    t = Trainer(make_model(), eps_loss, tensor_batch_fn(gaussian_data(), 8), config(batch_size=16),
                progress=False)
    with pytest.raises(ValueError, match="16"):
        t.fit()
    t = trainer(config(steps=1))
    t.loss_fn = lambda m, x0, c, g: eps_loss(m, x0, c, g).mean()
    with pytest.raises(ValueError, match="per-sample"):
        t.fit()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compile_flag_wraps_but_checkpoints_the_plain_module(tmp_path):
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile unavailable")
    model = make_model()
    t = trainer(config(compile=True), tmp_path, model)
    assert isinstance(t.model, ModelProxy) and unwrap_model(t.model) is model
    assert t.model.process is model.process  # attributes pass through
    assert not any(k.startswith("_orig_mod") for k in unwrap_model(t.model).state_dict())


# ----------------------------------------------------------------------------------------- DDP


def test_ddp_two_processes_match_single_process(tmp_path):
    from tests.core import ddp_script

    out, ckpt = tmp_path / "ddp.safetensors", tmp_path / "ddp_ckpt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(ddp_script.__file__)), str(out), str(ckpt)]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = load_file(out)
    single = ddp_script.weights(ddp_script.train())
    assert ddp.keys() == single.keys()
    for k, v in single.items():
        torch.testing.assert_close(ddp[k], v, atol=1e-5, rtol=0, msg=k)
    assert sorted(p.name for p in ckpt.iterdir()) == ["latest", "step_000010", "step_000020"]
    rng = torch.load(ckpt / "step_000020" / "rng.pt", weights_only=True)
    assert len(rng["ranks"]) == 2
    assert json.loads((ckpt / "step_000020" / "meta.json").read_text())["world_size"] == 2
