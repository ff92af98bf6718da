"""systemd unit files (systemd.syntax(7)): sections, `Key=Value`, continuation lines, drop-ins
where an empty assignment resets a list setting."""

from __future__ import annotations


def parse_unit(texts: list[str]) -> dict[str, dict[str, list[str]]]:
    """The unit file followed by its drop-ins, in the order systemd applies them."""
    out: dict[str, dict[str, list[str]]] = {}
    for text in texts:
        section = ""
        pending = ""
        for raw in text.splitlines():
            line = pending + raw.strip()
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
            values = out.setdefault(section, {}).setdefault(key, [])
            if value == "":
                values.clear()
            else:
                values.append(value)
    return out


def last(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str | None:
    values = unit.get(section, {}).get(key, [])
    return values[-1] if values else None
