"""The evaluator's features from issue 12 held to the real kernel, dual-stack (tests/fixtures/
reach_lab.py): every prediction is compared with real TCP connects over IPv4 and IPv6 and UDP
exchanges from a guest namespace. The promise: never "unreachable" where the guest connected, and
"reachable" only where it connected. The same rulesets, as the kernel listed them, with the
verdicts the guest observed, are recorded in tests/fixtures/reach-recorded/ and evaluated again
without root; a differential test loads seeded random rulesets and compares the same way."""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import time

import pytest

from conftest import require
from reach_lab import GUEST4, GUEST6, HOST4, HOST6, lab, load, predict, reality, specs
from reach_variants import VARIANTS, inet

from hyperward.parsers.nft import Packet, Ruleset

RECORDED = pathlib.Path(__file__).resolve().parent / "fixtures" / "reach-recorded"


@pytest.fixture(scope="module")
def namespaces():
    require(shutil.which("ip") is not None and shutil.which("nft") is not None, "iproute2 and nftables (Debian packages)")
    try:
        with lab() as names:
            yield names
    except AssertionError as exc:
        if "netns add" in str(exc):
            require(False, f"network namespaces ({exc})")
        raise


def _promise(predicted: dict, actual: dict) -> list[str]:
    wrong = []
    for spec, seen in actual.items():
        said = predicted.get(spec)
        if said is False and seen:
            wrong.append(f"{spec}: predicted unreachable, the guest connected")
        if said is True and not seen:
            wrong.append(f"{spec}: predicted reachable, the guest did not connect")
    return wrong


@pytest.mark.parametrize("name", VARIANTS)
def test_prediction_matches_the_kernel(namespaces, name):
    ruleset, via = VARIANTS[name]
    load(namespaces["host"], ruleset)
    predicted, rows = predict(namespaces["host"])
    actual = reality(namespaces["guest"], via)
    assert set(predicted) == set(actual), rows
    assert not _promise(predicted, actual), (_promise(predicted, actual), rows)
    assert None not in predicted.values(), [r for r in rows if r["reachable"] is None]
    recorded = RECORDED / f"{name}.json"
    if recorded.exists():  # the fixture still tells the truth about this kernel
        assert json.loads(recorded.read_text())["observed"] == actual


def test_the_issue_case_is_reachable(namespaces):
    """`limit rate over 5/minute drop` then accept: the first connection passes (issue 12)."""
    load(namespaces["host"], VARIANTS["limit-over-then-accept"][0])
    predicted, rows = predict(namespaces["host"])
    assert predicted["ipv4:tcp:2022"] is True and predicted["ipv6:tcp:2022"] is True, rows
    assert reality(namespaces["guest"])["ipv4:tcp:2022"] is True


def _packets() -> dict[str, Packet]:
    local = (HOST4, HOST6)
    out = {}
    for spec in specs():
        family, proto, port = spec.split(":")
        daddr, saddr = (HOST4, GUEST4) if family == "ipv4" else (HOST6, GUEST6)
        out[spec] = Packet("br-g", saddr, daddr, proto, int(port), local=local)
    return out


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.json")), ids=lambda p: p.stem)
def test_recorded_kernel_verdicts_without_root(path):
    """The kernel's own listing (anonymous chains expanded as hyperward collects them) and the
    verdicts a real guest observed: the evaluator decides every pair and keeps the promise."""
    record = json.loads(path.read_text())
    ruleset = Ruleset(record["listing"])
    predicted = {}
    for spec, packet in _packets().items():
        verdict = ruleset.evaluate(packet).verdict
        predicted[spec] = {"accept": True, "drop": False}.get(verdict)
    assert not _promise(predicted, record["observed"]), _promise(predicted, record["observed"])
    assert None not in predicted.values(), {k: ruleset.evaluate(p).because for k, p in _packets().items() if predicted[k] is None}


def test_recordings_cover_every_variant():
    assert {p.stem for p in RECORDED.glob("*.json")} == set(VARIANTS)


# -- differential: seeded random rulesets ------------------------------------------------------

MATCHES = [
    'iifname "br-g"', 'iifname "br-*"', 'iifname "other0"', "tcp dport 22", "tcp dport { 5901, 8006 }", "tcp dport 2000-3000",
    "tcp dport != 16509", "udp dport 53", "udp dport { 53, 67 }", "ip saddr 10.91.0.0/24", "ip saddr 10.92.0.0/24",
    "ip6 saddr 2001:db8:91::/64", "ip6 saddr 2001:db8:92::/64", "ip daddr 10.91.0.1", "ct state new", "ct state established,related",
    "ct state invalid", "ct status dnat", "ct status assured", "meta l4proto tcp", "meta l4proto udp", "meta nfproto ipv4",
    "meta nfproto ipv6", "meta pkttype host", "meta pkttype broadcast", "tcp flags syn", "tcp flags & (fin | syn | rst | ack) == syn",
    "tcp flags != syn", "ip frag-off & 0x1fff != 0", "icmp type echo-request", "icmpv6 type nd-neighbor-solicit", "ip protocol tcp",
    "ip6 nexthdr udp", "meta mark 0x1", "ct mark 0", "fib daddr type local", "ip saddr . tcp dport { 10.91.0.2 . 22, 10.91.0.2 . 5901 }",
    "meta l4proto . th dport { tcp . 8006, udp . 53 }", "limit rate 1000/second burst 500 packets",
    "limit rate over 1000/second burst 500 packets", "ct count over 0", "ct count over 1000", "quota over 900 mbytes",
]
STATEMENTS = ["counter", "log prefix \"x \"", "meta mark set 0x1"]
VERDICTS = ["accept", "drop", "reject", "jump side", "goto side", "return", "jump { tcp dport 22 accept; }"]


def _random_ruleset(rng: random.Random) -> str:
    def rule(verdicts: list[str]) -> str:
        parts = rng.sample(MATCHES, rng.randint(0, 2)) + (rng.sample(STATEMENTS, 1) if rng.random() < 0.2 else [])
        return "    " + " ".join(parts + [rng.choice(verdicts)])

    side = "\n".join(rule(["accept", "drop", "return", "reject"]) for _ in range(rng.randint(0, 3)))
    main = "\n".join(rule(VERDICTS) for _ in range(rng.randint(1, 6)))
    return inet(main, policy=rng.choice(["accept", "drop"]), extra=f"  chain side {{\n{side}\n  }}\n")


def test_differential_random_rulesets(namespaces):
    rng = random.Random(12)
    deadline = time.monotonic() + 240
    checked = decided = rejected = 0
    failures = []
    for number in range(40):
        if time.monotonic() > deadline:
            break
        text = _random_ruleset(rng)
        try:
            load(namespaces["host"], text)
        except AssertionError as exc:
            assert "Error:" in str(exc), exc  # nft refuses a combination (conflicting protocols): not a ruleset
            rejected += 1
            continue
        predicted, _ = predict(namespaces["host"])
        actual = reality(namespaces["guest"])
        wrong = _promise(predicted, actual)
        if wrong:
            failures.append((number, text, wrong))
        checked += len(actual)
        decided += sum(v is not None for v in predicted.values())
    assert not failures, failures
    assert rejected < 20
    assert checked >= 10 * len(specs())  # at least ten rulesets ran
    assert decided >= 0.9 * checked, f"only {decided} of {checked} pairs decided"


# -- offline trees: the unit that loads the ruleset, and what cannot be seen -------------------

NFT_WANTS = "etc/systemd/system/sysinit.target.wants/nftables.service"


def _offline_scan(root, only):
    from conftest import scan

    return {(f.check_id, f.result.resource): (f.status.value, f.result.message) for f in scan(root, only=only).findings}


def test_nftables_conf_counts_only_when_its_unit_is_enabled(hardened):
    """Debian installs nftables.service disabled: a default-deny /etc/nftables.conf that nothing
    loads at boot protects nothing (issue 12)."""
    require(shutil.which("nft") is not None and shutil.which("ip") is not None, "nftables and iproute2")
    from conftest import apply

    status, message = _offline_scan(hardened, ["HV-FW-001"])[("HV-FW-001", "input")]
    assert status == "pass", message
    apply(hardened, {NFT_WANTS: None})
    status, message = _offline_scan(hardened, ["HV-FW-001"])[("HV-FW-001", "input")]
    assert status == "fail"
    assert "nftables.conf exists but nftables.service is not enabled: the ruleset is not loaded at boot" in message
    # masked counts as not enabled
    (hardened / NFT_WANTS).symlink_to("/lib/systemd/system/nftables.service")
    (hardened / "etc/systemd/system/nftables.service").symlink_to("/dev/null")
    assert _offline_scan(hardened, ["HV-FW-001"])[("HV-FW-001", "input")][0] == "fail"


def test_another_firewall_unit_makes_the_offline_ruleset_unknown(hardened):
    require(shutil.which("nft") is not None and shutil.which("ip") is not None, "nftables and iproute2")
    from conftest import apply

    apply(hardened, {NFT_WANTS: None, "etc/systemd/system/multi-user.target.wants/firewalld.service": ""})
    [(status, message)] = _offline_scan(hardened, ["HV-FW-001"]).values()
    assert status == "not_applicable" and "firewalld.service builds the ruleset at boot" in message


def test_rules_v4_counts_only_with_netfilter_persistent(hardened):
    require(shutil.which("iptables-restore-translate") is not None and shutil.which("nft") is not None, "iptables and nftables")
    from conftest import apply

    rules = "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n"
    apply(hardened, {"etc/nftables.conf": None, "etc/iptables/rules.v4": rules})
    status, message = _offline_scan(hardened, ["HV-FW-001"])[("HV-FW-001", "input")]
    assert status == "fail" and "rules.v4 exists but netfilter-persistent.service is not enabled" in message
    apply(hardened, {"etc/systemd/system/multi-user.target.wants/netfilter-persistent.service": ""})
    assert _offline_scan(hardened, ["HV-FW-001"])[("HV-FW-001", "input")][0] == "pass"


def test_reach_on_an_offline_tree_says_what_is_unknown(hardened):
    """No /proc/net in the tree: listeners cannot be seen. `hyperward reach --root` says so and
    shows what the rules would do per bridge and well-known port; HV-FW-002 is not applicable
    with the same reasoning, never "no listening service"."""
    require(shutil.which("nft") is not None and shutil.which("ip") is not None, "nftables and iproute2")
    from conftest import apply, hyperward

    apply(hardened, {"proc/net": None})
    done = hyperward("reach", "--root", str(hardened))
    assert done.returncode == 0, done.stderr
    assert "listening sockets cannot be seen" in done.stdout and "needs a live host" in done.stdout
    assert "no guest-facing bridge with a listening host service" not in done.stdout
    rows = json.loads(hyperward("reach", "--root", str(hardened), "--format", "json").stdout)
    ssh = [r for r in rows if r["port"] == 22 and r["family"] == "ipv4" and r["source"] == "virbr0"]
    dns = [r for r in rows if r["port"] == 53 and r["protocol"] == "udp" and r["family"] == "ipv4" and r["source"] == "virbr0"]
    assert ssh and ssh[0]["listening"] is None and ssh[0]["reachable"] is False
    assert dns and dns[0]["reachable"] is True
    status, message = _offline_scan(hardened, ["HV-FW-002"])[("HV-FW-002", "virbr0")]
    assert status == "not_applicable" and "reachability of real services needs a live host" in message
    assert "would reach none of the well-known virtualization ports" in message
    apply(hardened, {"etc/nftables.conf": hardened.joinpath("etc/nftables.conf").read_text().replace("policy drop", "policy accept")})
    message = _offline_scan(hardened, ["HV-FW-002"])[("HV-FW-002", "virbr0")][1]
    assert "would reach tcp/22, tcp/22 ipv6, tcp/16509" in message
