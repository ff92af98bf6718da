"""One libguestfs appliance holding every scanned guest's disks, read-only.

Why libguestfs (docs/guest-inspection.md has the measurements): the guest's filesystems are
written by whoever controls the guest, so they are parsed by the appliance's own kernel inside a
throwaway VM, never by the host's kernel (no loop mount) nor by a filesystem parser in this
root process. Each drive is added with readonly=1: QEMU opens the image read-only under a
temporary qcow2 overlay, so nothing reaches the image even when a filesystem driver writes.
Filesystems are mounted `ro,noload` (ext3/ext4: no journal replay) or `ro,norecovery` (xfs), so
a running guest's half-written journal is not applied either; what is read is the on-disk state,
which may be mid-write.

The appliance starts once per scan (about 14 s under TCG here; KVM where it works) and every
guest's drives go into it; a guest's filesystems are mounted, read and unmounted in turn.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .images import Drive

MOUNT_OPTIONS = {"ext2": "ro", "ext3": "ro,noload", "ext4": "ro,noload", "xfs": "ro,norecovery", "btrfs": "ro,norecovery",
                 "vfat": "ro", "iso9660": "ro", "udf": "ro", "ntfs": "ro"}
ENCRYPTED_FS = ("crypto_LUKS", "BitLocker")
MAX_DRIVES = 250
#: merged /usr's top-level links, followed on the way to a file (their targets are under /usr)
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
LINK_REFUSED = "a symbolic link inside the guest; not followed (the guest's links may point anywhere in it)"
LINKED_DIR_REFUSED = "a directory on its path is a symbolic link inside the guest; not followed"


class EngineUnavailable(Exception):
    """libguestfs cannot run here; the message says what to install or set."""


def _guestfs() -> Any:
    try:
        import guestfs
    except ImportError:
        raise EngineUnavailable("libguestfs Python binding not installed (apt install python3-guestfs; the venv needs "
                                "--system-site-packages, as scripts/install.sh makes it)") from None
    return guestfs


class Appliance:
    """`drives[i]` becomes /dev/sd<letter(i)> in the appliance."""

    def __init__(self, drives: list[Drive]) -> None:
        if len(drives) > MAX_DRIVES:
            raise EngineUnavailable(f"{len(drives)} disks: more than one appliance holds ({MAX_DRIVES}); scan fewer guests at once")
        self.drives = drives
        self.launch_s = 0.0
        self.tcg = False
        self.g: Any = None
        self._partitions: list[str] | None = None
        self._lvs: dict[str, set[str]] | None = None
        self._pv_devices: dict[str, str] | None = None
        self._clash: bool | None = None

    def launch(self) -> None:
        guestfs = _guestfs()
        started = time.perf_counter()
        first: Exception | None = None
        for force_tcg in (False, True):
            g = guestfs.GuestFS(python_return_dict=True, close_on_exit=False)
            try:
                g.set_backend(os.environ.get("LIBGUESTFS_BACKEND", "direct"))
                if force_tcg:
                    g.set_backend_settings(["force_tcg"])
                g.set_network(False)
                g.set_autosync(False)
                for drive in self.drives:
                    g.add_drive_opts(drive.path, readonly=True, format=drive.format)
                g.launch()
            except RuntimeError as exc:
                g.close()
                first = first or exc
                # KVM can fail where /dev/kvm exists but the CPU cannot be set up (nested KVM): TCG works
                if force_tcg or "supermin" in str(exc):
                    break
                continue
            self.g, self.tcg = g, force_tcg
            self.launch_s = time.perf_counter() - started
            return
        raise EngineUnavailable(_explain(str(first)))

    def close(self) -> None:
        if self.g is not None:
            try:
                self.g.shutdown()
            except RuntimeError:
                pass
            self.g.close()
            self.g = None

    @staticmethod
    def device(index: int) -> str:
        letters = ""
        n = index
        while True:
            letters = chr(ord("a") + n % 26) + letters
            n = n // 26 - 1
            if n < 0:
                break
        return f"/dev/sd{letters}"

    def _load(self) -> list[str]:
        if self._partitions is None:
            try:
                self._partitions = list(self.g.list_partitions())
            except RuntimeError:
                self._partitions = []
            self._lvs = self._lv_drives()
        return self._partitions

    def _candidates(self, drives: set[str]) -> list[str]:
        partitions = self._load()
        out: list[str] = []
        for drive in sorted(drives):
            parts = [p for p in partitions if p.rstrip("0123456789") == drive and p != drive]
            out.extend(parts or [drive])
        return out

    def physical_volumes(self) -> dict[str, str]:
        """LVM PV device -> PV UUID for every drive of the appliance, as blkid reads each label
        (LVM itself lists a UUID found on two devices once). Empty without LVM: one call."""
        if self._pv_devices is None:
            self._pv_devices = {}
            try:
                has_lvm = bool(self.g.pvs())
            except RuntimeError:
                has_lvm = False
            if has_lvm:
                for dev in self._candidates({self.device(i) for i in range(len(self.drives))}):
                    try:
                        if self.g.vfs_type(dev) == "LVM2_member":
                            self._pv_devices[dev] = self.g.vfs_uuid(dev)
                    except RuntimeError:
                        continue
        return self._pv_devices

    def lvm_clash(self) -> bool:
        """Whether two devices carry one PV UUID (block-level clones of an LVM disk) or two VGs
        share a name (images installed alike: every Ubuntu server's ubuntu-vg). LVM then refuses
        to activate those VGs ("PVs appear on duplicate devices") or activates one of them under
        the name for every guest, so each such guest is read with an LVM filter of its own."""
        if self._clash is None:
            uuids = list(self.physical_volumes().values())
            try:
                names = list(self.g.vgs()) if uuids else []
            except RuntimeError:
                names = []
            self._clash = len(set(uuids)) < len(uuids) or len(set(names)) < len(names)
        return self._clash

    def own_pvs(self, indexes: list[int]) -> list[str]:
        mine = {self.device(i) for i in indexes}
        return [dev for dev in self.physical_volumes() if dev.rstrip("0123456789") in mine or dev in mine]

    def isolate_lvm(self, pvs: list[str]) -> list[str] | str:
        """Let LVM see only these PVs (one guest's) and activate their VGs: the LVs then listed
        are that guest's whatever the other drives hold. Returns the LVs, or why not."""
        g = self.g
        self.umount_all()
        try:
            g.vg_activate_all(False)
            g.lvm_set_filter(pvs)
            g.vg_activate_all(True)
            return list(g.lvs())
        except RuntimeError as exc:
            return f"LVM could not be limited to this guest's physical volumes: {_last_line(str(exc))}"

    def filesystems(self, indexes: list[int], lvs: list[str] | None = None) -> dict[str, str]:
        """device -> filesystem type for the filesystems on these drives (partitions, LVs on PVs
        of these drives, whole-disk filesystems). Only these drives are probed, one blkid each:
        list_filesystems probes every drive of the appliance (about a second each under TCG).
        `lvs`: the guest's LVs when isolate_lvm found them."""
        g = self.g
        mine = {self.device(i) for i in indexes}
        candidates = self._candidates(mine)
        if lvs is not None:
            candidates.extend(lvs)
        else:
            candidates.extend(lv for lv, drives in (self._lvs or {}).items() if drives & mine)
        found: dict[str, str] = {}
        for dev in candidates:
            try:
                kind = g.vfs_type(dev)
            except RuntimeError:
                continue
            if kind and kind != "LVM2_member":
                found[dev] = kind
        return found

    def _lv_drives(self) -> dict[str, set[str]]:
        g = self.g
        out: dict[str, set[str]] = {}
        try:
            # pvs_full's pv_name can name another device (seen with libguestfs 1.48): ask each PV its UUID
            pvs = {g.pvuuid(pv).replace("-", ""): g.canonical_device_name(pv).rstrip("0123456789") for pv in g.pvs()}
            for vg in g.vgs():
                drives = {pvs.get(u.replace("-", ""), pvs.get(u, "")) for u in g.vgpvuuids(vg)}
                for lv in g.lvs():
                    if lv.startswith(f"/dev/{vg}/"):
                        out[lv] = drives
        except RuntimeError:
            return out
        return out

    @contextmanager
    def mounted(self, device: str, kind: str, where: str = "/") -> Iterator[str | None]:
        """Yields None when mounted, else why not."""
        g = self.g
        options = MOUNT_OPTIONS.get(kind, "ro")
        try:
            g.mount_options(options, device, where)
        except RuntimeError as exc:
            yield f"{device} ({kind}) could not be mounted read-only: {_last_line(str(exc))}"
            return
        try:
            yield None
        finally:
            try:
                g.umount(where, lazyunmount=True)  # read-only: nothing to flush, so do not wait for it
            except RuntimeError:
                pass

    def umount_all(self) -> None:
        try:
            self.g.umount_all()
        except RuntimeError:
            pass

    # --- reads, bounded; paths are the guest's, resolved inside its mounted root by the appliance ---

    def is_file(self, path: str) -> bool:
        try:
            return bool(self.g.is_file(path, followsymlinks=True))
        except RuntimeError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            return bool(self.g.is_dir(path, followsymlinks=True))
        except RuntimeError:
            return False

    def regular_stat(self, path: str) -> tuple[int, int] | None:
        """(size, mtime) of a regular file reached without following a symbolic link, None for
        anything else (absent, a link, a directory, a device, or a link on the way to it)."""
        found = self.lookup(path)
        return found if isinstance(found, tuple) else None

    def lookup(self, path: str) -> tuple[int, int] | str | None:
        """(size, mtime) of a regular file at `path` itself; why not when a symbolic link is in
        the way (the file, or a directory on the path); None when it is absent or not a regular file.

        A guest's links are its own to point anywhere in it (its shadow file, a key, a file its
        owner wrote for the purpose): a fetch by name reads only what is at that name. The file is
        checked with lstat and its directory with realpath, then read by name on the same handle:
        no check-then-use race, as the drives are attached read-only and mounted ro,noload, and
        this handle is the appliance's only client, its calls made one after another."""
        g = self.g
        try:
            st = g.lstatns(path)
        except RuntimeError:
            return None
        mode = int(st["st_mode"])
        if stat.S_ISLNK(mode):
            return LINK_REFUSED
        if not stat.S_ISREG(mode):
            return None
        if self.linked_dir(path.rsplit("/", 1)[0] or "/"):
            return LINKED_DIR_REFUSED
        return int(st["st_size"]), int(st["st_mtime_sec"])

    def linked_dir(self, directory: str) -> bool:
        """Whether reaching `directory` goes through a symbolic link, merged /usr's own top-level
        links (/lib -> usr/lib and the like, which Debian and Fedora ship) aside. Unreadable counts
        as linked: the caller then leaves the path alone."""
        if directory == "/":
            return False
        allowed = {directory}
        top = directory.split("/")[1]
        if top in MERGED_USR:
            allowed.add("/usr" + directory)
        try:
            return str(self.g.realpath(directory)) not in allowed
        except RuntimeError:
            return True

    def real_dir(self, directory: str) -> bool:
        """A directory reached without following a symbolic link (a mount point, a tree to stream)."""
        try:
            st = self.g.lstatns(directory)
        except RuntimeError:
            return False
        return stat.S_ISDIR(int(st["st_mode"])) and not self.linked_dir(directory)

    def glob(self, pattern: str) -> list[str]:
        try:
            return [p for p in self.g.glob_expand(pattern) if not p.endswith("/")][:2000]
        except RuntimeError:
            return []

    def read_small(self, path: str, limit: int) -> bytes | None:
        """A regular file of at most `limit` bytes at `path` itself (a symbolic link, or one on
        the way to it, is not followed: lookup), else None."""
        found = self.regular_stat(path)
        if found is None or found[0] > limit:
            return None
        try:
            data = self.g.read_file(path)
        except RuntimeError:
            return None
        return bytes(data) if len(data) <= limit else None

    def stream(self, method: str, path: str, limit: int, **options: Any) -> bytes | None:
        """A file transfer (download, tar_out) straight into memory through a pipe: a guest's /etc
        holds its shadow file and host keys, which must not land on the host's disk. None when it
        fails or exceeds `limit`."""
        r, w = os.pipe()
        chunks: list[bytes] = []
        state = {"total": 0}

        def drain() -> None:
            while True:
                chunk = os.read(r, 1 << 16)
                if not chunk:
                    return
                state["total"] += len(chunk)
                if state["total"] <= limit:
                    chunks.append(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        ok = True
        try:
            getattr(self.g, method)(path, f"/dev/fd/{w}", **options)
        except RuntimeError:
            ok = False
        finally:
            os.close(w)
            reader.join()
            os.close(r)
        if not ok or state["total"] > limit:
            return None
        return b"".join(chunks)

    def tree(self, directory: str, limit: int, excludes: list[str] | None = None) -> dict[str, tuple[bytes | str, int]] | str:
        """A directory's regular files (path -> (bytes, mtime)) and symlinks (path -> (target as
        str, mtime)), read from one tar stream in memory; devices, FIFOs and sockets are left out.
        The mtime is kept: apt's lists are judged stale by it. tar stores a link inside the
        directory as a link (it does not follow it); the directory itself is streamed only when
        no link leads to it (a guest's /etc pointing at /root would stream /root). A string says
        why nothing was read."""
        try:
            st = self.g.lstatns(directory)
        except RuntimeError:
            return {}
        if stat.S_ISLNK(int(st["st_mode"])) or (stat.S_ISDIR(int(st["st_mode"])) and self.linked_dir(directory)):
            return f"{directory}: {LINK_REFUSED if stat.S_ISLNK(int(st['st_mode'])) else LINKED_DIR_REFUSED}"
        if not stat.S_ISDIR(int(st["st_mode"])):
            return {}
        data = self.stream("tar_out", directory, limit, excludes=excludes or [])
        if data is None:
            return f"{directory} could not be read whole (larger than {limit} bytes or unreadable)"
        out: dict[str, tuple[bytes | str, int]] = {}
        base = directory.rstrip("/")
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
                for member in archive:
                    name = member.name.removeprefix("./").strip("/")
                    if not name or ".." in name.split("/"):
                        continue
                    path = f"{base}/{name}"
                    if member.isreg():
                        handle = archive.extractfile(member)
                        if handle is not None:
                            out[path] = (handle.read(), int(member.mtime))
                    elif member.issym():
                        out[path] = (member.linkname, int(member.mtime))
        except (tarfile.TarError, EOFError):
            return f"{directory}: the tar stream of it could not be read"
        return out

def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else text)[:200]


def _explain(message: str) -> str:
    if "supermin" in message:
        return ("the libguestfs appliance could not be built (supermin failed): it needs a kernel in /boot and its modules "
                "in /lib/modules (apt install linux-image-amd64), or SUPERMIN_KERNEL and SUPERMIN_MODULES naming one")
    return f"the libguestfs appliance did not start: {_last_line(message)}"
