"""The ``diffusci`` command line: list, run, sample, validate, reproduce, serve, catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reproducible diffusion pipelines for science.")
catalog_app = typer.Typer(no_args_is_help=True, help="Datasets: list, verify checksums, fetch.")
app.add_typer(catalog_app, name="catalog")
console = Console()
MAX_HEADLINE = 6

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override a config key: key=value (repeatable)")]


def _fail(exc: BaseException) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(2)


@app.command("list")
def list_cmd() -> None:
    """Domains with their presets, and the datasets in the catalogs."""
    from core.catalog import catalog_table, load_catalogs
    from domains import domain_names, get_domain

    t = Table(title="domains")
    t.add_column("domain")
    t.add_column("presets")
    for name in domain_names():
        t.add_row(name, ", ".join(get_domain(name).presets()))
    console.print(t)
    _print_rows("datasets", catalog_table(load_catalogs().values()))


def _print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    t = Table(title=title)
    for col in (rows[0] if rows else {}):
        t.add_column(col)
    for r in rows:
        t.add_row(*[str(v) for v in r.values()])
    console.print(t)


@app.command()
def run(
    domain: Annotated[str, typer.Argument(help="a domain name, or 'all'")],
    preset: Annotated[str, typer.Option(help="smoke | default | full")] = "smoke",
    set_: SetOpt = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda | auto")] = None,
    seed: Annotated[int | None, typer.Option(help="root seed")] = None,
    force: Annotated[bool, typer.Option(help="ignore cached ingest/training results")] = False,
    runner: Annotated[str, typer.Option(help="task runner for fan-out: thread | dask | ray")] = "thread",
    address: Annotated[str | None, typer.Option(help="Dask/Ray cluster address")] = None,
    concurrent: Annotated[bool, typer.Option(help="run several domains at once (with 'all')")] = False,
    runs_root: Annotated[str | None, typer.Option(help="where run folders go (default runs/ or $DIFFUSCI_RUNS)")] = None,
) -> None:
    """Run a domain's pipeline (ingest → train → sample → validate) as a Prefect flow."""
    from domains import domain_names, get_domain

    try:
        if device not in (None, "cpu", "cuda", "auto"):
            raise ValueError(f"unknown device {device!r}; valid choices: auto, cpu, cuda")
        names = domain_names() if domain == "all" else [domain]
        for name in names:  # validate everything before starting anything
            get_domain(name).load_config(preset, list(set_ or []))
        from flows.all_domains import all_domains_flow, task_runner
        from flows.domain_flow import domain_flow

        tr = task_runner(runner, address)
        if domain == "all":
            results = all_domains_flow.with_options(task_runner=tr)(
                names, preset, list(set_ or []), seed, device, force, runs_root, concurrent)
        else:
            results = [domain_flow.with_options(task_runner=tr)(domain, preset, list(set_ or []), seed, device,
                                                                force, runs_root)]
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError) as exc:
        _fail(exc)
    print_summary(results)


def print_summary(results: list[dict[str, Any]]) -> None:
    t = Table(title="diffusci summary")
    for col in ("domain", "status", "headline metrics", "run directory"):
        t.add_column(col, overflow="fold")
    for r in results:
        items = list(r["headline"].items())[:MAX_HEADLINE]  # the rest is in the run's metrics.json
        head = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)
        t.add_row(r["domain"], r["status"], head, r["run_dir"])
    console.print(t)


@app.command()
def sample(
    run_dir: Path,
    n: Annotated[int | None, typer.Option(help="number of samples")] = None,
    sampler: Annotated[str | None, typer.Option(help="sampler name")] = None,
    steps: Annotated[int | None, typer.Option(help="sampler steps")] = None,
    overrides: SetOpt = None,
    validate: Annotated[bool, typer.Option("--validate", help="also score the new samples with the run's "
                                                              "metrics (metrics.json in the new folder)")] = False,
    checkpoint: Annotated[str | None, typer.Option(help="an earlier kept training checkpoint (e.g. step_002000) "
                                                        "instead of the final one")] = None,
) -> None:
    """Draw a new sample set from a finished run's checkpoint (into RUN_DIR/resamples/<id>/).

    ``--set`` changes sample.* / validate.* settings only (e.g. ``--set sample.options.snr=0.1``)."""
    from domains.pipeline import resample

    try:
        out = resample(str(run_dir), n=n, sampler=sampler, steps=steps, overrides=overrides or [], validate=validate,
                       checkpoint=checkpoint)
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    console.print_json(json.dumps(out, default=str))


@app.command()
def validate(
    run_dir: Annotated[Path | None, typer.Argument(help="a run directory to re-validate")] = None,
    samples: Annotated[Path | None, typer.Option(help="score this sample file made elsewhere (needs --domain)")] = None,
    domain: Annotated[str | None, typer.Option(help="domain whose metrics score --samples")] = None,
    preset: Annotated[str, typer.Option(help="preset giving the reference data and metric settings")] = "smoke",
    overrides: SetOpt = None,
    runs_root: Annotated[str | None, typer.Option(help="where the scoring run directory goes")] = None,
) -> None:
    """Recompute a run's metrics from its recorded samples and data, or score an outside sample file
    (e.g. ``diffusci validate --domain graphs --samples other_model.smi``) the same way."""
    from domains.pipeline import load_ref, run_stage, score_external

    if (run_dir is None) == (samples is None):
        _fail(ValueError("give either RUN_DIR or --samples FILE --domain NAME"))
    try:
        if samples is not None:
            if domain is None:
                raise ValueError("--samples needs --domain NAME (the domain whose metrics score the file)")
            out: Any = score_external(domain, samples, preset, overrides or [], runs_root=runs_root)
        else:
            out = run_stage("validate", str(run_dir), load_ref(run_dir, "sample"), load_ref(run_dir, "ingest"))
    except (ValueError, KeyError, FileNotFoundError, RuntimeError, NotImplementedError) as exc:
        _fail(exc)
    console.print_json(json.dumps(out, default=str))


@app.command()
def reproduce(run_dir: Path, runs_root: Annotated[str | None, typer.Option()] = None) -> None:
    """Re-run a recorded run from its resolved config and seed; report metric and sample differences."""
    from domains.pipeline import compare_runs, load_run_config
    from flows.domain_flow import rerun_flow

    try:
        domain, cfg = load_run_config(run_dir)
        result = rerun_flow(domain, cfg.model_dump(mode="json", by_alias=True), runs_root,
                            {"reproduces": str(run_dir)})
        report = compare_runs(str(run_dir), result["run_dir"])
    except (ValueError, KeyError, FileNotFoundError, RuntimeError) as exc:
        _fail(exc)
    t = Table(title=f"reproduce {run_dir}")
    for col in ("metric", "original", "reproduced", "difference"):
        t.add_column(col)
    for row in report["metrics"]:
        t.add_row(*[str(v) for v in row])
    console.print(t)
    console.print(f"samples identical: {report['samples_identical']}  →  {result['run_dir']}")
    if not report["samples_identical"]:
        raise typer.Exit(1)


@app.command()
def serve(config: Annotated[Path, typer.Option(help="schedules YAML")] = Path("schedules.yaml")) -> None:
    """Register a deployment per scheduled domain flow and serve them (needs PREFECT_API_URL)."""
    from flows.deployments import serve_schedules

    try:
        serve_schedules(config)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        _fail(exc)


@catalog_app.command("list")
def catalog_list() -> None:
    from core.catalog import catalog_table, load_catalogs

    _print_rows("datasets", catalog_table(load_catalogs().values()))


@catalog_app.command("verify")
def catalog_verify(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Check files and checksums of one dataset (or all)."""
    from core.catalog import DataError, get_entry, load_catalogs, verify

    entries = [get_entry(name)] if name else [e for e in load_catalogs().values() if e.files or e.access == "external"]
    bad = 0
    for e in entries:
        if e.access == "external" and not name:  # listed, not counted: it cannot be present until obtained
            console.print(f"[yellow]external[/] {e.name}: not mirrored; {e.obtain} ({e.url})")
            continue
        try:
            report = verify(e)
            console.print(f"[green]ok[/] {e.name}: {len(report.files)} files")
        except DataError as exc:
            bad += 1
            console.print(f"[red]FAILED[/] {e.name}: {exc}")
    if bad:
        raise typer.Exit(1)


@catalog_app.command("fetch")
def catalog_fetch(name: str) -> None:
    """Download a dataset's missing files from its official source, verify and write them atomically."""
    from core.catalog import DataError, fetch, get_entry

    try:
        report = fetch(get_entry(name))
    except (DataError, KeyError) as exc:
        _fail(exc)
    console.print(f"[green]ok[/] {name}: {len(report.files)} files")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
