"""Signs of host compromise or instability the kernel records itself."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Category, Result, Severity, Unavailable
from ..parsers.kernel import decode_taint
from ._libvirt import as_int, daemon_configs, daemon_setting, no_daemon_config, process_label, qemu_processes


@check("HV-IDS-007", Category.IDS, Severity.LOW, "Kernel tainted",
    fix="find the cause in the kernel log (out-of-tree or unsigned module, oops, livepatch) and remove it, or suppress this finding with the reason",
    references=("Linux Documentation/admin-guide/tainted-kernels.rst",),
)
def kernel_tainted(host: HostFacts) -> Iterator[Result]:
    """A taint records that the kernel ran unsigned or out-of-tree code, was force-loaded, oopsed or
    was live-patched: each is either explained (suppress it with a reason) or worth investigating."""
    mask = host.kernel.tainted
    if isinstance(mask, Unavailable):
        yield Result.unavailable(mask, "kernel")
    elif mask == 0:
        yield Result.passed("kernel", "/proc/sys/kernel/tainted=0")
    else:
        flags = ", ".join(f"{letter} ({meaning})" for _, letter, meaning in decode_taint(mask))
        yield Result.fail("kernel", f"/proc/sys/kernel/tainted={mask}: {flags}")


@check("HV-IDS-003", Category.IDS, Severity.HIGH, "libvirt auditing off",
    fix="remove audit_level = 0 (or set audit_level = 2 to refuse to start without audit) and install and run auditd",
    references=("libvirt src/remote/libvirtd.conf.in audit_level",),
)
def libvirt_audit(host: HostFacts) -> Iterator[Result]:
    """libvirt's audit records (VIRT_CONTROL, VIRT_RESOURCE, VIRT_MACHINE_ID) are the trail of who
    started which guest with which disks and devices."""
    packages = host.patching.installed_packages
    auditd = None if isinstance(packages, Unavailable) else "auditd" in packages
    seen = False
    for name, settings in daemon_configs(host, ("libvirtd.conf", "virtqemud.conf")):
        seen = True
        if isinstance(settings, Result):
            yield settings
            continue
        level = daemon_setting(name, settings, "audit_level")
        resource = f"{name}:audit_level"
        if as_int(level.value, 1) == 0:
            yield Result.fail(resource, f"{level.describe()}: libvirt writes no audit records")
        elif auditd is False:
            yield Result.fail(resource, f"{level.describe()}, but auditd is not installed: the kernel audit records go nowhere durable")
        else:
            yield Result.passed(resource, level.describe())
    if not seen:
        yield no_daemon_config(host)


@check("HV-IDS-005", Category.IDS, Severity.MEDIUM, "Unmanaged (rogue) QEMU processes",
    fix="find out who started the listed QEMU processes (ps -o user,lstart,args -p PID); bring them under libvirt or stop them",
    references=("libvirt docs/drvqemu.rst",),
)
def rogue_qemu(host: HostFacts) -> Iterator[Result]:
    """A QEMU that libvirt did not start escapes sVirt, cgroups, auditing and this audit's
    definition checks: cryptominers and attackers' VMs hide this way."""
    procs = qemu_processes(host)
    if isinstance(procs, Result):
        yield procs
        return
    for proc in procs:
        if proc.managed_by is None:
            yield Result.fail(process_label(proc), f"QEMU not started by libvirt or Proxmox (no pid file in /run/libvirt/qemu, cgroup {proc.cgroup or 'unknown'})")
        else:
            yield Result.passed(process_label(proc), f"managed by {proc.managed_by}")
