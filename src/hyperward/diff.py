"""What changed between two scans: `hyperward diff OLD NEW` (two JSON reports) or, with no
arguments, the last two scans of one host in the scan history (history.py).

A finding is the pair (check ID, resource): nothing else identifies it across runs. Message text
is not compared (it carries timestamps, ages, counts and versions that move every run), nor the
order of results, nor a severity that a profile or a new hyperward changed: those are the same
finding. What is not a change either: a failure that now could not be judged (an error, not
applicable, a check that did not run, a resource that vanished from a check that did run) is not
"fixed"; it is listed apart as not judged, and a check NEW ran but OLD did not yields "first
checked" findings, which are not regressions either (`--fail-on-new` gates on regressions only).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import urllib.parse
from dataclasses import dataclass, field

from .model import Severity
from .records import frozen

#: the newest report schema this version reads (report/json_format.py's SCHEMA_VERSION)
READS_SCHEMA = 2
MAX_REPORT = 512 * 1024 * 1024
FAILING, PASSING = "fail", ("pass",)
#: a guest's label in resources ("name (uuid)" or Proxmox's "name (101)"), for history rows that
#: carry no details
_GUEST_LABEL = re.compile(r"^(?P<name>.+) \((?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|\d+)\)$")


class DiffError(Exception):
    """An input that cannot be compared; the message names the file."""


@frozen
class Item:
    check_id: str
    resource: str
    status: str
    severity: str
    message: str = ""
    guest: str | None = None
    platform: str | None = None

    @property
    def rank(self) -> int:
        return int(Severity.parse(self.severity)) if self.severity.upper() in Severity.__members__ else 0


@dataclass
class Scan:
    source: str
    host: str
    collected_at: str
    items: dict[tuple[str, str], Item]
    checks: set[str]


@dataclass
class Change:
    kind: str  # new, first_checked, fixed, accepted, not_judged, still_failing
    item: Item
    before: Item | None = None
    why: str = ""


@dataclass
class Diff:
    old: Scan
    new: Scan
    changes: list[Change] = field(default_factory=list)

    def of(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


KINDS = ("new", "first_checked", "fixed", "accepted", "not_judged", "still_failing")
_STATUS_RANK = {"fail": 0, "error": 1, "suppressed": 2, "pass": 3, "not_applicable": 4}


def _add(items: dict[tuple[str, str], Item], item: Item) -> None:
    """A pair reported twice keeps its worst status: order within a report is no signal."""
    key = (item.check_id, item.resource)
    held = items.get(key)
    if held is None or (_STATUS_RANK.get(item.status, 9), -item.rank) < (_STATUS_RANK.get(held.status, 9), -held.rank):
        items[key] = item


def load_report(path: str) -> Scan:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_REPORT + 1)
    except OSError as exc:
        raise DiffError(f"{path}: {exc.strerror or exc}") from None
    return scan_from_document(parse_document(data, path), path)


def parse_document(data: bytes, path: str) -> dict[str, object]:
    """A hyperward JSON report's top level, or a DiffError naming PATH and what is wrong with it
    (also `hyperward fleet ingest`'s judge of bad input)."""
    if len(data) > MAX_REPORT:
        raise DiffError(f"{path}: larger than {MAX_REPORT // (1024 * 1024)} MiB, not a hyperward report")
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DiffError(f"{path}: not a JSON document (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        truncated = " (truncated?)" if exc.msg.startswith("Unterminated") or exc.pos >= len(data.rstrip()) - 1 else ""
        raise DiffError(f"{path}: not valid JSON{truncated}: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise DiffError(f"{path}: not a hyperward JSON report (nested too deeply)") from None
    if not isinstance(document, dict) or document.get("tool") != "hyperward" or not isinstance(document.get("results"), list):
        raise DiffError(f"{path}: not a hyperward JSON report (hyperward scan --format json writes one)")
    schema = document.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise DiffError(f"{path}: not a hyperward JSON report (no schema version)")
    if schema > READS_SCHEMA:
        raise DiffError(f"{path}: report schema {schema} is newer than this hyperward reads ({READS_SCHEMA}): "
                        f"it was written by hyperward {document.get('version', '?')}; compare it with that version or newer")
    return document


def scan_from_document(document: dict[str, object], path: str) -> Scan:
    items: dict[tuple[str, str], Item] = {}
    results = document["results"]
    assert isinstance(results, list)
    for index, r in enumerate(results):
        raw = [r.get(k) for k in ("id", "resource", "status", "severity")] if isinstance(r, dict) else []
        fields = [v for v in raw if isinstance(v, str)]
        if len(fields) != 4:
            raise DiffError(f"{path}: result {index} is not a hyperward result (id, resource, status and severity are required)")
        details = r.get("details") if isinstance(r.get("details"), dict) else {}
        guest = details.get("guest") if isinstance(details.get("guest"), str) else None
        gid = details.get("guest_id")
        label = f"{guest} ({gid})" if guest and isinstance(gid, str) and gid and gid != guest else guest
        if label is None and _GUEST_LABEL.match(fields[1]):
            label = fields[1]  # a guest check whose details do not name the guest: its resource is the guest's label
        message = r.get("message") if isinstance(r.get("message"), str) else ""
        platform = r.get("platform") if isinstance(r.get("platform"), str) else None
        _add(items, Item(fields[0], fields[1], fields[2], fields[3], message, label, platform))
    host, when = document.get("host"), document.get("collected_at")
    return Scan(path, host if isinstance(host, str) else "?", when if isinstance(when, str) else "?", items, {check for check, _ in items})


def load_history(path: str) -> tuple[Scan, Scan]:
    """The newest recorded scan and the one before it of the same host and root."""
    if not os.path.exists(path):
        raise DiffError(f"{path}: no scan history (record scans with hyperward scan --record), or give two JSON reports")
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, timeout=10)
        try:
            latest = conn.execute("SELECT id, host, root, started_at FROM scans ORDER BY started_at DESC, id DESC LIMIT 1").fetchone()
            if latest is None:
                raise DiffError(f"{path}: the scan history holds no scan yet")
            before = conn.execute("SELECT id, host, root, started_at FROM scans WHERE host = ? AND root = ? AND id != ? "
                                  "ORDER BY started_at DESC, id DESC LIMIT 1", (latest[1], latest[2], latest[0])).fetchone()
            if before is None:
                raise DiffError(f"{path}: only one recorded scan of {latest[1]}: nothing to compare it with yet")
            scans = [_history_scan(conn, path, row) for row in (before, latest)]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DiffError(f"{path}: not a hyperward scan history ({exc})") from None
    return scans[0], scans[1]


def _history_scan(conn: sqlite3.Connection, path: str, row: tuple[int, str, str, str]) -> Scan:
    ident, host, _root, started = row
    items: dict[tuple[str, str], Item] = {}
    for check_id, resource, status, severity in conn.execute(
            "SELECT check_id, resource, status, severity FROM results WHERE scan_id = ?", (ident,)):
        m = _GUEST_LABEL.match(resource)
        _add(items, Item(str(check_id), str(resource), str(status), str(severity), "", resource if m else None))
    return Scan(f"{path} (scan {ident})", host, started, items, {check for check, _ in items})


def compare(old: Scan, new: Scan) -> Diff:
    diff = Diff(old, new)
    for key, now in new.items.items():
        then = old.items.get(key)
        if now.status == FAILING:
            if then is not None and then.status == FAILING:
                diff.changes.append(Change("still_failing", now, then))
            elif now.check_id not in old.checks:
                diff.changes.append(Change("first_checked", now, then, "the older scan did not run this check"))
            else:
                diff.changes.append(Change("new", now, then))
    for key, then in old.items.items():
        if then.status != FAILING:
            continue
        now_item = new.items.get(key)
        if now_item is None:
            why = "the newer scan did not run this check" if then.check_id not in new.checks else "no longer in the report"
            diff.changes.append(Change("not_judged", then, None, why))
        elif now_item.status in PASSING:
            diff.changes.append(Change("fixed", now_item, then))
        elif now_item.status == "suppressed":
            diff.changes.append(Change("accepted", now_item, then))
        elif now_item.status != FAILING:
            diff.changes.append(Change("not_judged", now_item, then, now_item.status.replace("_", " ")))
    diff.changes.sort(key=lambda c: (KINDS.index(c.kind), c.item.guest or "", -c.item.rank, c.item.check_id, c.item.resource))
    return diff


def gate(diff: Diff, threshold: Severity) -> list[Change]:
    """The regressions at or above the threshold."""
    return [c for c in diff.of("new") if c.item.rank >= int(threshold)]


def to_dict(diff: Diff) -> dict[str, object]:
    def row(c: Change) -> dict[str, object]:
        out: dict[str, object] = {"id": c.item.check_id, "resource": c.item.resource, "status": c.item.status,
                                  "severity": c.item.severity, "message": c.item.message}
        if c.item.guest:
            out["guest"] = c.item.guest
        if c.item.platform:
            out["platform"] = c.item.platform
        if c.before is not None:
            out["before"] = {"status": c.before.status, "severity": c.before.severity}
        if c.why:
            out["why"] = c.why
        return out

    new = diff.of("new")
    return {
        "tool": "hyperward", "diff": 1,
        "old": {"source": diff.old.source, "host": diff.old.host, "collected_at": diff.old.collected_at},
        "new": {"source": diff.new.source, "host": diff.new.host, "collected_at": diff.new.collected_at},
        "summary": {kind: len(diff.of(kind)) for kind in KINDS}
        | {"new_by_severity": {s.label: sum(1 for c in new if c.item.rank == int(s)) for s in sorted(Severity, reverse=True)}},
        "changes": {kind: [row(c) for c in diff.of(kind)] for kind in KINDS},
    }


_HEADINGS = {"new": "new", "first_checked": "first checked (the older scan did not run the check)", "fixed": "fixed",
             "accepted": "accepted (now suppressed)", "not_judged": "no longer judged (not fixed)", "still_failing": "still failing"}


def to_text(diff: Diff, verbose: bool = False) -> str:
    """Per host, then per guest: what is new, fixed, accepted, no longer judged; still-failing
    findings as a count unless --verbose."""
    from .textsafe import visible

    lines = [f"hyperward diff: {visible(diff.old.host)} {visible(diff.old.collected_at)} -> "
             f"{visible(diff.new.host)} {visible(diff.new.collected_at)}"]
    if diff.old.host != diff.new.host:
        lines.append(f"warning: the reports are of different hosts ({visible(diff.old.host)}, {visible(diff.new.host)})")
    groups: dict[str, list[Change]] = {}
    for c in diff.changes:
        groups.setdefault(c.item.guest or "", []).append(c)
    for name in sorted(groups, key=lambda g: (g != "", g)):
        changes = groups[name]
        lines.append("")
        lines.append(f"host {visible(diff.new.host)}" if not name else f"guest {visible(name)}")
        for kind in KINDS:
            of_kind = [c for c in changes if c.kind == kind]
            if not of_kind:
                continue
            if kind == "still_failing" and not verbose:
                lines.append(f"  still failing: {len(of_kind)} (-v lists them)")
                continue
            lines.append(f"  {_HEADINGS[kind]}: {len(of_kind)}")
            for c in of_kind:
                label = c.item.severity.upper() if kind in ("new", "first_checked", "still_failing") else c.item.status.replace("_", " ")
                was = f" (was {c.before.severity})" if kind == "still_failing" and c.before and c.before.severity != c.item.severity else ""
                why = f" ({c.why})" if c.why and kind == "not_judged" else ""
                said = c.item.message.removeprefix(f"{c.item.resource}: ")
                message = f": {visible(said)}" if said and said != c.item.resource and kind in ("new", "first_checked") else ""
                lines.append(f"    {label:<9} {c.item.check_id}  {visible(c.item.resource)}{was}{why}{message}")
    counts = {kind: len(diff.of(kind)) for kind in KINDS}
    new = diff.of("new")
    by_sev = ", ".join(f"{n} {s.label}" for s in sorted(Severity, reverse=True) if (n := sum(1 for c in new if c.item.rank == int(s))))
    lines.append("")
    lines.append(f"Diff: {counts['new']} new{f' ({by_sev})' if by_sev else ''}, {counts['fixed']} fixed, "
                 f"{counts['still_failing']} still failing, {counts['accepted']} accepted, {counts['not_judged']} no longer judged, "
                 f"{counts['first_checked']} first checked")
    return "\n".join(lines) + "\n"
