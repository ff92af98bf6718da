"""Oracle VirtualBox: a type-2 hypervisor on workstations and small servers. Each user has a
VirtualBox home (~/.config/VirtualBox/VirtualBox.xml, or the legacy ~/.VirtualBox) whose
MachineRegistry names that user's machine settings files (.vbox); VM processes run as that user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from . import detect as _detect

if TYPE_CHECKING:
    from ...guests.model import Guest
    from ...model import Unavailable
    from ..base import Source
    from .facts import VirtualBoxFacts


class VirtualBoxPlatform:
    name: ClassVar[str] = "virtualbox"
    title: ClassVar[str] = "VirtualBox"
    letter: ClassVar[str] = "V"
    checks_module: ClassVar[str] = "hyperward.platforms.virtualbox.checks"

    @property
    def facts_type(self) -> type[VirtualBoxFacts]:
        from .facts import VirtualBoxFacts

        return VirtualBoxFacts

    def detect(self, source: Source) -> bool:
        return _detect.detect(source)

    def collect(self, source: Source) -> VirtualBoxFacts:
        from .collect import collect

        return collect(source)

    def guests(self, facts: Any) -> list[Guest]:
        from .guests import to_guests

        return to_guests(facts)

    def snapshots(self, facts: Any) -> list[Guest]:
        from .guests import snapshot_guests

        return snapshot_guests(facts)

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
        from ...model import Unavailable

        return [m for h in facts.homes for m in h.machines if isinstance(m, Unavailable)]

    def no_guests(self, facts: VirtualBoxFacts) -> str:
        if not facts.homes:
            return "VirtualBox is installed but no user has a VirtualBox.xml"
        encrypted = sum(1 for _h, m in facts.machines() if m.config is None)
        if encrypted:
            return f"no VirtualBox machine whose settings can be read ({encrypted} encrypted)"
        return "no VirtualBox machines registered"

    def warnings(self, facts: VirtualBoxFacts) -> list[str]:
        from ...model import Unavailable

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

__all__ = ["PLATFORM", "VirtualBoxPlatform"]
