"""The VirtualBox-only checks, as judges over VirtualBoxFacts (and the host's package facts where
a version is needed). Titles, severities and fixes are the catalog rows' (docs/catalog-project.md,
section VirtualBox).

Each per-machine judge sees the machine's current settings, already resolved against
VirtualBox's defaults; a machine whose file could not be read is an error naming the file, one
whose settings are encrypted is not applicable, and a result names the defaults it rests on.
"""

from __future__ import annotations

import datetime
import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ...addresses import is_loopback
from ...model import Detail, Result, Severity, Status, Unavailable
from ..judges import register
from .facts import Disk, FileMode, MachineConfig, VBoxHome, VBoxMachine, VBoxSnapshot, VirtualBoxFacts

Verdict = list[str] | tuple[list[str], Severity | None] | None
MachineJudge = Callable[[VBoxHome, VBoxMachine, MachineConfig], Verdict]
Judge = Callable[[VirtualBoxFacts, Any], Iterator[Result]]

#: host directories a guest must not see: / and the system trees
SYSTEM_DIRS = ("/", "/etc", "/usr", "/var", "/boot", "/bin", "/sbin", "/lib", "/lib64", "/opt", "/srv", "/run",
               "/dev", "/proc", "/sys", "/root", "/home", "/Users", "/private", "/System", "/Library")
_HOME_PATH = re.compile(r"^(/home/[^/]+|/Users/[^/]+|/root|[A-Za-z]:[\\/]Users[\\/][^\\/]+)[\\/]?$")
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]", "*")
VBOX_PACKAGES = re.compile(r"^(virtualbox|VirtualBox)(-\d+\.\d+)?$")


def _short(value: object, limit: int = 160) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _details(home: VBoxHome, m: VBoxMachine) -> dict[str, Detail]:
    return {"guest": m.name, "guest_id": m.uuid, "file": m.path, "vbox_home": home.path, "user": home.user}


def snapshot_label(m: VBoxMachine, snapshot: VBoxSnapshot) -> str:
    """A snapshot's resource: its machine's, then @ and the snapshot's name."""
    return f"{m.label}@{snapshot.label}"


def each_machine(facts: VirtualBoxFacts, judge: MachineJudge, none_reason: str, snapshots: bool = True) -> Iterator[Result]:
    """One result per machine the judge speaks to (it returns None for a machine it does not):
    fail with every problem, or pass; unreadable files are errors, encrypted settings not
    applicable. `snapshots`: each snapshot's settings are judged too, as "machine@snapshot"
    (restoring the snapshot brings them back); judges of machine-wide settings say False."""
    judged = 0
    for home in facts.homes:
        for m in home.machines:
            if isinstance(m, Unavailable):
                yield Result.unavailable(m, m.path)
                continue
            if m.config is None:
                yield Result.not_applicable("settings encrypted (VirtualBox full VM encryption): not readable without "
                                            "the machine's password", m.label, details=_details(home, m))
                continue
            targets: Iterable[tuple[str, MachineConfig, VBoxSnapshot | None]] = ((m.label, m.config, None),)
            if snapshots and m.snapshots:
                targets = [(m.label, m.config, None), *((snapshot_label(m, snap), snap.config, snap) for snap in m.snapshots)]
            for label, config, snap in targets:
                verdict = judge(home, m, config)
                if verdict is None:
                    continue
                judged += 1
                problems, severity = verdict if isinstance(verdict, tuple) else (verdict, None)
                about = _details(home, m)
                if snap is not None:
                    about["snapshot"], about["snapshot_id"] = snap.name, snap.uuid
                if config.defaults:
                    about["defaults"] = list(config.defaults)
                # built with the platform already named: 500 machines times 17 checks make .on()'s copies count
                about["platform"] = "virtualbox"
                if problems:
                    yield Result(Status.FAIL, label, "; ".join(problems), severity, platform="virtualbox",
                                 details={**about, "problems": problems})
                else:
                    yield Result(Status.PASS, label, platform="virtualbox", details=about)
    if not judged:
        readable = any(m.config is not None for _h, m in facts.machines())
        yield Result.not_applicable(none_reason if readable else _no_machines(facts))


def _no_machines(facts: VirtualBoxFacts) -> str:
    if not facts.homes:
        return "no VirtualBox home (VirtualBox.xml) on this host"
    if facts.machines():
        return "no VirtualBox machine whose settings can be read"
    return "no VirtualBox machines registered"


def _where(address: str, port: object) -> str:
    return f"port {_short(port, 40)} on every host address" if address in _ANY_ADDRESS else f"{_short(address, 60)} port {_short(port, 40)}"


# --- remote display (VRDE) ----------------------------------------------------------------------


def vrde_auth(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-AUTH-030: VRDESettings' authType defaults to Null; before settings 1.16 the server
    itself defaulted to enabled."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        v = c.vrde
        if not v.enabled:
            return []
        default = " (the default)" if "VRDE authType Null" in c.defaults else ""
        where = _where(v.address, v.ports)
        if v.auth_type == "Null":
            return [f"VRDE enabled with authType Null{default}: whoever reaches {where} gets keyboard and screen"], Severity.CRITICAL
        if v.auth_type == "Guest":
            return [f"VRDE enabled with authType Guest on {where}: the guest's own accounts (through the Guest Additions) "
                    "decide who gets the console"], Severity.HIGH
        return []

    yield from each_machine(facts, judge, "no VirtualBox machine")


def _guest_facing(facts: VirtualBoxFacts) -> dict[str, list[str]]:
    """Host interfaces guests are attached to (host-only adapters, bridged NICs) -> machines."""
    out: dict[str, list[str]] = {}
    for _home, m in facts.machines():
        for nic in m.config.nics if m.config is not None else []:
            if nic.enabled and nic.attachment in ("hostonly", "bridged") and nic.network:
                out.setdefault(nic.network, []).append(m.name)
    return out


def vrde_exposure(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-AUTH-031: TCP/Address unset binds every host address; Security/Method other than TLS
    lets a client use standard RDP security. An address of a host-only or bridged interface is
    one the guests on it reach: a guest can take the console of another machine."""
    facing = _guest_facing(facts)
    network = getattr(host, "network", None)
    addresses: dict[str, list[str]] = getattr(network, "addresses", None) or {}

    def reached(address: str) -> str:
        hits = sorted(i for i in facing if i in addresses and (address in _ANY_ADDRESS or address in addresses[i]))
        if not hits:
            return ""
        names = sorted({n for i in hits for n in facing[i]})
        return f"; reachable from guests on {', '.join(hits)} ({', '.join(_short(n, 40) for n in names[:4])})"

    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        v = c.vrde
        if not v.enabled:
            return []
        if v.address not in _ANY_ADDRESS and is_loopback(v.address):
            return []
        where = "every host address (TCP/Address unset)" if v.address in _ANY_ADDRESS else _short(v.address, 60)
        tls = "" if v.security_method == "TLS" else f"; Security/Method {_short(v.security_method or 'unset (Negotiate)', 40)}: TLS not required"
        return [f"VRDE listens on {where}, port {_short(v.ports, 40)}{tls}{reached(v.address)}"]

    yield from each_machine(facts, judge, "no VirtualBox machine")


def vrde_connections(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-AUTH-032: allowMultiConnection lets a second client watch and type into the session;
    reuseSingleConnection lets a new client take it over from the connected one."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        v = c.vrde
        if not v.enabled:
            return []
        problems = []
        if v.multi_connection:
            problems.append("allowMultiConnection: several clients share the session at once")
        if v.reuse_single_connection:
            problems.append("reuseSingleConnection: a new client disconnects the current one and takes over")
        return problems

    yield from each_machine(facts, judge, "no VirtualBox machine")


# --- guest <-> host channels --------------------------------------------------------------------


def _sensitive(path: str, home: VBoxHome) -> str | None:
    """What the share exposes: `/home/alice/.` and `/etc/../` are what they resolve to."""
    if path.startswith("/"):
        path = posixpath.normpath(path)
    norm = path.rstrip("/\\") or "/"
    if norm == "/" or re.match(r"^[A-Za-z]:[\\/]?$", path):
        return "the host's root directory"
    owner_home = home.path.rsplit("/.config/VirtualBox", 1)[0].rsplit("/.VirtualBox", 1)[0] if home.source != "vbox-home" else None
    if _HOME_PATH.match(path) or (owner_home and norm == owner_home):
        return "a home directory"
    if any(norm == s for s in SYSTEM_DIRS):
        return "a host system directory"
    return None


def shared_folders(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-030: SharedFolder writable defaults to true (schema), autoMount to false; symlink
    creation is symlinkPolicy any/relative (settings 1.20+) or the older ExtraData switch
    VBoxInternal2/SharedFoldersEnableSymlinksCreate/<name>=1."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        if not c.shared_folders:
            return None
        problems: list[str] = []
        severity = None
        for sf in c.shared_folders:
            name = f"'{_short(sf.name, 60)}' ({_short(sf.host_path, 100)})"
            what = _sensitive(sf.host_path, home)
            if what:
                problems.append(f"{name}: shares {what}")
            if sf.writable:
                problems.append(f"{name}: writable")
            if sf.auto_mount:
                problems.append(f"{name}: auto-mounted in the guest")
            links = sf.symlink_policy in ("any", "relative") or sf.symlinks_extradata
            if links:
                how = f"symlinkPolicy {sf.symlink_policy}" if sf.symlink_policy in ("any", "relative") else "SharedFoldersEnableSymlinksCreate"
                problems.append(f"{name}: the guest may create symbolic links on the host ({how})")
            if sf.writable and (what or links):
                severity = Severity.HIGH
        return problems, severity

    yield from each_machine(facts, judge, "no VirtualBox machine has a shared folder")


def _direction(mode: str, what: str) -> tuple[str, Severity] | None:
    if mode in ("Bidirectional", "GuestToHost"):
        return f"{what} {mode}: the guest pushes data to the host", Severity.MEDIUM
    if mode == "HostToGuest":
        return f"{what} HostToGuest: the host's data reaches the guest", Severity.LOW
    return None


def clipboard(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-031: Clipboard mode defaults to Disabled, fileTransfersEnabled to false."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        problems: list[str] = []
        worst: Severity | None = None
        found = _direction(c.clipboard_mode, "shared clipboard")
        if found:
            problems.append(found[0])
            worst = found[1]
        if c.file_transfers and c.clipboard_mode != "Disabled":
            problems.append("clipboard file transfers enabled")
            worst = Severity.MEDIUM
        return problems, worst

    yield from each_machine(facts, judge, "no VirtualBox machine")


def drag_and_drop(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-032: DragAndDrop mode defaults to Disabled."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        found = _direction(c.dnd_mode, "drag and drop")
        return ([found[0]], found[1]) if found else []

    yield from each_machine(facts, judge, "no VirtualBox machine")


def serial_ports(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-033: a TCP server port listens on every host address; a host device or pipe
    connects the guest to the host's hardware or to a host process."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        enabled = [p for p in c.ports if p.enabled and p.mode != "Disconnected"]
        if not enabled:
            return None
        problems: list[str] = []
        severity = None
        only_pipes = True
        for p in enabled:
            name = f"{p.kind} port {p.slot + 1}"
            if p.mode == "TCP" and p.server:
                problems.append(f"{name}: TCP server on every host address, port {_short(p.path or '?', 40)}")
                only_pipes = False
            elif p.mode == "HostDevice":
                problems.append(f"{name}: host device {_short(p.path or '?', 80)}")
                only_pipes = False
            elif p.mode == "HostPipe":
                problems.append(f"{name}: host pipe {_short(p.path or '?', 80)}")
        if problems and only_pipes:
            severity = Severity.LOW
        return problems, severity

    yield from each_machine(facts, judge, "no VirtualBox machine has a serial or parallel port connected")


def _matches_all(criteria: dict[str, str]) -> bool:
    return all(v.strip() in ("", "*") for k, v in criteria.items() if k != "remote")


def usb_filters(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-034: an active filter without criteria captures every USB device plugged into the
    host (keyboards, security keys, storage) into the guest."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        if not c.usb_filters:
            return None
        problems = []
        for f in c.usb_filters:
            if f.active and _matches_all(f.criteria):
                where = " (remote devices only)" if f.criteria.get("remote", "").lower() in ("yes", "true", "1") else ""
                ctl = "" if c.usb_controllers else " (no USB controller enabled now)"
                problems.append(f"filter '{_short(f.name, 60)}' matches every USB device{where}{ctl}")
        return problems

    yield from each_machine(facts, judge, "no VirtualBox machine has a USB device filter")


def pci_passthrough(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-035: a host PCI device given to the guest can DMA into host memory unless an IOMMU
    confines it (judged by HV-ISO-010)."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        if not c.pci:
            return None
        return [f"host PCI device {p.host}{' (' + _short(p.name, 40) + ')' if p.name else ''} at guest {p.guest}" for p in c.pci]

    yield from each_machine(facts, judge, "no VirtualBox machine has a PCI device passed through")


def recording(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-ISO-036: recording writes the guest's screen (and audio) to files on the host."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        if not c.recording:
            return []
        return [f"screen recording on (screens {', '.join(str(s) for s in c.recording_screens)})"]

    yield from each_machine(facts, judge, "no VirtualBox machine")


# --- network ------------------------------------------------------------------------------------


def nat_forwards(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-NET-030: a NAT rule with an empty hostip binds the host port on every host address; the
    NAT networks of VirtualBox.xml (the NAT service, VBoxNetNAT) forward the same way."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        rules = [(n, r) for n in c.nics if n.enabled and n.attachment == "nat" for r in n.nat_rules]
        if not rules:
            return None
        return [f"adapter {n.slot + 1} rule '{_short(r.name, 40)}': {r.protocol} host port {r.host_port} on every host address "
                f"-> guest {_short(r.guest_ip + ':', 40) if r.guest_ip else 'port '}{r.guest_port}"
                for n, r in rules if r.host_ip in _ANY_ADDRESS]

    networks = [(home, name, rules) for home in facts.homes if not isinstance(home.global_file, Unavailable)
                for name, rules in sorted(home.global_file.nat_networks.items()) if rules]
    for home, name, rules in networks:
        resource = f"NAT network {_short(name, 60)} ({_short(home.path, 120)})"
        bad = [f"rule '{_short(r.name, 40)}': {r.protocol} host port {r.host_port} on every host address -> "
               f"{_short(r.guest_ip, 40)}:{r.guest_port}" for r in rules if r.host_ip in _ANY_ADDRESS]
        about: dict[str, Detail] = {"file": home.global_file.path if not isinstance(home.global_file, Unavailable) else None,
                                    "vbox_home": home.path, "user": home.user}
        yield (Result.fail(resource, "; ".join(bad), details=about) if bad
               else Result.passed(resource, f"{len(rules)} forward(s), each on a named host address", details=about))
    results = list(each_machine(facts, judge, "no VirtualBox machine forwards a NAT port"))
    if networks:
        results = [r for r in results if not (r.status is Status.NOT_APPLICABLE and r.resource == "host")]
    yield from results


def promiscuous(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-NET-031: promiscuousModePolicy defaults to Deny; AllowAll shows the guest every frame
    on the attached network, the host's own included."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        nics = [n for n in c.nics if n.enabled and n.attachment != "null"]
        if not nics:
            return None
        return [f"adapter {n.slot + 1} ({n.attachment} {_short(n.network or '', 40)}): promiscuousModePolicy AllowAll".replace(" )", ")")
                for n in nics if n.promiscuous == "AllowAll"]

    yield from each_machine(facts, judge, "no VirtualBox machine has an enabled network adapter")


def teleporter(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-NET-032: an enabled Teleporter waits on its port for a machine state to be streamed in;
    its password is stored in the .vbox (reported as set, never shown)."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        t = c.teleporter
        if not t.enabled:
            return []
        where = _where(t.address, t.port if t.port else "(unset)")
        if not t.password_set:
            return [f"Teleporter waits on {where} without a password: any host that reaches it can stream a machine in"], Severity.CRITICAL
        return [f"Teleporter waits on {where}; a password is set (stored in the settings file)"]

    # Teleporter settings are the machine's (readTeleporter reads them from Machine only)
    yield from each_machine(facts, judge, "no VirtualBox machine", snapshots=False)


def bridged_management(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-NET-033: VirtualBox bridges an adapter straight onto a host NIC (vboxnetflt); on the
    default-route interface (or a port of the bridge that holds it) the guest shares layer 2 with
    the host's management traffic and can ARP-spoof its gateway. VirtualBox filters no MAC or IP."""
    network = getattr(host, "network", None)
    if network is None:
        yield Result.not_applicable("no /proc/net under this root: the management interface is unknown")
        return
    route = network.default_route
    if isinstance(route, Unavailable):
        yield Result.unavailable(route, "/proc/net/route")
        return
    if not route:
        yield Result.not_applicable("no default route in /proc/net/route: no management interface to judge")
        return
    management = set(route)
    interfaces = network.interfaces if isinstance(network.interfaces, dict) else {}
    for device in route:
        iface = interfaces.get(device)
        master = getattr(iface, "master", None)
        if master:
            management.add(master)
        for name, other in interfaces.items():
            if getattr(other, "master", None) == device:
                management.add(name)

    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        bridged = [n for n in c.nics if n.enabled and n.attachment == "bridged"]
        if not bridged:
            return None
        return [f"adapter {n.slot + 1} bridged onto {_short(n.network, 40)}, the management (default-route) interface"
                for n in bridged if n.network in management]

    yield from each_machine(facts, judge, "no VirtualBox machine has a bridged adapter")


# --- CPU ----------------------------------------------------------------------------------------


def mitigations(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-SIDE-030: L1DFlushOn scheduling and MDSClearOn scheduling default to true
    (PlatformX86::PlatformX86()); VirtualBox writes them only when they are switched off."""
    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        problems = []
        if not c.cpu.l1d_flush_sched:
            problems.append("L1DFlushOn scheduling=false: the L1 data cache is not flushed when the EMT is scheduled (L1TF)")
        if not c.cpu.mds_clear_sched:
            problems.append("MDSClearOn scheduling=false: CPU buffers are not cleared when the EMT is scheduled (MDS)")
        return problems

    yield from each_machine(facts, judge, "no VirtualBox machine")


# --- data at rest -------------------------------------------------------------------------------


def _marked(m: VBoxMachine, patterns: list[str]) -> list[str]:
    """The [virtualbox] sensitive patterns that name the machine, by name or UUID."""
    return [p for p in patterns
            if fnmatch.fnmatchcase(m.name, p) or (m.uuid and fnmatch.fnmatchcase(m.uuid, p.strip("{}").lower()))]


def _disk_name(d: Disk) -> str:
    where = _short(d.location, 160) if d.location else f"medium {_short(d.uuid or '?', 40)}"
    return f"{where} ({_short(d.controller, 40)})" if d.controller else where


def sensitive_disks(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-BAK-030: a guest the operator marked sensitive keeps its data in clear on the host's
    disk (and in every copy and backup of the image) unless VirtualBox encrypts the image; an
    encrypted medium carries the CRYPT/KeyStore property in the MediaRegistry (differencing
    images inherit their base's). The key store itself is never read out."""
    patterns = facts.sensitive
    if not patterns:
        yield Result.not_applicable("no VirtualBox machine is marked sensitive (list them in the hyperward config: "
                                    "[virtualbox] sensitive = [\"name\", \"uuid\", \"glob*\"])")
        return
    used: set[str] = set()
    for home in facts.homes:
        for m in home.machines:
            if isinstance(m, Unavailable):
                yield Result.unavailable(m, m.path)
                continue
            marks = _marked(m, patterns)
            if not marks:
                continue
            used.update(marks)
            about = {**_details(home, m), "marked_by": marks[0], "sensitive_source": facts.sensitive_source, "platform": "virtualbox"}
            if m.config is None:
                yield Result.not_applicable("settings encrypted (VirtualBox full VM encryption): its disks cannot be listed "
                                            "without the machine's password", m.label, details=about)
                continue
            yield _judge_disks(m.label, m.config.disks, about)
            for snap in m.snapshots:
                yield _judge_disks(snapshot_label(m, snap), snap.config.disks,
                                   {**about, "snapshot": snap.name, "snapshot_id": snap.uuid})
    for pattern in patterns:
        if pattern not in used:
            yield Result.not_applicable(f"marked sensitive in {_short(facts.sensitive_source or 'the config', 200)} but no "
                                        "VirtualBox machine found has that name or UUID", f"[virtualbox] sensitive {_short(pattern, 80)}")


def _judge_disks(resource: str, disks: list[Disk], about: dict[str, Detail]) -> Result:
    images = [d for d in disks if d.device == "disk" and not d.host_drive]
    clear = [d for d in images if d.encrypted is False]
    unknown = [d for d in images if d.encrypted is None]
    if clear:
        names = [_disk_name(d) for d in clear]
        return Result(Status.FAIL, resource, f"marked sensitive, disk{'s' if len(clear) > 1 else ''} not encrypted: {'; '.join(names)}",
                      platform="virtualbox", details={**about, "unencrypted_disks": names})
    if unknown:
        return Result.not_applicable(f"disk(s) {'; '.join(_disk_name(d) for d in unknown)} are in no media registry read: "
                                     "whether they are encrypted is unknown", resource, details=about)
    if not images:
        return Result.not_applicable("marked sensitive, but no hard disk is attached", resource, details=about)
    return Result(Status.PASS, resource, f"{len(images)} hard disk(s), each encrypted (CRYPT/KeyStore)", platform="virtualbox",
                  details=about)


# --- installation -------------------------------------------------------------------------------


def _upstream(version: str) -> str:
    """7.0.14-161095~Ubuntu~jammy, 7.0.14-dfsg-1, 1:7.0.14, 7.0.14r161095 -> 7.0.14."""
    version = version.split(":", 1)[-1]
    match = re.match(r"^(\d+(?:\.\d+)*)", version)
    return match.group(1) if match else version


def vbox_version(facts: VirtualBoxFacts, host: Any) -> tuple[str | None, str]:
    packages = getattr(getattr(host, "patching", None), "installed_packages", None)
    if isinstance(packages, dict):
        for name in sorted(packages):
            if VBOX_PACKAGES.match(name):
                return _upstream(str(packages[name])), f"package {name} {packages[name]}"
    if facts.cfg_version:
        return _upstream(facts.cfg_version), f"/etc/vbox/vbox.cfg INSTALL_VER={facts.cfg_version}"
    return None, ""


def extpack_version(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-PATCH-030: an Extension Pack runs inside every VM process (VRDP, USB 2/3, disk
    encryption); VirtualBox refuses or misbehaves with a pack of another version, and an old pack
    keeps the security bugs its release fixed."""
    packs = facts.ext_packs
    if isinstance(packs, Unavailable):
        yield Result.unavailable(packs, "ExtensionPacks")
        return
    if not packs:
        yield Result.not_applicable("no Extension Pack installed")
        return
    version, source = vbox_version(facts, host)
    for pack in packs:
        if isinstance(pack, Unavailable):
            yield Result.unavailable(pack, pack.path)
            continue
        resource = f"extpack {_short(pack.name, 80)}"
        about: dict[str, Detail] = {"file": pack.path, "extpack_version": pack.version, "virtualbox_version": version}
        if version is None:
            yield Result.not_applicable(f"Extension Pack {_short(pack.version, 40)}; VirtualBox's own version is unknown "
                                        "(no virtualbox package, no INSTALL_VER in /etc/vbox/vbox.cfg)", resource, details=about)
        elif _upstream(pack.version) != version:
            yield Result.fail(resource, f"version {_short(pack.version, 40)}, VirtualBox is {version} ({_short(source, 80)})", details=about)
        else:
            yield Result.passed(resource, f"version {_short(pack.version, 40)} matches VirtualBox {version}", details=about)


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:3])


def guest_additions(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-PATCH-031: Guest Additions older than the host's VirtualBox run the guest side of shared
    folders, clipboard and drag and drop (VBoxGuest, VBoxSF, VBoxService) without the fixes of
    the host's release. The version is the guest property the guest last set: a claim, taken as
    the guest made it."""
    version, source = vbox_version(facts, host)

    def judge(home: VBoxHome, m: VBoxMachine, c: MachineConfig) -> Verdict:
        if c.guest_additions is None:
            return None
        if version is None:
            return []
        if _numbers(c.guest_additions) < _numbers(version):
            return [f"Guest Additions {c.guest_additions} (as the guest last reported), VirtualBox is {version}"]
        return []

    # a snapshot's guest properties record what the guest claimed then, not a setting
    results = list(each_machine(facts, judge, "no VirtualBox machine has reported its Guest Additions version", snapshots=False))
    if version is None:
        results = [Result.not_applicable("VirtualBox's own version is unknown (no virtualbox package, no INSTALL_VER in "
                                         "/etc/vbox/vbox.cfg)", r.resource, details=r.details).on("virtualbox")
                   if r.status is Status.PASS else r for r in results]
    yield from results


def vbox_security(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-PATCH-032: VirtualBox runs its VM processes and the vboxdrv/vboxnetflt kernel modules
    with the bugs every CPU since the installed release fixed; a branch past its end of life gets
    no fixes at all. Judged against the VirtualBox security table the facts carry
    (data/virtualbox_security.json, or the copy `hyperward db update` refreshed), whose compile
    date and newest advisory every result names: a newer CPU than the table holds is not known to
    it. Oracle publishes a CPU every quarter, so a table more than its max_age_days (120) older
    than the facts' collection vouches for no release: a version it would pass is not applicable,
    naming the table's age and `hyperward db update`; a version it names as affected, or a branch
    past its end of life, still fails. A table that cannot be loaded is an error naming its path."""
    from .security import standing

    version, source = vbox_version(facts, host)
    if version is None:
        yield Result.not_applicable("VirtualBox's own version is unknown (no virtualbox package, no INSTALL_VER in "
                                    "/etc/vbox/vbox.cfg)")
        return
    resource = f"VirtualBox {_short(version, 40)}"
    data = facts.security_table
    if isinstance(data, Unavailable):
        yield Result.unavailable(data, resource)
        return
    found = standing(version, data)
    about: dict[str, Detail] = {"virtualbox_version": version, "version_source": source, "branch": found.branch,
                                "table_compiled": data.compiled, "table_covers_through": data.covers_through,
                                "table": "bundled" if data.about.bundled else data.about.origin}
    said = "" if data.about.bundled else f" [table {_short(data.about.origin, 300)}]"
    if data.about.ignored:
        said += f" [ignored {_short(data.about.ignored, 300)}]"
    if found.status == "affected":
        newest = found.advisories[0]
        bound = (f"fixed in {newest.fixed_in}" if newest.fixed_in else f"affects {found.branch} up to {newest.affected_through}")
        cves = ", ".join(newest.cves[:8]) + (f" and {len(newest.cves) - 8} more" if len(newest.cves) > 8 else "")
        older = f"; {len(found.advisories) - 1} older CPU(s) also name it" if len(found.advisories) > 1 else ""
        about.update({"advisories": [a.advisory for a in found.advisories], "cves": sorted({c for a in found.advisories for c in a.cves}),
                      "advisory_url": newest.url})
        yield Result.fail(resource, f"{newest.advisory} ({bound}): {cves}{older} ({_short(source, 80)}){said}", details=about)
    elif found.status == "eol" and found.eol is not None:
        about["eol_source"] = data.eol_source
        yield Result.fail(resource, f"branch {found.branch} is unsupported: end of life since {found.eol.eol} (last release "
                                    f"{found.eol.last}); no CPU fixes it any more ({_short(source, 80)}){said}", details=about)
    elif found.status == "unknown":
        yield Result.not_applicable(f"branch {_short(found.branch, 20)} is not in hyperward's VirtualBox table (compiled "
                                    f"{data.compiled}, through the {data.covers_through}){said}", resource, details=about)
    elif (age := data.about.stale(_collected_day(host))) is not None:
        yield Result.not_applicable(f"newer than every {found.branch} release the table names as affected, but the VirtualBox table is "
                                    f"{age} days older than the scan (compiled {data.compiled}, through the {data.covers_through}): "
                                    f"later CPUs are unknown; run `hyperward db update`{said}", resource, details=about)
    else:
        yield Result.passed(resource, f"newer than every {found.branch} release the table names as affected (compiled "
                                      f"{data.compiled}, through the {data.covers_through}; later CPUs are not in it){said}",
                            details=about)


def _collected_day(host: Any) -> datetime.date:
    """The day the facts were collected (HostFacts.meta.collected_at, ISO 8601); today when it is
    not a date, so a hand-edited snapshot is judged as of now, not as of a date it invents."""
    try:
        return datetime.date.fromisoformat(str(host.meta.collected_at)[:10])
    except (AttributeError, ValueError):
        return datetime.datetime.now(datetime.UTC).date()


def websrv(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-AUTH-034: vboxweb-service starts vboxwebsrv only when VBOXWEB_USER is set; without
    VBOXWEB_SSL_KEYFILE it speaks plain HTTP (default host localhost, port 18083); an auth
    library "null" (VBOXWEB_AUTH_LIBRARY, else the user's webServiceAuthLibrary; VirtualBox's
    default is VBoxAuth, the host's PAM accounts) accepts any logon."""
    conf = facts.websrv
    if isinstance(conf, Unavailable):
        if conf.kind == "missing":
            yield Result.not_applicable("vboxweb-service not configured (no /etc/default/virtualbox)")
        else:
            yield Result.unavailable(conf, conf.path)
        return
    user = conf.get("VBOXWEB_USER", "").strip()
    if not user:
        yield Result.not_applicable("vboxweb-service not configured (VBOXWEB_USER unset in /etc/default/virtualbox)")
        return
    library = conf.get("VBOXWEB_AUTH_LIBRARY") or None
    origin = "VBOXWEB_AUTH_LIBRARY"
    if library is None:
        for home in facts.homes:
            if home.user == user and home.source in ("home", "legacy"):
                glob = home.global_file
                if not isinstance(glob, Unavailable) and glob.websrv_auth_library:
                    library, origin = glob.websrv_auth_library, f"webServiceAuthLibrary in {glob.path}"
                    break
    if library is None:
        library, origin = "VBoxAuth", "default"
    host_addr = conf.get("VBOXWEB_HOST") or "localhost"
    port = conf.get("VBOXWEB_PORT") or "18083"
    tls = bool(conf.get("VBOXWEB_SSL_KEYFILE"))
    resource = f"vboxwebsrv {_short(host_addr, 60)}:{_short(port, 10)}"
    problems: list[str] = []
    severity = None
    if library.lower() in ("null", "vboxauthnull"):
        problems.append(f"authentication off (auth library {_short(library, 40)}, {origin}): any username and password log on")
        severity = Severity.CRITICAL
    loopback = host_addr == "localhost" or is_loopback(host_addr)
    if not tls and not loopback:
        problems.append(f"plain HTTP on {_short(host_addr, 60)}:{_short(port, 10)} (no VBOXWEB_SSL_KEYFILE): logons and session ids cross the network in clear")
    about: dict[str, Detail] = {"file": "/etc/default/virtualbox", "user": user, "auth_library": library, "tls": tls}
    if problems:
        yield Result.fail(resource, "; ".join(problems), severity=severity, details=about)
    else:
        note = "TLS" if tls else "plain HTTP on loopback only"
        yield Result.passed(resource, f"{note}; auth library {_short(library, 40)} ({origin})", details=about)


def _mode_problems(fm: FileMode, owner_uid: int | None, secret: str | None, folder: FileMode | None = None) -> list[str]:
    problems = []
    # without the sticky bit whoever may write the folder may rename and replace the file in it
    if folder is not None and folder.mode & 0o022 and not folder.mode & 0o1000:
        who = " and ".join(w for w, bit in (("its group", 0o020), ("every user", 0o002)) if folder.mode & bit)
        problems.append(f"its folder {_short(folder.path, 120)} (mode {folder.mode:04o}) is writable by {who} without the "
                        "sticky bit: the file can be replaced")
    if fm.mode & 0o022:
        who = " and ".join(w for w, bit in (("its group", 0o020), ("every user", 0o002)) if fm.mode & bit)
        problems.append(f"mode {fm.mode:04o}: writable by {who}, who can then change what the machine is given")
    if owner_uid is not None and fm.uid not in (owner_uid, 0):
        problems.append(f"owned by {fm.owner or 'uid ' + str(fm.uid)}, not by the home's user")
    if secret and fm.mode & 0o044:
        who = " and ".join(w for w, bit in (("its group", 0o040), ("every user", 0o004)) if fm.mode & bit)
        problems.append(f"mode {fm.mode:04o}: readable by {who}, and it holds {secret}")
    return problems


def settings_files(facts: VirtualBoxFacts, host: Any) -> Iterator[Result]:
    """HV-AUTH-033: whoever can write a user's VirtualBox.xml or .vbox decides what that user's
    machines share, pass through and expose; the files hold the Teleporter password and
    VBoxAuthSimple hashes. A --vbox-home copy's modes say nothing about its source host."""
    any_result = False
    for home in facts.homes:
        if home.source == "vbox-home":
            any_result = True
            yield Result.not_applicable("a copy named with --vbox-home: its file modes are the copy's", home.path)
            continue
        glob = home.global_file
        if isinstance(glob, Unavailable):
            any_result = True
            yield Result.unavailable(glob, glob.path)
        elif home.global_mode is not None:
            any_result = True
            secret = f"{glob.auth_simple_users} VBoxAuthSimple password hash(es)" if glob.auth_simple_users else None
            problems = _mode_problems(home.global_mode, home.uid, secret, home.folder)
            about: dict[str, Detail] = {"file": glob.path, "user": home.user, "mode": f"{home.global_mode.mode:04o}"}
            yield (Result.fail(glob.path, "; ".join(problems), details=about) if problems
                   else Result.passed(glob.path, f"mode {home.global_mode.mode:04o}", details=about))
        for entry in home.missing:
            any_result = True
            yield Result.not_applicable(f"registered in {home.path}/VirtualBox.xml (uuid {_short(entry.uuid, 40)}) but its "
                                        "settings file does not exist: not audited", _short(entry.src, 200))
        for m in home.machines:
            if isinstance(m, Unavailable):
                continue
            if m.file is None:
                continue
            any_result = True
            secrets = []
            if m.config is not None and m.config.teleporter.password_set:
                secrets.append("the Teleporter password")
            if m.config is not None and m.config.auth_simple_users:
                secrets.append("VBoxAuthSimple password hashes")
            problems = _mode_problems(m.file, home.uid, " and ".join(secrets) or None, m.folder)
            about = {**_details(home, m), "mode": f"{m.file.mode:04o}"}
            yield (Result.fail(m.label, "; ".join(problems), details=about) if problems
                   else Result.passed(m.label, f"mode {m.file.mode:04o}", details=about))
    if not any_result:
        yield Result.not_applicable(_no_machines(facts))


JUDGES: dict[str, Judge] = {
    "HV-AUTH-030": vrde_auth,
    "HV-AUTH-031": vrde_exposure,
    "HV-AUTH-032": vrde_connections,
    "HV-AUTH-033": settings_files,
    "HV-AUTH-034": websrv,
    "HV-ISO-030": shared_folders,
    "HV-ISO-031": clipboard,
    "HV-ISO-032": drag_and_drop,
    "HV-ISO-033": serial_ports,
    "HV-ISO-034": usb_filters,
    "HV-ISO-035": pci_passthrough,
    "HV-ISO-036": recording,
    "HV-NET-030": nat_forwards,
    "HV-NET-031": promiscuous,
    "HV-NET-032": teleporter,
    "HV-NET-033": bridged_management,
    "HV-SIDE-030": mitigations,
    "HV-PATCH-030": extpack_version,
    "HV-PATCH-031": guest_additions,
    "HV-PATCH-032": vbox_security,
    "HV-BAK-030": sensitive_disks,
}


register("virtualbox", JUDGES, "VirtualBox is not installed (no /usr/lib/virtualbox, no user's VirtualBox.xml)", with_host=True)
