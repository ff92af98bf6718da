"""Every file hyperward writes as root, tried the way a local user would attack it: a symlink planted
where the report will go (to /etc/ld.so.preload, say), a file pre-created to receive the snapshot, a
world-writable directory without the sticky bit (so the kernel's protected_symlinks does not help),
a directory the attacker owns. The attacker is a real account made by the test (conftest.attacker)
acting through setpriv; hyperward runs as root through the real console script."""

from __future__ import annotations

import json
import os
import pathlib
import pwd
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator

import pytest
from conftest import REPO, as_user, copy_root, hyperward

from hyperward import safefile, vulndb
from hyperward.monitor.sinks import JsonLinesSink
from hyperward.monitor.store import Store, StoreError


@pytest.fixture
def arena(attacker: str) -> Iterator[pathlib.Path]:
    """A directory in /tmp that the attacker can reach, plus a root-owned victim file beside it."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-arena-"))
    path.chmod(0o755)
    (path / "victim").write_text("root's file\n")
    (path / "victim").chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def shared_dir(arena: pathlib.Path, name: str, mode: int, owner: str | None = None) -> pathlib.Path:
    d = arena / name
    d.mkdir()
    d.chmod(mode)
    if owner:
        os.chown(d, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    return d


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return copy_root("hardened", tmp_path_factory.mktemp("root"))


def write_commands(root: pathlib.Path, target: pathlib.Path) -> dict[str, list[str]]:
    return {
        "scan -o": ["scan", "--root", str(root), "--only", "HV-NEST-001", "--format", "json", "-o", str(target)],
        "collect -o": ["collect", "--root", str(root), "-o", str(target)],
        "fix -o": ["fix", "--root", str(root), "--only", "HV-NEST-001", "-o", str(target)],
    }


@pytest.mark.parametrize("command", ["scan -o", "collect -o", "fix -o"])
def test_a_planted_symlink_is_refused_and_its_target_untouched(arena, attacker, root, command):
    """The ld.so.preload chain: a world-writable directory without the sticky bit, a link planted
    by the attacker pointing at a root file. Before: the root file was truncated and rewritten."""
    drop = shared_dir(arena, "drop", 0o777)
    link = drop / "report.json"
    assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(link)).returncode == 0
    result = hyperward(*write_commands(root, link)[command])
    assert result.returncode == 2, result.stderr
    assert "world-writable without the sticky bit" in result.stderr and str(drop) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (arena / "victim").read_text() == "root's file\n"
    assert os.path.islink(link)


def test_a_symlink_in_a_sticky_directory_is_refused(arena, attacker, root):
    drop = shared_dir(arena, "tmp", 0o1777)
    link = drop / "report.json"
    assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(link)).returncode == 0
    result = hyperward(*write_commands(root, link)["scan -o"])
    assert result.returncode == 2
    assert f"refusing to write {link}: it is a symbolic link" in result.stderr
    assert (arena / "victim").read_text() == "root's file\n"


def test_a_file_the_attacker_precreated_does_not_receive_the_snapshot(arena, attacker, root):
    """Before: the pre-created 0666 file received the whole snapshot, readable by its owner."""
    drop = shared_dir(arena, "tmp", 0o1777)
    planted = drop / "snapshot.json"
    assert as_user(attacker, "sh", "-c", f"umask 0; : > {planted}").returncode == 0
    result = hyperward(*write_commands(root, planted)["collect -o"])
    assert result.returncode == 2
    assert f"refusing to write {planted}: it belongs to uid {pwd.getpwnam(attacker).pw_uid}" in result.stderr
    assert planted.read_text() == ""


def test_a_directory_the_attacker_owns_is_refused(arena, attacker, root):
    theirs = shared_dir(arena, "theirs", 0o755, owner=attacker)
    result = hyperward(*write_commands(root, theirs / "r.json")["scan -o"])
    assert result.returncode == 2
    assert "the directory belongs to uid" in result.stderr
    assert not (theirs / "r.json").exists()


def test_a_report_in_a_sticky_directory_is_private_whole_and_unreadable_to_others(arena, attacker, root):
    drop = shared_dir(arena, "tmp", 0o1777)
    target = drop / "report.json"
    result = hyperward(*write_commands(root, target)["scan -o"])
    assert result.returncode in (0, 1), result.stderr
    st = target.lstat()
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert target.read_text().startswith("{")
    assert as_user(attacker, "cat", str(target)).returncode != 0
    assert [p.name for p in drop.iterdir()] == ["report.json"]  # no temporary file left behind


def test_a_configured_group_gets_0640(arena, root, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[files]\ngroup = "adm"\n')
    target = shared_dir(arena, "out", 0o755) / "report.json"
    result = hyperward(*write_commands(root, target)["scan -o"], "--config", str(config))
    assert result.returncode in (0, 1), result.stderr
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == 4


def test_an_existing_root_report_is_replaced_atomically(arena, root):
    target = shared_dir(arena, "out", 0o755) / "report.json"
    target.write_text("old")
    target.chmod(0o644)
    inode = target.stat().st_ino
    assert hyperward(*write_commands(root, target)["scan -o"]).returncode in (0, 1)
    assert target.stat().st_ino != inode and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("{")


def test_a_config_another_user_can_change_is_refused(arena, attacker, root):
    config = shared_dir(arena, "etc", 0o755) / "config.toml"
    config.write_text("[scan]\n")
    os.chown(config, pwd.getpwnam(attacker).pw_uid, -1)
    result = hyperward("scan", "--root", str(root), "--only", "HV-NEST-001", "--config", str(config))
    assert result.returncode == 2 and "refusing a config that a user other than root can change" in result.stderr
    os.chown(config, 0, -1)
    config.chmod(0o666)
    assert "refusing a config" in hyperward("scan", "--root", str(root), "--only", "HV-NEST-001", "--config", str(config)).stderr


def test_history_html_and_png_refuse_symlinks(arena, attacker, tmp_path):
    db = tmp_path / "monitor.sqlite"
    Store(str(db)).close()
    drop = shared_dir(arena, "tmp", 0o1777)
    for option in ("--html", "--png"):
        link = drop / f"chart{option[2:]}"
        assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(link)).returncode == 0
        result = hyperward("history", "--db", str(db), "nosuchvm", option, str(link))
        assert result.returncode == 2
    assert (arena / "victim").read_text() == "root's file\n"


def test_monitor_jsonl_sink_refuses_a_symlink_and_creates_0600(arena, attacker):
    """Before: alerts were appended through a link to a shell rc file, and a VM named
    web1$(id>/tmp/p) became a root command when it was sourced."""
    drop = shared_dir(arena, "tmp", 0o1777)
    link = drop / "alerts.jsonl"
    assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(link)).returncode == 0
    with pytest.raises(safefile.UnsafePath, match="symbolic link"):
        JsonLinesSink(str(link))
    fresh = shared_dir(arena, "out", 0o755) / "alerts.jsonl"
    sink = JsonLinesSink(str(fresh))
    sink.close()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert (arena / "victim").read_text() == "root's file\n"


def test_monitor_store_never_chmods_through_a_link(arena, attacker):
    """Before: the store's chmod followed a symlink and changed a root file's mode."""
    state = shared_dir(arena, "state", 0o750)
    os.symlink(arena / "victim", state / "monitor.sqlite")
    with pytest.raises(StoreError, match="symbolic link"):
        Store(str(state / "monitor.sqlite"))
    assert stat.S_IMODE((arena / "victim").stat().st_mode) == 0o644
    open_dir = shared_dir(arena, "open", 0o1777)
    with pytest.raises(StoreError, match="world-writable"):
        Store(str(open_dir / "monitor.sqlite"))
    fresh = state / "new.sqlite"
    Store(str(fresh)).close()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_scan_history_refuses_a_symlinked_database(arena, root):
    state = shared_dir(arena, "state", 0o750)
    os.symlink(arena / "victim", state / "history.sqlite")
    result = hyperward("scan", "--root", str(root), "--only", "HV-NEST-001", "--record", "-q",
                       env={"HYPERWARD_HISTORY": str(state / "history.sqlite")})
    assert "could not record the scan" in result.stderr and "symbolic link" in result.stderr
    assert (arena / "victim").read_text() == "root's file\n"


def test_state_directory_and_databases_are_private(tmp_path, monkeypatch, root):
    """/var/lib/hyperward was 0755 with 0644 databases: any user read which accounts have an empty
    password hash from a snapshot, and the history. hyperward's own state directory is 0750 and
    tightened when an earlier version made it 0755; databases 0600."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    state = tmp_path / "data" / "hyperward"
    state.mkdir(parents=True)
    state.chmod(0o755)
    (state / "history.sqlite").touch(mode=0o644)
    os.chmod(state / "history.sqlite", 0o644)
    safefile.prepare_database(str(state / "history.sqlite"))
    assert stat.S_IMODE(state.stat().st_mode) == 0o750
    assert stat.S_IMODE((state / "history.sqlite").stat().st_mode) == 0o600
    other = tmp_path / "operator-chose-this"
    other.mkdir(mode=0o755)
    other.chmod(0o755)
    safefile.prepare_database(str(other / "x.sqlite"))
    assert stat.S_IMODE(other.stat().st_mode) == 0o755  # only hyperward's own directory is changed


def test_baseline_accept_refuses_a_symlink_and_leaves_no_predictable_tmp(arena, attacker, root):
    """Before: `baseline accept` wrote PATH.tmp with a plain open; a link planted at that name
    redirected the write."""
    drop = shared_dir(arena, "drop", 0o1777)
    target = drop / "baseline.json"
    assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(drop / "baseline.json.tmp")).returncode == 0
    result = hyperward("baseline", "accept", "--root", str(root), "--file", str(target))
    assert result.returncode == 0, result.stderr
    assert (arena / "victim").read_text() == "root's file\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert as_user(attacker, "ln", "-s", str(arena / "victim"), str(drop / "b2.json")).returncode == 0
    result = hyperward("baseline", "accept", "--root", str(root), "--file", str(drop / "b2.json"))
    assert result.returncode == 2 and "symbolic link" in result.stderr


def test_db_import_refuses_a_symlinked_database(arena, attacker):
    drop = shared_dir(arena, "state", 0o750)
    os.symlink(arena / "victim", drop / "advisories.sqlite")
    result = hyperward("db", "import", str(REPO / "tests/fixtures/advisories"), "--db", str(drop / "advisories.sqlite"))
    assert result.returncode == 2 and "symbolic link" in result.stderr
    assert (arena / "victim").read_text() == "root's file\n"


def test_failed_update_leaves_no_database_and_keeps_the_old_one(tmp_path, root):
    """Issue 23's false pass: an offline `db update` left an empty database behind, and a scan given
    it passed HV-VULN-001. The update builds beside the old database and renames only on success."""
    db = tmp_path / "advisories.sqlite"
    result = hyperward("db", "update", "--url", "http://127.0.0.1:9/nothing.json", "--timeout", "2", "--db", str(db))
    assert result.returncode == 2 and "unchanged" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert hyperward("db", "import", str(REPO / "tests/fixtures/advisories"), "--db", str(db)).returncode == 0
    before = db.read_bytes()
    assert hyperward("db", "update", "--url", "http://127.0.0.1:9/nothing.json", "--timeout", "2", "--db", str(db)).returncode == 2
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["advisories.sqlite"]
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_an_empty_or_foreign_database_is_an_error_never_a_pass(tmp_path, root):
    empty = tmp_path / "empty.sqlite"
    vulndb.open_for_writing(str(empty)).close()
    result = hyperward("scan", "--root", str(root), "--only", "HV-VULN-001", "--vulndb", str(empty), "--format", "json")
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["error"]
    assert "holds no imported advisories" in result.stdout
    foreign = tmp_path / "foreign.sqlite"
    conn = vulndb.open_for_writing(str(foreign))
    conn.execute("INSERT INTO sources(name, kind, location, imported_at, advisories, errors) VALUES ('x', 'osv', 'x', '2026-12-01T00:00:00+00:00', 1, 0)")
    conn.execute("INSERT INTO advisories(source_id, advisory, cve, severity, cvss, summary) VALUES (1, 'A', 'CVE-1', 'high', NULL, '')")
    conn.execute("INSERT INTO affected VALUES (1, 'ubuntu', '24.04', 'qemu', '0', '9', NULL)")
    conn.commit()
    conn.close()
    result = hyperward("scan", "--root", str(root), "--only", "HV-VULN-001", "--vulndb", str(foreign), "--format", "json")
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["error"]
    assert "no advisory for debian:12" in result.stdout
    assert "ubuntu:24.04" in result.stdout
    with sqlite3.connect(foreign) as check:
        assert check.execute("SELECT COUNT(*) FROM affected").fetchone()[0] == 1


@pytest.mark.parametrize("what", ["vulndb", "history", "monitor"])
def test_a_fifo_in_place_of_a_database_is_an_error_not_a_hang(tmp_path, root, what):
    """A FIFO where a database should be blocked SQLite's open for ever."""
    fifo = tmp_path / "db.sqlite"
    os.mkfifo(fifo)
    if what == "vulndb":
        result = hyperward("scan", "--root", str(root), "--only", "HV-VULN-001", "--vulndb", str(fifo), "--format", "json", timeout=30)
        assert "not a regular file" in result.stdout
    elif what == "history":
        result = hyperward("scan", "--root", str(root), "--only", "HV-SCAN-001", "--format", "json", timeout=30,
                           env={"HYPERWARD_HISTORY": str(fifo)})
        assert "not a regular file" in result.stdout
    else:
        result = hyperward("monitor", "status", "--db", str(fifo), timeout=30)
        assert result.returncode != 0 and "not a regular file" in (result.stdout + result.stderr)
