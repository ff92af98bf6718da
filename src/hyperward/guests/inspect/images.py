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
import stat
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


def resolve(fs: RootFS, source: str, pools: list[str]) -> str | Unavailable:
    """The disk's file on this machine, refused when a symlink leads outside both the directory
    the definition names and every storage pool (pool paths as the audited host sees them)."""
    try:
        local = fs.local_path(source)
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
        return Unavailable(source, "invalid", f"a symbolic link out of its storage directory (to {shown}); not opened")
    return real


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


def prepare(fs: RootFS, disk: GuestDisk, pools: list[str], source: str | None = None) -> Prepared:
    """`source`: the disk's path as the audited host sees it (a Proxmox volume already mapped)."""
    shown = disk.source or "(no source)"
    target, device = disk.target, disk.device

    def scan(status: str, reason: str = "", format: str | None = None, virtual_size: int | None = None,
             backing: list[str] | None = None, resolved: str | None = None) -> GuestDiskScan:
        return GuestDiskScan(shown, target, device, status, reason, format, virtual_size, backing or [], resolved)

    if disk.network:
        return Prepared(scan("not-applicable", f"network disk ({disk.network}): not read from the host"))
    path = source or disk.source
    if not path or not path.startswith("/"):
        return Prepared(scan("not-applicable", "no file path for this disk (a volume hyperward cannot map to a file)"))
    if disk.encrypted:
        return Prepared(scan("encrypted", "the definition marks the disk encrypted; not opened"))
    real = resolve(fs, path, pools)
    if isinstance(real, Unavailable):
        status = "outside-pool" if "storage directory" in real.reason else "error"
        return Prepared(scan(status, real.reason))
    try:
        st = os.stat(real)
    except OSError as exc:
        return Prepared(scan("error", f"{exc.strerror or exc}"))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        return Prepared(scan("error", "not a regular file or block device; not opened"))
    fmt = (disk.format or "raw").lower()
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
    info = _qemu_img_info(real, fmt)
    if isinstance(info, Unavailable):
        return Prepared(scan("error", info.reason, format=fmt))
    chain = info if isinstance(info, list) else [info]
    top = chain[0] if chain and isinstance(chain[0], dict) else {}
    encrypted = any(isinstance(c, dict) and c.get("encrypted") for c in chain)
    size = top.get("virtual-size")
    backing = [str(c.get("filename", "")) for c in chain[1:] if isinstance(c, dict)]
    shown_backing = [b[len(fs.root):] if not fs.live and b.startswith(fs.root) else b for b in backing]
    # QEMU opens a backing file by the name in the image header, on this machine: for an offline
    # root that name is the audited host's, and it must not reach a file outside the root; on any
    # host it must stay in the image's directory or a pool, as the image itself must.
    try:
        allowed = [os.path.dirname(real)] + [os.path.realpath(fs.local_path(p)) for p in pools if p.startswith("/")]
    except _Loop:
        allowed = [os.path.dirname(real)]
    for name, shown_name in zip(backing, shown_backing):
        target = os.path.realpath(name)
        if not fs.live and not _inside(target, fs.root):
            return Prepared(scan("outside-pool", f"backing file {shown_name} lies outside the audited root; not opened", fmt,
                                 None, shown_backing))
        if not any(_inside(target, a) for a in allowed):
            return Prepared(scan("outside-pool", f"backing file {shown_name} lies outside the image's directory and every pool; not opened",
                                 fmt, None, shown_backing))
        allowed.append(os.path.dirname(target))
    vsize = size if isinstance(size, int) else None
    resolved = None if real == fs.local_path(path) else real
    if encrypted:
        return Prepared(scan("encrypted", "qcow2 encryption; not opened", fmt, vsize, shown_backing, resolved))
    return Prepared(scan("opened", "", fmt, vsize, shown_backing, resolved), Drive(real, fmt, iso=iso))
