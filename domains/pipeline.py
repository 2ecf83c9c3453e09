"""Run a domain's stages against a run directory — the plain-Python pipeline.

Flows call these functions one per task; they also run without Prefect
(``python -m domains.pipeline toy --preset smoke``), e.g. on a GPU machine with no orchestrator.
Every stage is recorded in the run's ``record.json`` (running/completed/failed, with the error), and
its output reference in ``refs.json``, so a failed stage leaves earlier results and the record intact.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.catalog import entry_checksum
from core.config import validate_config
from core.provenance import RunDir, atomic_write_json
from core.seeding import derive_seed
from domains import get_domain, launch
from domains.base import STAGES, Domain
from domains.config import DomainConfig
from domains.refs import CheckpointRef, DatasetRef, SamplesRef

REF_TYPES = {"ingest": DatasetRef, "train": CheckpointRef, "sample": SamplesRef}


def resolve_config(domain: str, preset: str = "smoke", overrides: Sequence[str] = (), seed: int | None = None,
                   device: str | None = None) -> DomainConfig:
    dom = get_domain(domain)
    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={int(seed)}")
    if device is not None:
        extra.append(f"train.device={device}")
    return dom.load_config(preset, extra)


def start_run(domain: str, cfg: DomainConfig | Mapping[str, Any], *, runs_root: str | None = None,
              flow_run_id: str | None = None, invocation: Mapping[str, Any] | None = None) -> str:
    """Create the run directory with its record: config, seeds, environment, data checksums.

    ``invocation`` (how the run was asked for: preset, overrides, ``force``) is stored beside them."""
    dom = get_domain(domain)
    cfg = _as_config(dom, cfg)
    run = RunDir.create(domain, root=runs_root, flow_run_id=flow_run_id)
    run.write_config(cfg)
    run.write_seeds({"root": cfg.seed, "train": derive_seed(cfg.seed, "train"),
                     "data": derive_seed(cfg.seed, "data"),
                     "sample": "sample k uses derive_seed(root, 'sample', k)"})
    run.write_env({"device_requested": cfg.train.device})
    entry = dom.entry(cfg)
    run.write_data({cfg.dataset: {"entry_checksum": entry_checksum(entry), "url": entry.url,
                                  "files": {f.path: f.sha256 for f in entry.files}}})
    atomic_write_json(run.path / "invocation.json", dict(invocation or {}, domain=domain))
    for stage in STAGES:
        run.mark_stage(stage, "pending")
    return str(run.path)


def _as_config(dom: Domain, cfg: DomainConfig | Mapping[str, Any]) -> DomainConfig:
    if isinstance(cfg, DomainConfig):
        return cfg
    return validate_config(dom.config_cls, cfg, f"{dom.name} config")


def load_run_config(run_path: str | Path) -> tuple[str, DomainConfig]:
    run = RunDir.open(run_path)
    import yaml

    data = yaml.safe_load((run.path / "config.yaml").read_text())
    dom = get_domain(data["domain"])
    return dom.name, _as_config(dom, data)


def run_stage(stage: str, run_path: str, *inputs: Any) -> Any:
    """Run one stage of the run at ``run_path`` (config read from the run), recording its outcome."""
    domain, cfg = load_run_config(run_path)
    dom, run = get_domain(domain), RunDir.open(run_path)
    run.mark_stage(stage, "running")
    t0 = time.perf_counter()
    try:
        if stage == "train" and launch.wants_launch(cfg):  # several processes: torchrun runs dom.train
            result = launch.launch_train(cfg, *inputs, run, rdzv_id=f"diffusci-{dom.stage_hash(cfg, stage)[:16]}")
        else:
            result = getattr(dom, stage)(cfg, *inputs, run)
    except BaseException as exc:
        run.mark_stage(stage, "failed", error=exc)
        raise
    record_result(run_path, stage, result, seconds=time.perf_counter() - t0)
    return result


def shard_bounds(run_path: str) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges splitting the run's ``sample.n`` into ``sample.shards`` parts."""
    _, cfg = load_run_config(run_path)
    n, k = cfg.sample.n, min(cfg.sample.shards, cfg.sample.n)
    edges = [round(i * n / k) for i in range(k + 1)]
    return [(edges[i], edges[i + 1]) for i in range(k)]


def sample_shard(run_path: str, ckpt: CheckpointRef, start: int, stop: int) -> str:
    domain, cfg = load_run_config(run_path)
    return str(get_domain(domain).sample_shard(cfg, ckpt, RunDir.open(run_path), start, stop))


def merge_shards(run_path: str, ckpt: CheckpointRef, shards: Sequence[str]) -> SamplesRef:
    """Merge shard files into the run's sample set and record the sample stage."""
    domain, cfg = load_run_config(run_path)
    run = RunDir.open(run_path)
    try:
        ref = get_domain(domain).merge_shards(cfg, ckpt, run, shards)
    except BaseException as exc:
        run.mark_stage("sample", "failed", error=exc)
        raise
    record_result(run_path, "sample", ref)
    return ref


def mark_running(run_path: str, stage: str) -> None:
    RunDir.open(run_path).mark_stage(stage, "running")


def record_result(run_path: str, stage: str, result: Any, *, cached: bool = False,
                  seconds: float | None = None) -> None:
    """Store a stage's reference in ``refs.json`` and mark it completed (``cached`` when reused)."""
    run = RunDir.open(run_path)
    refs_path = run.path / "refs.json"
    refs = json.loads(refs_path.read_text()) if refs_path.exists() else {}
    refs[stage] = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else result
    atomic_write_json(refs_path, refs)
    info: dict[str, Any] = {"cached": cached}
    if seconds is not None:
        info["seconds"] = round(seconds, 3)
    run.mark_stage(stage, "completed", **info)


def load_ref(run_path: str | Path, stage: str) -> Any:
    refs = json.loads((Path(run_path) / "refs.json").read_text())
    if stage not in refs:
        raise KeyError(f"run {run_path} has no completed '{stage}' stage; run it first")
    data = refs[stage]
    cls = REF_TYPES.get(stage)
    if cls is None:
        return data
    if "files" in data:
        data = dict(data, files=tuple(data["files"]))
    return cls(**data)


def run_pipeline(domain: str, preset: str = "smoke", overrides: Sequence[str] = (), *, seed: int | None = None,
                 device: str | None = None, runs_root: str | None = None, force: bool = False) -> dict[str, Any]:
    """All four stages in sequence, without an orchestrator. Returns the summary."""
    cfg = resolve_config(domain, preset, overrides, seed, device)
    run_path = start_run(domain, cfg, runs_root=runs_root,
                         invocation={"preset": preset, "overrides": list(overrides), "seed": seed, "device": device,
                                     "force": force})
    data = run_stage("ingest", run_path)
    ckpt = run_stage("train", run_path, data)
    samples = run_stage("sample", run_path, ckpt)
    metrics = run_stage("validate", run_path, samples, data)
    return summarise(domain, run_path, metrics)


def score_external(domain: str, samples_path: str | Path, preset: str = "smoke", overrides: Sequence[str] = (), *,
                   runs_root: str | None = None) -> dict[str, Any]:
    """Score a sample file made elsewhere with the domain's validation metrics, in a run directory of its own.

    The record names the file and its sha256; ingest, train and sample are marked ``skipped``."""
    from core.catalog import sha256_file

    path = Path(samples_path)
    if not path.is_file():
        raise FileNotFoundError(f"samples file {path} does not exist; pass the path of the file to score")
    cfg = resolve_config(domain, preset, overrides)
    run_path = start_run(domain, cfg, runs_root=runs_root,
                         invocation={"preset": preset, "overrides": list(overrides),
                                     "external_samples": {"path": str(path.resolve()), "sha256": sha256_file(path)}})
    run = RunDir.open(run_path)
    for stage in ("ingest", "train", "sample"):
        run.mark_stage(stage, "skipped", reason=f"scoring external samples {path.name}")
    run.mark_stage("validate", "running")
    t0 = time.perf_counter()
    try:
        metrics = get_domain(domain).score_external(cfg, path, run.path)
    except BaseException as exc:
        run.mark_stage("validate", "failed", error=exc)
        raise
    record_result(run_path, "validate", metrics, seconds=time.perf_counter() - t0)
    return summarise(domain, run_path, metrics)


def summarise(domain: str, run_path: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
    dom = get_domain(domain)
    return {"domain": domain, "run_dir": run_path, "headline": dom.headline(metrics),
            "status": RunDir.open(run_path).record()["status"]}


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Run a diffusci domain pipeline without Prefect.")
    p.add_argument("domain")
    p.add_argument("--preset", default="smoke")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"])
    p.add_argument("--runs-root")
    p.add_argument("--force", action="store_true", help="train afresh instead of resuming/reusing")
    a = p.parse_args(argv)
    print(json.dumps(run_pipeline(a.domain, a.preset, a.overrides, seed=a.seed, device=a.device,
                                  runs_root=a.runs_root, force=a.force), indent=2))


if __name__ == "__main__":
    main()


RESAMPLE_SECTIONS = ("sample", "validate")


def train_checkpoints(run_path: str | Path) -> list[Path]:
    """The checkpoints the run's training kept (oldest first; ``train.keep_last: null`` keeps them all)."""
    from core.training.checkpoint import list_checkpoints

    link = Path(run_path) / "train_workdir.json"
    if not link.exists():
        raise FileNotFoundError(f"run {run_path} has no train_workdir.json: its train stage has not run")
    return list_checkpoints(json.loads(link.read_text())["path"])


def checkpoint_ref(run_path: str | Path, checkpoint: str) -> CheckpointRef:
    """A reference to one kept training checkpoint of the run (``step_005000``, or a path), verified like the
    run's final one."""
    from core.catalog import sha256_file
    from core.training.checkpoint import read_meta

    final = load_ref(run_path, "train")
    kept = train_checkpoints(run_path)
    path = Path(checkpoint)
    if not path.is_absolute():
        path = next((p for p in kept if p.name == checkpoint), path)
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"checkpoint {checkpoint!r} is not one the run kept; kept: "
                                f"{[p.name for p in kept]} (train.keep_last prunes older ones; null keeps all)")
    return CheckpointRef(final.domain, str(path), sha256_file(path / "model.safetensors"),
                         int(read_meta(path)["step"]), final.config_hash)


def resample(run_path: str, *, n: int | None = None, sampler: str | None = None, steps: int | None = None,
             overrides: Sequence[str] = (), validate: bool = False, checkpoint: str | None = None) -> dict:
    """A new sample set from a finished run's checkpoint, under ``RUN_DIR/resamples/<id>/``.

    ``overrides`` (``key=value``) may change only ``sample.*`` and ``validate.*`` settings: anything else
    would describe a model other than the checkpoint. The folder gets its own config, environment and
    ``record.json`` (naming the parent run and the checkpoint); with ``validate`` the new samples are
    scored with the run's metrics against its ingested data into the folder's ``metrics.json``.
    ``checkpoint`` picks an earlier kept checkpoint (:func:`train_checkpoints`) instead of the final one.
    """
    from core.config import apply_overrides, parse_override

    domain, cfg = load_run_config(run_path)
    dom = get_domain(domain)
    for text in overrides:
        key = parse_override(text)[0]
        if key.split(".")[0] not in RESAMPLE_SECTIONS:
            raise ValueError(f"resample override {key!r}: only sample.* and validate.* settings can change for a "
                             f"trained checkpoint (the rest must match how it was trained); start a new run with "
                             f"`diffusci run {domain} --set {text}` instead")
    data = cfg.model_dump(mode="json", by_alias=True)
    upd = {k: v for k, v in {"n": n, "sampler": sampler, "steps": steps}.items() if v is not None}
    data["sample"] = {**data["sample"], **upd}
    cfg = _as_config(dom, apply_overrides(data, overrides, type(cfg)))
    ckpt = load_ref(run_path, "train") if checkpoint is None else checkpoint_ref(run_path, checkpoint)
    out = RunDir.create(domain, parent=Path(run_path) / "resamples", record_extra={
        "parent_run": str(Path(run_path).resolve()), "checkpoint": dataclasses.asdict(ckpt),
        "overrides": {**{f"sample.{k}": v for k, v in upd.items()}, **dict(parse_override(o) for o in overrides)}})
    out.write_config(cfg)
    out.write_env()
    ref = run_stage("sample", str(out.path), ckpt)
    result: dict[str, Any] = {"run_dir": str(out.path), "samples": ref.path, "files": list(ref.files), "n": ref.n,
                              **ref.info}
    if validate:
        result["metrics"] = run_stage("validate", str(out.path), ref, load_ref(run_path, "ingest"))
    return result


def compare_runs(original: str, reproduced: str) -> dict[str, Any]:
    """Metric differences and whether the raw sample files are byte-identical."""
    a = json.loads((Path(original) / "metrics.json").read_text())
    b = json.loads((Path(reproduced) / "metrics.json").read_text())
    rows = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        diff = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else ("" if va == vb else "changed")
        rows.append((k, va, vb, diff))
    sa, sb = load_ref(original, "sample"), load_ref(reproduced, "sample")
    return {"metrics": rows, "samples_identical": sa.sha256 == sb.sha256}
