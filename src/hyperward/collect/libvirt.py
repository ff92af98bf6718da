"""libvirt and QEMU: daemon configuration, socket units and sockets, domain and network XML,
nwfilters, SASL and polkit, TLS files, file modes of guest state, and running QEMU processes.

Files first (they work offline and are what the daemon reads); the libvirt API, when a daemon
runs on the live host, adds transient domains, live definitions and the security models.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Callable
from typing import TypeVar

from ..facts import (
    STACK_DAEMONS,
    Domain,
    DomainSnapshot,
    FileNode,
    LibvirtConfig,
    LibvirtFacts,
    Maybe,
    Network,
    PolkitRule,
    QemuProcess,
    SocketUnit,
    SourceLine,
    TlsCertificate,
)
from ..model import Unavailable, is_missing
from ..parsers.domain_xml import (
    XmlError,
    parse_domain,
    parse_domain_snapshot,
    parse_network,
    parse_nwfilter,
    pool_target,
)
from ..parsers.libvirt_conf import LibvirtConfError, parse_libvirt_conf
from ..parsers.libvirt_defaults import (
    LIBVIRTD_CONF_DEFAULTS,
    QEMU_CONF_DEFAULTS,
    effective,
)
from ..parsers.proc import (
    deleted_mappings,
    machine_slice,
    option_value,
    polkit_manage_grants,
    qemu_cpu_pm,
    qemu_guest_name,
    sasl_mech_list,
    split_cmdline,
    status_fields,
)
from ..parsers.systemd import key_lines, last, parse_unit
from ..records import frozen
from . import libvirt_api
from .fs import RootFS

#: a daemon (or systemd holding its socket) answers qemu:///system only where one of these exists;
#: without one, asking costs the libvirt binding's import and a refused connection
DAEMON_SOCKETS = ("libvirt-sock", "libvirt-sock-ro", "virtqemud-sock", "virtqemud-sock-ro", "virtproxyd-sock", "virtproxyd-sock-ro")

CONFIG_FILES = ("qemu.conf", "libvirtd.conf", "virtqemud.conf", "virtproxyd.conf")
SOCKET_UNITS = tuple(
    f"{daemon}{suffix}.socket"
    for daemon in ("libvirtd", "virtqemud", "virtproxyd")
    for suffix in ("", "-ro", "-admin", "-tcp", "-tls")
)
UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/run/systemd/system", "/etc/systemd/system")
STATE_DIRS = (
    "/var/lib/libvirt/images",
    "/var/lib/libvirt/qemu/save",
    "/var/lib/libvirt/qemu/snapshot",
    "/var/lib/libvirt/qemu/dump",
    "/var/lib/libvirt/qemu/nvram",
    "/var/lib/libvirt/swtpm",
)
QEMU_BINARY = re.compile(r"^(qemu-system-[\w.-]+|qemu-kvm|kvm)$")
XML_LIMIT = 8 * 1024 * 1024
MAX_STATE_FILES = 1000


SECRET_SETTING = re.compile(r"password|passwd|secret|token", re.I)
REDACTED = "(set; value not collected)"


def _config(fs: RootFS, path: str) -> tuple[LibvirtConfig, str | None]:
    """Settings that hold secrets (vnc_password, spice_password ...) keep only the fact that
    they are set: their values never reach a snapshot or a report."""
    text = fs.read_text(path)
    if isinstance(text, Unavailable):
        return LibvirtConfig(path, text), None
    try:
        lines: dict[str, int] = {}
        settings = parse_libvirt_conf(text, lines)
        return LibvirtConfig(path, {k: REDACTED if SECRET_SETTING.search(k) else v for k, v in settings.items()}, lines), text
    except LibvirtConfError as exc:
        return LibvirtConfig(path, Unavailable(path, "invalid", f"not valid libvirt configuration syntax: {exc}")), text


def _node(fs: RootFS, path: str, names: tuple[dict[int, str], dict[int, str]]) -> Maybe[FileNode]:
    st = fs.stat(path)
    if isinstance(st, Unavailable):
        return st
    mode = st.st_mode
    kind = ("directory" if stat.S_ISDIR(mode) else "socket" if stat.S_ISSOCK(mode) else "block device"
            if stat.S_ISBLK(mode) else "character device" if stat.S_ISCHR(mode) else "file")
    users, groups = names
    return FileNode(path, stat.S_IMODE(mode), st.st_uid, st.st_gid, users.get(st.st_uid), groups.get(st.st_gid), kind)


def _socket_units(fs: RootFS) -> list[SocketUnit]:
    wants: set[str] = set()
    etc = fs.listdir("/etc/systemd/system")
    for entry in etc if isinstance(etc, list) else []:
        if entry.endswith(".wants"):
            listing = fs.listdir(f"/etc/systemd/system/{entry}")
            wants.update(listing if isinstance(listing, list) else [])
    units = []
    for name in SOCKET_UNITS:
        main_path: str | None = None
        texts: list[tuple[str, str]] = []
        for directory in UNIT_DIRS:
            path = f"{directory}/{name}"
            if fs.is_masked_unit(path):
                main_path, texts = path, []
                continue
            text = fs.read_text(path, 256 * 1024)
            if isinstance(text, str):
                main_path, texts = path, [(path, text)]
        if main_path is None:
            continue
        masked = any(fs.is_masked_unit(f"{d}/{name}") for d in ("/etc/systemd/system", "/run/systemd/system"))
        dropins = []
        for directory in UNIT_DIRS:
            listing = fs.listdir(f"{directory}/{name}.d")
            for conf in listing if isinstance(listing, list) else []:
                if conf.endswith(".conf"):
                    dropins.append((conf, f"{directory}/{name}.d/{conf}"))
        for _, path in sorted(dropins):
            text = fs.read_text(path, 256 * 1024)
            if isinstance(text, str):
                texts.append((path, text))
        unit = parse_unit([text for _, text in texts])
        mode_at = key_lines(texts).get(("Socket", "SocketMode"))
        units.append(SocketUnit(
            name=name,
            path=main_path,
            listen=unit.get("Socket", {}).get("ListenStream", []),
            socket_mode=last(unit, "Socket", "SocketMode"),
            socket_group=last(unit, "Socket", "SocketGroup"),
            enabled=name in wants and not masked,
            masked=masked,
            socket_mode_at=SourceLine(*mode_at) if mode_at else None,
        ))
    return units


def _xml_dir(fs: RootFS, directory: str) -> list[tuple[str, str | Unavailable]]:
    listing = fs.listdir(directory)
    if isinstance(listing, Unavailable):
        return []
    return [(f"{directory}/{n}", fs.read_text(f"{directory}/{n}", XML_LIMIT)) for n in listing if n.endswith(".xml")]


T = TypeVar("T")


def _parsed(path: str, text: str | Unavailable, parse: Callable[[str, str], T], what: str) -> T | Unavailable:
    """One definition file's parse; a file that could not be read or parsed is Unavailable naming it."""
    if isinstance(text, Unavailable):
        return text
    try:
        return parse(text, path)
    except XmlError as exc:
        return Unavailable(path, "invalid", f"cannot read {what} XML: {exc}")


def _domains(fs: RootFS, api_domains: list[Maybe[Domain]]) -> list[Maybe[Domain]]:
    persistent: dict[str, Domain] = {}
    problems: list[Unavailable] = []
    for source, running in (("/etc/libvirt/qemu", False), ("/run/libvirt/qemu", True)):
        for path, text in _xml_dir(fs, source):
            domain = _parsed(path, text, lambda t, p: parse_domain(t, p, running=running), "domain")
            if isinstance(domain, Unavailable):
                problems.append(domain)
                continue
            key = domain.uuid or domain.name
            if running or key not in persistent:
                persistent[key] = domain
    for item in api_domains:
        if isinstance(item, Unavailable):
            problems.append(item)
            continue
        key = item.uuid or item.name
        if item.running or key not in persistent or not persistent[key].running:
            persistent[key] = item
    ordered: list[Maybe[Domain]] = [*sorted(persistent.values(), key=lambda d: (d.name, d.uuid)), *problems]
    return ordered


SNAPSHOT_DIR = "/var/lib/libvirt/qemu/snapshot"
#: snapshots read per domain and in all: a directory of more is named, never walked to the end
MAX_SNAPSHOTS, MAX_SNAPSHOTS_TOTAL = 1000, 20000


def _snapshots(fs: RootFS) -> list[Maybe[DomainSnapshot]]:
    """Each snapshot's metadata, as the QEMU driver keeps it (SNAPSHOT_DIR/<domain name>/<snapshot
    name>.xml, root's and mode 0600): a revert brings its <domain> back. A directory or file that
    cannot be read is kept as Unavailable, so a scan without root's rights says what it missed."""
    listing = fs.listdir(SNAPSHOT_DIR)
    if isinstance(listing, Unavailable):
        return [] if listing.kind == "missing" else [listing]
    out: list[Maybe[DomainSnapshot]] = []
    for domain_dir in sorted(listing):
        directory = f"{SNAPSHOT_DIR}/{domain_dir}"
        info = fs.stat(directory)
        if not isinstance(info, Unavailable) and not stat.S_ISDIR(info.st_mode):
            continue
        files = fs.listdir(directory)
        if isinstance(files, Unavailable):
            out.append(files)
            continue
        names = sorted(n for n in files if n.endswith(".xml"))
        if len(names) > MAX_SNAPSHOTS or len(out) + len(names) > MAX_SNAPSHOTS_TOTAL:
            out.append(Unavailable(directory, "invalid", f"{len(names)} snapshot files: more than hyperward reads "
                                   f"({MAX_SNAPSHOTS} per domain, {MAX_SNAPSHOTS_TOTAL} in all)"))
            continue
        for name in names:
            path = f"{directory}/{name}"
            snapshot = _parsed(path, fs.read_text(path, XML_LIMIT), parse_domain_snapshot, "snapshot")
            if snapshot is not None:
                out.append(snapshot)
    return out


def _networks(fs: RootFS, api_networks: list[Maybe[Network]]) -> list[Maybe[Network]]:
    found: dict[str, Network] = {}
    problems: list[Unavailable] = []
    for path, text in _xml_dir(fs, "/etc/libvirt/qemu/networks"):
        network = _parsed(path, text, parse_network, "network")
        if isinstance(network, Unavailable):
            problems.append(network)
            continue
        found[network.name] = network
    for item in api_networks:
        if isinstance(item, Unavailable):
            problems.append(item)
        else:
            found[item.name] = item
    return [*sorted(found.values(), key=lambda n: n.name), *problems]


def _nwfilters(fs: RootFS, api_filters: dict[str, list[str]]) -> Maybe[dict[str, list[str]]]:
    listing = fs.listdir("/etc/libvirt/nwfilter")
    if isinstance(listing, Unavailable) and not api_filters:
        return listing
    filters: dict[str, list[str]] = {}
    for _, text in _xml_dir(fs, "/etc/libvirt/nwfilter"):
        if isinstance(text, str):
            try:
                name, refs = parse_nwfilter(text)
            except XmlError:
                continue
            filters[name] = refs
    filters.update(api_filters)
    return dict(sorted(filters.items()))


def _pools(fs: RootFS) -> list[str]:
    targets = {"/var/lib/libvirt/images"}
    for _, text in _xml_dir(fs, "/etc/libvirt/storage"):
        if isinstance(text, str):
            try:
                target = pool_target(text)
            except XmlError:
                continue
            if target:
                targets.add(target)
    return sorted(targets)


def _host_lsms(fs: RootFS) -> Maybe[list[str]]:
    text = fs.read_line("/sys/kernel/security/lsm", 4096)
    if isinstance(text, Unavailable):
        return text
    return [name for name in text.split(",") if name]


def _polkit(fs: RootFS) -> list[PolkitRule]:
    rules = []
    for directory in ("/usr/share/polkit-1/rules.d", "/etc/polkit-1/rules.d"):
        listing = fs.listdir(directory)
        for name in listing if isinstance(listing, list) else []:
            if not name.endswith(".rules"):
                continue
            text = fs.read_text(f"{directory}/{name}", 1024 * 1024)
            if isinstance(text, str):
                grants = polkit_manage_grants(text)
                if grants is not None:
                    rules.append(PolkitRule(f"{directory}/{name}", grants))
    return rules


def _certificate(fs: RootFS, path: str) -> Maybe[TlsCertificate]:
    data = fs.read_bytes(path, 1024 * 1024)
    if isinstance(data, Unavailable):
        return data
    try:
        from cryptography import x509

        if b"-----BEGIN" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
        after = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        return TlsCertificate(path, after.isoformat(timespec="seconds"))
    except Exception as exc:  # any malformed certificate: name it, do not crash
        return TlsCertificate(path, Unavailable(path, "invalid", f"not an X.509 certificate ({type(exc).__name__})"))


def process_exe(fs: RootFS, pid: int) -> Maybe[str]:
    base = f"/proc/{pid}"
    try:
        return os.readlink(os.path.join(fs.local_path(base), "exe"))
    except PermissionError:
        return Unavailable(f"{base}/exe", "denied", "permission denied")
    except OSError as exc:
        return Unavailable(f"{base}/exe", "missing", exc.strerror or "unreadable")


def program_name(exe: Maybe[str] | None, args: list[str]) -> str:
    """What a process runs, from the kernel's link to its executable: argv[0] is whatever its
    starter chose, so a process calling itself qemu-system-x86_64 is not QEMU, and a QEMU
    calling itself anything else still is. argv[0] only when the link cannot be read (a scan
    that is not root, an offline tree without the link)."""
    if isinstance(exe, str):
        return os.path.basename(exe.removesuffix(" (deleted)"))
    return os.path.basename(args[0]) if args else ""


def process_kind(program: str) -> str | None:
    return "qemu" if QEMU_BINARY.match(program) else program if program in STACK_DAEMONS else None


def _processes(fs: RootFS, records: ManagerRecords) -> Maybe[list[QemuProcess]]:
    listing = fs.listdir("/proc")
    if isinstance(listing, Unavailable):
        return listing
    pids = [int(p) for p in listing if p.isdigit()]
    if not pids and not fs.exists("/proc/self"):
        return Unavailable("/proc", "missing", "no process table under this root")
    by_pid = records.libvirt_pids or {}
    out = []
    for pid in sorted(pids):
        raw = fs.read_bytes(f"/proc/{pid}/cmdline", 1024 * 1024)
        if isinstance(raw, Unavailable) or not raw:
            continue
        args = split_cmdline(raw)
        exe = process_exe(fs, pid)
        kind = process_kind(program_name(exe, args))
        if kind is None:
            continue
        base = f"/proc/{pid}"
        maps = fs.read_text(f"{base}/maps", 64 * 1024 * 1024)
        status = fs.read_text(f"{base}/status")
        fields = status_fields(status) if isinstance(status, str) else {}
        uid_field = fields.get("Uid", "").split()
        seccomp = fields.get("Seccomp")
        label = fs.read_text(f"{base}/attr/current", 4096)
        if isinstance(label, str):
            label = label.strip("\0\n ")
        cgroup_text = fs.read_text(f"{base}/cgroup")
        cgroup = machine_slice(cgroup_text) if isinstance(cgroup_text, str) else None
        name = (qemu_guest_name(args) or by_pid.get(pid)) if kind == "qemu" else None
        managed = managed_by(pid, cgroup, records) if kind == "qemu" else None
        out.append(QemuProcess(
            pid=pid,
            exe=exe,
            exe_deleted=isinstance(exe, str) and exe.endswith(" (deleted)"),
            deleted_libraries=deleted_mappings(maps) if isinstance(maps, str) else [],
            uid=int(uid_field[1]) if len(uid_field) > 1 and uid_field[1].isdigit() else None,
            seccomp=int(seccomp) if seccomp and seccomp.isdigit() else None,
            lsm_label=label,
            cgroup=cgroup,
            domain_name=name,
            domain_uuid=option_value(args, "-uuid"),
            managed_by=managed,
            cpu_pm=qemu_cpu_pm(args),
            sandbox=option_value(args, "-sandbox"),
            kind=kind,
        ))
    return out


# The cgroups libvirt and Proxmox put a QEMU in, anchored at the root of the hierarchy: only root
# can create or enter them, while any user may name a cgroup of their own systemd user manager
# ".../machine-qemu-x.scope" (libvirt docs/cgroups.rst: the systemd layout with optional partition
# slices and, since libvirt 7.1, a libvirt/ directory inside the scope; the non-systemd layout
# with .partition directories; names without the domain ID from libvirt before 2.x).
LIBVIRT_CGROUP = re.compile(
    r"^/machine\.slice(?:/machine-[^/]+\.slice)*/machine-qemu\\x2d(?:\d+\\x2d)?[^/]+\.scope(?:/[^/]+)*\Z"
    r"|^/machine(?:/[^/]+\.partition)*/(?:qemu-\d+-)?[^/]+\.libvirt-qemu(?:/[^/]+)*\Z")
PROXMOX_CGROUP = re.compile(r"^/qemu\.slice/(\d+)\.scope(?:/[^/]+)*\Z")
USER_CGROUP = re.compile(r"^/user\.slice(?:/|$)|/user@\d+\.service(?:/|$)")
SYSTEM_URI = "qemu:///system"


@frozen
class ManagerRecords:
    """What the managers themselves record as running: libvirt's pid files by PID (None when
    /run/libvirt/qemu cannot be read), the running domains the system daemon's API lists (None
    when it was not asked or did not answer in full), Proxmox's pid files by VM ID."""

    libvirt_pids: dict[int, str] | None
    api_running: frozenset[str] | None = None
    proxmox_pids: dict[str, int] | None = None


def cgroup_owner(cgroup: str | None) -> str | None:
    if not cgroup:
        return None
    if LIBVIRT_CGROUP.match(cgroup):
        return "libvirt"
    if PROXMOX_CGROUP.match(cgroup):
        return "proxmox"
    return None


def managed_by(pid: int, cgroup: str | None, records: ManagerRecords) -> str | None:
    """Who started a QEMU: libvirt, Proxmox, or nobody known (HV-IDS-005, the monitor's rule).

    libvirt's pid file names the PID of each domain's QEMU; a pid file whose domain the API does
    not list as running is stale, and its PID may since belong to anyone. Inside a VM's cgroup
    only that PID is libvirt's: another QEMU there was started by a process in the VM's scope
    (QEMU itself, after a guest escape). The cgroup alone decides only when the pid files cannot
    be read (a scan that is not root). Nothing under a user's slice is managed."""
    if cgroup and USER_CGROUP.search(cgroup):
        return None
    owner = cgroup_owner(cgroup)
    name = records.libvirt_pids.get(pid) if records.libvirt_pids is not None else None
    if name is not None and owner != "proxmox" and (records.api_running is None or name in records.api_running):
        return "libvirt"
    if owner == "libvirt" and records.libvirt_pids is None:
        return "libvirt"
    if owner == "proxmox" and cgroup:
        match = PROXMOX_CGROUP.match(cgroup)
        vmid = match.group(1) if match else ""
        recorded = (records.proxmox_pids or {}).get(vmid)
        return "proxmox" if recorded is None or recorded == pid else None
    return None


def _pid_dir(fs: RootFS, directory: str) -> dict[str, int] | None:
    listing = fs.listdir(directory)
    if isinstance(listing, Unavailable):
        return None
    out = {}
    for name in listing:
        if name.endswith(".pid"):
            value = fs.read_int(f"{directory}/{name}", 64)
            if isinstance(value, int):
                out[name[:-4]] = value
            elif value.kind == "denied":
                return None
    return out


def pidfiles(fs: RootFS) -> dict[str, int]:
    return _pid_dir(fs, "/run/libvirt/qemu") or {}


def manager_records(fs: RootFS, api_domains: list[Maybe[Domain]] | None = None) -> ManagerRecords:
    """`api_domains` only from the local system daemon, and only a listing without errors."""
    libvirt = _pid_dir(fs, "/run/libvirt/qemu")
    running = None
    if api_domains is not None and not any(isinstance(d, Unavailable) for d in api_domains):
        running = frozenset(d.name for d in api_domains if isinstance(d, Domain) and d.running)
    return ManagerRecords(
        libvirt_pids=None if libvirt is None else {pid: name for name, pid in libvirt.items()},
        api_running=running,
        proxmox_pids=_pid_dir(fs, "/run/qemu-server"),
    )


def _daemon_args(fs: RootFS) -> dict[str, str]:
    out = {}
    for name in ("libvirtd", "virtproxyd", "virtqemud"):
        text = fs.read_text(f"/etc/default/{name}", 64 * 1024)
        if isinstance(text, str):
            for line in text.splitlines():
                key, sep, value = line.strip().partition("=")
                if sep and key.endswith("_ARGS") and not key.startswith("#"):
                    out[f"/etc/default/{name}:{key}"] = value.strip().strip("\"'")
    return out


def _qemu_user_default(text: str | None) -> str | None:
    if text is None:
        return None
    match = re.search(r'^#\s*user\s*=\s*"([^"@]+)"\s*$', text, re.M)
    return match.group(1) if match else None


def collect_libvirt(fs: RootFS, names: tuple[dict[int, str], dict[int, str]], uri: str | None = None) -> LibvirtFacts:
    installed = fs.exists("/etc/libvirt")
    configs: dict[str, LibvirtConfig] = {}
    qemu_text = None
    for name in CONFIG_FILES:
        config, text = _config(fs, f"/etc/libvirt/{name}")
        if name == "qemu.conf":
            qemu_text = text
        if name == "qemu.conf" or not is_missing(config.settings):
            configs[name] = config
    api = None
    api_domains: list[Maybe[Domain]] = []
    api_networks: list[Maybe[Network]] = []
    api_filters: dict[str, list[str]] = {}
    if uri or (fs.live and any(fs.exists(f"/run/libvirt/{sock}") for sock in DAEMON_SOCKETS)):
        result = libvirt_api.collect(uri or "qemu:///system")
        api, api_domains, api_networks, api_filters = result.api, result.domains, result.networks, result.nwfilters
    domains = _domains(fs, api_domains)
    snapshots = _snapshots(fs) if installed else []
    paths: dict[str, Maybe[FileNode]] = {}
    qemu_settings = configs["qemu.conf"].settings
    dump_path = effective(qemu_settings if isinstance(qemu_settings, dict) else {}, "", "auto_dump_path", QEMU_CONF_DEFAULTS).value
    for path in (*STATE_DIRS, str(dump_path)):
        node = _node(fs, path, names)
        if not is_missing(node):
            paths[path] = node
    for directory in ("/var/lib/libvirt/qemu/save", "/var/lib/libvirt/qemu/snapshot", "/var/lib/libvirt/qemu/nvram", str(dump_path)):
        listing = fs.listdir(directory)
        if isinstance(listing, Unavailable) and listing.kind == "denied":
            paths[f"{directory}/*"] = listing
        for name in (listing if isinstance(listing, list) else [])[:MAX_STATE_FILES]:
            paths.setdefault(f"{directory}/{name}", _node(fs, f"{directory}/{name}", names))
    for domain in (*domains, *(s.domain for s in snapshots if isinstance(s, DomainSnapshot))):
        if isinstance(domain, Unavailable):
            continue
        for disk in domain.disks:
            if disk.type in ("file", "block", None) and disk.source and disk.source.startswith("/"):
                paths.setdefault(disk.source, _node(fs, disk.source, names))
        if any(t.backend == "emulator" for t in domain.tpms) and domain.uuid:
            tpm_dir = f"/var/lib/libvirt/swtpm/{domain.uuid}"
            paths.setdefault(tpm_dir, _node(fs, tpm_dir, names))
            for version in ("tpm2", "tpm1.2"):
                paths.setdefault(f"{tpm_dir}/{version}", _node(fs, f"{tpm_dir}/{version}", names))
    sockets = []
    run = fs.listdir("/run/libvirt")
    for name in run if isinstance(run, list) else []:
        if "sock" in name:
            node = _node(fs, f"/run/libvirt/{name}", names)
            if isinstance(node, FileNode):
                sockets.append(node)
    daemon = configs.get("libvirtd.conf") or configs.get("virtproxyd.conf")
    daemon_settings = daemon.settings if daemon is not None and isinstance(daemon.settings, dict) else {}
    key_file = str(effective(daemon_settings, "", "key_file", LIBVIRTD_CONF_DEFAULTS).value)
    cert_file = str(effective(daemon_settings, "", "cert_file", LIBVIRTD_CONF_DEFAULTS).value)
    sasl_text = fs.read_text("/etc/sasl2/libvirt.conf", 256 * 1024)
    sasl: Maybe[list[str]]
    sasl_line: int | None = None
    if isinstance(sasl_text, Unavailable):
        sasl = sasl_text
    else:
        mechs = sasl_mech_list(sasl_text)
        sasl_line = next((n for n, line in enumerate(sasl_text.splitlines(), 1)
                          if line.partition(":")[1] and line.partition(":")[0].strip() == "mech_list"), None)
        sasl = mechs if mechs is not None else Unavailable("/etc/sasl2/libvirt.conf", "invalid", "no mech_list: every mechanism the SASL library has is allowed")
    pid_files = pidfiles(fs)
    from_system_daemon = api is not None and api.connected and api.uri == SYSTEM_URI
    records = manager_records(fs, api_domains if from_system_daemon else None)
    return LibvirtFacts(
        installed=installed,
        configs=configs,
        qemu_user_default=_qemu_user_default(qemu_text),
        daemon_args=_daemon_args(fs),
        socket_units=_socket_units(fs),
        sockets=sockets,
        domains=domains,
        networks=_networks(fs, api_networks),
        nwfilters=_nwfilters(fs, api_filters),
        pools=_pools(fs),
        host_lsms=_host_lsms(fs),
        sasl_mechs=sasl,
        sasl_mech_line=sasl_line,
        snapshots=snapshots,
        polkit_rules=_polkit(fs),
        tls_key=_node(fs, key_file, names),
        tls_cert=_certificate(fs, cert_file),
        paths=paths,
        processes=_processes(fs, records),
        pidfiles=pid_files,
        api=api,
    )

