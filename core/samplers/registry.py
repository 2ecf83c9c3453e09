"""Registries of samplers and step schedules."""

from core.registry import Registry

SAMPLERS: Registry = Registry("sampler")
SCHEDULES: Registry = Registry("schedule")
