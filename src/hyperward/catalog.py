"""The check catalog as data (data/catalog.json, generated from the product spec's checks.md and the
rows the project adds, docs/catalog-project.md, which also name their primary sources)."""

from __future__ import annotations

import functools
import json
from importlib import resources

from .records import frozen


@frozen
class CatalogEntry:
    id: str
    platform: str
    title: str
    severity: str
    severity_text: str
    detection: str
    passes_when: str
    remediation: str
    flags: str
    sources: str = ""


@functools.cache
def catalog() -> dict[str, CatalogEntry]:
    raw = json.loads(resources.files("hyperward").joinpath("data/catalog.json").read_text(encoding="utf-8"))
    return {row["id"]: CatalogEntry(**row) for row in raw}
