"""What the scan history and third-party scanners' report files say about past vulnerability scans
(HV-SCAN-001), read-only: hyperward's own history database, and Nessus / OpenVAS (Greenbone) report
files named in the config. history.py writes the database; this module only reads it."""

from __future__ import annotations

import datetime
import email.utils
import glob
import os
import sqlite3
import urllib.parse
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET

from ..facts import ScanRecord
from ..model import Unavailable
from ..safefile import UnsafePath, require_regular

MAX_REPORT = 512 * 1024 * 1024


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
    from .fs import read_local

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
