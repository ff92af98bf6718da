"""Strings from guests, tenants and local users, played by the attacker: a process command line
and a VM name carrying terminal escape sequences, a forged report line and rich markup, through
the real CLI; and rogue QEMUs that dress up as libvirt's (issue 21)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from hyperward.collect.fs import RootFS
from hyperward.collect.libvirt import ManagerRecords, _processes, cgroup_owner, managed_by, manager_records
from hyperward.model import Status
from hyperward.monitor.unmanaged import QemuWatch
from hyperward.parsers.proc import machine_slice

from conftest import apply, copy_root, failing, hyperward, require, scan, statuses

# OSC 0 (window title), OSC 52 (clipboard), CSI erase screen, the 8-bit CSI, a right-to-left
# override, an embedded newline that forges a report line, and rich markup with a hyperlink.
EVIL = ("web\x1b]0;pwned-title\x07\x1b]52;c;cm0gLXJmIH4K\x07\x1b[2J\x9b31m\u202eX"
        "\n  CRITICAL FAIL           HV-FAKE-001  forged [red]x[/red][link=http://127.0.0.1/]y[/link]")
EVIL_SHOWN = "web\\x1b]0;pwned-title\\x07\\x1b]52;c;cm0gLXJmIH4K\\x07\\x1b[2J\\x9b31m\\u202eX\\n  CRITICAL FAIL"
EVIL_CGROUP = "/user.slice/user-1000.slice/user@1000.service/app.slice/\x1b]0;cg\x07machine-qemu\\x2d9\\x2dx.scope"
QEMU = "/usr/bin/qemu-system-x86_64"
HVM = "hardened-vm (pid 2345)"


def assert_inert(text: str) -> None:
    """Nothing a terminal acts on: no C0 control but the line break, no DEL, no C1, no bidi override."""
    bad = sorted({f"U+{ord(c):04X}" for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"})
    assert not bad, f"raw control characters in output: {bad}"


def no_forged_line(text: str) -> None:
    for line in text.splitlines():
        assert not re.match(r"\s*CRITICAL\s+FAIL\s+HV-FAKE-001", line), f"forged report line: {line!r}"


def add_proc(root: pathlib.Path, pid: int, args: list[str], cgroup: str, exe: str | None = QEMU) -> None:
    """A /proc/PID as the kernel shows it: NUL-separated cmdline, cgroup lines, the exe link."""
    d = root / "proc" / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    (d / "cgroup").write_text(cgroup if "\n" in cgroup else f"0::{cgroup}\n")
    if exe is not None:
        os.symlink(exe, d / "exe")


@pytest.fixture
def hostile(tmp_path: pathlib.Path) -> pathlib.Path:
    root = copy_root("hardened", tmp_path)
    add_proc(root, 6666, [QEMU, "-name", f"guest={EVIL}", "-uuid", "6f1a3c2e-0b7d-4e55-9a61-3c1f0e2d4b8a"], EVIL_CGROUP)
    return root


def test_scan_text_report_shows_hostile_names_escaped(hostile: pathlib.Path) -> None:
    done = hyperward("scan", "--root", str(hostile), "--verbose", env={"COLUMNS": "2000"})
    assert done.returncode == 0, done.stderr
    assert_inert(done.stdout)
    assert_inert(done.stderr)
    no_forged_line(done.stdout)
    assert EVIL_SHOWN in done.stdout
    assert "[red]x[/red][link=http://127.0.0.1/]y[/link] (pid 6666)" in done.stdout, "markup printed as written"
    line = next(ln for ln in done.stdout.splitlines() if "(pid 6666)" in ln and "not started by libvirt" in ln)
    assert "\\x1b]0;cg\\x07machine-qemu\\\\x2d9\\\\x2dx.scope" in line, "the cgroup path is escaped too"


def test_scan_json_keeps_the_exact_strings(hostile: pathlib.Path) -> None:
    done = hyperward("scan", "--root", str(hostile), "--only", "HV-IDS-005", "--format", "json")
    assert done.returncode == 0, done.stderr
    results = {r["resource"]: r for r in json.loads(done.stdout)["results"]}
    rogue = results[f"{EVIL} (pid 6666)"]
    assert rogue["status"] == "fail" and EVIL_CGROUP in rogue["message"]
    assert results[HVM]["status"] == "pass"


def test_scan_on_a_real_terminal_emits_only_its_own_colours(hostile: pathlib.Path) -> None:
    require(shutil.which("script") is not None, "script(1) from util-linux gives the scan a real tty")
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable)) or shutil.which("hyperward")
    assert exe
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | {"TERM": "xterm-256color", "COLUMNS": "2000"}
    command = shlex.join([exe, "scan", "--root", str(hostile), "--only", "HV-IDS-005,HV-ISO-004"])
    done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)
    out = done.stdout.replace("\r\n", "\n")
    assert "\x1b[" in out, "the report is in colour: this really was a terminal"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert_inert(plain)
    no_forged_line(plain)
    assert EVIL_SHOWN in plain and "[red]x[/red]" in plain


def test_error_messages_escape_what_they_name(tmp_path: pathlib.Path) -> None:
    done = hyperward("scan", "--root", str(tmp_path / f"missing{EVIL}"))
    assert done.returncode == 2 and done.stdout == ""
    assert_inert(done.stderr)
    assert len(done.stderr.splitlines()) == 1 and "missing" + EVIL_SHOWN in done.stderr


def test_monitor_status_and_history_escape_guest_names(tmp_path: pathlib.Path) -> None:
    from test_monitor import UUID_A, Clock, frames, make_monitor, run_ticks

    root = tmp_path / "proc-root"
    add_proc(root, 1, ["/sbin/init"], "/init.scope", exe="/usr/lib/systemd/systemd")
    add_proc(root, 5151, ["qemu-system-x86_64", "-name", f"guest={EVIL}", "-uuid", UUID_A], EVIL_CGROUP)
    data = frames(5)
    for frame in data:
        frame["domains"][0]["name"] = EVIL
    clock = Clock()
    mon, sink = make_monitor(tmp_path, data, clock, proc_root=str(root))
    run_ticks(mon, clock, 3)
    mon.shutdown()
    assert [(a.kind, a.vm) for a in sink.alerts] == [("unmanaged_qemu", EVIL)]
    db = str(tmp_path / "monitor.sqlite")
    status = hyperward("monitor", "status", "--db", db)
    assert status.returncode == 1, status.stderr  # no monitor running now
    for text in (status.stdout, status.stderr):
        assert_inert(text)
        no_forged_line(text)
    assert status.stdout.count(EVIL_SHOWN) >= 2, "the watched VM and the alert"
    as_json = json.loads(hyperward("monitor", "status", "--db", db, "--format", "json").stdout)
    assert as_json["open_alerts"][0]["vm"] == EVIL and as_json["vms"][0]["name"] == EVIL
    history = hyperward("history", UUID_A, "--db", db, "--since", "3650d")
    assert history.returncode == 0, history.stderr
    assert_inert(history.stdout)
    no_forged_line(history.stdout)
    assert history.stdout.startswith(EVIL_SHOWN)
    unknown = hyperward("history", "other" + EVIL, "--db", db)
    assert unknown.returncode == 2 and len(unknown.stderr.splitlines()) == 1
    assert_inert(unknown.stderr)


# --- who manages a QEMU ----------------------------------------------------------------------
# cgroup paths as /proc/PID/cgroup shows them on the layouts libvirt and Proxmox really create
# (libvirt docs/cgroups.rst).
REAL_LAYOUTS = {
    "libvirt >= 7.1, cgroup v2": ("/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/libvirt/emulator", "libvirt"),
    "libvirt < 7.1, cgroup v2": ("/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/emulator", "libvirt"),
    "partition slice": ("/machine.slice/machine-engineering.slice/machine-engineering-testing.slice/"
                        "machine-qemu\\x2d7\\x2dhardened\\x2dvm.scope/libvirt/emulator", "libvirt"),
    "cgroup v1 under systemd": ("13:rdma:/\n12:pids:/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/emulator\n"
                                "4:cpu,cpuacct:/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/emulator\n"
                                "1:name=systemd:/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope\n", "libvirt"),
    "no systemd": ("8:rdma:/\n4:cpu,cpuacct:/machine/qemu-1-hardened-vm.libvirt-qemu/emulator\n", "libvirt"),
    "no systemd, partition": ("4:cpu,cpuacct:/machine/production.partition/qemu-1-hardened-vm.libvirt-qemu/emulator\n", "libvirt"),
    "proxmox": ("/qemu.slice/101.scope", "proxmox"),
}
ROGUE_LAYOUTS = {
    "user manager, libvirt's scope name": "/user.slice/user-1000.slice/user@1000.service/app.slice/machine-qemu\\x2d1\\x2dfake.scope",
    "user slice": "/user.slice/user-1000.slice/machine-qemu-fake.scope",
    "session": "/user.slice/user-1000.slice/session-4.scope/machine-qemu\\x2d1\\x2dvm.scope/libvirt/emulator",
    "substring in a service": "/system.slice/evil-machine-qemu.service",
    "libvirt's tree below another root": "/system.slice/evil.service/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
    "non-systemd suffix under a user": "/user.slice/user-1000.slice/user@1000.service/x.libvirt-qemu/emulator",
    "proxmox's name under a user": "/user.slice/user-1000.slice/user@1000.service/qemu.slice/101.scope",
    "nothing": "/",
}


@pytest.mark.parametrize("name", REAL_LAYOUTS)
def test_real_layouts_are_managed_without_pid_files(tmp_path: pathlib.Path, name: str) -> None:
    """An offline tree without /run: the cgroup alone decides, and these are libvirt's and Proxmox's own."""
    cgroup, owner = REAL_LAYOUTS[name]
    root = copy_root("hardened", tmp_path)
    apply(root, {"run/libvirt": None, "proc/2345/cgroup": cgroup if "\n" in cgroup else f"0::{cgroup}\n"})
    report = scan(root, only=["HV-IDS-005"])
    assert statuses(report, "HV-IDS-005") == {HVM: Status.PASS}
    assert f"managed by {owner}" in report.findings[0].result.message


@pytest.mark.parametrize("name", ROGUE_LAYOUTS)
def test_rogue_layouts_fail_naming_the_process(tmp_path: pathlib.Path, name: str) -> None:
    root = copy_root("hardened", tmp_path)
    apply(root, {"run/libvirt": None})
    add_proc(root, 6666, [QEMU, "-name", "guest=miner"], ROGUE_LAYOUTS[name])
    report = scan(root, only=["HV-IDS-005"])
    assert failing(report, "HV-IDS-005") == {"miner (pid 6666)"}
    assert statuses(report, "HV-IDS-005")[HVM] is Status.PASS


@pytest.mark.parametrize("name", ROGUE_LAYOUTS)
def test_the_monitor_alerts_on_the_same_rogues(tmp_path: pathlib.Path, name: str) -> None:
    root = tmp_path / "root"
    add_proc(root, 4242, [QEMU, "-name", "guest=web1"], REAL_LAYOUTS["libvirt >= 7.1, cgroup v2"][0])
    add_proc(root, 6666, [QEMU, "-name", "guest=miner"], ROGUE_LAYOUTS[name])
    (root / "run/libvirt/qemu").mkdir(parents=True)
    (root / "run/libvirt/qemu/web1.pid").write_text("4242\n")
    assert {(p.pid, p.managed_by) for p in QemuWatch(str(root)).scan()} == {(4242, "libvirt"), (6666, None)}


def test_a_second_qemu_inside_a_vms_scope_is_not_libvirts(hardened: pathlib.Path) -> None:
    """What a guest escape would start: its cgroup is the VM's, its PID is in no pid file."""
    add_proc(hardened, 2399, [QEMU, "-name", "guest=second"], (hardened / "proc/2345/cgroup").read_text())
    assert failing(scan(hardened, only=["HV-IDS-005"]), "HV-IDS-005") == {"second (pid 2399)"}


def test_a_pid_file_does_not_vouch_for_a_process_in_a_user_slice(hardened: pathlib.Path) -> None:
    """A stale pid file whose PID a user's process now holds."""
    apply(hardened, {"proc/2345/cgroup": "0::/user.slice/user-1000.slice/session-4.scope\n"})
    assert failing(scan(hardened, only=["HV-IDS-005"]), "HV-IDS-005") == {HVM}


def test_proxmox_pid_file_is_cross_checked(hardened: pathlib.Path) -> None:
    apply(hardened, {"run/libvirt/qemu/hardened-vm.pid": None, "proc/2345/cgroup": "0::/qemu.slice/101.scope\n",
                     "run/qemu-server/101.pid": "2345\n"})
    assert statuses(scan(hardened, only=["HV-IDS-005"]), "HV-IDS-005") == {HVM: Status.PASS}
    apply(hardened, {"run/qemu-server/101.pid": "3000\n"})
    assert failing(scan(hardened, only=["HV-IDS-005"]), "HV-IDS-005") == {HVM}


def test_the_api_makes_a_pid_file_of_a_stopped_domain_stale() -> None:
    records = ManagerRecords({2345: "hardened-vm"}, api_running=frozenset({"other"}))
    assert managed_by(2345, "/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/libvirt/emulator", records) is None
    assert managed_by(2345, "/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope/libvirt/emulator",
                      ManagerRecords({2345: "hardened-vm"}, api_running=frozenset({"hardened-vm"}))) == "libvirt"
    assert managed_by(2345, "/", ManagerRecords(None)) is None
    assert cgroup_owner("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope\n") is None, "one line, nothing after it"


def test_exe_not_argv0_says_what_is_qemu(hardened: pathlib.Path) -> None:
    add_proc(hardened, 7777, [QEMU, "-name", "guest=decoy"], "/user.slice/user-1000.slice/session-4.scope", exe="/usr/bin/sleep")
    add_proc(hardened, 7778, ["/usr/sbin/sshd", "-D"], "/user.slice/user-1000.slice/session-4.scope", exe=f"{QEMU} (deleted)")
    report = scan(hardened, only=["HV-IDS-005"])
    assert failing(report, "HV-IDS-005") == {"(pid 7778)"}
    assert set(statuses(report, "HV-IDS-005")) == {HVM, "(pid 7778)"}


def test_cgroup_v1_prefers_systemds_hierarchy() -> None:
    text = REAL_LAYOUTS["cgroup v1 under systemd"][0]
    assert machine_slice(text) == "/machine.slice/machine-qemu\\x2d1\\x2dhardened\\x2dvm.scope"
    assert machine_slice("8:rdma:/\n4:cpu,cpuacct:/machine/qemu-1-a.libvirt-qemu/emulator\n") == "/machine/qemu-1-a.libvirt-qemu/emulator"


def test_the_monitor_looks_again_when_a_pid_execs_qemu(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    add_proc(root, 8888, [QEMU, "-name", "guest=later"], "/user.slice/user-1000.slice/session-4.scope", exe="/usr/bin/bash")
    (root / "run/libvirt/qemu").mkdir(parents=True)
    watch = QemuWatch(str(root))
    assert watch.scan() == []
    (root / "proc/8888/exe").unlink()
    os.symlink(QEMU, root / "proc/8888/exe")
    assert [(p.pid, p.guest, p.managed_by, p.exe) for p in watch.scan()] == [(8888, "later", None, QEMU)]


# --- real processes on this machine ----------------------------------------------------------
def _pids(found: object) -> set[int]:
    return {p.pid for p in found}  # type: ignore[attr-defined]


def test_a_real_process_calling_itself_qemu_is_not_qemu() -> None:
    decoy = subprocess.Popen(["qemu-system-x86_64", "60"], executable="/usr/bin/sleep",
                             user="nobody", group="nogroup")
    try:
        time.sleep(0.2)
        assert open(f"/proc/{decoy.pid}/cmdline", "rb").read().startswith(b"qemu-system-x86_64\0")
        fs = RootFS("/")
        found = _processes(fs, manager_records(fs))
        assert isinstance(found, list) and decoy.pid not in _pids(found)
        assert decoy.pid not in _pids(QemuWatch("/").scan())
    finally:
        decoy.kill()
        decoy.wait()


def test_a_real_qemu_with_a_fake_argv0_is_qemu_and_unmanaged() -> None:
    require(shutil.which("qemu-system-x86_64") is not None, "qemu-system-x86_64 (TCG is enough)")
    rogue = subprocess.Popen(["sshd-not-qemu", "-machine", "none", "-display", "none", "-S", "-nodefaults", "-name", "guest=realrogue",
                              "-monitor", "none", "-serial", "none", "-parallel", "none"],
                             executable=shutil.which("qemu-system-x86_64"), user="nobody", group="nogroup",
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.readlink(f"/proc/{rogue.pid}/exe").endswith("qemu-system-x86_64") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rogue.poll() is None
        seen = {p.pid: p for p in QemuWatch("/").scan()}
        assert rogue.pid in seen and seen[rogue.pid].guest == "realrogue" and seen[rogue.pid].managed_by is None
        assert seen[rogue.pid].exe.endswith("/qemu-system-x86_64")
        fs = RootFS("/")
        found = _processes(fs, manager_records(fs))
        assert isinstance(found, list)
        proc = next(p for p in found if p.pid == rogue.pid)
        assert proc.kind == "qemu" and proc.domain_name == "realrogue" and proc.managed_by is None
    finally:
        rogue.kill()
        rogue.wait()
