"""Signs of host compromise or instability the kernel records itself."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Result, Unavailable
from ..parsers.kernel import decode_taint
from ._libvirt import as_int, daemon_configs, daemon_setting, no_daemon_config, process_label, qemu_processes


@check("HV-IDS-007",
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


@check("HV-IDS-003",
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
            yield Result.fail(resource, f"{level.describe()}: libvirt writes no audit records",
                              remediation=f"remove audit_level = 0 from {level.source} (or set audit_level = 2 to refuse to start without audit), restart the daemon"
                              + ("; install and run auditd" if auditd is False else ""))
        elif auditd is False:
            yield Result.fail(resource, f"{level.describe()}, but auditd is not installed: the kernel audit records go nowhere durable",
                              remediation="apt install auditd (dnf install audit) and systemctl enable --now auditd")
        else:
            yield Result.passed(resource, level.describe())
    if not seen:
        yield no_daemon_config(host)


@check("HV-IDS-005",
    fix="find out who started the listed QEMU processes (ps -o user,lstart,args -p PID); bring them under libvirt or stop them",
    references=("libvirt docs/drvqemu.rst", "libvirt docs/cgroups.rst (the cgroup layouts accepted as libvirt's)"),
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
            yield Result.fail(process_label(proc), f"QEMU not started by libvirt or Proxmox (no libvirt pid file in /run/libvirt/qemu names "
                              f"this PID for a running domain, and cgroup {proc.cgroup or 'unknown'} is not libvirt's or Proxmox's own)")
        else:
            yield Result.passed(process_label(proc), f"managed by {proc.managed_by}")


AIDE_MAX_AGE_DAYS = 7
IDS_RULES_MAX_AGE_DAYS = 7
VIRT_CONFIG_WATCHES = ("/etc/libvirt",)


def _running(host: HostFacts, *names: str) -> bool | None:
    running = host.monitoring.services.running
    if isinstance(running, Unavailable):
        return None
    return any(n in running for n in names)


def _enabled(host: HostFacts, *units: str) -> bool:
    return any(u in host.monitoring.services.enabled for u in units)


def _age_days(host: HostFacts, when: str) -> int:
    return (datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(when)).days


def _older_than(host: HostFacts, when: str, days: int) -> bool:
    """Past the policy by any amount: 7 days and an hour is older than 7 days (whole days are not)."""
    return datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(when) > datetime.timedelta(days=days)


@check("HV-IDS-001",
    fix="apt install aide; make sure /etc/libvirt, /usr/bin/qemu-system-*, /usr/sbin/libvirtd and /boot are selected; aideinit; keep dailyaidecheck.timer enabled",
    references=("aide.conf(5)", "Debian aide-common README"),
)
def file_integrity(host: HostFacts) -> Iterator[Result]:
    """Integrity monitoring notices a replaced QEMU or libvirtd binary, an edited qemu.conf or a new
    kernel in /boot: the traces of a host compromise or of an escape that persisted itself."""
    aide = host.monitoring.aide
    if aide is None:
        yield Result.fail("aide", "AIDE is not installed (no /etc/aide/aide.conf): no file-integrity monitoring")
        return
    uncovered = [p for p, covered in aide.coverage.items() if covered is False]
    undetermined = [p for p, covered in aide.coverage.items() if covered is None]
    unknown = (f"whether it selects {', '.join(undetermined)} could not be determined: "
               f"rule {'; rule '.join(aide.unknown_rules) or '(unknown)'}") if undetermined else ""
    if uncovered:
        yield Result.fail("aide:coverage", f"{aide.config} does not select {', '.join(uncovered)}" + (f"; {unknown}" if unknown else ""))
    elif undetermined:
        yield Result.not_applicable(f"{aide.config}: {unknown}", "aide:coverage")
    else:
        yield Result.passed("aide:coverage", f"selects {', '.join(aide.coverage)}")
    if isinstance(aide.database, Unavailable):
        if aide.database.kind == "missing":
            yield Result.fail("aide:database", f"{aide.database.describe()}: run aideinit")
        else:
            yield Result.unavailable(aide.database, "aide:database")
    elif not aide.periodic:
        yield Result.fail("aide:schedule", "no dailyaidecheck.timer or /etc/cron.daily/aide: the database is never compared")
    elif aide.last_check and _older_than(host, aide.last_check, AIDE_MAX_AGE_DAYS):
        yield Result.fail("aide:schedule", f"last check {aide.last_check} ({_age_days(host, aide.last_check)} days ago)")
    else:
        yield Result.passed("aide:database", f"database from {aide.database}; checked periodically" + (f", last {aide.last_check}" if aide.last_check else ""))


@check("HV-IDS-002",
    fix="add '-w /etc/libvirt/ -p wa -k libvirt-config' to /etc/audit/rules.d/libvirt.rules, augenrules --load, keep auditd enabled",
    references=("auditctl(8)", "audit.rules(7)"),
)
def audit_watches(host: HostFacts) -> Iterator[Result]:
    """Audit records say who changed a domain definition or qemu.conf, and when: the trail an
    investigation needs after the fact."""
    watches = host.monitoring.audit_watches
    if isinstance(watches, Unavailable):
        if watches.kind == "missing":
            yield Result.fail("auditd", f"{watches.describe()}: nothing records changes to the virtualization configuration")
        else:
            yield Result.unavailable(watches, watches.path)
        return
    for target in VIRT_CONFIG_WATCHES:
        covering = [w for w in watches if (w.path.rstrip("/") == target or target.startswith(w.path.rstrip("/") + "/"))
                    and "w" in w.permissions]
        if covering:
            at = covering[0]
            yield Result.passed(target, f"watched for writes ({at.file})",
                                details={"file": at.file, "line": at.line} if at.line else {"file": at.file})
        else:
            read_only = [w for w in watches if w.path.rstrip("/") == target or target.startswith(w.path.rstrip("/") + "/")]
            if read_only and read_only[0].line:
                w = read_only[0]
                yield Result.fail(target, f"the audit watch on {w.path} has -p {w.permissions}, without w: writes are not recorded",
                                  details={"file": w.file, "line": w.line, "key": w.path})
            else:
                yield Result.fail(target, "no audit watch for writes (-w /etc/libvirt/ -p wa)")
    active = _running(host, "auditd")
    if active is False or (active is None and not _enabled(host, "auditd.service")):
        yield Result.fail("auditd", "auditd is not " + ("running" if active is False else "enabled") + ": the rules are not loaded")


@check("HV-IDS-004",
    fix="run Suricata (or Snort/Zeek) on the guest bridges with rules updated daily (suricata-update), or a host agent (Wazuh, Falco)",
    references=("Suricata user guide: af-packet", "suricata-update(1)"),
)
def network_ids(host: HostFacts) -> Iterator[Result]:
    """A firewall decides; an IDS notices: scans, exploitation attempts and command-and-control
    traffic from a compromised guest show up on its bridge."""
    tools = host.monitoring.ids_tools
    if not tools:
        yield Result.fail("ids", "no Suricata, Snort, Zeek, Wazuh/OSSEC or Falco configuration found")
        return
    process = {"suricata": ("Suricata-Main", "suricata"), "snort": ("snort",), "zeek": ("zeek",), "wazuh-agent": ("wazuh-agentd", "ossec-agentd"),
               "falco": ("falco",)}
    for tool in tools:
        running = _running(host, *process.get(tool.name, (tool.name,)))
        unit = f"{tool.name}.service"
        problems = []
        if running is False:
            problems.append("not running")
        elif running is None and not _enabled(host, unit):
            problems.append(f"{unit} not enabled")
        if tool.name in ("suricata", "snort", "zeek"):
            missing = [b for b in host.monitoring.guest_bridges if not any(i == b or i in ("any", "all") for i in tool.interfaces)]
            if missing:
                problems.append(f"does not capture on guest bridge(s) {', '.join(missing)} (captures: {', '.join(tool.interfaces) or 'none'})")
            if tool.name != "zeek":
                if tool.rules_updated is None:
                    problems.append("no rule files")
                elif _older_than(host, tool.rules_updated, IDS_RULES_MAX_AGE_DAYS):
                    problems.append(f"rules last updated {tool.rules_updated} ({_age_days(host, tool.rules_updated)} days ago)")
        if problems:
            yield Result.fail(tool.name, "; ".join(problems))
        else:
            yield Result.passed(tool.name, f"active; captures {', '.join(tool.interfaces)}" if tool.interfaces else "active")


@check("HV-IDS-006",
    fix="review the change; if intended, record it with `hyperward baseline accept`, else restore the file or definition",
    references=("hyperward baseline accept --help", "NIST SP 800-128 (security-focused configuration management)"),
)
def config_drift(host: HostFacts) -> Iterator[Result]:
    """An unreviewed change to qemu.conf, a domain, network or nwfilter definition is how
    weakenings (and persistence) slip in; comparing normalized digests to an accepted baseline
    shows exactly what moved, per file and per VM."""
    drift = host.drift
    if drift is None:
        yield Result.not_applicable("libvirt is not installed (no /etc/libvirt)")
        return
    if isinstance(drift.baseline, Unavailable):
        if drift.baseline.kind == "missing":
            yield Result.not_applicable(f"{drift.baseline.describe()}; until then changes to the virtualization configuration go unnoticed")
        else:
            yield Result.unavailable(drift.baseline, drift.baseline_path)
        return
    since = f" since the baseline of {drift.accepted_at}" if drift.accepted_at else ""
    changed = False
    for key in sorted(set(drift.current) | set(drift.baseline)):
        now, then = drift.current.get(key), drift.baseline.get(key)
        if now == then:
            continue
        changed = True
        state = "added" if then is None else "removed" if now is None else "changed"
        yield Result.fail(key, f"{state}{since}")
    if not changed:
        yield Result.passed("baseline", f"{len(drift.current)} files and definitions unchanged{since}")
