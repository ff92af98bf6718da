"""Oracle VirtualBox: a type-2 hypervisor on workstations and small servers. Each user has a
VirtualBox home (~/.config/VirtualBox/VirtualBox.xml, or the legacy ~/.VirtualBox) whose
MachineRegistry names that user's machine settings files (.vbox); VM processes run as that user."""

from __future__ import annotations

from typing import Any, ClassVar

from ...guests.model import Guest
from ...model import Unavailable
from ..base import Source
from . import collect as _collect
from .facts import VirtualBoxFacts
from .guests import to_guests


class VirtualBoxPlatform:
    name: ClassVar[str] = "virtualbox"
    title: ClassVar[str] = "VirtualBox"
    letter: ClassVar[str] = "V"
    facts_type: ClassVar[type[Any]] = VirtualBoxFacts
    checks_module: ClassVar[str] = "hyperward.platforms.virtualbox.checks"

    def detect(self, source: Source) -> bool:
        return _collect.detect(source)

    def collect(self, source: Source) -> VirtualBoxFacts:
        return _collect.collect(source)

    def guests(self, facts: Any) -> list[Guest]:
        return to_guests(facts)

    def guest_bridges(self, facts: VirtualBoxFacts) -> list[str]:
        """VirtualBox bridges a guest onto a host NIC itself (vboxnetflt), without a Linux bridge;
        host-only adapters (vboxnetN) are guest-facing host interfaces."""
        names: set[str] = set()
        for _home, m in facts.machines():
            if m.config is None:
                continue
            for nic in m.config.nics:
                if nic.enabled and nic.attachment == "hostonly" and nic.network:
                    names.add(nic.network)
        return sorted(names)

    def unreadable(self, facts: VirtualBoxFacts) -> list[Unavailable]:
        return [m for h in facts.homes for m in h.machines if isinstance(m, Unavailable)]

    def no_guests(self, facts: VirtualBoxFacts) -> str:
        if not facts.homes:
            return "VirtualBox is installed but no user has a VirtualBox.xml"
        encrypted = sum(1 for _h, m in facts.machines() if m.config is None)
        if encrypted:
            return f"no VirtualBox machine whose settings can be read ({encrypted} encrypted)"
        return "no VirtualBox machines registered"

    def warnings(self, facts: VirtualBoxFacts) -> list[str]:
        out = list(facts.notes)
        for home in facts.homes:
            if isinstance(home.global_file, Unavailable):
                out.append(f"VirtualBox home {home.path}: {home.global_file.describe()}")
            for entry in home.missing[:20]:
                out.append(f"VirtualBox home {home.path}: registered machine {entry.src[:200]} has no settings file; not audited")
            if len(home.missing) > 20:
                out.append(f"VirtualBox home {home.path}: {len(home.missing) - 20} more registered machines have no settings file")
        return out


PLATFORM = VirtualBoxPlatform()

__all__ = ["PLATFORM", "VirtualBoxFacts", "VirtualBoxPlatform"]
