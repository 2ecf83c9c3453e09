"""Forward processes ("what the noise does"). Build one by name with :func:`make_process`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.processes import edm, interpolants, ve, vp  # noqa: F401  (register)
from core.processes.base import ForwardProcess
from core.processes.composite import ProcessDict
from core.processes.registry import PROCESSES


def make_process(spec: str | Mapping[str, Any], **kwargs: Any) -> ForwardProcess:
    """Build a process from a name (``"vp"``), a config (``{"name": "ve", "sigma_max": 1.0}``) or a
    dict of per-field configs (``{"x": {"name": "vp"}, "adj": {"name": "ve"}}``)."""
    if isinstance(spec, str):
        return PROCESSES.get(spec)(**kwargs)
    spec = dict(spec)
    if "name" in spec:
        name = spec.pop("name")
        return PROCESSES.get(name)(**spec, **kwargs)
    return ProcessDict({k: make_process(v) for k, v in spec.items()})


__all__ = ["PROCESSES", "ForwardProcess", "ProcessDict", "make_process"]
