"""Backups against real repositories: restic and borg (Debian packages) with real snapshots, fresh
and stale, one guest in no repository, an unencrypted borg repository, a wrong password, a corrupt
repository and a missing binary. Passwords come from a file or the environment and never show."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from conftest import copy_root, hyperward, require

HARDENED = "hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)"
SEV = "sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)"
PASSWORD = "Rq7!backup-Pl4nted"


def _run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, pathlib.Path]]:
    require(shutil.which("restic") is not None and shutil.which("borg") is not None, "restic and borg (Debian packages restic, borgbackup)")
    base = tmp_path_factory.mktemp("backups")
    src = base / "src"
    (src / "etc/libvirt/qemu").mkdir(parents=True)
    (src / "etc/libvirt/qemu/hardened-vm.xml").write_text("<domain/>")
    (src / "images").mkdir()
    (src / "images/hardened-vm.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 1024)
    (src / "images/sev-vm.qcow2").write_bytes(b"QFI\xfb" + b"\1" * 1024)
    password_file = base / "restic.pass"
    password_file.write_text(PASSWORD + "\n")
    password_file.chmod(0o600)
    restic = base / "restic-repo"
    env = {"RESTIC_PASSWORD_FILE": str(password_file), "RESTIC_REPOSITORY": str(restic), "RESTIC_CACHE_DIR": str(base / "cache")}
    _run(["restic", "init"], env)
    _run(["restic", "backup", "--tag", "host-config", str(src / "etc/libvirt")], env)
    _run(["restic", "backup", "--tag", "hardened-vm", str(src / "images/hardened-vm.qcow2")], env)
    _run(["restic", "backup", "--tag", "sev-vm", "--time", "2026-01-10 03:00:00", str(src / "images/sev-vm.qcow2")], env)
    borg = base / "borg-repo"
    benv = {"BORG_PASSPHRASE": PASSWORD, "BORG_BASE_DIR": str(base / "borgbase")}
    _run(["borg", "init", "--encryption=repokey", str(borg)], benv)
    _run(["borg", "create", "--timestamp", "2026-11-01T02:00:00", f"{borg}::sev-vm-2026-11-01", str(src / "images/sev-vm.qcow2")], benv)
    plain = base / "borg-plain"
    _run(["borg", "init", "--encryption=none", str(plain)], benv)
    _run(["borg", "create", f"{plain}::misc-{os.getpid()}", str(src / "etc")], benv)
    yield {"base": base, "restic": restic, "borg": borg, "plain": plain, "password_file": password_file}


def _config(tmp: pathlib.Path, repos: dict[str, pathlib.Path], *entries: str) -> pathlib.Path:
    config = tmp / "config.toml"
    config.write_text("[backups]\nguest_max_age_hours = 24\nhost_max_age_days = 7\n" + "".join(entries))
    return config


def _restic_entry(repos: dict[str, pathlib.Path], password_file: pathlib.Path | None = None) -> str:
    return (f'[[backups.repository]]\nkind = "restic"\nlocation = "{repos["restic"]}"\n'
            f'password_file = "{password_file or repos["password_file"]}"\n')


def _borg_entry(location: pathlib.Path) -> str:
    return f'[[backups.repository]]\nkind = "borg"\nlocation = "{location}"\npassword_env = "HW_BORG_PASS"\n'


def _scan(root: pathlib.Path, config: pathlib.Path, repos: dict[str, pathlib.Path], env: dict[str, str] | None = None) -> tuple[dict, str]:
    done = hyperward("scan", "--root", str(root), "--config", str(config), "--format", "json", "--only", "BAK",
                     env={"HW_BORG_PASS": PASSWORD, "BORG_BASE_DIR": str(repos["base"] / "borgbase"), **(env or {})})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    return {(r["id"], r["resource"]): r for r in report["results"]}, done.stdout + done.stderr


def test_fresh_stale_and_missing_guests(tmp_path, repos):
    root = copy_root("hardened", tmp_path)
    (root / "etc/libvirt/qemu/lonely-vm.xml").write_text("<domain type='kvm'><name>lonely-vm</name><uuid>99999999-8888-4777-8666-555555555555</uuid></domain>\n")
    config = _config(tmp_path, repos, _restic_entry(repos), _borg_entry(repos["borg"]))
    results, text = _scan(root, config, repos)
    assert results[("HV-BAK-001", "host configuration")]["status"] == "pass"
    assert results[("HV-BAK-002", HARDENED)]["status"] == "pass"
    sev = results[("HV-BAK-002", SEV)]
    assert sev["status"] == "fail" and "2026-11-01" in sev["message"] and "borg" in sev["message"]  # newer than restic's January one
    assert results[("HV-BAK-002", "lonely-vm (99999999-8888-4777-8666-555555555555)")]["message"] == "in no configured repository"
    # both repositories are local directories on this machine
    assert results[("HV-BAK-003", str(repos["restic"]))]["message"] == "restic: on this host's own storage"
    assert results[("HV-BAK-003", str(repos["borg"]))]["message"] == "borg: on this host's own storage"
    assert PASSWORD not in text


def test_unencrypted_borg_and_remote_location(tmp_path, repos):
    root = copy_root("hardened", tmp_path)
    config = _config(tmp_path, repos, _borg_entry(repos["plain"]))
    results, _ = _scan(root, config, repos)
    assert results[("HV-BAK-003", str(repos["plain"]))]["message"] == "borg: not encrypted (none); on this host's own storage"
    assert results[("HV-BAK-001", "host configuration")]["status"] == "fail"


def test_wrong_password_corrupt_repository_and_missing_binary(tmp_path, repos):
    root = copy_root("hardened", tmp_path)
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-the-password\n")
    corrupt = tmp_path / "corrupt-borg"
    shutil.copytree(repos["borg"], corrupt)
    (corrupt / "config").write_text("[repository]\nversion = 1\n")
    config = _config(tmp_path, repos, _restic_entry(repos, wrong), _borg_entry(corrupt))
    results, text = _scan(root, config, repos)
    restic_error = results[("HV-BAK-001", str(repos["restic"]))]
    assert restic_error["status"] == "error" and "restic failed" in restic_error["message"] and "password" in restic_error["message"]
    borg_error = results[("HV-BAK-001", str(corrupt))]
    assert borg_error["status"] == "error" and "borg failed" in borg_error["message"]
    assert results[("HV-BAK-003", str(corrupt))]["status"] == "fail"
    assert "not-the-password" not in text and PASSWORD not in text
    # the rest of the scan is unaffected
    assert {r["id"] for r in results.values()} == {"HV-BAK-001", "HV-BAK-002", "HV-BAK-003", "HV-BAK-004", "HV-BAK-005"}
    gone = _restic_entry(repos) + 'binary = "/nonexistent/restic"\n'
    missing, _ = _scan(root, _config(tmp_path, repos, gone), repos)
    assert missing[("HV-BAK-001", str(repos["restic"]))]["message"].endswith(
        "binary /nonexistent/restic: No such file or directory; restic is not installed")


NO_BACKUP_SEEN = ("no backup hyperward can see: name them in /etc/hyperward/config.toml or --config "
                  "([[backups.repository]] with kind restic, borg or directory)")


def test_no_repositories_configured_fails_and_says_how_to_name_them(hardened):
    """A backup hyperward cannot see is no evidence of one: a medium failure, not "not applicable"."""
    done = hyperward("scan", "--root", str(hardened), "--only", "HV-BAK-001,HV-BAK-002,HV-BAK-003", "--format", "json")
    got = {(r["id"], r["resource"]): (r["status"], r["severity"], r["message"]) for r in json.loads(done.stdout)["results"]}
    assert got == {
        ("HV-BAK-001", "host configuration"): ("fail", "medium", NO_BACKUP_SEEN),
        ("HV-BAK-002", HARDENED): ("fail", "medium", NO_BACKUP_SEEN),
        ("HV-BAK-002", SEV): ("fail", "medium", NO_BACKUP_SEEN),
        ("HV-BAK-003", "host"): ("not_applicable", "medium", "no backup repositories configured: name them in /etc/hyperward/config.toml "
                                 "or --config ([[backups.repository]] with kind restic, borg or directory)"),
    }


def test_bad_backup_config_is_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[backups.repository]]\nkind = "tape"\nlocation = "/dev/st0"\n')
    done = hyperward("scan", "--config", str(config))
    assert done.returncode == 2 and "kind must be restic, borg or directory" in done.stderr


FAKE_TOOL = """#!/bin/sh
env > "$(dirname "$0")/ran-$(basename "$0")"
echo '[]'
"""


def test_tools_never_come_from_the_callers_path(tmp_path, repos, world_tmp):
    """An unprivileged user's directory first in PATH, holding a `restic` and a `borg` that record
    their environment (the repository password): neither runs, the real tools do, and no child
    inherits the caller's variables."""
    planted = world_tmp / "bin"
    planted.mkdir()
    planted.chmod(0o777)  # world-writable, no sticky bit
    for tool in ("restic", "borg"):
        done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "sh", "-c",
                               f'cat > {planted}/{tool} && chmod 755 {planted}/{tool}'],
                              input=FAKE_TOOL, text=True, capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
    root = copy_root("hardened", tmp_path)
    config = _config(tmp_path, repos, _restic_entry(repos), _borg_entry(repos["borg"]))
    results, text = _scan(root, config, repos, env={"PATH": f"{planted}:{os.environ['PATH']}",
                                                   "RESTIC_PASSWORD_COMMAND": f"{planted}/restic"})
    assert not list(planted.glob("ran-*"))
    # the real restic and borg answered: the snapshots they hold were read
    assert results[("HV-BAK-002", HARDENED)]["status"] == "pass"
    assert "2026-11-01" in results[("HV-BAK-002", SEV)]["message"]
    assert PASSWORD not in text


def test_configured_binary_must_be_root_owned_and_unwritable(tmp_path, repos, world_tmp):
    fake = world_tmp / "restic"
    fake.write_text(FAKE_TOOL)
    fake.chmod(0o777)
    root = copy_root("hardened", tmp_path)
    entry = _restic_entry(repos) + f'binary = "{fake}"\n'
    results, _ = _scan(root, _config(tmp_path, repos, entry), repos)
    assert results[("HV-BAK-001", str(repos["restic"]))]["message"].endswith(
        f"binary {fake}: writable by a user other than root; refused; restic is not installed")
    assert not list(world_tmp.glob("ran-*"))
    real = shutil.which("restic", path="/usr/bin")
    entry = _restic_entry(repos) + f'binary = "{real}"\n'
    results, _ = _scan(root, _config(tmp_path, repos, entry), repos)
    assert results[("HV-BAK-002", HARDENED)]["status"] == "pass"


def test_relative_binary_is_a_config_error(tmp_path, repos):
    entry = _restic_entry(repos) + 'binary = "restic"\n'
    done = hyperward("scan", "--config", str(_config(tmp_path, repos, entry)))
    assert done.returncode == 2 and "binary must be an absolute path" in done.stderr


def test_location_starting_with_a_dash_is_a_repository_not_an_option(tmp_path, repos):
    """`--help` as a location: taken as an option, borg and restic would print their help and
    exit 0; as a repository it does not exist."""
    root = copy_root("hardened", tmp_path)
    entries = (f'[[backups.repository]]\nkind = "borg"\nlocation = "--help"\npassword_env = "HW_BORG_PASS"\n'
               f'[[backups.repository]]\nkind = "restic"\nlocation = "-h"\npassword_file = "{repos["password_file"]}"\n')
    results, _ = _scan(root, _config(tmp_path, repos, entries), repos)
    errors = sorted(r["message"] for (cid, res), r in results.items() if cid == "HV-BAK-001" and res in ("--help", "-h"))
    assert len(errors) == 2 and all(" failed: " in m for m in errors), errors


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "sparse", "symlink"])
def test_password_file_that_is_not_a_small_regular_file(tmp_path, repos, kind):
    root = copy_root("hardened", tmp_path)
    bad = tmp_path / "pass"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "dev-zero":
        bad.symlink_to("/dev/zero")
    elif kind == "sparse":
        with open(bad, "wb") as handle:
            handle.truncate(1 << 40)
    else:
        bad.symlink_to(repos["password_file"])
    started = time.monotonic()
    results, _ = _scan(root, _config(tmp_path, repos, _restic_entry(repos, bad)), repos)
    assert time.monotonic() - started < 30
    message = results[("HV-BAK-001", str(repos["restic"]))]["message"]
    expected = {"fifo": "not a regular file", "dev-zero": "is a symbolic link; not followed", "sparse": "larger than 65536 bytes",
                "symlink": "is a symbolic link; not followed"}[kind]
    assert message.startswith(f"restic repository {repos['restic']}: password file {bad} unreadable (") and expected in message, message
