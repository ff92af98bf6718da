"""Proxmox VE: QEMU/KVM and LXC driven by qemu-server and pve-container, without libvirt, with
its own firewall, users and backup jobs; configuration in the pmxcfs cluster tree /etc/pve."""

from __future__ import annotations

from typing import Any, ClassVar

from ...guests.model import Guest
from ..base import Source
from . import collect as _collect
from .facts import ProxmoxFacts
from .guests import to_guests


class ProxmoxPlatform:
    name: ClassVar[str] = "proxmox"
    title: ClassVar[str] = "Proxmox VE"
    letter: ClassVar[str] = "P"
    facts_type: ClassVar[type[Any]] = ProxmoxFacts
    checks_module: ClassVar[str] = "hyperward.platforms.proxmox.checks"

    def detect(self, source: Source) -> bool:
        return source.fs is not None and _collect.detect(source.fs)

    def collect(self, source: Source) -> ProxmoxFacts:
        return _collect.collect(source.fs)

    def guests(self, facts: Any) -> list[Guest]:
        return to_guests(facts)


PLATFORM = ProxmoxPlatform()

__all__ = ["PLATFORM", "ProxmoxFacts", "ProxmoxPlatform"]
