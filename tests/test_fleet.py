"""`hyperward fleet ingest|report|diff` against a real SQLite file and a real PostgreSQL server
(Debian's postgresql, initdb'd into a temporary directory and run as the unprivileged `postgres`
user on a private socket directory, no TCP). The reports are real: `hyperward scan --root` over
the golden roots, each copy given its own host name."""

from __future__ import annotations

import datetime
import glob
import itertools
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REPO, copy_root, hyperward, require
from hyperward import diff as differ
from hyperward.fleet import WEIGHTS, redact

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
RUN_AS_PG = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


# ---------------------------------------------------------------- real components


@pytest.fixture(scope="session")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    """kvm-a (the weak root), kvm-b (hardened), pve-c (Proxmox weak): one real scan each."""
    base = tmp_path_factory.mktemp("fleet-roots")
    out = tmp_path_factory.mktemp("fleet-reports")
    roots = {"kvm-a": copy_root("weak", base / "a"), "kvm-b": copy_root("hardened", base / "b")}
    pve = base / "c" / "weak"
    shutil.copytree(REPO / "tests/fixtures/proxmox/weak", pve, symlinks=True)
    roots["pve-c"] = pve
    paths = {}
    for host, root in roots.items():
        (root / "etc" / "hostname").write_text(host + "\n")
        proc = hyperward("scan", "--root", str(root), "--format", "json")
        assert proc.returncode in (0, 1), proc.stderr
        paths[host] = out / f"{host}.json"
        paths[host].write_text(proc.stdout)
        assert json.loads(proc.stdout)["host"] == host
    return paths


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A private PostgreSQL: data and socket in a directory only `postgres` may use."""
    require(bool(PG_BIN) and os.path.exists(os.path.join(PG_BIN[-1], "initdb")), "Debian's postgresql package (initdb, pg_ctl)")
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "root and setpriv, to run the server as the postgres user")
    try:
        import pwd

        pg = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user")
    bin_dir = PG_BIN[-1]
    top = tempfile.mkdtemp(prefix="hw-pg-", dir="/tmp")
    os.chown(top, pg.pw_uid, pg.pw_gid)
    data, sock = os.path.join(top, "data"), os.path.join(top, "sock")
    subprocess.run([*RUN_AS_PG, "mkdir", "-m", "0700", data, sock], check=True, timeout=10)
    subprocess.run([*RUN_AS_PG, f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, timeout=120)
    opts = f"-c listen_addresses='' -c unix_socket_directories={sock} -c fsync=off"
    subprocess.run([*RUN_AS_PG, f"{bin_dir}/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(top, "log"), "-w", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield sock
    finally:
        subprocess.run([*RUN_AS_PG, f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[str]:
    """A fresh, empty fleet database of each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "state" / "fleet.sqlite")
        return
    sock = request.getfixturevalue("postgres_server")
    import psycopg

    name = "fleet_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"postgresql://postgres@/postgres?host={sock}", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://postgres@/{name}?host={sock}"
    with psycopg.connect(f"postgresql://postgres@/postgres?host={sock}", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def _execute(url: str, sql: str) -> Any:
    """SQL against either backend, committed; the first row it returns."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url) as conn:
            cursor = conn.execute(sql)
            return cursor.fetchone() if cursor.description else None
    with sqlite3.connect(url) as conn:
        cursor = conn.execute(sql)
        return cursor.fetchone() if cursor.description else None


def _count(url: str, sql: str) -> int:
    row = _execute(url, sql)
    assert row is not None
    return int(row[0])


def _report(db: str, *args: str) -> dict:
    proc = hyperward("fleet", "report", "--db", db, "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _retimed(source: pathlib.Path, dest: pathlib.Path, host: str, when: datetime.datetime) -> pathlib.Path:
    """A real report as another host or time (its content, so its identity, changes with them)."""
    doc = json.loads(source.read_text())
    doc["host"], doc["collected_at"] = host, when.isoformat(timespec="seconds")
    dest.write_text(json.dumps(doc))
    return dest


def _expected(path: pathlib.Path) -> tuple[int, int, dict[str, int]]:
    doc = json.loads(path.read_text())
    scan = differ.load_report(str(path))
    failing = [i for i in scan.items.values() if i.status == "fail"]
    categories: dict[str, int] = {}
    by_pair = {(r["id"], r["resource"]): r["category"] for r in doc["results"]}
    for i in failing:
        categories[by_pair[(i.check_id, i.resource)]] = categories.get(by_pair[(i.check_id, i.resource)], 0) + 1
    return len(failing), sum(WEIGHTS[i.severity] for i in failing), categories


# ---------------------------------------------------------------- ingest


def test_ingest_report_and_bad_input(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for path in reports.values():
        shutil.copy(path, inbox / path.name)
    weak = reports["kvm-a"].read_text()
    (inbox / "trunc-host.json").write_text(weak[: len(weak) // 2])
    (inbox / "foreign-host.json").write_text(json.dumps({"name": "not a report", "results": 3}))
    newer = json.loads(weak)
    newer["schema"], newer["host"] = 99, "future-host"
    (inbox / "future-host.json").write_text(json.dumps(newer))
    os.mkfifo(inbox / "fifo-host.json")  # must be named, not hang the ingest

    proc = hyperward("fleet", "ingest", "--db", db, str(inbox), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "ingested: 3 stored, 0 unchanged, 4 bad input, 0 failed scans" in out
    assert "bad input: trunc-host: " in out and "(truncated?)" in out
    assert "bad input: foreign-host: " in out and "not a hyperward JSON report" in out
    assert "bad input: future-host: " in out and "report schema 99 is newer than this hyperward reads (2)" in out
    assert "bad input: fifo-host: " in out and "not a regular file" in out
    reports_before = _count(db, "SELECT count(*) FROM reports")
    results_before = _count(db, "SELECT count(*) FROM results")
    assert reports_before == 7
    assert results_before == sum(len(differ.load_report(str(p)).items) for p in reports.values())

    again = hyperward("fleet", "ingest", "--db", db, str(inbox), timeout=120)
    assert again.returncode == 0, again.stderr
    assert "ingested: 0 stored, 7 unchanged, 0 bad input" in again.stdout
    assert _count(db, "SELECT count(*) FROM reports") == reports_before
    assert _count(db, "SELECT count(*) FROM results") == results_before

    doc = _report(db)
    assert doc["hosts"] == 7
    ranked = [(r["host"], r["failing"], r["score"]) for r in doc["worst_hosts"]]
    expected = {h: _expected(p) for h, p in reports.items()}
    assert sorted(ranked, key=lambda r: r[0]) == sorted((h, e[0], e[1]) for h, e in expected.items())
    assert [r[0] for r in ranked] == sorted(expected, key=lambda h: (-expected[h][1], -expected[h][0], h))
    assert ranked[0][0] == "kvm-a" and ranked[0][2] > dict((h, s) for h, _f, s in ranked)["kvm-b"]
    for host, (_f, _s, cats) in expected.items():
        assert doc["matrix"].get(host, {}) == cats
    assert {(p["host"], p["state"]) for p in doc["problems"]} == {
        ("trunc-host", "bad_input"), ("foreign-host", "bad_input"), ("future-host", "bad_input"), ("fifo-host", "bad_input")}
    # the most common finding fails on as many hosts as the report says
    top = doc["most_common"][0]
    assert top["hosts"] == sum(1 for p in reports.values()
                               if any(i.check_id == top["id"] and i.status == "fail" for i in differ.load_report(str(p)).items.values()))

    text = hyperward("fleet", "report", "--db", db)
    assert text.returncode == 0, text.stderr
    assert "kvm-a" in text.stdout and "trunc-host  bad input:" in text.stdout


def test_platform_site_and_group_filters(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    for host, site in (("kvm-a", "fra"), ("kvm-b", "ams"), ("pve-c", "fra")):
        proc = hyperward("fleet", "ingest", "--db", db, "--site", site, "--group", "hv" if host != "kvm-b" else "edge", str(reports[host]))
        assert proc.returncode == 0, proc.stderr
    assert [r["host"] for r in _report(db, "--platform", "proxmox")["worst_hosts"]] == ["pve-c"]
    assert "pve-c" not in [r["host"] for r in _report(db, "--platform", "libvirt")["worst_hosts"]]
    assert sorted(r["host"] for r in _report(db, "--site", "fra")["worst_hosts"]) == ["kvm-a", "pve-c"]
    assert [r["host"] for r in _report(db, "--group", "edge")["worst_hosts"]] == ["kvm-b"]
    assert _report(db, "--site", "nowhere")["hosts"] == 0


def test_sidecar_labels_and_failed_scan(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """The Ansible role writes <host>.meta.json beside <host>.json; without the report (the scan
    failed, the host was unreachable) the sidecar alone records the failure."""
    inbox = tmp_path / "fetched"
    inbox.mkdir()
    shutil.copy(reports["kvm-b"], inbox / "kvm-b.json")
    (inbox / "kvm-b.meta.json").write_text(json.dumps({"host": "kvm-b", "site": "ams", "group": "compute"}))
    (inbox / "kvm-z.meta.json").write_text(json.dumps({"host": "kvm-z", "site": "ams", "group": "compute",
                                                       "scan_error": "UNREACHABLE: ssh: connect to host kvm-z port 22: No route"}))
    proc = hyperward("fleet", "ingest", "--db", db, str(inbox))
    assert proc.returncode == 0, proc.stderr
    assert "ingested: 1 stored, 0 unchanged, 0 bad input, 1 failed scans" in proc.stdout
    assert "scan failed: kvm-z: scan failed: UNREACHABLE" in proc.stdout
    doc = _report(db, "--group", "compute")
    assert [(r["host"], r["site"]) for r in doc["worst_hosts"]] == [("kvm-b", "ams")]
    assert [(p["host"], p["state"]) for p in doc["problems"]] == [("kvm-z", "scan_failed")]


# ---------------------------------------------------------------- time: staleness, trends, diff, retention


def test_trends_diff_stale_and_retention(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    earlier, later = now - datetime.timedelta(days=15), now - datetime.timedelta(days=1)
    files = [
        # kvm-b was as weak as kvm-a two weeks ago, then hardened
        _retimed(reports["kvm-a"], tmp_path / "b-old.json", "kvm-b", earlier),
        _retimed(reports["kvm-b"], tmp_path / "b-new.json", "kvm-b", later),
        _retimed(reports["kvm-a"], tmp_path / "gone.json", "gone-host", now - datetime.timedelta(days=40)),
    ]
    proc = hyperward("fleet", "ingest", "--db", db, *map(str, files))
    assert proc.returncode == 0, proc.stderr
    change = differ.compare(differ.load_report(str(files[0])), differ.load_report(str(files[1])))
    assert change.of("fixed")

    doc = _report(db, "--stale-days", "7")
    assert [s["host"] for s in doc["stale"]] == ["gone-host"]
    assert _report(db, "--stale-days", "60")["stale"] == []
    week = later.isocalendar()
    assert doc["trends"] == [{"week": f"{week[0]}-W{week[1]:02d}", "new": len(change.of("new")),
                              "fixed": len(change.of("fixed")), "reports": 1}]

    since = (earlier + datetime.timedelta(days=1)).date().isoformat()
    d = hyperward("fleet", "diff", "--db", db, "--since", since, "--format", "json")
    assert d.returncode == 0, d.stderr
    fd = json.loads(d.stdout)
    assert fd["summary"]["fixed"] == len(change.of("fixed")) and fd["summary"]["new"] == len(change.of("new"))
    assert [h["host"] for h in fd["hosts"]] == ["kvm-b"]
    fixed_pairs = {(c["id"], c["resource"]) for c in fd["hosts"][0]["changes"]["fixed"]}
    assert fixed_pairs == {(c.item.check_id, c.item.resource) for c in change.of("fixed")}
    before = hyperward("fleet", "diff", "--db", db, "--since", since, "--until", (earlier + datetime.timedelta(days=2)).date().isoformat())
    assert before.returncode == 0 and "Fleet: 0 new, 0 fixed" in before.stdout
    assert hyperward("fleet", "diff", "--db", db, "--since", "yesterday").returncode == 2
    text = hyperward("fleet", "diff", "--db", db, "--since", since)
    assert f"  kvm-b: {len(change.of('new'))} new, {len(change.of('fixed'))} fixed" in text.stdout
    fixed_line = next(c for c in change.of("fixed"))
    assert f"    fixed {fixed_line.item.severity.upper():<8} {fixed_line.item.check_id}  {fixed_line.item.resource}" in text.stdout
    first = json.loads(hyperward("fleet", "diff", "--db", db, "--since", "2000-01-01", "--format", "json").stdout)
    assert [(h["host"], h.get("new_host")) for h in first["hosts"]] == [("gone-host", True), ("kvm-b", True)]

    # retention: kvm-b's older report goes; gone-host's only report stays (the newest of its host)
    retained = hyperward("fleet", "ingest", "--db", db, "--retention-days", "10", str(files[1]))
    assert retained.returncode == 0, retained.stderr
    assert "1 old reports dropped" in retained.stdout
    assert _count(db, "SELECT count(*) FROM reports") == 2
    assert _count(db, "SELECT count(*) FROM results WHERE report_id NOT IN (SELECT id FROM reports)") == 0


# ---------------------------------------------------------------- formats and hostile strings


def test_html_heat_map_prometheus_and_hostile_names(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    evil = _retimed(reports["kvm-a"], tmp_path / "evil.json", "<script>x</script>\x1b]0;pwn\x07\nfake=1",
                    datetime.datetime.now(datetime.UTC))
    proc = hyperward("fleet", "ingest", "--db", db, str(evil), str(reports["kvm-b"]))
    assert proc.returncode == 0, proc.stderr
    page = hyperward("fleet", "report", "--db", db, "--format", "html")
    assert page.returncode == 0, page.stderr
    assert "<script>" not in page.stdout and "&lt;script&gt;x&lt;/script&gt;\\x1b]0;pwn\\x07\\nfake=1" in page.stdout
    assert "class=h4" in page.stdout and "class=heat" in page.stdout
    text = hyperward("fleet", "report", "--db", db)
    assert "\x1b" not in text.stdout and "\\x1b]0;pwn" in text.stdout
    prom = hyperward("fleet", "report", "--db", db, "--format", "prometheus")
    assert prom.returncode == 0, prom.stderr
    failing, score, _ = _expected(reports["kvm-b"])
    assert f'hyperward_fleet_host_score{{host="kvm-b"}} {score}' in prom.stdout.splitlines()
    assert f'hyperward_fleet_host_failing{{host="kvm-b"}} {failing}' in prom.stdout.splitlines()
    assert 'host="<script>x</script>]0;pwn\\nfake=1"' in prom.stdout
    assert not any(line.startswith("fake=1") for line in prom.stdout.splitlines())


# ---------------------------------------------------------------- the database itself


def test_sqlite_file_private_and_symlink_refused(reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state" / "fleet.sqlite"
    assert hyperward("fleet", "ingest", "--db", str(path), str(reports["kvm-b"])).returncode == 0
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o750
    target = tmp_path / "victim"
    target.write_text("keep")
    (tmp_path / "state" / "link.sqlite").symlink_to(target)
    proc = hyperward("fleet", "ingest", "--db", str(tmp_path / "state" / "link.sqlite"), str(reports["kvm-b"]))
    assert proc.returncode == 2 and "symbolic link" in proc.stderr and target.read_text() == "keep"


def test_locked_sqlite_is_one_clear_error(reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state" / "fleet.sqlite"
    assert hyperward("fleet", "ingest", "--db", str(path), str(reports["kvm-b"])).returncode == 0
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = hyperward("fleet", "ingest", "--db", str(path), "--wait", "0.2", str(reports["kvm-a"]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "locked" in proc.stderr and "Traceback" not in proc.stderr


def test_newer_database_schema_refused(db: str, reports: dict[str, pathlib.Path]) -> None:
    assert hyperward("fleet", "ingest", "--db", db, str(reports["kvm-b"])).returncode == 0
    _execute(db, "INSERT INTO schema_version VALUES (99)")
    proc = hyperward("fleet", "report", "--db", db)
    assert proc.returncode == 2 and "fleet database schema 99 is newer than this hyperward (2)" in proc.stderr


def test_postgres_down_is_one_clear_error_without_the_password(tmp_path: pathlib.Path, reports: dict[str, pathlib.Path]) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql://fleet:s3cr%40tpw@/fleet?host={tmp_path}&password=other-secret"
    proc = hyperward("fleet", "ingest", "--db", url, "--wait", "1", str(reports["kvm-b"]))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("hyperward: error: cannot connect to postgresql://fleet:***@/fleet?host=")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    for secret in ("s3cr", "s3cr@tpw", "other-secret"):
        assert secret not in proc.stderr + proc.stdout


def test_redact() -> None:
    assert redact("postgresql://u:pw@db.example:5432/x?sslmode=require&password=pw2") == \
        "postgresql://u:***@db.example:5432/x?sslmode=require&password=***"
    assert redact("/var/lib/hyperward/fleet.sqlite") == "/var/lib/hyperward/fleet.sqlite"


def test_config_fleet_section(tmp_path: pathlib.Path, reports: dict[str, pathlib.Path]) -> None:
    path = tmp_path / "state" / "from-config.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(f'[fleet]\ndatabase = "{path}"\nstale_days = 3\n')
    assert hyperward("fleet", "ingest", "--config", str(config), str(reports["kvm-b"])).returncode == 0
    assert path.exists()
    doc = json.loads(hyperward("fleet", "report", "--config", str(config), "--format", "json").stdout)
    assert doc["stale_days"] == 3 and doc["hosts"] == 1
    config.write_text('[fleet]\ndatabse = "x"\n')
    bad = hyperward("fleet", "report", "--config", str(config))
    assert bad.returncode == 2 and "unknown key 'databse' in [fleet]" in bad.stderr


def test_sarif_one_run_per_host_matches_the_hosts_own_fingerprints(db: str, reports: dict[str, pathlib.Path],
                                                                    tmp_path: pathlib.Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert hyperward("fleet", "ingest", "--db", db, *map(str, reports.values())).returncode == 0
    proc = hyperward("fleet", "report", "--db", db, "--format", "sarif")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    schema = json.loads((REPO / "tests/fixtures/schemas/sarif-schema-2.1.0.json").read_text())
    assert not list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    assert [run["properties"]["host"] for run in doc["runs"]] == sorted(reports)
    for run in doc["runs"]:
        host = run["properties"]["host"]
        failing, _score, _ = _expected(reports[host])
        assert len(run["results"]) == failing
    # the weak host's own SARIF (hyperward scan --format sarif of the same root) has the same fingerprints
    root = json.loads(reports["kvm-a"].read_text())["root"]
    own = json.loads(hyperward("scan", "--root", root, "--format", "sarif").stdout)
    theirs = {r["partialFingerprints"]["hyperward/v1"] for r in own["runs"][0]["results"] if "suppressions" not in r}
    ours = {r["partialFingerprints"]["hyperward/v1"] for r in doc["runs"][0]["results"]}
    assert ours == theirs


@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_database_refused_in_a_directory_others_can_write(tmp_path: pathlib.Path, reports: dict[str, pathlib.Path], mode: int) -> None:
    """Another user could swap fleet.sqlite or its journal (SQLite creates it by name): even with the
    sticky bit, a shared directory is refused, and nothing is created in it."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    proc = hyperward("fleet", "ingest", "--db", str(shared / "fleet.sqlite"), str(reports["kvm-b"]))
    assert proc.returncode == 2 and "world-writable" in proc.stderr, proc.stderr
    assert list(shared.iterdir()) == []


@pytest.fixture
def request_cleanup() -> Iterator[list[pathlib.Path]]:
    paths: list[pathlib.Path] = []
    yield paths
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def test_missing_path_named_not_recorded_and_unreadable_file_recorded(reports: dict[str, pathlib.Path], unprivileged_can_run: None,
                                                                      request_cleanup: list[pathlib.Path]) -> None:
    """As nobody: a report nobody may read is bad input of its host; a path that does not exist is
    no host at all (named on stderr, exit 2), and the good report is stored either way."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    work = pathlib.Path(tempfile.mkdtemp(prefix="hw-fleet-nobody-", dir="/tmp"))  # pytest's tmp_path is root's 0700
    request_cleanup.append(work)
    (work / "state").mkdir(parents=True)
    for d in (work, work / "state"):
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    good = work / "kvm-b.json"
    shutil.copy(reports["kvm-b"], good)
    os.chown(good, nobody.pw_uid, nobody.pw_gid)
    secret = work / "locked-host.json"
    shutil.copy(reports["kvm-a"], secret)
    secret.chmod(0o000)
    db = str(work / "state" / "fleet.sqlite")
    proc = hyperward("fleet", "ingest", "--db", db, str(good), str(secret), str(work / "typo.json"), user="nobody")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"skipped: {work}/typo.json: no such file or directory" in proc.stderr
    assert "bad input: locked-host: " in proc.stdout and "Permission denied" in proc.stdout
    assert "ingested: 1 stored, 0 unchanged, 1 bad input, 0 failed scans; 1 paths not found" in proc.stdout
    doc = json.loads(hyperward("fleet", "report", "--db", db, "--format", "json", user="nobody").stdout)
    assert [p["host"] for p in doc["problems"]] == ["locked-host"]
    assert [r["host"] for r in doc["worst_hosts"]] == ["kvm-b"]
    assert os.stat(db).st_uid == nobody.pw_uid and os.stat(db).st_mode & 0o777 == 0o600


def test_locked_postgres_table_is_one_clear_error(postgres_server: str, reports: dict[str, pathlib.Path]) -> None:
    import psycopg

    name = "fleet_" + uuid.uuid4().hex[:12]
    admin = f"postgresql://postgres@/postgres?host={postgres_server}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = f"postgresql://postgres@/{name}?host={postgres_server}"
    try:
        assert hyperward("fleet", "ingest", "--db", url, str(reports["kvm-b"])).returncode == 0
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE reports IN ACCESS EXCLUSIVE MODE")
            proc = hyperward("fleet", "ingest", "--db", url, "--wait", "1", str(reports["kvm-a"]))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "lock timeout" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_report_of_a_missing_database_is_an_error_and_creates_nothing(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "state" / "nope.sqlite"
    for command in (("report",), ("diff", "--since", "2026-01-01")):
        proc = hyperward("fleet", *command, "--db", str(path))
        assert proc.returncode == 2 and "no fleet database yet" in proc.stderr, proc.stderr
    assert not (tmp_path / "state").exists()


# ---------------------------------------------------------------- trends counted in SQL (schema 2)

#: the commit before trends moved into SQL: its hyperward writes a schema-1 database
SCHEMA_1_COMMIT = "37728a3"


def _python_trends(url: str, weeks: int, now: datetime.datetime, filters: object = None) -> list[dict]:
    """The oracle: trends as fleet.py counted them in Python before schema 2, each host's
    consecutive good reports compared over (check id, resource) -> status maps."""
    from hyperward import fleet

    db = fleet.open_database(url, create=False)
    try:
        since = (now - datetime.timedelta(weeks=weeks)).isoformat(timespec="seconds")
        wanted = {r.host for r in fleet.latest(db, filters or fleet.Filters())}
        per_week: dict[str, dict[str, int]] = {}
        previous: dict[str, int] = {}

        def statuses(report_id: int) -> tuple[dict[tuple[str, str], str], set[str]]:
            rows = db.execute("SELECT check_id, resource, status FROM results WHERE report_id = ?", (report_id,)).fetchall()
            return {(c, r): st for c, r, st in rows}, {c for c, _r, _st in rows}

        for report_id, host, when in db.execute(
                "SELECT id, host, collected_at FROM reports WHERE state = 'ok' ORDER BY host, collected_at, id").fetchall():
            if host not in wanted:
                continue
            before = previous.get(host)
            previous[host] = int(report_id)
            if before is None or when < since:
                continue
            (old_map, old_checks), (new_map, _) = statuses(before), statuses(int(report_id))
            week = per_week.setdefault(fleet._week(when), {"new": 0, "fixed": 0, "reports": 0})
            week["new"] += sum(1 for k, s in new_map.items() if s == "fail" and old_map.get(k) != "fail" and k[0] in old_checks)
            week["fixed"] += sum(1 for k, s in old_map.items() if s == "fail" and new_map.get(k) == "pass")
            week["reports"] += 1
        return [{"week": w, **c} for w, c in sorted(per_week.items())]
    finally:
        db.close()


def _from_files(files: list[tuple[str, datetime.datetime, pathlib.Path]], weeks: int, now: datetime.datetime) -> list[dict]:
    """The same trends straight from the report files through diff.compare, no database at all."""
    since = now - datetime.timedelta(weeks=weeks)
    per_week: dict[str, dict[str, int]] = {}
    by_host: dict[str, list[tuple[datetime.datetime, pathlib.Path]]] = {}
    for host, when, path in files:
        by_host.setdefault(host, []).append((when, path))
    for series in by_host.values():
        series.sort()
        for (_, old), (when, new) in itertools.pairwise(series):
            if when < since:
                continue
            change = differ.compare(differ.load_report(str(old)), differ.load_report(str(new)))
            year, week_no, _ = when.isocalendar()
            week = per_week.setdefault(f"{year}-W{week_no:02d}", {"new": 0, "fixed": 0, "reports": 0})
            week["new"] += len(change.of("new"))
            week["fixed"] += len(change.of("fixed"))
            week["reports"] += 1
    return [{"week": w, **c} for w, c in sorted(per_week.items())]


def _variant(source: pathlib.Path, dest: pathlib.Path, host: str, when: datetime.datetime,
             drop_check: str | None = None, unjudge_check: str | None = None) -> pathlib.Path:
    """A real report as another host and time; DROP_CHECK: that check did not run (its fails in
    the next report are first_checked, not new); UNJUDGE_CHECK: its results not_applicable (its
    earlier fails are not fixed)."""
    doc = json.loads(source.read_text())
    doc["host"], doc["collected_at"] = host, when.isoformat(timespec="seconds")
    if drop_check:
        doc["results"] = [r for r in doc["results"] if r["id"] != drop_check]
    if unjudge_check:
        doc["results"] = [dict(r, status="not_applicable") if r["id"] == unjudge_check else r for r in doc["results"]]
    dest.write_text(json.dumps(doc))
    return dest


def _failing_check(path: pathlib.Path, other: pathlib.Path) -> str:
    """A check that fails in PATH and passes somewhere in OTHER (so dropping it changes the counts)."""
    mine = {r["id"] for r in json.loads(path.read_text())["results"] if r["status"] == "fail"}
    theirs = {r["id"] for r in json.loads(other.read_text())["results"] if r["status"] == "pass"}
    return min(mine & theirs)


def _pairs(url: str) -> int:
    """Consecutive good reports of a host, over all hosts."""
    return _count(url, "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) - 1 AS n FROM reports WHERE state = 'ok' GROUP BY host) h")


def test_trends_in_sql_match_the_python_count_and_diff(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """Three hosts over three weeks: weak <-> hardened flips (new and fixed), a check that did not
    run (first_checked, not new), a check whose results became not_applicable (not fixed), a host
    with no change, a bad report between two good ones; a report ingested late between two stored
    ones; stored counts removed by hand; retention."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    weak, hard, pve = reports["kvm-a"], reports["kvm-b"], reports["pve-c"]
    dropped, unjudged = _failing_check(weak, hard), _failing_check(weak, hard)
    d = {n: now - datetime.timedelta(days=n) for n in (20, 15, 13, 9, 6, 3, 2, 1)}
    files = [
        ("h1", d[20], _variant(weak, tmp_path / "h1-20.json", "h1", d[20])),
        ("h1", d[13], _variant(hard, tmp_path / "h1-13.json", "h1", d[13])),
        ("h1", d[3], _variant(weak, tmp_path / "h1-3.json", "h1", d[3], drop_check=dropped)),
        ("h1", d[1], _variant(weak, tmp_path / "h1-1.json", "h1", d[1])),
        ("h2", d[20], _variant(hard, tmp_path / "h2-20.json", "h2", d[20])),
        ("h2", d[9], _variant(weak, tmp_path / "h2-9.json", "h2", d[9])),
        ("h2", d[2], _variant(weak, tmp_path / "h2-2.json", "h2", d[2], unjudge_check=unjudged)),
        ("h2", d[1], _variant(hard, tmp_path / "h2-1.json", "h2", d[1])),
        ("h3", d[15], _variant(pve, tmp_path / "h3-15.json", "h3", d[15])),
        ("h3", d[1], _variant(pve, tmp_path / "h3-1.json", "h3", d[1])),
    ]
    (tmp_path / "late").mkdir()
    late = ("h1", d[6], _variant(weak, tmp_path / "late" / "h1.json", "h1", d[6]))
    bad = tmp_path / "bad" / "h2.json"
    bad.parent.mkdir()
    bad.write_text(weak.read_text()[:1000])
    os.utime(bad, (d[6].timestamp(), d[6].timestamp()))
    proc = hyperward("fleet", "ingest", "--db", db, "--group", "g1", *(str(p) for _h, _w, p in files if _h != "h3"), str(bad))
    assert proc.returncode == 0 and "ingested: 8 stored, 0 unchanged, 1 bad input" in proc.stdout, proc.stdout + proc.stderr
    assert hyperward("fleet", "ingest", "--db", db, "--group", "g3", *(str(p) for h, _w, p in files if h == "h3")).returncode == 0

    def agree(all_files: list[tuple[str, datetime.datetime, pathlib.Path]]) -> list[dict]:
        from hyperward import fleet

        one_week = _report(db, "--weeks", "1")["trends"]
        assert one_week == _python_trends(db, 1, now) == _from_files(all_files, 1, now)
        g3 = _report(db, "--group", "g3")["trends"]
        assert g3 == _python_trends(db, 12, now, fleet.Filters(group="g3")) == _from_files([f for f in all_files if f[0] == "h3"], 12, now)
        got = _report(db)["trends"]
        assert got == _python_trends(db, 12, now) == _from_files(all_files, 12, now)
        return got

    trends = agree(files)
    assert sum(t["new"] for t in trends) > 0 and sum(t["fixed"] for t in trends) > 0
    assert sum(t["reports"] for t in trends) == 7
    # the rules that tell new from first_checked and fixed from not judged did something here
    c13_3 = differ.compare(differ.load_report(str(files[1][2])), differ.load_report(str(files[2][2])))
    c3_1 = differ.compare(differ.load_report(str(files[2][2])), differ.load_report(str(files[3][2])))
    c2_1 = differ.compare(differ.load_report(str(files[6][2])), differ.load_report(str(files[7][2])))
    assert c13_3.of("new") and c3_1.of("first_checked") and c2_1.of("not_judged")
    assert _count(db, "SELECT count(*) FROM trend_pairs") == _pairs(db) == 7

    # a report ingested late lands between two stored ones: their pair is forgotten, two counted
    assert hyperward("fleet", "ingest", "--db", db, "--group", "g1", str(late[2])).returncode == 0
    files.append(late)
    agree(files)
    assert _count(db, "SELECT count(*) FROM trend_pairs") == _pairs(db) == 8

    # counts missing from trend_pairs (an ingest running beside the report): counted on the fly
    _execute(db, "DELETE FROM trend_pairs WHERE report_id IN (SELECT id FROM reports WHERE host = 'h1')")
    assert _count(db, "SELECT count(*) FROM trend_pairs") == 4
    agree(files)

    # retention drops the reports before 10 days: the pairs of what is left, counted again
    assert "old reports dropped" in hyperward("fleet", "ingest", "--db", db, "--retention-days", "10", str(files[3][2])).stdout
    kept = [f for f in files if f[1] >= now - datetime.timedelta(days=10)]
    agree(kept)
    assert _count(db, "SELECT count(*) FROM trend_pairs") == _pairs(db) == 4


def test_schema_1_database_migrates_with_its_trends(db: str, reports: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    """A database the previous hyperward (schema 1, its source from git) wrote: the next command
    adds the index and trend_pairs, counts every stored pair, and reports the same trends."""
    git = shutil.which("git")
    require(git is not None and (REPO / ".git").exists(), "git and this checkout's history")
    listed = subprocess.run([git, "-C", str(REPO), "cat-file", "-e", f"{SCHEMA_1_COMMIT}^{{commit}}"], capture_output=True, timeout=30,
                            check=False)
    require(listed.returncode == 0, f"commit {SCHEMA_1_COMMIT} in this checkout")
    old = tmp_path / "schema-1"
    old.mkdir()
    archive = subprocess.run([git, "-C", str(REPO), "archive", SCHEMA_1_COMMIT, "src"], capture_output=True, timeout=60, check=True)
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True, timeout=60)
    assert "SCHEMA_VERSION = 1\n" in (old / "src/hyperward/fleet.py").read_text()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    files = []
    for host, series in (("m1", (reports["kvm-a"], reports["kvm-b"], reports["kvm-a"])), ("m2", (reports["kvm-b"], reports["kvm-a"]))):
        for k, source in enumerate(series):
            when = now - datetime.timedelta(days=10 - 4 * k)
            files.append((host, when, _retimed(source, tmp_path / f"{host}-{k}.json", host, when)))
    first = files[:-1]
    proc = hyperward("fleet", "ingest", "--db", db, *(str(p) for _h, _w, p in first), env={"PYTHONPATH": str(old / "src")})
    assert proc.returncode == 0 and "ingested: 4 stored" in proc.stdout, proc.stdout + proc.stderr
    assert _count(db, "SELECT max(version) FROM schema_version") == 1
    old_report = hyperward("fleet", "report", "--db", db, "--format", "json", env={"PYTHONPATH": str(old / "src")})
    assert old_report.returncode == 0, old_report.stderr
    old_trends = json.loads(old_report.stdout)["trends"]
    assert sum(t["reports"] for t in old_trends) == 2

    doc = _report(db)
    assert _count(db, "SELECT max(version) FROM schema_version") == 2
    assert doc["trends"] == old_trends == _python_trends(db, 12, now) == _from_files(first, 12, now)
    assert _count(db, "SELECT count(*) FROM trend_pairs") == 2
    # the old hyperward now refuses the newer database in one line
    refused = hyperward("fleet", "report", "--db", db, env={"PYTHONPATH": str(old / "src")})
    assert refused.returncode == 2 and "schema 2 is newer than this hyperward (1)" in refused.stderr
    assert hyperward("fleet", "ingest", "--db", db, str(files[-1][2])).returncode == 0
    assert _report(db)["trends"] == _python_trends(db, 12, now) == _from_files(files, 12, now)
    assert _count(db, "SELECT count(*) FROM trend_pairs") == 3
