"""Collecting ESXi offline: an ESXi host's /etc/vmware (esx.conf, hostd/config.xml, config,
settings) and .vmx files under the root (`vmfs/volumes/<datastore>/<vm>/<vm>.vmx`, or anywhere
in an offline copy); and, when endpoints are named, the vSphere API (api.py).

Every read goes through RootFS (bounded, resolved inside the root, non-blocking); every failure
is an Unavailable naming the path, never an exception.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

from ...collect.fs import RootFS
from ...collect.fs import read_fd
from ...model import Unavailable
from . import builds, parsers
from .builds import BOOT_BUILD
from .facts import EsxiFacts, EsxiHost, EsxiVm, PortGroup, SecurityPolicy, VSwitch
from .vmx import vm_from_vmx

ESX_CONF = "/etc/vmware/esx.conf"
HOSTD_CONFIG = "/etc/vmware/hostd/config.xml"
VM_CONFIG = "/etc/vmware/config"
VM_SETTINGS = "/etc/vmware/settings"
#: the boot bank's boot loader configuration; esximage writes the running image's version there
#: (`build=8.0.3-0.70.24674464`); /bootbank is the bank the host booted from
BOOT_CFG = "/bootbank/boot.cfg"
VOLUMES = "/vmfs/volumes"
VMX_LIMIT = 4 * 1024 * 1024
#: an offline copy is walked for .vmx files at most this deep and this wide
WALK_DEPTH = 12
WALK_ENTRIES = 400_000


def detect(fs: RootFS) -> bool:
    if any(fs.exists(p) for p in (ESX_CONF, HOSTD_CONFIG, VOLUMES)):
        return True
    return _walks(fs) and bool(find_vmx(fs, first_only=True))


def _walks(fs: RootFS) -> bool:
    """Whether the whole tree is searched for .vmx files: only an offline copy that is not an
    operating system's root (a datastore copy, a backup folder). A Linux image is audited as
    Linux; walking its million files for a stray .vmx would slow every offline scan."""
    return not fs.live and not any(fs.exists(p) for p in ("/etc/os-release", "/usr/lib/os-release", "/etc/debian_version"))


def find_vmx(fs: RootFS, first_only: bool = False) -> list[str]:
    """.vmx paths as the audited host names them: the datastores first (their names are usually
    symlinks to the volume UUIDs: each datastore is listed once, by its real directory), then, on
    an offline copy, the rest of the tree without following symbolic links."""
    return [path for path, _local in _find_vmx(fs, first_only)]


def _find_vmx(fs: RootFS, first_only: bool = False) -> list[tuple[str, str | None]]:
    """(audited path, local path): the local path is set where the file and every directory
    above it were reached without a symbolic link below a resolved directory, so it can be
    opened directly (O_NOFOLLOW); None means read it through RootFS."""
    found: list[tuple[str, str | None]] = []
    seen_dirs: set[str] = set()
    volumes = fs.listdir(VOLUMES)
    if isinstance(volumes, list):
        for ds in volumes:
            try:
                local_ds = fs.local_path(f"{VOLUMES}/{ds}")
            except Exception:
                continue
            real = os.path.realpath(local_ds)
            if real in seen_dirs:
                continue
            seen_dirs.add(real)
            try:
                vm_entries = list(os.scandir(local_ds))
            except OSError:
                continue
            for vm in sorted(vm_entries, key=lambda e: e.name):
                try:
                    if vm.is_symlink():
                        files = fs.listdir(f"{VOLUMES}/{ds}/{vm.name}")
                        names: list[tuple[str, str | None]] = [(n, None) for n in files] if isinstance(files, list) else []
                    elif vm.is_dir(follow_symlinks=False):
                        names = [(e.name, e.path) for e in os.scandir(vm.path)
                                 if not e.is_symlink() and e.is_file(follow_symlinks=False)]
                    else:
                        continue
                except OSError:
                    continue
                for name, local in sorted(names):
                    if name.lower().endswith(".vmx"):
                        found.append((f"{VOLUMES}/{ds}/{vm.name}/{name}", local))
                        if first_only:
                            return found
    if not _walks(fs):
        return found
    root = fs.root
    volumes_local = os.path.join(root, VOLUMES.lstrip("/"))
    seen = 0
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > WALK_ENTRIES:
                return found
            try:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    rel = os.path.relpath(entry.path, root)
                    if depth < WALK_DEPTH and rel not in ("proc", "sys", "dev", "run") and entry.path != volumes_local \
                            and os.path.realpath(entry.path) not in seen_dirs:
                        stack.append((entry.path, depth + 1))
                elif entry.name.lower().endswith(".vmx") and entry.is_file(follow_symlinks=False):
                    found.append(("/" + os.path.relpath(entry.path, root), entry.path))
                    if first_only:
                        return found
            except OSError:
                continue
    return found


def _read_local(path: str, local: str | None, fs: RootFS) -> bytes | Unavailable:
    if local is None:
        return fs.read_bytes(path, VMX_LIMIT)
    try:
        fd = os.open(local, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW)
    except OSError:
        return fs.read_bytes(path, VMX_LIMIT)
    return read_fd(fd, path, VMX_LIMIT)


def read_vm(fs: RootFS, path: str, local: str | None = None) -> EsxiVm | Unavailable:
    data = _read_local(path, local, fs)
    if isinstance(data, Unavailable):
        return data
    try:
        parsed = parsers.parse_dictionary(data)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))
    return vm_from_vmx(parsed, path)


def _dictionary(fs: RootFS, path: str) -> parsers.Dictionary | Unavailable:
    data = fs.read_bytes(path, VMX_LIMIT)
    if isinstance(data, Unavailable):
        return data
    try:
        return parsers.parse_dictionary(data)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))


def host_from_files(fs: RootFS) -> EsxiHost | None:
    """The host whose /etc/vmware this root holds, or None when it holds none (only .vmx)."""
    if not (fs.exists(ESX_CONF) or fs.exists(HOSTD_CONFIG)):
        return None
    advanced: dict[str, str] = {}
    problems: list[Unavailable] = []
    esx = _dictionary(fs, ESX_CONF)
    if isinstance(esx, Unavailable):
        if esx.kind != "missing":
            problems.append(esx)
    else:
        advanced.update(parsers.adv_settings(esx))
    hostd = fs.read_text(HOSTD_CONFIG, VMX_LIMIT)
    if isinstance(hostd, Unavailable):
        if hostd.kind != "missing":
            problems.append(hostd)
    else:
        try:
            advanced.update(parsers.parse_hostd_config(hostd))
        except parsers.ParseError as exc:
            problems.append(Unavailable(HOSTD_CONFIG, "invalid", str(exc)))

    def api_only(what: str) -> Unavailable:
        return Unavailable("/etc/vmware", "missing", f"the offline files do not hold {what}: scan the host with --vsphere")

    name = advanced.get("Misc.HostName") or _hostname(fs)
    version, build, boot_note = _boot_build(fs)
    vswitches, portgroups = _network(esx if isinstance(esx, parsers.Dictionary) else None, api_only)
    settings = _dictionary(fs, VM_SETTINGS)
    size_st = fs.stat(VM_SETTINGS)
    config = _dictionary(fs, VM_CONFIG)

    return EsxiHost(
        name=name,
        origin=fs.root,
        source="files",
        vcenter=None,
        cluster=None,
        version=version,
        build=build,
        advanced=problems[0] if problems and not advanced else advanced,
        services=api_only("service state (running, startup policy)"),
        lockdown=api_only("lockdown mode"),
        lockdown_exceptions=api_only("the lockdown exception users"),
        firewall_enabled=api_only("the firewall state"),
        firewall_default_allow=api_only("the firewall default policy"),
        rulesets=api_only("the firewall rulesets"),
        vswitches=vswitches,
        portgroups=portgroups,
        acceptance=api_only("the image acceptance level"),
        secure_boot=api_only("the host's Secure Boot state"),
        vm_overrides=settings.values if isinstance(settings, parsers.Dictionary) else settings,
        vm_overrides_size=size_st.st_size if not isinstance(size_st, Unavailable) else None,
        host_config=config.values if isinstance(config, parsers.Dictionary) else config,
        ntp_servers=api_only("the NTP configuration"),
        build_note=boot_note,
        snmp=api_only("the SNMP agent configuration"),
    )


def _boot_build(fs: RootFS) -> tuple[str | None, str | None, str | None]:
    """(version, build, why not) from boot.cfg's `build=` line: ESXi 7 and 8 write
    `build=<version>-<quarter>.<patch>.<build>` (Broadcom KB 395110's format)."""
    text = fs.read_text(BOOT_CFG, 256 * 1024)
    if isinstance(text, Unavailable):
        why = "not found" if text.kind == "missing" else text.reason
        return None, None, f"{BOOT_CFG} {why}: the offline tree does not say which ESXi build it is"
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("build="):
            match = BOOT_BUILD.match(line[len("build="):].strip())
            if match is None:
                return None, None, f"{BOOT_CFG}: build= line {line[6:46]!r} is not <version>-<n>.<n>.<build>"
            return match.group(1), match.group(2), None
    return None, None, f"{BOOT_CFG} has no build= line (ESXi 6.x and older boot banks do not write one)"


#: esx.conf's standard vSwitch keys, as ESXi writes them (`grep security /etc/vmware/esx.conf`):
#: /net/vswitch/child[0000]/name, .../securityPolicy/{promiscuous,macChange,forgedTx} and the
#: port groups below it, .../portgroup/child[0000]/{name,vlanId}
_VSWITCH = re.compile(r"^/net/vswitch/child\[(\d{1,4})\]/(.+)$")
_PORTGROUP = re.compile(r"^portgroup/child\[(\d{1,4})\]/(name|vlanid)$")


def _network(esx: parsers.Dictionary | None, api_only: Callable[[str], Unavailable]
             ) -> tuple[list[VSwitch] | Unavailable, list[PortGroup] | Unavailable]:
    """Standard vSwitches and their port groups from esx.conf. A port group's own security
    override is not read offline (no source shows its esx.conf key), so port groups carry no
    policy here and the switch's policy is judged; nor which port groups carry a VMkernel adapter
    (HV-NET-103 judges every port group offline). Without any /net/vswitch entry (ESXi 7.0 U2
    and later keep networking in ConfigStore) both stay API-only."""
    if esx is None:
        return api_only("the vSwitch security policy"), api_only("the port groups")
    switches: dict[str, dict[str, str]] = {}
    groups: dict[tuple[str, str], dict[str, str]] = {}
    for key, value in esx.values.items():
        match = _VSWITCH.match(key)
        if match is None:
            continue
        index, rest = match.groups()
        switches.setdefault(index, {})[rest] = value
        pg = _PORTGROUP.match(rest)
        if pg is not None:
            groups.setdefault((index, pg.group(1)), {})[pg.group(2)] = value
    if not switches:
        return (api_only("the vSwitch security policy (esx.conf has no /net/vswitch entries)"),
                api_only("the port groups (esx.conf has no /net/vswitch entries)"))
    out_switches = []
    names: dict[str, str] = {}
    for index, keys in sorted(switches.items()):
        name = keys.get("name") or f"vswitch child[{index}]"
        names[index] = name
        policy = [parsers.is_true(keys.get(f"securitypolicy/{k}")) for k in ("promiscuous", "macchange", "forgedtx")]
        if None in policy:
            missing = Unavailable(ESX_CONF, "missing", f"esx.conf gives no (or no true/false) securityPolicy promiscuous/macChange/forgedTx "
                                                      f"for {name[:40]}: scan the host with --vsphere")
            return missing, missing
        out_switches.append(VSwitch(name, SecurityPolicy(*policy)))
    out_groups = []
    for (index, _pg), keys in sorted(groups.items()):
        vlan = keys.get("vlanid")
        out_groups.append(PortGroup(keys.get("name") or "?", names[index],
                                    int(vlan) if vlan is not None and vlan.strip().isdigit() else None,
                                    SecurityPolicy(None, None, None)))
    return out_switches, out_groups


def _hostname(fs: RootFS) -> str:
    text = fs.read_line("/etc/hostname", 256)
    if isinstance(text, str) and text:
        return text
    return os.path.basename(fs.root.rstrip("/")) or "esxi"


def collect_files(fs: RootFS) -> tuple[list[EsxiHost], list[EsxiVm | Unavailable]]:
    host = host_from_files(fs)
    vms: list[EsxiVm | Unavailable] = [read_vm(fs, path, local) for path, local in _find_vmx(fs)]
    return ([host] if host else []), vms


def collect(fs: RootFS | None, endpoints: list[str], settings: object = None, now: int | None = None) -> EsxiFacts:
    collected_at = int(time.time()) if now is None else now
    hosts: list[EsxiHost] = []
    vms: list[EsxiVm | Unavailable] = []
    errors: list[Unavailable | str] = []
    notes: list[str] = []
    sources = []
    framework = getattr(settings, "framework", None) or "stig"
    if fs is not None and detect(fs):
        h, v = collect_files(fs)
        hosts += h
        vms += v
        sources.append("files")
    if endpoints:
        from .api import collect_endpoint

        for endpoint in endpoints:
            result = collect_endpoint(endpoint, settings)
            hosts += result.hosts
            vms += result.vms
            errors += result.errors
            notes += result.notes
        sources.append("api")
    return EsxiFacts(
        source="+".join(sources) or "none",
        collected_at=collected_at,
        endpoints=list(endpoints),
        hosts=hosts,
        vms=list(vms),
        errors=list(errors),
        notes=notes,
        framework=framework,
        build_table=builds.load(),
    )
