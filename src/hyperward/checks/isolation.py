"""Isolation of guests from the host: who may open /dev/kvm."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Category, Result, Severity, Unavailable

KVM_GROUP_MAX_MEMBERS = 5


def kvm_group_members(host: HostFacts) -> list[str] | None:
    """Members of group kvm: listed in /etc/group, or with kvm as their primary group."""
    groups, gids = host.accounts.groups, host.accounts.primary_gids
    if isinstance(groups, Unavailable) or "kvm" not in groups:
        return None
    entry = groups["kvm"]
    members = set(entry.members)
    if not isinstance(gids, Unavailable):
        members |= {user for user, gid in gids.items() if gid == entry.gid}
    return sorted(members)


@check("HV-ISO-021", Category.ISO, Severity.LOW, "/dev/kvm too widely accessible",
    fix="restore the udev rule KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0660\" (chown root:kvm /dev/kvm; chmod 0660) and remove needless members from group kvm",
    references=("libvirt docs/drvqemu.rst",),
)
def kvm_device_access(host: HostFacts) -> Iterator[Result]:
    """Whoever can open /dev/kvm can run guests and reach the KVM ioctl surface, the host kernel's
    largest guest-facing attack surface. Debian's udev rule makes it 0660 root:kvm."""
    dev = host.kvm_device
    if isinstance(dev, Unavailable):
        yield Result.unavailable(dev, "/dev/kvm")
        return
    problems = []
    if not dev.is_char_device:
        problems.append("not a character device")
    if dev.mode & 0o006:
        problems.append(f"world-accessible (mode {dev.mode:04o})")
    if dev.uid != 0:
        problems.append(f"owned by {dev.owner or dev.uid}, not root")
    group = dev.group or str(dev.gid)
    if dev.mode & 0o060 and group not in ("kvm", "root"):
        problems.append(f"group {group} has access (expected kvm)")
    members = kvm_group_members(host)
    if members is not None and len(members) > KVM_GROUP_MAX_MEMBERS:
        problems.append(f"{len(members)} members of group kvm (more than {KVM_GROUP_MAX_MEMBERS}): {', '.join(members)}")
    summary = f"mode {dev.mode:04o} {dev.owner or dev.uid}:{group}"
    if members:
        summary += f"; group kvm: {', '.join(members)}"
    if problems:
        yield Result.fail("/dev/kvm", f"{summary}; " + "; ".join(problems))
    else:
        yield Result.passed("/dev/kvm", summary)
