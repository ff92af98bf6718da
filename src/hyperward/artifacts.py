"""What a scan derives from the facts besides findings, computed once per scan and handed to every
reporter: the reachability matrix and the guest inventory. Reporters only format these; none
re-derives them from raw facts."""

from __future__ import annotations

from dataclasses import field

from .facts import GuestInside, HostFacts
from .guests.model import Guest
from .reach import Reach
from .records import frozen


@frozen
class Artifacts:
    reachability: list[Reach]
    guests: list[Guest]
    #: virtual network name -> the host bridge it puts its guests on, for the platforms whose NICs
    #: name a network rather than a bridge (libvirt); the HTML report draws guest network -> bridge
    network_bridges: dict[str, str] = field(default_factory=dict)
    #: what the guests' disks hold, by (platform, guest id), when the scan looked inside
    insides: dict[tuple[str, str], GuestInside] = field(default_factory=dict)


def compute(facts: HostFacts) -> Artifacts:
    from .platforms import registry

    bridges: dict[str, str] = {}
    known = registry()
    for name, platform_facts in facts.platforms.items():
        # optional on a platform: only those whose guests attach to named networks have it
        mapping = getattr(known[name], "network_bridges", None) if name in known else None
        if mapping is not None:
            bridges.update(mapping(platform_facts))
    scan = facts.guest_insides
    insides = {(i.platform, i.guest_id): i for i in scan.guests} if scan is not None else {}
    return Artifacts(facts.reachability, list(facts.guests), bridges, insides)

