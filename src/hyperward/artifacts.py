"""What a scan derives from the facts besides findings, computed once per scan and handed to every
reporter: the reachability matrix and the guest inventory. Reporters only format these; none
re-derives them from raw facts."""

from __future__ import annotations

from dataclasses import dataclass, field

from .facts import GuestInside, HostFacts
from .guests.model import Guest
from .reach import Reach


@dataclass(frozen=True)
class Artifacts:
    reachability: list[Reach]
    guests: list[Guest]
    #: what the guests' disks hold, by (platform, guest id), when the scan looked inside
    insides: dict[tuple[str, str], GuestInside] = field(default_factory=dict)


def compute(facts: HostFacts) -> Artifacts:
    scan = facts.guest_insides
    insides = {(i.platform, i.guest_id): i for i in scan.guests} if scan is not None else {}
    return Artifacts(facts.reachability, list(facts.guests), insides)

