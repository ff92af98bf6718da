"""systemd unit files (systemd.syntax(7)): sections, `Key=Value`, continuation lines, drop-ins
where an empty assignment resets a list setting."""

from __future__ import annotations

from collections.abc import Iterator


def _assignments(text: str) -> Iterator[tuple[str, str, str, int]]:
    """(section, key, value, line) for each assignment; a continued assignment has its first line."""
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + raw.strip()
        if not pending:
            start = number
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        yield section, key, value, start


def parse_unit(texts: list[str]) -> dict[str, dict[str, list[str]]]:
    """The unit file followed by its drop-ins, in the order systemd applies them."""
    out: dict[str, dict[str, list[str]]] = {}
    for text in texts:
        for section, key, value, _ in _assignments(text):
            values = out.setdefault(section, {}).setdefault(key, [])
            if value == "":
                values.clear()
            else:
                values.append(value)
    return out


def key_lines(files: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int]]:
    """(section, key) -> (file, line) of the assignment that set the value `last` returns, over the
    unit file and its drop-ins in the order parse_unit applies them; a key reset to empty has none."""
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for path, text in files:
        for section, key, value, number in _assignments(text):
            if value == "":
                out.pop((section, key), None)
            else:
                out[(section, key)] = (path, number)
    return out


def last(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str | None:
    values = unit.get(section, {}).get(key, [])
    return values[-1] if values else None
