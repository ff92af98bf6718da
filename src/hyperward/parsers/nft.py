"""Evaluate an nftables ruleset (`nft -j list ruleset`) for one packet entering the host: the input
hook chains of the ip, ip6 and inet families in priority order, with jumps, gotos, returns,
verdict maps, named and anonymous sets, prefixes and ranges, interface names and wildcards,
l4proto, ports and conntrack state (a first packet is NEW). A match hyperward does not model makes
the answer "unknown", never "unreachable"."""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from typing import Any

HOOK = "input"
MAX_DEPTH = 32


@dataclass(frozen=True)
class Packet:
    """saddr None: the source address of the guests is not known (a bridge without a host address)."""

    iif: str
    saddr: str | None
    daddr: str
    proto: str
    dport: int

    @property
    def family(self) -> str:
        return "ip6" if ":" in self.daddr else "ip"


@dataclass(frozen=True)
class Decision:
    verdict: str  # accept | drop | unknown
    because: str


class _Unknown(Exception):
    pass


class Ruleset:
    def __init__(self, document: Any) -> None:
        items = document.get("nftables", []) if isinstance(document, dict) else []
        self.chains: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.sets: dict[tuple[str, str, str], list[Any]] = {}
        for item in items:
            try:
                self._add(item)
            except (AttributeError, TypeError, KeyError):
                continue  # a malformed object in the listing: the rest still counts

    def _add(self, item: Any) -> None:
        if not isinstance(item, dict):
            return
        if "chain" in item:
            c = item["chain"]
            key = (c.get("family", ""), c.get("table", ""), c.get("name", ""))
            self.chains[key] = c
            self.rules.setdefault(key, [])
        elif "rule" in item:
            r = item["rule"]
            self.rules.setdefault((r.get("family", ""), r.get("table", ""), r.get("chain", "")), []).append(r)
        elif "set" in item or "map" in item:
            s = item.get("set") or item.get("map")
            self.sets[(s.get("family", ""), s.get("table", ""), s.get("name", ""))] = list(s.get("elem") or [])

    def base_chains(self, packet: Packet) -> list[tuple[str, str, str]]:
        families = ("inet", packet.family)
        chosen = [k for k, c in self.chains.items() if c.get("hook") == HOOK and k[0] in families and c.get("type", "filter") == "filter"]
        return sorted(chosen, key=lambda k: (self.chains[k].get("prio", 0), k))

    def evaluate(self, packet: Packet) -> Decision:
        chains = self.base_chains(packet)
        if not chains:
            return Decision("accept", "no nftables input chain: nothing filters")
        accepted_by = []
        for key in chains:
            verdict, because = self._chain(key, packet, 0)
            if verdict is None:
                policy = self.chains[key].get("policy", "accept")
                verdict, because = policy, f"policy {policy} of chain {self._name(key)}"
            if verdict == "drop":
                return Decision("drop", because)
            if verdict == "unknown":
                return Decision("unknown", because)
            accepted_by.append(because)
        return Decision("accept", "; ".join(accepted_by))

    @staticmethod
    def _name(key: tuple[str, str, str]) -> str:
        return f"{key[0]} {key[1]} {key[2]}"

    def _chain(self, key: tuple[str, str, str], packet: Packet, depth: int) -> tuple[str | None, str]:
        """(verdict or None when the chain ends/returns, why)."""
        if depth > MAX_DEPTH:
            return "unknown", f"chain {self._name(key)}: jumps nested deeper than {MAX_DEPTH}"
        for index, rule in enumerate(self.rules.get(key, [])):
            where = f"rule {index + 1} of chain {self._name(key)}"
            try:
                outcome = self._rule(key, rule, packet, depth, where)
            except _Unknown as exc:
                return "unknown", f"{where}: {exc} (not modelled: reachability unknown)"
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                return "unknown", f"{where}: malformed rule in the ruleset JSON ({type(exc).__name__})"
            if outcome is None:
                continue
            verdict, because = outcome
            if verdict == "return":
                return None, because
            if verdict == "continue":
                continue
            return verdict, because
        return None, f"end of chain {self._name(key)}"

    def _rule(self, key: tuple[str, str, str], rule: dict[str, Any], packet: Packet, depth: int, where: str) -> tuple[str, str] | None:
        for expr in rule.get("expr", []):
            if not isinstance(expr, dict) or not expr:
                raise _Unknown("malformed statement")
            if "match" in expr:
                if not self._match(key, expr["match"], packet):
                    return None
                continue
            if "accept" in expr:
                return "accept", where
            if "drop" in expr or "reject" in expr:
                return "drop", where
            if "return" in expr:
                return "return", where
            if "continue" in expr:
                return "continue", where
            if "jump" in expr or "goto" in expr:
                kind = "jump" if "jump" in expr else "goto"
                target = (key[0], key[1], expr[kind]["target"])
                verdict, because = self._chain(target, packet, depth + 1)
                if verdict is not None:
                    return verdict, because
                if kind == "goto":
                    return "return", f"{where}: goto {target[2]} ended"
                continue
            if "vmap" in expr:
                value = self._value(key, expr["vmap"]["key"], packet)
                for entry in self._elements(key, expr["vmap"]["data"]):
                    if isinstance(entry, list) and len(entry) == 2 and self._contains(key, [entry[0]], value):
                        return self._rule(key, {"expr": [entry[1]]}, packet, depth, f"{where} (verdict map)")
                continue
            if any(k in expr for k in ("counter", "log", "limit", "meta_set", "mangle", "notrack", "set", "queue", "ct helper")):
                if "queue" in expr:
                    raise _Unknown("queue to user space")
                continue
            raise _Unknown(f"statement {next(iter(expr))}")
        return None

    def _elements(self, key: tuple[str, str, str], right: Any) -> list[Any]:
        if isinstance(right, str) and right.startswith("@"):
            name = (key[0], key[1], right[1:])
            if name not in self.sets:
                raise _Unknown(f"set {right} not found")
            return self.sets[name]
        if isinstance(right, dict) and "set" in right:
            return list(right["set"])
        return [right]

    def _value(self, key: tuple[str, str, str], left: Any, packet: Packet) -> Any:
        if isinstance(left, dict) and "meta" in left:
            meta = left["meta"]["key"]
            if meta in ("iifname", "iif"):
                return packet.iif
            if meta == "l4proto":
                return packet.proto
            if meta == "nfproto":
                return "ipv6" if packet.family == "ip6" else "ipv4"
            raise _Unknown(f"meta {meta}")
        if isinstance(left, dict) and "payload" in left:
            payload = left["payload"]
            protocol, field = payload.get("protocol"), payload.get("field")
            if protocol in ("ip", "ip6") and field in ("saddr", "daddr"):
                if (protocol == "ip6") != (packet.family == "ip6"):
                    return _WrongFamily
                if field == "saddr" and packet.saddr is None:
                    raise _Unknown(f"source address of guests on {packet.iif} not known")
                return ipaddress.ip_address(packet.saddr if field == "saddr" else packet.daddr)
            if protocol in ("ip", "ip6") and field in ("protocol", "nexthdr"):
                return packet.proto
            if protocol in ("tcp", "udp", "th") and field == "dport":
                if protocol in ("tcp", "udp") and protocol != packet.proto:
                    return _WrongFamily
                return packet.dport
            raise _Unknown(f"payload {protocol} {field}")
        if isinstance(left, dict) and "ct" in left:
            if left["ct"].get("key") == "state":
                return "new"
            raise _Unknown(f"ct {left['ct'].get('key')}")
        raise _Unknown(f"expression {next(iter(left)) if isinstance(left, dict) else left!r}")

    def _contains(self, key: tuple[str, str, str], elements: list[Any], value: Any) -> bool:
        for element in elements:
            if isinstance(element, dict) and "elem" in element:
                element = element["elem"]["val"]
            if isinstance(element, dict) and "prefix" in element:
                network = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}", strict=False)
                if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and value.version == network.version and value in network:
                    return True
            elif isinstance(element, dict) and "range" in element:
                lo, hi = element["range"]
                if isinstance(value, int) and isinstance(lo, int) and lo <= value <= hi:
                    return True
                if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
                    try:
                        if ipaddress.ip_address(lo) <= value <= ipaddress.ip_address(hi):
                            return True
                    except (TypeError, ValueError):
                        continue
            elif isinstance(value, str) and isinstance(element, str):
                if value == element or (element.endswith("*") and fnmatch.fnmatchcase(value, element)):
                    return True
                if element in ("tcp", "udp") and value == element:
                    return True
            elif isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)) and isinstance(element, str):
                try:
                    if value == ipaddress.ip_address(element):
                        return True
                except ValueError:
                    continue
            elif isinstance(value, int) and isinstance(element, int) and value == element:
                return True
        return False

    def _match(self, key: tuple[str, str, str], match: dict[str, Any], packet: Packet) -> bool:
        value = self._value(key, match["left"], packet)
        if value is _WrongFamily:
            return False  # nft adds the protocol/family dependency: the rule cannot match this packet
        op = match.get("op", "==")
        right = match["right"]
        if isinstance(match["left"], dict) and "ct" in match["left"]:
            states = right if isinstance(right, list) else self._elements(key, right)
            hit = "new" in states
            return hit if op in ("==", "in") else not hit
        elements = self._elements(key, right)
        hit = self._contains(key, elements, value)
        if op in ("==", "in"):
            return hit
        if op == "!=":
            return not hit
        raise _Unknown(f"operator {op}")


class _WrongFamilyType:
    pass


_WrongFamily = _WrongFamilyType()


def evaluate_all(rulesets: list[tuple[str, Ruleset]], packet: Packet) -> Decision:
    """Every ruleset hooked into the kernel filters the packet (nftables and legacy iptables side by
    side): any drop drops it, otherwise any unknown leaves it unknown."""
    decisions = [(name, ruleset.evaluate(packet)) for name, ruleset in rulesets]
    for verdict in ("drop", "unknown"):
        hits = [f"{name}: {d.because}" for name, d in decisions if d.verdict == verdict]
        if hits:
            return Decision(verdict, "; ".join(hits))
    return Decision("accept", "; ".join(f"{name}: {d.because}" for name, d in decisions))
