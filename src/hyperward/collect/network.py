"""Host networking from /sys/class/net and /proc/net: interfaces with their bridge and VLAN
relations, the default-route devices, and the br_netfilter switches."""

from __future__ import annotations

import os

from ..facts import Maybe, NetInterface, NetworkFacts
from ..model import Unavailable
from .fs import RootFS

BRIDGE_NF = ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables")


def _interfaces(fs: RootFS) -> Maybe[dict[str, NetInterface]]:
    listing = fs.listdir("/sys/class/net")
    if isinstance(listing, Unavailable):
        return listing
    vlans: dict[str, str] = {}
    config = fs.read_text("/proc/net/vlan/config", 1024 * 1024)
    if isinstance(config, str):
        for line in config.splitlines()[2:]:
            parts = [p.strip() for p in line.split("|")]
            if len(parts) == 3:
                vlans[parts[0]] = parts[2]
    out = {}
    for name in listing:
        base = f"/sys/class/net/{name}"
        uevent = fs.read_text(f"{base}/uevent", 64 * 1024)
        kind = "ethernet"
        if isinstance(uevent, str):
            for line in uevent.splitlines():
                if line.startswith("DEVTYPE="):
                    kind = line.split("=", 1)[1]
        if fs.exists(f"{base}/bridge"):
            kind = "bridge"
        master = None
        try:
            master = os.path.basename(os.readlink(os.path.join(fs.local_path(base), "master")))
        except OSError:
            master = None
        parent = vlans.get(name)
        if parent is None and kind == "vlan":
            links = fs.listdir(base)
            parent = next((n[len("lower_"):] for n in links if n.startswith("lower_")), None) if isinstance(links, list) else None
        out[name] = NetInterface(name, kind, master, parent)
    return out


def _default_route(fs: RootFS) -> Maybe[list[str]]:
    text = fs.read_text("/proc/net/route", 4 * 1024 * 1024)
    if isinstance(text, Unavailable):
        return text
    devices = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[1] == "00000000" and parts[7] == "00000000":
            devices.append(parts[0])
    six = fs.read_text("/proc/net/ipv6_route", 4 * 1024 * 1024)
    if isinstance(six, str):
        for line in six.splitlines():
            parts = line.split()
            if len(parts) >= 10 and parts[0] == "0" * 32 and parts[1] == "00" and parts[9] != "lo":
                devices.append(parts[9])
    return sorted(set(devices))


def collect_network(fs: RootFS) -> NetworkFacts:
    bridge_nf: dict[str, int] | None = None
    if fs.exists("/proc/sys/net/bridge"):
        bridge_nf = {}
        for name in BRIDGE_NF:
            value = fs.read_int(f"/proc/sys/net/bridge/{name}")
            if isinstance(value, int):
                bridge_nf[name] = value
    return NetworkFacts(_interfaces(fs), _default_route(fs), bridge_nf)
