"""KEY=value files that init scripts and daemons source (/etc/default/*): read as a POSIX shell
reads their assignments (quotes, comments, `export`), never run. A line the shell would run as a
command is ignored; unbalanced quotes are an error (the shell would refuse the file too)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

_ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


class ShellQuoteError(ValueError):
    """An assignment whose quotes do not close."""


def assignments(text: str, keep: Callable[[str], bool] = lambda _name: True,
                lines: dict[str, int] | None = None) -> dict[str, str]:
    """The variables the file sets (the last assignment wins), those `keep` accepts only. LINES,
    when given, receives the line of each variable's winning assignment."""
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        match = _ASSIGN.match(raw.strip())
        if not match or not keep(match.group(1)):
            continue
        try:
            words = shlex.split(match.group(2), comments=True)
        except ValueError:
            raise ShellQuoteError(f"unbalanced quotes in {match.group(1)}") from None
        out[match.group(1)] = " ".join(words)
        if lines is not None:
            lines[match.group(1)] = number
    return out
