"""The table of VirtualBox releases Oracle's Critical Patch Updates name as affected
(data/virtualbox_security.json), and where an installed version stands against it.

The table is compiled by hand from Oracle's CVE records and dated: a version it passes is only
as current as the newest advisory it holds, which every verdict names. A branch the table does not
hold is end of life (from a dated source) or unknown, never assumed safe.

A sourced table (hyperward.sourced): `hyperward db update` refreshes it from `[vulndb]
virtualbox_security_url` into virtualbox_security.json in hyperward's state directory
(HYPERWARD_VIRTUALBOX_SECURITY names another path), and the collector puts the table a scan uses
into the VirtualBox facts (VirtualBoxFacts.security_table).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ... import sourced
from ...model import Unavailable
from ...records import frozen
from ...sourced import About, TableError

FORMAT = "hyperward-virtualbox-security"
SCHEMA = 1
ENV = "HYPERWARD_VIRTUALBOX_SECURITY"
#: Oracle publishes a Critical Patch Update every quarter: a table older than this when the facts
#: were collected has very likely missed one, so it vouches for no release
MAX_AGE_DAYS = 120
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")
_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")
_BRANCH = re.compile(r"^\d+\.\d+$")


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
    about: About
    covers_through: str
    branches: dict[str, list[Advisory]]
    end_of_life: dict[str, EndOfLife]
    eol_source: str

    @property
    def compiled(self) -> str:
        return self.about.compiled


@frozen
class Standing:
    """`status` "affected", "current", "eol" or "unknown"; `advisories` the ones that name the version, newest first."""

    status: str
    branch: str
    advisories: list[Advisory]
    eol: EndOfLife | None = None


def numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def _advisory(branch: str, index: int, raw: object) -> Advisory:
    where = f"branches.{branch}[{index}]"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: must be an object")
    name = sourced.text(raw, "advisory", where, limit=200)
    where = f"{branch}: {name}"
    unknown = sorted(set(raw) - {"advisory", "published", "url", "cves", "source", "fixed_in", "affected_through", "note"})
    if unknown:
        raise TableError(f"{where}: unknown key {unknown[0][:40]!r}")
    if "note" in raw:
        sourced.text(raw, "note", where)
    if ("fixed_in" in raw) == ("affected_through" in raw):
        raise TableError(f"{where}: a row names either fixed_in or affected_through")
    bound_key = "fixed_in" if "fixed_in" in raw else "affected_through"
    bound = sourced.text(raw, bound_key, where, limit=20)
    if not _VERSION.match(bound) or ".".join(bound.split(".")[:2]) != branch:
        raise TableError(f"{where}: {bound_key} {bound[:20]!r} is not a {branch} release")
    url = sourced.text(raw, "url", where, limit=500)
    if not url.startswith("https://"):
        raise TableError(f"{where}: 'url' must be an https:// URL")
    cves = raw.get("cves")
    if not (isinstance(cves, list) and cves and all(isinstance(c, str) and _CVE.match(c) for c in cves)):
        raise TableError(f"{where}: 'cves' must be a non-empty list of CVE IDs")
    source = sourced.text(raw, "source", where)
    if not source.startswith("https://"):
        raise TableError(f"{where}: 'source' must start with an https:// URL")
    return Advisory(name, sourced.date(raw, "published", where), url, list(cves), source,
                    raw.get("fixed_in"), raw.get("affected_through"))


def _build(raw: dict[str, Any], about: About) -> SecurityTable:
    """The branches and end-of-life dates of a document whose envelope is valid."""
    covers_through = sourced.text(raw, "covers_through", "table", limit=200)
    found = raw["branches"]
    if not isinstance(found, dict) or not found:
        raise TableError("table: 'branches' must be a non-empty object of branch -> advisories")
    branches: dict[str, list[Advisory]] = {}
    for branch, rows in found.items():
        if not _BRANCH.match(branch):
            raise TableError(f"branches: {branch[:20]!r} is not a branch (major.minor)")
        if not isinstance(rows, list) or not rows:
            raise TableError(f"branches.{branch}: must be a non-empty list of advisories")
        branches[branch] = sorted((_advisory(branch, i, a) for i, a in enumerate(rows)), key=lambda a: a.published, reverse=True)
    eol = raw["end_of_life"]
    if not isinstance(eol, dict) or set(eol) != {"source", "branches"} or not isinstance(eol["branches"], dict):
        raise TableError("end_of_life: must be an object of 'source' and 'branches'")
    eol_source = sourced.text(eol, "source", "end_of_life")
    if not eol_source.startswith("https://"):
        raise TableError("end_of_life: 'source' must start with an https:// URL")
    ended: dict[str, EndOfLife] = {}
    for branch, row in eol["branches"].items():
        where = f"end_of_life.branches.{branch[:20]}"
        if not _BRANCH.match(branch) or not isinstance(row, dict) or set(row) != {"eol", "last"}:
            raise TableError(f"{where}: must be a branch (major.minor) with 'eol' and 'last'")
        if branch in branches:
            raise TableError(f"{where}: also in 'branches' (a branch is either covered or end of life)")
        last = sourced.text(row, "last", where, limit=20)
        if not _VERSION.match(last):
            raise TableError(f"{where}: 'last' {last[:20]!r} is not a release")
        ended[branch] = EndOfLife(sourced.date(row, "eol", where), last)
    return SecurityTable(about, covers_through, branches, ended, eol_source)


SPEC: sourced.Spec[SecurityTable] = sourced.Spec(
    title="VirtualBox security table", format=FORMAT, schema=SCHEMA, packaged="data/virtualbox_security.json",
    file="virtualbox_security.json", env=ENV, config_key="virtualbox_security_url", rows=("covers_through", "branches", "end_of_life"),
    max_age_days=MAX_AGE_DAYS, build=_build,
    count=lambda t: f"{len(t.branches)} branches with advisories, {len(t.end_of_life)} past end of life", about=lambda t: t.about)


def parse_table(raw: dict[str, Any], origin: str = "bundled") -> SecurityTable:
    """A table already read as JSON, validated whole (TableError, a ValueError, names the row)."""
    return _build(raw, sourced.envelope(SPEC, raw, origin))


@functools.cache
def table() -> SecurityTable:
    """The packaged table (tests, and the default of standing())."""
    return sourced.packaged(SPEC)


def load() -> SecurityTable | Unavailable:
    """The table a scan judges with (the refreshed copy when valid and newer), as a fact."""
    return sourced.load(SPEC)


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
