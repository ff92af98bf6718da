"""Which host services each guest network can reach: every (guest-facing bridge, listening socket)
pair evaluated through the host's nftables input path (parsers/nft.py). Pure: facts in, rows out."""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass

from .facts import HostFacts
from .model import Unavailable
from .parsers.nft import Packet, Ruleset, evaluate_all

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


@dataclass(frozen=True)
class Reach:
    source: str
    address: str
    port: int
    protocol: str
    process: str | None
    pid: int | None
    reachable: bool | None
    because: str

    def as_dict(self) -> dict:
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
    neighbour = address + 1 if not str(address).endswith((".254", ".255")) else address - 1
    return str(neighbour)


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


def reachability(host: HostFacts) -> list[Reach]:
    network = host.network
    if network is None:
        return []
    sockets = network.sockets if isinstance(network.sockets, list) else []
    rulesets = firewall_rulesets(host)
    problems = [f.describe() for f in (network.nftables, network.iptables_legacy) if isinstance(f, Unavailable)]
    unknown_reason = "; ".join(problems) or "no nftables ruleset read (offline root, or nft not installed)"
    all_addresses = [a for dev, addrs in network.addresses.items() if dev != "lo" for a in addrs]
    rows: list[Reach] = []
    present = set(network.interfaces) if isinstance(network.interfaces, dict) else None
    for bridge in guest_sources(host):
        if present is not None and bridge not in present:
            continue  # a defined but inactive network: no guest sends through it now
        own = network.addresses.get(bridge, [])
        for sock in sockets:
            proto = sock.protocol
            bound = ipaddress.ip_address(sock.address)
            if bound.is_loopback:
                rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, False, "bound to loopback"))
                continue
            if bound.is_unspecified:
                family_ok = [a for a in own + all_addresses if bound.version == 6 or ":" not in a]
                if not family_ok:
                    continue
                # a dual-stack [::] socket also takes IPv4: guests mostly reach the host by IPv4
                daddr = next((a for a in own if ":" not in a), next((a for a in own if not a.startswith("fe80")), family_ok[0]))
            else:
                daddr = sock.address
            saddr = next((_guest_address(a) for a in own if (":" in a) == (":" in daddr) and not a.startswith("fe80")), None)
            if not rulesets or problems:
                rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, None, unknown_reason))
                continue
            decision = evaluate_all(rulesets, Packet(bridge, saddr, daddr, proto, sock.port))
            reachable = {"accept": True, "drop": False}.get(decision.verdict)
            rows.append(Reach(bridge, sock.address, sock.port, proto, sock.process, sock.pid, reachable, decision.because))
    return sorted(rows, key=lambda r: (r.reachable is not True, port_label(r.port) is None, r.port, r.source, r.protocol))

