"""Prefect artifacts of a run: a metrics table, links to samples and plots, and the plots as images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_image_artifact, create_link_artifact, create_markdown_artifact


def _key(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower())[:80].strip("-")


def metrics_markdown(domain: str, run_path: str, metrics: dict[str, Any]) -> str:
    rows = "".join(f"| {k} | {v:.6g} |\n" if isinstance(v, float) else f"| {k} | {v} |\n"
                   for k, v in metrics.items() if not isinstance(v, dict | list))
    return f"## {domain}: metrics\n\nRun directory: `{run_path}`\n\n| metric | value |\n|---|---|\n{rows}"


def publish(run_path: str, metrics: dict[str, Any]) -> dict[str, Any]:
    run = Path(run_path)
    domain = run.parent.name
    key = _key(f"{domain}-{run.name}")
    create_markdown_artifact(metrics_markdown(domain, run_path, metrics), key=f"{key}-metrics",
                             description=f"{domain} metrics")
    links = sorted((run / "samples").glob("*")) + sorted((run / "plots").glob("*.png"))
    for p in links:
        if p.is_file():
            create_link_artifact(p.resolve().as_uri(), link_text=p.name, key=_key(f"{key}-{p.stem}"),
                                 description=f"{domain} {p.parent.name}/{p.name}")
    for p in sorted((run / "plots").glob("*.png")):
        create_image_artifact(p.resolve().as_uri(), key=_key(f"{key}-img-{p.stem}"), description=p.name)
    return {"artifacts": len(links) + 1}
