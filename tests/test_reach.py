"""Reachability against the real thing: a "host" network namespace with a guest bridge, listeners
on several ports and addresses and a real nftables ruleset; a "guest" namespace on that bridge.
hyperward predicts, inside the host namespace, what each guest can reach; then the guest really
connects (TCP) and sends (UDP) to every listener, and prediction and reality must agree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import require
from reach_lab import HOST4, lab
from reach_lab import run as _run

LISTENERS = [("tcp", "0.0.0.0", 22), ("tcp", "0.0.0.0", 16509), ("tcp", "0.0.0.0", 5901), ("tcp", "127.0.0.1", 16514),
             ("tcp", "0.0.0.0", 8006), ("tcp", "0.0.0.0", 49152), ("udp", "0.0.0.0", 53), ("udp", "0.0.0.0", 67)]

PROBE = r"""
import json, socket, sys, concurrent.futures
def probe(spec):
    proto, port = spec.split(":")
    try:
        if proto == "tcp":
            with socket.create_connection((sys.argv[1], int(port)), timeout=1.0):
                return spec, True
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
        s.sendto(b"hyperward", (sys.argv[1], int(port)))
        return spec, s.recvfrom(64)[0] == b"hyperward"
    except OSError:
        return spec, False
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    print(json.dumps(dict(pool.map(probe, sys.argv[2:]))))
"""


@pytest.fixture
def topology() -> Iterator[dict[str, str]]:
    require(shutil.which("ip") is not None and shutil.which("nft") is not None, "iproute2 and nftables (Debian packages)")
    created = subprocess.run(["ip", "netns", "add", probe := f"hwre-p-{os.getpid()}"], capture_output=True, text=True, timeout=30)
    require(created.returncode == 0, f"network namespaces ({created.stderr.strip()})")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    with lab(LISTENERS, ipv6=False) as namespaces:
        yield namespaces


def _predict(host: str) -> dict[str, bool | None]:
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable))
    rows = json.loads(_run("ip", "netns", "exec", host, exe, "reach", "--format", "json"))
    return {f"{r['protocol']}:{r['port']}": r["reachable"] for r in rows if r["source"] == "br-g"}, rows  # type: ignore[return-value]


def _reality(guest: str) -> dict[str, bool]:
    specs = [f"{p}:{n}" for p, _, n in LISTENERS]
    return json.loads(_run("ip", "netns", "exec", guest, sys.executable, "-c", PROBE, HOST4, *specs))


BASE = "table inet filter {{\n{sets}  chain input {{\n    type filter hook input priority 0; policy {policy};\n{rules}\n  }}\n{extra}}}\n"


def _inet(rules: str, policy: str = "drop", sets: str = "", extra: str = "") -> str:
    return BASE.format(rules=rules, policy=policy, sets=sets, extra=extra)


VARIANTS = {
    "no-ruleset": "",
    "default-accept": _inet("    tcp dport 22 counter", policy="accept"),
    "default-drop-allow-ssh": _inet("    ct state established,related accept\n    iifname \"lo\" accept\n    tcp dport 22 accept"),
    "iifname-wildcard-dhcp-dns": _inet("    iifname \"br-*\" udp dport { 53, 67 } accept\n    iifname \"eth*\" accept"),
    "saddr-prefixes": _inet("    ip saddr 10.91.0.0/24 tcp dport 16509 accept\n    ip saddr 10.92.0.0/24 tcp dport 5901 accept"),
    "port-range-and-set": _inet("    tcp dport { 5900-5999, 8006 } accept\n    tcp dport 49152-49215 accept"),
    "jump-return-drop": _inet("    jump guests\n    tcp dport 22 accept\n    udp dport 53 accept",
                              extra="  chain guests {\n    iifname \"br-g\" tcp dport 16509 drop\n    return\n  }\n"),
    "goto-user-chain": _inet("    iifname \"br-g\" goto from_guests\n    tcp dport 8006 accept", policy="accept",
                             extra="  chain from_guests {\n    udp dport 67 accept\n    drop\n  }\n"),
    "verdict-map": _inet("    tcp dport vmap { 22 : accept, 16509 : drop, 8006 : accept }", policy="accept"),
    "named-set": _inet("    tcp dport @allowed accept\n    udp dport @allowed accept",
                       sets="  set allowed {\n    type inet_service\n    elements = { 22, 53 }\n  }\n"),
    "established-only": _inet("    ct state established,related accept\n    ct state invalid drop"),
    "reject-not-drop": _inet("    tcp dport 22 reject with tcp reset\n    meta l4proto udp reject", policy="accept"),
    "two-base-chains": _inet("    tcp dport 22 accept", policy="accept",
                             extra="  chain late {\n    type filter hook input priority 10; policy drop;\n    tcp dport { 22, 8006 } accept\n  }\n"),
    "ip-family-table": "table ip legacy {\n  chain INPUT {\n    type filter hook input priority 0; policy drop;\n    ip protocol udp accept\n"
                       "    tcp dport != 5901 accept\n  }\n}\n",
}


@pytest.mark.parametrize("name", VARIANTS)
def test_prediction_matches_reality(topology, name):
    host, guest = topology["host"], topology["guest"]
    if VARIANTS[name]:
        _run("ip", "netns", "exec", host, "nft", "-f", "-", stdin=VARIANTS[name])
    predicted, rows = _predict(host)
    actual = _reality(guest)
    assert set(predicted) == set(actual), rows
    assert None not in predicted.values(), rows
    assert predicted == actual, rows
    loopback = [r for r in rows if r["port"] == 16514]
    assert loopback and loopback[0]["because"] == "bound to loopback"


def test_iptables_nft_ruleset(topology):
    host, guest = topology["host"], topology["guest"]
    require(shutil.which("iptables-nft-restore") is not None, "iptables (Debian package; iptables-nft)")
    rules = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
             "-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
             "-A INPUT -s 10.91.0.0/24 -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n")
    _run("ip", "netns", "exec", host, "iptables-nft-restore", stdin=rules)
    predicted, rows = _predict(host)
    actual = _reality(guest)
    known = {k: v for k, v in predicted.items() if v is not None}
    assert known == {k: actual[k] for k in known}, rows
    # whatever uses an xtables match nft cannot express natively stays "unknown", never "no"
    assert all(v is not False or not actual[k] for k, v in predicted.items()), rows


def test_unmodelled_match_is_unknown_not_unreachable(topology):
    host = topology["host"]
    _run("ip", "netns", "exec", host, "nft", "-f", "-", stdin=_inet("    meta hour \"00:00\"-\"12:00\" tcp dport 22 accept"))
    predicted, rows = _predict(host)
    assert predicted["tcp:22"] is None
    because = next(r["because"] for r in rows if r["port"] == 22)
    assert "not modelled" in because and "meta hour" in because


def test_default_deny_check_on_the_namespace(topology):
    host = topology["host"]
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable))
    for ruleset, expected in ((_inet("    tcp dport 22 accept"), "pass"), (_inet("    tcp dport 22 accept", policy="accept"), "fail")):
        _run("ip", "netns", "exec", host, "nft", "flush", "ruleset")
        _run("ip", "netns", "exec", host, "nft", "-f", "-", stdin=ruleset)
        report = json.loads(_run("ip", "netns", "exec", host, exe, "scan", "--only", "HV-FW-001,HV-FW-002", "--format", "json"))
        by = {(r["id"], r["resource"]): r for r in report["results"]}
        assert by[("HV-FW-001", "input")]["status"] == expected
        libvirt = by[("HV-FW-002", "br-g -> 0.0.0.0:16509/tcp")]
        assert libvirt["status"] == ("pass" if expected == "pass" else "fail")
        assert "reachability" in report and any(r["port"] == 16509 for r in report["reachability"])


def test_legacy_iptables_ruleset(topology):
    """Rules in legacy iptables (not nftables) are read with iptables-legacy-save, translated by
    iptables-restore-translate and evaluated the same way."""
    host, guest = topology["host"], topology["guest"]
    require(shutil.which("iptables-legacy-restore") is not None, "iptables (Debian package; iptables-legacy)")
    rules = ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n"
             "-A INPUT -p tcp -m tcp --dport 16509 -j ACCEPT\n-A INPUT -s 10.91.0.0/24 -p udp -m multiport --dports 53,67 -j ACCEPT\nCOMMIT\n")
    done = subprocess.run(["ip", "netns", "exec", host, "iptables-legacy-restore"], input=rules, capture_output=True, text=True, timeout=60)
    require(done.returncode == 0, f"legacy iptables in this kernel ({done.stderr.strip()[:100]})")
    try:
        predicted, rows = _predict(host)
        actual = _reality(guest)
        assert predicted == actual, rows
        assert any("iptables-legacy" in r["because"] for r in rows)
    finally:
        subprocess.run(["ip", "netns", "exec", host, "iptables-legacy", "-F"], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "exec", host, "iptables-legacy", "-P", "INPUT", "ACCEPT"], capture_output=True, timeout=30)


def test_offline_iptables_rules_file(hardened):
    """An image that keeps its firewall in /etc/iptables/rules.v4 (iptables-persistent)."""
    from conftest import apply, scan

    require(shutil.which("iptables-restore-translate") is not None and shutil.which("nft") is not None, "iptables and nftables")
    apply(hardened, {"etc/nftables.conf": None, "etc/systemd/system/multi-user.target.wants/netfilter-persistent.service": "",
                     "etc/iptables/rules.v4": "# Generated by iptables-save v1.8.9\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n"
                                              ":OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"})
    [finding] = scan(hardened, only=["HV-FW-001"]).findings
    assert finding.status.value == "fail" and "iptables-legacy" in finding.result.message
    apply(hardened, {"etc/iptables/rules.v4": "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"})
    [finding] = scan(hardened, only=["HV-FW-001"]).findings
    assert finding.status.value == "pass"
