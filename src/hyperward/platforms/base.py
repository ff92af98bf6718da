"""The one seam between hyperward and a hypervisor.

A platform says whether it is present on a source, collects its own facts from it, maps its VMs and
containers onto the neutral Guest, and registers its own checks. A source is a root filesystem (the
live host or an offline copy), an API endpoint, or both: ESXi has no root filesystem and is
collected from its API alone, and one scan can hold several platforms (a Proxmox node also has
libvirt installed; a workstation runs VirtualBox beside KVM).
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..records import frozen

if TYPE_CHECKING:
    from ..collect.fs import RootFS
    from ..guests.model import Guest
    from ..model import Unavailable


@frozen
class Source:
    """What a scan was pointed at. `fs` is None for an API-only source; `endpoints` holds the API
    endpoints the user named, by platform (`--connect` for libvirt, `--vbox-home` for VirtualBox:
    a copied VirtualBox home directory on this machine)."""

    fs: RootFS | None
    endpoints: dict[str, str] = field(default_factory=dict)
    #: the host's user and group names by id, for platforms that judge file ownership
    id_names: tuple[dict[int, str], dict[int, str]] = field(default_factory=lambda: ({}, {}))
    #: platform settings by platform name that are not endpoints (ESXi: credentials source, TLS)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.fs is not None and self.fs.live


class Platform(Protocol):
    #: short name used in facts, results and `--platform` ("libvirt", "proxmox")
    name: ClassVar[str]
    #: what people call it ("KVM/libvirt", "Proxmox VE")
    title: ClassVar[str]
    #: the catalog's platform letter (K, P, X, V, E)
    letter: ClassVar[str]
    #: module whose import registers the platform's own checks
    checks_module: ClassVar[str]

    @property
    def facts_type(self) -> type[Any]:
        """The frozen dataclass its collect() returns, for snapshot decoding (a property, so a
        platform imports its facts module only when a scan needs it)."""
        ...
    def detect(self, source: Source) -> bool:
        """Whether the platform is installed or reachable on this source (cheap: a few stats)."""
        ...

    def collect(self, source: Source) -> Any:
        """The platform's facts (an instance of facts_type); never raises for bad input, which
        becomes Unavailable values naming the path."""
        ...

    def guests(self, facts: Any) -> list[Guest]:
        """Its VMs and containers on the neutral model."""
        ...

    def snapshots(self, facts: Any) -> list[Guest]:
        """The settings its guests' snapshots bring back on restore, each on the neutral model with
        `snapshot` set, where the platform's collector reads them (empty where it does not)."""
        ...

    def guest_bridges(self, facts: Any) -> list[str]:
        """Host bridges its guests attach to: reachability and IDS coverage treat them as guest-facing."""
        ...

    def unreadable(self, facts: Any) -> list[Unavailable]:
        """Guest definitions it found but could not read: each becomes an error naming the file."""
        ...

    def no_guests(self, facts: Any) -> str:
        """Why it has no guests ("libvirt is not installed (no /etc/libvirt)", "no VMs defined")."""
        ...

    def warnings(self, facts: Any) -> list[str]:
        """Scan-wide caveats (an API that did not answer, so only files were judged)."""
        ...
