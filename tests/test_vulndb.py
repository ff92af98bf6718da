"""The advisory database: import (files, directories, OSV zip exports, the Debian tracker's JSON),
bad input, `db update` from a real HTTP server on loopback, `db status`, and HV-VULN-001."""

from __future__ import annotations

import datetime
import functools
import http.server
import json
import os
import pathlib
import shutil
import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator

import pytest

from hyperward import vulndb
from hyperward.facts import Package, PendingUpdate
from hyperward.model import Severity, Status

from conftest import REPO, copy_root, hyperward, scan

ADVISORIES = REPO / "tests/fixtures/advisories"
BAD = REPO / "tests/fixtures/advisories-bad"


def _db(tmp_path: pathlib.Path, *sources: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "db.sqlite"
    conn = vulndb.open_for_writing(str(path))
    for source in sources:
        vulndb.import_path(conn, str(source))
    conn.close()
    return path


def test_import_files_directories_and_zip_exports(tmp_path):
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ADVISORIES / "osv").iterdir()):
            archive.write(path, path.name)
    db = tmp_path / "db.sqlite"
    for source in (export, ADVISORIES / "tracker.json", ADVISORIES / "osv/DSA-5901-1.json"):
        done = hyperward("db", "import", str(source), "--db", str(db))
        assert done.returncode == 0, done.stderr
    status = json.loads(hyperward("db", "status", "--db", str(db), "--format", "json").stdout)
    counts = {s["name"]: (s["kind"], s["advisories"]) for s in status["sources"]}
    assert counts == {str(export): ("osv", 5), str(ADVISORIES / "tracker.json"): ("debian-tracker", 4),
                      str(ADVISORIES / "osv/DSA-5901-1.json"): ("osv", 1)}
    # re-importing a source replaces it
    assert hyperward("db", "import", str(export), "--db", str(db)).returncode == 0
    assert json.loads(hyperward("db", "status", "--db", str(db), "--format", "json").stdout)["advisories"] == 10


def test_bad_advisory_files_are_named_and_the_rest_imported(tmp_path):
    done = hyperward("db", "import", str(BAD), "--db", str(tmp_path / "db.sqlite"))
    assert done.returncode == 0
    assert "1 advisories imported" in done.stdout and "6 skipped" in done.stdout
    for name, reason in (("truncated.json", "not valid JSON"), ("garbage.json", "not valid JSON"), ("binary.json", "not valid JSON"),
                         ("no-package.json", "DSA-2-1: an \"affected\" entry has no package"),
                         ("tracker-bad.json", "qemu CVE-2025-1: malformed issue"), ("tracker-bad.json", "bash: expected an object")):
        assert f"{BAD / name}: {reason}" in done.stderr or f"{BAD}/{name}: {reason}" in done.stderr, (name, done.stderr)
    assert "Traceback" not in done.stderr


def test_zip_bomb_member_and_corrupt_zip(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("DSA-1.json", b"{" + b" " * (vulndb.MAX_ENTRY + 10) + b"}")
        archive.write(ADVISORIES / "osv/DSA-5901-1.json", "DSA-5901-1.json")
    report = vulndb.import_path(vulndb.open_for_writing(str(tmp_path / "db.sqlite")), str(bomb))
    assert report.imported == 1 and "larger than" in report.errors[0] and "DSA-1.json" in report.errors[0]
    broken = tmp_path / "broken.zip"
    broken.write_bytes(bomb.read_bytes()[: len(bomb.read_bytes()) // 2])
    done = hyperward("db", "import", str(broken), "--db", str(tmp_path / "db2.sqlite"))
    assert done.returncode == 2 and "nothing was imported" in done.stderr and "Traceback" not in done.stderr


def test_not_a_database(tmp_path):
    fake = tmp_path / "db.sqlite"
    fake.write_text("SQLite format 3 but not really")
    done = hyperward("db", "status", "--db", str(fake))
    assert done.returncode == 2 and "not a hyperward advisory database" in done.stderr


@pytest.fixture
def http_server(tmp_path: pathlib.Path) -> Iterator[str]:
    """A real HTTP server on loopback serving real-format advisory files."""
    root = tmp_path / "www"
    (root / "Debian").mkdir(parents=True)
    with zipfile.ZipFile(root / "Debian/all.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ADVISORIES / "osv").iterdir()):
            archive.write(path, path.name)
    (root / "tracker").mkdir()
    shutil.copy(ADVISORIES / "tracker.json", root / "tracker/json")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_db_update_downloads_and_imports(tmp_path, http_server):
    db = tmp_path / "db.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(f'[vulndb]\npath = "{db}"\nmax_age_days = 3\nsources = ["{http_server}/Debian/all.zip", "{http_server}/tracker/json"]\n')
    done = hyperward("db", "update", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "/Debian/all.zip: 5 advisories imported (osv)" in done.stdout and "/tracker/json: 4 advisories imported (debian-tracker)" in done.stdout
    status = hyperward("db", "status", "--config", str(config))
    assert status.returncode == 0 and "9 advisories from 2 source(s)" in status.stdout and "limit 3 days" in status.stdout
    missing = hyperward("db", "update", "--db", str(db), "--url", f"{http_server}/nope.zip", "--url", f"{http_server}/tracker/json")
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    refused = hyperward("db", "update", "--db", str(db), "--url", "http://127.0.0.1:9/x.zip", "--timeout", "5")
    assert refused.returncode == 2 and "no source could be downloaded" in refused.stderr


def test_db_status_reports_a_stale_database(tmp_path):
    db = _db(tmp_path, ADVISORIES)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE sources SET imported_at = '2026-01-01T00:00:00+00:00'")
    conn.commit()
    conn.close()
    done = hyperward("db", "status", "--db", str(db))
    assert done.returncode == 1 and "STALE" in done.stdout


def _packages() -> list[Package]:
    return [
        Package("qemu-system-x86", "amd64", "1:7.2+dfsg-7+deb12u7", "qemu", "1:7.2+dfsg-7+deb12u7", "deb"),
        Package("qemu-utils", "amd64", "1:7.2+dfsg-7+deb12u7", "qemu", "1:7.2+dfsg-7+deb12u7", "deb"),
        Package("linux-image-6.1.0-21-amd64", "amd64", "6.1.90-1", "linux-signed-amd64", "6.1.90+1", "deb"),
        Package("linux-image-6.1.0-28-amd64", "amd64", "6.1.119-1", "linux-signed-amd64", "6.1.119+1", "deb"),
        Package("libvirt0", "amd64", "9.0.0-4+deb12u2", "libvirt", "9.0.0-4+deb12u2", "deb"),
        Package("openssl", "amd64", "3.0.15-1~deb12u1", "openssl", "3.0.15-1~deb12u1", "deb"),
    ]


def test_matching_maps_binaries_to_sources_and_knows_what_the_pending_update_fixes(tmp_path):
    conn = vulndb.open_read_only(str(_db(tmp_path, ADVISORIES)))
    pending = [PendingUpdate(name, "amd64", "1:7.2+dfsg-7+deb12u7", "1:7.2+dfsg-7+deb12u18", "qemu", "Debian bookworm-security", True)
               for name in ("qemu-system-x86", "qemu-utils")]
    facts = vulndb.match(conn, "db", "debian", "12", _packages(), pending)
    rows = {(m.cve, m.source): m for m in facts.matches}
    assert set(rows) == {("CVE-2025-21901", "qemu"), ("CVE-2024-7409", "qemu"), ("CVE-2024-50264", "linux"), ("CVE-2025-1001", "libvirt"),
                         ("CVE-2023-52340", "linux")}
    assert rows[("CVE-2023-52340", "linux")].package == "linux-image-6.1.0-21-amd64,linux-image-6.1.0-28-amd64"
    qemu = rows[("CVE-2025-21901", "qemu")]
    assert qemu.package == "qemu-system-x86,qemu-utils" and qemu.fixed == "1:7.2+dfsg-7+deb12u12" and qemu.cvss == 9.6 and qemu.fixed_by_pending
    only_one = vulndb.match(conn, "db", "debian", "12", _packages(), pending[:1])
    assert not {(m.cve, m.source): m for m in only_one.matches}[("CVE-2025-21901", "qemu")].fixed_by_pending  # qemu-utils stays vulnerable
    kernel = rows[("CVE-2024-50264", "linux")]
    assert kernel.package == "linux-image-6.1.0-21-amd64" and kernel.installed == "6.1.90-1" and not kernel.fixed_by_pending
    assert rows[("CVE-2025-1001", "libvirt")].fixed is None and rows[("CVE-2025-1001", "libvirt")].severity == "unimportant"
    assert not [m for m in facts.matches if m.source == "openssl"]  # 3.0.15-1~deb12u1 is the fixed version
    # bullseye: the DSA's fix (1:5.2+dfsg-11+deb11u4) is older than 7.2, the tracker's issue is still open there
    assert [(m.cve, m.fixed) for m in vulndb.match(conn, "db", "debian", "11", _packages(), []).matches] == [("CVE-2024-7409", None)]


def test_scan_without_a_database_says_so(hardened, tmp_path):
    done = hyperward("scan", "--root", str(hardened), "--only", "HV-VULN-001", "--format", "json", env={"HYPERWARD_VULNDB": str(tmp_path / "none.sqlite")})
    [result] = json.loads(done.stdout)["results"]
    assert result["status"] == "error" and "no advisory database" in result["message"] and "hyperward db update" in result["message"]


def test_stale_database_and_no_fix_yet_for_the_virt_stack(tmp_path):
    root = copy_root("weak", tmp_path)
    db = _db(tmp_path, ADVISORIES)
    extra = tmp_path / "open.json"
    extra.write_text(json.dumps({"id": "DEBIAN-CVE-2026-0042", "upstream": ["CVE-2026-0042"], "affected": [{
        "package": {"ecosystem": "Debian:12", "name": "qemu"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        "ecosystem_specific": {"urgency": "medium"}}]}))
    conn = vulndb.open_for_writing(str(db))
    vulndb.import_path(conn, str(extra))
    conn.execute("UPDATE sources SET imported_at = ?", ((datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30, hours=1)).isoformat(),))
    conn.commit()
    conn.close()
    os.environ["HYPERWARD_VULNDB"], saved = str(db), os.environ["HYPERWARD_VULNDB"]
    try:
        report = scan(root, only=["HV-VULN-001"])
    finally:
        os.environ["HYPERWARD_VULNDB"] = saved
    by = {f.result.resource: f for f in report.findings}
    assert by["advisory database"].status is Status.FAIL and "30 days ago" in by["advisory database"].result.message
    assert by["CVE-2026-0042 qemu"].severity is Severity.INFO and "no fix yet" in by["CVE-2026-0042 qemu"].result.message
    assert by["CVE-2025-21901 qemu"].severity is Severity.CRITICAL
    assert by["CVE-2024-7409 qemu"].severity is Severity.HIGH


def test_non_debian_host_is_not_matched(hardened):
    (hardened / "etc/os-release").write_text('NAME="Fedora Linux"\nVERSION_ID=40\nID=fedora\n')
    [f] = scan(hardened, only=["HV-VULN-001"]).findings
    assert f.status is Status.NOT_APPLICABLE and "fedora" in f.result.message


def test_malformed_dpkg_stanza_is_a_warning(hardened):
    status = hardened / "var/lib/dpkg/status"
    status.write_text(status.read_text() + "Package: half-written\nStatus: install ok installed\n\nVersion: 1.0\nArchitecture: amd64\n")
    done = hyperward("scan", "--root", str(hardened), "--format", "json", "--only", "HV-VULN-001,HV-PATCH-001")
    report = json.loads(done.stdout)
    [warning] = [w for w in report["warnings"] if "dpkg/status" in w]
    assert "2 malformed stanza(s) skipped" in warning and "first at line" in warning
    assert {r["status"] for r in report["results"]} == {"pass"}


def test_configured_max_age(tmp_path):
    root = copy_root("hardened", tmp_path)
    db = _db(tmp_path, ADVISORIES)
    conn = sqlite3.connect(db)
    conn.execute("UPDATE sources SET imported_at = ?", ((datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3, hours=1)).isoformat(),))
    conn.commit()
    conn.close()
    config = tmp_path / "config.toml"
    # the database is 3 days and 1 hour old: inside a 4-day policy, an hour outside a 3-day one
    for days, stale in ((7, False), (4, False), (3, True), (2, True)):
        config.write_text(f'[vulndb]\npath = "{db}"\nmax_age_days = {days}\n')
        report = json.loads(hyperward("scan", "--root", str(root), "--config", str(config), "--format", "json", "--only", "HV-VULN-001").stdout)
        rows = {(r["resource"], r["status"]) for r in report["results"]}
        assert rows == {("packages", "pass")} | ({("advisory database", "fail")} if stale else set()), (days, rows)
        if stale:
            [row] = [r for r in report["results"] if r["resource"] == "advisory database"]
            assert row["message"].startswith(f"{db} last updated 3 days ago") and row["message"].endswith("newer CVEs are missing")


def test_import_refuses_fifos_devices_symlinks_and_huge_files(tmp_path):
    """An export directory a user could write: a FIFO (would block the import forever), a
    symlink to /dev/zero (would never end), a sparse file past MAX_FILE (would be read whole).
    Each is one line naming it; the real file beside them is imported, quickly."""
    export = tmp_path / "export"
    export.mkdir()
    shutil.copy(ADVISORIES / "osv/DSA-5901-1.json", export / "DSA-5901-1.json")
    os.mkfifo(export / "fifo.json")
    (export / "zero.json").symlink_to("/dev/zero")
    with open(export / "huge.zip", "wb") as handle:
        handle.truncate(vulndb.MAX_FILE + 1)
    started = time.monotonic()
    done = hyperward("db", "import", str(export), "--db", str(tmp_path / "db.sqlite"), timeout=30)
    assert time.monotonic() - started < 20
    assert done.returncode == 0 and "1 advisories imported" in done.stdout and "3 skipped" in done.stdout, done.stderr
    assert f"hyperward: skipped: {export}/fifo.json: not a regular file (a FIFO, socket or device); not read\n" in done.stderr
    assert f"hyperward: skipped: {export}/zero.json: is a symbolic link; not followed (name the file itself)\n" in done.stderr
    assert f"hyperward: skipped: {export}/huge.zip: {vulndb.MAX_FILE + 1} bytes, larger than {vulndb.MAX_FILE}: not read\n" in done.stderr
    alone = hyperward("db", "import", str(export / "fifo.json"), "--db", str(tmp_path / "db.sqlite"), timeout=30)
    assert alone.returncode == 2 and "fifo.json: not a regular file" in alone.stderr and "nothing was imported" in alone.stderr
    assert "Traceback" not in done.stderr + alone.stderr


class _Trickle(http.server.BaseHTTPRequestHandler):
    """A misbehaving mirror: `mode` "body" sends headers then one byte every 0.5 s (each read
    well inside --timeout); "headers" trickles the status line itself; "steady" sends 64 KiB/s
    (above the minimum rate) without end."""

    mode = "body"

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        try:
            if self.mode == "headers":
                for byte in b"HTTP/1.0 200 OK\r\nX-Pad: " + b"a" * 1000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.5)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for _ in range(200):
                self.wfile.write(b" " if self.mode == "body" else b" " * 32768)
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize("mode, flags, message", [
    ("body", ["--timeout", "2"], "slower than 1024 bytes/s over 2 s"),
    ("headers", ["--timeout", "2", "--deadline", "3"], "did not finish within the 3 s deadline; abandoned"),
    ("steady", ["--timeout", "2", "--deadline", "3"], "did not finish within the 3 s deadline; abandoned"),
])
def test_db_update_abandons_a_trickling_server(tmp_path, mode, flags, message):
    handler = type("Handler", (_Trickle,), {"mode": mode})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        done = hyperward("db", "update", "--db", str(tmp_path / "db.sqlite"), "--url",
                         f"http://127.0.0.1:{server.server_address[1]}/all.json", *flags, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert done.returncode == 2 and "no source could be downloaded" in done.stderr, done.stderr
    assert f"/all.json: {message}" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert elapsed < 8, elapsed
