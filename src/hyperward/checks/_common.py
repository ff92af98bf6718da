"""Helpers shared by checks: still pure functions of facts."""

from __future__ import annotations

from ..facts import HostFacts, Maybe
from ..model import Unavailable

VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"


def vuln_value(host: HostFacts, name: str) -> Maybe[str] | None:
    """The text of one vulnerabilities file; None when this kernel does not report it."""
    vulns = host.cpu.vulnerabilities
    if isinstance(vulns, Unavailable):
        return vulns
    return vulns.get(name)


def module_param(host: HostFacts, module: str, param: str) -> Maybe[str] | None:
    """A loaded module's parameter; None when the module is not loaded (or /sys is absent)."""
    loaded = host.modules.loaded
    if isinstance(loaded, Unavailable) or module not in loaded:
        return None
    return loaded[module].get(param)


def is_enabled(value: str) -> bool:
    return value.strip().lower() in ("y", "1", "yes", "on", "true")
