"""Make a string that a guest, tenant or local user controls safe to show on a terminal.

VM names, process command lines, cgroup paths, file names and error texts reach the text
report, the monitor views and stderr. A terminal acts on the control characters among them
even when the output is piped into `less -R` or a log viewer later: OSC 0/2 set the window
title, OSC 52 writes the clipboard, CSI moves the cursor and erases lines, and a newline
forges a report line of its own. Every human-readable renderer passes such strings through
`visible()`; JSON output keeps them exact (JSON escapes control characters itself).

The escaping is unambiguous: a backslash is shown doubled, so `\\x1b` on the screen is always
the escape character and never a name that spelled those four characters.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

# C0 controls, DEL, C1 controls; Unicode format and separator characters that reorder or hide
# text on a terminal (bidirectional overrides and isolates, zero-width characters, the line and
# paragraph separators, the BOM); lone surrogates left by undecodable bytes; and the backslash
# that introduces every escape shown.
_UNSAFE = re.compile(
    "[\\\\\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
_SHORT = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """`value` as text with every control or invisible formatting character shown as an escape."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def rich_text(value: object, style: str = "") -> Text:
    """For rich: a Text is never parsed for markup or emoji codes, so a VM named
    `[link=https://x]y[/link]` or `[red]x` prints as it is named (a plain str given to rich's
    print or to a Table cell would be parsed)."""
    from rich.text import Text  # rich only where a rich table or text is being built

    return Text(visible(value), style=style)
