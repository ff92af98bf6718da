"""The offline advisory database: SQLite, filled by `hyperward db import/update`, read by scans.

One table of advisories, one of affected (ecosystem, release, source package, version range) rows
with the index matching needs. Re-importing a source replaces its rows. Scans open the database
read-only (`mode=ro` URI) and never write to it.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import sqlite3
import stat
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from . import safefile
from .facts import Package, PendingUpdate, VulnFacts, VulnMatch
from .parsers.advisories import (
    AdvisoryError,
    Record,
    looks_like_osv,
    parse_debian_tracker,
    parse_osv,
)
from .parsers.apk import apk_compare
from .parsers.versions import deb_compare, rpm_compare
from .paths import data_file
from .records import frozen
from .safefile import PRIVATE, Ownership

SCHEMA_VERSION = "1"
MAX_FILE = 1024 * 1024 * 1024
MAX_ENTRY = 16 * 1024 * 1024
DEFAULT_MAX_AGE_DAYS = 7
DEFAULT_SOURCES = (
    "https://osv-vulnerabilities.storage.googleapis.com/Debian/all.zip",
    "https://security-tracker.debian.org/tracker/data/json",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources(
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, kind TEXT NOT NULL, location TEXT NOT NULL,
    imported_at TEXT NOT NULL, advisories INTEGER NOT NULL, errors INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS advisories(
    id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    advisory TEXT NOT NULL, cve TEXT NOT NULL, severity TEXT, cvss REAL, summary TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS affected(
    advisory_id INTEGER NOT NULL REFERENCES advisories(id) ON DELETE CASCADE,
    ecosystem TEXT NOT NULL, release TEXT NOT NULL, package TEXT NOT NULL,
    introduced TEXT, fixed TEXT, last_affected TEXT);
CREATE INDEX IF NOT EXISTS affected_lookup ON affected(ecosystem, release, package);
CREATE INDEX IF NOT EXISTS advisories_source ON advisories(source_id);
"""


class DatabaseError(Exception):
    pass


def default_path() -> str:
    """$HYPERWARD_VULNDB, else /var/lib/hyperward (root) or the user's XDG data directory."""
    return data_file("HYPERWARD_VULNDB", "advisories.sqlite")


@dataclass
class ImportReport:
    source: str
    kinds: set[str] = field(default_factory=set)
    imported: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "+".join(sorted(self.kinds)) or "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _initialise(conn: sqlite3.Connection, path: str) -> None:
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        # Rollback journal, not WAL: scans open the file read-only, as users who cannot create
        # the -shm file a WAL database needs beside it.
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.executescript(SCHEMA)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))
        conn.commit()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(f"{path}: not a hyperward advisory database ({exc})") from None


def open_for_writing(path: str, ownership: Ownership = PRIVATE) -> sqlite3.Connection:
    """The database itself, changed in place (tests build their fixture database this way); the
    commands build a new one beside it with Build instead."""
    try:
        safefile.prepare_database(path, ownership)
        conn = sqlite3.connect(path, timeout=30)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: not a hyperward advisory database ({exc})") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: {exc.strerror or exc}") from None
    _initialise(conn, path)
    return conn


class Build:
    """A new advisory database built beside PATH and renamed over it only when complete, so a failed
    or interrupted update leaves the old database (or none) and never an empty one that a scan would
    read as "no known CVE". It starts as a copy of the current database: importing one source
    replaces that source and keeps the others."""

    def __init__(self, path: str, ownership: Ownership = PRIVATE) -> None:
        self.path = path
        try:
            self.tmp = safefile.temporary_beside(path, ownership)
        except OSError as exc:
            raise DatabaseError(f"{path}: {exc.strerror or exc}") from None
        try:
            self.conn = sqlite3.connect(self.tmp, timeout=30)
            if os.path.lexists(path):
                try:
                    current = open_read_only(path)
                except DatabaseError as exc:
                    if "schema" not in str(exc):
                        raise
                else:
                    with current:
                        current.backup(self.conn)
                    current.close()
            _initialise(self.conn, path)
        except BaseException:
            self.abort()
            raise

    def commit(self) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('completed_at', ?)", (_now(),))
        self.conn.close()
        try:
            safefile.replace_with(self.tmp, self.path)
        except OSError as exc:
            safefile.discard(self.tmp)
            raise DatabaseError(f"{self.path}: {exc.strerror or exc}") from None

    def abort(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        safefile.discard(self.tmp)


class DatabaseDenied(DatabaseError):
    pass


def open_read_only(path: str) -> sqlite3.Connection:
    try:
        safefile.require_regular(path)
    except safefile.UnsafePath as exc:
        raise DatabaseError(str(exc)) from None
    except FileNotFoundError:
        raise DatabaseError(f"no advisory database at {path}: run 'hyperward db update' (or 'hyperward db import FILE')") from None
    except PermissionError:
        raise DatabaseDenied(f"{path}: permission denied") from None
    except OSError as exc:
        raise DatabaseError(f"{path}: {exc.strerror or exc}") from None
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, timeout=10)
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{path}: not a hyperward advisory database ({exc})") from None
    if row is None or row[0] != SCHEMA_VERSION:
        conn.close()
        raise DatabaseError(f"{path}: advisory database schema {row[0] if row else 'unknown'} (this hyperward reads {SCHEMA_VERSION}); re-import")
    try:
        imported = conn.execute("SELECT COUNT(*) FROM sources WHERE advisories > 0").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(f"{path}: not a hyperward advisory database ({exc})") from None
    if not imported:
        conn.close()
        raise DatabaseError(f"{path}: the advisory database holds no imported advisories (an update or import never "
                            "completed): run 'hyperward db update' or 'hyperward db import FILE'")
    return conn


def _records_from_json(data: bytes, where: str, report: ImportReport) -> Iterator[Record]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        report.errors.append(f"{where}: not valid JSON ({str(exc)[:120]})")
        return
    if looks_like_osv(doc):
        report.kinds.add("osv")
        try:
            yield parse_osv(doc)
        except AdvisoryError as exc:
            report.errors.append(f"{where}: {exc}")
        return
    if isinstance(doc, list):
        report.kinds.add("osv")
        for i, item in enumerate(doc):
            try:
                yield parse_osv(item)
            except AdvisoryError as exc:
                report.errors.append(f"{where}[{i}]: {exc}")
        return
    report.kinds.add("debian-tracker")
    for item in parse_debian_tracker(doc):
        if isinstance(item, AdvisoryError):
            report.errors.append(f"{where}: {item}")
        else:
            yield item


def _open_regular(path: str) -> tuple[int, int] | str:
    """An fd and size for a regular file `path` names itself (no symlink followed, no FIFO
    waited on), or why not: root imports what a user may have left in a shared directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            return "is a symbolic link; not followed (name the file itself)"
        return exc.strerror or str(exc)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return "not a regular file (a FIFO, socket or device); not read"
    return fd, st.st_size


def read_records(path: str, report: ImportReport) -> Iterator[Record]:
    """Every record in a JSON file, a directory of them, or an OSV zip export; bad entries are
    reported by file (and entry) and skipped. Symbolic links are not followed, neither to
    directories nor to files; only regular files up to MAX_FILE are read."""
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, _, files in sorted(os.walk(path)):
            for name in sorted(files):
                if name.endswith((".json", ".zip")):
                    yield from read_records(os.path.join(dirpath, name), report)
        return
    opened = _open_regular(path)
    if isinstance(opened, str):
        report.errors.append(f"{path}: {opened}")
        return
    fd, size = opened
    with os.fdopen(fd, "rb") as handle:
        if size > MAX_FILE:
            report.errors.append(f"{path}: {size} bytes, larger than {MAX_FILE}: not read")
            return
        try:
            if zipfile.is_zipfile(handle):
                handle.seek(0)
                with zipfile.ZipFile(handle) as archive:
                    for info in archive.infolist():
                        if info.is_dir() or not info.filename.endswith(".json"):
                            continue
                        where = f"{path}:{info.filename}"
                        if info.file_size > MAX_ENTRY:
                            report.errors.append(f"{where}: {info.file_size} bytes uncompressed, larger than {MAX_ENTRY}: skipped")
                            continue
                        try:
                            with archive.open(info) as member:
                                data = member.read(MAX_ENTRY + 1)
                        except (zipfile.BadZipFile, OSError, EOFError) as exc:
                            report.errors.append(f"{where}: unreadable zip member ({exc})")
                            continue
                        if len(data) > MAX_ENTRY:
                            report.errors.append(f"{where}: larger than {MAX_ENTRY} bytes uncompressed (its header says less): skipped")
                            continue
                        yield from _records_from_json(data, where, report)
                return
            handle.seek(0)
            data = handle.read(MAX_FILE + 1)
        except (OSError, zipfile.BadZipFile) as exc:
            report.errors.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            return
    if len(data) > MAX_FILE:
        report.errors.append(f"{path}: larger than {MAX_FILE} bytes: not read")
        return
    yield from _records_from_json(data, path, report)


def import_path(conn: sqlite3.Connection, path: str, name: str | None = None,
                progress: Callable[[int], None] | None = None) -> ImportReport:
    report = ImportReport(source=name or os.path.abspath(path))
    records = read_records(path, report)
    _store(conn, report, records, progress)
    return report


def _store(conn: sqlite3.Connection, report: ImportReport, records: Iterable[Record], progress: Callable[[int], None] | None) -> None:
    with conn:
        conn.execute("DELETE FROM sources WHERE name = ?", (report.source,))
        cur = conn.execute(
            "INSERT INTO sources(name, kind, location, imported_at, advisories, errors) VALUES (?, ?, ?, ?, 0, 0)",
            (report.source, report.kind, report.source, _now()),
        )
        source_id = cur.lastrowid
        affected_rows: list[tuple[int | None, str, str, str, str | None, str | None, str | None]] = []
        for record in records:
            cur = conn.execute(
                "INSERT INTO advisories(source_id, advisory, cve, severity, cvss, summary) VALUES (?, ?, ?, ?, ?, ?)",
                (source_id, record.advisory, record.cve, record.severity, record.cvss, record.summary),
            )
            advisory_id = cur.lastrowid
            affected_rows.extend((advisory_id, a.ecosystem, a.release, a.package, a.introduced, a.fixed, a.last_affected) for a in record.affected)
            report.imported += 1
            if len(affected_rows) > 20000:
                conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?)", affected_rows)
                affected_rows.clear()
            if progress and report.imported % 1000 == 0:
                progress(report.imported)
        conn.executemany("INSERT INTO affected VALUES (?, ?, ?, ?, ?, ?, ?)", affected_rows)
        conn.execute("UPDATE sources SET kind = ?, advisories = ?, errors = ? WHERE id = ?",
                     (report.kind, report.imported, len(report.errors), source_id))


@frozen
class SourceInfo:
    name: str
    kind: str
    imported_at: str
    advisories: int
    errors: int


def sources(conn: sqlite3.Connection) -> list[SourceInfo]:
    return [SourceInfo(*row) for row in conn.execute("SELECT name, kind, imported_at, advisories, errors FROM sources ORDER BY name")]


def coverage(conn: sqlite3.Connection) -> list[str]:
    return [f"{e}:{r}" for e, r in conn.execute("SELECT DISTINCT ecosystem, release FROM affected ORDER BY 1, 2 LIMIT 20")]


RPM_FAMILIES = ("almalinux", "rocky")
#: the package format and version order of each ecosystem (Debian and Ubuntu: dpkg)
FORMATS: dict[str, tuple[str, Callable[[str, str], int]]] = {"almalinux": ("rpm", rpm_compare), "rocky": ("rpm", rpm_compare),
                                                             "alpine": ("apk", apk_compare)}


def _affects(version: str, introduced: str | None, fixed: str | None, last_affected: str | None,
             compare: Callable[[str, str], int] = deb_compare) -> bool:
    if introduced not in (None, "", "0") and compare(version, introduced) < 0:
        return False
    if fixed is not None and compare(version, fixed) >= 0:
        return False
    if last_affected is not None and compare(version, last_affected) > 0:
        return False
    return True


def advisory_source(pkg: Package) -> tuple[str, str]:
    """The source package and version advisories name. Debian's signed kernels are built from
    linux-signed-<arch> ("6.1.119+1") but advisories name `linux` at the image's version. rpm
    advisories compare the full epoch:version-release of the binary; Alpine's name the aport (the
    binary's origin) at the binary's version, which every subpackage of an aport shares."""
    if pkg.format in ("rpm", "apk"):
        return pkg.source, pkg.version
    if pkg.source.startswith("linux-signed-"):
        return "linux", pkg.version
    return pkg.source, pkg.source_version


def match(conn: sqlite3.Connection, path: str, ecosystem: str, release: str, packages: list[Package],
          pending: list[PendingUpdate]) -> VulnFacts:
    wanted_format, compare = FORMATS.get(ecosystem, ("deb", deb_compare))
    by_source: dict[tuple[str, str], list[Package]] = {}
    for pkg in packages:
        if pkg.format == wanted_format:
            by_source.setdefault(advisory_source(pkg), []).append(pkg)
    versions_of: dict[str, list[tuple[str, list[Package]]]] = {}
    for (name, version), members in by_source.items():
        versions_of.setdefault(name, []).append((version, members))
    sources_wanted = sorted(versions_of)
    candidates: dict[str, list[str]] = {}
    for p in pending:
        candidates.setdefault(p.name, []).append(p.candidate)
    # Pass 1: the affected ranges of the installed source packages, judged by version alone.
    hits: list[tuple[int, str, str, str | None]] = []
    for start in range(0, len(sources_wanted), 500):
        chunk = sources_wanted[start : start + 500]
        rows = conn.execute(
            f"SELECT advisory_id, package, introduced, fixed, last_affected FROM affected "
            f"WHERE ecosystem = ? AND release = ? AND package IN ({','.join('?' * len(chunk))})",
            (ecosystem, release, *chunk),
        )
        for advisory_id, package, introduced, fixed, last_affected in rows:
            for version, _ in versions_of[package]:
                if _affects(version, introduced, fixed, last_affected, compare):
                    hits.append((advisory_id, package, version, fixed))
    # Pass 2: advisory details, only for what matched.
    details: dict[int, tuple[str, str, str | None, float | None, str]] = {}
    ids = sorted({h[0] for h in hits})
    for start in range(0, len(ids), 900):
        chunk_ids = ids[start : start + 900]
        for row in conn.execute(
            f"SELECT a.id, a.advisory, a.cve, a.severity, a.cvss, s.name FROM advisories a JOIN sources s ON s.id = a.source_id "
            f"WHERE a.id IN ({','.join('?' * len(chunk_ids))})", chunk_ids,
        ):
            details[row[0]] = row[1:]
    names_of = {(name, version): {b.name for b in binaries} for name, entries in versions_of.items() for version, binaries in entries}
    grouped: dict[tuple[str, str], list[tuple[int, str, str | None]]] = {}
    for advisory_id, source, version, fixed in hits:
        grouped.setdefault((details[advisory_id][1], source), []).append((advisory_id, version, fixed))
    found: list[VulnMatch] = []
    for (cve, source), entries in grouped.items():
        # Several advisories (a DSA, its DEBIAN-CVE, the tracker) can name one CVE: the one with a
        # fix and the highest score speaks for all; every affected binary and version is listed.
        best = max(entries, key=lambda e: (e[2] is not None, details[e[0]][3] or 0.0))
        advisory, _, severity, cvss, database = details[best[0]]
        fixed = best[2]
        binaries = sorted(set[str]().union(*(names_of[(source, version)] for _, version, _ in entries)))
        versions = sorted({version for _, version, _ in entries})
        pending_fixes = fixed is not None and all(
            any(compare(c, fixed) >= 0 for c in candidates.get(name, ()))
            for name in binaries if any(compare(v, fixed) < 0 for v in versions)
        )
        found.append(VulnMatch(advisory, cve, ",".join(binaries), source, ", ".join(versions), fixed, severity, cvss, pending_fixes, database))
    if conn.execute("SELECT 1 FROM affected WHERE ecosystem = ? AND release = ? LIMIT 1", (ecosystem, release)).fetchone() is None:
        raise DatabaseError(f"{path}: no advisory for {ecosystem}:{release} in the database (it covers "
                            f"{', '.join(coverage(conn)) or 'nothing'}): import a source for this release")
    newest = conn.execute("SELECT MAX(imported_at) FROM sources").fetchone()[0]
    count = conn.execute("SELECT COUNT(*) FROM advisories").fetchone()[0]
    return VulnFacts(database=path, updated_at=newest, sources=[s.name for s in sources(conn)], advisories=count,
                     release=f"{ecosystem}:{release}", matches=sorted(found, key=lambda m: (m.source, m.cve)))

