"""Which requirements of which frameworks each check serves (data/frameworks.json, plus STIG IDs a
catalog row names in its primary sources), so a report can say "HY-SR-19" beside HV-FW-001 and a
scan can be limited to one framework's rows. docs/frameworks.md gives each mapping's basis."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources

from .records import frozen

#: "STIG ESXI-80-000xxx" / "STIG VMCH-80-000xxx" in a row's Primary sources column
_STIG = re.compile(r"\bSTIG\s+((?:ESXI|VMCH)-\d{2}-\d{6})\b", re.IGNORECASE)

#: what a user may type after --framework, besides the keys themselves
ALIASES = {"nist": "nist-800-125a", "800-125a": "nist-800-125a", "disa": "stig", "cis": "cis-debian"}


@frozen
class Framework:
    key: str
    title: str
    url: str
    numbering: str
    requirements: dict[str, str]


@functools.cache
def _data() -> dict[str, object]:
    raw = resources.files("hyperward").joinpath("data/frameworks.json").read_text(encoding="utf-8")
    data: dict[str, object] = json.loads(raw)
    return data


@functools.cache
def frameworks() -> dict[str, Framework]:
    table = _data()["frameworks"]
    assert isinstance(table, dict)
    return {key: Framework(key, str(v["title"]), str(v["url"]), str(v["numbering"]), dict(v["requirements"]))
            for key, v in table.items()}


@functools.cache
def mappings() -> dict[str, dict[str, tuple[str, ...]]]:
    """check ID -> framework key -> requirement IDs, sorted; only frameworks a check serves."""
    from .catalog import catalog

    checks = _data()["checks"]
    assert isinstance(checks, dict)
    known = frameworks()
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for cid, row in checks.items():
        for key, ids in row.items():
            if key in known:
                out.setdefault(cid, {})[key] = tuple(ids)
    for cid, entry in catalog().items():
        stig = stig_ids(entry.sources)
        if stig:
            merged = set(out.setdefault(cid, {}).get("stig", ())) | set(stig)
            out[cid]["stig"] = tuple(sorted(merged))
    return out


def stig_ids(sources: str) -> list[str]:
    """The STIG rule IDs a catalog row's Primary sources column names ("STIG ESXI-80-000005")."""
    return sorted({m.upper() for m in _STIG.findall(sources)})


def for_check(check_id: str) -> dict[str, tuple[str, ...]]:
    return mappings().get(check_id, {})


def parse_name(name: str) -> str:
    """A framework key from what a user typed; ValueError naming the choices otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in frameworks():
        raise ValueError(f"unknown framework {name!r} (one of: {', '.join(sorted(frameworks()))})")
    return key


def checks_in(key: str) -> set[str]:
    """The check IDs that serve framework KEY (possibly none: a framework with no mapped rows yet)."""
    return {cid for cid, row in mappings().items() if row.get(key)}


def tags(check_id: str) -> list[str]:
    """Flat labels for SARIF tags and OCSF: "nist-800-125a/HY-SR-19", "stig/ESXI-80-000001"."""
    return [f"{key}/{rid}" for key, ids in sorted(for_check(check_id).items()) for rid in ids]
