"""A QEMU started the way qemu-server starts it (`-pidfile /var/run/qemu-server/VMID.pid`,
`-name NAME,debug-threads=on`, in the cgroup qemu.slice/VMID.scope; not `-id`, which only Proxmox's
QEMU build knows), under TCG, seen through the real
/proc machinery: it is Proxmox's guest 100, running, and not a rogue QEMU; the same binary started
outside that cgroup is one. Proxmox itself cannot run here: the process and the cgroup are real, the
node's configuration is the fixture tree's."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from conftest import require

from hyperward.collect import collect_host
from hyperward.collect.fs import RootFS
from hyperward.engine import registry, run_checks, select
from hyperward.model import Status
from hyperward.platforms.proxmox.collect import _qemu_running

QEMU = shutil.which("qemu-system-x86_64")
UNIFIED = next((p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup") if os.path.exists(f"{p}/cgroup.procs")
                and os.path.exists(f"{p}/cgroup.controllers")), None)
RUN = pathlib.Path("/run/qemu-server")


def _start(vmid: str, name: str, pidfile: pathlib.Path) -> int:
    # `-id VMID` is an option of Proxmox's own QEMU build (pve-qemu-kvm), not of Debian's: the rest
    # of qemu-server's identifying arguments are given as it gives them
    subprocess.run([QEMU, "-name", f"{name},debug-threads=on", "-pidfile", str(pidfile), "-daemonize",
                    "-machine", "pc,accel=tcg", "-display", "none", "-nodefaults", "-S", "-m", "64"],
                   check=True, capture_output=True, timeout=60)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text().strip())
        time.sleep(0.05)
    raise AssertionError("QEMU wrote no pid file")


@pytest.fixture
def proxmox_qemu(tmp_path: pathlib.Path) -> Iterator[tuple[int, int]]:
    require(os.geteuid() == 0 and QEMU is not None, "root and qemu-system-x86_64")
    require(UNIFIED is not None, "a writable cgroup v2 hierarchy")
    made_run = not RUN.exists()
    RUN.mkdir(exist_ok=True)
    scope = pathlib.Path(UNIFIED) / "qemu.slice" / "9100.scope"
    scope.mkdir(parents=True, exist_ok=True)
    pids: list[int] = []
    try:
        guest = _start("9100", "pvetest", RUN / "9100.pid")
        pids.append(guest)
        (scope / "cgroup.procs").write_text(str(guest))
        rogue = _start("9101", "stray", tmp_path / "stray.pid")
        pids.append(rogue)
        yield guest, rogue
    finally:
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for _ in range(100):
            if not any(os.path.exists(f"/proc/{p}") for p in pids):
                break
            time.sleep(0.05)
        (RUN / "9100.pid").unlink(missing_ok=True)
        if made_run:
            shutil.rmtree(RUN, ignore_errors=True)
        for path in (scope, scope.parent):
            try:
                path.rmdir()
            except OSError:
                pass


def test_qemu_server_style_guest_is_running_and_managed(proxmox_qemu):
    guest, rogue = proxmox_qemu
    fs = RootFS("/")
    assert _qemu_running(fs, "9100") is True
    assert _qemu_running(fs, "9101") is False  # no pid file of qemu-server's
    facts = collect_host("/")
    procs = {p.pid: p for p in facts.libvirt.processes if not isinstance(facts.libvirt.processes, Exception)}
    assert procs[guest].managed_by == "proxmox" and procs[guest].cgroup.startswith("/qemu.slice/9100.scope")
    assert procs[rogue].managed_by is None
    report = run_checks(facts, select(registry(), ["HV-IDS-005"]))
    verdicts = {f.result.resource: f.status for f in report.findings}
    assert verdicts[f"pvetest (pid {guest})"] is Status.PASS
    assert verdicts[f"stray (pid {rogue})"] is Status.FAIL


def test_a_pid_file_naming_a_non_qemu_process_is_not_running(tmp_path):
    require(os.geteuid() == 0, "root")
    made_run = not RUN.exists()
    RUN.mkdir(exist_ok=True)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (RUN / "9102.pid").write_text(f"{sleeper.pid}\n")
        assert _qemu_running(RootFS("/"), "9102") is False
    finally:
        sleeper.kill()
        sleeper.wait()
        (RUN / "9102.pid").unlink(missing_ok=True)
        if made_run:
            shutil.rmtree(RUN, ignore_errors=True)


def test_proxmox_builds_of_the_stack_are_the_virtualization_stack():
    """Pending updates of Proxmox's own QEMU, kernels and tools are high (HV-PATCH-001), like Debian's."""
    from hyperward.checks.patching import is_virt_stack

    for name in ("pve-qemu-kvm", "proxmox-kernel-6.8.12-4-pve-signed", "pve-kernel-5.15", "qemu-server", "pve-manager",
                 "pve-container", "lxc-pve", "pve-edk2-firmware-ovmf", "pve-firewall"):
        assert is_virt_stack(name), name
    for name in ("pve-docs", "proxmox-widget-toolkit", "libpve-common-perl", "bash"):
        assert not is_virt_stack(name), name
