"""Arbitrary input never escapes as an unexpected exception: parsers return data or raise their
own documented error, which the collectors turn into an `invalid` fact naming the path."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from hyperward.facts import SnapshotError, load_snapshot
from hyperward.parsers.cmdline import parse_cmdline, parse_grub_defaults
from hyperward.parsers.config_files import parse_apt_conf, parse_cpuinfo, parse_dpkg_status, parse_group, parse_ini, parse_modprobe, parse_passwd_gids
from hyperward.parsers.cpu_vuln import main_status, parse_vulnerability
from hyperward.parsers.libvirt_conf import LibvirtConfError, parse_libvirt_conf

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=2000)
structured = st.text(alphabet='abcXYZ019 =;:{}[]",\'#/*\\\n\t-_.+~$', max_size=400)
FUZZ = settings(max_examples=250, deadline=None)


@FUZZ
@given(st.one_of(texts, structured))
def test_text_parsers_never_raise(text):
    parse_cmdline(text)
    parse_grub_defaults([("/etc/default/grub", text)])
    parse_apt_conf(text)
    parse_modprobe(text, "/etc/modprobe.d/x.conf")
    parse_group(text)
    parse_passwd_gids(text)
    parse_cpuinfo(text)
    parse_dpkg_status(text)
    parse_ini(text)
    main_status(text)
    parse_vulnerability(text)


@FUZZ
@given(st.one_of(texts, structured))
def test_libvirt_conf_raises_only_its_error(text):
    try:
        parse_libvirt_conf(text)
    except LibvirtConfError as exc:
        assert exc.line >= 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30,
)


@FUZZ
@given(json_values)
def test_snapshot_loader_raises_only_snapshot_error(value):
    for document in (value, {"format": "hyperward-facts", "version": 1, "facts": value}):
        try:
            load_snapshot(json.dumps(document))
        except SnapshotError as exc:
            assert str(exc).startswith("snapshot: ")


xml_like = st.text(alphabet="<>/='\" domainamevcpuoriceslabtyp!-?&;#x01\n", max_size=600)


@FUZZ
@given(st.one_of(texts, xml_like, st.binary(max_size=600)))
def test_xml_and_proc_parsers_raise_only_their_own_error(data):
    from hyperward.parsers.domain_xml import XmlError, parse_domain, parse_network, parse_nwfilter
    from hyperward.parsers.proc import deleted_mappings, machine_slice, net_listeners, parse_mounts, status_fields
    from hyperward.parsers.systemd import parse_unit

    for parse in (lambda t: parse_domain(t, "x.xml"), lambda t: parse_network(t, "x.xml"), parse_nwfilter):
        try:
            parse(data)
        except XmlError:
            pass
    if isinstance(data, str):
        for parse_text in (deleted_mappings, machine_slice, parse_mounts, status_fields, lambda t: net_listeners(t, "tcp6"), lambda t: parse_unit([t])):
            parse_text(data)


@FUZZ
@given(st.builds(
    lambda attrs, body: f"<domain type='kvm'><name>n</name><memory {attrs}>{body}</memory><vcpu>{body}</vcpu>"
                        f"<devices><graphics type='vnc' {attrs}/><interface type='bridge'><vlan><tag id='{body}'/></vlan></interface>"
                        f"<hostdev type='pci'><source><address bus='{body}'/></source></hostdev></devices>"
                        f"<launchSecurity type='sev'><policy>{body}</policy></launchSecurity></domain>",
    st.sampled_from(["", "unit='GiB'", "unit='bogus'", "port='x'", "tlsPort='-1'", "dumpCore='on'"]),
    st.text(alphabet="0123456789xabcdefXG-+ .", max_size=12),
))
def test_domain_values_of_any_shape_parse(text):
    from hyperward.parsers.domain_xml import parse_domain

    parse_domain(text, "x.xml")


nft_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.text(max_size=12),
                     st.sampled_from(["@s", "accept", "drop", "vnet*", "10.0.0.0", "tcp", "udp", "new", "established"]))
nft_json = st.recursive(nft_leaf, lambda children: st.one_of(st.lists(children, max_size=4),
                                                             st.dictionaries(st.sampled_from(["match", "left", "right", "op", "meta", "key",
                                                                                              "payload", "protocol", "field", "set", "range",
                                                                                              "prefix", "addr", "len", "jump", "goto", "target",
                                                                                              "vmap", "data", "ct", "accept", "drop", "counter",
                                                                                              "concat", "&", "|", "limit", "quota", "ct count", "inv",
                                                                                              "meter", "stmt", "elem", "redirect", "dnat", "port",
                                                                                              "mangle", "value", "fib", "flags", "result", "xt", "name"]),
                                                                             children, max_size=4)), max_leaves=20)


@FUZZ
@given(st.lists(nft_json, max_size=6))
def test_nft_evaluator_never_raises(exprs):
    from hyperward.parsers.nft import Packet, Ruleset

    document = {"nftables": [
        {"chain": {"family": "inet", "table": "t", "name": "input", "hook": "input", "prio": 0, "policy": "drop", "type": "filter"}},
        {"chain": {"family": "ip", "table": "n", "name": "pre", "hook": "prerouting", "prio": -100, "type": "nat"}},
        {"rule": {"family": "ip", "table": "n", "chain": "pre", "expr": [e for e in exprs[:2] if isinstance(e, dict)]}},
        {"chain": {"family": "inet", "table": "t", "name": "other"}},
        {"set": {"family": "inet", "table": "t", "name": "s", "elem": [22, {"range": [80, 90]}]}},
        {"rule": {"family": "inet", "table": "t", "chain": "input", "expr": [e for e in exprs if isinstance(e, dict)]}},
        {"rule": {"family": "inet", "table": "t", "chain": "input", "expr": [{"jump": {"target": "other"}}]}},
    ]}
    for packet in (Packet("br0", "10.0.0.2", "10.0.0.1", "tcp", 22, local=("10.0.0.1",)), Packet("br0", None, "2001:db8::1", "udp", 53)):
        decision = Ruleset(document).evaluate(packet)
        assert decision.verdict in ("accept", "drop", "unknown")
