"""What a scan derives from the facts besides findings, computed once per scan and handed to every
reporter: the reachability matrix and the guest inventory. Reporters only format these; none
re-derives them from raw facts."""

from __future__ import annotations

from .facts import HostFacts
from .guests.model import Guest
from .reach import Reach
from .records import frozen


@frozen
class Artifacts:
    reachability: list[Reach]
    guests: list[Guest]


def compute(facts: HostFacts) -> Artifacts:
    return Artifacts(facts.reachability, list(facts.guests))

