"""Xen with the xl toolstack: guests defined in xl.cfg(5) files under /etc/xen, the hypervisor's
own command line (GRUB_CMDLINE_XEN*, EFI xen.cfg, `xl info`), and on a live dom0 the running
domains from `xl list -l`."""

from __future__ import annotations

from typing import Any, ClassVar

from ...guests.model import Guest
from ...model import Unavailable
from ..base import Source
from . import collect as _collect
from .facts import XenFacts
from .guests import to_guests


class XenPlatform:
    name: ClassVar[str] = "xen"
    title: ClassVar[str] = "Xen"
    letter: ClassVar[str] = "X"
    facts_type: ClassVar[type[Any]] = XenFacts
    checks_module: ClassVar[str] = "hyperward.platforms.xen.checks"

    def detect(self, source: Source) -> bool:
        return source.fs is not None and _collect.detect(source.fs)

    def collect(self, source: Source) -> XenFacts:
        return _collect.collect(source.fs)

    def guests(self, facts: Any) -> list[Guest]:
        return to_guests(facts)

    def guest_bridges(self, facts: XenFacts) -> list[str]:
        """Bridges a vif names (vif-bridge's default xenbr0 when it names none)."""
        return sorted({n.source for g in to_guests(facts) for n in g.nics if n.attachment == "bridge" and n.source})

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

__all__ = ["PLATFORM", "XenFacts", "XenPlatform"]
