"""The VirtualBox platform (issue 16).

VirtualBox cannot run on the test machine (no vboxdrv, no VBoxSVC, no VBoxManage): every input
here is a real VirtualBox file format (VirtualBox.xml, .vbox of settings 1.15 to 1.20, ExtPack.xml,
/etc/default/virtualbox) written by hand after VirtualBox's Settings.cpp and schema, not the
output of a running VirtualBox. See tests/fixtures/virtualbox/README.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil

import pytest
from conftest import failing, hyperward, scan, statuses
from vbox_roots import HARDENED, PWHASH, TELEPORTER_PASSWORD, WEAK, make_root

from hyperward.collect import collect_host
from hyperward.collect.fs import RootFS
from hyperward.facts import dump_snapshot, load_snapshot
from hyperward.model import Severity, Status, Unavailable
from hyperward.platforms.base import Source
from hyperward.platforms.virtualbox import PLATFORM, parsers
from hyperward.platforms.virtualbox.checks import JUDGES
from hyperward.platforms.virtualbox.collect import _running, collect
from hyperward.platforms.virtualbox.facts import VBoxMachine, VirtualBoxFacts

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "virtualbox"
ALICE_VMS = "home/alice/VirtualBox VMs"
W, O, U = WEAK["win10"], WEAK["old50"], WEAK["ubuntu71"]
S70, S52, E70 = HARDENED["safe70"], HARDENED["safe52"], HARDENED["enc70"]
BROKEN = "/home/alice/VirtualBox VMs/Broken/Broken.vbox"


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_root(tmp_path)


def vbox(root: pathlib.Path) -> VirtualBoxFacts:
    facts = collect(Source(RootFS(str(root))))
    assert isinstance(facts, VirtualBoxFacts)
    return facts


def machines(facts: VirtualBoxFacts) -> dict[str, VBoxMachine]:
    return {m.name: m for _h, m in facts.machines()}


def parse(path: pathlib.Path) -> tuple[str, str, object]:
    return parsers.parse_machine(path.read_text(), str(path), str(path.parent))


# --- the file formats of several releases, with VirtualBox's defaults ------------------------------


def test_each_release_layout_reads_with_that_release_defaults():
    _u, name, win = parse(FIXTURES / "weak/VirtualBox VMs/Win10-weak/Win10-weak.vbox")  # 1.17, VirtualBox 6.0
    assert name == "Win10-weak" and win.settings_version == "1.17-linux"
    assert win.vrde.enabled and win.vrde.auth_type == "Null" and win.vrde.ports == "3390" and win.vrde.address == ""
    assert "VRDE authType Null" in win.defaults
    assert win.cpu.nested_hw_virt and not win.cpu.l1d_flush_sched and win.cpu.mds_clear_sched
    assert win.teleporter.enabled and win.teleporter.port == 6000 and win.teleporter.password_set
    assert win.recording and win.recording_screens == [0]          # <VideoCapture> inside <Hardware>, 6.0 style
    assert [(p.host, p.guest) for p in win.pci] == [("03:00.0", "05:00.0")]
    assert win.shared_folders[0].symlinks_extradata and win.shared_folders[0].writable
    assert win.auth_simple_users == 1

    _u, _n, old = parse(FIXTURES / "weak/VirtualBox VMs/old50/old50.vbox")  # 1.15, VirtualBox 5.0
    assert old.vrde.enabled, "before settings 1.16 a missing RemoteDisplay means VRDE enabled (VRDESettings())"
    assert any(d.startswith("VRDE enabled=true") for d in old.defaults)
    assert [n.attachment for n in old.nics] == ["bridged", "null"]  # DisabledModes are not the active mode
    assert old.firmware == "BIOS" and old.tpm == "None" and not old.recording

    _u, _n, new = parse(FIXTURES / "weak/VirtualBox VMs/Ubuntu71/Ubuntu71.vbox")  # 1.20, VirtualBox 7.1
    assert new.cpu.count == 4 and not new.cpu.mds_clear_sched, "1.20 keeps the x86 CPU under <Platform><x86><CPU>"
    assert new.firmware == "EFI" and new.tpm == "v2_0" and not new.vrde.enabled
    assert new.clipboard_mode == "GuestToHost" and new.file_transfers and new.dnd_mode == "HostToGuest"
    assert new.shared_folders[0].symlink_policy == "any"
    assert new.recording_screens == [0]

    _u, _n, safe = parse(FIXTURES / "hardened/Machines/Safe70/Safe70.vbox")  # 1.19, VirtualBox 7.0
    assert safe.vrde.enabled and safe.vrde.auth_type == "External" and safe.vrde.address == "127.0.0.1"
    assert safe.vrde.security_method == "TLS" and not safe.recording
    assert [d.encrypted for d in safe.disks] == [True]
    assert safe.disks[0].location.endswith("Machines/Safe70/Safe70.vdi")

    _u, _n, s52 = parse(FIXTURES / "hardened/Machines/Safe52/Safe52.vbox")  # 1.16, VirtualBox 5.2
    assert not s52.vrde.enabled and any(d.startswith("VRDE enabled=false") for d in s52.defaults)
    assert s52.clipboard_mode == "Disabled" and not s52.shared_folders

    uuid, name, enc = parse(FIXTURES / "hardened/Machines/Enc70/Enc70.vbox")
    assert enc is None and uuid == "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc03" and name == "Enc70"


def test_a_boolean_vbox_does_not_understand_keeps_the_default():
    text = (FIXTURES / "hardened/Machines/Safe52/Safe52.vbox").read_text().replace(
        "<Clipboard mode=\"Disabled\"/>", "<Clipboard mode=\"Disabled\"/><RemoteDisplay enabled=\"maybe\"/>")
    _u, _n, cfg = parsers.parse_machine(text, "x.vbox", "/")
    assert cfg is not None and not cfg.vrde.enabled


def test_an_invalid_enum_is_refused_like_virtualbox_refuses_it():
    text = (FIXTURES / "hardened/Machines/Safe52/Safe52.vbox").read_text().replace('mode="Disabled"/>\n      <DragAndDrop', 'mode="Sometimes"/>\n      <DragAndDrop')
    with pytest.raises(parsers.ParseError, match="Clipboard/@mode"):
        parsers.parse_machine(text, "x.vbox", "/")


# --- collecting homes ---------------------------------------------------------------------------------


def test_every_home_and_its_registry_is_collected(root):
    facts = vbox(root)
    kinds = {(h.path, h.source, h.user) for h in facts.homes}
    assert kinds == {("/home/alice/.config/VirtualBox", "home", "alice"), ("/home/bob/.VirtualBox", "legacy", "bob")}
    found = machines(facts)
    assert set(found) == {"Win10-weak", "old50", "Ubuntu71", "Safe70", "Safe52", "Enc70"}
    assert "Win10-PREV" not in found, ".vbox-prev is VirtualBox's backup and never read"
    alice = next(h for h in facts.homes if h.user == "alice")
    assert [e.src for e in alice.missing] == ["/home/alice/VirtualBox VMs/Gone/Gone.vbox"]
    assert ("VirtualBox home /home/alice/.config/VirtualBox: registered machine /home/alice/VirtualBox VMs/Gone/Gone.vbox "
            "has no settings file; not audited") in PLATFORM.warnings(facts)
    bad = [m for m in alice.machines if isinstance(m, Unavailable)]
    assert [(b.path, b.kind) for b in bad] == [(BROKEN, "invalid")]
    assert "not well-formed" in bad[0].reason
    assert found["Enc70"].config is None
    assert facts.installed and facts.cfg_version == "7.1.4"
    assert [p.version for p in facts.ext_packs if not isinstance(p, Unavailable)] == ["7.0.20"]
    assert facts.websrv == {"VBOXWEB_USER": "alice", "VBOXWEB_HOST": "0.0.0.0", "VBOXWEB_PORT": "18083",
                            "VBOXWEB_AUTH_LIBRARY": "null"}, "VBOXWEB_AUTH_PWHASH is never kept"
    assert facts.running is None, "offline roots say nothing about running machines"


def test_a_root_without_virtualbox_is_not_detected(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (tmp_path / "home/alice/.config").mkdir(parents=True)
    assert not PLATFORM.detect(Source(RootFS(str(tmp_path))))
    assert "virtualbox" not in collect_host(str(tmp_path)).platforms


def test_running_machines_come_from_the_vm_processes(root):
    proc = root / "proc/4242"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_bytes(b"/usr/lib/virtualbox/VBoxHeadless\0--comment\0Win10-weak\0--startvm\0"
                                   b"{0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01}\0--vrde\0config\0")
    (root / "proc/77").mkdir()
    (root / "proc/77/cmdline").write_bytes(b"/usr/bin/bash\0--startvm\0{5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc01}\0")
    running, source, _notes = _running(RootFS(str(root)))
    assert shutil.which("VBoxManage", path="/usr/sbin:/usr/bin:/sbin:/bin") is None  # not installed here
    assert running == ["0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01"] and source == "VM processes"


# --- every VirtualBox check, failing and passing on exact machines ------------------------------------

EXPECTED = {
    "HV-AUTH-030": ({W, O}, {S70, S52, U}),
    "HV-AUTH-031": ({W, O}, {S70, S52, U}),
    "HV-AUTH-032": ({W}, {O, S70, S52, U}),
    "HV-AUTH-033": ({W, U}, {O, S70, S52, E70, "/home/alice/.config/VirtualBox/VirtualBox.xml", "/home/bob/.VirtualBox/VirtualBox.xml"}),
    "HV-AUTH-034": ({"vboxwebsrv 0.0.0.0:18083"}, set()),
    "HV-ISO-030": ({W, U}, {S70}),
    "HV-ISO-031": ({W, U}, {O, S70, S52}),
    "HV-ISO-032": ({W, U}, {O, S70, S52}),
    "HV-ISO-033": ({W, U}, {S70}),
    "HV-ISO-034": ({W}, {S70}),
    "HV-ISO-035": ({W}, set()),
    "HV-ISO-036": ({W, U}, {O, S70, S52}),
    "HV-NET-030": ({W, "NAT network NatNetwork (/home/alice/.config/VirtualBox)"},
                   {S70, "NAT network Quiet (/home/alice/.config/VirtualBox)"}),
    "HV-NET-031": ({U}, {W, O, S70, S52}),
    "HV-NET-032": ({W}, {O, U, S70, S52}),
    "HV-NET-033": ({U}, {O, S52}),
    "HV-SIDE-030": ({W, U}, {O, S70, S52}),
    "HV-PATCH-030": ({"extpack Oracle VirtualBox Extension Pack"}, set()),
    "HV-PATCH-031": ({W}, {S70}),
    "HV-PATCH-032": ({"VirtualBox 7.1.4"}, set()),
    # no guest is marked sensitive without a config: judged in test_virtualbox_sensitive.py
    "HV-BAK-030": (set(), set()),
}


def test_the_table_covers_every_virtualbox_check():
    assert set(EXPECTED) == set(JUDGES)


@pytest.mark.parametrize("check_id", sorted(EXPECTED))
def test_each_check_fails_and_passes_exactly(root, check_id):
    report = scan(root, only=[check_id])
    bad, good = EXPECTED[check_id]
    assert failing(report, check_id) == bad
    got = statuses(report, check_id)
    assert {r for r, s in got.items() if s is Status.PASS} == good
    assert all(f.result.platform == "virtualbox" for f in report.findings)
    if check_id not in ("HV-AUTH-033", "HV-AUTH-034", "HV-PATCH-030", "HV-PATCH-032", "HV-BAK-030"):  # per machine
        assert got[BROKEN] is Status.ERROR, "an unreadable machine is an error naming its file"
        assert got[E70] is Status.NOT_APPLICABLE, "encrypted settings cannot be judged"


def test_severities_follow_what_is_exposed(root):
    report = scan(root, only=["HV-AUTH-030", "HV-ISO-032", "HV-AUTH-034", "HV-NET-032"])
    sev = {(f.check_id, f.result.resource): f.severity for f in report.findings if f.status is Status.FAIL}
    assert sev[("HV-AUTH-030", W)] is Severity.CRITICAL
    assert sev[("HV-ISO-032", U)] is Severity.LOW      # HostToGuest only
    assert sev[("HV-ISO-032", W)] is Severity.MEDIUM
    assert sev[("HV-AUTH-034", "vboxwebsrv 0.0.0.0:18083")] is Severity.CRITICAL
    assert sev[("HV-NET-032", W)] is Severity.HIGH     # a password is set


def edit(root: pathlib.Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize("rel, old, new, check_id, severity", [
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", ' authType="External"', "", "HV-AUTH-030", Severity.CRITICAL),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'authType="External"', 'authType="Guest"', "HV-AUTH-030", Severity.HIGH),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'value="127.0.0.1"', 'value="0.0.0.0"', "HV-AUTH-031", None),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'hostip="127.0.0.1" ', "", "HV-NET-030", None),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'writable="false"', 'writable="true"', "HV-ISO-030", None),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'hostMode="RawFile"', 'hostMode="HostPipe" server="true"', "HV-ISO-033", Severity.LOW),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", ' vendorId="1050" productId="0407"', "", "HV-ISO-034", None),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", '<Recording enabled="false"', '<Recording enabled="true"', "HV-ISO-036", None),
    ("home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", "<X2APIC enabled=\"true\"/>", "<X2APIC enabled=\"true\"/><L1DFlushOn scheduling=\"false\"/>", "HV-SIDE-030", None),
    ("home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", 'version="1.16-linux"', 'version="1.15-linux"', "HV-AUTH-030", Severity.CRITICAL),
    ("home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", "<Clipboard mode=\"Disabled\"/>", "<Clipboard mode=\"Disabled\" fileTransfersEnabled=\"true\"/>", None, None),
    ("home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", '<Adapter slot="0" enabled="true"', '<Adapter slot="0" enabled="true" promiscuousModePolicy="AllowAll"', "HV-NET-031", None),
    ("home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", "<Hardware>", '<Teleporter enabled="true" port="6001"/><Hardware>', "HV-NET-032", Severity.CRITICAL),
    ("home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", '<BridgedInterface name="enp5s0"/>', '<BridgedInterface name="enp3s0"/>', "HV-NET-033", None),
])
def test_one_change_to_a_hardened_machine_fails_exactly_it(root, rel, old, new, check_id, severity):
    """One edit per row on a hardened machine; the row's check fails that machine only. A
    clipboard that is off carries no file transfers (VirtualBox needs the clipboard for them)."""
    edit(root, rel, old, new)
    machine = S70 if "Safe70" in rel else S52
    if check_id is None:
        report = scan(root, only=["HV-ISO-031"])
        assert machine not in failing(report, "HV-ISO-031")
        return
    report = scan(root, only=[check_id])
    before = EXPECTED[check_id][0]
    assert failing(report, check_id) == before | {machine}
    found = next(f for f in report.findings if f.result.resource == machine and f.check_id == check_id)
    if severity is not None:
        assert found.severity is severity


def test_extension_pack_of_virtualboxs_version_passes(tmp_path):
    root = make_root(tmp_path, extpack_version="7.1.4")
    report = scan(root, only=["HV-PATCH-030"])
    assert statuses(report, "HV-PATCH-030") == {"extpack Oracle VirtualBox Extension Pack": Status.PASS}


@pytest.mark.parametrize("conf, status", [
    ("VBOXWEB_USER=alice\nVBOXWEB_HOST=127.0.0.1\n", Status.PASS),
    ("VBOXWEB_USER=alice\nVBOXWEB_HOST=0.0.0.0\nVBOXWEB_SSL_KEYFILE=/etc/vbox/web.pem\n", Status.PASS),
    ("VBOXWEB_USER=alice\nVBOXWEB_HOST=0.0.0.0\n", Status.FAIL),
    ("# VBOXWEB_USER=alice\n", Status.NOT_APPLICABLE),
])
def test_web_service(tmp_path, conf, status):
    root = make_root(tmp_path, websrv=conf)
    report = scan(root, only=["HV-AUTH-034"])
    assert [f.status for f in report.findings] == [status]


def test_web_service_auth_library_comes_from_the_users_virtualbox_xml(tmp_path):
    root = make_root(tmp_path, websrv="VBOXWEB_USER=alice\n")
    edit(root, "home/alice/.config/VirtualBox/VirtualBox.xml", 'webServiceAuthLibrary="VBoxAuth"', 'webServiceAuthLibrary="null"')
    report = scan(root, only=["HV-AUTH-034"])
    assert failing(report, "HV-AUTH-034") == {"vboxwebsrv localhost:18083"}
    assert "webServiceAuthLibrary" in report.findings[0].result.message


# --- the neutral guest checks see VirtualBox machines --------------------------------------------------


def test_machines_on_the_neutral_guest_model(root):
    guests = {g.name: g for g in PLATFORM.guests(vbox(root))}
    assert set(guests) == {"Win10-weak", "old50", "Ubuntu71", "Safe70", "Safe52"}, "encrypted settings are not guessed"
    win, ubu, safe = guests["Win10-weak"], guests["Ubuntu71"], guests["Safe70"]
    assert (win.firmware, win.secure_boot, win.nested, win.nested_kind) == ("bios", False, True, "requested")
    assert (ubu.firmware, ubu.secure_boot) == ("uefi", None), "Secure Boot lives in the NVRAM store, not read"
    assert [(t.kind, t.version) for t in ubu.tpms] == [("emulator", "2.0")]
    assert [(s.host_path, s.writable, s.as_root) for s in win.shared_directories] == [("/", True, False)]
    assert [(c.host, c.port) for c in win.network_chardevs] == [("0.0.0.0", "7001")]
    assert {d.kind for d in win.devices} == {"pci", "usb"}
    assert [(n.attachment, n.anti_spoofing) for n in ubu.nics] == [("bridge", False)]
    assert [c.kind for c in safe.consoles] == ["vrde"] and safe.consoles[0].listen == ["127.0.0.1"]
    assert safe.disks[0].encrypted is True
    report = scan(root, only=["HV-NEST-002", "HV-TPM-003", "HV-ISO-014"])
    assert failing(report, "HV-NEST-002") == {W}
    assert statuses(report, "HV-TPM-003")[U] is Status.NOT_APPLICABLE
    assert failing(report, "HV-ISO-014") == {W, U}


# --- hostile and broken input ----------------------------------------------------------------------------

LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">'
          '<Machine uuid="{11111111-2222-4333-8444-555555555555}" name="&lol3;"><Hardware/></Machine></VirtualBox>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Machine uuid="{1}" name="&x;"><Hardware/></Machine></VirtualBox>')


@pytest.mark.parametrize("content, reason", [
    (LAUGHS, "refused"),
    (EXTERNAL, "refused"),
    ('<?xml version="1.0"?><VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux"><Machine uuid="{1', "not well-formed"),
    ('<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>', "root element is <Envelope>"),
    ('<?xml version="1.0"?><VirtualBox xmlns="http://www.virtualbox.org/"><Machine/></VirtualBox>', "no version attribute"),
    (b"\x00\x01\x02binary", "binary data"),
    ("<VirtualBox version='1.19-linux'>" + "<a>" * 50 + "x" * (17 * 1024 * 1024), "larger than"),
])
def test_hostile_machine_file_is_an_error_naming_it_and_the_rest_still_runs(root, content, reason):
    path = root / ALICE_VMS / "Ubuntu71/Ubuntu71.vbox"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    facts = vbox(root)
    bad = [m for h in facts.homes for m in h.machines if isinstance(m, Unavailable)]
    hit = [b for b in bad if b.path.endswith("Ubuntu71.vbox")]
    assert len(hit) == 1 and reason in hit[0].reason and hit[0].kind == "invalid"
    assert {"Win10-weak", "old50", "Safe70", "Safe52"} <= set(machines(facts))
    report = scan(root, only=["HV-AUTH-030"])
    assert statuses(report, "HV-AUTH-030")["/home/alice/VirtualBox VMs/Ubuntu71/Ubuntu71.vbox"] is Status.ERROR
    assert failing(report, "HV-AUTH-030") == {W, O}


def test_hostile_virtualbox_xml_names_the_file_and_the_other_home_still_loads(root):
    (root / "home/alice/.config/VirtualBox/VirtualBox.xml").write_text(LAUGHS.replace("VirtualBox xmlns", "Foo xmlns"))
    facts = vbox(root)
    alice = next(h for h in facts.homes if h.user == "alice")
    assert isinstance(alice.global_file, Unavailable) and "refused" in alice.global_file.reason
    assert set(machines(facts)) == {"Safe70", "Safe52", "Enc70"}
    assert any("/home/alice/.config/VirtualBox/VirtualBox.xml" in w for w in PLATFORM.warnings(facts))
    report = scan(root, only=["HV-AUTH-033"])
    assert statuses(report, "HV-AUTH-033")["/home/alice/.config/VirtualBox/VirtualBox.xml"] is Status.ERROR


def test_a_fifo_planted_as_a_machine_file_does_not_hang_the_scan(root):
    """alice controls her own files: a FIFO where her .vbox should be would block a reader."""
    path = root / ALICE_VMS / "old50/old50.vbox"
    path.unlink()
    os.mkfifo(path)
    facts = vbox(root)
    bad = {b.path: b.reason for h in facts.homes for b in h.machines if isinstance(b, Unavailable)}
    assert "not a regular file" in bad["/home/alice/VirtualBox VMs/old50/old50.vbox"]


def test_the_cli_reports_a_broken_root_without_a_traceback(root):
    (root / ALICE_VMS / "Win10-weak/Win10-weak.vbox").write_text(LAUGHS)
    result = hyperward("scan", "--root", str(root), "--only", "HV-AUTH-030", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = {(r["resource"], r["status"]) for r in json.loads(result.stdout)["results"]}
    assert ("/home/alice/VirtualBox VMs/Win10-weak/Win10-weak.vbox", "error") in rows
    assert (O, "fail") in rows


# --- --vbox-home: a copied home from another OS ---------------------------------------------------------


def test_a_copied_windows_home_is_read_under_its_own_directory(tmp_path):
    copy = tmp_path / "carol-vbox"
    (copy / "VirtualBox VMs/Win").mkdir(parents=True)
    shutil.copy(FIXTURES / "weak/VirtualBox VMs/Win10-weak/Win10-weak.vbox", copy / "VirtualBox VMs/Win/Win.vbox")
    (copy / "VirtualBox VMs/Loose").mkdir()
    shutil.copy(FIXTURES / "hardened/Machines/Safe52/Safe52.vbox", copy / "VirtualBox VMs/Loose/Loose.vbox")
    (copy / "VirtualBox.xml").write_text(
        '<?xml version="1.0"?>\n<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-windows">\n  <Global>\n'
        '    <MachineRegistry>\n'
        '      <MachineEntry uuid="{0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01}" src="C:\\Users\\carol\\VirtualBox VMs\\Win\\Win.vbox"/>\n'
        '      <MachineEntry uuid="{0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a09}" src="D:\\VMs\\Gone\\Gone.vbox"/>\n'
        '    </MachineRegistry>\n  </Global>\n</VirtualBox>\n')
    os.symlink("/etc/passwd", copy / "VirtualBox VMs/Loose/Evil.vbox")
    facts = collect(Source(None, {"virtualbox": str(copy)}))
    (home,) = facts.homes
    assert home.source == "vbox-home" and home.path == str(copy.resolve())
    found = {getattr(m, "name", None): m for m in home.machines}
    assert found["Win10-weak"].registered and found["Win10-weak"].path == f"{copy.resolve()}/VirtualBox VMs/Win/Win.vbox"
    assert not found["Safe52"].registered
    evil = [m for m in home.machines if isinstance(m, Unavailable)]
    assert [(e.path.rsplit("/", 1)[-1], e.kind) for e in evil] == [("Evil.vbox", "missing")], \
        "an absolute symlink in a copy resolves inside the copy, never on this machine"
    assert [e.src for e in home.missing] == ["D:\\VMs\\Gone\\Gone.vbox"]
    report = scan_with_home(tmp_path, copy, ["HV-AUTH-030", "HV-AUTH-033"])
    assert failing(report, "HV-AUTH-030") == {W}
    assert statuses(report, "HV-AUTH-033")[str(copy.resolve())] is Status.NOT_APPLICABLE


def scan_with_home(tmp_path: pathlib.Path, copy: pathlib.Path, only: list[str]):
    from hyperward.engine import registry, run_checks, select

    empty = tmp_path / "empty-root"
    (empty / "etc").mkdir(parents=True, exist_ok=True)
    return run_checks(collect_host(str(empty), vbox_home=str(copy)), select(registry(), only))


def test_vbox_home_on_the_command_line(tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(FIXTURES / "weak/VirtualBox VMs/old50/old50.vbox", copy / "old50.vbox")
    (copy / "VirtualBox.xml").write_text('<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-macosx"><Global>'
                                         '<MachineRegistry><MachineEntry uuid="{0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a02}" '
                                         'src="/Users/dan/VirtualBox VMs/old50/old50.vbox"/></MachineRegistry></Global></VirtualBox>')
    (copy / "VirtualBox VMs/old50").mkdir(parents=True)
    shutil.move(str(copy / "old50.vbox"), str(copy / "VirtualBox VMs/old50/old50.vbox"))
    empty = tmp_path / "root"
    (empty / "etc").mkdir(parents=True)
    result = hyperward("scan", "--root", str(empty), "--vbox-home", str(copy), "--only", "HV-AUTH-030", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {(r["resource"], r["status"]) for r in json.loads(result.stdout)["results"]}
    assert rows == {(O, "fail")}
    missing = hyperward("scan", "--root", str(empty), "--vbox-home", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "--vbox-home" in missing.stderr and "no such directory" in missing.stderr
    assert "Traceback" not in missing.stderr


# --- secrets ----------------------------------------------------------------------------------------------


def test_secrets_never_reach_any_output(root, tmp_path):
    """The Teleporter password, the web service's password hash, VBoxAuthSimple hashes and a disk's
    encrypted key store are in the audited files; none is in the facts, the reports or a snapshot."""
    secrets = [TELEPORTER_PASSWORD, "Prev-Secret-1111", PWHASH, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
               "U0NORQABQUVTLVhUUzI1Ni1QTEFJTjY0"]
    outputs = []
    for fmt in ("text", "json"):
        result = hyperward("scan", "--root", str(root), "--format", fmt, "--verbose")
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
        assert "Teleporter" in result.stdout
    snap = tmp_path / "snap.json"
    result = hyperward("collect", "--root", str(root), "-o", str(snap))
    assert result.returncode == 0, result.stderr
    outputs.append(snap.read_text())
    again = hyperward("scan", "--snapshot", str(snap), "--format", "json")
    outputs.append(again.stdout)
    assert "password is set" in outputs[-1] or "a password is set" in outputs[2]
    for text in outputs:
        for secret in secrets:
            assert secret not in text


def test_snapshot_round_trips_virtualbox_facts(root):
    facts = collect_host(str(root))
    again = load_snapshot(dump_snapshot(facts))
    assert again.platforms["virtualbox"] == facts.platforms["virtualbox"]
    assert [g.label for g in again.guests] == [g.label for g in facts.guests]


def test_unreadable_home_file_as_an_unprivileged_user(root, world_tmp):
    """Run as nobody: bob's 0700 home cannot be read, which is an error for his VirtualBox.xml,
    never a pass and never a traceback."""
    target = world_tmp / "r"
    shutil.copytree(root, target, symlinks=True)
    os.chmod(target / "home/bob/.VirtualBox", 0o700)
    for dirpath, dirs, _files in os.walk(target):
        if "/home/bob" not in dirpath:
            os.chmod(dirpath, 0o755)
    os.chmod(target / "home/alice/.config/VirtualBox/VirtualBox.xml", 0o644)
    result = hyperward("scan", "--root", str(target), "--only", "HV-AUTH-033", "--format", "json", user="nobody")
    assert "Traceback" not in result.stderr
    document = json.loads(result.stdout)
    rows = {r["resource"]: r["status"] for r in document["results"]}
    assert rows.get("/home/alice/.config/VirtualBox/VirtualBox.xml") == "pass"
    assert "/home/bob/.VirtualBox/VirtualBox.xml" not in rows
    assert any("/home/bob" in w and "permission denied" in w for w in document["warnings"]), document["warnings"]


def test_facts_are_plain_dataclasses():
    assert dataclasses.is_dataclass(VirtualBoxFacts)


def test_a_virtualbox_4_3_file_reads_its_legacy_layout():
    """Settings 1.14 (VirtualBox 4.3): USB filters under <USBController>, a host DVD drive."""
    _u, name, old = parse(FIXTURES / "formats/Legacy43.vbox")
    assert name == "Legacy43" and old.settings_version == "1.14-linux"
    assert old.usb_controllers == ["OHCI", "EHCI"] and [(f.name, f.active, f.criteria) for f in old.usb_filters] == [("all devices", True, {})]
    assert old.vrde.enabled and old.vrde.address == "192.0.2.10" and old.vrde.auth_type == "Null"
    assert [(p.mode, p.path, p.server) for p in old.ports] == [("HostPipe", "/tmp/legacy43-com1", True)]
    assert [(d.device, d.host_drive, d.passthrough) for d in old.disks] == [("disk", None, False), ("dvd", "/dev/sr0", True)]
    assert [(r.host_ip, r.host_port) for n in old.nics for r in n.nat_rules] == [("", 3390)]
    assert old.clipboard_mode == "HostToGuest" and not old.recording


def test_a_machine_file_owned_by_another_user_fails(root):
    """bob's machine file owned by alice: alice decides what bob's machine shares and exposes."""
    os.chown(root / "home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", 1000, 1000)
    report = scan(root, only=["HV-AUTH-033"])
    assert failing(report, "HV-AUTH-033") == EXPECTED["HV-AUTH-033"][0] | {S52}
    found = next(f for f in report.findings if f.result.resource == S52)
    assert "owned by alice" in found.result.message


def test_the_hardened_home_passes_every_virtualbox_check(tmp_path):
    from vbox_roots import make_hardened_root

    report = scan(make_hardened_root(tmp_path), only=sorted(JUDGES))
    assert not failing(report) and not [f for f in report.findings if f.status is Status.ERROR]
    passing = {f.check_id for f in report.findings if f.status is Status.PASS}
    # HV-BAK-030 needs the config to mark a guest sensitive (test_virtualbox_sensitive.py)
    assert passing == set(JUDGES) - {"HV-ISO-035", "HV-BAK-030"}, "no machine of the hardened home has a PCI device"


def test_a_machine_name_with_invisible_characters_is_shown_escaped(root):
    """A user names a machine with a right-to-left override to disguise the report line."""
    edit(root, "home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", 'name="Safe52"', 'name="Safe52&#x202E;gnp.exe"')
    result = hyperward("scan", "--root", str(root), "--only", "HV-NET-032", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "\u202e" not in result.stdout and "Safe52\\u202egnp.exe" in result.stdout


def test_a_broken_extension_pack_is_an_error_naming_its_file(root):
    path = root / "usr/lib/virtualbox/ExtensionPacks/Oracle_VirtualBox_Extension_Pack/ExtPack.xml"
    path.write_text('<?xml version="1.0"?><VirtualBoxExtensionPack><Name>x</Name></VirtualBoxExtensionPack>')
    report = scan(root, only=["HV-PATCH-030"])
    assert statuses(report, "HV-PATCH-030") == {
        "/usr/lib/virtualbox/ExtensionPacks/Oracle_VirtualBox_Extension_Pack/ExtPack.xml": Status.ERROR}


def test_a_check_with_nothing_to_judge_says_why_once(tmp_path):
    from vbox_roots import make_hardened_root

    report = scan(make_hardened_root(tmp_path), only=["HV-ISO-035"])
    rows = {(f.result.resource, f.status, f.result.message) for f in report.findings}
    assert rows == {(E70, Status.NOT_APPLICABLE, "settings encrypted (VirtualBox full VM encryption): not readable without the machine's password"),
                    ("host", Status.NOT_APPLICABLE, "no VirtualBox machine has a PCI device passed through")}


def test_an_arm_machine_of_virtualbox_7_1():
    """Settings 1.20 with Platform architecture ARM (VirtualBox 7.1 on Apple silicon)."""
    text = (FIXTURES / "weak/VirtualBox VMs/Ubuntu71/Ubuntu71.vbox").read_text()
    start, end = text.index('<Platform architecture="x86">'), text.index("</Platform>") + len("</Platform>")
    arm = ('<Platform architecture="ARM">\n      <Chipset type="ARMv8Virtual"/>\n      <CPU count="2"/>\n'
           '      <arm>\n        <CPU>\n          <NestedHWVirt enabled="true"/>\n        </CPU>\n      </arm>\n    </Platform>')
    _u, _n, cfg = parsers.parse_machine(text[:start] + arm + text[end:], "arm.vbox", "/")
    assert cfg.architecture == "ARM" and cfg.cpu.count == 2 and cfg.cpu.nested_hw_virt
    assert cfg.cpu.mds_clear_sched, "x86 mitigation switches do not exist on ARM: their defaults stand"


@pytest.mark.parametrize("mode, fails", [(0o777, True), (0o775, True), (0o1777, False), (0o755, False)])
def test_a_machine_folder_others_may_write_lets_them_replace_the_file(root, mode, fails):
    """Another user on a world-writable machine folder without the sticky bit renames bob's .vbox
    away and puts their own in its place."""
    os.chmod(root / "home/bob/.VirtualBox/Machines/Safe70", mode)
    report = scan(root, only=["HV-AUTH-033"])
    assert (S70 in failing(report, "HV-AUTH-033")) is fails
    if fails:
        found = next(f for f in report.findings if f.result.resource == S70)
        assert "sticky bit: the file can be replaced" in found.result.message


def test_an_attacker_replaces_a_machine_file_in_a_world_writable_folder(world_tmp, attacker):
    """For real: the unprivileged user renames the file in the 0777 folder and writes one of their own."""
    root = make_root(world_tmp)
    folder = root / "home/bob/.VirtualBox/Machines/Safe52"
    os.chmod(folder, 0o777)
    for parent in (root, root / "home", root / "home/bob", root / "home/bob/.VirtualBox", root / "home/bob/.VirtualBox/Machines"):
        os.chmod(parent, os.stat(parent).st_mode | 0o711)
    evil = (FIXTURES / "weak/VirtualBox VMs/Win10-weak/Win10-weak.vbox").read_text().replace(
        "0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01", "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc02").replace("Win10-weak", "Safe52")
    script = f"import os; os.rename('{folder}/Safe52.vbox', '{folder}/old'); open('{folder}/Safe52.vbox', 'w').write({evil!r})"
    import subprocess
    done = subprocess.run(["setpriv", f"--reuid={attacker}", f"--regid={attacker}", "--clear-groups", "--", "/usr/bin/python3", "-c", script],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    report = scan(root, only=["HV-AUTH-033", "HV-AUTH-030"])
    bad = failing(report, "HV-AUTH-033")
    assert S52 in bad
    found = next(f for f in report.findings if f.result.resource == S52 and f.check_id == "HV-AUTH-033")
    assert "owned by" in found.result.message and "can be replaced" in found.result.message
    assert S52 in failing(report, "HV-AUTH-030"), "the planted file is judged for what it says"


@pytest.mark.parametrize("host_path, what", [
    ("/home/bob/.", "a home directory"), ("/etc/../", "the host's root directory"), ("/srv/../etc", "a host system directory"),
    ("C:\\", "the host's root directory"), ("C:\\Users\\carol", "a home directory"), ("/srv/vbox-drop/Safe70", None),
])
def test_shared_folder_paths_are_judged_for_what_they_resolve_to(root, host_path, what):
    edit(root, "home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'hostPath="/srv/vbox-drop/Safe70"', f'hostPath="{host_path}"')
    report = scan(root, only=["HV-ISO-030"])
    found = next(f for f in report.findings if f.result.resource == S70)
    if what is None:
        assert found.status is Status.PASS
    else:
        assert found.status is Status.FAIL and f"shares {what}" in found.result.message


def test_guest_additions_without_virtualboxs_version_are_not_judged(root):
    (root / "etc/vbox/vbox.cfg").write_text("INSTALL_DIR='/usr/lib/virtualbox'\n")
    report = scan(root, only=["HV-PATCH-031"])
    got = statuses(report, "HV-PATCH-031")
    assert got[W] is Status.NOT_APPLICABLE and got[S70] is Status.NOT_APPLICABLE
    assert not failing(report)


def test_a_guest_set_version_string_is_only_taken_as_a_version():
    text = (FIXTURES / "hardened/Machines/Safe70/Safe70.vbox").read_text().replace('value="7.1.16"', 'value="6.1.50&#x202E;; rm -rf /"')
    _u, _n, cfg = parsers.parse_machine(text, "x.vbox", "/")
    assert cfg.guest_additions == "6.1.50"


def test_vrde_on_an_address_guests_reach_says_so(root):
    """Safe70's VRDE moved to the host-only interface's address, where Safe52 (host-only adapter) sits."""
    edit(root, "home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox", 'value="127.0.0.1"', 'value="192.168.56.1"')
    edit(root, "home/bob/.VirtualBox/Machines/Safe52/Safe52.vbox", '<BridgedInterface name="enp5s0"/>', '<HostOnlyInterface name="vboxnet0"/>')
    with open(root / "proc/net/route", "a") as handle:
        handle.write("vboxnet0\t0038A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n")
    (root / "proc/net/fib_trie").write_text("Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.168.56.1\n        /32 host LOCAL\n"
                                            "Local:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 192.168.56.1\n        /32 host LOCAL\n")
    report = scan(root, only=["HV-AUTH-031"])
    found = next(f for f in report.findings if f.result.resource == S70)
    assert found.status is Status.FAIL
    assert "reachable from guests on vboxnet0 (Safe52)" in found.result.message


def test_vboxmanage_list_runningvms_output():
    """The format VBoxManage prints (VBoxManageList.cpp: "%s" {%RTuuid}); a name may hold quotes."""
    out = ('"Win10-weak" {0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01}\n"say "hi" {x}" {5E1F0C3A-77AA-4C2B-9D10-AA00BB11CC01}\n'
           "garbage line\n")
    assert parsers.parse_running_vms(out) == ["0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01", "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc01"]
