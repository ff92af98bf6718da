"""Proxmox VE: QEMU/KVM and LXC driven by qemu-server and pve-container, without libvirt, with
its own firewall, users and backup jobs; configuration in the pmxcfs cluster tree /etc/pve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ...guests.model import Guest
    from ...model import Unavailable
    from ..base import Source
    from .facts import ProxmoxFacts

# The package is imported on every scan, Proxmox host or not: its parsers, facts and checks are
# imported only once detect() found Proxmox VE (or a snapshot holds its facts).
PVE_MARKERS = ("/etc/pve/.version", "/etc/pve/nodes", "/usr/bin/pveversion", "/var/lib/pve-cluster/config.db")


class ProxmoxPlatform:
    name: ClassVar[str] = "proxmox"
    title: ClassVar[str] = "Proxmox VE"
    letter: ClassVar[str] = "P"
    checks_module: ClassVar[str] = "hyperward.platforms.proxmox.checks"

    @property
    def facts_type(self) -> type[ProxmoxFacts]:
        from .facts import ProxmoxFacts

        return ProxmoxFacts

    def detect(self, source: Source) -> bool:
        return source.fs is not None and any(source.fs.exists(p) for p in PVE_MARKERS)

    def collect(self, source: Source) -> ProxmoxFacts:
        from .collect import collect

        return collect(source.fs)

    def guests(self, facts: Any) -> list[Guest]:
        from .guests import to_guests

        return to_guests(facts)

    def snapshots(self, facts: Any) -> list[Guest]:
        """Each `[name]` snapshot section of a qm.conf or pct.conf holds the full configuration a
        rollback writes back: mapped like the current one, as `name (vmid)@snapshot`."""
        from .guests import snapshot_guests

        return snapshot_guests(facts)

    def guest_bridges(self, facts: ProxmoxFacts) -> list[str]:
        """vmbrN bridges that carry a guest NIC (qemu-server's tapVMIDiN, or veth for containers);
        with the guest firewall on, the fwbrVMIDiN bridge in between carries it too."""
        from .parsers import parse_property_string

        bridges: set[str] = set()
        good, _bad = facts.guest_configs()
        for guest in good:
            for key, value in guest.config.items():
                if key.startswith("net") and key[3:].isdigit():
                    bridge = parse_property_string(value).get("bridge")
                    if bridge:
                        bridges.add(bridge)
        return sorted(bridges)

    def unreadable(self, facts: ProxmoxFacts) -> list[Unavailable]:
        _good, bad = facts.guest_configs()
        return list(bad)

    def no_guests(self, facts: ProxmoxFacts) -> str:
        from ...model import Unavailable

        if isinstance(facts.store, Unavailable):
            return f"Proxmox VE configuration unreadable ({facts.store.describe()})"
        return "no Proxmox VE VMs or containers defined"

    def warnings(self, facts: ProxmoxFacts) -> list[str]:
        return list(facts.notes)

    def guests_without_backup_job(self, facts: ProxmoxFacts) -> list[str]:
        """VMIDs in no enabled vzdump job (HV-BAK-002 fails them when no other backup covers them)."""
        from .checks import vzdump_coverage

        return [vmid for vmid, jobs in vzdump_coverage(facts).items() if not jobs]


PLATFORM = ProxmoxPlatform()

__all__ = ["PLATFORM", "ProxmoxPlatform"]
