"""The fleet database: many hosts' JSON reports (hyperward scan --format json) in SQLite or
PostgreSQL, for `hyperward fleet ingest|report|diff`.

One schema serves both backends; the SQL is written once with `?` placeholders (psycopg's `%s` is
substituted mechanically) and every value is a parameter. A report is identified by (host,
collected_at, sha256 of the file's bytes): ingesting it again changes nothing. A file that is not a
report a hyperward of this version reads, or a host whose scan failed (the Ansible role's sidecar
says so), is stored as a row of its own with the reason, so the fleet report names the host instead
of silently showing its older results as current.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import sqlite3
import stat
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from . import diff as differ
from .paths import data_file
from .records import frozen
from .safefile import PRIVATE, Ownership, UnsafePath, prepare_database

SCHEMA_VERSION = 2
#: failing findings weigh by severity when ranking hosts
WEIGHTS = {"critical": 10, "high": 5, "medium": 2, "low": 1, "info": 0}
SIDECAR_SUFFIX = ".meta.json"
MAX_SIDECAR = 64 * 1024

#: (version, statements); {id} is the dialect's auto-increment primary key
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        "CREATE TABLE reports("
        " id {id}, host TEXT NOT NULL, collected_at TEXT NOT NULL, digest TEXT NOT NULL, source TEXT NOT NULL,"
        " ingested_at TEXT NOT NULL, state TEXT NOT NULL, problem TEXT NOT NULL, platforms TEXT NOT NULL,"
        " site TEXT NOT NULL, grp TEXT NOT NULL, schema_version INTEGER NOT NULL, tool_version TEXT NOT NULL,"
        " failing INTEGER NOT NULL, score INTEGER NOT NULL, UNIQUE(host, collected_at, digest))",
        "CREATE TABLE results("
        " report_id BIGINT NOT NULL REFERENCES reports(id) ON DELETE CASCADE, check_id TEXT NOT NULL,"
        " resource TEXT NOT NULL, status TEXT NOT NULL, severity TEXT NOT NULL, category TEXT NOT NULL,"
        " title TEXT NOT NULL, platform TEXT NOT NULL)",
        "CREATE INDEX reports_host ON reports(host, collected_at)",
        "CREATE INDEX reports_when ON reports(collected_at)",
        "CREATE INDEX reports_digest ON reports(digest)",
        "CREATE INDEX results_report ON results(report_id, status)",
        "CREATE INDEX results_check ON results(check_id, status)",
    ]),
    # trends counted in SQL: the (report, check, resource) probes of a pair's two reports, and each
    # pair's counts kept (a pair is counted once, at ingest, not at every report)
    (2, [
        "CREATE INDEX results_pair ON results(report_id, check_id, resource, status)",
        ("CREATE TABLE trend_pairs("
         " report_id BIGINT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,"
         " prev_id BIGINT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,"
         " added INTEGER NOT NULL, fixed INTEGER NOT NULL, PRIMARY KEY(report_id, prev_id))"),
        "CREATE INDEX trend_pairs_prev ON trend_pairs(prev_id)",
        "{fill_trends}",
    ]),
]

#: each good report with the good report before it of the same host: ORDER BY host, collected_at,
#: id, the order the hosts' reports have everywhere else
PAIRS = ("SELECT id, prev, host, collected_at FROM (SELECT id, host, collected_at,"
         " LAG(id) OVER (PARTITION BY host ORDER BY collected_at, id) AS prev FROM reports WHERE state = 'ok') o"
         " WHERE prev IS NOT NULL")
#: new in pair p: fails in p.id, did not fail in p.prev, and p.prev ran the check (diff.compare's rule)
ADDED = ("(SELECT count(*) FROM results n WHERE n.report_id = p.id AND n.status = 'fail'"
         " AND EXISTS (SELECT 1 FROM results c WHERE c.report_id = p.prev AND c.check_id = n.check_id)"
         " AND NOT EXISTS (SELECT 1 FROM results o WHERE o.report_id = p.prev AND o.check_id = n.check_id"
         " AND o.resource = n.resource AND o.status = 'fail'))")
#: fixed in pair p: failed in p.prev, passes in p.id (a check that stopped being judged fixes nothing)
FIXED = ("(SELECT count(*) FROM results o WHERE o.report_id = p.prev AND o.status = 'fail'"
         " AND EXISTS (SELECT 1 FROM results n WHERE n.report_id = p.id AND n.check_id = o.check_id"
         " AND n.resource = o.resource AND n.status = 'pass'))")
#: pairs whose reports changed (a report ingested between two, retention) are forgotten, then every
#: pair not yet counted is; ON CONFLICT: a concurrent ingest counted it first
FORGET_TRENDS = f"DELETE FROM trend_pairs WHERE (report_id, prev_id) NOT IN (SELECT id, prev FROM ({PAIRS}) q)"
FILL_TRENDS = (f"INSERT INTO trend_pairs(report_id, prev_id, added, fixed) SELECT p.id, p.prev, {ADDED}, {FIXED} FROM ({PAIRS}) p"
               " WHERE NOT EXISTS (SELECT 1 FROM trend_pairs t WHERE t.report_id = p.id AND t.prev_id = p.prev) ON CONFLICT DO NOTHING")


class FleetError(Exception):
    """The database cannot be used (locked, down, newer schema); one line, the URL redacted."""


def default_path() -> str:
    return data_file("HYPERWARD_FLEET_DB", "fleet.sqlite")


def redact(url: str) -> str:
    """A PostgreSQL URL without its password (user:secret@ becomes user:***@; password= too)."""
    if not is_postgres(url):
        return url
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostpart = netloc.rpartition("@")
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{hostpart}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in urllib.parse.parse_qsl(parts.query) if k.lower() == "password" and v]
    return [s for s in found if s] + [urllib.parse.unquote(s) for s in found if s]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class _Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Database:
    """One connection, either backend. Errors from the driver become FleetError with the URL
    redacted and any password scrubbed from the driver's text."""

    def __init__(self, url: str, ownership: Ownership = PRIVATE, wait: float = 30.0, create: bool = True) -> None:
        self.url = url
        self.postgres = is_postgres(url)
        self._secrets = _secrets(url) if self.postgres else []
        self.conn: Any
        if self.postgres:
            try:
                import psycopg
            except ImportError:
                raise FleetError("a PostgreSQL fleet database needs psycopg: pip install 'hyperward[fleet-postgres]'") from None
            try:
                self.conn = psycopg.connect(url, connect_timeout=max(1, int(wait)), autocommit=False)
                # a table another session holds locked: give up after --wait like SQLite, not hang
                self.conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{max(1, int(wait * 1000))}ms",))
                self.conn.commit()
            except psycopg.Error as exc:
                raise FleetError(f"cannot connect to {redact(url)}: {self._scrub(str(exc))}") from None
        else:
            if not create and not os.path.lexists(url):
                raise FleetError(f"{url}: no fleet database yet (hyperward fleet ingest creates it)")
            try:
                prepare_database(url, ownership)
            except UnsafePath as exc:
                raise FleetError(str(exc)) from None
            except OSError as exc:
                raise FleetError(f"cannot create {url}: {exc.strerror or exc}") from None
            self.conn = sqlite3.connect(url, timeout=wait)
            self.conn.execute("PRAGMA foreign_keys = ON")
        self._migrate()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return " ".join(text.split())

    def fail(self, exc: Exception) -> FleetError:
        what = str(exc)
        if not self.postgres and "locked" in what:
            return FleetError(f"{self.url}: the fleet database is locked by another process (try again when it finishes)")
        return FleetError(f"{redact(self.url)}: {self._scrub(what)}")

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def execute(self, sql: str, params: Sequence[object] = ()) -> _Cursor:
        try:
            return self.conn.execute(self._sql(sql), tuple(params))  # type: ignore[no-any-return]
        except (sqlite3.Error, self._driver_error()) as exc:
            raise self.fail(exc) from None

    def _driver_error(self) -> type[Exception]:
        if self.postgres:
            import psycopg

            return psycopg.Error
        return sqlite3.Error

    def commit(self) -> None:
        try:
            self.conn.commit()
        except (sqlite3.Error, self._driver_error()) as exc:
            raise self.fail(exc) from None

    def rollback(self) -> None:
        try:
            self.conn.rollback()
        except Exception:  # noqa: BLE001  (the connection may already be gone; the first error is the one reported)
            pass

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

    def _migrate(self) -> None:
        try:
            self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
            row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise FleetError(f"{redact(self.url)}: fleet database schema {current} is newer than this hyperward "
                                 f"({SCHEMA_VERSION}); use the hyperward that wrote it")
            ident = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY" if self.postgres else "INTEGER PRIMARY KEY"
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    self.conn.execute(FILL_TRENDS if statement == "{fill_trends}" else statement.replace("{id}", ident))
                self.conn.execute(self._sql("INSERT INTO schema_version(version) VALUES (?)"), (version,))
            self.conn.commit()
        except FleetError:
            self.rollback()
            raise
        except (sqlite3.Error, self._driver_error()) as exc:
            self.rollback()
            raise self.fail(exc) from None

    def insert_results(self, rows: list[tuple[object, ...]]) -> None:
        """COPY on PostgreSQL (a row-at-a-time INSERT is twenty times slower over 3,000 results)."""
        try:
            if self.postgres:
                with self.conn.cursor() as cur:
                    with cur.copy("COPY results(report_id, check_id, resource, status, severity, category, title, platform) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            else:
                self.conn.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except (sqlite3.Error, self._driver_error()) as exc:
            raise self.fail(exc) from None


def open_database(url: str, ownership: Ownership = PRIVATE, wait: float = 30.0, create: bool = True) -> Database:
    return Database(url, ownership, wait, create)


# ---------------------------------------------------------------- ingest


@frozen
class Labels:
    """Where a host sits: from --site/--group, else from the report's sidecar."""

    site: str = ""
    group: str = ""


@frozen
class Outcome:
    source: str
    host: str
    state: str  # stored, unchanged, bad_input, scan_failed (stored as such), skipped
    problem: str = ""


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _read_limited(path: str, limit: int) -> bytes:
    """A regular file only (a FIFO must not hang the ingest), at most LIMIT+1 bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(f"{path}: not a regular file")
        return handle.read(limit + 1)


def sidecar_path(report: str) -> str:
    return (report[:-5] if report.endswith(".json") else report) + SIDECAR_SUFFIX


def read_sidecar(path: str) -> dict[str, str]:
    """The Ansible role's `<host>.meta.json`: {"host", "site", "group", "scan_error"}; string
    values only, anything else ignored (a sidecar is as untrusted as the report)."""
    try:
        data = json.loads(_read_limited(path, MAX_SIDECAR)[:MAX_SIDECAR].decode("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if k in ("host", "site", "group", "scan_error") and isinstance(v, str)}


def expand(paths: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """(path, is_sidecar_only): each report under a directory (sorted), each named file; a sidecar
    whose report is missing stands for a host whose scan produced no report."""
    for path in paths:
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            for name in names:
                full = os.path.join(path, name)
                if name.endswith(SIDECAR_SUFFIX):
                    partner = full[: -len(SIDECAR_SUFFIX)] + ".json"
                    if not os.path.exists(partner):
                        yield full, True
                elif name.endswith(".json") and not os.path.isdir(full):
                    yield full, False
        elif path.endswith(SIDECAR_SUFFIX) and not os.path.exists(path[: -len(SIDECAR_SUFFIX)] + ".json"):
            yield path, True
        else:
            yield path, False


def _host_from_name(path: str) -> str:
    name = os.path.basename(path)
    for suffix in (SIDECAR_SUFFIX, ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _platforms(document: dict[str, Any]) -> str:
    found = {r.get("platform") for r in document.get("results", []) if isinstance(r, dict) and isinstance(r.get("platform"), str)}
    for g in document.get("guests", []) if isinstance(document.get("guests"), list) else []:
        if isinstance(g, dict) and isinstance(g.get("platform"), str):
            found.add(g["platform"])
    return "," + ",".join(sorted(p for p in found if p)) + "," if found else ","


def ingest_file(db: Database, path: str, labels: Labels, sidecar_only: bool = False, commit: bool = True) -> Outcome:
    """Store one file. A bad file is a row like any other, never an exception, so it costs the good
    ones nothing; COMMIT=False leaves the commit to the caller (one per batch: a commit is an fsync)."""
    sidecar = read_sidecar(path if sidecar_only else sidecar_path(path))
    site, group = labels.site or sidecar.get("site", ""), labels.group or sidecar.get("group", "")
    host = sidecar.get("host") or _host_from_name(path)
    if sidecar_only or sidecar.get("scan_error"):
        problem = sidecar.get("scan_error") or "no report beside the sidecar (the scan produced none)"
        digest = hashlib.sha256(problem.encode()).hexdigest()
        return _store_problem(db, path, host, "scan_failed", f"scan failed: {problem}", digest, site, group,
                              sidecar.get("collected_at", ""), commit)
    try:
        data = _read_limited(path, differ.MAX_REPORT)
    except OSError as exc:
        problem = f"{path}: {exc.strerror or exc}" if exc.strerror else str(exc)
        return _store_problem(db, path, host, "bad_input", problem, hashlib.sha256(problem.encode()).hexdigest(), site, group, "", commit)
    digest = hashlib.sha256(data).hexdigest()
    # the same bytes name the same host and time: a stored good report is recognised before parsing
    known = db.execute("SELECT host FROM reports WHERE digest = ? AND state = 'ok'", (digest,)).fetchone()
    if known is not None:
        return Outcome(path, known[0], "unchanged")
    try:
        document = differ.parse_document(data, path)
    except differ.DiffError as exc:
        return _store_problem(db, path, host, "bad_input", str(exc), digest, site, group, "", commit)
    named, stamped = document.get("host"), document.get("collected_at")
    host = named if isinstance(named, str) else host
    when = stamped if isinstance(stamped, str) else ""
    if db.execute("SELECT 1 FROM reports WHERE host = ? AND collected_at = ? AND digest = ?", (host, when, digest)).fetchone():
        return Outcome(path, host, "unchanged")
    try:
        scan = differ.scan_from_document(document, path)
    except differ.DiffError as exc:
        return _store_problem(db, path, host, "bad_input", str(exc), digest, site, group, when, commit)
    results = document["results"]
    assert isinstance(results, list)  # parse_document checked
    raw = {(r.get("id"), r.get("resource")): r for r in results if isinstance(r, dict)}
    failing = score = 0
    rows: list[tuple[object, ...]] = []
    for (check_id, resource), item in scan.items.items():
        r = raw.get((check_id, resource), {})
        category = r.get("category") if isinstance(r.get("category"), str) else ""
        title = r.get("title") if isinstance(r.get("title"), str) else ""
        if item.status == differ.FAILING:
            failing += 1
            score += WEIGHTS.get(item.severity, 0)
        rows.append((check_id, resource, item.status, item.severity, category, title, item.platform or ""))
    version = document.get("version")
    try:
        # ON CONFLICT: another ingest stored the same report since the SELECT above
        inserted = db.execute(
            "INSERT INTO reports(host, collected_at, digest, source, ingested_at, state, problem, platforms, site, grp,"
            " schema_version, tool_version, failing, score) VALUES (?, ?, ?, ?, ?, 'ok', '', ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING id",
            (host, when, digest, path, _now(), _platforms(document), site, group, document["schema"],
             version if isinstance(version, str) else "", failing, score)).fetchone()
        if inserted is None:
            return Outcome(path, host, "unchanged")
        report_id = inserted[0]
        db.insert_results([(report_id, *row) for row in rows])
        if commit:
            commit_counted(db)
    except FleetError:
        db.rollback()
        raise
    return Outcome(path, host, "stored")


def _store_problem(db: Database, path: str, host: str, state: str, problem: str, digest: str, site: str, group: str,
                   when: str, commit: bool) -> Outcome:
    when = when or _mtime(path)
    if db.execute("SELECT 1 FROM reports WHERE host = ? AND collected_at = ? AND digest = ?", (host, when, digest)).fetchone():
        return Outcome(path, host, "unchanged", problem)
    try:
        db.execute("INSERT INTO reports(host, collected_at, digest, source, ingested_at, state, problem, platforms, site, grp,"
                   " schema_version, tool_version, failing, score) VALUES (?, ?, ?, ?, ?, ?, ?, ',', ?, ?, 0, '', 0, 0)"
                   " ON CONFLICT DO NOTHING",
                   (host, when, digest, path, _now(), state, problem, site, group))
        if commit:
            commit_counted(db)
    except FleetError:
        db.rollback()
        raise
    return Outcome(path, host, state, problem)


def _mtime(path: str) -> str:
    """A bad file has no collected_at of its own: when it was written stands in (it orders it among
    the host's reports)."""
    try:
        st = os.stat(path)
    except OSError:
        return _now()
    return datetime.datetime.fromtimestamp(st.st_mtime, datetime.UTC).isoformat(timespec="seconds")


def apply_retention(db: Database, days: float, now: datetime.datetime | None = None) -> int:
    """Drop reports collected more than DAYS ago, except each host's newest (a host scanned rarely
    still shows in the fleet report, flagged stale)."""
    cutoff = ((now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=days)).isoformat(timespec="seconds")
    doomed = [row[0] for row in db.execute(
        "SELECT r.id FROM reports r WHERE r.collected_at < ? AND r.collected_at < "
        "(SELECT max(o.collected_at) FROM reports o WHERE o.host = r.host)", (cutoff,)).fetchall()]
    for start in range(0, len(doomed), 500):
        chunk = doomed[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        db.execute(f"DELETE FROM results WHERE report_id IN ({marks})", chunk)  # noqa: S608  (marks only)
        db.execute(f"DELETE FROM reports WHERE id IN ({marks})", chunk)  # noqa: S608
    commit_counted(db)
    return len(doomed)


def count_trends(db: Database) -> None:
    """Bring trend_pairs up to the reports as they are now: a pair's counts are taken once, at
    ingest, so `fleet report` over a week of daily scans of 1,000 hosts reads 6,000 stored rows
    instead of comparing 6,000 pairs of 1,700-result reports."""
    db.execute(FORGET_TRENDS)
    db.execute(FILL_TRENDS)


def commit_counted(db: Database) -> None:
    """Commit with the trends counted in the same transaction (a crash leaves neither)."""
    try:
        count_trends(db)
    except FleetError:
        db.rollback()
        raise
    db.commit()


# ---------------------------------------------------------------- queries


@frozen
class Filters:
    platform: str | None = None
    site: str | None = None
    group: str | None = None


@frozen
class HostRow:
    host: str
    report_id: int
    collected_at: str
    state: str
    problem: str
    platforms: str
    site: str
    group: str
    failing: int
    score: int


def latest(db: Database, filters: Filters, until: str | None = None, ok_only: bool = False) -> list[HostRow]:
    """Each host's newest report (collected at or before UNTIL), filtered."""
    inner, outer, params = ["1 = 1"], ["1 = 1"], []
    if until is not None:
        inner.append("collected_at <= ?")
        outer.append("r.collected_at <= ?")
        params.append(until)
    if ok_only:
        inner.append("state = 'ok'")
        outer.append("r.state = 'ok'")
    sql = ("SELECT r.host, r.id, r.collected_at, r.state, r.problem, r.platforms, r.site, r.grp, r.failing, r.score FROM reports r "
           f"JOIN (SELECT host, max(collected_at) AS at FROM reports WHERE {' AND '.join(inner)} GROUP BY host) m "  # noqa: S608
           f"ON r.host = m.host AND r.collected_at = m.at WHERE {' AND '.join(outer)} ORDER BY r.host, r.id DESC")
    rows: dict[str, HostRow] = {}
    for row in db.execute(sql, params + params).fetchall():
        if row[0] in rows:
            continue  # two reports at the same instant: the later ingested wins
        rows[row[0]] = HostRow(row[0], int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], int(row[8]), int(row[9]))
    return [r for r in rows.values() if _matches(r, filters)]


def _matches(row: HostRow, f: Filters) -> bool:
    return ((f.platform is None or f",{f.platform}," in row.platforms)
            and (f.site is None or row.site == f.site) and (f.group is None or row.group == f.group))


def items_of(db: Database, report_id: int) -> differ.Scan:
    items: dict[tuple[str, str], differ.Item] = {}
    for check_id, resource, status, severity in db.execute(
            "SELECT check_id, resource, status, severity FROM results WHERE report_id = ?", (report_id,)).fetchall():
        differ._add(items, differ.Item(check_id, resource, status, severity))
    return differ.Scan(f"report {report_id}", "", "", items, {c for c, _ in items})


def _failing_rows(db: Database, ids: list[int]) -> list[tuple[int, str, str, str, str, str, str]]:
    out: list[tuple[int, str, str, str, str, str, str]] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        out += [tuple(r) for r in db.execute(
            f"SELECT report_id, check_id, resource, severity, category, title, platform FROM results "  # noqa: S608 (marks only)
            f"WHERE status = 'fail' AND report_id IN ({marks})", chunk).fetchall()]
    return out


def _week(when: str) -> str:
    try:
        year, week, _ = datetime.datetime.fromisoformat(when).isocalendar()
    except ValueError:
        return "?"
    return f"{year}-W{week:02d}"


def build_report(db: Database, filters: Filters, stale_days: float = 7.0, weeks: int = 12,
                 now: datetime.datetime | None = None, top: int = 20) -> dict[str, Any]:
    """Everything `hyperward fleet report` shows, as one JSON-able document."""
    now = now or datetime.datetime.now(datetime.UTC)
    hosts = latest(db, filters)
    good = {r.host: r for r in latest(db, filters, ok_only=True)}
    ids = [r.report_id for r in good.values()]
    failing = _failing_rows(db, ids)
    by_id = {r.report_id: r.host for r in good.values()}
    common: dict[str, dict[str, Any]] = {}
    matrix: dict[str, dict[str, int]] = {}
    categories: set[str] = set()
    for report_id, check_id, _resource, severity, category, title, _platform in failing:
        host = by_id[report_id]
        entry = common.setdefault(check_id, {"id": check_id, "title": title, "severity": severity, "hosts": set(), "findings": 0})
        entry["hosts"].add(host)
        entry["findings"] += 1
        cat = category or "?"
        categories.add(cat)
        matrix.setdefault(host, {})
        matrix[host][cat] = matrix[host].get(cat, 0) + 1
    most_common = sorted(common.values(), key=lambda e: (-len(e["hosts"]), -WEIGHTS.get(e["severity"], 0), e["id"]))[:top]
    cutoff = (now - datetime.timedelta(days=stale_days)).isoformat(timespec="seconds")
    worst = sorted(good.values(), key=lambda r: (-r.score, -r.failing, r.host))
    return {
        "tool": "hyperward", "fleet": 1, "generated_at": now.isoformat(timespec="seconds"),
        "filters": {"platform": filters.platform, "site": filters.site, "group": filters.group},
        "hosts": len(hosts),
        "worst_hosts": [{"host": r.host, "score": r.score, "failing": r.failing, "collected_at": r.collected_at,
                         "site": r.site, "group": r.group, "platforms": [p for p in r.platforms.split(",") if p]} for r in worst],
        "most_common": [{"id": e["id"], "title": e["title"], "severity": e["severity"], "hosts": len(e["hosts"]),
                         "findings": e["findings"]} for e in most_common],
        "categories": sorted(categories),
        "matrix": {host: dict(sorted(cats.items())) for host, cats in sorted(matrix.items())},
        "stale": [{"host": r.host, "collected_at": r.collected_at} for r in hosts if r.collected_at < cutoff],
        "stale_days": stale_days,
        "problems": [{"host": r.host, "state": r.state, "problem": r.problem, "collected_at": r.collected_at}
                     for r in hosts if r.state != "ok"],
        "trends": trends(db, filters, weeks, now),
    }


def trends(db: Database, filters: Filters, weeks: int, now: datetime.datetime) -> list[dict[str, Any]]:
    """New and fixed findings per ISO week between each host's consecutive good reports, by
    diff.compare's rules (tests/test_fleet.py holds them to diff.compare's counts and to the
    earlier per-pair Python count): new = fails now, did not fail before, and the older report ran
    the check; fixed = failed before, passes now. Counted in SQL: a pair's counts are stored at
    ingest (trend_pairs); a pair not stored yet (an ingest running beside this report, a database
    changed by hand) is counted here by the same SQL, so the answer never depends on the cache."""
    since = (now - datetime.timedelta(weeks=weeks)).isoformat(timespec="seconds")
    wanted = {r.host for r in latest(db, filters)}
    rows = db.execute(
        f"SELECT p.host, p.collected_at, COALESCE(t.added, {ADDED}), COALESCE(t.fixed, {FIXED}) FROM ({PAIRS}) p"
        " LEFT JOIN trend_pairs t ON t.report_id = p.id AND t.prev_id = p.prev").fetchall()
    per_week: dict[str, dict[str, int]] = {}
    for host, when, added, fixed in rows:
        if host not in wanted or when < since:
            continue
        week = per_week.setdefault(_week(when), {"new": 0, "fixed": 0, "reports": 0})
        week["new"] += int(added)
        week["fixed"] += int(fixed)
        week["reports"] += 1
    return [{"week": w, **counts} for w, counts in sorted(per_week.items())]


def fleet_diff(db: Database, filters: Filters, since: str, until: str | None) -> dict[str, Any]:
    """Per host: its newest good report at SINCE against its newest good report at UNTIL."""
    old = {r.host: r for r in latest(db, filters, until=since, ok_only=True)}
    new = {r.host: r for r in latest(db, filters, until=until, ok_only=True)}
    hosts: list[dict[str, Any]] = []
    totals = {kind: 0 for kind in differ.KINDS}
    for host in sorted(new):
        now_row = new[host]
        then_row = old.get(host)
        if then_row is None:
            hosts.append({"host": host, "new_host": True, "collected_at": now_row.collected_at, "failing": now_row.failing})
            continue
        if then_row.report_id == now_row.report_id:
            continue
        result = differ.compare(items_of(db, then_row.report_id), items_of(db, now_row.report_id))
        result.old.host = result.new.host = host
        result.old.collected_at, result.new.collected_at = then_row.collected_at, now_row.collected_at
        document = differ.to_dict(result)
        for kind in differ.KINDS:
            totals[kind] += len(result.of(kind))
        hosts.append({"host": host, "old": then_row.collected_at, "new": now_row.collected_at,
                      "summary": document["summary"], "changes": document["changes"]})
    return {"tool": "hyperward", "fleet_diff": 1, "since": since, "until": until, "summary": totals, "hosts": hosts}


def build_sarif(db: Database, filters: Filters) -> dict[str, Any]:
    """SARIF 2.1.0 with one run per host (its newest good report), failing findings as results.
    The fingerprints are report/sarif.py's (check, platform, resource, host), so a dashboard that
    took the hosts' own SARIF uploads sees the same findings."""
    from .model import Severity
    from .report.common import SECURITY_SEVERITY
    from .report.sarif import _LEVEL, SCHEMA

    good = sorted(latest(db, filters, ok_only=True), key=lambda r: r.host)
    rows = _failing_rows(db, [r.report_id for r in good])
    per_report: dict[int, list[tuple[int, str, str, str, str, str, str]]] = {}
    for row in rows:
        per_report.setdefault(row[0], []).append(row)
    runs = []
    for host in good:
        findings = sorted(per_report.get(host.report_id, []), key=lambda r: (r[1], r[2]))
        rules: dict[str, int] = {}
        rule_list: list[dict[str, Any]] = []
        results = []
        for _rid, check_id, resource, severity, category, title, platform in findings:
            level = Severity.parse(severity) if severity.upper() in Severity.__members__ else Severity.INFO
            if check_id not in rules:
                rules[check_id] = len(rule_list)
                rule_list.append({"id": check_id, "name": check_id.replace("-", ""), "shortDescription": {"text": title or check_id},
                                  "properties": {"category": category, "tags": ["security", category]}})
            fingerprint = hashlib.sha256("\0".join((check_id, platform, resource, host.host)).encode("utf-8", "surrogateescape")).hexdigest()[:32]
            results.append({"ruleId": check_id, "ruleIndex": rules[check_id], "kind": "fail", "level": _LEVEL[level],
                            "message": {"text": f"{title or check_id}: {resource}"},
                            "locations": [{"logicalLocations": [{"name": resource, "kind": "resource"}]}],
                            "partialFingerprints": {"hyperward/v1": fingerprint},
                            "properties": {"resource": resource, "severity": level.label,
                                           "security-severity": SECURITY_SEVERITY[level]}})
        runs.append({"tool": {"driver": {"name": "hyperward", "rules": rule_list}},
                     "automationDetails": {"id": f"hyperward/{host.host}/{host.collected_at}"},
                     "invocations": [{"executionSuccessful": True, "startTimeUtc": host.collected_at, "machine": host.host}],
                     "results": results,
                     "properties": {"host": host.host, "site": host.site, "group": host.group, "score": host.score}})
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": runs}
