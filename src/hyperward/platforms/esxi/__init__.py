"""VMware ESXi and vCenter: hosts and VMs from the vSphere API (`--vsphere HOST`, pyvmomi) or
offline from an ESXi host's /etc/vmware and datastore copies of .vmx files. Judged against the
DISA VMware vSphere 8.0 STIG (ESXi and Virtual Machine) and Broadcom's vSphere Security
Configuration Guide 8."""

from __future__ import annotations

from typing import Any, ClassVar

from ...guests.model import Guest
from ...model import Unavailable
from ..base import Source
from . import collect as _collect
from .facts import EsxiFacts
from .guests import to_guests


class EsxiPlatform:
    name: ClassVar[str] = "esxi"
    title: ClassVar[str] = "VMware ESXi and vCenter"
    letter: ClassVar[str] = "E"
    facts_type: ClassVar[type[Any]] = EsxiFacts
    checks_module: ClassVar[str] = "hyperward.platforms.esxi.checks"

    def detect(self, source: Source) -> bool:
        if _endpoints(source):
            return True
        return source.fs is not None and _collect.detect(source.fs)

    def collect(self, source: Source) -> EsxiFacts:
        return _collect.collect(source.fs, _endpoints(source), source.settings.get("esxi"))

    def guests(self, facts: Any) -> list[Guest]:
        return to_guests(facts)

    def guest_bridges(self, facts: EsxiFacts) -> list[str]:
        """ESXi guests attach to vSwitch port groups, not to bridges of the Linux host scanned."""
        return []

    def unreadable(self, facts: EsxiFacts) -> list[Unavailable]:
        return [vm for vm in facts.vms if isinstance(vm, Unavailable)]

    def no_guests(self, facts: EsxiFacts) -> str:
        if facts.errors and not facts.hosts:
            return "no ESXi VMs: every vSphere endpoint failed"
        return "no ESXi VMs (.vmx files or VMs in the inventory) found"

    def warnings(self, facts: EsxiFacts) -> list[str]:
        return [*(e.describe() if isinstance(e, Unavailable) else e for e in facts.errors), *facts.notes]


def _endpoints(source: Source) -> list[str]:
    raw = source.endpoints.get("esxi", "")
    return [e for e in raw.split("\n") if e]


PLATFORM = EsxiPlatform()

__all__ = ["PLATFORM", "EsxiFacts", "EsxiPlatform"]
