"""How often reachability comes out "unknown" on real-world rulesets (issue 12: 37% of 2,861 pairs).

Each .nft file is loaded by the real nft into a private network namespace (as root; dummy devices
for the interface names rulesets name with `iif`), listed as JSON the way hyperward reads a live
host, and every (guest-facing interface, listening socket) pair of a synthetic hypervisor is
evaluated: libvirt's virbr0 (192.168.122.1, link-local IPv6), a bridge br0 with IPv4 and a global
IPv6 prefix, a Proxmox vmbr0 without an address, and every interface name the ruleset itself
matches with iifname (so zone rules are exercised); TCP listeners on [::] (dual-stack) for SSH,
DNS, HTTP(S), 2022, 3128, VNC, 8006, 8443, 9090, libvirt, migration; UDP on 0.0.0.0 for DNS, DHCP,
NTP and on [::] for DHCPv6.

    python bench/bench_reach_unknown.py tests/fixtures/nft-corpus [more dirs] [--old REV] [--json]

--old REV also evaluates every pair with src/hyperward/parsers/nft.py as of git revision REV (the
evaluator before this change) on the unexpanded listing, for the before/after numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "src"))

from hyperward.collect.network import expand_anonymous_chains  # noqa: E402
from hyperward.parsers.nft import Packet, Ruleset  # noqa: E402
from hyperward.reach import _destinations, _source  # noqa: E402

DEVICES = ("eth0", "eth1", "eth2", "bond0", "bond1", "wan0", "enp1s0", "vmi0", "wg0", "docker0")
SOURCES = {"virbr0": ["192.168.122.1", "fe80::5054:ff:fe00:1"], "br0": ["10.77.0.1", "2001:db8:122::1", "fe80::1"], "vmbr0": []}
HOST_OTHER = ["10.20.0.5", "2001:db8:20::5"]
TCP = (22, 53, 80, 443, 2022, 3128, 5900, 5901, 8006, 8443, 9090, 16509, 16514, 49152)
UDP = (53, 67, 123)
SOCKETS = [("tcp", "::", p) for p in TCP] + [("udp", "0.0.0.0", p) for p in UDP] + [("udp", "::", 547)]


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)


def load(path: pathlib.Path, tag: str) -> tuple[dict[str, Any] | None, str]:
    namespace = f"hwre-bench-{os.getpid()}-{tag}"
    if _run(["ip", "netns", "add", namespace]).returncode != 0:
        return None, "cannot create a network namespace (root?)"
    try:
        for device in DEVICES:
            _run(["ip", "-n", namespace, "link", "add", device, "type", "dummy"])
        loaded = _run(["ip", "netns", "exec", namespace, "nft", "-f", str(path)])
        if loaded.returncode != 0:
            return None, loaded.stderr.strip().splitlines()[0] if loaded.stderr.strip() else "nft failed"
        listed = _run(["ip", "netns", "exec", namespace, "nft", "-j", "list", "ruleset"])
        return json.loads(listed.stdout), ""
    finally:
        _run(["ip", "netns", "del", namespace])


def old_evaluator(rev: str) -> Any:
    source = subprocess.run(["git", "show", f"{rev}:src/hyperward/parsers/nft.py"], capture_output=True, text=True, check=True,
                            cwd=pathlib.Path(__file__).resolve().parent.parent).stdout
    handle = tempfile.NamedTemporaryFile("w", suffix=".py", delete=False)
    handle.write(source)
    handle.close()
    spec = importlib.util.spec_from_file_location("nft_old", handle.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["nft_old"] = module
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def sources_for(document: dict[str, Any]) -> dict[str, list[str]]:
    """The synthetic bridges plus every literal interface name the ruleset matches on."""
    names = set(re.findall(r"'iifname'\}\}, 'right': '([^'*]+)'", repr(document)))
    names |= {n for s in re.findall(r"'iifname'\}\}, 'right': \{'set': \[([^\]]*)\]", repr(document)) for n in re.findall(r"'([^'*]+)'", s)}
    out = dict(SOURCES)
    for number, name in enumerate(sorted(names - {"lo"} - set(SOURCES))):
        out[name] = [f"10.99.{number % 250}.1", "fe80::99:1"]
    return out


def pairs(document: dict[str, Any]) -> list[Packet]:
    out = []
    sources = sources_for(document)
    local = tuple(sorted({a for addrs in sources.values() for a in addrs} | set(HOST_OTHER)))
    for iif, own in sources.items():
        for proto, address, port in SOCKETS:
            for _family, daddr in _destinations(address, own, HOST_OTHER):
                saddr, own_subnet = _source(own, daddr)
                out.append(Packet(iif, saddr, daddr, proto, port, own_subnet=own_subnet, local=local))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+")
    parser.add_argument("--old", help="git revision of the evaluator to compare with")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-unknown", action="store_true", help="print the reason of every unknown pair")
    args = parser.parse_args()
    old = old_evaluator(args.old) if args.old else None
    rows = []
    totals = {"pairs": 0, "unknown": 0, "old_unknown": 0, "old_unreachable_now_reachable": 0}
    for directory in args.dirs:
        for number, path in enumerate(sorted(pathlib.Path(directory).glob("*.nft"))):
            raw, error = load(path, str(number))
            if raw is None:
                print(f"skip {path}: {error}", file=sys.stderr)
                continue
            expanded = expand_anonymous_chains(json.loads(json.dumps(raw)))
            new, before = Ruleset(expanded), old.Ruleset(raw) if old else None
            counted: dict[str, Any] = {"file": str(path), "pairs": 0, "unknown": 0, "old_unknown": 0, "old_unreachable_now_reachable": 0,
                                       "reasons": {}}
            for packet in pairs(raw):
                decision = new.evaluate(packet)
                counted["pairs"] += 1
                if decision.verdict == "unknown":
                    counted["unknown"] += 1
                    reason = re.sub(r"rule \d+ of chain [^:)]+", "rule", decision.because)[:160]
                    counted["reasons"][reason] = counted["reasons"].get(reason, 0) + 1
                if before is not None:
                    old_packet = old.Packet(packet.iif, packet.saddr, packet.daddr, packet.proto, packet.dport)
                    old_verdict = before.evaluate(old_packet).verdict
                    counted["old_unknown"] += old_verdict == "unknown"
                    counted["old_unreachable_now_reachable"] += old_verdict == "drop" and decision.verdict == "accept"
            for key in totals:
                totals[key] += counted[key]
            rows.append(counted)
    if args.json:
        print(json.dumps({"rulesets": rows, "totals": totals}, indent=2))
        return 0
    print(f"{'ruleset':50} {'pairs':>6} {'unknown':>8} {'before':>8}")
    for row in rows:
        print(f"{pathlib.Path(row['file']).name[:50]:50} {row['pairs']:6} {row['unknown']:8} {row['old_unknown'] if old else '-':>8}")
        if args.show_unknown:
            for reason, count in sorted(row["reasons"].items(), key=lambda kv: -kv[1]):
                print(f"    {count:4}  {reason}")
    share = totals["unknown"] / totals["pairs"] if totals["pairs"] else 0.0
    line = f"{len(rows)} rulesets, {totals['pairs']} pairs: unknown {totals['unknown']} ({share:.1%})"
    if old:
        line += (f"; before: {totals['old_unknown']} ({totals['old_unknown'] / max(totals['pairs'], 1):.1%}); "
                 f"said unreachable before, reachable now: {totals['old_unreachable_now_reachable']}")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
