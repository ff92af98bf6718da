"""Which host services each guest network can reach: every (guest-facing bridge, listening socket)
pair evaluated through the host's nftables input path (parsers/nft.py). Pure: facts in, rows out."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict

from .facts import HostFacts
from .model import Unavailable
from .parsers.nft import Packet, Ruleset, evaluate_all
from .records import frozen

VIRT_PORTS = {16509: "libvirt TCP", 16514: "libvirt TLS", 22: "SSH", 8006: "Proxmox API", 3128: "Proxmox SPICE proxy",
              2049: "NFS", 111: "rpcbind", 3260: "iSCSI", 5404: "corosync", 5405: "corosync"}
GUEST_PORT_PREFIXES = ("vnet", "tap", "vif", "macvtap", "fwpr")


def port_label(port: int) -> str | None:
    if port in VIRT_PORTS:
        return VIRT_PORTS[port]
    if 5900 <= port <= 5999:
        return "VNC console"
    if 5700 <= port <= 5899:
        return "SPICE/websocket console"
    if 49152 <= port <= 49215:
        return "live migration"
    return None


@frozen
class Reach:
    source: str
    address: str
    port: int
    protocol: str
    process: str | None
    pid: int | None
    reachable: bool | None
    because: str
    family: str = "ipv4"
    listening: bool | None = True  # None: an offline tree, where no socket can be seen (a row per well-known port)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def guest_sources(host: HostFacts) -> list[str]:
    network = host.network
    bridges = set(host.guest_bridges())
    if network is not None and isinstance(network.interfaces, dict):
        for iface in network.interfaces.values():
            if iface.master and iface.name.startswith(GUEST_PORT_PREFIXES):
                bridges.add(iface.master)
    return sorted(bridges)


def _guest_address(host_address: str) -> str:
    """A representative guest address on the bridge's subnet: the host's own, plus one."""
    address = ipaddress.ip_address(host_address)
    neighbour = address + 1 if not str(address).endswith((".254", ".255", ":ffff")) else address - 1
    return str(neighbour)


def _family(address: str) -> str:
    return "ipv6" if ":" in address else "ipv4"


def _destinations(sock_address: str, own: list[str], others: list[str]) -> list[tuple[str, str]]:
    """(family, destination address) a guest on the bridge sends to for this socket. A socket on
    0.0.0.0 takes IPv4, one on :: takes IPv6 and, dual-stack by default (net.ipv6.bindv6only=0,
    and /proc/net does not show IPV6_V6ONLY), IPv4 too. A guest reaches the host's addresses on
    other interfaces as well (Linux accepts any local address on any interface), but IPv6 only
    arrives on a bridge that has IPv6 (an address, link-local at least)."""
    bound = ipaddress.ip_address(sock_address)
    if isinstance(bound, ipaddress.IPv6Address) and bound.ipv4_mapped is not None:
        return [("ipv4", str(bound.ipv4_mapped))]
    v4 = [a for a in own if ":" not in a] + [a for a in others if ":" not in a]
    own6 = [a for a in own if ":" in a]
    v6 = [a for a in own6 if not a.startswith("fe80")] + [a for a in own6 if a.startswith("fe80")] + [a for a in others if ":" in a]
    out = []
    if bound.is_unspecified:
        if own6 and v6 and bound.version == 6:
            out.append(("ipv6", v6[0]))
        if v4:
            out.append(("ipv4", v4[0]))
        return out
    if bound.version == 6 and not own6:
        return []
    return [(_family(sock_address), sock_address)]


def _source(own: list[str], destination: str) -> tuple[str | None, bool]:
    """A guest's source address for this destination, and whether it is on the bridge's own subnet."""
    six = ":" in destination
    candidates = [a for a in own if (":" in a) == six]
    if six and destination.startswith("fe80"):
        candidates = [a for a in candidates if a.startswith("fe80")]
    else:
        candidates = [a for a in candidates if not a.startswith("fe80")] or ([] if not six else [a for a in candidates if a.startswith("fe80")])
    return (_guest_address(candidates[0]), True) if candidates else (None, False)


def firewall_rulesets(host: HostFacts) -> list[tuple[str, Ruleset]]:
    """The rulesets the kernel applies: nftables (iptables-nft included) and legacy iptables."""
    network = host.network
    if network is None:
        return []
    out = []
    if isinstance(network.nftables, dict):
        out.append(("nftables", Ruleset(network.nftables)))
    if isinstance(network.iptables_legacy, dict):
        out.append(("iptables-legacy", Ruleset(network.iptables_legacy)))
    return out


OFFLINE_PORTS = [("tcp", p) for p in (22, 16509, 16514, 5900, 3128, 8006, 49152, 2049, 111, 3260)] + [("udp", 53), ("udp", 67)]
OFFLINE = "offline tree: listeners cannot be seen; by the rules, a service on this port would be"
PLACEHOLDER = {"ipv4": "192.0.2.1", "ipv6": "2001:db8::1"}


def offline(host: HostFacts) -> bool:
    """An offline tree without socket tables (/proc/net): what listens cannot be known."""
    network = host.network
    sockets = network.sockets if network is not None else None
    return host.meta.root not in ("", "/") and not (isinstance(sockets, list) and sockets)


def offline_reachability(host: HostFacts) -> list[Reach]:
    """For an offline tree: no socket can be seen, so a row per guest bridge and well-known
    virtualization port says what the rules would do with a guest's connection to it (host and
    guest addresses are not known either: matches on them make the row unknown)."""
    rulesets = firewall_rulesets(host)
    network = host.network
    problems = [f.describe() for f in (network.nftables, network.iptables_legacy) if isinstance(f, Unavailable)] if network else []
    rows = []
    for bridge in guest_sources(host):
        for proto, port in OFFLINE_PORTS:
            for family, daddr in PLACEHOLDER.items():
                if not rulesets or problems:
                    why = "; ".join(problems) or "no firewall ruleset read (nft not installed, not root, or no /etc/nftables.conf)"
                    rows.append(Reach(bridge, "*", port, proto, None, None, None, f"{OFFLINE} unknown: {why}", family, None))
                    continue
                decision = evaluate_all(rulesets, Packet(bridge, None, daddr, proto, port, own_subnet=False))
                reachable = {"accept": True, "drop": False}.get(decision.verdict)
                word = {True: "reachable", False: "unreachable", None: "unknown"}[reachable]
                rows.append(Reach(bridge, "*", port, proto, None, None, reachable, f"{OFFLINE} {word} ({decision.because})", family, None))
    return rows


def reachability(host: HostFacts) -> list[Reach]:
    network = host.network
    if network is None:
        return []
    if offline(host):
        return offline_reachability(host)
    sockets = network.sockets if isinstance(network.sockets, list) else []
    rulesets = firewall_rulesets(host)
    problems = [f.describe() for f in (network.nftables, network.iptables_legacy) if isinstance(f, Unavailable)]
    unknown_reason = "; ".join(problems) or "no nftables ruleset read (offline root, or nft not installed)"
    rows: list[Reach] = []
    present = set(network.interfaces) if isinstance(network.interfaces, dict) else None
    local = tuple(sorted({a for addrs in network.addresses.values() for a in addrs}))
    for bridge in guest_sources(host):
        if present is not None and bridge not in present:
            continue  # a defined but inactive network: no guest sends through it now
        own = network.addresses.get(bridge, [])
        others = [a for dev, addrs in network.addresses.items() if dev not in ("lo", bridge) for a in addrs]
        for sock in sockets:
            proto = sock.protocol
            try:
                bound = ipaddress.ip_address(sock.address)
            except ValueError:
                continue
            if bound.is_loopback:
                rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, False, "bound to loopback",
                                  _family(sock.address)))
                continue
            for family, daddr in _destinations(sock.address, own, others):
                saddr, own_subnet = _source(own, daddr)
                if not rulesets or problems:
                    rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, None, unknown_reason, family))
                    continue
                decision = evaluate_all(rulesets, Packet(bridge, saddr, daddr, proto, sock.port, own_subnet=own_subnet, local=local))
                reachable = {"accept": True, "drop": False}.get(decision.verdict)
                rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, reachable, decision.because, family))
    return sorted(rows, key=lambda r: (r.reachable is not True, port_label(r.port) is None, r.port, r.source, r.protocol, r.family))
