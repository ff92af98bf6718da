"""Helpers shared by checks: still pure functions of facts."""

from __future__ import annotations

from ..facts import VULN_DIR, HostFacts, Maybe
from ..model import Result, Unavailable



def vuln_text(host: HostFacts, name: str) -> str | Result:
    """The text of one vulnerabilities file, or the result to give when there is none to judge."""
    vulns = host.cpu.vulnerabilities
    if isinstance(vulns, Unavailable):
        return Result.unavailable(vulns, name)
    value = vulns.get(name)
    if value is None:
        return Result.not_applicable(f"{VULN_DIR}/{name}: not reported by this kernel", name)
    if isinstance(value, Unavailable):
        return Result.unavailable(value, name)
    return value


def module_param(host: HostFacts, module: str, param: str) -> Maybe[str] | None:
    """A loaded module's parameter; None when the module is not loaded (or /sys is absent)."""
    loaded = host.modules.loaded
    if isinstance(loaded, Unavailable) or module not in loaded:
        return None
    return loaded[module].get(param)


def is_enabled(value: str) -> bool:
    return value.strip().lower() in ("y", "1", "yes", "on", "true")
