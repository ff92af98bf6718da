"""What the host hands to guests: memory and CPUs, IOMMU groups and PCI classes, VFIO no-IOMMU
devices, mounts (to recognise a host disk given to a guest) and listening sockets."""

from __future__ import annotations

from ..facts import HardwareFacts, Maybe, Mount
from ..model import Unavailable
from ..parsers.proc import cpu_count, meminfo_total_kib, parse_mounts
from .fs import RootFS


def _iommu_groups(fs: RootFS) -> Maybe[dict[str, list[str]]]:
    base = "/sys/kernel/iommu_groups"
    listing = fs.listdir(base)
    if isinstance(listing, Unavailable):
        if listing.kind == "missing" and fs.exists("/sys/kernel"):
            return {}
        return listing
    groups = {}
    for group in listing:
        devices = fs.listdir(f"{base}/{group}/devices")
        groups[group] = devices if isinstance(devices, list) else []
    return groups


def collect_hardware(fs: RootFS) -> HardwareFacts:
    meminfo = fs.read_text("/proc/meminfo", 256 * 1024)
    mem: Maybe[int]
    if isinstance(meminfo, Unavailable):
        mem = meminfo
    else:
        total = meminfo_total_kib(meminfo)
        mem = total if total is not None else Unavailable("/proc/meminfo", "invalid", "no MemTotal line")
    online = fs.read_line("/sys/devices/system/cpu/online")
    cpus: Maybe[int]
    if isinstance(online, Unavailable):
        cpus = online
    else:
        count = cpu_count(online)
        cpus = count if count is not None else Unavailable("/sys/devices/system/cpu/online", "invalid", f"not a CPU list: {online[:40]!r}")
    groups = _iommu_groups(fs)
    classes = {}
    if isinstance(groups, dict):
        for members in groups.values():
            for bdf in members:
                value = fs.read_line(f"/sys/bus/pci/devices/{bdf}/class", 64)
                if isinstance(value, str):
                    classes[bdf] = value
    vfio = fs.listdir("/dev/vfio")
    noiommu = [f"/dev/vfio/{n}" for n in vfio if n.startswith("noiommu-")] if isinstance(vfio, list) else []
    mounts_text = fs.read_text("/proc/self/mounts" if fs.live else "/proc/mounts", 16 * 1024 * 1024)
    mounts: Maybe[list[Mount]] = mounts_text if isinstance(mounts_text, Unavailable) else parse_mounts(mounts_text)
    return HardwareFacts(
        mem_total_kib=mem,
        cpus=cpus,
        iommu_groups=groups,
        pci_classes=classes,
        vfio_noiommu=noiommu,
        mounts=mounts,
    )
