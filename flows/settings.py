"""Prefect defaults for diffusci: the embedded (ephemeral, SQLite) engine, offline and quiet.

Call :func:`configure_prefect` before importing Prefect. Every value is a default: anything already
set in the environment wins, so ``PREFECT_API_URL=http://host:4200/api`` points diffusci at a real
Prefect server and ``PREFECT_HOME`` moves its state.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.provenance import repo_root

DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
}


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or repo_root() / ".prefect")


def configure_prefect() -> None:
    os.environ.setdefault("PREFECT_HOME", str(prefect_home()))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(Path(os.environ["PREFECT_HOME"]) / "storage"))
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
