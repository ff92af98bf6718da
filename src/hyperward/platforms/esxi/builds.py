"""The ESXi build table HV-PATCH-100 judges against: for each release line the latest build that
fixes security issues (with its VMSA and CVEs), or why the line gets no fix any more.

A sourced table (hyperward.sourced: one envelope, loader and refresh for every such table). The
packaged table (data/esxi-builds.json) is compiled by hand from VMware's own CVE records and
advisories; `hyperward db update` replaces the refreshed copy (HYPERWARD_ESXI_BUILDS, else
esxi-builds.json in hyperward's state directory) from the config's `[vulndb] esxi_builds_url`.
A scan uses whichever of the two was compiled later, so an old download never hides a newer
bundled table. A table is validated whole before it is used or written: a garbled download is
one error and the copy on disk stays. The collector puts the table into the ESXi facts
(EsxiFacts.build_table); HV-PATCH-100 judges only what the facts hold.

Release lines are keyed by version prefix ("8.0.3", "9.1") because build numbers are global, not
per line: ESXi 8.0 Update 2e (24789317) has a higher build than 8.0 Update 3f (24784735).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import field
from typing import Any

from ... import sourced
from ...model import Unavailable
from ...records import frozen
from ...sourced import About, TableError

FORMAT = "hyperward-esxi-builds"
SCHEMA = 1
ENV = "HYPERWARD_ESXI_BUILDS"
MAX_SIZE = sourced.MAX_SIZE
#: a table older than this when the facts were collected cannot vouch for a build: VMware publishes
#: ESXi advisories every few months, so a pass would only say "patched as of long ago"
MAX_AGE_DAYS = 120
STATUSES = ("patched", "no_fix", "end_of_support")
_VERSION = re.compile(r"^\d+(?:\.\d+){0,3}$")
_ADVISORY = re.compile(r"^VMSA-\d{4}-\d{4}(?:\.\d+)?$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")
#: boot.cfg's build= line, as esximage writes it: <version>-<quarter>.<patch>.<build>
#: (KB 395110: "8.0.3-0.70.24674464" is 8.0 Update 3e)
BOOT_BUILD = re.compile(r"^(\d+\.\d+\.\d+)-\d+\.\d+\.(\d{5,9})$")


@frozen
class Fix:
    build: int
    release: str
    advisory: str
    published: str
    cves: list[str]
    sources: list[str]


@frozen
class Line:
    version: str
    name: str
    status: str
    fixes: list[Fix] = field(default_factory=list)
    last_fix: Fix | None = None
    reason: str = ""

    @property
    def latest(self) -> Fix | None:
        return max(self.fixes, key=lambda f: f.build) if self.fixes else None


@frozen
class Table:
    about: About
    lines: list[Line]

    @property
    def compiled(self) -> datetime.date:
        return self.about.compiled_date

    @property
    def covers(self) -> str:
        return self.about.covers

    @property
    def origin(self) -> str:
        return self.about.origin

    @property
    def ignored(self) -> str | None:
        """Why a refreshed copy was not used (unreadable, invalid), for the results to say."""
        return self.about.ignored

    def line_for(self, version: str) -> Line | None:
        parts = version.strip().split(".")
        best: Line | None = None
        for line in self.lines:
            prefix = line.version.split(".")
            if parts[:len(prefix)] == prefix and (best is None or len(prefix) > len(best.version.split("."))):
                best = line
        return best


def _str(obj: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None, limit: int = 2000) -> str:
    value = sourced.text(obj, key, where, limit)
    if pattern is not None and not pattern.match(value):
        raise TableError(f"{where}: {key!r} is {value[:40]!r}, not in the expected form")
    return value


def _fix(obj: object, where: str) -> Fix:
    if not isinstance(obj, dict):
        raise TableError(f"{where}: must be an object")
    build = obj.get("build")
    if isinstance(build, bool) or not isinstance(build, int) or not 0 < build < 10**9:
        raise TableError(f"{where}: 'build' must be a positive build number")
    cves = obj.get("cves")
    if not (isinstance(cves, list) and cves and all(isinstance(c, str) and _CVE.match(c) for c in cves)):
        raise TableError(f"{where}: 'cves' must be a non-empty list of CVE IDs")
    published = _str(obj, "published", where)
    try:
        datetime.date.fromisoformat(published)
    except ValueError:
        raise TableError(f"{where}: 'published' must be a date (YYYY-MM-DD)") from None
    return Fix(build, _str(obj, "release", where, limit=80), _str(obj, "advisory", where, _ADVISORY), published,
               list(cves), sourced.urls(obj, where))


def _build(doc: dict[str, Any], about: About) -> Table:
    """The release lines of a document whose envelope is valid."""
    raw_lines = doc.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise TableError("'lines' must be a non-empty list")
    lines: list[Line] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_lines):
        where = f"lines[{index}]"
        if not isinstance(raw, dict):
            raise TableError(f"{where}: must be an object")
        version = _str(raw, "version", where, _VERSION, limit=20)
        where = f"line {version}"
        if version in seen:
            raise TableError(f"{where}: given twice")
        seen.add(version)
        status = _str(raw, "status", where)
        if status not in STATUSES:
            raise TableError(f"{where}: status {status[:30]!r} is not one of {', '.join(STATUSES)}")
        fixes = raw.get("fixes", [])
        if not isinstance(fixes, list):
            raise TableError(f"{where}: 'fixes' must be a list")
        parsed = [_fix(f, f"{where} fixes[{i}]") for i, f in enumerate(fixes)]
        if status == "patched" and not parsed:
            raise TableError(f"{where}: a patched line needs at least one fix")
        reason = ""
        if status != "patched":
            reason = _str(raw, "reason", where)
            sourced.urls(raw, where)
        last = _fix(raw["last_fix"], f"{where} last_fix") if raw.get("last_fix") is not None else None
        lines.append(Line(version, _str(raw, "name", where, limit=80), status, parsed, last, reason))
    return Table(about, lines)


SPEC: sourced.Spec[Table] = sourced.Spec(
    title="ESXi build table", format=FORMAT, schema=SCHEMA, packaged="data/esxi-builds.json", file="esxi-builds.json", env=ENV,
    config_key="esxi_builds_url", rows=("lines",), max_age_days=MAX_AGE_DAYS, build=_build,
    count=lambda t: f"{len(t.lines)} release lines", about=lambda t: t.about)


def parse(data: bytes, origin: str) -> Table:
    """The table in DATA, validated whole; TableError names the first thing wrong."""
    return sourced.parse(SPEC, data, origin)


def bundled() -> Table:
    return sourced.packaged(SPEC)


def installed_path() -> str:
    return SPEC.installed_path()


def current() -> Table:
    """The table a scan judges with: the installed copy when it is valid and compiled no earlier
    than the bundled one, else the bundled table (saying why the installed one was ignored)."""
    return sourced.current(SPEC)


def load() -> Table | Unavailable:
    """current() for the collector: a table that cannot be used is an Unavailable fact."""
    return sourced.load(SPEC)
