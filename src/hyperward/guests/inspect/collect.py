"""Scan inside the guests from their disks: no agent in the guest, nothing written to its disks.

For each guest: its disks are checked (images.py) and put into one shared appliance
(appliance.py); its root filesystem is found and mounted read-only; the non-secret files the
host collectors already understand (os-release, dpkg status, the rpm database, apt's lists and
sources, sshd_config, PAM, sudoers, passwd, login.defs) are copied into a private temporary tree
and read there by the same collectors the host scan uses, so a guest is judged exactly as a host
is. Secrets (shadow, private keys, cloud-init user-data, credential files) are read into memory
only, reduced to fingerprints, scan-keyed tokens and path:line references, and dropped.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import re
import secrets as _secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable

from ...collect.access import collect_access
from ...collect.fs import DEFAULT_LIMIT, MAX_SYMLINKS, RootFS
from ...collect.lifecycle import release_lifecycle, windows_lifecycle
from ...collect.packages import MAX_APK_INDEXES
from ...collect.system import collect_patching
from ...collect.vulns import collect_vulnerabilities
from ...facts import (
    AccessFacts,
    AptState,
    GuestDiskScan,
    GuestInside,
    GuestScanFacts,
    HostTrust,
    KeyRef,
    OsRelease,
    PatchingFacts,
    SecretRef,
    SshFacts,
)
from ...model import Unavailable
from ...parsers.apk import INDEX_COMPRESSED_LIMIT
from ...parsers.auth_files import shadow_schemes
from ..model import Guest
from . import keys as keymod
from .appliance import (
    ENCRYPTED_FS,
    LINK_REFUSED,
    MOUNT_OPTIONS,
    Appliance,
    EngineUnavailable,
)
from .images import Drive, Prepared, prepare
from .secrets import cloud_init_passwords, hash_tokens, hypervisor_credentials

DEFAULT_POOLS = ("/var/lib/libvirt/images", "/var/lib/vz/images", "/var/lib/vz/template/iso")
#: the files the host collectors read, by directory; (directory, pattern) pairs list a directory's files
MIRROR_FILES = ("/etc/os-release", "/usr/lib/os-release", "/etc/debian_version", "/etc/redhat-release", "/etc/alpine-release",
                "/var/lib/dpkg/status", "/etc/apt/sources.list", "/etc/apt/preferences", "/etc/apt/apt.conf",
                "/etc/ssh/sshd_config", "/etc/sudoers", "/etc/passwd", "/etc/group", "/etc/login.defs",
                "/etc/security/pwquality.conf", "/etc/dnf/automatic.conf", "/lib/apk/db/installed", "/etc/apk/repositories")
MIRROR_DIRS = ("/var/lib/apt/lists", "/etc/apt/sources.list.d", "/etc/apt/preferences.d", "/etc/apt/apt.conf.d",
               "/etc/ssh/sshd_config.d", "/etc/pam.d", "/etc/sudoers.d", "/etc/security/pwquality.conf.d",
               "/var/lib/rpm", "/usr/lib/sysimage/rpm", "/etc/apk/repositories.d")
MIRROR_LIMIT = 512 * 1024 * 1024  # all of one guest's copied files
FILE_LIMIT = 256 * 1024 * 1024
SECRET_LIMIT = 1024 * 1024
KEY_LIMIT = 64 * 1024
MAX_HOMES = 200
CLOUD_INIT = ("/var/lib/cloud/instance/user-data.txt", "/var/lib/cloud/instances/*/user-data.txt", "/var/lib/cloud/seed/*/user-data")
ETC_LIMIT = 64 * 1024 * 1024
CREDENTIAL_FILES = ("/etc/libvirt/auth.conf", "/etc/environment")
HOME_CREDENTIALS = (".config/libvirt/auth.conf", ".vmware/credstore/vicredentials.xml", ".bashrc", ".profile", ".bash_profile",
                    ".bash_history", ".zsh_history", ".zshrc", ".env", ".config/govc/env")
RUNNING_NOTE = ("the guest was running while its disks were read: files may have been caught mid-write and the journal was not "
                "replayed, so this is the on-disk state, possibly inconsistent")


@dataclasses.dataclass
class _GuestPlan:
    guest: Guest
    prepared: list[Prepared]
    indexes: list[int]
    #: appliance drive index -> the disk's source as the guest definition names it
    sources: dict[int, str] = dataclasses.field(default_factory=dict)
    #: what the results must say about disks that were opened with a caveat (a differencing
    #: image read through its base)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: this guest's LVM PVs when LVM must be limited to them (Appliance.lvm_clash)
    isolate_pvs: list[str] = dataclasses.field(default_factory=list)

    def describe(self, device: str) -> str:
        """An appliance device (/dev/sdc2) as the user knows it: the disk's source and partition."""
        match = re.fullmatch(r"/dev/sd([a-z]+)(\d*)", device)
        if not match:
            return device
        index = 0
        for letter in match.group(1):
            index = index * 26 + (ord(letter) - ord("a") + 1)
        source = self.sources.get(index - 1, device)
        return f"{source} partition {match.group(2)}" if match.group(2) else source


def _passwd_homes(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[0] and parts[5].startswith("/"):
            out.append((parts[0], parts[5].rstrip("/") or "/"))
    return out


# --- the host side --------------------------------------------------------------------------------


def _authorized_keys_file(fs: RootFS, ssh: SshFacts | Unavailable | None) -> str:
    """sshd's AuthorizedKeysFile: the first setting outside a Match block wins, as sshd reads it
    (the host's SshFacts keep only the keywords its checks judge, so the files are read again)."""
    if isinstance(ssh, SshFacts) and ssh.values.get("authorizedkeysfile"):
        return ssh.values["authorizedkeysfile"]
    from ...collect.access import SSHD_CONFIG, _directives

    directives = _directives(fs, SSHD_CONFIG, None, 0, [])
    for directive in directives if isinstance(directives, list) else []:
        if directive.keyword == "authorizedkeysfile" and directive.match is None:
            return directive.value
    return ".ssh/authorized_keys .ssh/authorized_keys2"


def _authorized_paths(value: str, user: str, home: str) -> list[str]:
    out = []
    for pattern in value.split():
        if pattern.lower() == "none":
            continue
        path = pattern.replace("%%", "\0").replace("%h", home).replace("%u", user).replace("%U", "").replace("\0", "%")
        out.append(path if path.startswith("/") else f"{home}/{path}")
    return out


def collect_host_trust(fs: RootFS, ssh: SshFacts | Unavailable | None, key: bytes) -> HostTrust:
    problems: list[Unavailable] = []
    trusted: list[KeyRef] = []
    own: list[KeyRef] = []
    passwd = fs.read_text("/etc/passwd", 16 * 1024 * 1024)
    homes = _passwd_homes(passwd) if isinstance(passwd, str) else [("root", "/root")]
    if isinstance(passwd, Unavailable) and passwd.kind != "missing":
        problems.append(passwd)
    seen: set[str] = set()
    setting = _authorized_keys_file(fs, ssh)
    files = [(user, p) for user, home in homes[:5000] for p in _authorized_paths(setting, user, home)]
    files.append(("root", "/etc/pve/priv/authorized_keys"))
    for user, path in files:
        if path in seen:
            continue
        seen.add(path)
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, Unavailable):
            if text.kind != "missing":
                problems.append(text)
            continue
        for _, blob in keymod.authorized_blobs(text):
            trusted.append(KeyRef(keymod.fingerprint(blob), keymod.blob_kind(blob), path, "authorized", user))
    for user, home in [("root", "/root"), *homes]:
        listing = fs.listdir(f"{home}/.ssh")
        for name in listing if isinstance(listing, list) else []:
            if name.startswith("id_") and not name.endswith(".pub"):
                own.extend(_host_key_refs(fs, f"{home}/.ssh/{name}", "user", user))
    listing = fs.listdir("/etc/ssh")
    for name in listing if isinstance(listing, list) else []:
        if name.startswith("ssh_host_") and name.endswith("_key"):
            own.extend(_host_key_refs(fs, f"/etc/ssh/{name}", "host", "root"))
    shadow = fs.read_text("/etc/shadow", 16 * 1024 * 1024)
    hashes = hash_tokens(shadow, key) if isinstance(shadow, str) else []
    if isinstance(shadow, Unavailable) and shadow.kind != "missing":
        problems.append(shadow)
    unique = {(k.fingerprint, k.path): k for k in own}
    return HostTrust(trusted, list(unique.values()), hashes, problems)


def _host_key_refs(fs: RootFS, path: str, role: str, owner: str) -> list[KeyRef]:
    """The public half beside the key when there is one (no secret read), else the private file."""
    pub = fs.read_text(path + ".pub", KEY_LIMIT)
    blobs = [b for _, b in keymod.authorized_blobs(pub)] if isinstance(pub, str) else []
    if not blobs:
        data = fs.read_bytes(path, KEY_LIMIT)
        blobs = keymod.private_key_blobs(data) if isinstance(data, bytes) else []
    return [KeyRef(keymod.fingerprint(b), keymod.blob_kind(b), path, role, owner) for b in blobs]


# --- Proxmox volumes --------------------------------------------------------------------------------


def proxmox_storages(fs: RootFS) -> dict[str, tuple[str, dict[str, str]]]:
    from ...platforms.proxmox.parsers import parse_section_config

    text = fs.read_text("/etc/pve/storage.cfg", 1024 * 1024)
    if not isinstance(text, str):
        return {"local": ("dir", {"path": "/var/lib/vz"})}
    try:
        return {sid: (kind, props) for kind, sid, props in parse_section_config(text)}
    except ValueError:
        return {}


def proxmox_path(volume: str, storages: dict[str, tuple[str, dict[str, str]]]) -> tuple[str | None, str | None, str]:
    """(path, format, why-not) of a Proxmox volume ID as PVE::Storage maps it."""
    if volume.startswith("/"):
        return volume, None, ""
    sid, sep, name = volume.partition(":")
    if not sep or sid not in storages:
        return None, None, f"storage {sid!r} is not in /etc/pve/storage.cfg"
    kind, props = storages[sid]
    fmt = "qcow2" if name.endswith(".qcow2") else "vmdk" if name.endswith(".vmdk") else "raw"
    if kind in ("dir", "nfs", "cifs", "glusterfs", "cephfs", "btrfs"):
        base = props.get("path") or f"/mnt/pve/{sid}"
        if name.startswith("iso/"):
            return f"{base}/template/iso/{name[4:]}", "raw", ""
        if "/" not in name:
            match = re.match(r"(?:vm|base)-(\d+)-", name)
            if not match:
                return None, None, f"volume {name!r} names no VMID"
            name = f"{match.group(1)}/{name}"
        return f"{base}/images/{name}", fmt, ""
    if kind in ("lvm", "lvmthin") and props.get("vgname"):
        return f"/dev/{props['vgname']}/{name}", "raw", ""
    if kind == "zfspool" and props.get("pool"):
        return f"/dev/zvol/{props['pool']}/{name}", "raw", ""
    return None, None, f"{kind} storage {sid!r} is not read from the host's files"


# --- the guests ------------------------------------------------------------------------------------


def _plan(fs: RootFS, guests: list[Guest], pools: list[str]) -> tuple[list[_GuestPlan], list[Drive]]:
    storages = proxmox_storages(fs) if any(g.platform == "proxmox" for g in guests) else {}
    pve_pools = [p.get("path", "") + "/images" for kind, p in storages.values() if p.get("path")] + \
                [p.get("path", "") + "/template/iso" for kind, p in storages.values() if p.get("path")]
    drives: list[Drive] = []
    index: dict[str, int] = {}
    plans = []
    for guest in guests:
        prepared, indexes = [], []
        for disk in guest.disks:
            source = disk.source
            if guest.platform == "proxmox" and source and not disk.network:
                path, fmt, why = proxmox_path(source, storages)
                if path is None:
                    prepared.append(Prepared(GuestDiskScan(source, disk.target, disk.device, "not-applicable", why)))
                    continue
                disk = dataclasses.replace(disk, format=disk.format or fmt)
                source = path
            p = prepare(fs, disk, [*pools, *pve_pools], source, guest.disk_dirs or None)
            prepared.append(p)
            if p.drive is not None:
                key = p.drive.path
                if key not in index:
                    index[key] = len(drives)
                    drives.append(p.drive)
                indexes.append(index[key])
        plan = _GuestPlan(guest, prepared, indexes, notes=[f"{p.scan.source}: {p.scan.reason}" for p in prepared
                                                          if p.drive is not None and p.scan.reason])
        plan.sources = {i: p.scan.source for i, p in zip(indexes, [p for p in prepared if p.drive is not None])}
        plans.append(plan)
    return plans, drives


#: appliances started side by side for a large scan (each boots its own kernel; under TCG the
#: boot is the largest cost, and two boots on two cores overlap)
MAX_APPLIANCES = 2
GUESTS_PER_EXTRA_APPLIANCE = 6


def scan_guests(fs: RootFS, guests: Iterable[Guest], host_ssh: SshFacts | Unavailable | None, vulndb: str | None = None,
                vulndb_max_age_days: int | None = None, pools: list[str] | None = None,
                appliances: int | None = None) -> GuestScanFacts:
    """`appliances`: how many appliances share the guests (default: one per
    GUESTS_PER_EXTRA_APPLIANCE guests, at most MAX_APPLIANCES and the CPU count)."""
    started = time.perf_counter()
    key = _secrets.token_bytes(32)
    host = collect_host_trust(fs, host_ssh, key)
    chosen = list(guests)
    count = appliances or max(1, min(MAX_APPLIANCES, os.cpu_count() or 1, len(chosen) // GUESTS_PER_EXTRA_APPLIANCE))
    groups = [chosen[i::count] for i in range(count)]
    results: list[tuple[list[GuestInside], list[str], float, str]] = [([], [], 0.0, "libguestfs")] * count
    every_pool = [*(pools or []), *DEFAULT_POOLS]

    def run(slot: int) -> None:
        results[slot] = _scan_group(fs, groups[slot], every_pool, key, vulndb, vulndb_max_age_days)

    if count == 1:
        run(0)
    else:
        workers = [threading.Thread(target=run, args=(slot,), name=f"hyperward-appliance-{slot}", daemon=True) for slot in range(count)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    by_guest = {id(inside_guest): inside for group, (insides, _, _, _) in zip(groups, results)
                for inside_guest, inside in zip(group, insides)}
    insides = [by_guest[id(g)] for g in chosen if id(g) in by_guest]
    problems = list(dict.fromkeys(p for _, probs, _, _ in results for p in probs))
    engine = next((e for _, _, _, e in results if e != "libguestfs"), "libguestfs")
    launch_s = max((launch for _, _, launch, _ in results), default=0.0)
    if count > 1:
        engine += f", {count} appliances"
    return GuestScanFacts(engine, round(launch_s, 2), round(time.perf_counter() - started, 2), insides, host, problems)


def _scan_group(fs: RootFS, guests: list[Guest], pools: list[str], key: bytes, vulndb: str | None,
                max_age: int | None) -> tuple[list[GuestInside], list[str], float, str]:
    """One appliance's share: its guests' drives, launched once, each guest read in turn."""
    plans, drives = _plan(fs, guests, pools)
    problems: list[str] = []
    appliance: Appliance | None = None
    engine = "libguestfs"
    if drives:
        appliance = Appliance(drives)
        try:
            appliance.launch()
            engine = "libguestfs (direct backend, TCG)" if appliance.tcg else "libguestfs (direct backend)"
        except EngineUnavailable as exc:
            problems.append(str(exc))
            appliance = None
    by_plan: dict[int, GuestInside] = {}
    try:
        order = list(plans)
        if appliance is not None:
            try:
                order = _isolate_clashes(appliance, plans)
            except RuntimeError as exc:
                problems.append(f"LVM physical volumes could not be listed: {str(exc)[:200]}")
        for plan in order:
            try:
                by_plan[id(plan)] = _scan_one(plan, appliance, problems, key, vulndb, max_age)
            except RuntimeError as exc:  # the appliance died or a call failed in a way not foreseen: this guest only
                disks = [p.scan for p in plan.prepared]
                by_plan[id(plan)] = _empty(plan.guest, disks, f"the appliance failed while reading this guest: {str(exc)[:200]}")
        insides = [by_plan[id(plan)] for plan in plans]
    finally:
        launch_s = appliance.launch_s if appliance is not None else 0.0
        if appliance is not None:
            appliance.close()
    return insides, problems, launch_s, engine


def _isolate_clashes(appliance: Appliance, plans: list[_GuestPlan]) -> list[_GuestPlan]:
    """The order to read the guests in: when LVM sees one PV UUID on two devices or one VG name
    twice, every guest with LVM is read last, each with LVM limited to its own PVs (switching
    the filter deactivates the other guests' LVs), and a PV UUID on another guest's disk is
    named as what it is: a block-level copy of one disk."""
    if not appliance.lvm_clash():
        return list(plans)
    pvs = appliance.physical_volumes()
    owners: dict[str, list[tuple[str, _GuestPlan]]] = {}
    for plan in plans:
        plan.isolate_pvs = appliance.own_pvs(plan.indexes)
        for dev in plan.isolate_pvs:
            owners.setdefault(pvs[dev], []).append((dev, plan))
    for plan in plans:
        if not plan.isolate_pvs:
            continue
        # another device with this PV UUID (one image attached to two guests is one device, not a clone)
        copies = [(dev, o) for mine in plan.isolate_pvs for dev, o in owners[pvs[mine]] if dev not in plan.isolate_pvs]
        others = list(dict.fromkeys(o.guest.label for _, o in copies))
        if others:
            shared = sorted({pvs[dev] for dev, _ in copies})
            plan.notes.append(f"its LVM physical volume {', '.join(shared)} is also on the disks of {', '.join(others)}: block-level "
                              "copies of one disk (cloned images); read with LVM limited to this guest's own disks")
        else:
            plan.notes.append("the guests of this scan hold LVM volume groups of one name: read with LVM limited to this "
                              "guest's own disks")
    return [p for p in plans if not p.isolate_pvs] + [p for p in plans if p.isolate_pvs]


def _empty(guest: Guest, disks: list[GuestDiskScan], reason: str, fss: list[str] | None = None,
           notes: list[str] | None = None) -> GuestInside:
    return GuestInside(guest.platform, guest.id, guest.name, guest.label, False, reason, guest.running, disks, fss or [],
                       Unavailable("/etc/os-release", "missing", reason), None, None, None, [], [], [], notes or [])


def _scan_one(plan: _GuestPlan, appliance: Appliance | None, problems: list[str], key: bytes, vulndb: str | None,
              max_age: int | None) -> GuestInside:
    guest = plan.guest
    disks = [p.scan for p in plan.prepared]
    if not plan.indexes:
        reasons = sorted({f"{d.status}: {d.reason}" if d.reason else d.status for d in disks})
        return _empty(guest, disks, "; ".join(reasons) if reasons else "the guest has no disk")
    if appliance is None:
        return _empty(guest, disks, problems[0] if problems else "the libguestfs appliance is not available")
    lvs: list[str] | None = None
    if plan.isolate_pvs:
        isolated = appliance.isolate_lvm(plan.isolate_pvs)
        if isinstance(isolated, str):
            plan.notes.append(isolated)
            lvs = []
        else:
            lvs = isolated
    found = appliance.filesystems(plan.indexes, lvs)
    fs_list = [f"{kind} on {plan.describe(dev)}" for dev, kind in sorted(found.items())]
    notes = ([RUNNING_NOTE] if guest.running else []) + plan.notes
    encrypted = [dev for dev, kind in found.items() if kind in ENCRYPTED_FS]
    if encrypted:
        notes.append(f"encrypted filesystem(s) not opened: {', '.join(sorted(plan.describe(d) for d in encrypted))}")
    appliance.umount_all()
    inside: GuestInside | None = None
    root_dev: str | None = None
    windows: tuple[str, str] | None = None
    for dev, kind in sorted(found.items()):
        if kind in ("swap", "unknown", *ENCRYPTED_FS):
            continue
        with appliance.mounted(dev, kind) as failed:
            if failed:
                notes.append(failed)
                continue
            if not (appliance.is_file("/etc/passwd") or appliance.is_file("/etc/os-release") or appliance.is_file("/usr/lib/os-release")):
                # a Linux root anywhere on the guest's disks wins: a planted Windows tree on it (or
                # a second, Windows volume) cannot take the guest out of the Linux checks
                if windows is None and _windows_hive(appliance) is not None:
                    windows = (dev, kind)
                continue
            root_dev = dev
            extra = _mount_fstab(appliance, found, dev, notes)
            try:
                inside = _read_root(guest, disks, fs_list, notes, appliance, key, vulndb, max_age)
            finally:
                for where in reversed(extra):
                    try:
                        appliance.g.umount(where, lazyunmount=True)
                    except RuntimeError:
                        pass
            break
    if inside is None and windows is not None:
        dev, kind = windows
        with appliance.mounted(dev, kind) as failed:
            hive = _windows_hive(appliance) if not failed else None
            if hive is not None:
                root_dev = dev
                inside = _read_windows(guest, disks, fs_list, notes, appliance, hive, plan.describe(dev))
    seed = _seed_secrets(appliance, found, root_dev, plan)
    if inside is None:
        usable = [k for k in found.values() if k not in ("swap", "unknown")]
        if encrypted and len(encrypted) == len(usable):
            reason = "encrypted: every filesystem is encrypted; not opened"
        elif not found:
            reason = "no filesystem found on the disks (corrupt, truncated, blank or unreadable image)"
        else:
            reason = "no Linux root filesystem found"
        inside = _empty(guest, disks, reason, fs_list, notes)
    return dataclasses.replace(inside, secrets=[*inside.secrets, *seed]) if seed else inside


#: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion values that name the release
WINDOWS_VALUES = ("ProductName", "EditionID", "InstallationType", "DisplayVersion", "ReleaseId", "CurrentBuild", "CurrentBuildNumber", "UBR")
WINDOWS_NOTE = ("Windows guest: only its registry's product name, edition and build are read; its updates, accounts, keys and "
                "credentials are not judged by this version")


def _windows_hive(appliance: Appliance) -> str | None:
    """The SOFTWARE hive of a mounted Windows system volume (NTFS keeps names' case, Windows
    ignores it: the path is resolved case-insensitively by the appliance), else None."""
    try:
        path = str(appliance.g.case_sensitive_path("/windows/system32/config/software"))
    except RuntimeError:
        return None
    return path if appliance.regular_stat(path) is not None else None


def _registry_values(appliance: Appliance, hive: str) -> dict[str, str] | str:
    """The release values from the hive, parsed by hivex inside the appliance (never on the host:
    the hive is the guest's to forge); a string says why they could not be read."""
    g = appliance.g
    try:
        g.hivex_open(hive, write=False)
    except RuntimeError as exc:
        return f"{hive}: not a readable registry hive ({_short(exc)})"
    try:
        node = g.hivex_root()
        for name in ("Microsoft", "Windows NT", "CurrentVersion"):
            node = g.hivex_node_get_child(node, name)
            if not node:
                return f"{hive}: no Microsoft\\Windows NT\\CurrentVersion key"
        out: dict[str, str] = {}
        for key in WINDOWS_VALUES:
            value = g.hivex_node_get_value(node, key)
            if not value:
                continue
            kind = g.hivex_value_type(value)
            if kind in (1, 2):  # REG_SZ, REG_EXPAND_SZ
                text = str(g.hivex_value_string(value))
            elif kind == 4:  # REG_DWORD, little-endian
                raw = g.hivex_value_value(value)
                data = raw if isinstance(raw, bytes) else str(raw).encode("latin-1")
                text = str(int.from_bytes(data[:4], "little")) if len(data) >= 4 else ""
            else:
                continue
            cleaned = "".join(ch for ch in text.split("\0", 1)[0] if ch.isprintable())[:120]
            if cleaned:
                out[key] = cleaned
        return out
    except RuntimeError as exc:
        return f"{hive}: {_short(exc)}"
    finally:
        try:
            g.hivex_close()
        except RuntimeError:
            pass


def _short(exc: Exception) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else str(exc))[:200]


def _read_windows(guest: Guest, disks: list[GuestDiskScan], fs_list: list[str], notes: list[str], appliance: Appliance, hive: str,
                  volume: str) -> GuestInside:
    values = _registry_values(appliance, hive)
    if isinstance(values, str):
        return _empty(guest, disks, f"a Windows system volume ({volume}) whose registry could not be read: {values}", fs_list, notes)
    build = values.get("CurrentBuild") or values.get("CurrentBuildNumber", "")
    feature = values.get("DisplayVersion") or values.get("ReleaseId", "")
    product = values.get("ProductName") or "Windows (no ProductName in the registry)"
    full_build = f"{build}.{values['UBR']}" if build and values.get("UBR") else build
    described = " ".join(p for p in (product, feature) if p) + (f" (build {full_build})" if full_build else "")
    lifecycle = windows_lifecycle(product, build, hive)
    return GuestInside(guest.platform, guest.id, guest.name, guest.label, True, "", guest.running, disks, fs_list,
                       OsRelease("windows", full_build, feature), described, None, None, [], [], [], [*notes, WINDOWS_NOTE], lifecycle)


def _mount_fstab(appliance: Appliance, found: dict[str, str], root_dev: str, notes: list[str]) -> list[str]:
    """Other filesystems the guest's fstab mounts under /var, /home, /usr, /root, /srv, /opt (so
    its package database and home directories are where it sees them), by UUID, LABEL or device."""
    mounted: list[str] = []
    if len(found) < 2:
        return mounted
    data = appliance.read_small("/etc/fstab", SECRET_LIMIT)
    if data is None:
        return mounted
    g = appliance.g
    ids: dict[str, str] = {}
    for dev in found:
        if dev == root_dev:
            continue
        for what, fn in (("UUID", g.vfs_uuid), ("LABEL", g.vfs_label)):
            try:
                value = fn(dev)
            except RuntimeError:
                continue
            if value:
                ids[f"{what}={value}"] = dev
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        spec, where = fields[0].replace('"', ""), fields[1]
        if not any(where == p or where.startswith(p + "/") for p in ("/var", "/home", "/usr", "/root", "/srv", "/opt")):
            continue
        match = ids.get(spec) or (spec if spec in found else None)
        # a mount point reached through a link would put the filesystem wherever the guest chose
        if match is None or not appliance.real_dir(where):
            continue
        try:
            g.mount_options(MOUNT_OPTIONS.get(found[match], "ro"), match, where)
            mounted.append(where)
        except RuntimeError:
            notes.append(f"{where} ({match}) from the guest's fstab could not be mounted read-only")
    return mounted


def _is_mirrored(path: str) -> bool:
    return path in MIRROR_FILES or any(path.startswith(d + "/") for d in MIRROR_DIRS)


def _write_mirror(target: str, path: str, data: bytes, mtime: int) -> None:
    local = os.path.join(target, path.lstrip("/"))
    os.makedirs(os.path.dirname(local), mode=0o700, exist_ok=True)
    fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.utime(local, (mtime, mtime))


class _Mirror(RootFS):
    """The private copy of a guest's files, and the fetches that were refused (a file that is a
    symbolic link inside the guest, or is reached through one): the host's collectors then read
    an Unavailable naming the guest's path where they would have read the file, so the checks
    that need it are not applicable with that reason, never judged on what a link pointed at."""

    def __init__(self, root: str, refused: dict[str, Unavailable]) -> None:
        super().__init__(root)
        self.refused = refused

    def read_bytes(self, path: str, limit: int = DEFAULT_LIMIT) -> bytes | Unavailable:
        return self.refused.get(path) or super().read_bytes(path, limit)

    def stat(self, path: str) -> os.stat_result | Unavailable:
        return self.refused.get(path) or super().stat(path)

    def exists(self, path: str) -> bool:
        return path in self.refused or super().exists(path)

    def listdir(self, path: str) -> list[str] | Unavailable:
        """A refused entry is listed, as the guest's own software would see it: a collector then
        reads it and meets the refusal instead of never knowing the file was there."""
        listing = super().listdir(path)
        names = {p[len(path.rstrip("/")) + 1:] for p in self.refused if p.rsplit("/", 1)[0] == path.rstrip("/")}
        if not names:
            return listing
        return sorted(set(listing if isinstance(listing, list) else []) | names)


#: files whose absence the collectors answer by a fallback or as not applicable: refused, they are
#: absent with the reason; any other refused file is an error naming it wherever a collector
#: meets it (a sudoers.d entry skipped as absent would let the sudo rules pass without it)
ABSENT_WHEN_REFUSED = ("/etc/os-release", "/etc/debian_version", "/etc/redhat-release", "/etc/alpine-release",
                       "/var/lib/dpkg/status", "/lib/apk/db/installed")


def _refused(path: str, why: str) -> Unavailable:
    return Unavailable(path, "missing" if path in ABSENT_WHEN_REFUSED else "invalid", why)


def _in_stream(files: dict[str, tuple[bytes | str, int]], path: str) -> tuple[bytes, int] | None:
    """A link inside a streamed directory resolved within the stream itself, never through the
    guest's filesystem: a link to a file the same stream holds reads that file; a link leading
    out of it (or through a linked directory, or in a loop) gives None, and so does one to a
    secret (/etc/passwd pointed at /etc/shadow would copy the hashes into the public mirror)."""
    current = path
    for _ in range(MAX_SYMLINKS):
        value = files.get(current)
        if value is None:
            return None
        data, mtime = value
        if isinstance(data, bytes):
            return (data, mtime) if not _is_secret(current) else None
        target = data if data.startswith("/") else f"{current.rsplit('/', 1)[0]}/{data}"
        current = posixpath.normpath(target)
        if current.startswith("//"):
            current = current[1:]
    return None


def _gather(appliance: Appliance, notes: list[str]) -> tuple[dict[str, tuple[bytes, int]], dict[str, bytes], dict[str, Unavailable]]:
    """(files for the mirror with their mtimes, secrets kept in memory, the fetches refused), from
    a handful of transfers: /etc and apt's lists as tar streams, dpkg's status, the rpm database.
    No fetch follows a symbolic link of the guest's (Appliance.lookup): a link in /etc is read
    only when it points at a file of the /etc stream."""
    public: dict[str, tuple[bytes, int]] = {}
    refused: dict[str, Unavailable] = {}
    etc = appliance.tree("/etc", ETC_LIMIT)
    if isinstance(etc, str):
        notes.append(etc)
        etc = {}
    secret = {p: v for p, (v, _) in etc.items() if isinstance(v, bytes) and _is_secret(p)}
    for path, (value, mtime) in etc.items():
        if not _is_mirrored(path):
            continue
        if isinstance(value, str):
            resolved = _in_stream(etc, path)
            if resolved is None:
                refused[path] = _refused(path, f"{LINK_REFUSED}; it leads out of /etc")
            else:
                public[path] = resolved
        else:
            public[path] = (value, mtime)
    if "/etc/os-release" not in public:
        data = appliance.read_small("/usr/lib/os-release", SECRET_LIMIT)
        if data is not None:
            public["/usr/lib/os-release"] = (data, 0)
    for path in ("/var/lib/dpkg/status", "/lib/apk/db/installed"):
        found = appliance.lookup(path)
        if isinstance(found, str):
            refused[path] = _refused(path, found)
        elif found is not None and found[0] <= FILE_LIMIT:
            data = appliance.stream("download", path, FILE_LIMIT)
            if data is not None:
                public[path] = (data, found[1])
    public.update(_apk_indexes(appliance))
    for directory, excludes in (("/var/lib/apt/lists", ["./partial", "./lock", "./auxfiles"]), ("/var/lib/rpm", []),
                                ("/usr/lib/sysimage/rpm", [])):
        files = appliance.tree(directory, MIRROR_LIMIT, excludes)
        if isinstance(files, str):
            # Fedora's /var/lib/rpm is a link to ../../usr/lib/sysimage/rpm, which is read itself
            if directory != "/var/lib/rpm" or not appliance.real_dir("/usr/lib/sysimage/rpm"):
                notes.append(files)
            continue
        public.update({p: (v, m) for p, (v, m) in files.items() if isinstance(v, bytes)})
    return public, secret, refused


def _apk_indexes(appliance: Appliance) -> dict[str, tuple[bytes, int]]:
    """apk's cached repository indexes by name, not the cache directory: beside them it may hold
    every downloaded package (apk-cache(5)), hundreds of megabytes the checks never read. A link
    named like an index is not followed: pointed at /etc/shadow it would copy the secret into the
    mirror on the host's disk."""
    out: dict[str, tuple[bytes, int]] = {}
    for path in appliance.glob("/var/cache/apk/APKINDEX.*.tar.gz")[:MAX_APK_INDEXES]:
        found = appliance.regular_stat(path)
        if found is None or found[0] > INDEX_COMPRESSED_LIMIT or "/" in path[len("/var/cache/apk/"):]:
            continue
        data = appliance.stream("download", path, INDEX_COMPRESSED_LIMIT)
        if data is not None:
            out[path] = (data, found[1])
    return out


def _is_secret(path: str) -> bool:
    return (path == "/etc/shadow" or (path.startswith("/etc/ssh/ssh_host_") and path.endswith("_key"))
            or path.startswith("/etc/cloud/") or path in CREDENTIAL_FILES)


def _read_root(guest: Guest, disks: list[GuestDiskScan], fs_list: list[str], notes: list[str], appliance: Appliance,
               key: bytes, vulndb: str | None, max_age: int | None) -> GuestInside:
    if not appliance.real_dir("/etc") and appliance.is_dir("/etc"):
        # every file the checks read is under it: judged without them, a missing sudoers would pass
        return _empty(guest, disks, f"/etc: {LINK_REFUSED}", fs_list, notes)
    public, secret, refused = _gather(appliance, notes)
    tmp = tempfile.mkdtemp(prefix="hyperward-guest-")
    try:
        for path, (data, mtime) in public.items():
            _write_mirror(tmp, path, data, mtime)
        tree = _Mirror(tmp, refused)
        patching: PatchingFacts = collect_vulnerabilities(collect_patching(tree), vulndb, max_age)
        access: AccessFacts = collect_access(tree)
        product = _pretty_name(tree)
        state = patching.apt_state
        lifecycle = release_lifecycle(patching.os, state.sources if isinstance(state, AptState) else [])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    passwd = public.get("/etc/passwd", (b"", 0))[0].decode("utf-8", "replace")
    shadow_bytes = secret.get("/etc/shadow")
    shadow = shadow_bytes.decode("utf-8", "replace") if shadow_bytes is not None else None
    schemes = shadow_schemes(shadow) if shadow is not None else Unavailable("/etc/shadow", "missing", "not found in the guest")
    access = dataclasses.replace(access, password_schemes=schemes)
    hashes = hash_tokens(shadow, key) if shadow is not None else []
    del shadow, shadow_bytes
    homes = [("root", "/root")] + _passwd_homes(passwd)
    homes = list(dict.fromkeys(h for h in homes if h[1] not in ("/", "/nonexistent", "/dev/null")))[:MAX_HOMES]
    found_keys = _guest_keys(appliance, homes, secret)
    found_secrets = _guest_secrets(appliance, homes, secret)
    return GuestInside(guest.platform, guest.id, guest.name, guest.label, True, "", guest.running, disks, fs_list,
                       patching.os, product, patching, access, found_keys, hashes, found_secrets, notes, lifecycle)


def _pretty_name(tree: RootFS) -> str | None:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = tree.read_text(path, 64 * 1024)
        if isinstance(text, str):
            for line in text.splitlines():
                if line.startswith("PRETTY_NAME="):
                    return line.partition("=")[2].strip().strip("\"'")[:200]
    return None


def _home_files(appliance: Appliance, homes: list[tuple[str, str]], relative: list[str]) -> list[tuple[str, str]]:
    """(owner, path) of files matching `relative` globs in every home: /home/* in one expansion
    per pattern, other homes one by one."""
    owners = {home: user for user, home in homes}
    out: list[tuple[str, str]] = []
    bases = ["/root", "/home/*"] + [h for _, h in homes if h != "/root" and not h.startswith("/home/")]
    for base in dict.fromkeys(bases):
        for rel in relative:
            for path in appliance.glob(f"{base}/{rel}"):
                home = "/".join(path.split("/")[:3]) if path.startswith("/home/") else base
                out.append((owners.get(home, home.rsplit("/", 1)[-1]), path))
    return list(dict.fromkeys(out))


def _guest_keys(appliance: Appliance, homes: list[tuple[str, str]], secret: dict[str, bytes]) -> list[KeyRef]:
    out: dict[tuple[str, str], KeyRef] = {}
    for owner, path in _home_files(appliance, homes, [".ssh/*", "id_*", "*.pem", "*.key"]):
        if path.endswith((".pub", "authorized_keys", "authorized_keys2", "known_hosts", "known_hosts.old", "/config")):
            continue
        data = appliance.read_small(path, KEY_LIMIT)
        if data is None or not keymod.looks_private(data):
            continue
        for blob in keymod.private_key_blobs(data):
            ref = KeyRef(keymod.fingerprint(blob), keymod.blob_kind(blob), path, "user", owner)
            out.setdefault((ref.fingerprint, path), ref)
    for path, data in sorted(secret.items()):
        if path.startswith("/etc/ssh/ssh_host_"):
            for blob in keymod.private_key_blobs(data):
                ref = KeyRef(keymod.fingerprint(blob), keymod.blob_kind(blob), path, "host", "root")
                out.setdefault((ref.fingerprint, path), ref)
    return list(out.values())


def _guest_secrets(appliance: Appliance, homes: list[tuple[str, str]], secret: dict[str, bytes]) -> list[SecretRef]:
    out: list[SecretRef] = []
    cloud = [p for p in sorted(secret) if p.startswith("/etc/cloud/") and (p.endswith(".cfg"))]
    for path in cloud:
        out.extend(cloud_init_passwords(path, secret[path].decode("utf-8", "replace")))
    for pattern in CLOUD_INIT:
        for path in appliance.glob(pattern):
            data = appliance.read_small(path, SECRET_LIMIT)
            if data is not None:
                out.extend(cloud_init_passwords(path, data.decode("utf-8", "replace")))
    for path in CREDENTIAL_FILES:
        if path in secret:
            out.extend(hypervisor_credentials(path, secret[path].decode("utf-8", "replace")))
    for _, path in _home_files(appliance, homes, list(HOME_CREDENTIALS)):
        data = appliance.read_small(path, SECRET_LIMIT)
        if data is not None:
            out.extend(hypervisor_credentials(path, data.decode("utf-8", "replace")))
    return out


def _seed_secrets(appliance: Appliance, found: dict[str, str], root_dev: str | None, plan: _GuestPlan) -> list[SecretRef]:
    """cloud-init NoCloud seeds: an ISO9660 or VFAT volume (label cidata) with user-data at its top."""
    out: list[SecretRef] = []
    for dev, kind in sorted(found.items()):
        if dev == root_dev or kind not in ("iso9660", "vfat", "udf"):
            continue
        with appliance.mounted(dev, kind) as failed:
            if failed:
                continue
            for name in ("user-data", "USER-DATA", "user_data"):
                data = appliance.read_small(f"/{name}", SECRET_LIMIT)
                if data is not None:
                    out.extend(dataclasses.replace(s, path=f"{plan.describe(dev)}:/{name} (seed volume)")
                               for s in cloud_init_passwords(f"/{name}", data.decode("utf-8", "replace")))
                    break
    return out
