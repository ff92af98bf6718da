"""Domain, network and nwfilter XML: libvirt's own test data, hostile XML, and the facts read."""

from __future__ import annotations

import pathlib
import tarfile

import pytest

from hyperward.model import Status
from hyperward.parsers.domain_xml import XmlError, parse_domain, parse_network, parse_nwfilter

from conftest import REPO, apply, copy_root, scan, statuses

DATA = REPO / "tests/fixtures/libvirt-testdata/libvirt-9.0.0-testdata.tar.xz"


def _members(prefix: str) -> list[tuple[str, bytes]]:
    with tarfile.open(DATA) as archive:
        return [
            (m.name, archive.extractfile(m).read())  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile() and m.name.startswith(prefix) and m.name.endswith(".xml")
        ]


def test_every_domain_xml_libvirt_writes_parses():
    """qemuxml2xmloutdata is libvirt's own output: XML libvirt accepts. All of it must parse."""
    written = _members("qemuxml2xmloutdata/")
    assert len(written) > 450
    parsed = [parse_domain(text, name) for name, text in written]
    assert {d.name for d in parsed}
    assert sum(1 for d in parsed if d.graphics) > 20 and sum(1 for d in parsed if d.tpms) >= 3


def test_every_status_xml_parses():
    for name, text in _members("qemustatusxml2xmldata/"):
        if b"<domstatus" in text:
            domain = parse_domain(text, name, running=True)
            assert domain.name


def test_every_input_xml_parses_or_gives_a_clear_error():
    """qemuxml2argvdata includes XML libvirt rejects on purpose: never anything but XmlError."""
    inputs = _members("qemuxml2argvdata/")
    assert len(inputs) > 1000
    refused = []
    for name, text in inputs:
        try:
            parse_domain(text, name)
        except XmlError as exc:
            refused.append((name, str(exc)))
    assert len(refused) < 20, refused


def test_networks_and_nwfilters_libvirt_writes_parse():
    networks = [parse_network(text, name) for name, text in _members("networkxml2xmlout/")]
    assert {"nat", "route", "open", "bridge", "hostdev"} <= {n.forward_mode for n in networks}
    filters = [parse_nwfilter(text) for _, text in _members("nwfilterxml2xmlout/")]
    assert len(filters) > 30


def test_a_root_holding_all_of_libvirts_domains_scans_without_errors(tmp_path):
    """Every domain check on libvirt's ~480 real definitions: results, never an error (a check that raised)."""
    root = copy_root("hardened", tmp_path)
    keys = set()
    for name, text in _members("qemuxml2xmloutdata/"):
        (root / "etc/libvirt/qemu" / pathlib.Path(name).name).write_bytes(text)
        domain = parse_domain(text, name)
        keys.add(domain.uuid or domain.name)
    report = scan(root)
    errors = [(f.check_id, f.result.resource, f.result.message) for f in report.findings if f.status is Status.ERROR]
    assert errors == []
    # libvirt's tests reuse a few UUIDs; one result per distinct domain (the two fixture guests too)
    assert len([f for f in report.findings if f.check_id == "HV-ISO-018"]) == len(keys) + 2


GUEST1 = "QEMUGuest1 (c7a5fdbd-edaf-9455-926a-d65c16db1809)"
CORPUS_VERDICTS = [
    # libvirt's own output for its test inputs, judged alone on the hardened root (whose qemu.conf
    # leaves vnc_tls, vnc_sasl and chardev_tls at libvirt's defaults: off)
    ("graphics-vnc.xml", "HV-AUTH-010", {}, Status.FAIL),                    # VNC on a global IPv6 address, no TLS
    ("graphics-vnc-sasl.xml", "HV-AUTH-010", {}, Status.PASS),               # on 127.0.0.1
    ("graphics-vnc-socket.xml", "HV-AUTH-010", {}, Status.PASS),             # a UNIX socket
    ("graphics-vnc-sasl.xml", "HV-AUTH-010", {"listen='127.0.0.1'": "listen='192.0.2.7'", "address='127.0.0.1'": "address='192.0.2.7'"}, Status.FAIL),
    ("graphics-spice.x86_64-latest.xml", "HV-AUTH-010", {}, Status.PASS),    # on 127.0.0.1
    ("serial-tcp-tlsx509-chardev.xml", "HV-AUTH-011", {}, Status.PASS),      # TCP to 127.0.0.1
    ("serial-tcp-tlsx509-chardev.xml", "HV-AUTH-011", {"host='127.0.0.1' service='5555'": "host='192.0.2.7' service='5555'"}, Status.FAIL),
    ("cpu-host-passthrough-features.xml", "HV-NEST-002", {}, Status.PASS),   # passthrough, host nested=N
    ("cpu-host-passthrough-features.xml", "HV-NEST-002", {"<feature policy='require' name='abm'/>": "<feature policy='require' name='vmx'/>"}, Status.FAIL),
]


@pytest.mark.parametrize("name,check_id,edits,expected", CORPUS_VERDICTS, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CORPUS_VERDICTS)])
def test_verdicts_on_chosen_domains_of_libvirts_corpus(tmp_path, name, check_id, edits, expected):
    [(_, data)] = [(n, d) for n, d in _members("qemuxml2xmloutdata/") if n.endswith("/" + name)]
    text = data.decode()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    root = copy_root("hardened", tmp_path)
    apply(root, {"etc/libvirt/qemu/hardened-vm.xml": None, "etc/libvirt/qemu/sev-vm.xml": None,
                 "run/libvirt/qemu/hardened-vm.xml": None, "etc/libvirt/qemu/QEMUGuest1.xml": text})
    assert statuses(scan(root, only=[check_id]), check_id) == {GUEST1: expected}


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<domain type='kvm'><name>&lol3;</name></domain>
"""
EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY shadow SYSTEM "file:///etc/shadow">]>
<domain type='kvm'><name>&shadow;</name></domain>
"""


@pytest.mark.parametrize(
    "text,message",
    [
        (BILLION_LAUGHS, "refused unsafe XML"),
        (EXTERNAL_ENTITY, "refused unsafe XML"),
        ("<domain type='kvm'><name>cut", "not well-formed XML"),
        ("\x00\x01garbage", "not well-formed XML"),
        ("<network><name>n</name></network>", "root element is <network>, expected <domain>"),
        ("<domain type='kvm'><uuid>x</uuid></domain>", "domain without a <name>"),
        ("<domstatus state='running'/>", "<domstatus> without a <domain>"),
    ],
)
def test_hostile_or_broken_domain_xml(text, message):
    with pytest.raises(XmlError) as err:
        parse_domain(text, "x.xml")
    assert message in str(err.value)


def test_broken_domain_files_are_errors_naming_the_file_and_the_rest_still_runs(hardened):
    apply(hardened, {
        "etc/libvirt/qemu/bomb.xml": BILLION_LAUGHS,
        "etc/libvirt/qemu/cut.xml": "<domain type='kvm'><name>cut</name><devices>",
        "etc/libvirt/qemu/huge.xml": "<domain type='kvm'><name>huge</name>" + "<!-- pad -->" * 800_000 + "</domain>",
    })
    (hardened / "etc/libvirt/qemu/loop.xml").symlink_to("loop.xml")
    report = scan(hardened, only=["HV-ISO-003"])
    by_resource = {f.result.resource: f for f in report.findings}
    for name, reason in (("bomb", "refused unsafe XML"), ("cut", "not well-formed"), ("huge", "larger than"), ("loop", "symlink loop")):
        finding = by_resource[f"/etc/libvirt/qemu/{name}.xml"]
        assert finding.status is Status.ERROR and reason in finding.result.message, finding.result.message
    assert by_resource["hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)"].status is Status.PASS
    assert by_resource["sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)"].status is Status.PASS


def test_facts_read_from_a_domain():
    text = (REPO / "tests/fixtures/roots/weak/etc/libvirt/qemu/weak-vm.xml").read_text()
    d = parse_domain(text, "weak-vm.xml")
    assert (d.type, d.machine, d.memory_kib, d.vcpus, d.dump_core) == ("qemu", "pc-i440fx-7.2", 48 * 1024 * 1024, 16, "on")
    assert d.cpu_mode == "host-passthrough" and d.cpu_features == {"vmx": "require", "spec-ctrl": "disable", "md-clear": "disable"}
    assert [(x.type, x.device, x.source) for x in d.disks][:3] == [
        ("file", "disk", "/var/lib/libvirt/images/weak-vm.qcow2"), ("file", "disk", "/var/lib/libvirt/images/shared-scratch.img"), ("block", "lun", "/dev/sda"),
    ]
    assert d.disks[0].backing == ["/home/bob/golden/debian12-base.qcow2"]
    assert [(g.type, [lst.address for lst in g.listens], g.has_password) for g in d.graphics] == [("vnc", ["0.0.0.0"], False), ("spice", ["0.0.0.0"], False)]
    assert d.interfaces[0].vlan_tags == [42, 47] and d.interfaces[0].vlan_trunk and d.interfaces[0].trust_guest_rx_filters
    assert d.sev_policy == 0 and d.launch_security == "sev"
    assert d.qemu_passthrough == ["commandline arg -fw_cfg", "commandline arg (value)", "commandline env SPICE_DEBUG_LEVEL"]
    assert "DO-NOT-LEAK-THIS" not in repr(d)


def test_memory_units_follow_formatdomain():
    for unit, value, kib in (("KiB", 1024, 1024), ("MiB", 64, 65536), ("G", 2, 2 * 1024 * 1024), ("bytes", 1048576, 1024), (None, 4096, 4096)):
        attr = f" unit='{unit}'" if unit else ""
        d = parse_domain(f"<domain type='kvm'><name>m</name><memory{attr}>{value}</memory></domain>", "m.xml")
        assert d.memory_kib == kib, unit


def test_a_domain_seen_in_files_and_live_status_is_judged_once(hardened):
    report = scan(hardened, only=["HV-ISO-017"])
    assert statuses(report, "HV-ISO-017") == {
        "hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)": Status.PASS,
        "sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)": Status.PASS,
    }
