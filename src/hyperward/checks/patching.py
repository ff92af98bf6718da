"""Patch level of the host: reboots pending, CPU microcode, automatic security updates."""

from __future__ import annotations

import datetime
import fnmatch
import functools
from collections.abc import Iterator

from ..engine import check
from ..facts import STACK_DAEMONS, HostFacts
from ..model import Result, Severity, Unavailable
from ..parsers.kernel import compare_versions
from ..facts import VULN_DIR
from ._libvirt import process_label, qemu_processes

def _flavour(release: str) -> str | None:
    """The trailing alphabetic parts: "amd64" of 6.1.0-21-amd64 and 6.12.38+deb12-amd64,
    "cloud-amd64" of 6.1.0-21-cloud-amd64, "pve" of 6.8.12-4-pve; None for RHEL-style names."""
    parts = release.split("-")[1:]
    tail: list[str] = []
    for part in reversed(parts):
        if not part[:1].isalpha():
            break
        tail.append(part)
    return "-".join(reversed(tail)) or None


@check("HV-PATCH-003",
    fix="reboot into the newest installed kernel (live-migrate guests away first) or apply a livepatch",
    references=("Debian reboot-required (update-notifier-common / unattended-upgrades)",),
)
def reboot_pending(host: HostFacts) -> Iterator[Result]:
    """A kernel update protects nothing until the host boots it: KVM and the CPU-bug mitigations
    live in the running kernel. Kernels of another flavour (cloud, rt) are not compared."""
    kernel = host.kernel
    reboot = kernel.reboot_required
    if isinstance(reboot, Unavailable):
        yield Result.unavailable(reboot, "reboot-required")
    elif reboot.flagged:
        pkgs = f" (packages: {', '.join(reboot.packages)})" if reboot.packages else ""
        yield Result.fail("reboot-required", f"/var/run/reboot-required is present{pkgs}")
    if isinstance(kernel.release, Unavailable):
        yield Result.unavailable(kernel.release, "kernel")
        return
    if isinstance(kernel.installed, Unavailable):
        yield Result.unavailable(kernel.installed, "kernel")
        return
    running = kernel.release
    flavour = _flavour(running)
    same = [k for k in kernel.installed if _flavour(k) == flavour] or list(kernel.installed)
    newest = max(same, key=functools.cmp_to_key(compare_versions))
    if running not in kernel.installed:
        yield Result.fail("kernel", f"running kernel {running} is no longer installed (newest installed: {newest})")
    elif compare_versions(newest, running) > 0:
        yield Result.fail("kernel", f"running kernel {running}, newest installed {newest}")
    else:
        yield Result.passed("kernel", f"running kernel {running} is the newest installed")


@check("HV-PATCH-004",
    fix="apt install intel-microcode or amd64-microcode (non-free-firmware), or update the system firmware; reboot",
    references=("Linux Documentation/admin-guide/hw-vuln/old_microcode.rst",),
)
def microcode_outdated(host: HostFacts) -> Iterator[Result]:
    """Several mitigations (MDS, TAA, SRBDS, GDS, RFDS) need microcode the kernel cannot supply;
    the kernel says so with "no microcode", and old_microcode flags revisions it knows are stale."""
    vulns = host.cpu.vulnerabilities
    if isinstance(vulns, Unavailable):
        yield Result.unavailable(vulns, "cpu")
        return
    info = host.cpu.info
    revision = f" (microcode {info.microcode})" if not isinstance(info, Unavailable) and info.microcode else ""
    problems = []
    for name, value in vulns.items():
        if not isinstance(value, str):
            continue
        if name == "old_microcode" and "Vulnerable" in value:
            problems.append(f"old_microcode: {value}")
        elif "no microcode" in value.lower():
            problems.append(f"{name}: {value}")
    if problems:
        yield Result.fail("cpu", "; ".join(problems) + revision)
    elif "old_microcode" not in vulns:
        yield Result.passed("cpu", f"no {VULN_DIR} file reports missing microcode; this kernel has no old_microcode file{revision}")
    else:
        yield Result.passed("cpu", f"old_microcode: {vulns['old_microcode']}{revision}")


def _truthy_period(value: str | None) -> bool:
    """APT::Periodic intervals: "0" or absent disables; a number of days or "always" enables."""
    if value is None:
        return False
    v = value.strip().lower()
    return v == "always" or (v.isdigit() and int(v) > 0)


@check("HV-PATCH-005",
    fix="apt install unattended-upgrades && dpkg-reconfigure -plow unattended-upgrades; on dnf hosts set apply_updates = yes and enable dnf-automatic-install.timer",
    references=("Debian wiki UnattendedUpgrades", "apt.conf(5), /usr/lib/apt/apt.systemd.daily", "dnf-automatic(8)"),
)
def no_automatic_updates(host: HostFacts) -> Iterator[Result]:
    """QEMU, libvirt and kernel security fixes ship often; a host that waits for a human falls
    behind. Debian: unattended-upgrades driven by APT::Periodic (apt.systemd.daily);
    Fedora/RHEL: dnf-automatic with apply_updates=yes and its timer enabled."""
    apt, dnf = host.patching.apt, host.patching.dnf_automatic
    if apt is None and dnf is None:
        yield Result.not_applicable("no /etc/apt and no dnf-automatic configuration")
        return
    if apt is not None:
        s = apt.settings
        problems = []
        if apt.unattended_upgrades_installed is False:
            problems.append("package unattended-upgrades is not installed")
        if s.get("apt::periodic::enable", "1").strip() == "0":
            problems.append('APT::Periodic::Enable "0"')
        if not _truthy_period(s.get("apt::periodic::unattended-upgrade")):
            problems.append(f'APT::Periodic::Unattended-Upgrade is {s.get("apt::periodic::unattended-upgrade", "unset (default 0)")!r}')
        if not _truthy_period(s.get("apt::periodic::update-package-lists")):
            problems.append(f'APT::Periodic::Update-Package-Lists is {s.get("apt::periodic::update-package-lists", "unset (default 0)")!r}')
        if apt.upgrade_timer_masked:
            problems.append("apt-daily-upgrade.timer is masked")
        if problems:
            yield Result.fail("apt", "; ".join(problems))
        else:
            yield Result.passed("apt", "unattended-upgrades installed and enabled by APT::Periodic")
    if dnf is not None:
        applies = (dnf.apply_updates or "").lower() in ("yes", "true", "1", "on")
        if applies and dnf.timers_enabled:
            yield Result.passed("dnf-automatic", f"apply_updates={dnf.apply_updates}, {', '.join(dnf.timers_enabled)} enabled")
        else:
            problems = []
            if not applies:
                problems.append(f"{dnf.path}: apply_updates={dnf.apply_updates or 'unset (default no)'}")
            if not dnf.timers_enabled:
                problems.append("no dnf-automatic timer enabled in timers.target.wants")
            yield Result.fail("dnf-automatic", "; ".join(problems))


@check("HV-PATCH-002",
    fix="restart the listed guests (virsh shutdown/start, or live-migrate them and back) so they run the updated QEMU; restart libvirtd/virtlogd (swtpm restarts with its guest)",
    references=("needrestart(1)",),
)
def stale_qemu(host: HostFacts) -> Iterator[Result]:
    """An update fixes nothing for a guest whose QEMU still runs the old code: the fix lands only
    when the process is restarted. The same holds for libvirt's daemons and swtpm."""
    procs = qemu_processes(host, ("qemu", *STACK_DAEMONS))
    if isinstance(procs, Result):
        yield procs
        return
    for proc in procs:
        stale = []
        if proc.exe_deleted:
            stale.append(f"executable {str(proc.exe).removesuffix(' (deleted)')} was replaced")
        if proc.deleted_libraries:
            shown = ", ".join(proc.deleted_libraries[:5]) + (f" and {len(proc.deleted_libraries) - 5} more" if len(proc.deleted_libraries) > 5 else "")
            stale.append(f"maps deleted {shown}")
        if stale:
            yield Result.fail(process_label(proc), "; ".join(stale))
        elif isinstance(proc.exe, Unavailable):
            yield Result.unavailable(proc.exe, process_label(proc))
        else:
            yield Result.passed(process_label(proc), f"runs the installed {proc.exe}")


VIRT_STACK = ("linux-image*", "linux-signed-*", "qemu*", "libvirt*", "python3-libvirt", "xen*", "libxen*", "ovmf*", "edk2*",
              "swtpm*", "libtpms*", "*-microcode", "seabios", "ipxe*", "libspice*", "libvirglrenderer*", "libslirp*",
              # Proxmox VE's own builds of the same stack, and the tools that drive it
              "pve-qemu-kvm", "proxmox-kernel-*", "pve-kernel-*", "pve-firmware", "pve-edk2-firmware*", "qemu-server",
              "pve-manager", "pve-container", "lxc-pve", "pve-firewall", "pve-cluster", "pve-ha-manager", "proxmox-ve")
LISTS_MAX_AGE_DAYS = 7


def is_virt_stack(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in VIRT_STACK)


def apk_pending_updates(host: HostFacts) -> Iterator[Result]:
    """Alpine's counterpart of pending_updates, from the indexes apk cached (what `apk upgrade`
    would install, pins and tags aside). Alpine's stable branches carry their security fixes as
    ordinary updates with no archive of their own, so every pending update is medium (the
    virtualization stack high). Indexes older than LISTS_MAX_AGE_DAYS fail as apt's lists do."""
    state = host.patching.apk_state
    if state is None:
        yield Result.not_applicable("no apk database (/lib/apk/db/installed)")
        return
    if isinstance(state, Unavailable):
        yield Result.unavailable(state, "apk")
        return
    for problem in state.problems:
        yield Result.unavailable(problem, problem.path)
    if not state.indexes:
        repos = "; ".join(state.repositories) if state.repositories else "none in /etc/apk/repositories"
        why = "unreadable" if state.problems else "none"
        yield Result.not_applicable(f"no cached apk index under /var/cache/apk ({why}; repositories: {repos}): apk update was never run, "
                                    "or its cache was cleared, so what is pending is unknown")
        return
    if state.indexes_updated:
        age = datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(state.indexes_updated)
        if age > datetime.timedelta(days=LISTS_MAX_AGE_DAYS):
            yield Result.fail("apk indexes", f"last updated {age.days} days ago ({state.indexes_updated}): pending updates may be missing",
                              severity=Severity.MEDIUM, remediation="run apk update (or any apk command once its cache expires)")
    for update in sorted(state.pending, key=lambda u: u.name):
        virt = is_virt_stack(update.name)
        kind = "virtualization stack update" if virt else "pending update (Alpine ships security fixes as ordinary updates)"
        yield Result.fail(update.name, f"{kind}: installed {update.installed}, candidate {update.candidate} from {update.origin}",
                          severity=Severity.HIGH if virt else Severity.MEDIUM,
                          details={"package": update.name, "arch": update.arch, "source_package": update.source or update.name,
                                   "index": update.origin, "installed": update.installed, "candidate": update.candidate, "virt_stack": virt})
    if not state.pending:
        yield Result.passed("apk", f"no pending update ({len(state.indexes)} cached indexes, updated {state.indexes_updated})")


@check("HV-PATCH-001",
    fix="apt-get update && apt-get upgrade (then restart the guests, HV-PATCH-002, or reboot for a kernel, HV-PATCH-003)",
    references=("apt_preferences(5) (candidate selection)", "Debian Security Advisories"),
)
def pending_updates(host: HostFacts) -> Iterator[Result]:
    """An unapplied fix protects nothing. Computed from apt's own lists and pins as `apt list
    --upgradable` would show them, offline, and every pending update is listed: a stable point
    release carries many CVE fixes that never get an advisory or reach the security archive.
    Virtualization-stack packages (kernel, QEMU, libvirt, firmware, swtpm, microcode) are high
    whatever the archive, other packages from a security archive medium, the rest low. Sources
    without any security archive fail: on such a host security updates can never arrive. Lists
    older than LISTS_MAX_AGE_DAYS fail by the time elapsed, not by whole days: lists 7 days and 20
    hours old are past a 7-day limit (whole days passed them until issue 22's mutation run)."""
    state = host.patching.apt_state
    if state is None:
        yield Result.not_applicable(f"no apt lists ({'/var/lib/apt/lists'}): not a Debian-family host, or apt was never updated")
        return
    if isinstance(state, Unavailable):
        yield Result.unavailable(state, "apt")
        return
    for problem in state.problems:
        yield Result.unavailable(problem, problem.path)
    if state.security_archive is False:
        configured = "; ".join(state.sources) if state.sources else "no sources file, and no list of a security archive"
        yield Result.fail("apt sources", f"no security archive among the configured apt sources ({configured}): security updates can never arrive",
                          remediation="add the distribution's security archive to /etc/apt/sources.list(.d), e.g. "
                                      "deb http://deb.debian.org/debian-security CODENAME-security main, then apt-get update")
    if state.lists_updated:
        age = datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(state.lists_updated)
        if age > datetime.timedelta(days=LISTS_MAX_AGE_DAYS):
            yield Result.fail("apt lists", f"last updated {age.days} days ago ({state.lists_updated}): pending updates may be missing",
                              severity=Severity.MEDIUM, remediation="run apt-get update (enable APT::Periodic::Update-Package-Lists)")
    packages = host.patching.packages
    native = next((p.arch for p in packages if p.name == "dpkg"), "amd64") if isinstance(packages, list) else "amd64"
    # The catalog's title names security updates of the virtualization stack; each result says
    # which of the three kinds of pending update it is.
    for update in sorted(state.pending, key=lambda u: (u.name, u.arch)):
        virt = is_virt_stack(update.name)
        if virt:
            kind, severity = f"virtualization stack{', security' if update.security else ''} update", Severity.HIGH
        elif update.security:
            kind, severity = "security update", Severity.MEDIUM
        else:
            kind, severity = "pending update outside the security archive (point releases carry CVE fixes too)", Severity.LOW
        where = f"{update.origin}{' (security)' if update.security else ''}"
        yield Result.fail(update.name if update.arch in ("all", "", native) else f"{update.name}:{update.arch}",
                          f"{kind}: installed {update.installed}, candidate {update.candidate} from {where}", severity=severity,
                          details={"package": update.name, "arch": update.arch, "source_package": update.source or update.name,
                                   "archive": where, "installed": update.installed, "candidate": update.candidate,
                                   "security": update.security, "virt_stack": virt})
    if not state.pending:
        yield Result.passed("apt", f"no pending update ({len(state.lists)} lists, updated {state.lists_updated})")
