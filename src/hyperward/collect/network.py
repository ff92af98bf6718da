"""Host networking from /sys/class/net and /proc/net: interfaces with their bridge and VLAN
relations, the default-route devices, and the br_netfilter switches."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from typing import Any

from ..facts import Maybe, NetInterface, NetworkFacts, SocketOwner, VirtualFunction
from ..model import Unavailable
from ..parsers.nft import NOT_LOADED
from ..parsers.proc import net_listeners
from . import commands
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
    bridge_nf: Maybe[dict[str, int]] | None = None
    if not fs.exists("/proc/sys/net"):
        bridge_nf = Unavailable("/proc/sys/net", "missing", "not found (no live kernel state under this root)")
    elif fs.exists("/proc/sys/net/bridge"):
        bridge_nf = {}
        for name in BRIDGE_NF:
            value = fs.read_int(f"/proc/sys/net/bridge/{name}")
            if isinstance(value, int):
                bridge_nf[name] = value
    return NetworkFacts(_interfaces(fs), _default_route(fs), bridge_nf, _addresses(fs), _socket_owners(fs), collect_nftables(fs), collect_vfs(fs),
                        collect_iptables_legacy(fs))




def _addresses(fs: RootFS) -> dict[str, list[str]]:
    """Interface -> its IPv4 addresses (/proc/net/fib_trie, "/32 host LOCAL" under the interface's
    prefix) and IPv6 addresses (/proc/net/if_inet6)."""
    out: dict[str, list[str]] = {}
    route = fs.read_text("/proc/net/route", 4 * 1024 * 1024)
    nets: list[tuple[str, ipaddress.IPv4Network]] = []
    if isinstance(route, str):
        for line in route.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[1] != "00000000":
                try:
                    dest = ipaddress.IPv4Address(bytes.fromhex(parts[1])[::-1])
                    mask = ipaddress.IPv4Address(bytes.fromhex(parts[7])[::-1])
                    nets.append((parts[0], ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)))
                except ValueError:
                    continue
    trie = fs.read_text("/proc/net/fib_trie", 8 * 1024 * 1024)
    if isinstance(trie, str):
        last = None
        for line in trie.splitlines():
            match = re.search(r"\|--\s+([\d.]+)", line)
            if match:
                last = match.group(1)
            elif "/32 host LOCAL" in line and last:
                address = ipaddress.IPv4Address(last)
                device = next((d for d, n in nets if address in n), "lo" if address.is_loopback else None)
                if device:
                    out.setdefault(device, [])
                    if last not in out[device]:
                        out[device].append(last)
    six = fs.read_text("/proc/net/if_inet6", 1024 * 1024)
    if isinstance(six, str):
        for line in six.splitlines():
            parts = line.split()
            if len(parts) >= 6:
                out.setdefault(parts[5], []).append(str(ipaddress.IPv6Address(int(parts[0], 16))))
    return out


def _socket_owners(fs: RootFS) -> Maybe[list[SocketOwner]]:
    """Listening sockets with the process holding them: socket inodes from /proc/net/* matched to
    /proc/PID/fd links (root sees every process; others only their own)."""
    inodes: dict[str, tuple[str, str, int]] = {}
    problems: list[Unavailable] = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        text = fs.read_text(f"/proc/net/{proto}", 64 * 1024 * 1024)
        if not isinstance(text, str):
            problems.append(text)
            continue
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) < 10 or ":" not in parts[1]:
                continue
            if proto.startswith("tcp") and parts[3] != "0A":
                continue
            for listener in net_listeners(f"header\n{line}", proto):
                inodes[parts[9]] = (listener.protocol, listener.address, listener.port)
    if len(problems) == 4:
        return problems[0]  # no socket table at all: unknown, not "nothing listens"
    owners: dict[str, tuple[str, int]] = {}
    if fs.live:
        listing = fs.listdir("/proc")
        for pid in listing if isinstance(listing, list) else []:
            if len(owners) == len(inodes):
                break  # every listener has its process: the rest of /proc cannot change the answer
            if not pid.isdigit():
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inode = target[8:-1]
                    if inode in inodes and inode not in owners:
                        comm = fs.read_line(f"/proc/{pid}/comm", 64)
                        owners[inode] = (comm if isinstance(comm, str) else "?", int(pid))
    return [SocketOwner(p, a, port, *(owners.get(inode, (None, None)))) for inode, (p, a, port) in sorted(inodes.items(), key=lambda i: (i[1][2], i[1][0]))]


_INCLUDE = re.compile(r'^(\s*include\s+")(/[^"]*)(")', re.M)


def _load_private(source: str, text: str, nft: str) -> Maybe[dict[str, Any]]:
    """nft loads `text` (nft syntax) into a private, empty network namespace made for the purpose
    and deleted at once; its JSON listing is the answer. The host's own ruleset is never touched."""
    ip = commands.find("ip")
    if ip is None:
        return Unavailable(source, "invalid", "iproute2 (ip) is not installed")
    namespace = f"hyperward-{os.getpid()}-{abs(hash(source)) % 10000}"
    made = commands.run([ip, "netns", "add", namespace], source)
    if isinstance(made, Unavailable):
        return Unavailable(source, "invalid", f"no private network namespace to load it into ({made.reason})")
    try:
        loaded = commands.run([ip, "netns", "exec", namespace, nft, "-f", "-"], source, input=text)
        if isinstance(loaded, Unavailable):
            return Unavailable(source, "invalid", f"nft rejects it ({loaded.reason})")
        listed = commands.run([ip, "netns", "exec", namespace, nft, "-j", "list", "ruleset"], source)
        return listed if isinstance(listed, Unavailable) else _ruleset_json(source, listed)
    finally:
        commands.run([ip, "netns", "del", namespace], source)


def _ruleset_json(source: str, text: str) -> Maybe[dict[str, Any]]:
    try:
        document = json.loads(text or '{"nftables": []}')
    except json.JSONDecodeError as exc:
        return Unavailable(source, "invalid", f"nft printed no JSON ({exc})")
    if not isinstance(document, dict):
        return Unavailable(source, "invalid", "nft printed no JSON object")
    return expand_anonymous_chains(document)


_ANONYMOUS = re.compile(r"^\s*(jump|goto)\s*\{(.*)\}\s*$", re.S)
_DECLARATIONS = ("table", "set", "map", "counter", "quota", "limit", "ct helper", "ct timeout", "ct expectation", "flowtable", "secmark",
                 "synproxy")


def expand_anonymous_chains(document: dict[str, Any]) -> dict[str, Any]:
    """nft 1.0 prints an anonymous chain (`jump { ... }`) as its nft text, with no JSON. Its rules
    are loaded, as a named chain of the same table, into a private empty network namespace next to
    the table's declarations (sets without elements: only the names matter to nft), and the JSON
    nft lists there replaces the text: the evaluator then follows a named jump. Left as text (the
    evaluator says "unknown") when that cannot be done."""
    items = document.get("nftables")
    if not isinstance(items, list):
        return document
    found: list[tuple[dict[str, Any], int, str, str]] = []
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        exprs = rule.get("expr") if isinstance(rule, dict) else None
        for index, expr in enumerate(exprs if isinstance(exprs, list) else []):
            match = _ANONYMOUS.match(expr) if isinstance(expr, str) else None
            if match and isinstance(rule, dict):
                found.append((rule, index, match.group(1), match.group(2)))
    nft, ip = commands.find("nft"), commands.find("ip")
    if not found or nft is None or ip is None or os.geteuid() != 0:
        return document
    declarations = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1 and next(iter(item)) in _DECLARATIONS and isinstance(item[next(iter(item))], dict):
            kind, body = next(iter(item.items()))
            declarations.append({kind: {k: v for k, v in body.items() if k not in ("handle", "elem")}})
    names = []
    text = []
    for number, (rule, _, _, body) in enumerate(found):
        name = f"hyperward_anonymous_{number}"
        names.append(name)
        text.append(f"table {rule.get('family')} {rule.get('table')} {{\n  chain {name} {{\n{body}\n  }}\n}}\n")
    namespace = f"hyperward-anon-{os.getpid()}"
    made = commands.run([ip, "netns", "add", namespace], "ip netns add")
    if isinstance(made, Unavailable):
        return document
    try:
        loaded = commands.run([ip, "netns", "exec", namespace, nft, "-j", "-f", "-"], "nft -j -f", input=json.dumps({"nftables": declarations}))
        if isinstance(loaded, Unavailable):
            return document
        loaded = commands.run([ip, "netns", "exec", namespace, nft, "-f", "-"], "nft -f", input="".join(text))
        if isinstance(loaded, Unavailable):
            return document
        listed = commands.run([ip, "netns", "exec", namespace, nft, "-j", "list", "ruleset"], "nft list ruleset")
    finally:
        commands.run([ip, "netns", "del", namespace], "ip netns del")
    try:
        scratch = json.loads(listed) if isinstance(listed, str) else {}
    except json.JSONDecodeError:
        return document
    added: list[dict[str, Any]] = []
    for item in scratch.get("nftables", []) if isinstance(scratch, dict) else []:
        for kind in ("chain", "rule"):
            body = item.get(kind) if isinstance(item, dict) else None
            if isinstance(body, dict) and (body.get("name") if kind == "chain" else body.get("chain")) in names:
                added.append({kind: body})
    listed_chains = {(i["chain"]["family"], i["chain"]["table"], i["chain"]["name"]) for i in added if "chain" in i}
    for number, (rule, index, kind, _) in enumerate(found):
        if (rule.get("family"), rule.get("table"), names[number]) in listed_chains:
            rule["expr"][index] = {kind: {"target": names[number]}}
    return {**document, "nftables": [*items, *added]}


def _translate_iptables(source: str, text: str) -> str | Unavailable:
    """iptables-save text to nft syntax with iptables' own translator (iptables-restore-translate,
    which reads only files)."""
    translator = commands.find("iptables-restore-translate")
    if translator is None:
        return Unavailable(source, "invalid", "iptables-restore-translate (package iptables) is not installed")
    with tempfile.NamedTemporaryFile("w", prefix="hyperward-iptables-", suffix=".rules") as handle:
        handle.write(text)
        handle.flush()
        return commands.run([translator, "-f", handle.name], source)


def collect_iptables_legacy(fs: RootFS) -> Maybe[dict[str, Any]] | None:
    """Legacy iptables rules (iptables-legacy-save on a live host, /etc/iptables/rules.v4 offline),
    translated by iptables itself and evaluated like nftables. None when there are none (as root only)."""
    nft = commands.find("nft")
    if nft is None or os.geteuid() != 0:
        return None
    if fs.live:
        save = commands.find("iptables-legacy-save")
        # Only when legacy tables exist: running iptables-legacy-save would otherwise make the
        # kernel load ip_tables, a change to the host.
        names = fs.read_text("/proc/net/ip_tables_names", 4096)
        if save is None or not isinstance(names, str) or not names.strip():
            return None
        saved = commands.run([save], "iptables-legacy-save")
        if isinstance(saved, Unavailable):
            return saved
        text, source = saved, "iptables-legacy-save"
    else:
        read = fs.read_text("/etc/iptables/rules.v4", 4 * 1024 * 1024)
        if isinstance(read, Unavailable):
            return None if read.kind == "missing" else read
        text, source = read, "/etc/iptables/rules.v4"
        unloaded = _not_loaded(fs, source, "netfilter-persistent.service")
        if unloaded is not None:
            return unloaded
    if "-A " not in text and not re.search(r"^:INPUT (DROP|REJECT)", text, re.M):
        return None  # no rule and default policies: legacy iptables is not in use
    translated = _translate_iptables(source, text)
    if isinstance(translated, Unavailable):
        return translated
    return _load_private(source, translated, nft)


OTHER_FIREWALLS = ("firewalld.service", "ufw.service", "shorewall.service", "ferm.service")


def unit_enabled(fs: RootFS, unit: str) -> bool:
    """Linked into a .wants or .requires directory of /etc/systemd/system or the vendor unit
    directories, and not masked: the unit starts at boot."""
    if any(fs.is_masked_unit(f"{d}/{unit}") for d in ("/etc/systemd/system", "/run/systemd/system")):
        return False
    for base in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"):
        listing = fs.listdir(base)
        for entry in listing if isinstance(listing, list) else []:
            if entry.endswith((".wants", ".requires")):
                wanted = fs.listdir(f"{base}/{entry}")
                if isinstance(wanted, list) and unit in wanted:
                    return True
    return False


def _not_loaded(fs: RootFS, path: str, unit: str) -> Maybe[dict[str, Any]] | None:
    """An offline tree's firewall file counts only when the unit that loads it at boot is enabled
    (Debian installs nftables.service disabled). Not enabled: the host boots with no rule from
    it, an empty ruleset that says why; None when another firewall builds the rules at boot."""
    if unit_enabled(fs, unit):
        return None
    other = next((u for u in OTHER_FIREWALLS if unit_enabled(fs, u)), None)
    if other is not None:
        return Unavailable(path, "missing", f"{path} is not loaded ({unit} is not enabled) and {other} builds the ruleset at boot, "
                                            "which an offline tree does not show")
    return {"nftables": [], NOT_LOADED: f"{path} exists but {unit} is not enabled: the ruleset is not loaded at boot"}


def _offline_ruleset(fs: RootFS, nft: str) -> Maybe[dict[str, Any]] | None:
    """An offline root's /etc/nftables.conf, loaded by the real nft into a private, empty network
    namespace made for the purpose and deleted at once (as root only): nft itself parses it, and
    the host's own ruleset is never touched. Absolute includes are resolved inside the root."""
    path = "/etc/nftables.conf"
    text = fs.read_text(path, 4 * 1024 * 1024)
    if isinstance(text, Unavailable) or os.geteuid() != 0:
        return None
    unloaded = _not_loaded(fs, path, "nftables.service")
    if unloaded is not None:
        return unloaded
    rewritten = _INCLUDE.sub(lambda m: m.group(1) + fs.local_path(m.group(2)) + m.group(3), text)
    return _load_private(path, rewritten, nft)


def _module_available(fs: RootFS, module: str) -> bool:
    """Loaded or built in, or no module files to load it from: asking then changes nothing."""
    loaded = fs.read_text("/proc/modules", 4 * 1024 * 1024)
    if isinstance(loaded, str) and re.search(rf"^{module}\s", loaded, re.M):
        return True
    release = fs.read_line("/proc/sys/kernel/osrelease", 256)
    if not isinstance(release, str) or not fs.exists(f"/lib/modules/{release}"):
        return True
    builtin = fs.read_text(f"/lib/modules/{release}/modules.builtin", 16 * 1024 * 1024)
    return isinstance(builtin, str) and f"/{module}.ko" in builtin


def collect_nftables(fs: RootFS) -> Maybe[dict[str, Any]] | None:
    """The live ruleset, from the kernel (`nft -j list ruleset`, read-only, root only); for an
    offline root, its /etc/nftables.conf (see _offline_ruleset)."""
    binary = commands.find("nft")
    if binary is None:
        return None
    if not fs.live:
        return _offline_ruleset(fs, binary)
    if not _module_available(fs, "nf_tables"):
        return {"nftables": []}  # nf_tables not loaded: no nftables rule exists (and nft would load it)
    if os.geteuid() != 0:
        return Unavailable("nft list ruleset", "denied", "reading the ruleset needs root")
    listed = commands.run(_nft_list(binary), "nft list ruleset")
    return listed if isinstance(listed, Unavailable) else _ruleset_json("nft list ruleset", listed)


def parse_ip_link_vfs(text: str) -> list[VirtualFunction]:
    """`ip -j -d link show`: links with a vfinfo_list (SR-IOV physical functions)."""
    out = []
    for link in json.loads(text or "[]"):
        for vf in link.get("vfinfo_list") or []:
            out.append(VirtualFunction(str(link.get("ifname", "?")), int(vf.get("vf", -1)), vf.get("address"),
                                       vf.get("spoofchk") if isinstance(vf.get("spoofchk"), bool) else None,
                                       vf.get("trust") if isinstance(vf.get("trust"), bool) else None))
    return out


def _nft_list(binary: str) -> list[str]:
    return [binary, "-j", "list", "ruleset"]


def _ip_link(binary: str) -> list[str]:
    return [binary, "-j", "-d", "link", "show"]


def live_commands(fs: RootFS) -> list[list[str]]:
    """The read-only commands collect_network will run on this live host, so they can start early."""
    if not fs.live:
        return []
    out = []
    nft, ip = commands.find("nft"), commands.find("ip")
    if nft is not None and os.geteuid() == 0 and _module_available(fs, "nf_tables"):
        out.append(_nft_list(nft))
    if ip is not None:
        out.append(_ip_link(ip))
    return out


def collect_vfs(fs: RootFS) -> Maybe[list[VirtualFunction]] | None:
    binary = commands.find("ip")
    if not fs.live or binary is None:
        return None
    out = commands.run(_ip_link(binary), "ip -d link")
    if isinstance(out, Unavailable):
        return out
    try:
        return parse_ip_link_vfs(out)
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        return Unavailable("ip -d link", "invalid", f"unexpected output ({exc})")
