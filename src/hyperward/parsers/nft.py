"""Evaluate an nftables ruleset (`nft -j list ruleset`) for the first packet of a connection a guest
opens to the host: the prerouting and input hook chains of the ip, ip6 and inet families in
priority order, with jumps, gotos, returns, verdict maps, named and anonymous sets and maps,
concatenated keys, prefixes, ranges, bitmasks, interface names and wildcards.

The promise is "never unreachable when it is reachable": every answer covers every packet the
guest may send and every state the host may be in, and is "unknown" when those disagree.

* What the guest chooses is enumerated (`Packet.variants`): a TCP connection starts with a SYN that
  may also carry PSH, URG, ECE and CWR (conntrack and a listening socket take all of them);
  the IPv4 DF bit; the source port (every port the ruleset names in a `sport` match and one it does
  not); an IPv6 hop-by-hop header before TCP/UDP; when the ruleset has destination NAT, the
  destination port (every port it names: a redirect from another port may lead to the listener). The guest reaches the service when one variant
  is accepted, and not when every variant is dropped.
* What depends on state hyperward cannot see forks the evaluation: the match is taken both ways
  and the answer stands only when both ways agree (otherwise "unknown", naming the match). That
  covers every match not listed below (fib lookups beyond the two decided ones, `meta hour`/`day`
  /`time`/`cpu`/`length`/`random`, `numgen`, hashes, ether addresses, TTL, DSCP, TCP options,
  socket, osf, rt, ipsec, `ct helper`/`label`/`bytes`/`packets`/`expiration`, xt matches (but
  iptables' comment match, which matches every packet), an
  unknown guest source address) and a quota whose listed use is too close to its limit.
* Decided, for the first packet to a local address from a guest on bridge B: iif/iifname B;
  oifname "" and oif/oifkind/skuid/skgid no match (no output device or socket in input);
  pkttype host; meta/ether protocol ip|ip6; nfproto; l4proto, ip protocol; ip6 nexthdr (also the
  hop-by-hop variant); protocol dependencies (an icmp/icmpv6/sctp/... or tcp-vs-udp field never
  matches another protocol's packet, whatever the operator; `vlan`/`arp` fields never match an IP
  packet); saddr/daddr (the guest's address on B); dport; sport (variants); tcp flags (variants);
  ip frag-off (conntrack reassembles before input: no offset, no MF; DF a variant); meta mark and
  ct mark (0, then what `mark set` statements set); ct state new (invalid before conntrack at
  priority -200, untracked after notrack there); ct status: no bit (a connection not yet
  confirmed), dnat after a destination NAT; ct direction
  original; ct zone 0; ct original/reply tuples; ct l3proto/protocol; fib daddr type local;
  fib saddr . iif oif (rpfilter) present when the source is the guest's own subnet.

Statements:
* accept; drop; reject (any type): the packet does not reach the socket.
* jump/goto/return/continue as nft does: a jump returns to the next rule, a goto's end returns from
  the chain that went to it, a base chain's return or end applies its policy (accept when unset).
  Anonymous chains (`jump { ... }`) once collect/network.py expanded them into named chains; an
  unexpanded one is unknown.
* vmap with any key the matches model, named or anonymous.
* limit: `limit rate N` matches and `limit rate over N` does not, for a guest sending its first
  packet (a token bucket starts full; a guest within the rate gets through); the same for a limit
  inside a meter or a set update. quota: judged against the `used` value listed (live state).
  ct count: this connection is the first (count 1). Set add/update: no effect on this packet.
* counter, log, nflog, last, ct helper/timeout/expectation set, meta priority/nftrace set, dup, flow
  add, notrack after conntrack (no effect once a connection is attached), meta/ct mark set (the
  value is tracked), snat/masquerade (a nat chain accepts).
* redirect (to a port, or the same) and dnat to one of the host's addresses: the packet goes on with
  the new destination and ct status dnat; accepted at another port than the listener's, it does not
  reach the listener. dnat to another machine: forwarded, it reaches no socket on the host (unknown
  when the host's addresses are not known). dnat/redirect by map or to a range: unknown.
* Unknown: queue (a program decides), tproxy, synproxy, fwd, payload mangling of the destination, xt targets other than LOG/NFLOG, any
  statement not listed here.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..records import frozen

HOOKS = ("prerouting", "input")
NOT_LOADED = "hyperward_not_loaded"  # key of an offline tree's ruleset document whose boot unit is not enabled: why
MAX_DEPTH = 32
MAX_PATHS = 4096
CONNTRACK_PRIO = -200

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 1, 2, 4, 8, 16, 32, 64, 128
TCP_FLAGS = {"fin": FIN, "syn": SYN, "rst": RST, "psh": PSH, "ack": ACK, "urg": URG, "ecn": ECE, "ece": ECE, "cwr": CWR}
CT_STATE = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
CT_STATUS = {"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16, "dnat": 32, "dying": 512}
L4_NUMBERS = {0: "hopopt", 1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 41: "ipv6", 47: "gre", 50: "esp", 51: "ah",
              58: "ipv6-icmp", 108: "comp", 132: "sctp", 136: "udplite"}
L4_ALIASES = {"icmpv6": "ipv6-icmp", "hbh": "hopopt", "hop-by-hop": "hopopt"}
L4_PAYLOADS = {"tcp", "udp", "icmp", "icmpv6", "sctp", "dccp", "udplite", "esp", "ah", "comp", "gre", "igmp"}
NEVER_ON_IP = {"vlan", "arp"}


@frozen
class Packet:
    """saddr None: the source address of the guests is not known (a bridge without a host address).
    sport None: a port of the guest's choice; tcp_flags, df and hbh are the guest's choices too
    (variants() enumerates them)."""

    iif: str
    saddr: str | None
    daddr: str
    proto: str
    dport: int
    sport: int | None = None
    tcp_flags: int = SYN
    df: bool = True
    hbh: bool = False
    own_subnet: bool = True  # saddr is on the bridge's own subnet (rpfilter finds the route back via iif)
    to_port: int | None = None  # the listener's port, when the guest sends to dport for NAT to translate
    local: tuple[str, ...] = ()  # the host's addresses (a DNAT to one of them stays on the host); empty: not known

    @property
    def family(self) -> str:
        return "ip6" if ":" in self.daddr else "ip"

    def describe(self) -> str:
        parts = []
        if self.proto == "tcp" and self.tcp_flags != SYN:
            parts.append("tcp flags " + "|".join(n for n, b in TCP_FLAGS.items() if self.tcp_flags & b and n != "ecn"))
        if self.sport is not None:
            parts.append(f"source port {self.sport}")
        if self.family == "ip" and not self.df:
            parts.append("DF clear")
        if self.hbh:
            parts.append("an IPv6 hop-by-hop header")
        if self.to_port is not None:
            parts.append(f"destination port {self.dport}, translated by NAT")
        return ", ".join(parts)


@frozen
class Decision:
    verdict: str  # accept | drop | unknown
    because: str


@frozen
class _State:
    packet: Packet
    hook: str = "input"
    prio: int = 0
    mark: int = 0
    ctmark: int = 0
    untracked: bool = False
    dnat: bool = False
    assumed: tuple[str, ...] = ()


@frozen
class _Step:
    kind: str  # next | accept | drop | unknown | return
    because: str
    state: _State


class _TooMany(Exception):
    pass


class _Fork:
    """A value that depends on what hyperward cannot see: the match goes both ways."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _NoMatchType:
    """A field the packet does not have (another protocol's header, no output device): nft's
    implicit dependency fails, so the rule cannot match whatever the operator."""


_NOMATCH = _NoMatchType()


@frozen
class _Typed:
    domain: str  # str | ifname | l4 | int | addr | flags:<table> | fib-oif
    value: Any


@dataclass
class _Budget:
    paths: int = 0
    reads: set[str] = field(default_factory=set)


def _flag_table(domain: str) -> dict[str, int]:
    return {"flags:tcp": TCP_FLAGS, "flags:ctstate": CT_STATE, "flags:ctstatus": CT_STATUS}.get(domain, {})


class Ruleset:
    def __init__(self, document: Any) -> None:
        items = document.get("nftables", []) if isinstance(document, dict) else []
        self.chains: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.rules: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self.sets: dict[tuple[str, str, str], list[Any]] = {}
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for item in items if isinstance(items, list) else []:
            try:
                self._add(item)
            except (AttributeError, TypeError, KeyError):
                continue  # a malformed object in the listing: the rest still counts
        self._text = repr(document)[:4_000_000]
        self._flag_cache: dict[str, list[int]] = {}
        self._port_cache: dict[str, set[int]] = {}
        self._nat = re.search(r"\{'(?:dnat|redirect)': ", self._text) is not None

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
            s = item.get("set") or item.get("map") or {}
            self.sets[(s.get("family", ""), s.get("table", ""), s.get("name", ""))] = list(s.get("elem") or [])
        elif ("quota" in item or "limit" in item) and isinstance(item.get("quota") or item.get("limit"), dict):
            kind = "quota" if "quota" in item else "limit"
            o = item[kind]
            self.objects[(kind, o.get("family", ""), o.get("table", ""), o.get("name", ""))] = o

    # -- what the guest chooses -------------------------------------------------------------
    def variants(self, packet: Packet) -> list[Packet]:
        """Every first packet the guest may send for this connection, the ordinary one first."""
        text = self._text
        flags = [SYN]
        if packet.proto == "tcp" and "'field': 'flags'" in text:
            extras = (PSH, URG, ECE | CWR, ECE, CWR)
            flags = self._flag_classes(packet, sorted({SYN | sum(c) for n in range(len(extras) + 1) for c in itertools.combinations(extras, n)}))
        sports: list[int | None] = [packet.sport]
        if packet.sport is None and "'field': 'sport'" in text:
            named = sorted(self._sport_constants())[:15]
            unused = next(p for p in range(40000, 65536) if p not in named)
            sports = [unused, *named]
        dfs = [packet.df, not packet.df] if packet.family == "ip" and "'field': 'frag-off'" in text else [packet.df]
        hbhs = [False, True] if packet.family == "ip6" and "'field': 'nexthdr'" in text else [packet.hbh]
        dports: list[tuple[int, int | None]] = [(packet.dport, packet.to_port)]
        if packet.to_port is None and self._nat:
            named = sorted(self._port_constants("dport") - {packet.dport})[:31]
            dports += [(p, packet.dport) for p in named]
        return [replace(packet, tcp_flags=f, sport=s, df=d, hbh=h, dport=dp, to_port=tp)
                for (dp, tp), f, s, d, h in itertools.product(dports, flags, sports, dfs, hbhs)]

    def _flag_classes(self, packet: Packet, candidates: list[int]) -> list[int]:
        """One SYN per class the ruleset's tcp flags matches tell apart (plain SYN first): the
        other members of a class take the same path everywhere (a flags match reads nothing else)."""
        if packet.family in self._flag_cache:
            return self._flag_cache[packet.family]
        matches = []
        for key, rules in self.rules.items():
            for rule in rules:
                for expr in rule.get("expr", []) if isinstance(rule, dict) and isinstance(rule.get("expr"), list) else []:
                    if isinstance(expr, dict) and isinstance(expr.get("match"), dict) and "'field': 'flags'" in repr(expr["match"].get("left")):
                        matches.append((key, expr["match"]))
        classes: dict[tuple[str, ...], int] = {}
        for flags in candidates:
            state = _State(replace(packet, tcp_flags=flags))
            vector = []
            for key, match in matches:
                try:
                    truth = self._match(key, match, state)
                except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                    truth = _Fork("malformed")
                vector.append("fork" if isinstance(truth, _Fork) else str(truth))
            classes.setdefault(tuple(vector), flags)
        self._flag_cache[packet.family] = sorted(classes.values())
        return self._flag_cache[packet.family]

    def _sport_constants(self) -> set[int]:
        return self._port_constants("sport")

    def _port_constants(self, port_field: str) -> set[int]:
        if port_field in self._port_cache:
            return self._port_cache[port_field]
        found: set[int] = set()
        self._port_cache[port_field] = found

        def walk(node: Any, in_sport: bool) -> None:
            if isinstance(node, dict):
                if "match" in node and isinstance(node["match"], dict):
                    left = node["match"].get("left")
                    mentions = f"'{port_field}'" in repr(left)
                    walk(node["match"].get("right"), mentions)
                    return
                for value in node.values():
                    walk(value, in_sport)
            elif isinstance(node, list):
                for value in node:
                    walk(value, in_sport)
            elif in_sport and isinstance(node, int) and not isinstance(node, bool) and 0 <= node <= 65535:
                found.add(node)
                if node < 65535:
                    found.add(node + 1)

        for rules in self.rules.values():
            walk(rules, False)
        for elements in self.sets.values():
            walk(elements, False)
        return found

    # -- hooks ------------------------------------------------------------------------------
    def base_chains(self, packet: Packet, hook: str = "input") -> list[tuple[str, str, str]]:
        families = ("inet", packet.family)
        chosen = [k for k, c in self.chains.items() if c.get("hook") == hook and k[0] in families and c.get("type", "filter") in ("filter", "nat")]
        return sorted(chosen, key=lambda k: (self._prio(k), k))

    def _prio(self, key: tuple[str, str, str]) -> int:
        prio = self.chains[key].get("prio", 0)
        return prio if isinstance(prio, int) else 0

    def evaluate(self, packet: Packet) -> Decision:
        return evaluate_all([("", self)], packet, prefix=False)

    def _evaluate_one(self, packet: Packet) -> Decision:
        if not any(self.base_chains(packet, hook) for hook in HOOKS):
            return Decision("accept", "no nftables prerouting or input chain: nothing filters")
        budget = _Budget()
        try:
            outcomes = self._hooks(_State(packet), budget)
        except _TooMany:
            return Decision("unknown", f"more than {MAX_PATHS} combinations of unmodelled matches (not modelled: reachability unknown)")
        target = packet.to_port if packet.to_port is not None else packet.dport
        outcomes = [_Step("drop", f"{o.because}, but NAT sent it to port {o.state.packet.dport}", o.state)
                    if o.kind == "accept" and o.state.packet.dport != target else o for o in outcomes]
        verdicts = {o.kind for o in outcomes}
        if verdicts == {"accept"} or verdicts == {"drop"}:
            first = outcomes[0]
            return Decision(first.kind, first.because)
        unknown = next((o for o in outcomes if o.kind == "unknown"), None)
        if unknown is not None:
            return Decision("unknown", unknown.because)
        accept = next(o for o in outcomes if o.kind == "accept")
        drop = next(o for o in outcomes if o.kind == "drop")
        assumed = sorted({a for o in outcomes for a in o.state.assumed})
        return Decision("unknown", f"depends on {'; '.join(assumed[:4])} (not modelled: reachability unknown): "
                                   f"accepted by {accept.because} or dropped by {drop.because}")

    def _hooks(self, state: _State, budget: _Budget) -> list[_Step]:
        """Outcomes over both hooks: each base chain in turn; drop ends, accept goes on."""
        chains = [(hook, key) for hook in HOOKS for key in self.base_chains(state.packet, hook)]
        return self._from_chain(chains, 0, state, budget, [])

    def _from_chain(self, chains: list[tuple[str, tuple[str, str, str]]], index: int, state: _State, budget: _Budget,
                    accepted: list[str]) -> list[_Step]:
        if index == len(chains):
            return [_Step("accept", "; ".join(accepted) or "no chain filters", state)]
        hook, key = chains[index]
        entering = replace(state, hook=hook, prio=self._prio(key))
        out: list[_Step] = []
        for step in self._chain(key, entering, 0, budget):
            if step.kind in ("next", "return"):
                policy = self.chains[key].get("policy", "accept")
                step = _Step("drop" if policy == "drop" else "accept", f"policy {policy} of chain {self._name(key)}", step.state)
            if step.kind == "accept":
                out.extend(self._from_chain(chains, index + 1, step.state, budget, [*accepted, step.because]))
            else:
                out.append(step)
        return out

    @staticmethod
    def _name(key: tuple[str, str, str]) -> str:
        return f"{key[0]} {key[1]} {key[2]}"

    def _chain(self, key: tuple[str, str, str], state: _State, depth: int, budget: _Budget) -> list[_Step]:
        """Outcomes of a chain; kind "return" when it ends or returns."""
        if depth > MAX_DEPTH:
            return [_Step("unknown", f"chain {self._name(key)}: jumps nested deeper than {MAX_DEPTH}", state)]
        if key not in self.chains and key not in self.rules:
            return [_Step("unknown", f"chain {self._name(key)} not found in the ruleset", state)]
        return self._rules_from(key, 0, state, depth, budget)

    def _rules_from(self, key: tuple[str, str, str], start: int, state: _State, depth: int, budget: _Budget) -> list[_Step]:
        rules = self.rules.get(key, [])
        for index in range(start, len(rules)):
            where = f"rule {index + 1} of chain {self._name(key)}"
            rule = rules[index]
            try:
                exprs = rule.get("expr", []) if isinstance(rule, dict) else None
                if not isinstance(exprs, list):
                    raise TypeError("expr")
                steps = self._exprs(key, exprs, 0, state, depth, where, budget)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                steps = [_Step("unknown", f"{where}: malformed rule in the ruleset JSON ({type(exc).__name__})", state)]
            if len(steps) == 1 and steps[0].kind == "next":
                state = steps[0].state
                continue
            out: list[_Step] = []
            for step in steps:
                budget.paths += 1
                if budget.paths > MAX_PATHS:
                    raise _TooMany()
                out.extend(self._rules_from(key, index + 1, step.state, depth, budget) if step.kind == "next" else [step])
            return out
        return [_Step("return", f"end of chain {self._name(key)}", state)]

    # -- statements -------------------------------------------------------------------------
    def _exprs(self, key: tuple[str, str, str], exprs: list[Any], start: int, state: _State, depth: int, where: str,
               budget: _Budget) -> list[_Step]:
        for index in range(start, len(exprs)):
            expr = exprs[index]
            if isinstance(expr, str) and expr.lstrip().startswith(("jump {", "goto {")):
                return [_Step("unknown", f"{where}: anonymous chain not expanded (nft prints no JSON for it)", state)]
            if not isinstance(expr, dict) or not expr:
                return [_Step("unknown", f"{where}: malformed statement (not modelled: reachability unknown)", state)]
            name = next(iter(expr))
            body = expr[name]
            truth: bool | _Fork
            if name == "match":
                truth = self._match(key, body, state)
            elif name in ("limit", "quota") and isinstance(body, str):
                named = self.objects.get((name, key[0], key[1], body))
                truth = self._stateful(name, named) if named is not None else _Fork(f"{name} {body} not found")
            elif name in ("limit", "quota", "ct count"):
                truth = self._stateful(name, body)
            elif name in ("meter", "set", "map") and isinstance(body, dict) and "stmt" in body:
                inners = body["stmt"] if isinstance(body["stmt"], list) else [body["stmt"]]
                truths = [self._stateful(n, i[n]) for i in inners if isinstance(i, dict) for n in i if n in ("limit", "quota", "ct count")]
                truth = False if False in truths else next((t for t in truths if isinstance(t, _Fork)), True)
            elif name == "xt" and isinstance(body, dict) and body.get("type") == "match":
                # iptables' comment match (iptables-nft keeps -m comment as an xt match) matches
                # every packet; until issue 22's mutation run it forked, so every commented
                # libvirt/docker/kube rule left reachability unknown
                truth = True if body.get("name") == "comment" else _Fork(f"iptables match {body.get('name')}")
            else:
                steps = self._statement(key, name, body, state, depth, where, budget)
                if steps is None:
                    continue
                if len(steps) == 1 and steps[0].kind == "set":
                    state = steps[0].state
                    continue
                return steps
            if truth is False:
                return [_Step("next", where, state)]
            if isinstance(truth, _Fork):
                forked = replace(state, assumed=(*state.assumed, f"{truth.reason} ({where})"))
                return [_Step("next", where, forked), *self._exprs(key, exprs, index + 1, forked, depth, where, budget)]
        return [_Step("next", where, state)]

    @staticmethod
    def _stateful(name: str, body: Any) -> bool | _Fork:
        inverted = bool(body.get("inv")) if isinstance(body, dict) else False
        if name == "limit":
            return not inverted
        if name == "ct count":
            count = body.get("val") if isinstance(body, dict) else None
            if not isinstance(count, int):
                return _Fork("ct count")
            return (1 > count) if inverted else (1 <= count)
        if name == "quota":
            units = {"bytes": 1, "kbytes": 1024, "mbytes": 1024 ** 2, "gbytes": 1024 ** 3}
            if "bytes" in body:  # a named quota object lists plain byte counts
                limit, used = body.get("bytes", 0), body.get("used", 0)
            else:
                limit = body.get("val", 0) * units.get(body.get("val_unit", "bytes"), 1)
                used = body.get("used", 0) * units.get(body.get("used_unit", "bytes"), 1)
            if used + 65536 < limit:
                return inverted is False
            if used > limit:
                return inverted is True
            return _Fork(f"quota ({used} of {limit} bytes used)")
        return _Fork(name)

    def _statement(self, key: tuple[str, str, str], name: str, body: Any, state: _State, depth: int, where: str,
                   budget: _Budget) -> list[_Step] | None:
        """Steps for a statement, None when it has no effect on the verdict."""
        if name == "accept":
            return [_Step("accept", where, state)]
        if name in ("drop", "reject"):
            return [_Step("drop", where, state)]
        if name == "return":
            return [_Step("return", where, state)]
        if name == "continue":
            return [_Step("next", where, state)]
        if name in ("jump", "goto"):
            target = (key[0], key[1], body["target"])
            out = []
            for step in self._chain(target, state, depth + 1, budget):
                if step.kind == "return":
                    out.append(_Step("next" if name == "jump" else "return", f"{where}: {name} {target[2]} returned", step.state))
                else:
                    out.append(step)
            return out
        if name == "vmap":
            return self._vmap(key, body, state, depth, where, budget)
        if name in ("counter", "log", "last", "dup", "flow", "ct helper", "ct timeout", "ct expectation", "secmark", "set", "map", "meter"):
            return None
        if name == "notrack":
            if state.hook == "prerouting" and state.prio < CONNTRACK_PRIO:
                return [_Step("set", where, replace(state, untracked=True))]
            return None
        if name in ("snat", "masquerade"):
            return [_Step("accept", f"{where} ({name})", state)]
        if name in ("dnat", "redirect"):
            return self._translate(name, body, state, where)
        if name == "mangle":
            mangled = body.get("key") if isinstance(body, dict) else None
            if isinstance(mangled, dict) and ("meta" in mangled or "ct" in mangled):
                kind = "meta" if "meta" in mangled else "ct"
                if mangled[kind].get("key") == "mark":
                    value = self._value(key, body.get("value"), state)
                    if isinstance(value, _Typed) and isinstance(value.value, int):
                        new = value.value
                    elif isinstance(body.get("value"), int):
                        new = body["value"]
                    else:
                        return [_Step("unknown", f"{where}: {kind} mark set to a value not modelled (reachability unknown)", state)]
                    return [_Step("set", where, replace(state, mark=new) if kind == "meta" else replace(state, ctmark=new))]
                return None
            if isinstance(mangled, dict) and "payload" in mangled and mangled["payload"].get("field") in ("daddr", "dport"):
                return [_Step("unknown", f"{where}: rewrites the destination (not modelled: reachability unknown)", state)]
            return None
        if name == "xt":
            xt_name = body.get("name") if isinstance(body, dict) else "?"
            if xt_name in ("LOG", "NFLOG"):
                return None
            return [_Step("unknown", f"{where}: iptables target {xt_name} (not modelled: reachability unknown)", state)]
        if name == "queue":
            return [_Step("unknown", f"{where}: queue to user space (not modelled: a program decides)", state)]
        return [_Step("unknown", f"{where}: statement {name} (not modelled: reachability unknown)", state)]

    @staticmethod
    def _translate(name: str, body: Any, state: _State, where: str) -> list[_Step]:
        """A destination NAT of the first packet (a nat prerouting chain): redirect keeps it on the
        host with another port; dnat to another machine forwards it, so it reaches no socket here."""
        packet = state.packet
        body = body if isinstance(body, dict) else {}
        port = body.get("port", packet.dport)
        address = body.get("addr", packet.daddr) if name == "dnat" else packet.daddr
        if not isinstance(port, int) or not isinstance(address, str):
            return [_Step("unknown", f"{where}: {name} by map or range (not modelled: reachability unknown)", state)]
        try:
            target = ipaddress.ip_address(address)
            local = {ipaddress.ip_address(a) for a in (packet.daddr, *packet.local)}
        except ValueError:
            return [_Step("unknown", f"{where}: {name} to {address} (not modelled: reachability unknown)", state)]
        if target not in local:
            if not packet.local:
                return [_Step("unknown", f"{where}: dnat to {address}, and the host's addresses are not known", state)]
            return [_Step("drop", f"{where}: dnat to {address} forwards it to another machine", state)]
        moved = replace(packet, daddr=str(target), dport=port)
        return [_Step("accept", f"{where} ({name} to port {port})", replace(state, packet=moved, dnat=True))]

    def _vmap(self, key: tuple[str, str, str], body: Any, state: _State, depth: int, where: str, budget: _Budget) -> list[_Step]:
        value = self._value(key, body["key"], state)
        if value is _NOMATCH:
            return [_Step("next", where, state)]
        entries = self._elements(key, body["data"])
        if isinstance(entries, _Fork):
            return [_Step("unknown", f"{where}: {entries.reason}", state)]
        if isinstance(value, _Fork):
            verdicts = {repr(e[1]) for e in entries if isinstance(e, list) and len(e) == 2}
            forked = replace(state, assumed=(*state.assumed, f"{value.reason} ({where})"))
            out = [_Step("next", where, forked)]
            for entry in entries:
                if isinstance(entry, list) and len(entry) == 2 and repr(entry[1]) in verdicts:
                    verdicts.discard(repr(entry[1]))
                    out.extend(self._exprs(key, [entry[1]], 0, forked, depth, f"{where} (verdict map)", budget))
            return out
        assert isinstance(value, _Typed)
        for entry in entries:
            if isinstance(entry, list) and len(entry) == 2:
                hit = self._contains(key, [entry[0]], value)
                if hit is True:
                    return self._exprs(key, [entry[1]], 0, state, depth, f"{where} (verdict map)", budget)
                if isinstance(hit, _Fork):
                    return [_Step("unknown", f"{where}: verdict map key {hit.reason} (not modelled)", state)]
        return [_Step("next", where, state)]

    # -- values -----------------------------------------------------------------------------
    def _elements(self, key: tuple[str, str, str], right: Any) -> list[Any] | _Fork:
        if isinstance(right, str) and right.startswith("@"):
            name = (key[0], key[1], right[1:])
            if name not in self.sets:
                return _Fork(f"set {right} not found")
            return self.sets[name]
        if isinstance(right, dict) and "set" in right:
            return list(right["set"]) if isinstance(right["set"], list) else [right["set"]]
        return [right]

    def _value(self, key: tuple[str, str, str], left: Any, state: _State) -> _Typed | _Fork | _NoMatchType:
        packet = state.packet
        if not isinstance(left, dict) or not left:
            return _Fork(f"expression {left!r}"[:80])
        kind = next(iter(left))
        body = left[kind]
        if kind == "concat":
            parts = [self._value(key, part, state) for part in body]
            if any(p is _NOMATCH for p in parts):
                return _NOMATCH
            fork = next((p for p in parts if isinstance(p, _Fork)), None)
            if fork is not None:
                return fork
            return _Typed("concat", tuple(parts))
        if kind in ("&", "|", "^"):
            inner = self._value(key, body[0], state)
            if not isinstance(inner, _Typed):
                return inner
            mask = self._scalar(inner.domain, body[1])
            if not isinstance(inner.value, int) or not isinstance(mask, int):
                return _Fork(f"bitwise {kind} on {inner.domain}")
            result = {"&": inner.value & mask, "|": inner.value | mask, "^": inner.value ^ mask}[kind]
            return _Typed(inner.domain, result)
        if kind == "meta":
            return self._meta(body.get("key"), state)
        if kind == "payload":
            return self._payload(body, state)
        if kind == "ct":
            return self._ct(body, state)
        if kind == "fib":
            flags = set(body.get("flags") or [])
            result = body.get("result")
            if result == "type" and flags in ({"daddr"}, {"daddr", "iif"}) and state.hook in ("input", "prerouting"):
                return _Typed("str", "local") if flags == {"daddr"} else _Fork("fib daddr . iif type")
            if result in ("oif", "oifname") and flags in ({"saddr", "iif"}, {"saddr", "iif", "mark"}) and packet.saddr is not None \
                    and packet.own_subnet and (state.mark == 0 or "mark" not in flags):
                return _Typed("fib-oif", packet.iif)
            if result == "type" and flags == {"saddr"} and packet.saddr is not None and packet.own_subnet:
                return _Typed("str", "unicast")
            return _Fork(f"fib {' . '.join(sorted(flags))} {result}")
        return _Fork(kind)

    def _meta(self, meta: Any, state: _State) -> _Typed | _Fork | _NoMatchType:
        packet = state.packet
        if meta in ("iifname", "iif"):
            return _Typed("ifname", packet.iif)
        if meta == "oifname":
            return _Typed("ifname", "")
        if meta in ("oif", "oiftype", "oifkind", "oifgroup", "skuid", "skgid", "obrname", "obriport"):
            return _NOMATCH
        if meta == "l4proto":
            return _Typed("l4", packet.proto)
        if meta == "nfproto":
            return _Typed("str", "ipv6" if packet.family == "ip6" else "ipv4")
        if meta == "protocol":
            return _Typed("str", packet.family)
        if meta == "pkttype":
            return _Typed("str", "host")
        if meta == "mark":
            return _Typed("int", state.mark)
        if meta == "iiftype":
            return _Typed("str", "ether")
        return _Fork(f"meta {meta}")

    def _payload(self, payload: Any, state: _State) -> _Typed | _Fork | _NoMatchType:
        packet = state.packet
        protocol, name = payload.get("protocol"), payload.get("field")
        if protocol is None:
            return _Fork("raw payload")
        if protocol in NEVER_ON_IP:
            return _NOMATCH
        if protocol in ("ip", "ip6"):
            if protocol != packet.family:
                return _NOMATCH
            if name in ("saddr", "daddr"):
                if name == "saddr" and packet.saddr is None:
                    return _Fork(f"source address of guests on {packet.iif}")
                return _Typed("addr", ipaddress.ip_address(packet.daddr if name == "daddr" or packet.saddr is None else packet.saddr))
            if name == "protocol":
                return _Typed("l4", packet.proto)
            if name == "nexthdr":
                return _Typed("l4", "hopopt" if packet.hbh else packet.proto)
            if name == "frag-off":
                return _Typed("int", 0x4000 if packet.df else 0)
            if name == "version":
                return _Typed("int", 4 if protocol == "ip" else 6)
            return _Fork(f"{protocol} {name}")
        if protocol == "ether":
            if name == "type":
                return _Typed("str", packet.family)
            return _Fork(f"ether {name}")
        if protocol in L4_PAYLOADS or protocol == "th":
            if protocol != "th" and L4_ALIASES.get(protocol, protocol) != packet.proto:
                return _NOMATCH
            if name == "dport":
                return _Typed("int", packet.dport)
            if name == "sport":
                return _Typed("int", packet.sport) if packet.sport is not None else _Fork("source port")
            if name == "flags" and packet.proto == "tcp":
                return _Typed("flags:tcp", packet.tcp_flags)
            return _Fork(f"{protocol} {name}")
        return _Fork(f"payload {protocol} {name}")

    def _ct(self, body: Any, state: _State) -> _Typed | _Fork | _NoMatchType:
        packet = state.packet
        ct_key = body.get("key")
        before = state.hook == "prerouting" and state.prio < CONNTRACK_PRIO
        if ct_key == "state":
            return _Typed("flags:ctstate", CT_STATE["untracked"] if state.untracked else CT_STATE["invalid"] if before else CT_STATE["new"])
        if state.untracked or before:
            return _NOMATCH  # no connection attached: every other ct key breaks the rule
        if ct_key == "status":
            return _Typed("flags:ctstatus", CT_STATUS["dnat"] if state.dnat else 0)
        if ct_key == "direction":
            return _Typed("str", "original")
        if ct_key == "mark":
            return _Typed("int", state.ctmark)
        if ct_key == "zone":
            return _Typed("int", 0)
        if ct_key == "l3proto":
            return _Typed("str", "ipv6" if packet.family == "ip6" else "ipv4")
        if ct_key == "protocol":
            return _Typed("l4", packet.proto)
        direction = body.get("dir", "original")
        tuple_fields = {"saddr": packet.saddr, "daddr": packet.daddr, "ip saddr": packet.saddr, "ip daddr": packet.daddr,
                        "ip6 saddr": packet.saddr, "ip6 daddr": packet.daddr}
        if ct_key in tuple_fields:
            if direction == "reply":
                ct_key = {"saddr": "daddr", "daddr": "saddr"}.get(ct_key.split()[-1], ct_key)
            address = packet.saddr if ct_key.endswith("saddr") else packet.daddr
            if address is None:
                return _Fork(f"source address of guests on {packet.iif}")
            return _Typed("addr", ipaddress.ip_address(address))
        if ct_key in ("proto-dst", "proto-src"):
            wanted = "proto-dst" if (ct_key == "proto-dst") == (direction != "reply") else "proto-src"
            if wanted == "proto-dst":
                return _Typed("int", packet.dport)
            return _Typed("int", packet.sport) if packet.sport is not None else _Fork("source port")
        return _Fork(f"ct {ct_key}")

    # -- comparisons ------------------------------------------------------------------------
    def _scalar(self, domain: str, element: Any) -> Any:
        """A JSON constant in the value's domain (flag names as bits, protocol numbers as names)."""
        table = _flag_table(domain)
        if table:
            if isinstance(element, int):
                return element
            if isinstance(element, str):
                return table.get(element, _Fork(f"flag {element}"))
            if isinstance(element, list):
                bits = [self._scalar(domain, e) for e in element]
                return sum(bits) if all(isinstance(b, int) for b in bits) else _Fork("flags")
            if isinstance(element, dict) and "|" in element:
                return self._scalar(domain, list(element["|"]))
            return _Fork("flags")
        if domain == "l4":
            if isinstance(element, int):
                return L4_NUMBERS.get(element, str(element))
            if isinstance(element, str):
                return L4_ALIASES.get(element, element)
        if domain == "int" and isinstance(element, str) and element.isdigit():
            return int(element)
        return element

    def _equal(self, typed: _Typed, element: Any) -> bool | _Fork:
        domain, value = typed.domain, typed.value
        if isinstance(element, dict) and "elem" in element:
            element = element["elem"].get("val")
        if domain == "concat":
            parts = element.get("concat") if isinstance(element, dict) else None
            if not isinstance(parts, list) or len(parts) != len(value):
                return False
            results = [self._equal(v, e) for v, e in zip(value, parts)]
            if any(r is False for r in results):
                return False
            return next((r for r in results if isinstance(r, _Fork)), True)
        if isinstance(element, dict) and "range" in element:
            lo, hi = (self._scalar(domain, x) for x in element["range"])
            if domain == "addr":
                try:
                    return bool(ipaddress.ip_address(lo) <= value <= ipaddress.ip_address(hi))
                except (TypeError, ValueError):
                    return False
            return isinstance(value, int) and isinstance(lo, int) and isinstance(hi, int) and lo <= value <= hi
        if isinstance(element, dict) and "prefix" in element:
            if domain != "addr":
                return False
            try:
                network = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}", strict=False)
            except (TypeError, ValueError, KeyError):
                return False
            return value.version == network.version and value in network
        if domain == "addr":
            try:
                return isinstance(element, str) and value == ipaddress.ip_address(element)
            except ValueError:
                return False
        if domain == "ifname":
            if not isinstance(element, str):
                return False
            if element.endswith("*") and not element.endswith("\\*"):
                return bool(value.startswith(element[:-1]))  # nft's only wildcard: a trailing *
            return bool(value == element.replace("\\*", "*"))
        if domain == "fib-oif":
            if isinstance(element, bool):
                return element  # true: a route back exists, false: "missing"
            return isinstance(element, str) and element == value
        scalar = self._scalar(domain, element)
        if isinstance(scalar, _Fork):
            return scalar
        if isinstance(element, dict):
            return _Fork(f"{domain} expression {next(iter(element), '')}")
        return bool(scalar == value)

    def _contains(self, key: tuple[str, str, str], elements: list[Any], typed: _Typed) -> bool | _Fork:
        fork: _Fork | None = None
        for element in elements:
            hit = self._equal(typed, element)
            if hit is True:
                return True
            if isinstance(hit, _Fork):
                fork = hit
        return fork if fork is not None else False

    def _match(self, key: tuple[str, str, str], match: dict[str, Any], state: _State) -> bool | _Fork:
        value = self._value(key, match["left"], state)
        if value is _NOMATCH:
            return False
        if isinstance(value, _Fork):
            return value
        assert isinstance(value, _Typed)
        op = match.get("op", "==")
        right = match["right"]
        table = _flag_table(value.domain)
        if table and op in ("in", "!") and not (isinstance(right, dict) and "set" in right) and not (isinstance(right, str) and right.startswith("@")):
            bits = self._scalar(value.domain, right)
            if isinstance(bits, _Fork):
                return bits
            return bool(value.value & bits) if op == "in" else not value.value & bits
        if op in ("<", ">", "<=", ">="):
            bound = self._scalar(value.domain, right)
            if not isinstance(value.value, int) or not isinstance(bound, int):
                return _Fork(f"comparison {op} on {value.domain}")
            return {"<": value.value < bound, ">": value.value > bound, "<=": value.value <= bound, ">=": value.value >= bound}[op]
        if op not in ("==", "!=", "in"):
            return _Fork(f"operator {op}")
        elements = self._elements(key, right)
        if isinstance(elements, _Fork):
            return elements
        if table and isinstance(right, list):
            elements = [right]  # a list on the right of a flag type is one combination of bits
        hit = self._contains(key, elements, value)
        if isinstance(hit, _Fork):
            return hit
        return hit if op in ("==", "in") else not hit


def variants(rulesets: list[tuple[str, Ruleset]], packet: Packet) -> list[Packet]:
    """The guest's choices that any of the rulesets tells apart, the ordinary packet first."""
    seen: dict[Packet, None] = {}
    for _, ruleset in rulesets:
        for variant in ruleset.variants(packet):
            seen.setdefault(variant, None)
    merged = list(seen) or [packet]
    if len(rulesets) > 1:  # a choice one ruleset tells apart must be tried against the others too
        flags = sorted({v.tcp_flags for v in merged})
        sports = list(dict.fromkeys(v.sport for v in merged))
        dfs = list(dict.fromkeys(v.df for v in merged))
        hbhs = list(dict.fromkeys(v.hbh for v in merged))
        merged = [replace(packet, tcp_flags=f, sport=s, df=d, hbh=h) for f, s, d, h in itertools.product(flags, sports, dfs, hbhs)]
    return merged


def evaluate_all(rulesets: list[tuple[str, Ruleset]], packet: Packet, prefix: bool = True) -> Decision:
    """Every ruleset hooked into the kernel filters the packet (nftables and legacy iptables side by
    side): any drop drops it, otherwise any unknown leaves it unknown. Over the guest's choices
    (variants()): reachable when one first packet is accepted, unreachable when every one is dropped."""
    def label(name: str) -> str:
        return f"{name}: " if prefix else ""

    results = []
    for variant in variants(rulesets, packet):
        decisions = [(name, ruleset._evaluate_one(variant)) for name, ruleset in rulesets]
        combined = None
        for verdict in ("drop", "unknown"):
            hits = [f"{label(name)}{d.because}" for name, d in decisions if d.verdict == verdict]
            if hits:
                combined = Decision(verdict, "; ".join(hits))
                break
        if combined is None:
            how = variant.describe()
            because = "; ".join(f"{label(name)}{d.because}" for name, d in decisions)
            return Decision("accept", because + (f" (a first packet with {how})" if how else ""))
        results.append(combined)
    unknown = next((d for d in results if d.verdict == "unknown"), None)
    return unknown or results[0]
