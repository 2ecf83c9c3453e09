"""Domain registry: name → Domain class, imported lazily so the CLI and tests start fast.

A new domain adds one line here and a package under ``domains/``; flows need no change.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from core.registry import UnknownNameError

if TYPE_CHECKING:
    from domains.base import Domain

#: name -> "module:Class"
DOMAINS: dict[str, str] = {
    "toy": "domains.toy.domain:ToyDomain",
    "pde": "domains.pde.domain:PDEDomain",
    "medseg": "domains.medseg.domain:MedsegDomain",
    "spiderwebs": "domains.spiderwebs.domain:SpiderwebsDomain",
    "graphs": "domains.graphs.domain:GraphsDomain",
    "weather": "domains.weather.domain:WeatherDomain",
}


def domain_names() -> list[str]:
    return sorted(DOMAINS)


def get_domain(name: str) -> Domain:
    if name not in DOMAINS:
        raise UnknownNameError(f"unknown domain {name!r}; valid choices: {', '.join(domain_names())}")
    module, cls = DOMAINS[name].split(":")
    return getattr(importlib.import_module(module), cls)()
