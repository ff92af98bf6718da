"""The monitor's SQLite database: samples (rates), alerts, gaps, definitions, seasonal profiles,
and a heartbeat that `monitor status` and HV-MON-005 read.

WAL mode, one transaction per interval: a crash loses at most the interval in flight, and readers
(`monitor status`, `history`, a scan) never block the writer.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..heartbeat import Heartbeat as Heartbeat, HeartbeatError, open_read_only, read_heartbeat as read_heartbeat  # the monitor writes what heartbeat.py reads
from ..safefile import PRIVATE, Ownership, UnsafePath, prepare_database
from .rates import RATE_COLUMNS, Rates

if TYPE_CHECKING:
    from .alerts import Alert  # annotations only: a scan reading the heartbeat needs no detector

SCHEMA_VERSION = 1
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS vms(uuid TEXT PRIMARY KEY, name TEXT, vcpus INTEGER, first_seen REAL, last_seen REAL);
CREATE TABLE IF NOT EXISTS samples({", ".join(f"{c} {'TEXT' if c == 'uuid' else 'REAL'}" for c in RATE_COLUMNS)});
CREATE INDEX IF NOT EXISTS samples_uuid_ts ON samples(uuid, ts);
CREATE TABLE IF NOT EXISTS alerts(id INTEGER PRIMARY KEY, key TEXT, kind TEXT, severity TEXT, status TEXT,
    event INTEGER, uuid TEXT, vm TEXT, summary TEXT, observed TEXT, baseline TEXT, action TEXT,
    since REAL, ended REAL, recorded REAL, details TEXT);
CREATE INDEX IF NOT EXISTS alerts_recorded ON alerts(recorded);
CREATE TABLE IF NOT EXISTS gaps(start REAL, end REAL, reason TEXT);
CREATE TABLE IF NOT EXISTS definitions(uuid TEXT PRIMARY KEY, name TEXT, fields TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS profiles(uuid TEXT, metric TEXT, hour INTEGER, highs TEXT, PRIMARY KEY(uuid, metric, hour));
"""


class StoreError(Exception):
    """The database cannot be opened or is not hyperward's; the message names the path."""


def connect(path: str, readonly: bool = False, immutable: bool = False, ownership: Ownership = PRIVATE) -> sqlite3.Connection:
    """immutable: a database in an offline image, which nothing writes (no -shm needed). For writing,
    the file and its directory are made safe first (no symlink, private mode, nobody else writes
    in the directory where SQLite creates -wal and -shm)."""
    if readonly:
        try:
            return open_read_only(path, immutable)
        except HeartbeatError as exc:
            raise StoreError(str(exc)) from None
    try:
        prepare_database(path, ownership)
        conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        conn.commit()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a hyperward monitor database ({exc})") from None
    except UnsafePath as exc:
        raise StoreError(str(exc)) from None
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or exc}") from None
    return conn


class Store:
    def __init__(self, path: str, ownership: Ownership = PRIVATE) -> None:
        self.path = path
        self.conn = connect(path, ownership=ownership)
        self._last_purge = 0.0

    def close(self) -> None:
        try:
            self.conn.commit()
        finally:
            self.conn.close()

    # --- writing --------------------------------------------------------------------------
    def write_interval(self, rates: list[Rates], alerts: Iterable[Alert], heartbeat: dict[str, object]) -> None:
        """Everything one interval produced, in one transaction."""
        now = time.time()
        with self.conn:
            self.conn.executemany(
                f"INSERT INTO samples VALUES ({', '.join('?' * len(RATE_COLUMNS))})", [r.as_row() for r in rates])
            self.conn.executemany(
                "INSERT INTO vms VALUES (?, ?, ?, ?, ?) ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, "
                "vcpus = excluded.vcpus, last_seen = excluded.last_seen",
                [(r.uuid, r.name, r.vcpus, r.ts, r.ts) for r in rates])
            self._alerts(alerts, now)
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(f"heartbeat.{k}", json.dumps(v)) for k, v in heartbeat.items()])

    def _alerts(self, alerts: Iterable[Alert], now: float) -> None:
        self.conn.executemany(
            "INSERT INTO alerts(key, kind, severity, status, event, uuid, vm, summary, observed, baseline, action, "
            "since, ended, recorded, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(a.key, a.kind, a.severity, a.status, int(a.event), a.uuid, a.vm, a.summary, a.observed, a.baseline,
              a.action, a.since, a.ended, now, json.dumps(a.details, sort_keys=True)) for a in alerts])

    def record_alerts(self, alerts: Iterable[Alert]) -> None:
        with self.conn:
            self._alerts(alerts, time.time())

    def record_gap(self, start: float, end: float, reason: str) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO gaps VALUES (?, ?, ?)", (start, end, reason))

    def heartbeat(self, values: dict[str, object]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                  [(f"heartbeat.{k}", json.dumps(v)) for k, v in values.items()])

    def save_definition(self, uuid: str, name: str, fields: dict[str, object]) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO definitions VALUES (?, ?, ?, ?)",
                              (uuid, name, json.dumps(fields, sort_keys=True), time.time()))

    def forget_definition(self, uuid: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM definitions WHERE uuid = ?", (uuid,))

    def save_profiles(self, rows: Iterable[tuple[str, str, int, list[float]]]) -> None:
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?, ?)",
                                  [(u, m, h, json.dumps([round(v, 6) for v in highs])) for u, m, h, highs in rows])

    def purge(self, retention_days: float, now: float | None = None, every_s: float = 3600.0) -> int:
        """Retention runs at most hourly."""
        now = now or time.time()
        if now - self._last_purge < every_s:
            return 0
        self._last_purge = now
        cutoff = now - retention_days * 86400
        with self.conn:
            # Per VM through the (uuid, ts) index: a second index on ts alone would cost every insert.
            uuids = [row[0] for row in self.conn.execute("SELECT uuid FROM vms")]
            removed = sum(self.conn.execute("DELETE FROM samples WHERE uuid = ? AND ts < ?", (u, cutoff)).rowcount for u in uuids)
            self.conn.execute("DELETE FROM alerts WHERE recorded < ?", (cutoff,))
            self.conn.execute("DELETE FROM gaps WHERE end < ?", (cutoff,))
            self.conn.execute("DELETE FROM vms WHERE last_seen < ?", (cutoff,))
        return removed

    # --- reading (also used by status/history through a read-only connection) ---------------
    def definitions(self) -> dict[str, tuple[str, dict[str, object]]]:
        return {uuid: (name, json.loads(fields)) for uuid, name, fields, _ in self.conn.execute("SELECT * FROM definitions")}

    def recent_values(self, window: int, metrics: Iterable[str]) -> dict[tuple[str, str], list[float]]:
        columns = list(metrics)
        out: dict[tuple[str, str], list[float]] = {}
        uuids = [row[0] for row in self.conn.execute("SELECT uuid FROM vms")]
        for uuid in uuids:
            rows = self.conn.execute(
                f"SELECT {', '.join(columns)} FROM samples WHERE uuid = ? ORDER BY ts DESC LIMIT ?", (uuid, window)).fetchall()
            for i, metric in enumerate(columns):
                values = [row[i] for row in reversed(rows) if row[i] is not None]
                if values:
                    out[(uuid, metric)] = values
        return out

    def profiles(self) -> list[tuple[str, str, int, list[float]]]:
        return [(u, m, h, json.loads(highs)) for u, m, h, highs in self.conn.execute("SELECT * FROM profiles")]


