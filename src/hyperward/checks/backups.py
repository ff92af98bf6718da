"""What backups and saved state expose: memory images on disk, unencrypted guest disks on the network."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import Domain, HostFacts
from ..model import Category, Result, Severity, Unavailable
from ._libvirt import NOT_INSTALLED, each_domain, qemu_setting, qemu_settings

STATE_DIRS = ("/var/lib/libvirt/qemu/save", "/var/lib/libvirt/qemu/snapshot")


@check("HV-BAK-004", Category.BAK, Severity.MEDIUM, "Saved memory state or dumps readable",
    fix="chmod 0600 the files and 0700 the directories under /var/lib/libvirt/qemu/save, snapshot and the auto_dump_path",
    references=("libvirt src/qemu/qemu.conf.in auto_dump_path",),
)
def saved_state(host: HostFacts) -> Iterator[Result]:
    """A managed-save image, memory snapshot or dump is the guest's whole RAM: keys, passwords, data."""
    if not host.libvirt.installed:
        yield Result.not_applicable(NOT_INSTALLED)
        return
    settings = qemu_settings(host)
    dump = str(qemu_setting(settings, "auto_dump_path").value) if isinstance(settings, dict) else "/var/lib/libvirt/qemu/dump"
    judged = False
    for path, node in sorted(host.libvirt.paths.items()):
        if not any(path == d or path.startswith(d + "/") for d in (*STATE_DIRS, dump)):
            continue
        judged = True
        if isinstance(node, Unavailable):
            yield Result.unavailable(node, path)
            continue
        if node.kind == "directory":
            bad = node.mode & 0o007
            expected = "0700 or 0711"
            bad = bad and node.mode & 0o007 != 0o001
        else:
            bad = node.mode & 0o077
            expected = "0600"
        if bad:
            yield Result.fail(path, f"mode {node.mode:04o} {node.owner or node.uid}:{node.group or node.gid} ({expected} expected)")
        else:
            yield Result.passed(path, f"mode {node.mode:04o}")
    if not judged:
        yield Result.not_applicable("no saved-state or dump directory under /var/lib/libvirt/qemu")


@check("HV-BAK-005", Category.BAK, Severity.MEDIUM, "Guest disks unencrypted on network storage",
    fix="encrypt the volume with LUKS through libvirt: <source ...><encryption format='luks'><secret type='passphrase' uuid='...'/></encryption></source>",
    references=("libvirt docs/formatstorageencryption.rst",),
)
def network_disk_encryption(host: HostFacts) -> Iterator[Result]:
    """On shared storage (iSCSI, RBD, NBD, Gluster) the disk's blocks are readable by the storage
    cluster and its admins, and by anyone who attaches the LUN."""

    def judge(d: Domain) -> list[str]:
        return [f"{disk.target or 'disk'} ({disk.protocol} {disk.source or ''}): not LUKS-encrypted".replace(" )", ")")
                for disk in d.disks if disk.type == "network" and disk.encryption not in ("luks", "luks2", "luks-any")]

    yield from each_domain(host, judge, applies=lambda d: any(x.type == "network" for x in d.disks),
                           none_reason="no domain uses network storage")
