"""Imports point one way: flows → domains → core. Core never imports Prefect or domain libraries,
and no domain imports another (an AST check over the source tree)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_FORBIDDEN = {"prefect", "prefect_dask", "prefect_ray", "rdkit", "xarray", "monai", "domains", "flows",
                  "torch_geometric", "netCDF4", "nibabel", "pysteps"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", _files("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_orchestrator_domain_or_domain_library(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] in CORE_FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _files("domains"), ids=lambda p: str(p.relative_to(ROOT)))
def test_domains_import_no_prefect_and_no_other_domain(path: Path) -> None:
    names = _imports(path)
    assert not {n for n in names if n.split(".")[0] in {"prefect", "prefect_dask", "prefect_ray", "flows"}}
    rel = path.relative_to(ROOT / "domains").parts
    if len(rel) > 1:  # inside domains/<name>/
        own = rel[0]
        others = {n.split(".")[1] for n in names if n.startswith("domains.") and len(n.split(".")) > 2}
        subpackages = {p.name for p in (ROOT / "domains").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        assert not (others & subpackages) - {own}, f"{path} imports another domain: {others - {own}}"


def test_source_files_stay_small() -> None:
    big = [str(p.relative_to(ROOT)) for pkg in ("core", "domains", "flows") for p in _files(pkg)
           if len(p.read_text(encoding="utf-8").splitlines()) > 450]
    assert not big, f"files over 450 lines: {big}"
