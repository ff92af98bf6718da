"""The monitor's heartbeat as a scan reads it (HV-MON-005): a few rows of the monitor database's
meta table, opened read-only. Its own module so that collectors read the monitor's state without
importing the monitor."""

from __future__ import annotations

import json
import sqlite3
import urllib.parse

from .records import frozen
from .safefile import UnsafePath, require_regular


class HeartbeatError(Exception):
    """The database cannot be read; the message names the path."""


@frozen
class Heartbeat:
    pid: int | None
    started: float | None
    last_sample: float | None
    interval: float | None
    connected: bool
    source: str | None
    domains: int | None
    last_error: str | None


def open_read_only(path: str, immutable: bool = False) -> sqlite3.Connection:
    """immutable: a database in an offline image, which nothing writes (no -shm needed)."""
    try:
        require_regular(path)
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro{'&immutable=1' if immutable else ''}", uri=True, timeout=5)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise HeartbeatError(f"{path}: not a hyperward monitor database ({exc})") from None
    except UnsafePath as exc:
        raise HeartbeatError(str(exc)) from None
    except OSError as exc:
        raise HeartbeatError(f"{path}: {exc.strerror or exc}") from None
    return conn


def read_heartbeat(conn: sqlite3.Connection) -> Heartbeat:
    values = {}
    for key, value in conn.execute("SELECT key, value FROM meta WHERE key LIKE 'heartbeat.%'"):
        try:
            values[key.removeprefix("heartbeat.")] = json.loads(value)
        except (TypeError, ValueError):
            continue

    def num(key: str) -> float | None:
        value = values.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    pid = num("pid")
    domains = num("domains")
    return Heartbeat(int(pid) if pid is not None else None, num("started"), num("last_sample"), num("interval"),
                     bool(values.get("connected")), values.get("source") if isinstance(values.get("source"), str) else None,
                     int(domains) if domains is not None else None,
                     values.get("last_error") if isinstance(values.get("last_error"), str) else None)
