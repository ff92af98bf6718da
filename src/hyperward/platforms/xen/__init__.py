"""Xen with the xl toolstack: guests defined in xl.cfg(5) files under /etc/xen, the hypervisor's
own command line (GRUB_CMDLINE_XEN*, EFI xen.cfg, `xl info`), and on a live dom0 the running
domains from `xl list -l`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ...guests.model import Guest
    from ...model import Unavailable
    from ..base import Source
    from .facts import XenFacts

# Imported on every scan to ask detect(): the parsers, facts, collector and checks load only once
# Xen was found (the markers are collect.py's: xl.conf, the autostart directory, xendomains, xl).
XEN_MARKERS = ("/etc/xen/xl.conf", "/etc/xen/auto", "/etc/default/xendomains", "/usr/sbin/xl", "/usr/bin/xl")


class XenPlatform:
    name: ClassVar[str] = "xen"
    title: ClassVar[str] = "Xen"
    letter: ClassVar[str] = "X"
    checks_module: ClassVar[str] = "hyperward.platforms.xen.checks"

    @property
    def facts_type(self) -> type[XenFacts]:
        from .facts import XenFacts

        return XenFacts

    def detect(self, source: Source) -> bool:
        """The xl toolstack is installed, or this is a running dom0. /sys/hypervisor/type says "xen"
        in every Xen domain, guests included: only "control_d" in /proc/xen/capabilities marks dom0."""
        if source.fs is None:
            return False
        if any(source.fs.exists(p) for p in XEN_MARKERS):
            return True
        caps = source.fs.read_line("/proc/xen/capabilities", 256)
        return isinstance(caps, str) and "control_d" in caps.split(",")

    def collect(self, source: Source) -> XenFacts:
        from .collect import collect

        return collect(source.fs)

    def guests(self, facts: Any) -> list[Guest]:
        from .guests import to_guests

        return to_guests(facts)

    def snapshots(self, facts: Any) -> list[Guest]:
        """Saved domain images (`xl save`, which carry the configuration they restore with) are not read."""
        return []

    def guest_bridges(self, facts: XenFacts) -> list[str]:
        """Bridges in dom0 a vif joins (xl.conf's vif.default.bridge, else xenbr0, when it names
        none); a vif served by a driver domain joins a bridge in that domain, not in dom0."""
        from .guests import dom0_bridges

        return dom0_bridges(facts)

    def unreadable(self, facts: XenFacts) -> list[Unavailable]:
        return facts.unreadable()

    def no_guests(self, facts: XenFacts) -> str:
        return "no Xen domains defined (/etc/xen/*.cfg, /etc/xen/auto) or running"

    def warnings(self, facts: XenFacts) -> list[str]:
        return list(facts.notes)

    def iommu_state(self, facts: XenFacts) -> tuple[bool | None, str]:
        """Xen, not dom0's kernel, drives the IOMMU (HV-ISO-010 asks here, not /sys/kernel/iommu_groups)."""
        from .checks import iommu_state

        return iommu_state(facts)


PLATFORM = XenPlatform()

__all__ = ["PLATFORM", "XenPlatform"]
