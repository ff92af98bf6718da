"""What the machine formats (SARIF, JUnit, OCSF, Prometheus) share: where a finding was decided, a
fingerprint that survives re-runs, and a check's help text. One place, so the formats never disagree
about which file and line a finding names."""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..model import Finding, Severity
from ..records import frozen

if TYPE_CHECKING:
    from ..engine import ScanReport

#: kernel interfaces: a path there is a fact the kernel reports, not a file anyone edits
_KERNEL_TREES = ("/proc/", "/sys/")


@frozen
class Location:
    """A file and line on the audited host, or (file None) a stable logical name for the resource."""

    file: str | None
    line: int | None
    key: str | None
    logical: str


def location(f: Finding) -> Location:
    """The deciding file/line from the result's details ("file", "line", "key"); a path under /proc or
    /sys, or no file at all, is a logical location named after the platform and the resource."""
    details = f.result.details
    raw_file, raw_line, raw_key = details.get("file"), details.get("line"), details.get("key")
    key = raw_key if isinstance(raw_key, str) else None
    line = raw_line if isinstance(raw_line, int) and not isinstance(raw_line, bool) and raw_line > 0 else None
    logical = f"{f.result.platform or 'host'}:{f.result.resource}"
    if not isinstance(raw_file, str) or not raw_file.startswith("/"):
        return Location(None, None, key, logical)
    path = raw_file
    if ":" in path:  # "/proc/cmdline:pcie_acs_override": a file and the token in it
        path, _, token = path.partition(":")
        key = key or token
    if path.startswith(_KERNEL_TREES) or "/../" in path or path.endswith("/.."):
        return Location(None, None, key, f"{logical}@{path}")
    return Location(path, line, key, logical)


def fingerprint(f: Finding, host: str) -> str:
    """Stable across runs of the same host: the check, the resource and the host, never the message
    (which carries versions and counts that change while the finding stays the same)."""
    text = "\0".join((f.check_id, f.result.platform or "", f.result.resource, host))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class ReportView:
    """Per report, what several formats ask of every finding: its location, its fingerprint, its
    check's help and the status counts. `-o r.sarif -o r.xml -o r.ocsf.json` renders three formats
    from one report; each used to compute every location and fingerprint again.

    Entries are keyed by the finding object's id(); the view holds a tuple of the findings it was
    made for, so no id can be reused by another object while the view lives, and `view()` makes a
    new view when the report's findings are no longer exactly those objects."""

    __slots__ = ("_counts", "_fingerprints", "_helps", "_locations", "findings", "host")

    def __init__(self, report: ScanReport) -> None:
        self.findings = tuple(report.findings)
        self.host = report.facts.meta.hostname
        self._locations: dict[int, Location] = {}
        self._fingerprints: dict[int, str] = {}
        self._helps: dict[str, CheckHelp] | None = None
        self._counts: dict[str, int] | None = None

    def fits(self, report: ScanReport) -> bool:
        findings = report.findings
        return (self.host == report.facts.meta.hostname and len(findings) == len(self.findings)
                and all(map(operator.is_, findings, self.findings)))

    def location(self, f: Finding) -> Location:
        found = self._locations.get(id(f))
        if found is None:
            found = self._locations[id(f)] = location(f)
        return found

    def fingerprint(self, f: Finding) -> str:
        found = self._fingerprints.get(id(f))
        if found is None:
            found = self._fingerprints[id(f)] = fingerprint(f, self.host)
        return found

    def helps(self, report: ScanReport) -> dict[str, CheckHelp]:
        if self._helps is None:
            self._helps = check_help(report)
        return self._helps

    def counts_by_status(self, report: ScanReport) -> dict[str, int]:
        """A copy (callers may change theirs) of ScanReport.counts_by_status."""
        if self._counts is None:
            self._counts = report.counts_by_status()
        return dict(self._counts)


def view(report: ScanReport) -> ReportView:
    """The report's shared view, made on first use (and again when its findings changed)."""
    cached = report.render_cache
    if isinstance(cached, ReportView) and cached.fits(report):
        return cached
    made = ReportView(report)
    report.render_cache = made
    return made


#: what json.dumps (ensure_ascii) escapes and orjson writes as it is: DEL and everything past ASCII.
#: Guests and tenants choose names and messages; a report piped to a terminal must carry no raw C1
#: control (U+009B is CSI) or bidirectional override, so the machine formats stay pure ASCII.
_BEYOND_ASCII = re.compile("[\x7f-\U0010ffff]")
_orjson_dumps: Callable[[Any], bytes] | None = None


def _load_orjson() -> Callable[[Any], bytes]:
    """orjson on first use: it imports uuid and platform (3 ms) that a text-only scan never needs."""
    global _orjson_dumps
    import functools

    import orjson

    # dataclasses and datetimes raise as they do under json.dumps: a record that reached a report
    # without its own serializer (one with a secret among its fields) must stop the render, not leak
    _orjson_dumps = functools.partial(orjson.dumps, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME)
    return _orjson_dumps


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def encode_json(value: Any) -> str:
    """Compact, ASCII-only JSON: the same values json.dumps writes, 5-8x faster on a 1,000-guest
    report (orjson). Strings orjson refuses (lone surrogates from undecodable file names, integers
    beyond 64 bits, keys that are not strings) go through json.dumps, which writes them escaped or
    converted as it always has; non-ASCII characters orjson writes as UTF-8 are escaped afterwards,
    as json.dumps would (they occur only inside strings, so the escape cannot touch the structure).
    A NaN becomes null, where json.dumps would write NaN, which is not JSON."""
    dumps = _orjson_dumps or _load_orjson()
    try:
        data = dumps(value)
    except TypeError:  # orjson.JSONEncodeError; json.dumps then raises its own TypeError where it too cannot
        return json.dumps(value, separators=(",", ":"))
    if data.isascii() and b"\x7f" not in data:
        return data.decode("ascii")
    return _BEYOND_ASCII.sub(_escape, data.decode("utf-8"))


#: GitHub's code-scanning convention: critical >= 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0",
                     Severity.INFO: "0.0"}


@frozen
class CheckHelp:
    title: str
    rationale: str
    fix: str
    urls: list[str]
    references: list[str]


def check_help(report: ScanReport) -> dict[str, CheckHelp]:
    """Each check of the report once, with what a person needs to act on it."""
    from ..catalog import catalog
    from ..references import check_urls

    entries = catalog()
    out: dict[str, CheckHelp] = {}
    for f in report.findings:
        if f.check_id in out:
            continue
        entry = entries.get(f.check_id)
        sources = entry.sources if entry else ""
        fix = f.meta.fix or (entry.remediation if entry else "")
        references = [*f.meta.references, *(s.strip() for s in sources.split(";") if s.strip())]
        out[f.check_id] = CheckHelp(f.meta.title, f.meta.rationale.strip() or f.meta.title, fix,
                                    check_urls(f.meta, sources), references)
    return out
