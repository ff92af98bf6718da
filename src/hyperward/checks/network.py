"""Network segmentation as libvirt defines it: anti-spoofing filters, forward modes, VLAN trunks,
guest-controlled RX filters, and where live migration listens."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import Domain, HostFacts, NetInterface
from ..model import Result, Severity, Unavailable
from ..reach import GUEST_PORT_PREFIXES
from ._libvirt import NOT_INSTALLED, as_int, domains, each_domain, qemu_setting, qemu_settings



@check("HV-NET-002",
    fix="use <forward mode='nat'/> or an isolated network, or firewall the routed network on the host and upstream",
    references=("libvirt docs/formatnetwork.rst (forward modes open, route)",),
)
def network_forward_mode(host: HostFacts) -> Iterator[Result]:
    """Forward mode 'open' adds no firewall rules at all, 'route' routes guests to the LAN with no
    NAT and only libvirt's minimal rules: guests are reachable from and reach everything routed."""
    networks = host.libvirt.networks
    if not networks:
        yield Result.not_applicable(NOT_INSTALLED if not host.libvirt.installed else "no libvirt networks defined")
        return
    for net in networks:
        if isinstance(net, Unavailable):
            yield Result.unavailable(net, net.path)
            continue
        mode = net.forward_mode or "isolated"
        if mode in ("open", "route"):
            yield Result.fail(f"network {net.name}", f"forward mode {mode} on bridge {net.bridge or '?'}: "
                              + ("libvirt installs no firewall rules" if mode == "open" else "routed without NAT; only libvirt's minimal rules"))
        else:
            yield Result.passed(f"network {net.name}", f"forward mode {mode}")


@check("HV-NET-004",
    fix="give the interface a single access VLAN: <vlan><tag id='N'/></vlan> without trunk='yes'",
    references=("libvirt docs/formatdomain.rst (Setting VLAN tag)",),
)
def vlan_trunk(host: HostFacts) -> Iterator[Result]:
    """A trunk puts the guest on several VLANs at once, bridging segments the network keeps apart."""

    def judge(d: Domain) -> tuple[list[str], Severity | None, list[str]]:
        trunks = [(n, i) for n, i in enumerate(d.interfaces, 1) if i.vlan_trunk or len(i.vlan_tags) > 1]
        return ([f"{i.target_dev or i.mac or i.source}: VLAN trunk ({', '.join(map(str, i.vlan_tags))})" for _, i in trunks],
                None, [e for n, _ in trunks for e in (f"devices/interface[{n}]/vlan", f"devices/interface[{n}]")])

    yield from each_domain(host, judge)


@check("HV-NET-005",
    fix="remove trustGuestRxFilters='yes' from the interface",
    references=("libvirt docs/formatdomain.rst (trustGuestRxFilters)",),
)
def trust_rx_filters(host: HostFacts) -> Iterator[Result]:
    """The host then follows the guest's MAC and multicast changes on the macvtap/VF: the guest can
    take over other MAC addresses (spoofing) and receive their traffic."""

    def judge(d: Domain) -> tuple[list[str], Severity | None, list[str]]:
        trusting = [(n, i) for n, i in enumerate(d.interfaces, 1) if i.trust_guest_rx_filters]
        return ([f"{i.target_dev or i.mac or i.source}: trustGuestRxFilters='yes'" for _, i in trusting],
                None, [f"devices/interface[{n}]" for n, _ in trusting])

    yield from each_domain(host, judge)


@check("HV-NET-007",
    fix="set migrate_tls_force = 1 and migration_address to a dedicated migration network address in /etc/libvirt/qemu.conf (or always migrate with --tunnelled over TLS/SSH)",
    references=("libvirt src/qemu/qemu.conf.in migrate_tls_force, migration_address", "libvirt docs/migration.rst"),
)
def migration_exposure(host: HostFacts) -> Iterator[Result]:
    """A migration stream carries the guest's entire RAM; unencrypted on a shared network anyone on
    the path reads it, and a listener on every address accepts it from anyone."""
    settings = qemu_settings(host)
    if isinstance(settings, Result):
        yield settings
        return
    tls = qemu_setting(settings, "migrate_tls_force")
    if as_int(tls.value) != 1:
        yield Result.fail("qemu.conf:migrate_tls_force", f"{tls.describe()}: native migration may run unencrypted")
    else:
        yield Result.passed("qemu.conf:migrate_tls_force", tls.describe())
    address = qemu_setting(settings, "migration_address")
    if str(address.value) in ("0.0.0.0", "::", "[::]", ""):
        yield Result.fail("qemu.conf:migration_address", f"{address.describe()}: incoming migrations listen on every address")
    else:
        yield Result.passed("qemu.conf:migration_address", address.describe())




def _segment(interfaces: dict[str, NetInterface], name: str) -> str:
    """The layer-2 segment of an interface: the bridge it is a port of, or itself."""
    iface = interfaces.get(name)
    if iface is None or not iface.master:
        return name
    master = interfaces.get(iface.master)
    return iface.master if master is None or master.kind == "bridge" else name


def guest_segments(host: HostFacts, interfaces: dict[str, NetInterface]) -> dict[str, list[str]]:
    """Segment -> what puts guests on it (domain NICs by bridge, network or macvtap parent, and
    bridge ports named like guest taps)."""
    out: dict[str, list[str]] = {}
    bridges = {n.name: n.bridge for n in host.libvirt.networks if not isinstance(n, Unavailable) and n.bridge}
    for d in domains(host)[0]:
        for i in d.interfaces:
            segment = None
            if i.type == "bridge" and i.source:
                segment = i.source
            elif i.type == "network" and i.source in bridges:
                segment = bridges[i.source]
            elif i.type == "direct" and i.source:
                segment = _segment(interfaces, i.source)
            if segment:
                out.setdefault(segment, []).append(f"guest {d.name}")
    owners = {i.target_dev: d.name for d in domains(host)[0] for i in d.interfaces if i.target_dev}
    for iface in interfaces.values():
        if iface.master and (iface.name.startswith(GUEST_PORT_PREFIXES) or iface.name in owners):
            owner = f" ({owners[iface.name]})" if iface.name in owners else ""
            out.setdefault(iface.master, []).append(f"port {iface.name}{owner}")
    return out


@check("HV-NET-003",
    fix="give management its own NIC or VLAN: move the host's address off the guest bridge (or put guests on a separate bridge/VLAN)",
    references=("NIST SP 800-125B (virtual network segmentation)",),
)
def management_segment(host: HostFacts) -> Iterator[Result]:
    """A guest on the management segment can ARP-spoof the gateway, reach SSH and libvirt's
    ports directly and sniff management traffic: segmentation is the first line beyond the firewall."""
    network = host.network
    if network is None or isinstance(network.interfaces, Unavailable):
        yield Result.not_applicable("no /sys/class/net under this root" if network is None else network.interfaces.describe())  # type: ignore[union-attr]
        return
    if isinstance(network.default_route, Unavailable):
        yield Result.unavailable(network.default_route, "/proc/net/route")
        return
    if not network.default_route:
        yield Result.not_applicable("no default route in /proc/net/route: no management interface to judge")
        return
    interfaces = network.interfaces
    guests = guest_segments(host, interfaces)
    for device in network.default_route:
        segment = _segment(interfaces, device)
        via = f" (port of bridge {segment})" if segment != device else ""
        if segment in guests:
            yield Result.fail(device, f"default-route interface{via} shares layer 2 with {', '.join(sorted(set(guests[segment]))[:6])}")
        else:
            yield Result.passed(device, f"default-route interface{via}; guests are on {', '.join(sorted(guests)) or 'no bridge'}")


@check("HV-FW-003",
    fix="for nwfilter on bridged guests: modprobe br_netfilter and sysctl net.bridge.bridge-nf-call-iptables=1 (and -ip6tables=1) via /etc/sysctl.d; otherwise filter in an nftables bridge table",
    references=("libvirt docs/formatnwfilter.rst", "Linux Documentation/networking/bridge.rst (br_netfilter)"),
)
def bridge_netfilter(host: HostFacts) -> Iterator[Result]:
    """Bridged frames reach the IP firewall (iptables FORWARD, nftables ip/inet hooks) only through
    br_netfilter with bridge-nf-call-iptables=1. libvirt's IP-level nwfilter rules on bridged NICs
    depend on it; without it they silently filter nothing. The state is reported either way."""
    network = host.network
    if network is None:
        yield Result.not_applicable("no /proc/sys/net under this root")
        return
    filtered = [f"{d.name} {i.target_dev or i.source}" for d in domains(host)[0] for i in d.interfaces
                if i.type in ("bridge", "ethernet") and i.filterref]
    nf = network.bridge_nf
    if isinstance(nf, Unavailable):
        yield Result.not_applicable(f"whether bridged traffic reaches the IP firewall is unknown: {nf.describe()}", "net.bridge")
        return
    state = "br_netfilter not loaded" if nf is None else ", ".join(f"{k}={v}" for k, v in sorted(nf.items()))
    for family in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        on = nf is not None and nf.get(family) == 1
        resource = f"net.bridge.{family}"
        if filtered and not on:
            yield Result.fail(resource, f"{state}: the nwfilter rules on bridged NICs ({', '.join(filtered[:4])}) do not see bridged traffic")
        elif on:
            yield Result.passed(resource, f"{state}: bridged guest traffic passes the host's IP firewall hooks")
        else:
            yield Result.passed(resource, f"{state}: bridged guest traffic bypasses the host's IP firewall; no nwfilter on bridged NICs relies on it")


@check("HV-NET-006",
    fix="ip link set PF vf N spoofchk on trust off (and in libvirt: no trustGuestRxFilters on hostdev interfaces)",
    references=("ip-link(8) (vf ... spoofchk, trust)",),
)
def sriov_vfs(host: HostFacts) -> Iterator[Result]:
    """A VF without spoof checking lets its guest send frames with any MAC; a trusted VF may enter
    promiscuous mode and change its MAC: both bypass every filter on the host bridge."""
    vfs = host.network.vfs if host.network is not None else None
    if vfs is None:
        yield Result.not_applicable("no live link information (offline root): /sys/class/net has no VF settings")
        return
    if isinstance(vfs, Unavailable):
        yield Result.unavailable(vfs, "ip -d link")
        return
    if not vfs:
        yield Result.not_applicable("no SR-IOV virtual functions (ip -d link shows no vfinfo_list under /sys/class/net devices)")
        return
    for vf in vfs:
        problems = []
        if vf.spoofchk is False:
            problems.append("spoofchk off")
        if vf.trust is True:
            problems.append("trust on")
        resource = f"{vf.pf} vf {vf.vf}"
        if problems:
            yield Result.fail(resource, f"{', '.join(problems)} (MAC {vf.mac or '?'})")
        else:
            yield Result.passed(resource, "spoofchk on, trust off")
