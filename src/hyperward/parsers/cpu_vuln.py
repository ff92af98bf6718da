"""/sys/devices/system/cpu/vulnerabilities/* values (Documentation/ABI/testing/sysfs-devices-system-cpu).

A value is a main status ("Not affected", "Vulnerable...", "Mitigation: ...", "Unknown: ...")
optionally followed by "; "-separated sub-clauses, e.g. spectre_v2's
"Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Vulnerable".
"""

from __future__ import annotations

import re

from ..records import frozen


@frozen
class Clause:
    name: str | None
    text: str

    @property
    def vulnerable(self) -> bool:
        """The kernel's own words for "not mitigated" in this clause (arch/x86/kernel/cpu/bugs.c):
        "Vulnerable..." anywhere (also "Mitigation: Vulnerable, KVM: Not affected"), a clause that
        starts lower-case "vulnerable" (l1tf's "VMX: vulnerable"), itlb_multihit's "Processor
        vulnerable", and spectre_v2's trailing " - vulnerable module loaded". "SMT vulnerable" is
        not here: it says SMT is on, which HV-SIDE-003 judges."""
        low = self.text.lower()
        return (
            "Vulnerable" in self.text
            or low.startswith(("vulnerable", "processor vulnerable"))
            or "vulnerable module loaded" in low
        )
_NAMED = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*(?: [A-Za-z0-9_-]+)?): (.*)$")


def parse_vulnerability(text: str) -> list[Clause]:
    """First clause is the main status (name None); the rest are named where they have a "Name: " prefix."""
    parts = [p.strip() for p in text.strip().split(";")]
    parts = [p for p in parts if p]
    clauses: list[Clause] = []
    for index, part in enumerate(parts):
        if index == 0:
            clauses.append(Clause(None, part))
            continue
        match = _NAMED.match(part)
        clauses.append(Clause(match.group(1), match.group(2)) if match else Clause(None, part))
    return clauses


_PREFIXED = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*: (.*)$")


def main_status(text: str) -> str:
    """"not_affected", "mitigated", "vulnerable", "unknown" or "unrecognized" for the main clause.

    The main clause may carry a component prefix, as in itlb_multihit's "KVM: Mitigation: Split huge pages"."""
    head = text.strip().split(";", 1)[0].strip()
    for prefix, state in (("Not affected", "not_affected"), ("Mitigation", "mitigated"), ("Vulnerable", "vulnerable"), ("Unknown", "unknown")):
        if head.startswith(prefix):
            return state
    match = _PREFIXED.match(head)
    if match:
        return main_status(match.group(1))
    if head.startswith("Processor vulnerable"):
        return "vulnerable"
    return "unrecognized"
