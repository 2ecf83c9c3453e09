"""The Prefect flows and the CLI on the embedded (ephemeral) engine, with the toy domain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.domains.toy_settings import TINY

pytestmark = pytest.mark.prefect
runner = CliRunner()


def _sets(extra: list[str] = ()) -> list[str]:
    args: list[str] = []
    for o in [*TINY, *extra]:
        args += ["--set", o]
    return args


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


def _runs(root: Path) -> list[Path]:
    return sorted((root / "toy").glob("2*"))


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def first_run(runs_root: Path) -> Path:
    res = _invoke("run", "toy", "--runs-root", str(runs_root), *_sets())
    assert res.exit_code == 0, res.output
    assert "diffusci summary" in res.output and "completed" in res.output
    return _runs(runs_root)[-1]


def test_flow_run_writes_record_with_flow_run_id_and_artifacts(first_run: Path) -> None:
    record = json.loads((first_run / "record.json").read_text())
    assert record["status"] == "completed"
    assert record["flow_run_id"]
    assert all(record["stages"][s]["status"] == "completed" for s in ("ingest", "train", "sample", "validate"))
    assert record["stages"]["train"]["cached"] is False
    from prefect.client.orchestration import get_client

    async def artifact_keys() -> list[str]:
        async with get_client() as client:
            return [a.key for a in await client.read_artifacts() if a.key]

    import asyncio

    keys = asyncio.run(artifact_keys())
    assert any(k.endswith("-metrics") and first_run.name.lower() in k for k in keys)
    assert any("img-samples" in k for k in keys)


def test_unchanged_rerun_reuses_ingest_and_training(runs_root: Path, first_run: Path) -> None:
    res = _invoke("run", "toy", "--runs-root", str(runs_root), *_sets())
    assert res.exit_code == 0, res.output
    second = _runs(runs_root)[-1]
    assert second != first_run
    record = json.loads((second / "record.json").read_text())
    assert record["stages"]["ingest"]["cached"] is True
    assert record["stages"]["train"]["cached"] is True
    refs1 = json.loads((first_run / "refs.json").read_text())
    refs2 = json.loads((second / "refs.json").read_text())
    assert refs2["train"]["path"] == refs1["train"]["path"]
    assert refs2["sample"]["sha256"] == refs1["sample"]["sha256"]  # same checkpoint, same seeds


def test_force_retrains(runs_root: Path, first_run: Path) -> None:
    res = _invoke("run", "toy", "--force", "--runs-root", str(runs_root), *_sets())
    assert res.exit_code == 0, res.output
    record = json.loads((_runs(runs_root)[-1] / "record.json").read_text())
    assert record["stages"]["train"]["cached"] is False


def test_reproduce_gives_identical_samples(first_run: Path, runs_root: Path) -> None:
    res = _invoke("reproduce", str(first_run), "--runs-root", str(runs_root / "repro"))
    assert res.exit_code == 0, res.output
    assert "samples identical: True" in res.output


def test_sample_and_validate_commands(first_run: Path) -> None:
    res = _invoke("sample", str(first_run), "--n", "30", "--sampler", "ddim", "--steps", "4")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["n"] == 30 and out["nfe"] == 5 and Path(out["samples"]).is_file()
    res = _invoke("validate", str(first_run))
    assert res.exit_code == 0, res.output
    assert "sliced_wasserstein" in res.output


def test_sample_command_with_overrides_records_and_validates(first_run: Path) -> None:
    res = _invoke("sample", str(first_run), "--n", "40", "--set", "sample.sampler=ode_heun", "--set", "sample.steps=3",
                  "--validate")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    folder = Path(out["run_dir"])
    assert folder.parent == first_run / "resamples" and out["n"] == 40
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "completed" and record["parent_run"] == str(first_run.resolve())
    assert record["overrides"] == {"sample.n": 40, "sample.sampler": "ode_heun", "sample.steps": 3}
    assert {s: record["stages"][s]["status"] for s in ("sample", "validate")} == {"sample": "completed",
                                                                                  "validate": "completed"}
    cfg = (folder / "config.yaml").read_text()
    assert "sampler: ode_heun" in cfg and (folder / "env.json").is_file()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["n"] == 40 and metrics["sliced_wasserstein"] == out["metrics"]["sliced_wasserstein"]
    # settings that define the trained model are refused, naming the key and what to do instead
    res = _invoke("sample", str(first_run), "--set", "train.steps=5")
    assert res.exit_code != 0 and "train.steps" in res.output and "new run" in res.output
    res = _invoke("sample", str(first_run), "--set", "sample.no_such_key=1")
    assert res.exit_code != 0 and "no_such_key" in res.output


def test_resample_sweep_benchmark_tabulates_each_variant(first_run: Path, tmp_path: Path, monkeypatch) -> None:
    import bench.resample_sweep as rs

    monkeypatch.setattr(rs, "RESULTS", tmp_path)
    res = rs.main([str(first_run), "--n", "24", "--name", "sweep", "--metrics", "sliced_wasserstein",
                   "--variant", "sample.sampler=ddim sample.steps=2", "--variant", "sample.steps=6"])
    assert [r["variant"] for r in res["rows"]] == ["sample.sampler=ddim sample.steps=2", "sample.steps=6"]
    assert all(isinstance(r["sliced_wasserstein"], float) for r in res["rows"]) and res["n"] == 24
    assert res["rows"][0]["nfe"] == 3 and res["rows"][0]["sliced_wasserstein"] != res["rows"][1]["sliced_wasserstein"]
    md = (tmp_path / "sweep.md").read_text()
    assert "| `sample.steps=6` |" in md and (tmp_path / "sweep.json").is_file()
    assert str(first_run) not in md and f"Run `runs/{first_run.parent.name}/{first_run.name}`" in md
    assert all((first_run / Path(r["resample"]).relative_to(res["run"]) / "record.json").is_file() for r in res["rows"])
    with pytest.raises(KeyError, match="no_such_metric"):
        rs.main([str(first_run), "--n", "8", "--name", "bad", "--metrics", "no_such_metric"])


def test_training_curve_scores_every_kept_checkpoint(first_run: Path, tmp_path: Path) -> None:
    import bench.training_curve as tc
    from core.training.checkpoint import read_meta
    from domains.pipeline import train_checkpoints

    kept = train_checkpoints(first_run)
    assert [p.name for p in kept] == ["step_000020", "step_000040"]  # TINY: 40 steps, a checkpoint every 20
    res = tc.main([str(first_run), "--n", "64", "--name", "curve", "--out", str(tmp_path),
                   "--metrics", "sliced_wasserstein"])
    rows = res["rows"]
    assert [r["step"] for r in rows] == [20, 40]
    assert 0 < rows[0]["train_seconds"] < rows[1]["train_seconds"]  # cumulative wall time inside training
    assert rows[1]["train_seconds"] == read_meta(kept[1])["train_seconds"] and rows[0]["device"].startswith("cpu")
    assert rows[0]["sliced_wasserstein"] != rows[1]["sliced_wasserstein"]  # different weights, same seeds
    assert (tmp_path / "curve.png").stat().st_size > 0 and "| step_000020 | 20 |" in (tmp_path / "curve.md").read_text()
    # each row is a resample folder whose record names the checkpoint it used; results name it by its place
    # under the runs root (runs/<domain>/<run-id>/...), not by this machine's directories
    under = Path("runs", first_run.parent.name, first_run.name)
    assert res["run"] == str(under) and Path(rows[0]["resample"]).parts[:4] == (*under.parts, "resamples")
    record = json.loads((first_run / Path(rows[0]["resample"]).relative_to(under) / "record.json").read_text())
    assert record["checkpoint"]["path"] == str(kept[0]) and record["checkpoint"]["step"] == 20


def test_sample_from_an_earlier_checkpoint_and_a_clear_error_for_one_not_kept(first_run: Path) -> None:
    res = _invoke("sample", str(first_run), "--n", "16", "--checkpoint", "step_000020")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert json.loads((Path(out["run_dir"]) / "record.json").read_text())["checkpoint"]["step"] == 20
    res = _invoke("sample", str(first_run), "--n", "16", "--checkpoint", "step_000010")
    assert res.exit_code != 0 and "step_000010" in res.output and "step_000040" in res.output


def test_validate_scores_an_external_sample_file(first_run: Path, tmp_path: Path) -> None:
    runs_root = tmp_path / "scoring"
    ours = (first_run / "samples" / "samples.csv").read_text()
    ext = tmp_path / "other_model.csv"
    ext.write_text(ours)
    res = _invoke("validate", "--domain", "toy", "--samples", str(ext), *_sets(), "--runs-root", str(runs_root))
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    run = Path(out["run_dir"])
    record = json.loads((run / "record.json").read_text())
    assert record["status"] == "completed"
    assert {s: record["stages"][s]["status"] for s in ("ingest", "train", "sample", "validate")} == {
        "ingest": "skipped", "train": "skipped", "sample": "skipped", "validate": "completed"}
    invocation = json.loads((run / "invocation.json").read_text())
    assert invocation["external_samples"]["path"] == str(ext.resolve())
    assert len(invocation["external_samples"]["sha256"]) == 64
    # the same points score the same as the run's own validation
    own = json.loads((first_run / "metrics.json").read_text())
    ext_metrics = json.loads((run / "metrics.json").read_text())
    assert ext_metrics["n"] == own["n"]
    assert ext_metrics["sliced_wasserstein"] == pytest.approx(own["sliced_wasserstein"], rel=1e-5)
    # a file in the wrong format names the file and the format
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    res = _invoke("validate", "--domain", "toy", "--samples", str(bad), *_sets(), "--runs-root", str(runs_root))
    assert res.exit_code == 2 and "header 'x,y'" in " ".join(res.output.split())
    res = _invoke("validate", "--samples", str(ext))
    assert res.exit_code == 2 and "--domain" in res.output


@pytest.mark.parametrize("args, message", [
    (["run", "nope"], "unknown domain 'nope'; valid choices"),
    (["run", "toy", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "toy", "--set", "train.stepz=3"], "unknown config key 'train.stepz'"),
    (["run", "toy", "--set", "train.steps=abc"], "train.steps"),
    (["run", "toy", "--device", "tpu"], "valid choices: auto, cpu, cuda"),
    (["run", "toy", "--runner", "spark"], "unknown task runner 'spark'"),
])
def test_bad_input_is_reported_with_choices(args: list[str], message: str) -> None:
    res = _invoke(*args)
    assert res.exit_code == 2
    assert message in " ".join(res.output.split())


def test_list_and_catalog_commands() -> None:
    res = _invoke("list")
    assert res.exit_code == 0 and "toy" in res.output and "gmm2d" in res.output
    res = _invoke("catalog", "list")
    assert res.exit_code == 0 and "gmm2d" in res.output


def test_catalog_verify_reports_missing_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFUSCI_DATA", str(tmp_path))
    res = _invoke("catalog", "verify", "grid")
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "FAILED" in text and "grid" in text and "diffusci catalog fetch grid" in text


def test_catalog_verify_lists_external_datasets_without_failing_on_them() -> None:
    res = _invoke("catalog", "verify", "hecktor2022")
    assert res.exit_code == 1 and "not mirrored" in " ".join(res.output.split())
    res = _invoke("catalog", "verify")  # every entry: the shared data verifies, external ones are listed
    text = " ".join(res.output.split())
    assert "external hecktor2022" in text and "external spiderwebs_paper" in text
    from core.catalog import data_root

    if data_root().is_dir():
        assert res.exit_code == 0, res.output
