"""libvirt's configuration syntax (qemu.conf, libvirtd.conf, virtqemud.conf, ...), as virconf.c reads it:
`name = value` where a value is a quoted string, an integer or a [list] of those; '#' comments;
lists may span lines."""

from __future__ import annotations

import re
from typing import Any


class LibvirtConfError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r]+)|(?P<nl>\n)|(?P<comment>\#[^\n]*)|(?P<str>"(?:[^"\\\n]|\\.)*"|'[^'\n]*')|"""
    r"""(?P<int>[+-]?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*)|(?P<punct>[=\[\],;])"""
)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise LibvirtConfError(line, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup or ""
        if kind == "nl":
            out.append(("nl", "\n", line))
            line += 1
        elif kind not in ("ws", "comment"):
            out.append((kind, match.group(0), line))
        pos = match.end()
    out.append(("nl", "\n", line))
    return out


def _scalar(kind: str, raw: str) -> str | int:
    if kind == "int":
        return int(raw)
    body = raw[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\") if raw[0] == '"' else body


def parse_libvirt_conf(text: str, lines: dict[str, int] | None = None) -> dict[str, Any]:
    """LINES, when given, receives each setting's line: the last assignment wins, as in libvirt."""
    out: dict[str, Any] = {}
    toks = _tokens(text)
    i = 0
    while i < len(toks):
        kind, raw, line = toks[i]
        if kind == "nl" or (kind == "punct" and raw == ";"):
            i += 1
            continue
        if kind != "name":
            raise LibvirtConfError(line, f"expected a setting name, found {raw!r}")
        if i + 1 >= len(toks) or toks[i + 1][1] != "=":
            raise LibvirtConfError(line, f"expected '=' after {raw}")
        i += 2
        if i >= len(toks) or toks[i][0] == "nl":
            raise LibvirtConfError(line, f"missing value for {raw}")
        vkind, vraw, vline = toks[i]
        if lines is not None:
            lines[raw] = line
        if vkind in ("str", "int"):
            out[raw] = _scalar(vkind, vraw)
            i += 1
        elif vraw == "[":
            items: list[str | int] = []
            i += 1
            while True:
                while i < len(toks) and toks[i][0] == "nl":
                    i += 1
                if i >= len(toks):
                    raise LibvirtConfError(vline, f"unterminated list for {raw}")
                ikind, iraw, iline = toks[i]
                if iraw == "]":
                    i += 1
                    break
                if ikind not in ("str", "int"):
                    raise LibvirtConfError(iline, f"unexpected token in the list for {raw}")
                items.append(_scalar(ikind, iraw))
                i += 1
                while i < len(toks) and toks[i][0] == "nl":
                    i += 1
                if i < len(toks) and toks[i][1] == ",":
                    i += 1
            out[raw] = items
        else:
            raise LibvirtConfError(vline, f"the value of {raw} is not a quoted string, a number or a [list]")
        if i < len(toks) and toks[i][0] not in ("nl",) and toks[i][1] != ";":
            raise LibvirtConfError(toks[i][2], f"unexpected text after the value of {raw}")
    return out
