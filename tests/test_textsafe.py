"""The one sanitizer every human-readable renderer passes external strings through."""

from __future__ import annotations

import io
import re

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from rich.table import Table

from hyperward.textsafe import rich_text, visible

ESCAPE = re.compile(r"\\(\\|n|r|t|x[0-9a-f]{2}|u[0-9a-f]{4})")


def unescape(shown: str) -> str:
    """The inverse of visible(): exists only to prove the escaping is unambiguous."""
    short = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        return short[body] if body in short else chr(int(body[1:], 16))

    return ESCAPE.sub(one, shown)


def unsafe(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or char in "\u202e\u2066\u200b\u2028\ufeff"


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=())))
def test_no_control_character_survives_and_the_original_is_recoverable(text: str) -> None:
    shown = visible(text)
    assert not any(unsafe(c) for c in shown), repr(shown)
    assert unescape(shown) == text


@given(st.binary())
def test_undecodable_bytes_decoded_with_surrogateescape_are_shown_too(raw: bytes) -> None:
    shown = visible(raw.decode("utf-8", "surrogateescape"))
    shown.encode("utf-8")  # a lone surrogate would make printing it raise
    assert not any(unsafe(c) for c in shown)


def test_the_attacks_from_the_issue_are_shown_not_acted_on() -> None:
    assert visible("a\x1b]0;title\x07b") == "a\\x1b]0;title\\x07b"
    assert visible("\x1b]52;c;ZXZpbA==\x1b\\") == "\\x1b]52;c;ZXZpbA==\\x1b\\\\"
    assert visible("\x9b2J") == "\\x9b2J"  # the 8-bit CSI
    assert visible("vm\nCRITICAL FAIL forged") == "vm\\nCRITICAL FAIL forged"
    assert visible("\x7f\x00\r\t") == "\\x7f\\x00\\r\\t"
    assert visible("admin\u202etxt.exe") == "admin\\u202etxt.exe"
    assert visible("machine-qemu\\x2d1") == "machine-qemu\\\\x2d1", "a literal backslash is doubled"
    assert visible("web-01 (ünïcode) 名前") == "web-01 (ünïcode) 名前"
    assert visible(None) == "None" and visible(42) == "42"


def _render(renderable: object, color: bool) -> str:
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=color, color_system="standard" if color else None, width=200).print(renderable)
    return buffer.getvalue()


def test_rich_markup_in_a_name_prints_literally() -> None:
    name = "[red]x[/red] [link=http://127.0.0.1/]y[/link] [bold]:smile:"
    table = Table()
    table.add_column("VM")
    table.add_row(rich_text(name))
    for renderable in (rich_text(name), table):
        plain, coloured = _render(renderable, False), _render(renderable, True)
        assert name in plain and "\x1b" not in plain
        assert name in coloured and "\x1b]8;" not in coloured, "no OSC 8 hyperlink"
    unprotected = Table()
    unprotected.add_column("VM")
    unprotected.add_row(name)
    assert name not in _render(unprotected, False), "what rich does to a plain str cell"
