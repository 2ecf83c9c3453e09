"""A real local Prefect server for the tests that need one (serving, multi-process task runners).

``prefect server start`` on a free loopback port with a temporary home, started once per pytest
session (~15 s) and stopped with every process it started. Tests talk to it through
:func:`server_settings` (in this process) or :meth:`PrefectServer.env` (subprocesses).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Offline, quiet Prefect (docs: ENVIRONMENT.md, "Prefect without a network").
OFFLINE = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "1",
    "OMP_NUM_THREADS": "1",
}
SERVER_START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_tree(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``), its process group and all descendants."""
    import psutil

    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    log: Path
    proc: subprocess.Popen

    def env(self, home: Path, **extra: str) -> dict[str, str]:
        """Environment for a client subprocess with its own ``PREFECT_HOME`` talking to this server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(OFFLINE, PREFECT_HOME=str(home), PREFECT_API_URL=self.api_url, **extra)
        return env


def prefect_executable() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "prefect"]


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-server-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(OFFLINE, PREFECT_HOME=str(home), PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
               PREFECT_SERVER_LOGGING_LEVEL="WARNING")
    log = home / "server.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([*prefect_executable(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    server = PrefectServer(url, home, log, proc)
    try:
        _wait_healthy(server)
        yield server
    finally:
        stop_tree(proc)


def _wait_healthy(server: PrefectServer) -> None:
    import httpx

    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            pytest.fail(f"prefect server exited with {server.proc.returncode}:\n{tail(server.log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.api_url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {SERVER_START_TIMEOUT:.0f} s:\n{tail(server.log)}")


@contextlib.contextmanager
def server_settings(server: PrefectServer, storage: Path | None = None) -> Iterator[None]:
    """Point this process's Prefect client (and the task-runner workers it spawns) at ``server``;
    with ``storage``, keep task results (and so the ingest/train caches) there, apart from other tests."""
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    env = {"PREFECT_API_URL": server.api_url}
    updates: dict = {PREFECT_API_URL: server.api_url}
    if storage is not None:
        env["PREFECT_LOCAL_STORAGE_PATH"] = str(storage)
        updates[PREFECT_LOCAL_STORAGE_PATH] = str(storage)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # inherited by spawned workers
    try:
        with temporary_settings(updates=updates):
            yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
