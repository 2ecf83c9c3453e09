"""The process registry (kept apart so process modules can register without import cycles)."""

from core.registry import Registry

PROCESSES: Registry = Registry("process")
