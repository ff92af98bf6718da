"""KVM/QEMU under libvirt: the files under /etc/libvirt and /run/libvirt, the libvirt API, and the
QEMU processes in /proc. Its facts are `LibvirtFacts`; its checks are the libvirt rows of the
catalog (hyperward.checks); its guests map from `Domain` (guests.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from ...facts import LibvirtFacts
from ...model import Result, Unavailable

if TYPE_CHECKING:
    from ...guests.model import Guest
    from ..base import Source


class LibvirtPlatform:
    name: ClassVar[str] = "libvirt"
    title: ClassVar[str] = "KVM/libvirt"
    letter: ClassVar[str] = "K"
    facts_type: ClassVar[type[LibvirtFacts]] = LibvirtFacts
    checks_module: ClassVar[str] = "hyperward.checks"

    def detect(self, source: Source) -> bool:
        """Always collected on a root: its collector says "not installed" itself, and the /proc
        QEMU inventory (rogue QEMU processes, HV-IDS-005) matters most where libvirt is absent."""
        return source.fs is not None

    def collect(self, source: Source) -> LibvirtFacts:
        from ...collect.libvirt import collect_libvirt

        assert source.fs is not None
        return collect_libvirt(source.fs, source.id_names, source.endpoints.get(self.name))

    def guests(self, facts: LibvirtFacts) -> list[Guest]:
        from .guests import domain_guests

        return domain_guests(facts)

    def snapshots(self, facts: LibvirtFacts) -> list[Guest]:
        from .guests import snapshot_guests

        return snapshot_guests(facts)

    def guest_bridges(self, facts: LibvirtFacts) -> list[str]:
        return facts.guest_bridges()

    def network_bridges(self, facts: LibvirtFacts) -> dict[str, str]:
        """A guest NIC of type network names the libvirt network; the network names its bridge."""
        from ...facts import Network

        return {n.name: n.bridge for n in facts.networks if isinstance(n, Network) and n.bridge}

    def unreadable(self, facts: LibvirtFacts) -> list[Unavailable]:
        """Definitions that could not be read, and snapshot metadata that could be read but not
        parsed (a snapshot denied to a scan without root's rights is a warning: see warnings())."""
        snapshots = [s for s in facts.snapshots if isinstance(s, Unavailable) and s.kind != "denied"]
        return [*(d for d in facts.domains if isinstance(d, Unavailable)), *snapshots]

    def no_guests(self, facts: LibvirtFacts) -> str:
        return "no libvirt domains defined" if facts.installed else "libvirt is not installed (no /etc/libvirt)"

    def console_settings(self, facts: LibvirtFacts) -> Iterator[Result]:
        """HV-AUTH-010's host-wide half: qemu.conf's vnc_listen/spice_listen apply to every console
        whose definition names no address of its own."""
        from ...addresses import is_loopback
        from ...parsers.libvirt_defaults import QEMU_CONF_DEFAULTS, effective

        if not facts.installed:
            return
        config = facts.configs.get("qemu.conf")
        settings = config.settings if config is not None else {}
        if isinstance(settings, Unavailable):
            if settings.kind != "missing":
                yield Result.unavailable(settings, "/etc/libvirt/qemu.conf")
                return
            settings = {}
        for kind in ("vnc", "spice"):
            listen = effective(settings, "/etc/libvirt/qemu.conf", f"{kind}_listen", QEMU_CONF_DEFAULTS)
            if not is_loopback(str(listen.value)):
                yield Result.fail(f"qemu.conf:{kind}_listen", f"{listen.describe()}: consoles without their own listen address are exposed")

    def warnings(self, facts: LibvirtFacts) -> list[str]:
        out = []
        api = facts.api
        if api is not None and not api.connected:
            out.append(f"libvirt API {api.uri}: {api.error}; libvirt checks judged the files under /etc/libvirt and /run/libvirt only")
        denied = [s.path for s in facts.snapshots if isinstance(s, Unavailable) and s.kind == "denied"]
        if denied:
            more = f" and {len(denied) - 1} more" if len(denied) > 1 else ""
            out.append(f"libvirt snapshot metadata not readable ({denied[0]}{more}: permission denied): "
                       "the settings a snapshot revert brings back were not judged")
        return out


PLATFORM = LibvirtPlatform()
