"""hyperward's own scan history (SQLite), written only by `hyperward scan --record`. Scans read it
(and third-party report files) through collect/scan_reports.py."""

from __future__ import annotations

import sqlite3


from .paths import data_file
from .safefile import PRIVATE, Ownership, prepare_database
from .model import Status

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
