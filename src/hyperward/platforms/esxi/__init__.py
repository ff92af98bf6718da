"""VMware ESXi and vCenter: hosts and VMs from the vSphere API (`--vsphere HOST`, pyvmomi) or
offline from an ESXi host's /etc/vmware and datastore copies of .vmx files. Judged against the
DISA VMware vSphere 8.0 STIG (ESXi and Virtual Machine) and Broadcom's vSphere Security
Configuration Guide 8."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ...guests.model import Guest
    from ...model import Unavailable
    from ..base import Source
    from .facts import EsxiFacts

# Imported on every scan to ask detect(): parsers, facts, pyvmomi and the checks load only once ESXi
# was found. The markers are collect.py's (esx.conf, hostd's config, the datastores); an offline
# tree that is no OS root is also searched for .vmx files, which needs the collector.
ESXI_MARKERS = ("/etc/vmware/esx.conf", "/etc/vmware/hostd/config.xml", "/vmfs/volumes")
OS_MARKERS = ("/etc/os-release", "/usr/lib/os-release", "/etc/debian_version")


class EsxiPlatform:
    name: ClassVar[str] = "esxi"
    title: ClassVar[str] = "VMware ESXi and vCenter"
    letter: ClassVar[str] = "E"
    checks_module: ClassVar[str] = "hyperward.platforms.esxi.checks"

    @property
    def facts_type(self) -> type[EsxiFacts]:
        from .facts import EsxiFacts

        return EsxiFacts

    def detect(self, source: Source) -> bool:
        if _endpoints(source):
            return True
        fs = source.fs
        if fs is None:
            return False
        if any(fs.exists(p) for p in ESXI_MARKERS):
            return True
        if fs.live or any(fs.exists(p) for p in OS_MARKERS):
            return False
        from .collect import detect

        return detect(fs)

    def collect(self, source: Source) -> EsxiFacts:
        from .collect import collect

        return collect(source.fs, _endpoints(source), source.settings.get("esxi"))

    def guests(self, facts: Any) -> list[Guest]:
        from .guests import to_guests

        return to_guests(facts)

    def snapshots(self, facts: Any) -> list[Guest]:
        """A VM's snapshot files (.vmsd, .vmsn) are not read: what a revert brings back is unknown here."""
        return []

    def guest_bridges(self, facts: EsxiFacts) -> list[str]:
        """ESXi guests attach to vSwitch port groups, not to bridges of the Linux host scanned."""
        return []

    def unreadable(self, facts: EsxiFacts) -> list[Unavailable]:
        from ...model import Unavailable

        return [vm for vm in facts.vms if isinstance(vm, Unavailable)]

    def no_guests(self, facts: EsxiFacts) -> str:
        if facts.errors and not facts.hosts:
            return "no ESXi VMs: every vSphere endpoint failed"
        return "no ESXi VMs (.vmx files or VMs in the inventory) found"

    def warnings(self, facts: EsxiFacts) -> list[str]:
        from ...model import Unavailable

        return [*(e.describe() if isinstance(e, Unavailable) else e for e in facts.errors), *facts.notes]


def _endpoints(source: Source) -> list[str]:
    raw = source.endpoints.get("esxi", "")
    return [e for e in raw.split("\n") if e]


PLATFORM = EsxiPlatform()

__all__ = ["PLATFORM", "EsxiPlatform"]
