"""hyperward's own scan history (SQLite), written only by `hyperward scan --record`, and the reading
of OpenVAS/Greenbone and Nessus report files, for HV-SCAN-001."""

from __future__ import annotations

import datetime
import email.utils
import glob
import os
import sqlite3
import urllib.parse
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET

from .facts import ScanRecord
from .paths import data_file
from .safefile import PRIVATE, Ownership, UnsafePath, prepare_database, require_regular
from .model import Status, Unavailable

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans(
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, host TEXT NOT NULL, root TEXT NOT NULL, profile TEXT NOT NULL,
    vulnerability_scan INTEGER NOT NULL, failed INTEGER NOT NULL, errors INTEGER NOT NULL, passed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results(
    scan_id INTEGER NOT NULL REFERENCES scans(id) ON DELETE CASCADE, check_id TEXT NOT NULL, resource TEXT NOT NULL,
    status TEXT NOT NULL, severity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scans_host ON scans(host, started_at);
"""
MAX_REPORT = 512 * 1024 * 1024


def default_path() -> str:
    """$HYPERWARD_HISTORY, else /var/lib/hyperward (root) or the user's XDG data directory."""
    return data_file("HYPERWARD_HISTORY", "history.sqlite")


def record(path: str, report: object, ownership: Ownership = PRIVATE) -> int:
    """Store one scan's results. A scan counts as a vulnerability scan when HV-VULN-001 judged the
    packages against an advisory database (it was not an error)."""
    from .engine import ScanReport

    assert isinstance(report, ScanReport)
    prepare_database(path, ownership)
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.executescript(SCHEMA)
        vuln = any(f.check_id == "HV-VULN-001" and f.status is not Status.ERROR for f in report.findings)
        counts = report.counts_by_status()
        with conn:
            cur = conn.execute(
                "INSERT INTO scans(started_at, host, root, profile, vulnerability_scan, failed, errors, passed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (report.facts.meta.collected_at, report.facts.meta.hostname, report.facts.meta.root, report.profile, int(vuln),
                 counts["fail"], counts["error"], counts["pass"]),
            )
            conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?)",
                             [(cur.lastrowid, f.check_id, f.result.resource, f.status.value, f.severity.label) for f in report.findings])
            return int(cur.lastrowid or 0)
    finally:
        conn.close()


def read_history(path: str, host: str) -> list[ScanRecord] | Unavailable | None:
    if not os.path.exists(path):
        return None
    try:
        require_regular(path)
    except (OSError, UnsafePath) as exc:
        return Unavailable(path, "denied" if isinstance(exc, PermissionError) else "invalid", str(exc).removeprefix(f"{path}: "))
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, timeout=10)
        try:
            rows = conn.execute("SELECT started_at FROM scans WHERE host = ? AND vulnerability_scan = 1 ORDER BY started_at DESC LIMIT 1",
                                (host,)).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return Unavailable(path, "invalid", f"not a hyperward scan history ({exc})")
    return [ScanRecord(f"hyperward history {path}", rows[0][0], [host])] if rows else []


def _when(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip()
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            try:
                parsed = datetime.datetime.strptime(text, "%a %b %d %H:%M:%S %Y")
            except ValueError:
                return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC).isoformat(timespec="seconds")


def parse_report(path: str, data: bytes) -> list[ScanRecord]:
    """Nessus v2 (.nessus: ReportHost with HOST_START, host-ip, hostname) or a Greenbone/OpenVAS
    report export (report/host with ip, start and hostname details, or the report's scan_start)."""
    root = DET.fromstring(data, forbid_dtd=True)
    out = []
    if root.tag == "NessusClientData_v2":
        for host in root.iter("ReportHost"):
            tags = {t.get("name"): (t.text or "") for t in host.iter("tag")}
            when = _when(tags.get("HOST_START") or tags.get("HOST_END"))
            targets = [v for v in (host.get("name"), tags.get("host-ip"), tags.get("hostname"), tags.get("host-fqdn")) if v]
            if when:
                out.append(ScanRecord(f"Nessus {path}", when, targets))
        return out
    scan_start = _when(root.findtext(".//scan_start"))
    for host in root.iter("host"):
        ip = (host.findtext("ip") or (host.text or "")).strip()
        names = [(d.findtext("value") or "").strip() for d in host.iter("detail") if d.findtext("name") == "hostname"]
        when = _when(host.findtext("start")) or scan_start
        targets = [t for t in (ip, *names) if t]
        if when and targets:
            out.append(ScanRecord(f"OpenVAS {path}", when, targets))
    return out


def read_reports(patterns: list[str]) -> tuple[list[ScanRecord], list[Unavailable]]:
    """Report files are read the way RootFS reads (anyone who can write the report directory
    chooses what the glob finds): regular files only, never a symlink followed, never a FIFO
    waited on, at most MAX_REPORT bytes."""
    from .collect.fs import read_local

    records: list[ScanRecord] = []
    problems: list[Unavailable] = []
    for pattern in patterns:
        paths = sorted(glob.glob(pattern))
        if not paths:
            problems.append(Unavailable(pattern, "missing", "no report file matches"))
        for path in paths:
            data = read_local(path, MAX_REPORT)
            if isinstance(data, Unavailable):
                problems.append(data)
                continue
            try:
                records.extend(parse_report(path, data))
            except (ET.ParseError, ValueError) as exc:
                problems.append(Unavailable(path, "invalid", f"not a Nessus or OpenVAS report ({type(exc).__name__}: {str(exc)[:100]})"))
            except Exception as exc:  # defusedxml refusals and the like: name the file, go on
                problems.append(Unavailable(path, "invalid", f"refused ({type(exc).__name__})"))
    return records, problems
