"""Before a disk is handed to the appliance: where its file really is, what format it is, whether it
is encrypted, and whether its backing chain can be followed.

A disk is opened with the format its definition names, never a probed one (a raw disk whose
guest wrote a qcow2 header into sector 0 would otherwise have QEMU open a host file of the
guest's choosing as a backing file). Its path must resolve inside the directory that holds it or
a known storage pool: a symlink planted in a pool pointing at /etc/shadow or /dev/sda is not
followed. Encrypted images (qcow2/LUKS encryption, a LUKS header on a raw file) are reported and
never opened.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field

from ...collect import commands
from ...collect.fs import RootFS, _Loop
from ...facts import GuestDiskScan
from ...guests.model import GuestDisk
from ...model import Unavailable
from ...records import frozen

QEMU_IMG_TIMEOUT = 30.0
LUKS_MAGIC = b"LUKS\xba\xbe"
#: formats the appliance's QEMU opens as images; anything else is not guessed at
FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc", "qed")


@frozen
class Drive:
    """A disk ready for the appliance: the local path (inside the audited root) and its format."""

    path: str
    format: str
    readonly: bool = True
    iso: bool = False


@dataclass
class Prepared:
    scan: GuestDiskScan
    drive: Drive | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _inside(path: str, directory: str) -> bool:
    directory = directory.rstrip("/") or "/"
    return path == directory or path.startswith(directory + "/") or directory == "/"


def resolve(fs: RootFS, source: str, pools: list[str], within: list[str] | None = None) -> str | Unavailable:
    """The disk's file on this machine, refused when a symlink leads outside both the directory
    the definition names and every storage pool (pool paths as the audited host sees them).
    `within` (the guest's disk_dirs) replaces both: the path itself, `..` and symlinks resolved,
    must lie in one of those directories."""
    try:
        local = fs.local_path(source)
        if within:
            allowed = [fs.local_path(d) for d in within if d.startswith("/")]
        else:
            allowed = [fs.local_path(os.path.dirname(source))] + [fs.local_path(p) for p in pools if p.startswith("/")]
    except _Loop:
        return Unavailable(source, "invalid", "too many levels of symbolic links (symlink loop)")
    root = fs.root if not fs.live else ""
    allowed = [os.path.realpath(a) for a in allowed]
    real = os.path.realpath(local)
    if root and not _inside(real, root):
        return Unavailable(source, "invalid", "resolves outside the audited root")
    if not any(_inside(real, a) for a in allowed):
        shown = real[len(root):] if root and real.startswith(root) else real
        if within:
            return Unavailable(source, "invalid", f"resolves to {shown}, outside the directories this guest's disks may be in "
                                                  f"({', '.join(within)}); not opened")
        return Unavailable(source, "invalid", f"a symbolic link out of its storage directory (to {shown}); not opened")
    return real


#: a VMDK descriptor's extent lines (VMware's Virtual Disk Format 5.0, "Extent Descriptions")
_EXTENT = re.compile(rb'^\s*(?:RW|RDONLY|NOACCESS)\s+\d+\s+\w+\s+"([^"]*)"', re.MULTILINE)
DESCRIPTOR_LIMIT = 64 * 1024


def _descriptor_extents(real: str) -> list[str] | None:
    """The extent files a text VMDK descriptor names (None: not a text descriptor), read before
    QEMU opens anything: an extent naming a FIFO or a device must not be opened even to probe it."""
    try:
        with open(real, "rb", buffering=0) as handle:
            head = handle.read(DESCRIPTOR_LIMIT + 1)
    except OSError:
        return None
    if not head.lstrip().startswith(b"#") or len(head) > DESCRIPTOR_LIMIT:
        return None
    return [m.decode("utf-8", "replace") for m in _EXTENT.findall(head)]


def _qemu_extents(chain: Sequence[object]) -> list[tuple[str, str]]:
    """(image, extent file) for every VMDK extent qemu-img saw in the chain."""
    out = []
    for element in chain:
        if not isinstance(element, dict):
            continue
        spec = element.get("format-specific")
        data = spec.get("data") if isinstance(spec, dict) else None
        extents = data.get("extents") if isinstance(data, dict) else None
        for extent in extents if isinstance(extents, list) else []:
            if isinstance(extent, dict) and isinstance(extent.get("filename"), str):
                out.append((str(element.get("filename", "")), extent["filename"]))
    return out


def _qemu_img_info(path: str, fmt: str) -> dict[str, object] | list[object] | Unavailable:
    binary = commands.find("qemu-img")
    if binary is None:
        return Unavailable(path, "missing", "qemu-img not installed (apt install qemu-utils)")
    out = commands.run([binary, "info", "--output=json", "--backing-chain", "-U", "-f", fmt, "--", path],
                       "qemu-img info", timeout=QEMU_IMG_TIMEOUT)
    if isinstance(out, Unavailable):
        return Unavailable(path, "invalid", out.reason)
    try:
        parsed = json.loads(out)
    except json.JSONDecodeError:
        return Unavailable(path, "invalid", "qemu-img info printed no JSON")
    if not isinstance(parsed, (dict, list)):
        return Unavailable(path, "invalid", "qemu-img info printed an unexpected document")
    return parsed


def prepare(fs: RootFS, disk: GuestDisk, pools: list[str], source: str | None = None,
            within: list[str] | None = None) -> Prepared:
    """`source`: the disk's path as the audited host sees it (a Proxmox volume already mapped).
    `within`: the guest's disk_dirs, where the disk and every file its header names must lie."""
    shown = disk.source or "(no source)"
    target, device = disk.target, disk.device

    def scan(status: str, reason: str = "", format: str | None = None, virtual_size: int | None = None,
             backing: list[str] | None = None, resolved: str | None = None) -> GuestDiskScan:
        return GuestDiskScan(shown, target, device, status, reason, format, virtual_size, backing or [], resolved)

    if disk.network:
        return Prepared(scan("not-applicable", f"network disk ({disk.network}): not read from the host"))
    if within and disk.raw_device:
        return Prepared(scan("not-applicable", "a host drive passed to the guest: not read from the host"))
    path = source or disk.source
    if not path or not path.startswith("/"):
        return Prepared(scan("not-applicable", "no file path for this disk (a volume hyperward cannot map to a file)"))
    if disk.encrypted:
        return Prepared(scan("encrypted", "the definition marks the disk encrypted; not opened"))
    real = resolve(fs, path, pools, within)
    if isinstance(real, Unavailable):
        status = "outside-pool" if "storage directory" in real.reason or "may be in" in real.reason else "error"
        return Prepared(scan(status, real.reason))
    fmt = (disk.format or "raw").lower()
    note = ""
    if disk.parents and fmt in DIFFERENCING_UNREADABLE:
        # QEMU's vdi and vpc drivers refuse differencing images (their parent is named by UUID
        # only): the base the platform's registry names is read instead, and the result says so
        base = disk.parents[-1]
        if not os.path.isfile(real):
            return Prepared(scan("error", "the differencing image is missing or not a regular file", fmt))
        base_real = resolve(fs, base, pools, within)
        if isinstance(base_real, Unavailable):
            status = "outside-pool" if "may be in" in base_real.reason else "error"
            return Prepared(scan(status, f"its base image {base} {base_real.reason}", fmt))
        note = (f"a differencing image (snapshot): QEMU cannot read {fmt.upper()} differencing images, so its base {base} was read "
                "instead; what the guest wrote since the snapshot is not seen")
        real, fmt = base_real, _format_by_name(base, fmt)
    try:
        st = os.stat(real)
    except OSError as exc:
        return Prepared(scan("error", f"{exc.strerror or exc}"))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return Prepared(scan("error", "not a regular file or block device; not opened"))
    iso = device == "cdrom"
    if fmt in ("iso", "cdrom"):
        fmt = "raw"
    if fmt == "luks":
        return Prepared(scan("encrypted", "LUKS-formatted image; not opened", format=fmt))
    if fmt not in FORMATS:
        return Prepared(scan("not-applicable", f"image format {fmt} is not opened", format=fmt))
    if fmt == "raw":
        try:
            with open(real, "rb", buffering=0) as handle:
                head = handle.read(6)
        except OSError as exc:
            return Prepared(scan("error", exc.strerror or str(exc), format=fmt))
        if head == LUKS_MAGIC:
            return Prepared(scan("encrypted", "LUKS header; not opened", format=fmt))
    # QEMU opens a backing file or VMDK extent by the name in the image, on this machine: for an
    # offline root that name is the audited host's, and it must not reach a file outside the
    # root; on any host it must stay where the image itself may be.
    try:
        if within:
            allowed = [os.path.realpath(fs.local_path(d)) for d in within if d.startswith("/")]
        else:
            allowed = [os.path.dirname(real)] + [os.path.realpath(fs.local_path(p)) for p in pools if p.startswith("/")]
    except _Loop:
        allowed = [os.path.dirname(real)]

    def outside(name: str, what: str) -> str | None:
        target = os.path.realpath(name)
        shown_name = target[len(fs.root):] if not fs.live and target.startswith(fs.root.rstrip("/") + "/") else os.path.normpath(name)
        if not fs.live and not _inside(target, fs.root):
            return f"{what} {shown_name} lies outside the audited root; not opened"
        if not any(_inside(target, a) for a in allowed):
            where = f"the directories this guest's disks may be in ({', '.join(within)})" if within else "the image's directory and every pool"
            return f"{what} {shown_name} lies outside {where}; not opened"
        return None

    if fmt == "vmdk":
        for extent in _descriptor_extents(real) or []:
            named = os.path.join(os.path.dirname(real), extent)
            problem = outside(named, "extent") if extent else "an extent without a file name"
            if problem:
                return Prepared(scan("outside-pool", problem, fmt))
            try:
                kind = os.stat(named).st_mode
            except OSError as exc:
                return Prepared(scan("error", f"extent {extent}: {exc.strerror or exc}", fmt))
            if not (stat.S_ISREG(kind) or stat.S_ISBLK(kind)):
                return Prepared(scan("error", f"extent {extent} is not a regular file or block device; not opened", fmt))
    info = _qemu_img_info(real, fmt)
    if isinstance(info, Unavailable):
        return Prepared(scan("error", info.reason, format=fmt))
    chain = info if isinstance(info, list) else [info]
    top = chain[0] if chain and isinstance(chain[0], dict) else {}
    encrypted = any(isinstance(c, dict) and c.get("encrypted") for c in chain)
    size = top.get("virtual-size")
    backing = [str(c.get("filename", "")) for c in chain[1:] if isinstance(c, dict)]
    shown_backing = [b[len(fs.root):] if not fs.live and b.startswith(fs.root) else b for b in backing]
    for name, shown_name in zip(backing, shown_backing):
        problem = outside(name, "backing file")
        if problem:
            return Prepared(scan("outside-pool", problem, fmt, None, shown_backing))
        allowed.append(os.path.dirname(os.path.realpath(name)))
    for image, extent in _qemu_extents(chain):
        problem = outside(os.path.join(os.path.dirname(image), extent), "extent")
        if problem:
            return Prepared(scan("outside-pool", problem, fmt, None, shown_backing))
    vsize = size if isinstance(size, int) else None
    resolved = None if real == fs.local_path(path) else real
    if encrypted:
        return Prepared(scan("encrypted", "qcow2 encryption; not opened", fmt, vsize, shown_backing, resolved))
    return Prepared(scan("opened", note, fmt, vsize, shown_backing, resolved), Drive(real, fmt, iso=iso))


#: formats whose differencing images QEMU cannot open (block/vdi.c accepts only dynamic and
#: static images; block/vpc.c has no differencing support)
DIFFERENCING_UNREADABLE = ("vdi", "vpc")


def _format_by_name(path: str, default: str) -> str:
    """A base image's format from its name where the registry gives it only for the child."""
    return {".vdi": "vdi", ".vmdk": "vmdk", ".vhd": "vpc", ".vhdx": "vhdx"}.get(os.path.splitext(path)[1].lower(), default)
