"""Isolation of guests from the host and from each other: /dev/kvm, sVirt, the QEMU user and\nsandbox, device assignment, shared folders and disks, and what each domain definition exposes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..engine import check
from ..facts import Domain, HostFacts
from ..model import Result, Severity, Unavailable
from ..parsers.libvirt_defaults import LATER_DEFAULT_DEVICES, QEMU_CONF_DEFAULTS
from ._common import is_enabled, module_param
from ._libvirt import (
    NOT_INSTALLED,
    as_int,
    domains,
    each_domain,
    is_root_user,
    process_label,
    qemu_processes,
    qemu_setting,
    qemu_settings,
    qemu_user,
)

KVM_GROUP_MAX_MEMBERS = 5


def kvm_group_members(host: HostFacts) -> list[str] | None:
    """Members of group kvm: listed in /etc/group, or with kvm as their primary group."""
    groups, gids = host.accounts.groups, host.accounts.primary_gids
    if isinstance(groups, Unavailable) or "kvm" not in groups:
        return None
    entry = groups["kvm"]
    members = set(entry.members)
    if not isinstance(gids, Unavailable):
        members |= {user for user, gid in gids.items() if gid == entry.gid}
    return sorted(members)


@check("HV-ISO-021",
    fix="restore the udev rule KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\" (chown root:kvm /dev/kvm; chmod 0660) and remove needless members from group kvm",
    references=("libvirt docs/drvqemu.rst",),
)
def kvm_device_access(host: HostFacts) -> Iterator[Result]:
    """Whoever can open /dev/kvm can run guests and reach the KVM ioctl surface, the host kernel's
    largest guest-facing attack surface. Debian's udev rule makes it 0660 root:kvm. Judged by who
    actually gets access: group root (gid 0, by number when the tree has no /etc/group) adds nobody
    beyond root; another group adds its members."""
    dev = host.kvm_device
    if dev is None:
        yield Result.not_applicable("/dev/kvm was not looked at (a snapshot or source without a device tree)", "/dev/kvm")
        return
    if isinstance(dev, Unavailable):
        yield Result.unavailable(dev, "/dev/kvm")
        return
    problems = []
    if not dev.is_char_device:
        problems.append("not a character device")
    if dev.mode & 0o006:
        problems.append(f"world-accessible (mode {dev.mode:04o})")
    if dev.uid != 0:
        problems.append(f"owned by {dev.owner or dev.uid}, not root")
    group = dev.group or str(dev.gid)
    groups = host.accounts.groups
    unknown_group = None
    if dev.mode & 0o060 and dev.gid != 0 and group not in ("kvm", "root"):
        if dev.group is None and isinstance(groups, Unavailable):
            unknown_group = f"group access goes to gid {dev.gid}, whose members are unknown ({groups.describe()})"
        elif dev.group is None:
            problems.append(f"group access goes to gid {dev.gid}, which names no group in /etc/group (expected kvm)")
        else:
            problems.append(f"group {group} has access (expected kvm)")
    members = kvm_group_members(host)
    if members is not None and len(members) > KVM_GROUP_MAX_MEMBERS:
        problems.append(f"{len(members)} members of group kvm (more than {KVM_GROUP_MAX_MEMBERS}): {', '.join(members)}")
    summary = f"mode {dev.mode:04o} {dev.owner or dev.uid}:{group}"
    if members:
        summary += f"; group kvm: {', '.join(members)}"
    if problems:
        yield Result.fail("/dev/kvm", f"{summary}; " + "; ".join(problems))
    elif unknown_group:
        yield Result.not_applicable(f"{summary}; {unknown_group}", "/dev/kvm")
    else:
        yield Result.passed("/dev/kvm", summary)


# --- libvirt's QEMU driver configuration and the domains it runs ------------------------------

DEFAULT_DEVICE_ACL = set(QEMU_CONF_DEFAULTS["cgroup_device_acl"]) | LATER_DEFAULT_DEVICES


def _setting_results(host: HostFacts, keys: dict[str, Callable[[Any], str | None]]) -> Iterator[Result]:
    """One result per qemu.conf key: the judge returns a problem or None."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
        return
    for key, judge in keys.items():
        setting = qemu_setting(settings, key)
        problem = judge(setting.value)
        resource = f"qemu.conf:{key}"
        if problem:
            yield Result.fail(resource, f"{setting.describe()}: {problem}")
        else:
            yield Result.passed(resource, setting.describe())


@check("HV-ISO-001",
    fix="remove security_driver = \"none\" from /etc/libvirt/qemu.conf, keep AppArmor (Debian/Ubuntu) or SELinux enforcing, restart libvirtd and the guests",
    references=("libvirt src/qemu/qemu.conf.in security_driver", "libvirt docs/drvqemu.rst (sVirt)"),
)
def svirt_enabled(host: HostFacts) -> Iterator[Result]:
    """Without sVirt, a QEMU process compromised by its guest can open every other guest's disks
    and state files that its Unix user can reach: only DAC separates the guests."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
        return
    setting = qemu_setting(settings, "security_driver")
    value = setting.value
    drivers = value if isinstance(value, list) else [value] if value is not None else []
    lsms = host.libvirt.host_lsms
    resource = "qemu.conf:security_driver"
    if "none" in drivers:
        yield Result.fail(resource, f"{setting.describe()}: libvirt labels no guest with SELinux or AppArmor")
        return
    api = host.libvirt.api
    if api is not None and api.connected:
        mac = [m for m in api.secmodels if m in ("selinux", "apparmor")]
        if not mac:
            yield Result.fail(resource, f"the daemon reports security models {', '.join(api.secmodels) or 'none'}: no SELinux/AppArmor confinement of guests")
            return
        yield Result.passed(resource, f"the daemon confines guests with {', '.join(mac)}")
        return
    if isinstance(lsms, list):
        mac = [m for m in lsms if m in ("selinux", "apparmor")]
        if not mac:
            yield Result.fail(resource, f"the host kernel runs no SELinux or AppArmor (/sys/kernel/security/lsm: {','.join(lsms)}): sVirt cannot confine guests",
                              severity=Severity.HIGH)
            return
        if drivers and not set(drivers) & set(mac):
            yield Result.fail(resource, f"{setting.describe()}, but the host's active LSMs are {', '.join(mac)}")
            return
        yield Result.passed(resource, f"{setting.describe() if drivers else 'security_driver not set: libvirt picks'} {', '.join(mac)}")
        return
    if lsms.kind != "missing":
        yield Result.unavailable(lsms, resource)
        return
    yield Result.passed(resource, f"{setting.describe() if drivers else 'security_driver not set (libvirt auto-detects the host LSM)'}; host LSM list unavailable ({lsms.describe()})")


@check("HV-ISO-002",
    fix="set security_default_confined = 1 (and security_require_confined = 1 to refuse unconfined guests) in /etc/libvirt/qemu.conf",
    references=("libvirt src/qemu/qemu.conf.in",),
)
def default_confined(host: HostFacts) -> Iterator[Result]:
    """With security_default_confined = 0 every guest without an explicit <seclabel> runs unconfined."""
    yield from _setting_results(host, {
        "security_default_confined": lambda v: "guests without a <seclabel> run unconfined" if as_int(v, 1) == 0 else None,
    })


@check("HV-ISO-003",
    fix="remove <seclabel type='none'/> and relabel='no' from the domain (virsh edit), use <seclabel type='dynamic'/>, and never a DAC label of +0:+0",
    references=("libvirt docs/formatdomain.rst (Security label)",),
)
def domain_seclabel(host: HostFacts) -> Iterator[Result]:
    """type='none' runs the guest unconfined; relabel='no' leaves files labelled for any guest;
    a DAC label of +0:+0 runs this guest's QEMU as root."""

    def judge(d: Domain) -> list[str]:
        problems = []
        for s in d.seclabels:
            where = f" on {s.device}" if s.device else ""
            model = f" ({s.model})" if s.model else ""
            if s.type == "none":
                problems.append(f"seclabel type='none'{model}{where}")
            elif s.relabel == "no":
                problems.append(f"seclabel relabel='no'{model}{where}")
            if s.model == "dac" and s.label and s.label.replace("+", "").split(":")[0] in ("0", "root"):
                problems.append(f"DAC label {s.label}{where}: QEMU runs as root")
        return problems

    yield from each_domain(host, judge)


@check("HV-ISO-004",
    fix="run AppArmor or SELinux enforcing with libvirt's sVirt (security_driver), then restart each listed guest",
    references=("libvirt docs/drvqemu.rst (sVirt)",),
)
def running_confined(host: HostFacts) -> Iterator[Result]:
    """Each QEMU needs its own label: svirt_t with a unique MCS pair (SELinux), or an enforcing
    libvirt-<uuid> profile (AppArmor). A shared label lets one guest's QEMU read another's disks."""
    procs = qemu_processes(host)
    if isinstance(procs, Result):
        yield procs
        return
    labels = [p.lsm_label for p in procs if isinstance(p.lsm_label, str)]
    for proc in procs:
        label = proc.lsm_label
        resource = process_label(proc)
        if isinstance(label, Unavailable):
            if label.kind == "denied":
                yield Result.unavailable(label, resource)
            else:
                yield Result.fail(resource, f"no LSM label ({label.describe()}): no SELinux/AppArmor confinement")
            continue
        if "svirt" in label:
            parts = label.split(":")
            mcs = ":".join(parts[3:]) if len(parts) > 3 else ""
            if "," not in mcs:
                yield Result.fail(resource, f"label {label}: no per-guest MCS category pair")
            elif labels.count(label) > 1:
                yield Result.fail(resource, f"label {label} is shared with another QEMU process")
            else:
                yield Result.passed(resource, label)
        elif label.startswith("libvirt-"):
            if label.endswith("(enforce)"):
                if labels.count(label) > 1:
                    yield Result.fail(resource, f"profile {label} is shared with another QEMU process")
                else:
                    yield Result.passed(resource, label)
            else:
                yield Result.fail(resource, f"AppArmor profile {label} is not enforcing")
        else:
            yield Result.fail(resource, f"label {label or '(empty)'}: not an sVirt label")


@check("HV-ISO-005",
    fix="set user = \"libvirt-qemu\" and group = \"libvirt-qemu\" (Debian) in /etc/libvirt/qemu.conf, chown -R libvirt-qemu: /var/lib/libvirt/qemu, restart the guests",
    references=("libvirt src/qemu/qemu.conf.in user/group", "QEMU docs/system/security.rst"),
)
def qemu_not_root(host: HostFacts) -> Iterator[Result]:
    """A guest that escapes into a root QEMU owns the host; as an unprivileged user it meets DAC and sVirt."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
    else:
        for key in ("user", "group"):
            setting = qemu_user(host, settings) if key == "user" else qemu_setting(settings, "group")
            if key == "group" and setting.default:
                continue
            if is_root_user(setting.value):
                yield Result.fail(f"qemu.conf:{key}", f"{setting.describe()}: QEMU processes run as root")
            else:
                yield Result.passed(f"qemu.conf:{key}", setting.describe())
    procs = host.libvirt.processes
    if isinstance(procs, list):
        for proc in procs:
            if proc.kind != "qemu":
                continue
            if proc.uid == 0:
                yield Result.fail(process_label(proc), "runs with uid 0")
            elif proc.uid is not None:
                yield Result.passed(process_label(proc), f"uid {proc.uid}")


@check("HV-ISO-006",
    fix="remove seccomp_sandbox = 0 from /etc/libvirt/qemu.conf and restart the guests (QEMU then runs with -sandbox on)",
    references=("libvirt src/qemu/qemu.conf.in seccomp_sandbox",),
)
def seccomp_sandbox(host: HostFacts) -> Iterator[Result]:
    """The sandbox denies an exploited QEMU the syscalls it needs to spawn processes or gain privilege."""
    yield from _setting_results(host, {
        "seccomp_sandbox": lambda v: "QEMU starts without its seccomp sandbox" if as_int(v, 1) == 0 else None,
    })
    procs = host.libvirt.processes
    if isinstance(procs, list):
        for proc in procs:
            if proc.kind != "qemu" or proc.seccomp is None:
                continue
            if proc.seccomp != 2:
                yield Result.fail(process_label(proc), f"/proc/{proc.pid}/status Seccomp: {proc.seccomp} (2 = filter mode expected)")
            else:
                yield Result.passed(process_label(proc), "Seccomp: 2")


@check("HV-ISO-007",
    fix="restore namespaces = [ \"mount\" ] and the default cgroup_device_acl in /etc/libvirt/qemu.conf",
    references=("libvirt src/qemu/qemu.conf.in namespaces, cgroup_device_acl",),
)
def confinement_widened(host: HostFacts) -> Iterator[Result]:
    """The private mount namespace hides host /dev from QEMU; every extra device in the cgroup
    ACL is a host device every guest's QEMU may open. The default list is libvirt 9.0's (no
    /dev/userfaultfd, which later releases add and which is therefore not counted as extra)."""

    def acl(value: Any) -> str | None:
        extra = sorted(set(value if isinstance(value, list) else [value]) - DEFAULT_DEVICE_ACL)
        return f"devices beyond the default set: {', '.join(map(str, extra))}" if extra else None

    yield from _setting_results(host, {
        "namespaces": lambda v: None if "mount" in (v if isinstance(v, list) else [v]) else "no private mount namespace: QEMU sees the host's /dev",
        "cgroup_device_acl": acl,
    })


@check("HV-ISO-008",
    fix="remove dynamic_ownership = 0 / remember_owner = 0 from /etc/libvirt/qemu.conf",
    references=("libvirt src/qemu/qemu.conf.in",),
)
def ownership_management(host: HostFacts) -> Iterator[Result]:
    """Without dynamic ownership, images must be made readable to the shared QEMU user by hand,
    so every guest can read every other guest's disks."""
    yield from _setting_results(host, {
        "dynamic_ownership": lambda v: "libvirt does not chown images to the guest's QEMU" if as_int(v, 1) == 0 else None,
        "remember_owner": lambda v: "original ownership is not restored when a guest stops" if as_int(v, 1) == 0 else None,
    })


def _disk_users(host: HostFacts) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for d in domains(host)[0]:
        for disk in d.disks:
            if disk.source and disk.source.startswith("/"):
                users.setdefault(disk.source, []).append(d.name)
    return users


@check("HV-ISO-009",
    fix="chmod 0600 the image files and 0711 /var/lib/libvirt/images (o-rwx on the state directories)",
    references=("libvirt docs/kbase/secureusage.rst",),
)
def image_modes(host: HostFacts) -> Iterator[Result]:
    """A world-readable image discloses the guest's data to every local user; a world-writable one
    lets any local user plant code in the guest. A guest's UEFI variable store (qemu/nvram/*_VARS.fd)
    holds its Secure Boot keys and boot order: the same rule applies. The memory-state directories
    (save, snapshot, dump) hold guest RAM and are judged once, by HV-BAK-004, to its stricter rule."""
    if not host.libvirt.installed:
        yield Result.not_applicable(NOT_INSTALLED)
        return
    users = _disk_users(host)
    judged = False
    state_dirs = {"/var/lib/libvirt/qemu/nvram", "/var/lib/libvirt/swtpm"}
    for path, node in sorted(host.libvirt.paths.items()):
        if path in users or path.startswith(("/var/lib/libvirt/images", "/var/lib/libvirt/qemu/nvram")) or path in state_dirs:
            owners = f" (disk of {', '.join(sorted(set(users[path])))})" if path in users else ""
            if isinstance(node, Unavailable):
                if node.kind != "missing":
                    judged = True
                    yield Result.unavailable(node, path)
                continue
            if node.kind in ("character device",):
                continue
            judged = True
            if node.kind == "directory":
                bad = node.mode & 0o002
                what = "world-writable directory"
            else:
                bad = node.mode & 0o006
                what = "readable or writable by other users"
            if bad:
                yield Result.fail(path, f"mode {node.mode:04o} {node.owner or node.uid}:{node.group or node.gid}: {what}{owners}")
            else:
                yield Result.passed(path, f"mode {node.mode:04o}{owners}")
    if not judged:
        yield Result.not_applicable("no disk image or /var/lib/libvirt/images under this root")


def _pci_hostdevs(d: Domain) -> list[str]:
    return [h.address or "?" for h in d.hostdevs if h.type == "pci"]


@check("HV-ISO-011",
    fix="remove allow_unsafe_interrupts from /etc/modprobe.d and reload vfio_iommu_type1 (or reboot)",
    references=("Linux drivers/vfio/vfio_iommu_type1.c",),
)
def vfio_unsafe_interrupts(host: HostFacts) -> Iterator[Result]:
    """Without interrupt remapping a device assigned to a guest can inject arbitrary host interrupts (MSI attacks)."""
    yield from _module_flag(host, "vfio_iommu_type1", "allow_unsafe_interrupts")


@check("HV-ISO-012",
    fix="remove enable_unsafe_noiommu_mode from /etc/modprobe.d and reload vfio (or reboot)",
    references=("Linux Documentation/driver-api/vfio.rst (VFIO no-IOMMU mode)",),
)
def vfio_noiommu(host: HostFacts) -> Iterator[Result]:
    """No-IOMMU mode gives user space DMA to all memory; the kernel taints itself when it is used."""
    yield from _module_flag(host, "vfio", "enable_unsafe_noiommu_mode")
    for device in host.hardware.vfio_noiommu:
        yield Result.fail(device, "a VFIO group without IOMMU protection exists")


def _module_flag(host: HostFacts, module: str, param: str) -> Iterator[Result]:
    value = module_param(host, module, param)
    resource = f"{module}.{param}"
    if isinstance(value, Unavailable):
        yield Result.unavailable(value, resource)
    elif value is not None and is_enabled(value):
        yield Result.fail(resource, f"/sys/module/{module}/parameters/{param} = {value}")
    else:
        options = [o for o in host.modules.options if o.module == module and o.param == param and is_enabled(o.value)]
        if options:
            yield Result.fail(resource, f"{options[0].file}: options {module} {param}={options[0].value} (applies at next load)")
        elif value is None:
            yield Result.passed(resource, f"{module} not loaded; no modprobe.d option sets {param}")
        else:
            yield Result.passed(resource, f"{param} = {value}")


@check("HV-ISO-013",
    fix="move the device to a slot with its own IOMMU group; remove relaxed_acs_check and pcie_acs_override=",
    references=("Linux Documentation/driver-api/vfio.rst (groups)", "libvirt src/qemu/qemu.conf.in relaxed_acs_check"),
)
def iommu_group_shared(host: HostFacts) -> Iterator[Result]:
    """Devices in one IOMMU group can DMA to each other: assigning one hands the guest the others."""
    settings = qemu_settings(host)
    if isinstance(settings, dict):
        setting = qemu_setting(settings, "relaxed_acs_check")
        if as_int(setting.value):
            yield Result.fail("qemu.conf:relaxed_acs_check", f"{setting.describe()}: devices behind non-ACS switches may be assigned")
    for source in host.kernel.cmdlines:
        if isinstance(source.tokens, list):
            for token in source.tokens:
                if token.startswith("pcie_acs_override="):
                    yield Result.fail(f"{source.path}:pcie_acs_override", f"{token}: the kernel pretends devices are isolated")
    groups = host.hardware.iommu_groups
    group_of = {bdf: g for g, members in groups.items() for bdf in members} if isinstance(groups, dict) else {}
    assigned: dict[str, set[str]] = {}
    for d in domains(host)[0]:
        for bdf in _pci_hostdevs(d):
            assigned.setdefault(d.name, set()).add(bdf)

    def judge(d: Domain) -> list[str]:
        problems = []
        for bdf in sorted(assigned.get(d.name, ())):
            group = group_of.get(bdf)
            if group is None:
                continue
            others = [m for m in groups[group] if m != bdf and m not in assigned[d.name]  # type: ignore[index]
                      and not host.hardware.pci_classes.get(m, "").startswith("0x0604")]
            if others:
                problems.append(f"{bdf} shares IOMMU group {group} with {', '.join(others)}")
        return problems

    yield from each_domain(host, judge, applies=lambda d: bool(_pci_hostdevs(d)), none_reason="no domain passes a PCI device through")


@check("HV-ISO-017",
    fix="model the device or option in libvirt XML; remove <qemu:commandline>, <qemu:capabilities> and <qemu:override>",
    references=("libvirt docs/drvqemu.rst (Pass-through of arbitrary qemu commands)",),
)
def qemu_passthrough(host: HostFacts) -> Iterator[Result]:
    """Arguments libvirt does not model escape its sVirt labelling, cgroup ACLs and validation;
    libvirt marks such domains tainted (custom-argv)."""
    yield from each_domain(host, lambda d: [f"{len(d.qemu_passthrough)} raw QEMU element(s): {', '.join(d.qemu_passthrough[:8])}"] if d.qemu_passthrough else [])


@check("HV-ISO-018",
    fix="use virtio equivalents (virtio-net, virtio-blk/scsi, virtio-gpu or none); drop floppy, sound and smartcard devices",
    references=("QEMU docs/system/security.rst (Supported devices)",),
)
def legacy_devices(host: HostFacts) -> Iterator[Result]:
    """Old emulated devices are where most QEMU escape CVEs were found (VENOM was the floppy controller)."""
    yield from each_domain(host, lambda d: [f"legacy devices: {', '.join(d.legacy_devices)}"] if d.legacy_devices else [])


@check("HV-ISO-019",
    fix="set dump_guest_core = 0 in /etc/libvirt/qemu.conf and remove dumpCore='on' from <memory> (the dump directory's mode is HV-BAK-004's)",
    references=("libvirt src/qemu/qemu.conf.in dump_guest_core, auto_dump_path",),
)
def core_dumps(host: HostFacts) -> Iterator[Result]:
    """A QEMU core dump with guest RAM holds the guest's keys and data, on the host's disk. Who can
    read the dump directory (auto_dump_path) is judged once, by HV-BAK-004, with the other
    memory-state directories."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
        return
    setting = qemu_setting(settings, "dump_guest_core")
    if as_int(setting.value):
        yield Result.fail("qemu.conf:dump_guest_core", f"{setting.describe()}: QEMU core dumps include guest RAM")
    else:
        yield Result.passed("qemu.conf:dump_guest_core", setting.describe())
    for d in domains(host)[0]:
        if d.dump_core == "on":
            yield Result.fail(d.label, "<memory dumpCore='on'>: this guest's RAM goes into core dumps")


@check("HV-ISO-020",
    fix="give each guest fewer vCPUs than host CPUs, a <memtune><hard_limit> with <locked/>, keep total guest memory under host RAM, stdio_handler = \"logd\"",
    references=("libvirt docs/formatdomain.rst (Memory Tuning, CPU Tuning)", "libvirt src/qemu/qemu.conf.in stdio_handler"),
)
def resource_limits(host: HostFacts) -> Iterator[Result]:
    """One guest must not starve the host or its neighbours: a guest with as many vCPUs as the host
    has CPUs, or locked memory without a hard limit, can take the host down (denial of service)."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
        return
    handler = qemu_setting(settings, "stdio_handler")
    if handler.value != "logd":
        yield Result.fail("qemu.conf:stdio_handler", f"{handler.describe()}: QEMU writes its log directly, with no size limit")
    else:
        yield Result.passed("qemu.conf:stdio_handler", handler.describe())
    cpus, mem = host.hardware.cpus, host.hardware.mem_total_kib
    good = domains(host)[0]
    running = [d for d in good if d.running] or good
    if isinstance(mem, Unavailable) and running:
        yield Result.not_applicable(f"guest memory against host RAM unknown: {mem.describe()}", "memory")
    elif isinstance(mem, int) and running:
        total = sum(d.memory_kib or 0 for d in running)
        scope = "running" if any(d.running for d in good) else "defined"
        if total > mem:
            yield Result.fail("memory", f"{scope} guests have {total // 1024} MiB, host MemTotal {mem // 1024} MiB ({100 * total // mem}%)")
        else:
            yield Result.passed("memory", f"{scope} guests have {total // 1024} MiB of {mem // 1024} MiB")

    def judge(d: Domain) -> list[str] | Result:
        problems = []
        if isinstance(cpus, int) and d.vcpus is not None and d.vcpus >= cpus and cpus > 1:
            problems.append(f"{d.vcpus} vCPUs on a host with {cpus} CPUs")
        if d.locked and d.hard_limit_kib is None:
            problems.append("<memoryBacking><locked/> without <memtune><hard_limit>")
        if not problems and isinstance(cpus, Unavailable) and d.vcpus is not None:
            return Result.not_applicable(f"{d.vcpus} vCPUs; the host's CPU count is unknown: {cpus.describe()}")
        return problems

    yield from each_domain(host, judge)
