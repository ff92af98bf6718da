"""The table of VirtualBox releases Oracle's Critical Patch Updates name as affected
(data/virtualbox_security.json), and where an installed version stands against it.

The table is compiled by hand from Oracle's CVE records and dated: a version it passes is only
as current as the newest advisory it holds, which every verdict names. A branch the table does not
hold is end of life (from a dated source) or unknown, never assumed safe.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

from ...records import frozen


@frozen
class Advisory:
    """One CPU's word on one branch: versions below `fixed_in`, or up to `affected_through`, are affected."""

    advisory: str
    published: str
    url: str
    cves: list[str]
    source: str
    fixed_in: str | None = None
    affected_through: str | None = None

    def affects(self, version: tuple[int, ...]) -> bool:
        if self.fixed_in is not None:
            return version < numbers(self.fixed_in)
        if self.affected_through is not None:
            return version <= numbers(self.affected_through)
        return False


@frozen
class EndOfLife:
    eol: str
    last: str


@frozen
class SecurityTable:
    compiled: str
    covers_through: str
    branches: dict[str, list[Advisory]]
    end_of_life: dict[str, EndOfLife]
    eol_source: str


@frozen
class Standing:
    """`status` "affected", "current", "eol" or "unknown"; `advisories` the ones that name the version, newest first."""

    status: str
    branch: str
    advisories: list[Advisory]
    eol: EndOfLife | None = None


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def parse_table(raw: dict[str, Any]) -> SecurityTable:
    branches: dict[str, list[Advisory]] = {}
    for branch, rows in raw["branches"].items():
        for a in rows:
            if ("fixed_in" in a) == ("affected_through" in a):
                raise ValueError(f"{branch}: {a['advisory']}: a row names either fixed_in or affected_through")
        branches[branch] = sorted((Advisory(a["advisory"], a["published"], a["url"], list(a["cves"]), a["source"],
                                            a.get("fixed_in"), a.get("affected_through")) for a in rows),
                                  key=lambda a: a.published, reverse=True)
    eol = raw["end_of_life"]
    return SecurityTable(raw["compiled"], raw["covers_through"], branches,
                         {b: EndOfLife(v["eol"], v["last"]) for b, v in eol["branches"].items()}, eol["source"])


@functools.cache
def table() -> SecurityTable:
    text = resources.files("hyperward").joinpath("data/virtualbox_security.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text))


def standing(version: str, data: SecurityTable | None = None) -> Standing:
    data = data or table()
    parts = numbers(version)
    branch = ".".join(str(p) for p in parts[:2])
    if branch in data.branches:
        hits = [a for a in data.branches[branch] if a.affects(parts)]
        return Standing("affected" if hits else "current", branch, hits)
    if branch in data.end_of_life:
        return Standing("eol", branch, [], data.end_of_life[branch])
    return Standing("unknown", branch, [])
