"""Prefect orchestration: wiring only. Every task body is one call into ``domains.pipeline``."""
