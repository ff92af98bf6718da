"""Bad input gives a clear error or not_applicable naming the path: never a traceback, never a silent pass."""

from __future__ import annotations

import json
import os
import shutil
import threading

from hyperward.model import Status

from conftest import apply, copy_root, hyperward, scan

V = "sys/devices/system/cpu/vulnerabilities"


def _by_check(report, check_id):
    return [f for f in report.findings if f.check_id == check_id]


def test_binary_garbage_in_sysfs(hardened):
    apply(hardened, {f"{V}/spectre_v2": b"\x00\xff\xfeMitigation\x00", "sys/devices/system/cpu/smt/control": b"\x89PNG\r\n\x1a\n"})
    report = scan(hardened)
    [v2] = [f for f in _by_check(report, "HV-SIDE-001") if f.result.resource == "spectre_v2"]
    assert v2.status is Status.ERROR and f"/{V}/spectre_v2" in v2.result.message and "binary" in v2.result.message
    [smt] = _by_check(report, "HV-SIDE-003")
    assert smt.status is Status.ERROR and "/sys/devices/system/cpu/smt/control" in smt.result.message


def test_unrecognized_sysfs_text_is_an_error(hardened):
    apply(hardened, {f"{V}/meltdown": "banana\n"})
    [f] = [f for f in _by_check(scan(hardened), "HV-SIDE-001") if f.result.resource == "meltdown"]
    assert f.status is Status.ERROR and "banana" in f.result.message


def test_empty_cmdline_passes_and_huge_cmdline_is_an_error(hardened):
    apply(hardened, {"proc/cmdline": ""})
    [f] = [f for f in _by_check(scan(hardened), "HV-VULN-002") if f.result.resource == "/proc/cmdline"]
    assert f.status is Status.PASS
    apply(hardened, {"proc/cmdline": "quiet " * (1024 * 1024 // 6)})
    [f] = [f for f in _by_check(scan(hardened), "HV-VULN-002") if f.result.resource == "/proc/cmdline"]
    assert f.status is Status.ERROR and "/proc/cmdline" in f.result.message and "larger than" in f.result.message


def test_garbage_integer_files(hardened):
    apply(hardened, {"proc/sys/kernel/tainted": "lots\n", "sys/kernel/mm/ksm/run": "\n"})
    report = scan(hardened)
    [taint] = _by_check(report, "HV-IDS-007")
    [ksm] = _by_check(report, "HV-SIDE-005")
    assert taint.status is Status.ERROR and "/proc/sys/kernel/tainted" in taint.result.message
    assert ksm.status is Status.ERROR and "/sys/kernel/mm/ksm/run" in ksm.result.message


def test_symlink_loops_under_the_root(hardened):
    os.remove(hardened / V / "mds")
    os.symlink("mds", hardened / V / "mds")
    os.remove(hardened / "etc/default/grub")
    os.symlink("/etc/default/grub", hardened / "etc/default/grub")  # absolute: resolved inside the root
    os.symlink("/sys/class/tpm/loop", hardened / "sys/class/tpm/loop")
    apply(hardened, {"proc/sys/kernel/osrelease": None})
    os.symlink("../../../proc/sys/kernel/osrelease", hardened / "proc/sys/kernel/osrelease")
    report = scan(hardened)
    [mds] = [f for f in _by_check(report, "HV-SIDE-001") if f.result.resource == "mds"]
    assert mds.status is Status.ERROR and "symlink loop" in mds.result.message
    [grub] = [f for f in _by_check(report, "HV-VULN-002") if f.result.resource.startswith("/etc/default/grub")]
    assert grub.status is Status.ERROR and "symlink loop" in grub.result.message
    [kernel] = [f for f in _by_check(report, "HV-PATCH-003")]
    assert kernel.status is Status.ERROR and "/proc/sys/kernel/osrelease" in kernel.result.message


def test_absolute_symlink_never_escapes_the_root(hardened):
    """A copied host's /etc/default/grub -> /etc/alternatives/grub must not read this machine's file."""
    os.remove(hardened / "etc/default/grub")
    os.symlink("/etc/alternatives/grub-default", hardened / "etc/default/grub")
    apply(hardened, {"etc/alternatives/grub-default": 'GRUB_CMDLINE_LINUX="nopti"\n'})
    report = scan(hardened, only=["HV-VULN-002"])
    assert {f.result.resource for f in report.findings if f.status is Status.FAIL} == {"/etc/default/grub: nopti"}


def test_fifo_does_not_block(hardened):
    os.remove(hardened / V / "retbleed")
    os.mkfifo(hardened / V / "retbleed")
    result: list = []
    worker = threading.Thread(target=lambda: result.append(scan(hardened)), daemon=True)
    worker.start()
    worker.join(20)
    assert result, "scan blocked on a FIFO"
    [f] = [f for f in _by_check(result[0], "HV-SIDE-001") if f.result.resource == "retbleed"]
    assert f.status is Status.ERROR and "not a regular file" in f.result.message


def test_permission_denied_names_the_checks_that_lacked_privilege(world_tmp, advisory_db):
    """As a normal user: what needs root becomes an error that says so, everything else runs."""
    root = copy_root("hardened", world_tmp)
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)
    os.chmod(root / "sys/kernel/security", 0o700)  # securityfs is root-only on real hosts
    os.chmod(root / "etc/group", 0o600)
    for private in ("etc/pki/libvirt/private", "var/lib/libvirt/qemu/save", "var/lib/libvirt/qemu/snapshot", "var/lib/libvirt/qemu/dump"):
        os.chmod(root / private, 0o700)  # as Debian's libvirt packages create them
    db = world_tmp / "advisories.sqlite"
    shutil.copy(advisory_db, db)
    db.chmod(0o644)
    env = {"HYPERWARD_VULNDB": str(db), "HYPERWARD_BASELINE": str(world_tmp / "no-baseline.json")}
    done = hyperward("scan", "--root", str(root), "--format", "json", user="nobody", env=env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["collected_as_root"] is False
    assert report["summary"]["lacking_privilege"] == ["HV-AUTH-004", "HV-AUTH-007", "HV-AUTH-015", "HV-BAK-004", "HV-ISO-001", "HV-TPM-002"]
    assert not [r for r in report["results"] if r["status"] == "error" and not r.get("needs_privilege")]
    [tpm] = [r for r in report["results"] if r["id"] == "HV-TPM-002"]
    assert tpm["status"] == "error" and tpm["needs_privilege"] and "/sys/kernel/security" in tpm["message"] and "run as root" in tpm["message"]
    text = hyperward("scan", "--root", str(root), user="nobody", env=env)
    assert "lacked privilege (run as root for these): HV-AUTH-004, HV-AUTH-007, HV-AUTH-015, HV-BAK-004, HV-ISO-001, HV-TPM-002" in " ".join(text.stdout.split())
    assert "Traceback" not in done.stderr + text.stderr


def test_unreadable_root_as_normal_user(world_tmp):
    (world_tmp / "private").mkdir(mode=0o700)
    done = hyperward("scan", "--root", str(world_tmp / "private"), user="nobody")
    assert done.returncode == 2 and done.stderr.strip() == f"hyperward: error: --root {world_tmp / 'private'}: permission denied"


def test_missing_root_is_one_clear_line(tmp_path):
    done = hyperward("scan", "--root", str(tmp_path / "nope"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"hyperward: error: --root {tmp_path / 'nope'}: no such directory"]
    (tmp_path / "file").write_text("x")
    done = hyperward("scan", "--root", str(tmp_path / "file"))
    assert done.returncode == 2 and "not a directory" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_corrupt_and_wrong_version_snapshots(tmp_path, hardened):
    good = tmp_path / "good.json"
    assert hyperward("collect", "--root", str(hardened), "-o", str(good)).returncode == 0
    document = json.loads(good.read_text())
    cases = {
        "truncated.json": good.read_text()[: len(good.read_text()) // 2],
        "garbage.json": "\x00\x01 not json",
        "other.json": json.dumps({"hello": "world"}),
        "v99.json": json.dumps({**document, "version": 99}),
        "shape.json": json.dumps({**document, "facts": {**document["facts"], "ksm": {"run": "one", "pages_sharing": 0}}}),
        "deep.json": "[" * 100000 + "]" * 100000,
    }
    for name, content in cases.items():
        (tmp_path / name).write_text(content)
        done = hyperward("scan", "--snapshot", str(tmp_path / name))
        assert done.returncode == 2, (name, done.stdout)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hyperward: error: ") and name in lines[0], (name, done.stderr)
    assert "version 99 is not supported" in hyperward("scan", "--snapshot", str(tmp_path / "v99.json")).stderr
    assert "facts.ksm.run" in hyperward("scan", "--snapshot", str(tmp_path / "shape.json")).stderr


def test_malformed_config_names_file_and_line(tmp_path):
    cases = {
        "syntax.toml": ("[scan]\nprofile = 'multi-tenant'\nfail_on = \n", "line 3"),
        "badprofile.toml": ("# c\n[scan]\nprofile = \"shared\"\n", "line 3"),
        "noreason.toml": ("[scan]\nfail_on = \"high\"\n\n[[suppress]]\ncheck = \"HV-SIDE-003\"\nresource = \"smt\"\n", "line 4"),
        "unknownid.toml": ("[[suppress]]\ncheck = \"HV-SIDE-001\"\nreason = \"x\"\n\n[[suppress]]\ncheck = \"HV-NOPE-001\"\nreason = \"y\"\n", "line 5"),
        "baddate.toml": ("[[suppress]]\ncheck = \"HV-SIDE-001\"\nreason = \"x\"\nexpires = \"next year\"\n", "line 1"),
        "unknownkey.toml": ("[scan]\nprofile = \"single-tenant\"\ncolour = true\n", "line 3"),
        "binary.toml": ("\udcff", "not UTF-8"),
    }
    for name, (content, where) in cases.items():
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8", "surrogateescape"))
        done = hyperward("scan", "--config", str(path), "--root", str(tmp_path))
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and where in lines[0], (name, lines)
    done = hyperward("scan", "--config", str(tmp_path / "absent.toml"))
    assert done.returncode == 2 and "no such file" in done.stderr


def test_a_collector_bug_is_one_line_not_a_traceback(hardened, tmp_path):
    """Simulate a collector bug with a sitecustomize that breaks one parser in the child process."""
    (tmp_path / "sitecustomize.py").write_text(
        "import hyperward.collect.kernel as k\n"
        "def broken(text):\n    raise ZeroDivisionError('injected')\n"
        "k.parse_cpuinfo = broken\n"
    )
    done = hyperward("scan", "--root", str(hardened), env={"PYTHONPATH": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"hyperward: error: internal error while collecting facts from {hardened}: ZeroDivisionError: injected "
        "(a bug in hyperward; HYPERWARD_DEBUG=1 shows the traceback)"
    ]
    debug = hyperward("scan", "--root", str(hardened), env={"PYTHONPATH": str(tmp_path), "HYPERWARD_DEBUG": "1"})
    assert "Traceback" in debug.stderr and "injected" in debug.stderr
