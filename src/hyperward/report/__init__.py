"""Report formats behind one interface: a module per format exposing `render(report, options) -> str`.

Adding SARIF, JUnit or HTML is one module here plus one line in FORMATS; the CLI's --format choices
are read from FORMATS."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol

from ..records import frozen

if TYPE_CHECKING:
    from ..engine import ScanReport

FORMATS: dict[str, str] = {
    "text": "hyperward.report.text",
    "json": "hyperward.report.json_format",
    "sarif": "hyperward.report.sarif",
    "junit": "hyperward.report.junit",
    "html": "hyperward.report.html",
    "ocsf": "hyperward.report.ocsf",
    "prometheus": "hyperward.report.prometheus",
}


@frozen
class RenderOptions:
    color: bool = False
    verbose: bool = False
    quiet: bool = False
    width: int = 100


class Reporter(Protocol):
    def render(self, report: ScanReport, options: RenderOptions) -> str: ...


def get_reporter(name: str) -> Reporter:
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r} (one of: {', '.join(FORMATS)})")
    return importlib.import_module(FORMATS[name])
