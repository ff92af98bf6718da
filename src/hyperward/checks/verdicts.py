"""A judge's answer, shared by the per-domain judges (checks/_libvirt.py) and the neutral guest
judges (guests/checks.py): neither module owns it, so neither imports the other for it."""

from __future__ import annotations

from ..model import Severity

#: problems, optionally a severity and the element paths that produced them ("devices/disk[2]"):
#: the first the definition has a line for is the finding's element and line
Verdict = list[str] | tuple[list[str], Severity | None] | tuple[list[str], Severity | None, list[str]]


def split_verdict(verdict: Verdict) -> tuple[list[str], Severity | None, list[str]]:
    """A judge's problems, the severity it chose (None: the row's) and the elements that decided
    them (for the finding's location); judges over domains and over neutral guests answer alike."""
    if isinstance(verdict, tuple) and len(verdict) == 3:
        return verdict
    if isinstance(verdict, tuple):
        return verdict[0], verdict[1], []
    return verdict, None, []
