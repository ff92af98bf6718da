"""Checks written once over every guest of every platform (guests/model.py). Each result names the
guest's platform; a platform that cannot know a field leaves it None, and the check says so
(not applicable or an error), never a pass."""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Callable, Iterator

from ..addresses import is_loopback
from ..checks.backups import (
    NO_BACKUP_SEEN,
    _age,
    _human,
    _newest,
    _repo_results,
    covers_guest,
)
from ..checks.nested import _host_nested
from ..checks.verdicts import Verdict, split_verdict
from ..engine import check
from ..facts import BackupSnapshot, HostFacts
from ..model import Details, Result, Severity, Status, Unavailable
from ..platforms import registry
from .model import Guest

SINGLE_TENANT_LOW = {"single-tenant": Severity.LOW}
#: host directories a guest must never see (a share of / or of a parent of these counts too)
SENSITIVE_DIRS = ("/", "/etc", "/root", "/home", "/boot", "/var/lib/libvirt", "/usr", "/var", "/srv", "/run", "/dev", "/proc", "/sys")

#: a judge's verdict: problems, optionally with a severity and the `where` of the items that
#: produced them (the first one found in the guest's lines is the finding's element and line)
Judge = Callable[[Guest], Verdict | Result]


def _unreadable(host: HostFacts) -> list[tuple[str, Unavailable]]:
    known = registry()
    return [(name, u) for name, facts in host.platforms.items() if name in known for u in known[name].unreadable(facts)]


def no_guests_reason(host: HostFacts) -> str:
    known = registry()
    reasons = [(name, known[name].no_guests(facts)) for name, facts in host.platforms.items() if name in known]
    if not reasons:
        return "no hypervisor platform found on this host"
    if len(reasons) == 1:
        return reasons[0][1]
    return "; ".join(f"{known[name].title}: {why}" for name, why in reasons)


def guest_details(guest: Guest) -> Details:
    """The guest a result is about, as fields: its name, its platform's id and its UUID where known."""
    about: Details = {"guest": guest.name, "guest_id": guest.id, "guest_uuid": guest.uuid, "platform": guest.platform}
    if guest.snapshot is not None:
        about["snapshot"], about["snapshot_id"] = guest.snapshot, guest.snapshot_id
    return about


def _deciding(guest: Guest, wheres: list[str]) -> Details:
    """The definition file and the element that decided the finding: the first of WHERES the
    guest's definition has a line for (none: locations.py names the element of the check's kind)."""
    if not guest.origin.startswith("/"):
        return {}
    for where in wheres:
        line = guest.lines.get(where)
        if where and line is not None:
            return {"file": guest.origin, "element": where, "line": line}
    return {}


def each_guest(host: HostFacts, judge: Judge, *, applies: Callable[[Guest], bool] | None = None,
               none_reason: str = "") -> Iterator[Result]:
    """One result per guest and per snapshot whose settings a restore brings back
    (`machine (uuid)@snapshot`): fail with every problem the judge found, or pass; unreadable
    definitions are errors naming their file."""
    guests = host.guests
    bad = _unreadable(host)
    if not guests and not bad:
        yield Result.not_applicable(no_guests_reason(host))
        return
    for platform, problem in bad:
        yield Result.unavailable(problem, problem.path).on(platform)
    judged = 0
    for guest in (*guests, *host.guest_snapshots):
        if applies is not None and not applies(guest):
            continue
        judged += 1
        verdict = judge(guest)
        about = guest_details(guest)
        if isinstance(verdict, Result):
            yield dataclasses.replace(verdict, resource=guest.label).on(guest.platform).with_details(**about)
            continue
        problems, severity, deciding = split_verdict(verdict)
        if problems:
            yield Result.fail(guest.label, "; ".join(problems), severity=severity,
                              details={**about, **_deciding(guest, deciding), "problems": problems}).on(guest.platform)
        else:
            yield Result.passed(guest.label, details=about).on(guest.platform)
    if not judged and not bad:
        yield Result.not_applicable(none_reason or "no guest uses this feature")


@check("HV-TPM-003",
    fix="libvirt: <os firmware='efi'><firmware><feature enabled='yes' name='secure-boot'/><feature enabled='yes' name='enrolled-keys'/></firmware></os>, then start once with --reset-nvram; "
        "Proxmox: bios: ovmf with efidisk0: ...,pre-enrolled-keys=1",
    references=("libvirt docs/kbase/secureboot.rst", "Proxmox VE qm.conf(5) efidisk0 pre-enrolled-keys"),
)
def guest_secure_boot(host: HostFacts) -> Iterator[Result]:
    """Without Secure Boot with enrolled keys a guest boots any bootloader: a bootkit survives
    reinstalls of the guest's OS. Architectures without UEFI Secure Boot (s390x, ppc64) pass."""

    def judge(g: Guest) -> list[str] | Result:
        if g.arch not in (None, "x86_64", "i686", "aarch64"):
            return []
        if g.firmware == "bios":
            # QEMU's BIOS is SeaBIOS; VirtualBox has a BIOS of its own
            return ["BIOS (SeaBIOS) firmware: no Secure Boot" if g.platform in ("libvirt", "proxmox") else "BIOS firmware: no Secure Boot"]
        if g.firmware is None:
            return ["firmware unknown: Secure Boot cannot be verified"]
        if g.secure_boot is None:
            return Result.not_applicable("UEFI firmware; whether Secure Boot is on is kept in the NVRAM variable store, "
                                         "which hyperward does not read for this platform")
        if not g.secure_boot:
            return ["UEFI without Secure Boot"]
        if g.keys_enrolled is False:
            return ["Secure Boot firmware without enrolled keys: nothing is verified"]
        return []

    yield from each_guest(host, judge, applies=lambda g: g.kind == "vm", none_reason="no virtual machine (containers have no firmware)")


@check("HV-TPM-005",
    fix="libvirt: <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm> (swtpm); Proxmox: tpmstate0: STORAGE:1,version=v2.0",
    references=("libvirt docs/formatdomain.rst (TPM device)", "Proxmox VE qm.conf(5) tpmstate0"),
)
def guest_vtpm(host: HostFacts) -> Iterator[Result]:
    """A vTPM gives the guest measured boot and sealed keys; TPM 1.2 has SHA-1 only; a passthrough
    TPM shares the host's TPM with one guest and its PCRs with the host."""

    def judge(g: Guest) -> tuple[list[str], Severity | None]:
        if not g.tpms:
            return ["no vTPM"], None
        problems: list[str] = []
        severity = None
        for t in g.tpms:
            if t.kind == "passthrough":
                problems.append("host TPM passed through (not a per-guest vTPM)")
                severity = Severity.LOW
            elif t.kind == "emulator" and t.version == "1.2":
                problems.append("vTPM version 1.2")
            elif t.kind not in ("emulator", "passthrough", "external"):
                problems.append(f"vTPM backend {t.kind or 'unset'}")
        return problems, severity

    yield from each_guest(host, judge, applies=lambda g: g.kind == "vm", none_reason="no virtual machine (containers have no vTPM)")


@check("HV-ISO-010",
    fix="enable VT-d / AMD-Vi in the firmware and boot with intel_iommu=on (or amd_iommu=on); remove the passed-through device until then",
    references=("libvirt docs/formatdomain.rst (Host device assignment)", "Linux Documentation/driver-api/vfio.rst",
                "Proxmox VE admin guide, PCI(e) passthrough"),
)
def passthrough_iommu(host: HostFacts) -> Iterator[Result]:
    """Without an IOMMU a passed-through device can DMA into any host memory: the guest owns the host."""
    groups = host.hardware.iommu_groups
    active = isinstance(groups, dict) and bool(groups)
    known = registry()

    def dma_devices(g: Guest) -> list[str]:
        return [d.host_id or "?" for d in g.devices if d.kind == "pci"]

    def uses(g: Guest) -> bool:
        return g.kind == "vm" and any(d.kind in ("pci", "hostdev-net") for d in g.devices)

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]] | list[str] | Result:
        passing = [d.where for d in g.devices if d.kind in ("pci", "hostdev-net")]
        if g.platform == "esxi":
            return Result.passed(g.label, "ESXi assigns DirectPath I/O devices only through the host's IOMMU "
                                          "(VT-d/AMD-Vi): it refuses passthrough without one")
        # a platform whose hypervisor owns the IOMMU (Xen: dom0's kernel never sees it) says itself
        own = getattr(known.get(g.platform), "iommu_state", None)
        if own is not None and g.platform in host.platforms:
            state, why = own(host.platforms[g.platform])
            if state:
                return []
            passed = ", ".join(dma_devices(g)) or "a device"
            if state is None:
                return Result.not_applicable(f"passes through {passed}; {why}")
            return [f"passes through {passed} but {why}"], None, passing
        if active:
            return []
        if isinstance(groups, Unavailable) and groups.kind != "missing":
            return [f"IOMMU state unknown ({groups.describe()})"]
        devices = dma_devices(g) or ["hostdev network interface"]
        return [f"passes through {', '.join(devices)} but /sys/kernel/iommu_groups is empty: no IOMMU"], None, passing

    yield from each_guest(host, judge, applies=uses, none_reason="no guest has a PCI device passed through")


#: libvirt accepts <readonly/> on a virtiofs <filesystem> from this release on; before it, a virtiofs
#: share is always writable (libvirt refuses the element), so only 9p or a read-only bind can help
VIRTIOFS_READONLY_SINCE = "11.0.0"
LIBVIRT_PACKAGES = ("libvirt-daemon", "libvirt-daemon-system", "libvirt-daemon-driver-qemu", "libvirt0", "libvirt-libs")
SHARE_FIX = "share a dedicated directory read-only (libvirt: <readonly/> in the <filesystem>; Proxmox containers: mpN ... ro=1), never /, /etc, /home or /var/lib/libvirt"


def libvirt_version(host: HostFacts) -> str | None:
    """The installed libvirt's upstream version (dpkg's 9.0.0-4+deb12u1 -> 9.0.0), None when unknown."""
    packages = host.patching.installed_packages
    if not isinstance(packages, dict):
        return None
    for name in LIBVIRT_PACKAGES:
        if name in packages:
            version = packages[name].split(":", 1)[-1]
            return version.rsplit("-", 1)[0] if "-" in version else version
    return None


def _at_least(version: str, minimum: str) -> bool:
    def parts(v: str) -> list[int]:
        out = []
        for piece in v.split(".")[:3]:
            digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
            out.append(int(digits))
        return out
    return parts(version) >= parts(minimum)


def _share_fix(host: HostFacts, g: Guest) -> str:
    """The fix that the installed libvirt can apply: a read-only virtiofs share needs libvirt 11.0."""
    if g.platform != "libvirt" or not any(s.driver == "virtiofs" and s.writable for s in g.shared_directories):
        return SHARE_FIX
    version = libvirt_version(host)
    if version is not None and _at_least(version, VIRTIOFS_READONLY_SINCE):
        return (f"add <readonly/> to the virtiofs <filesystem> (libvirt {version} supports it), and share a dedicated "
                "directory, never /, /etc, /home or /var/lib/libvirt")
    installed = f"libvirt {version}" if version else "this libvirt (version unknown)"
    return (f"{installed} cannot make a virtiofs share read-only (<readonly/> for virtiofs needs libvirt {VIRTIOFS_READONLY_SINCE}): "
            "share a dedicated directory that holds only what the guest may change, or use 9p "
            "(<driver type='path'/>, accessmode='mapped') with <readonly/>, or bind-mount the directory read-only on the host "
            "(mount --bind -o ro) and share that")


@check("HV-ISO-014",
    fix=SHARE_FIX,
    references=("libvirt docs/formatdomain.rst (Filesystems)", "libvirt docs/kbase/virtiofs.rst", "Proxmox VE pct.conf(5) mount points"),
)
def shared_folders(host: HostFacts) -> Iterator[Result]:
    """A writable share of a host system directory lets the guest change the host; passthrough
    with a root QEMU (or a privileged container) writes files as root. The fix names what the
    installed libvirt can do: before 11.0 a virtiofs share cannot be read-only."""

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]]:
        problems: list[str] = []
        severity = None
        deciding: list[str] = []
        for share in g.shared_directories:
            before = len(problems)
            src = share.host_path.rstrip("/") or "/"
            name = f"{src} -> {share.guest_tag or '?'}"
            if any(src == s or s.startswith(src + "/") or (src == "/" and s) for s in SENSITIVE_DIRS):
                problems.append(f"{name}: shares a host system directory")
            if share.writable is None:
                problems.append(f"{name}: cannot tell whether it is writable")
            elif share.writable:
                problems.append(f"{name}: writable" + (" (virtiofs)" if share.driver == "virtiofs" else ""))
            if share.writable and share.as_root:
                what = f"accessmode {share.mode}" if share.mode else "host-side access"
                problems.append(f"{name}: {what} with {'QEMU running as root' if g.kind == 'vm' else 'root on the host'}")
                severity = Severity.CRITICAL
            if len(problems) > before:
                deciding.append(share.where)
        return problems, severity, deciding

    guests = {g.label: g for g in (*host.guests, *host.guest_snapshots)}
    for result in each_guest(host, judge, applies=lambda g: bool(g.shared_directories), none_reason="no guest shares a host directory"):
        guest = guests.get(result.resource)
        if result.status is Status.FAIL and guest is not None:
            result = dataclasses.replace(result, remediation=_share_fix(host, guest))
        yield result


@check("HV-ISO-016",
    fix="give each guest its own disk, or mark a cluster disk shareable deliberately (libvirt <shareable/>), or read-only",
    references=("libvirt docs/formatdomain.rst (shareable)",),
)
def shared_disks(host: HostFacts) -> Iterator[Result]:
    """Two guests writing one disk corrupt it, and each can read and plant what the other writes.
    Judged across the guests of every platform: a raw device given to a libvirt guest and a
    Proxmox VM is shared all the same."""
    guests = host.guests
    if not guests:
        yield Result.not_applicable(no_guests_reason(host))
        return
    users: dict[str, list[tuple[Guest, bool, bool]]] = {}
    for g in guests:
        for disk in g.disks:
            if disk.source and disk.device in ("disk", "lun"):
                users.setdefault(disk.source, []).append((g, disk.readonly, disk.shared))
    shared = {src: u for src, u in users.items() if len({g.name for g, _, _ in u}) > 1}
    for src, entries in sorted(shared.items()):
        writers = sorted({g.name for g, ro, _ in entries if not ro})
        names = ", ".join(sorted({g.name for g, _, _ in entries}))
        platforms = sorted({g.platform for g, _, _ in entries})
        result = (Result.fail(src, f"used by {names}; writable in {', '.join(writers)} without being marked shareable")
                  if writers and not all(sh or ro for _, ro, sh in entries)
                  else Result.passed(src, f"shared by {names}: read-only or marked shareable"))
        yield result.on(platforms[0]) if len(platforms) == 1 else result
    if not shared:
        yield Result.passed("domains", f"no disk is used by more than one of {len(guests)} guests")


@check("HV-ISO-026",
    fix="libvirt: <clipboard copypaste='no'/> and <filetransfer enable='no'/> in the SPICE graphics, a <redirfilter> ending in <usbdev allow='no'/>; "
        "Proxmox: drop clipboard=vnc from vga:",
    references=("libvirt docs/formatdomain.rst (Graphical framebuffers, Redirected devices)", "Proxmox VE qm.conf(5) vga clipboard"),
    profile_severity=SINGLE_TENANT_LOW,
)
def console_channels(host: HostFacts) -> Iterator[Result]:
    """Clipboard, file transfer and USB redirection are data channels between the console client
    and the guest, outside every network control."""

    def uses(g: Guest) -> bool:
        return any(c.kind == "spice" for c in g.consoles) or g.usb_redirection > 0 or bool(g.clipboard or g.file_transfer or g.drag_drop)

    def judge(g: Guest) -> list[str]:
        problems = []
        spice = any(c.kind == "spice" for c in g.consoles)
        label = "SPICE" if spice else "console"
        if g.clipboard:
            problems.append(f"{label} clipboard sharing on" + (" (default)" if "spice:clipboard" in g.defaults else ""))
        if g.file_transfer:
            problems.append(f"{label} file transfer on" + (" (default)" if "spice:filetransfer" in g.defaults else ""))
        if g.drag_drop:
            problems.append("drag and drop on")
        if g.usb_redirection:
            problems.append(f"{g.usb_redirection} USB redirection channel(s) without a deny-by-default filter")
        return problems

    yield from each_guest(host, judge, applies=uses, none_reason="no guest has a console channel or USB redirection")


@check("HV-AUTH-010",
    fix="listen on 127.0.0.1 or a UNIX socket (<listen type='socket'/>) and reach consoles over SSH; or vnc_tls = 1 with vnc_tls_x509_verify = 1 (spice_tls = 1)",
    references=("libvirt src/qemu/qemu.conf.in vnc_listen, vnc_tls, spice_tls", "libvirt docs/formatdomain.rst (Graphical framebuffers)"),
)
def console_auth(host: HostFacts) -> Iterator[Result]:
    """A guest console is keyboard and screen: whoever reaches it can log in at the boot prompt.
    A VNC password is at most 8 characters over DES: a warning, not protection. Consoles a
    platform serves only through its authenticated API (Proxmox's ticketed VNC/SPICE proxies) are
    judged with that API (HV-AUTH-017), not here."""
    known = registry()
    for name, facts in host.platforms.items():
        extra = getattr(known.get(name), "console_settings", None)
        if extra is not None:
            yield from (r.on(name) for r in extra(facts))

    def exposed_consoles(g: Guest) -> list[tuple[str, list[str], list[str], bool | None, bool | None, str]]:
        out = []
        for c in g.consoles:
            if c.kind not in ("vnc", "spice") or c.listen is None:
                continue
            exposed = [a for a in c.listen if not is_loopback(a)]
            if exposed:
                out.append((c.kind, exposed, c.auth, c.tls, c.tls_verify, c.where))
        return out

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]]:
        problems: list[str] = []
        worst: Severity | None = None
        deciding: list[str] = []
        for kind, exposed, auth, tls, verify, element in exposed_consoles(g):
            where = f"{kind.upper()} on {', '.join(exposed)}"
            if (tls and verify) or "sasl" in auth:
                continue
            deciding.append(element)
            if tls:
                problems.append(f"{where}: TLS without client certificate verification")
                worst = worst or Severity.MEDIUM
            elif "password" in auth:
                problems.append(f"{where}: password only, no TLS")
                worst = Severity.MEDIUM if worst in (None, Severity.MEDIUM) else worst
            else:
                problems.append(f"{where}: no password, no TLS")
                worst = Severity.CRITICAL
        return problems, worst, deciding

    yield from each_guest(host, judge, applies=lambda g: any(c.kind in ("vnc", "spice") and c.listen is not None for c in g.consoles),
                          none_reason="no guest has a VNC or SPICE console of its own")


@check("HV-AUTH-011",
    fix="use a pty or a UNIX socket for serial ports and channels; for TCP, bind to 127.0.0.1 or set chardev_tls = 1 (libvirt)",
    references=("libvirt docs/formatdomain.rst (Character devices)", "libvirt src/qemu/qemu.conf.in chardev_tls"),
)
def network_chardevs(host: HostFacts) -> Iterator[Result]:
    """A serial console or channel on TCP/UDP (or telnet) is an unauthenticated shell prompt or
    agent channel for whoever reaches the port."""

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]]:
        problems = []
        deciding = []
        for c in g.network_chardevs:
            if c.host is None or is_loopback(c.host):
                continue
            if c.transport == "tcp" and c.tls:
                continue
            proto = f" ({c.protocol})" if c.protocol and c.protocol != "raw" else ""
            problems.append(f"{c.kind} {c.transport}{proto} on {c.host}:{c.port or '?'} without TLS")
            deciding.append(c.where)
        return problems, None, deciding

    yield from each_guest(host, judge)


@check("HV-NET-001",
    fix="libvirt: <filterref filter='clean-traffic'/> (with <parameter name='IP' .../> if needed) on each bridged or NAT interface; "
        "Proxmox: firewall=1 on the NIC, enable: 1 and ipfilter: 1 in /etc/pve/firewall/<vmid>.fw (macfilter stays on)",
    references=("libvirt docs/formatnwfilter.rst", "Proxmox VE pve-firewall(8) (ipfilter, macfilter)"),
)
def nic_anti_spoofing(host: HostFacts) -> Iterator[Result]:
    """Without MAC/IP/ARP anti-spoofing a guest can impersonate the gateway or another guest on its
    bridge. A NIC whose filtering the platform cannot tell (unreadable filter definitions) fails
    with the reason: a filter that cannot be read is not evidence of one."""

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]]:
        bad = [n for n in g.nics if n.attachment in ("bridge", "network", "ethernet") and n.anti_spoofing is not True]
        return [n.why or f"{n.name or n.mac or 'NIC'}: no anti-spoofing" for n in bad], None, [n.where for n in bad]

    yield from each_guest(host, judge, applies=lambda g: any(n.attachment in ("bridge", "network", "ethernet") for n in g.nics),
                          none_reason="no bridged, NAT or ethernet interface in any guest")


@check("HV-SIDE-005",
    fix="systemctl disable --now ksm ksmtuned; echo 2 > /sys/kernel/mm/ksm/run; or opt every guest out (libvirt <memoryBacking><nosharepages/>, Proxmox allow-ksm: 0)",
    references=("Linux Documentation/admin-guide/mm/ksm.rst", "libvirt docs/formatdomain.rst (memoryBacking/nosharepages)", "Proxmox VE qm.conf(5) allow-ksm"),
    profile_severity=SINGLE_TENANT_LOW,
)
def ksm_merging(host: HostFacts) -> Iterator[Result]:
    """Kernel same-page merging lets one guest time copy-on-write faults to learn another guest's
    memory contents (and weakens Rowhammer defences). Passes when KSM is off, or when every guest
    opts out; with KSM on, each guest that does not opt out fails. Containers share the host
    kernel's memory anyway and are not judged here."""
    ksm = host.ksm
    if isinstance(ksm, Unavailable):
        yield Result.unavailable(ksm, "ksm")
        return
    if ksm.run != 1:
        state = {0: "stopped", 2: "stopped, merged pages unmerged"}.get(ksm.run, "unknown state")
        yield Result.passed("ksm", f"/sys/kernel/mm/ksm/run={ksm.run} ({state})")
        return
    sharing = f", pages_sharing={ksm.pages_sharing}" if ksm.pages_sharing is not None else ""
    vms = [g for g in host.guests if g.kind == "vm"]
    if vms and all(g.memory_sharing_opt_out for g in vms):
        yield Result.passed("ksm", f"/sys/kernel/mm/ksm/run=1 (merging{sharing}), but every guest opted out")
        return
    yield Result.fail("ksm", f"/sys/kernel/mm/ksm/run=1 (merging{sharing})")
    for g in vms:
        if g.memory_sharing_opt_out:
            yield Result.passed(g.label, "opted out of merging").on(g.platform)
        elif g.memory_sharing_opt_out is None:
            yield Result.fail(g.label, "cannot tell whether it opted out of merging: assume its memory is merged").on(g.platform)
        else:
            yield Result.fail(g.label, "does not opt out: its memory is merged with other guests'").on(g.platform)


def _covers(g: Guest, snapshot: BackupSnapshot) -> bool:
    return covers_guest(snapshot, g.name, g.uuid or g.id)


def _holds(device: str, source: str) -> bool:
    """Whether `device` is the disk `source` or one of its partitions (/dev/sdb1, /dev/nvme0n1p2,
    /dev/mmcblk0p1 of /dev/sdb, /dev/nvme0n1, /dev/mmcblk0); /dev/sdba is not a partition of /dev/sdb."""
    if device == source:
        return True
    if not device.startswith(source):
        return False
    rest = device[len(source):]
    if source[-1:].isdigit():
        return rest.startswith("p") and rest[1:].isdigit()
    return rest.isdigit()


@check("HV-ISO-015",
    fix="give guests volumes (LVM LV, qcow2 file), never a host-mounted device; libvirt: sgio='filtered' and no rawio",
    references=("libvirt docs/formatdomain.rst (Hard drives, floppy disks, CDROMs: rawio, sgio)", "Proxmox VE qm.conf(5) (disk passthrough)"),
)
def raw_block_devices(host: HostFacts) -> Iterator[Result]:
    """rawio and unfiltered SG_IO let a guest send any SCSI command to the host's device; a disk
    that is also mounted on the host (itself or one of its partitions) is corrupted or read by the
    guest. Whether a block device is mounted needs the host's mount table: without one a guest
    whose only question is that is not applicable, with the reason."""
    mounts = host.hardware.mounts
    mounted = [m for m in mounts if m.source.startswith("/dev/")] if isinstance(mounts, list) else []

    def judge(g: Guest) -> tuple[list[str], Severity | None, list[str]] | Result:
        problems: list[str] = []
        block: list[str] = []
        deciding: list[str] = []
        for dev in g.devices:
            before = len(problems)
            name = dev.target or dev.host_id or "disk"
            if dev.kind == "block" and dev.host_id:
                block.append(dev.host_id)
                for m in mounted:
                    if not _holds(m.source, dev.host_id):
                        continue
                    what = dev.host_id if m.source == dev.host_id else f"its partition {m.source}"
                    if m.target == "/":
                        problems.append(f"{name}: {dev.host_id} holds the host's root filesystem ({what} on /)")
                    else:
                        problems.append(f"{name}: {dev.host_id} is mounted on the host ({what} on {m.target})")
            problems.extend(f"{name}: {note}" for note in dev.notes)
            if dev.kind == "scsi":
                problems.append(f"SCSI host device {dev.host_id or ''} assigned".strip())
            if len(problems) > before:
                deciding.append(dev.where)
        if problems:
            return problems, None, deciding
        if block and isinstance(mounts, Unavailable):
            return Result.not_applicable(
                f"passes host block device {', '.join(block)}; whether the host mounts it is unknown ({mounts.describe()})")
        if block:
            return Result.passed(g.label, f"host block device {', '.join(block)}: neither it nor a partition of it is mounted on the host")
        return [], None, []

    yield from each_guest(host, judge)


@check("HV-NEST-002",
    fix="libvirt: <feature policy='disable' name='vmx'/> (or svm) in the guest <cpu>; Proxmox: a named cpu model without +vmx/+svm; or turn nested off on the host",
    references=("Linux Documentation/virt/kvm/x86/running-nested-guests.rst", "libvirt docs/formatdomain.rst (CPU model and topology)", "Proxmox VE qm.conf(5) cpu"),
    profile_severity=SINGLE_TENANT_LOW,
)
def guest_nested(host: HostFacts) -> Iterator[Result]:
    """A guest with VMX/SVM drives L0's nested-virtualization code (a large, bug-prone emulation of
    VMX/SVM). A passed-through host CPU exposes it whenever nested is on in the host. The host's
    nested state is HV-NEST-001's: the loaded module's parameter, else the configured option; where
    HV-NEST-001 cannot tell, neither can this check (not applicable, with HV-NEST-001's reason)."""
    nested = _host_nested(host)

    def judge(g: Guest) -> list[str] | Result:
        if g.nested_kind == "requested":
            return [g.nested_detail or "VMX/SVM requested"]
        if g.nested_kind == "cpu-passthrough":
            detail = g.nested_detail or "host CPU passed through"
            if nested is True:
                return [f"{detail} with nested enabled on the host"]
            if isinstance(nested, str):
                return Result.not_applicable(f"{detail} exposes VMX/SVM if the host enables nested; host nested state unknown: {nested}")
        return []

    yield from each_guest(host, judge, applies=lambda g: g.kind == "vm", none_reason="no virtual machine")


@check("HV-BAK-002",
    fix="schedule per-guest backups (virtnbdbackup, vzdump, or restic/borg with the guest's name as tag or archive name) within the policy age",
    references=("virtnbdbackup", "restic(1)", "borg(1)", "Proxmox VE vzdump(1)"),
)
def guest_backups(host: HostFacts) -> Iterator[Result]:
    """Ransomware in a guest, a broken disk or a bad upgrade: only a recent backup brings the guest
    back. With no repository configured, every guest fails: no backup of it can be seen. A platform
    with its own backup jobs (Proxmox vzdump) says which guests no job covers."""
    backups = host.backups
    guests = host.guests
    if not guests:
        yield Result.not_applicable(no_guests_reason(host))
        return
    known = registry()
    uncovered: dict[str, set[str]] = {}
    for name, facts in host.platforms.items():
        hook = getattr(known.get(name), "guests_without_backup_job", None)
        if hook is not None:
            uncovered[name] = set(hook(facts))
    if backups is None or not backups.repositories:
        for g in guests:
            if g.platform in uncovered and g.id not in uncovered[g.platform]:
                yield Result.passed(g.label, "covered by a backup job of its platform (its runs are judged there)").on(g.platform)
            else:
                yield Result.fail(g.label, NO_BACKUP_SEEN).on(g.platform)
        return
    yield from _repo_results(backups)
    limit = datetime.timedelta(hours=backups.guest_max_age_hours)
    for g in guests:
        newest = _newest(backups, functools.partial(_covers, g))
        if newest is None:
            if g.platform in uncovered and g.id not in uncovered[g.platform]:
                yield Result.passed(g.label, "covered by a backup job of its platform (its runs are judged there)").on(g.platform)
            else:
                yield Result.fail(g.label, "in no configured repository").on(g.platform)
        elif _age(host, newest[0]) > limit:
            yield Result.fail(g.label, f"newest backup {newest[0]} ({_human(_age(host, newest[0]))} old, policy {backups.guest_max_age_hours} hours) in {newest[1]}").on(g.platform)
        else:
            yield Result.passed(g.label, f"newest backup {newest[0]} in {newest[1]}").on(g.platform)
