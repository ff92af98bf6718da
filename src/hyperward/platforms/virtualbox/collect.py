"""Collecting VirtualBox: the installation (/etc/vbox/vbox.cfg, the install directory, its
ExtensionPacks/*/ExtPack.xml), the web service's /etc/default/virtualbox, every home's
~/.config/VirtualBox/VirtualBox.xml and legacy ~/.VirtualBox/VirtualBox.xml (homes from the
root's /etc/passwd, plus /root) with the machines their MachineRegistry names, and a copied
VirtualBox home given with --vbox-home.

Every read goes through RootFS (bounded, resolved inside the audited root, regular files only);
a --vbox-home copy is read through a RootFS of its own, so its symlinks never leave it. A machine
file that cannot be read or parsed becomes an Unavailable naming it, the other machines still
load. Machines run as their user, so on a live host the running ones are found from the VM
processes (VBoxHeadless, VirtualBoxVM ... --startvm) for every user, and VBoxManage (when it is
on the system path) adds the scanning user's own.
"""

from __future__ import annotations

import os
import re
import stat

from ...collect.fs import RootFS
from ...model import Unavailable
from ..base import Source
from . import parsers, security
from .detect import INSTALL_DIRS, VBOX_CFG, _vbox_dirs
from .facts import (
    ExtPackInfo,
    FileMode,
    GlobalSettings,
    Medium,
    RegistryEntry,
    VBoxHome,
    VBoxMachine,
    VirtualBoxFacts,
)

GLOBAL_LIMIT = 16 * 1024 * 1024
#: real machine files are tens of kilobytes; a bound also caps the pure-Python parse of a hostile one
MACHINE_LIMIT = 4 * 1024 * 1024
SMALL_LIMIT = 256 * 1024
WEBSRV_DEFAULTS = "/etc/default/virtualbox"
VM_PROGRAMS = ("VBoxHeadless", "VirtualBoxVM", "VirtualBox", "VBoxSDL")
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]|^\\\\")


def _install_dir(fs: RootFS, cfg: dict[str, str]) -> str | None:
    named = cfg.get("INSTALL_DIR")
    for path in ((named,) if named else ()) + INSTALL_DIRS:
        if path and path.startswith("/") and fs.exists(path):
            return path.rstrip("/")
    return None


def _file_mode(fs: RootFS, path: str, users: dict[int, str]) -> FileMode | None:
    st = fs.stat(path)
    if isinstance(st, Unavailable):
        return None
    return FileMode(path, stat.S_IMODE(st.st_mode), st.st_uid, users.get(st.st_uid))


def _cfg(fs: RootFS) -> dict[str, str]:
    text = fs.read_text(VBOX_CFG, SMALL_LIMIT)
    if isinstance(text, Unavailable):
        return {}
    try:
        return parsers.parse_shell_defaults(text, "INSTALL_")
    except parsers.ParseError:
        return {}


def _ext_packs(fs: RootFS, install_dir: str | None) -> list[ExtPackInfo | Unavailable] | Unavailable:
    if install_dir is None:
        return Unavailable("/usr/lib/virtualbox", "missing", "VirtualBox is not installed on this root")
    base = f"{install_dir}/ExtensionPacks"
    names = fs.listdir(base)
    if isinstance(names, Unavailable):
        return [] if names.kind == "missing" else names
    out: list[ExtPackInfo | Unavailable] = []
    for name in names:
        path = f"{base}/{name}/ExtPack.xml"
        if not fs.exists(path):
            continue
        text = fs.read_text(path, SMALL_LIMIT)
        if isinstance(text, Unavailable):
            out.append(text)
            continue
        try:
            out.append(parsers.parse_extpack(text, path))
        except parsers.ParseError as exc:
            out.append(Unavailable(path, "invalid", str(exc)))
    return out


def _websrv(fs: RootFS) -> dict[str, str] | Unavailable:
    text = fs.read_text(WEBSRV_DEFAULTS, SMALL_LIMIT)
    if isinstance(text, Unavailable):
        return text
    try:
        return parsers.parse_shell_defaults(text, "VBOXWEB_")
    except parsers.ParseError as exc:
        return Unavailable(WEBSRV_DEFAULTS, "invalid", str(exc))


def _candidates(src: str, home: str, copy: bool) -> list[str]:
    """Where a registry entry's file is. Relative entries are relative to the VirtualBox home; a
    copied home (another OS: C:\\Users\\x\\VirtualBox VMs\\vm\\vm.vbox, /Users/x/...) is searched
    for the entry's last two components beside its VirtualBox.xml and in a "VirtualBox VMs" folder."""
    windows = bool(_WINDOWS_PATH.match(src)) or "\\" in src
    norm = src.replace("\\", "/") if windows else src
    out = []
    if not windows:
        out.append(norm if norm.startswith("/") else f"{home.rstrip('/')}/{norm}")
    if copy and (windows or norm.startswith("/")):
        parts = [p for p in norm.split("/") if p]
        tail = "/".join(parts[-2:])
        out += [f"/{tail}", f"/VirtualBox VMs/{tail}", f"/Machines/{tail}"]
    return out


def _machine(fs: RootFS, path: str, registered: bool, media: list[Medium], users: dict[int, str],
             st: os.stat_result | None = None) -> VBoxMachine | Unavailable:
    text = fs.read_text(path, MACHINE_LIMIT)
    if isinstance(text, Unavailable):
        return text
    try:
        uuid, name, config, snapshots = parsers.parse_machine_snapshots(text, path, os.path.dirname(path), media)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))
    mode = FileMode(path, stat.S_IMODE(st.st_mode), st.st_uid, users.get(st.st_uid)) if st else _file_mode(fs, path, users)
    return VBoxMachine(path, uuid, name, registered, config, mode, _file_mode(fs, os.path.dirname(path), users), snapshots)


def _absolute_media(media: list[Medium], home: str) -> list[Medium]:
    out = []
    for m in media:
        location = m.location
        if location and not location.startswith("/") and not _WINDOWS_PATH.match(location):
            location = f"{home.rstrip('/')}/{location}"
        out.append(Medium(m.uuid, location, m.format, m.medium_type, m.encrypted, m.parent))
    return out


def _unregistered(fs: RootFS, seen: set[str]) -> list[str]:
    """*.vbox files of a copied home not named by its registry (its folder holds machine folders,
    or a "VirtualBox VMs" folder does); .vbox-prev and .vbox-tmp are VirtualBox's backups."""
    found = []
    for base in ("", "/VirtualBox VMs", "/Machines"):
        names = fs.listdir(base or "/")
        if isinstance(names, Unavailable):
            continue
        for name in names:
            folder = f"{base}/{name}"
            entries = fs.listdir(folder)
            if isinstance(entries, Unavailable):
                continue
            for entry in entries:
                path = f"{folder}/{entry}"
                if entry.endswith(".vbox") and path not in seen:
                    seen.add(path)
                    found.append(path)
    return found


def _home(fs: RootFS, path: str, kind: str, user: str | None, uid: int | None, users: dict[int, str]) -> VBoxHome:
    copy = kind == "vbox-home"
    global_path = f"{path.rstrip('/')}/VirtualBox.xml"
    machines: list[VBoxMachine | Unavailable] = []
    missing: list[RegistryEntry] = []
    parsed: GlobalSettings | Unavailable
    text = fs.read_text(global_path, GLOBAL_LIMIT)
    if isinstance(text, Unavailable):
        parsed = text
    else:
        try:
            parsed = parsers.parse_global(text, global_path)
        except parsers.ParseError as exc:
            parsed = Unavailable(global_path, "invalid", str(exc))
    seen: set[str] = set()
    if isinstance(parsed, GlobalSettings):
        media = _absolute_media(parsed.media, path)
        for entry in parsed.machines:
            found, st = None, None
            for candidate in _candidates(entry.src, path, copy):
                got = fs.stat(candidate)
                if not isinstance(got, Unavailable):
                    found, st = candidate, got
                    break
                if got.kind != "missing":
                    found = candidate
                    break
            if found is None:
                missing.append(entry)
                continue
            if found in seen:
                continue
            seen.add(found)
            machines.append(_machine(fs, found, True, media, users, st))
    if copy:
        for extra in _unregistered(fs, seen):
            machines.append(_machine(fs, extra, False, [], users))
    return VBoxHome(path, kind, user, uid, parsed, _file_mode(fs, global_path, users) if not copy else None, machines, missing,
                    _file_mode(fs, path, users) if not copy else None)


def _running(fs: RootFS) -> tuple[list[str] | None, str, list[str]]:
    """UUIDs or names given to --startvm by the VM processes of every user, plus VBoxManage's
    answer for the scanning user's own machines (VBoxManage list runningvms: "name" {uuid})."""
    from ...collect import commands

    notes: list[str] = []
    found: set[str] = set()
    pids = fs.listdir("/proc")
    sources = []
    if isinstance(pids, list):
        sources.append("VM processes")
        for pid in pids:
            if not pid.isdigit():
                continue
            raw = fs.read_bytes(f"/proc/{pid}/cmdline", 64 * 1024)
            if not isinstance(raw, bytes) or not raw:
                continue
            args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
            if not args or os.path.basename(args[0]) not in VM_PROGRAMS:
                continue
            for opt, value in zip(args, args[1:]):
                if opt in ("--startvm", "-startvm", "-s"):
                    found.add(value.strip("{}").lower())
    vboxmanage = commands.find("VBoxManage")
    if vboxmanage:
        out = commands.run([vboxmanage, "list", "runningvms"], "VBoxManage list runningvms", timeout=15)
        if isinstance(out, Unavailable):
            notes.append(f"VirtualBox: {out.describe()}; running machines taken from the VM processes only")
        else:
            sources.append("VBoxManage")
            found.update(parsers.parse_running_vms(out))
    if not sources:
        return None, "", notes
    return sorted(found), " + ".join(sources), notes


def collect(source: Source) -> VirtualBoxFacts:
    fs = source.fs
    users = source.id_names[0]
    notes: list[str] = []
    homes: list[VBoxHome] = []
    install_dir, cfg_version = None, None
    ext_packs: list[ExtPackInfo | Unavailable] | Unavailable = Unavailable("/usr/lib/virtualbox", "missing", "no root filesystem")
    websrv: dict[str, str] | Unavailable = Unavailable(WEBSRV_DEFAULTS, "missing", "no root filesystem")
    running: list[str] | None = None
    running_source = ""
    if fs is not None:
        cfg = _cfg(fs)
        cfg_version = cfg.get("INSTALL_VER") or None
        install_dir = _install_dir(fs, cfg)
        ext_packs = _ext_packs(fs, install_dir)
        websrv = _websrv(fs)
        denied: list[str] = []
        for path, kind, user, uid in _vbox_dirs(fs, denied):
            homes.append(_home(fs, path, kind, user, uid, users))
        if denied:
            shown = ", ".join(denied[:5]) + (f" and {len(denied) - 5} more" if len(denied) > 5 else "")
            notes.append(f"VirtualBox: {len(denied)} home director{'y' if len(denied) == 1 else 'ies'} could not be searched "
                         f"for a VirtualBox.xml (permission denied: {shown}); run as root to audit them")
        if fs.live:
            running, running_source, more = _running(fs)
            notes.extend(more)
    copy = source.endpoints.get("virtualbox")
    if copy:
        if not os.path.isdir(copy):
            homes.append(VBoxHome(copy, "vbox-home", None, None, Unavailable(copy, "missing", "--vbox-home: no such directory"),
                                  None, [], []))
        else:
            home = _home(RootFS(copy), "/", "vbox-home", None, None, {})
            homes.append(_relabel(home, os.path.realpath(copy)))
    marked = source.settings.get("virtualbox")
    sensitive = [str(v) for v in getattr(marked, "sensitive", None) or []]
    return VirtualBoxFacts(installed=install_dir is not None, install_dir=install_dir, cfg_version=cfg_version,
                           ext_packs=ext_packs, websrv=websrv, homes=homes, running=running,
                           running_source=running_source, notes=notes, sensitive=sensitive,
                           sensitive_source=getattr(marked, "source", None) if sensitive else None, security_table=security.load())


def _relabel(home: VBoxHome, real: str) -> VBoxHome:
    """Paths inside a --vbox-home copy as this machine sees them (its RootFS reads them as /...)."""
    import dataclasses

    def fix(path: str) -> str:
        return real.rstrip("/") + path if path.startswith("/") else path

    def fix_u(u: Unavailable) -> Unavailable:
        return Unavailable(fix(u.path), u.kind, u.reason)

    machines: list[VBoxMachine | Unavailable] = []
    for m in home.machines:
        if isinstance(m, Unavailable):
            machines.append(fix_u(m))
        else:
            config = m.config
            if config is not None:
                # media were resolved inside the copy, as its own RootFS sees it
                disks = [dataclasses.replace(d, location=fix(d.location) if d.location else d.location,
                                             parents=[fix(p) for p in d.parents]) for d in config.disks]
                config = dataclasses.replace(config, disks=disks)
            machines.append(dataclasses.replace(m, path=fix(m.path), file=None, folder=None, config=config))
    glob = home.global_file
    glob = fix_u(glob) if isinstance(glob, Unavailable) else dataclasses.replace(glob, path=fix(glob.path))
    return dataclasses.replace(home, path=real, global_file=glob, machines=machines)
