"""The ESXi build table HV-PATCH-100 judges against: for each release line the latest build that
fixes security issues (with its VMSA and CVEs), or why the line gets no fix any more.

The bundled table (data/esxi-builds.json) is compiled by hand from VMware's own CVE records and
advisories; `hyperward db update` replaces the installed copy (HYPERWARD_ESXI_BUILDS, else
esxi-builds.json in hyperward's state directory) from the config's `[vulndb] esxi_builds_url`.
A scan uses whichever of the two was compiled later, so an old download never hides a newer
bundled table. A table is validated whole before it is used or written: a garbled download is
one error and the copy on disk stays.

Release lines are keyed by version prefix ("8.0.3", "9.1") because build numbers are global, not
per line: ESXi 8.0 Update 2e (24789317) has a higher build than 8.0 Update 3f (24784735).
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import field
from importlib import resources
from typing import Any

from ...paths import data_file
from ...records import frozen

FORMAT = "hyperward-esxi-builds"
SCHEMA = 1
ENV = "HYPERWARD_ESXI_BUILDS"
MAX_SIZE = 1024 * 1024
STATUSES = ("patched", "no_fix", "end_of_support")
_VERSION = re.compile(r"^\d+(?:\.\d+){0,3}$")
_ADVISORY = re.compile(r"^VMSA-\d{4}-\d{4}(?:\.\d+)?$")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,7}$")
#: boot.cfg's build= line, as esximage writes it: <version>-<quarter>.<patch>.<build>
#: (KB 395110: "8.0.3-0.70.24674464" is 8.0 Update 3e)
BOOT_BUILD = re.compile(r"^(\d+\.\d+\.\d+)-\d+\.\d+\.(\d{5,9})$")


class TableError(Exception):
    """A build table that cannot be used; the message names what is wrong."""


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
    compiled: datetime.date
    covers: str
    lines: list[Line]
    origin: str
    #: why an installed copy was not used (unreadable, invalid), for the results to say
    ignored: str | None = None

    def line_for(self, version: str) -> Line | None:
        parts = version.strip().split(".")
        best: Line | None = None
        for line in self.lines:
            prefix = line.version.split(".")
            if parts[:len(prefix)] == prefix and (best is None or len(prefix) > len(best.version.split("."))):
                best = line
        return best


def _str(obj: dict[str, Any], key: str, where: str, pattern: re.Pattern[str] | None = None, limit: int = 2000) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise TableError(f"{where}: {key!r} must be a non-empty string")
    if pattern is not None and not pattern.match(value):
        raise TableError(f"{where}: {key!r} is {value[:40]!r}, not in the expected form")
    return value


def _urls(obj: dict[str, Any], where: str) -> list[str]:
    urls = obj.get("sources")
    if not (isinstance(urls, list) and urls and all(isinstance(u, str) and u.startswith("https://") and len(u) < 500 for u in urls)):
        raise TableError(f"{where}: 'sources' must be a non-empty list of https:// URLs")
    return list(urls)


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
               list(cves), _urls(obj, where))


def parse(data: bytes, origin: str) -> Table:
    """The table in DATA, validated whole; TableError names the first thing wrong."""
    if len(data) > MAX_SIZE:
        raise TableError(f"larger than {MAX_SIZE} bytes")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TableError(f"not JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TableError(f"not a hyperward ESXi build table (\"format\" is not {FORMAT!r})")
    if doc.get("schema") != SCHEMA:
        raise TableError(f"schema {repr(doc.get('schema'))[:20]} is not {SCHEMA} (a newer hyperward may read it)")
    try:
        compiled = datetime.date.fromisoformat(_str(doc, "compiled", "table"))
    except ValueError:
        raise TableError("'compiled' must be a date (YYYY-MM-DD)") from None
    covers = _str(doc, "covers", "table", limit=4000)
    _urls(doc, "table")
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
            _urls(raw, where)
        last = _fix(raw["last_fix"], f"{where} last_fix") if raw.get("last_fix") is not None else None
        lines.append(Line(version, _str(raw, "name", where, limit=80), status, parsed, last, reason))
    return Table(compiled, covers, lines, origin)


def bundled() -> Table:
    data = resources.files("hyperward").joinpath("data/esxi-builds.json").read_bytes()
    return parse(data, "bundled")


def installed_path() -> str:
    return data_file(ENV, "esxi-builds.json")


def _read_installed(path: str) -> bytes | None:
    """The installed copy's bytes; None when there is none. Opened without following a symlink
    and only as a regular file (a FIFO planted there must not hang the scan)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        import stat

        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError("not a regular file")
        return handle.read(MAX_SIZE + 1)


def current() -> Table:
    """The table a scan judges with: the installed copy when it is valid and compiled no earlier
    than the bundled one, else the bundled table (saying why the installed one was ignored)."""
    base = bundled()
    path = installed_path()
    try:
        data = _read_installed(path)
        if data is None:
            return base
        table = parse(data, path)
    except (OSError, TableError) as exc:
        return Table(base.compiled, base.covers, base.lines, base.origin, ignored=f"{path}: {exc}")
    return table if table.compiled >= base.compiled else base
