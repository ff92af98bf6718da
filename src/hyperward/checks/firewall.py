"""The host firewall as guests meet it: default policy on the input path, and which host services
each guest network reaches through the real nftables rules (hyperward.reach)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from ..engine import check
from ..facts import HostFacts
from ..model import Details, Result, Severity, Unavailable
from ..parsers.nft import NOT_LOADED, Packet, evaluate_all
from ..reach import Reach, firewall_rulesets, guest_sources, offline, port_label

PROBE = Packet("hyperward-probe0", "198.51.100.7", "203.0.113.9", "tcp", 65000, own_subnet=False)
DHCP_DNS = {("udp", 67), ("udp", 547), ("udp", 53), ("tcp", 53)}


def _no_ruleset(host: HostFacts) -> Result | None:
    """Why neither check can judge the firewall, when it cannot: nothing read, or a source unreadable."""
    network = host.network
    if network is None or (network.nftables is None and network.iptables_legacy is None):
        return Result.not_applicable("no firewall ruleset read: not root, nft not installed, or no /etc/nftables.conf in an offline root")
    for source in (network.nftables, network.iptables_legacy):
        if isinstance(source, Unavailable):
            return Result.unavailable(source, source.path)
    return None


_DECIDED = re.compile(r"(?:^|; )(?:(nftables|iptables-legacy): )?(policy \w+|rule \d+) of chain (\S+ \S+ [^\s;()]+)")


def rule_at(because: str) -> Details:
    """The rule that decided, as a stable logical location (nft -j lists handles, which change on
    every reload, and no lines): the ruleset, the chain ("inet filter input") and the rule's
    position in it, or "policy" when the chain's policy decided."""
    match = _DECIDED.search(because)
    if match is None:
        return {}
    ruleset, what, chain = match.groups()
    return {"ruleset": ruleset or "nftables", "chain": chain, "rule": what.split()[1] if what.startswith("rule") else "policy"}


def not_loaded(host: HostFacts) -> str:
    """Why a ruleset file of an offline tree does not count (its boot unit is not enabled), or ""."""
    network = host.network
    notes = [d.get(NOT_LOADED) for d in (network.nftables, network.iptables_legacy) if isinstance(d, dict)] if network else []
    return "; ".join(n for n in notes if isinstance(n, str))


def _label(row: Reach) -> str:
    return f"{row.protocol}/{row.port}" + (" ipv6" if row.family == "ipv6" else "")


def _offline_results(rows: list[Reach], note: str) -> Iterator[Result]:
    """Offline, nothing can be seen listening: per bridge, what the rules would let through."""
    for bridge in sorted({r.source for r in rows}):
        mine = [r for r in rows if r.source == bridge]
        allowed = [_label(r) for r in mine if r.reachable and (r.protocol, r.port) not in DHCP_DNS]
        unknown = [_label(r) for r in mine if r.reachable is None]
        parts = ["offline tree: listening sockets cannot be seen (no /proc/net), so reachability of real services needs a live host"]
        if note:
            parts.append(note)
        parts.append(f"by the rules, guests on {bridge} would reach " + (", ".join(allowed) if allowed else "none of the well-known virtualization ports"))
        if unknown:
            parts.append(f"unknown for {', '.join(unknown)} ({next(r.because for r in mine if r.reachable is None)})")
        yield Result.not_applicable("; ".join(parts), bridge)


@check("HV-FW-001",
    fix="set policy drop on the nftables input chain (chain input { type filter hook input priority 0; policy drop; ... }) and allow what is needed",
    references=("nft(8)", "nftables wiki: Simple ruleset for a server"),
)
def input_default_deny(host: HostFacts) -> Iterator[Result]:
    """Whatever the rules allow explicitly, a packet no rule mentions must be dropped: new services
    (a console, a migration port) otherwise open to everyone the day they start. Judged by sending a
    packet no rule should know (unknown interface, documentation addresses, port 65000) through the
    input path."""
    missing = _no_ruleset(host)
    if missing is not None:
        yield missing
        return
    decision = evaluate_all(firewall_rulesets(host), PROBE)
    note = not_loaded(host)
    at = rule_at(decision.because)
    if note and decision.verdict == "accept":
        yield Result.fail("input", f"{note}: the host boots with no rule from it and accepts an unexpected packet ({decision.because})", details=at)
    elif decision.verdict == "drop":
        yield Result.passed("input", f"an unexpected packet is dropped ({decision.because})", details=at)
    elif decision.verdict == "accept":
        yield Result.fail("input", f"an unexpected packet is accepted ({decision.because})", details=at)
    else:
        yield Result.error(f"default verdict unknown: {decision.because}", "input")


@check("HV-FW-002",
    fix="drop guest-bridge traffic to the host except DHCP/DNS of its own network: nftables `iifname \"virbr*\" udp dport { 53, 67 } accept; iifname \"virbr*\" drop` in the input chain",
    references=("libvirt docs/firewall.rst", "NIST SP 800-125B"),
)
def guest_reach(host: HostFacts) -> Iterator[Result]:
    """A guest that can reach libvirtd, a VNC console, SSH or a migration port on its own host
    attacks the hypervisor directly: the firewall in front of the guests is not enough."""
    if host.network is None or not guest_sources(host):
        yield Result.not_applicable("no guest-facing bridge on this host")
        return
    missing = _no_ruleset(host)
    if missing is not None:
        yield missing
        return
    rows = host.reachability
    note = not_loaded(host)
    if offline(host):
        yield from _offline_results(rows, note)
        return
    if note:
        rows = [replace(r, because=f"{note}; {r.because}") for r in rows]
    if not rows:
        yield Result.not_applicable("no listening socket in /proc/net, or no guest bridge is up in /sys/class/net")
        return
    for row in rows:
        label = port_label(row.port)
        what = f"{row.protocol}/{row.port}" + (f" {label}" if label else "") + (f" ({row.process})" if row.process else "")
        resource = f"{row.source} -> {row.address}:{row.port}/{row.protocol}" + (" ipv6" if row.family == "ipv6" else "")
        if row.reachable is None:
            yield Result.error(f"{what}: reachability unknown: {row.because}", resource)
        elif row.reachable and (row.protocol, row.port) not in DHCP_DNS:
            yield Result.fail(resource, f"{what} reachable from guests on {row.source} ({row.because})",
                              severity=Severity.CRITICAL if label and row.port in (16509, 16514) or (label or "").endswith("console") else None,
                              details=rule_at(row.because))
        else:
            yield Result.passed(resource, f"{what}: {'allowed (DHCP/DNS)' if row.reachable else 'not reachable'} ({row.because})")
