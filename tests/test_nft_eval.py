"""The nft evaluator without root, on listings the real tools produced: tests/fixtures/nft-eval/
(nft_eval_cases.py, recorded by record_nft_eval.py in a namespace of their own) for what a
guest's probe cannot show (a quota's use, an unmodelled match both ways, iptables-nft's xt
statements), and tests/fixtures/reach-recorded/ (the kernel's verdicts) for the explanations the
probe does not check. Every verdict and every reason is asserted, for one packet per port."""

from __future__ import annotations

import copy
import json
import pathlib
import shutil
import subprocess
import uuid

import pytest

from conftest import require
from nft_eval_cases import CASES

from hyperward.parsers.nft import Packet, Ruleset, evaluate_all

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"
GUEST, HOST = "10.91.0.2", "10.91.0.1"


def _listing(name: str) -> dict:
    return json.loads((FIXTURES / "nft-eval" / f"{name}.json").read_text())["listing"]


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / "reach-recorded" / f"{name}.json").read_text())["listing"]


def _decide(document: dict, proto: str, port: int, **packet: object) -> tuple[str, str]:
    decision = Ruleset(document).evaluate(Packet("br-g", GUEST, HOST, proto, port, **packet))  # type: ignore[arg-type]
    return decision.verdict, decision.because


def test_every_case_is_recorded():
    assert {p.stem for p in (FIXTURES / "nft-eval").glob("*.json")} == set(CASES)
    for name, (loader, text) in CASES.items():
        assert json.loads((FIXTURES / "nft-eval" / f"{name}.json").read_text())["source"] == text, f"{name}: record it again"


QUOTAS = [
    # port, verdict, why: "not over" while more than 64 KiB is left, "over" past the limit,
    # undecided (unknown) in between: the guest's own packets may cross it
    ("tcp", 22, "accept", "rule 8 of chain inet filter input"),                      # 102335 of 102400 KiB: 1 KiB over 64 KiB left
    ("tcp", 5901, "unknown", "depends on quota (104792064 of 104857600 bytes used)"),  # exactly 64 KiB left
    ("tcp", 8006, "unknown", "depends on quota (983040 of 1048576 bytes used)"),       # 960 KiB of 1 MiB
    ("tcp", 16509, "accept", "rule 8 of chain inet filter input"),                    # 959 KiB of 1 MiB
    ("tcp", 2022, "accept", "rule 8 of chain inet filter input"),                     # 65537 bytes left
    ("udp", 53, "unknown", "depends on quota (34465 of 100000 bytes used)"),          # 65535 bytes left
    ("udp", 67, "unknown", "depends on quota (1048576 of 1048576 bytes used)"),
]


@pytest.mark.parametrize("proto,port,verdict,because", QUOTAS, ids=[f"{p}-{n}" for p, n, _, _ in QUOTAS])
def test_quota_units(proto, port, verdict, because):
    got = _decide(_listing("quota-units"), proto, port)
    assert got[0] == verdict and got[1].startswith(because), got


UNMODELLED = [
    ("tcp", 22, "unknown", "depends on meta hour (rule 1 of chain inet filter input)"),  # accepted in the hour, dropped by policy outside it
    ("tcp", 5901, "accept", "rule 3 of chain inet filter input"),                      # both ways reach the accept after it
    ("tcp", 8006, "unknown", "depends on meta hour (rule 1 of chain inet filter input)"),
    ("udp", 53, "accept", "rule 6 of chain inet filter input"),
    ("tcp", 16509, "drop", "policy drop of chain inet filter input"),
]


@pytest.mark.parametrize("proto,port,verdict,because", UNMODELLED, ids=[f"{p}-{n}" for p, n, _, _ in UNMODELLED])
def test_unmodelled_match_goes_both_ways(proto, port, verdict, because):
    got = _decide(_listing("unmodelled-both-ways"), proto, port)
    assert got[0] == verdict and got[1].startswith(because), got
    if verdict == "unknown":
        assert "accepted by rule" in got[1] and "dropped by" in got[1]


XT = [
    ("tcp", 22, "accept", "rule 2 of chain ip filter INPUT"),      # LOG logs and goes on
    ("tcp", 16509, "accept", "rule 3 of chain ip filter INPUT"),   # -m comment matches every packet
    ("tcp", 8006, "unknown", "rule 4 of chain ip filter INPUT: iptables target CONNMARK (not modelled: reachability unknown)"),
    ("tcp", 5901, "drop", "policy drop of chain ip filter INPUT"),
]


@pytest.mark.parametrize("proto,port,verdict,because", XT, ids=[f"{p}-{n}" for p, n, _, _ in XT])
def test_iptables_nft_xt_statements(proto, port, verdict, because):
    """iptables-extensions(8): LOG is a non-terminating target, the comment match matches
    everything (iptables-nft keeps both as xt statements); other xt targets are not modelled."""
    assert _decide(_listing("iptables-log-comment"), proto, port) == (verdict, because)


def test_nat_explanation_names_the_translated_port():
    """The kernel's recording says the listener on 22 is reached through the redirect from 2222;
    the reason says which first packet does it."""
    decision = evaluate_all([("nftables", Ruleset(_recorded("redirect-to-listener")))],
                            Packet("br-g", GUEST, HOST, "tcp", 22, local=(HOST,)))
    assert decision == type(decision)("accept", "nftables: rule 1 of chain ip nat prerouting (redirect to port 22); "
                                                "rule 1 of chain inet filter input (a first packet with destination port 2222, translated by NAT)")


def test_a_set_missing_from_the_listing_goes_both_ways():
    """A listing cut short (or a set in another table) names a set it does not list: the match
    is unknown, not a malformed rule, and a rule after it that decides either way still counts."""
    document = copy.deepcopy(_recorded("concatenations"))
    document["nftables"] = [i for i in document["nftables"] if not ("set" in i and i["set"].get("name") == "allow6")]
    verdict, because = _decide(document, "tcp", 2022)
    assert verdict == "drop" and because == "policy drop of chain inet filter input"  # ipv4: the ip6 match never applies
    decision = Ruleset(document).evaluate(Packet("br-g", "2001:db8:91::2", "2001:db8:91::1", "tcp", 2022))
    assert decision.verdict == "unknown" and "set @allow6 not found" in decision.because


MALFORMED = [
    # what replaces the left side of the first rule's first match, the exception it raises
    ({"&": []}, "IndexError"),
    ({"&": [{"meta": {"key": "mark"}}]}, "IndexError"),
    ({"range": 5}, None),
]


@pytest.mark.parametrize("left,error", MALFORMED, ids=[json.dumps(m) for m, _ in MALFORMED])
def test_malformed_expressions_are_unknown(left, error):
    """Hand-edited or truncated JSON: the rule is unknown and named, the evaluation goes on."""
    document = copy.deepcopy(_listing("unmodelled-both-ways"))
    rule = next(i["rule"] for i in document["nftables"] if "rule" in i)
    rule["expr"][0] = {"match": {"op": "==", "left": left, "right": 1}}
    verdict, because = _decide(document, "tcp", 22)
    assert verdict == "unknown"
    if error:
        assert because == f"rule 1 of chain inet filter input: malformed rule in the ruleset JSON ({error})"
    else:
        assert "expression" in because or "range" in because


def test_recordings_are_what_the_tools_list_today():
    """As root, each case loaded again lists the same rules (the fixture still tells the truth)."""
    require(shutil.which("nft") is not None and shutil.which("ip") is not None and shutil.which("iptables-nft-restore") is not None,
            "nftables, iproute2 and iptables (Debian packages)")
    probe = f"hwne-{uuid.uuid4().hex[:6]}"
    require(subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=30).returncode == 0, "network namespaces (root)")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    from record_nft_eval import listing

    def rules(document: dict) -> list:
        return [i["rule"]["expr"] for i in document["nftables"] if "rule" in i]

    for name, (loader, text) in CASES.items():
        assert rules(listing(loader, text)) == rules(_listing(name)), name


def test_a_concatenation_element_it_cannot_read_is_unknown_not_a_match():
    """One part of an element the evaluator cannot read (hand-edited JSON here) leaves the whole
    element undecided: the other parts matching does not make it a match."""
    document = copy.deepcopy(_recorded("concatenations"))
    rule = next(i["rule"] for i in document["nftables"] if "rule" in i)
    assert rule["expr"][0]["match"]["right"]["set"][0] == {"concat": ["10.91.0.2", 22]}
    rule["expr"][0]["match"]["right"]["set"][0] = {"concat": ["10.91.0.2", {"&": [22, 255]}]}
    verdict, because = _decide(document, "tcp", 22)
    assert verdict == "unknown" and because.startswith("depends on int expression & (rule 1 of chain inet filter input)"), because
    assert _decide(document, "tcp", 5901) == ("accept", "rule 1 of chain inet filter input")  # the prefix element still matches
