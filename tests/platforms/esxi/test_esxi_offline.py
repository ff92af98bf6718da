"""ESXi offline: VMware's dictionary grammar (.vmx, esx.conf), hostd's config.xml, and every ESXi
check against a weak and a hardened root whose files are written in ESXi 7/8's own syntax
(tests/fixtures/esxi). Each check asserts the exact failing VMs and hosts."""

from __future__ import annotations

import json
import re
import pathlib
import shutil

import pytest

from conftest import REPO, apply, esxi_table_said, failing, hyperward, scan, statuses
from hyperward.model import Status
from hyperward.platforms.esxi import parsers
from hyperward.platforms.esxi.collect import read_vm
from hyperward.collect.fs import RootFS

FIXTURES = REPO / "tests" / "fixtures" / "esxi"
DS = "/vmfs/volumes/650b3f2e-1c7d9a40-5b2e-0050569a1b2c"
WEB = f"web01 ({DS}/web01/web01.vmx)"
DB = f"db01 Caf\u00e9 ({DS}/db01/db01.vmx)"
APP = f"app01 ({DS}/app01/app01.vmx)"
WEAK_HOST = "esx02.lab.example"
HARD_HOST = "esx01.lab.example"
ESXI_ROWS = ("HV-ISO-100", "HV-ISO-101", "HV-ISO-102", "HV-ISO-103", "HV-ISO-104", "HV-ISO-105", "HV-ISO-106",
             "HV-ISO-107", "HV-ISO-108", "HV-NET-100", "HV-NET-101", "HV-NET-102", "HV-NET-103", "HV-NET-104",
             "HV-SIDE-100", "HV-SIDE-101", "HV-SIDE-102", "HV-MON-100", "HV-MON-101", "HV-MON-102", "HV-AUTH-100", "HV-AUTH-101",
             "HV-AUTH-102", "HV-AUTH-103", "HV-AUTH-104", "HV-AUTH-105", "HV-AUTH-106", "HV-FW-100",
             "HV-PATCH-100", "HV-NET-105", "HV-AUTH-107", "HV-ISO-109", "HV-PATCH-101")
NEUTRAL = ("HV-TPM-003", "HV-TPM-005", "HV-ISO-026", "HV-AUTH-010", "HV-AUTH-011", "HV-NEST-002", "HV-ISO-010")


# --- the grammar ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("owner: |22DBA|22", 'owner: "DBA"'),
    ("a|7Cb", "a|b"),
    ("line|0Anext", "line\nnext"),
    ("|4|22", "|4|22"),        # a broken escape's next byte is not looked at again (Escape_Undo)
    ("||22", "||22"),
    ("tail|2", "tail|2"),
    ("|zz", "|zz"),
    ("plain", "plain"),
])
def test_unescape_follows_escape_undo(raw: str, expected: str) -> None:
    assert parsers.unescape(raw) == expected


@pytest.mark.parametrize("line, expected", [
    ('isolation.tools.copy.disable = "TRUE"', ("isolation.tools.copy.disable", "TRUE")),
    ('  \tkey\t=\t"with # hash inside"  # comment', ("key", "with # hash inside")),
    ("unquoted = TRUE   # comment", ("unquoted", "TRUE")),
    ("empty =", ("empty", "")),
    ('empty_quoted = ""', ("empty_quoted", "")),
    ("/adv/Net/BlockGuestBPDU = \"1\"", ("/adv/Net/BlockGuestBPDU", "1")),
    ("scsi0:0.fileName = \"disk.vmdk\"", ("scsi0:0.fileName", "disk.vmdk")),
    ('key = "unterminated', None),
    ('key = "v" trailing', None),
    ("no equals sign", None),
    ('= "no name"', None),
    ("# a comment", None),
    ("", None),
])
def test_line_grammar(line: str, expected: tuple[str, str] | None) -> None:
    assert parsers.parse_line(line) == expected


def test_names_case_insensitive_last_wins_and_conflicts_reported() -> None:
    text = 'Isolation.Tools.Copy.Disable = "TRUE"\nisolation.tools.copy.disable = "FALSE"\nsame = "1"\nSAME = "1"\n'
    d = parsers.parse_dictionary_text(text)
    assert d.values["isolation.tools.copy.disable"] == "FALSE"
    assert d.conflicts == {"isolation.tools.copy.disable": ["TRUE", "FALSE"]}  # equal copies are no conflict
    assert d.names["isolation.tools.copy.disable"] == "isolation.tools.copy.disable"


def test_garbage_lines_are_counted_not_fatal() -> None:
    d = parsers.parse_dictionary(b'a = "1"\n<<<<<<< HEAD\n\x01\x02 junk\n  \n# fine\nb = "2"\n')
    assert d.values == {"a": "1", "b": "2"} and d.ignored_lines == 2


def test_declared_encodings_decode() -> None:
    cp1252 = '.encoding = "windows-1252"\ndisplayName = "Caf\u00e9"\n'.encode("cp1252")
    assert parsers.parse_dictionary(cp1252).values["displayname"] == "Caf\u00e9"
    gbk = '.encoding = "GBK"\ndisplayName = "\u865a\u62df\u673a"\n'.encode("gbk")
    assert parsers.parse_dictionary(gbk).values["displayname"] == "\u865a\u62df\u673a"
    bom = b"\xef\xbb\xbf" + '.encoding = "UTF-8"\ndisplayName = "\u00e9"\n'.encode()
    assert parsers.parse_dictionary(bom).values["displayname"] == "\u00e9"


@pytest.mark.parametrize("data, message", [
    (b'displayName = "Caf\xe9"\n', "byte 18 is not valid in UTF-8 (no .encoding line)"),
    (b'.encoding = "UTF-8"\ndisplayName = "\xff\xfe"\n', "byte 35 is not valid in declared .encoding 'UTF-8'"),
    (b'.encoding = "x-no-such-codepage"\n', "'x-no-such-codepage' is not an encoding this system knows"),
    (b'a = "1"\n\x00\x00', "binary data (NUL bytes)"),
])
def test_undecodable_vmx_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(parsers.ParseError, match=re.escape(message)):
        parsers.parse_dictionary(data)


def test_huge_values_and_files(tmp_path: pathlib.Path) -> None:
    vm_dir = tmp_path / "vmfs" / "volumes" / "ds" / "big"
    vm_dir.mkdir(parents=True)
    big = "x" * (3 * 1024 * 1024)
    (vm_dir / "big.vmx").write_text(f'displayName = "big"\nannotation = "{big}"\nmks.enable3d = "FALSE"\n')
    vm = read_vm(RootFS(str(tmp_path)), "/vmfs/volumes/ds/big/big.vmx")
    assert not isinstance(vm, parsers.ParseError) and getattr(vm, "name") == "big"
    assert len(getattr(vm, "config")["annotation"]) == len(big)
    (vm_dir / "big.vmx").write_bytes(b"a" * (4 * 1024 * 1024 + 1))
    problem = read_vm(RootFS(str(tmp_path)), "/vmfs/volumes/ds/big/big.vmx")
    assert getattr(problem, "path") == "/vmfs/volumes/ds/big/big.vmx" and "larger than" in getattr(problem, "reason")


def test_esx_conf_adv_paths_and_hostd_config() -> None:
    esx = parsers.parse_dictionary((FIXTURES / "hardened/etc/vmware/esx.conf").read_bytes())
    adv = parsers.adv_settings(esx)
    assert adv["Mem.ShareForceSalting"] == "2"
    assert adv["Syslog.global.auditRecord.storageEnable"] == "true"
    assert adv["Net.DVFilterBindIpAddress"] == ""
    assert "net.vswitch" not in {k.lower() for k in adv}
    hostd = parsers.parse_hostd_config((FIXTURES / "hardened/etc/vmware/hostd/config.xml").read_text())
    assert hostd["Config.HostAgent.plugins.solo.enableMob"] == "false"
    assert hostd["Config.HostAgent.vmacore.soap.sessionTimeout"] == "30"
    assert hostd["Config.HostAgent.plugins.hostsvc.esxAdminsGroup"] == "esx-admins-lab01"
    with pytest.raises(parsers.ParseError, match="not well-formed"):
        parsers.parse_hostd_config("<config><log>")
    with pytest.raises(parsers.ParseError):
        parsers.parse_hostd_config('<!DOCTYPE x [<!ENTITY a "aaaa">]><config>&a;</config>')


# --- the checks, weak and hardened ---------------------------------------------------------------

WEAK_FAILS: dict[str, set[str]] = {
    "HV-ISO-100": {WEB, DB},
    "HV-ISO-101": {WEB},
    "HV-ISO-102": {WEB},
    "HV-ISO-103": {WEB},
    "HV-ISO-104": {WEB},
    "HV-ISO-105": {WEB},
    "HV-ISO-106": {WEB},
    "HV-ISO-107": {WEAK_HOST},
    "HV-ISO-108": {WEAK_HOST},
    "HV-NET-100": {WEB},
    "HV-NET-101": {WEB},
    "HV-NET-102": {WEAK_HOST},
    "HV-NET-103": {WEAK_HOST},
    "HV-NET-104": {WEAK_HOST},
    "HV-NET-105": {WEAK_HOST},
    "HV-PATCH-100": {WEAK_HOST},
    "HV-SIDE-100": {WEB},
    "HV-SIDE-101": {WEAK_HOST},
    "HV-SIDE-102": {WEAK_HOST},
    "HV-MON-100": {WEB},
    "HV-MON-101": {WEAK_HOST},
    "HV-AUTH-100": {WEAK_HOST},
    "HV-AUTH-101": {WEAK_HOST},
    "HV-AUTH-102": {WEAK_HOST},
    "HV-AUTH-104": {WEAK_HOST},
    "HV-TPM-003": {WEB, DB},
    "HV-TPM-005": {WEB, DB},
    "HV-ISO-026": {WEB, DB},
    "HV-AUTH-010": {WEB},
    "HV-AUTH-011": {WEB},
    "HV-NEST-002": {WEB},
}
#: what the offline files cannot tell: not applicable with the reason, never a pass
OFFLINE_UNKNOWN = ("HV-AUTH-103", "HV-AUTH-105", "HV-FW-100", "HV-MON-102", "HV-AUTH-107")
#: judged only over the API, not applicable offline with a reason of their own (per VM)
OFFLINE_VM_UNKNOWN = ("HV-ISO-109", "HV-PATCH-101")


@pytest.fixture(scope="module")
def weak() -> object:
    return scan(FIXTURES / "weak", only=[*ESXI_ROWS, *NEUTRAL])


@pytest.fixture(scope="module")
def hardened() -> object:
    return scan(FIXTURES / "hardened", only=[*ESXI_ROWS, *NEUTRAL])


@pytest.mark.parametrize("check_id", sorted(set(ESXI_ROWS) | set(NEUTRAL)))
def test_weak_root_fails_exactly(weak: object, hardened: object, check_id: str) -> None:
    assert failing(weak, check_id) == WEAK_FAILS.get(check_id, set())  # type: ignore[arg-type]
    assert failing(hardened, check_id) == set()  # type: ignore[arg-type]


@pytest.mark.parametrize("check_id", [c for c in ESXI_ROWS if c not in OFFLINE_UNKNOWN + OFFLINE_VM_UNKNOWN])
def test_hardened_root_passes_what_files_show(hardened: object, check_id: str) -> None:
    got = statuses(hardened, check_id)  # type: ignore[arg-type]
    if check_id == "HV-AUTH-106":
        assert got == {HARD_HOST: Status.PASS}
    elif check_id in ("HV-ISO-107",):
        assert got == {HARD_HOST: Status.NOT_APPLICABLE}  # acceptance level and Secure Boot are API-only
    elif check_id == "HV-NET-105":
        assert got == {HARD_HOST: Status.NOT_APPLICABLE}  # ESXi 8.0 U3: the TLS profile is esxcli's (tested below)
    elif got.keys() == {HARD_HOST}:
        assert got == {HARD_HOST: Status.PASS}
    else:
        assert got == {APP: Status.PASS}


@pytest.mark.parametrize("check_id", OFFLINE_UNKNOWN)
def test_offline_unknowns_are_not_applicable_with_reason(weak: object, check_id: str) -> None:
    rows = [f for f in weak.findings if f.check_id == check_id]  # type: ignore[attr-defined]
    assert [f.status for f in rows] == [Status.NOT_APPLICABLE]
    assert "scan the host with --vsphere" in rows[0].result.message


def test_hardened_neutral_guest_checks_pass(hardened: object) -> None:
    assert statuses(hardened, "HV-TPM-003") == {APP: Status.PASS}  # type: ignore[arg-type]
    assert statuses(hardened, "HV-TPM-005") == {APP: Status.PASS}  # type: ignore[arg-type]


def test_messages_name_the_settings(weak: object) -> None:
    by = {(f.check_id, f.result.resource): f.result.message for f in weak.findings}  # type: ignore[attr-defined]
    assert by[("HV-ISO-100", DB)] == ("isolation.tools.paste.disable given 2 times with different values ('TRUE', 'FALSE'): "
                                      "VMware uses the last, libvirt the first")
    assert "isolation.tools.diskShrink.disable = FALSE" in by[("HV-ISO-100", WEB)]
    assert by[("HV-AUTH-100", WEAK_HOST)] == ("Security.AccountLockFailures = 5 (at most 3); "
                                               "Security.AccountUnlockTime = 120 (at least 900 seconds)")
    assert by[("HV-ISO-105", WEB)] == ("ehci: USB controller; floppy0: floppy drive (/dev/fd0); ide1:0: CD/DVD connected to CD/DVD drive 0; "
                                       "parallel0: parallel port (/dev/parport0); pcipassthru0: DirectPath I/O (PCI passthrough) device (00000:059:00.0); "
                                       "serial0: serial port (telnet://:23001); usb: USB controller; usb_xhci: USB controller")
    assert by[("HV-AUTH-011", WEB)] == "serial tcp (telnet) on 0.0.0.0:23001 without TLS"


def test_scg_framework_allows_five_attempts(tmp_path: pathlib.Path) -> None:
    from hyperward.collect import collect_host
    from hyperward.engine import registry, run_checks, select
    from hyperward.platforms.esxi.collect import collect as esxi_collect
    from hyperward.collect.fs import RootFS as FS
    import dataclasses

    facts = collect_host(str(FIXTURES / "weak"))
    esxi = dataclasses.replace(esxi_collect(FS(str(FIXTURES / "weak")), []), framework="scg")
    facts.platforms["esxi"] = esxi
    report = run_checks(facts, select(registry(), ["HV-AUTH-100", "HV-NET-101"]))
    msgs = {f.result.resource: f.result.message for f in report.findings if f.check_id == "HV-AUTH-100"}
    assert msgs[WEAK_HOST] == "Security.AccountUnlockTime = 120 (at least 900 seconds)"
    # the SCG wants vMotion encryption required: db01's default (opportunistic) fails there
    assert failing(report, "HV-NET-101") == {WEB, DB}


def test_unreadable_vmx_is_one_error_naming_the_file(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "hardened", root, symlinks=True)
    apply(root, {f"{DS.lstrip('/')}/bad/bad.vmx": b'displayName = "\xff\xfe bad"\n'})
    report = scan(root, only=["HV-ISO-100", "HV-TPM-005"])
    errors = {(f.check_id, f.result.resource, f.result.message) for f in report.findings if f.status is Status.ERROR}
    assert errors == {
        (cid, f"{DS}/bad/bad.vmx", f"{DS}/bad/bad.vmx: byte 15 is not valid in UTF-8 (no .encoding line)")
        for cid in ("HV-ISO-100", "HV-TPM-005")
    }
    assert statuses(report, "HV-ISO-100")[APP] is Status.PASS


def test_any_vmx_under_an_offline_root(tmp_path: pathlib.Path) -> None:
    """No /etc/vmware and no datastore layout: a copied VM folder anywhere is still found; host
    rows are not applicable (no host configuration)."""
    (tmp_path / "backup" / "vms").mkdir(parents=True)
    shutil.copy(FIXTURES / "weak" / DS.lstrip("/") / "web01/web01.vmx", tmp_path / "backup/vms/web01.vmx")
    report = scan(tmp_path, only=["HV-ISO-103", "HV-SIDE-101"])
    assert failing(report, "HV-ISO-103") == {"web01 (/backup/vms/web01.vmx)"}
    assert [f.status for f in report.findings if f.check_id == "HV-SIDE-101"] == [Status.NOT_APPLICABLE]


def test_cli_scan_and_snapshot_roundtrip(tmp_path: pathlib.Path) -> None:
    snap = tmp_path / "esxi.json"
    r = hyperward("collect", "--root", str(FIXTURES / "weak"), "-o", str(snap))
    assert r.returncode == 0, r.stderr
    assert json.loads(snap.read_text())["facts"]["platforms"]["esxi"]["hosts"][0]["name"] == WEAK_HOST
    r1 = hyperward("scan", "--snapshot", str(snap), "--only", ",".join(ESXI_ROWS), "--format", "json")
    r2 = hyperward("scan", "--root", str(FIXTURES / "weak"), "--only", ",".join(ESXI_ROWS), "--format", "json")
    assert r1.returncode == r2.returncode == 0, r1.stderr + r2.stderr

    def rows(out: str) -> set[tuple[str, str, str]]:
        return {(f["id"], f["resource"], f["status"]) for f in json.loads(out)["results"]}

    assert rows(r1.stdout) == rows(r2.stdout)
    assert ("HV-SIDE-101", WEAK_HOST, "fail") in rows(r1.stdout)
    assert hyperward("checks", "--platform", "esxi").returncode == 0


@pytest.mark.parametrize("line", ['a = "1"', '  k\t=\t"v # x"  # c', "u = TRUE # c", "e =", 'x = "open', 'y = "v" junk', "no equals", "# c", ""])
def test_whole_file_parse_agrees_with_the_line_grammar(line: str) -> None:
    d = parsers.parse_dictionary_text(line + "\n")
    one = parsers.parse_line(line)
    assert (list(d.values.items()) == [(one[0].lower(), one[1])]) if one else (d.values == {})


def test_hostile_vm_name_never_reaches_the_terminal_raw(tmp_path: pathlib.Path) -> None:
    """A tenant controls its VM's displayName: `|1B` unescapes to ESC; the text report shows it
    escaped, and every value quoted in a message is printable ASCII."""
    vm = tmp_path / "vmfs/volumes/ds/evil"
    vm.mkdir(parents=True)
    (vm / "evil.vmx").write_text('displayName = "|1B]0;owned|07|1B[2Jevil"\nmks.enable3d = "|1B[31mTRUE"\n')
    r = hyperward("scan", "--root", str(tmp_path), "--only", "HV-ISO-103", "-v")
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2Jevil" in r.stdout
    assert "mks.enable3d = '?[31mTRUE' (not" in r.stdout


def test_an_os_image_is_not_walked_for_stray_vmx(tmp_path: pathlib.Path) -> None:
    """A Linux root with a Workstation .vmx in a home directory is audited as Linux: the tree is
    walked for .vmx files only in a copy that is not an operating system's root."""
    apply(tmp_path, {"etc/os-release": "ID=debian\n", "home/u/vm/vm.vmx": 'displayName = "ws"\nmks.enable3d = "TRUE"\n'})
    report = scan(tmp_path, only=["HV-ISO-103"])
    assert [f.status for f in report.findings] == []  # ESXi not detected: its rows do not run


@pytest.mark.parametrize("servers, ntpd, problems", [
    (["ntp1.lab.example"], ("on", True), None),
    ([], ("on", True), "no NTP server configured"),
    (["ntp1.lab.example"], ("off", False), "ntpd not running; ntpd startup policy off"),
    (["ntp1.lab.example"], None, None),                 # no service list: the servers alone
])
def test_time_sync_judge(servers: list[str], ntpd: tuple[str, bool] | None, problems: str | None) -> None:
    """HV-MON-102 over API-shaped facts (the simulator has no dateTimeInfo and no services)."""
    import dataclasses
    from hyperward.platforms.esxi.checks import time_sync
    from hyperward.platforms.esxi.collect import collect as esxi_collect
    from hyperward.platforms.esxi.facts import EsxiService

    facts = esxi_collect(RootFS(str(FIXTURES / "hardened")), [])
    services = [EsxiService("ntpd", "NTP Daemon", ntpd[0], ntpd[1])] if ntpd else facts.hosts[0].services
    host = dataclasses.replace(facts.hosts[0], source="api", ntp_servers=servers, services=services)
    [result] = list(time_sync(dataclasses.replace(facts, hosts=[host])))
    assert result.resource == HARD_HOST
    if problems is None:
        assert result.status is Status.PASS
    else:
        assert (result.status, result.message) == (Status.FAIL, problems)


def test_detect_markers_are_the_collectors_paths():
    """The package's detect() names its markers itself (a scan need not import the collector)."""
    from hyperward.platforms.esxi import ESXI_MARKERS
    from hyperward.platforms.esxi.collect import ESX_CONF, HOSTD_CONFIG, VOLUMES

    assert set(ESXI_MARKERS) == {ESX_CONF, HOSTD_CONFIG, VOLUMES}


# --- build table, TLS, vSwitch policy offline -----------------------------------------------------

def _messages(report: object, check_id: str) -> dict[str, tuple[Status, str]]:
    return {f.result.resource: (f.status, f.result.message) for f in report.findings if f.check_id == check_id}  # type: ignore[attr-defined]


def test_offline_api_only_vm_rows_say_why(weak: object) -> None:
    assert _messages(weak, "HV-PATCH-101")[WEB] == (
        Status.NOT_APPLICABLE, "the VMware Tools version status comes from the running guest over the vSphere API "
        "(guest.toolsVersionStatus2), not from the .vmx")
    # no weak VM is a Windows guest with VBS support
    assert [s for s, _ in _messages(weak, "HV-ISO-109").values()] == [Status.NOT_APPLICABLE]


def test_build_patch_messages_name_the_line_and_advisories(weak: object, hardened: object) -> None:
    status, message = _messages(weak, "HV-PATCH-100")[WEAK_HOST]
    assert status is Status.FAIL
    assert message.startswith("ESXi 7.0.3 build 20328353: ESXi 7.0: End of General Support on 2025-10-02")
    assert "(its last fix: ESXi70U3w-24784741, VMSA-2025-0013)" in message
    status, message = _messages(hardened, "HV-PATCH-100")[HARD_HOST]
    assert status is Status.PASS
    assert message == ("ESXi 8.0.3 build 25926933 is at or above ESXi80U3m-25926933, the latest security patch of "
                       f"ESXi 8.0 Update 3 [{esxi_table_said()}]")
    assert _messages(weak, "HV-NET-105")[WEAK_HOST] == (
        Status.FAIL, "UserVars.ESXiVPsDisabledProtocols = 'sslv3': tlsv1, tlsv1.1 not disabled")
    assert _messages(weak, "HV-NET-102")[WEAK_HOST][1] == (
        "vSwitch vSwitch0: promiscuous mode accepted; vSwitch vSwitch0: MAC address changes accepted; "
        "vSwitch vSwitch0: forged transmits accepted")
    assert _messages(weak, "HV-NET-103")[WEAK_HOST][1] == "port group VM Network on VLAN 4095 (all VLANs)"


@pytest.mark.parametrize("boot_cfg, build, expected", [
    ("build=8.0.3-0.35.24280767\n", "24280767",
     (Status.FAIL, "ESXi 8.0.3 build 24280767 is below 25926933 (ESXi80U3m-25926933), the latest security patch of ESXi 8.0 Update 3: "
                   "missing VMSA-2026-0011 (CVE-2026-123911); VMSA-2026-0006 (CVE-2026-47876, CVE-2026-41709, CVE-2026-41703); "
                   "VMSA-2025-0013 (CVE-2025-41236, CVE-2025-41237, CVE-2025-41238, CVE-2025-41239); "
                   "VMSA-2025-0004 (CVE-2025-22224, CVE-2025-22225, CVE-2025-22226) [{said}]")),
    ("build=8.0.2-0.40.24789317\n", "24789317",
     (Status.FAIL, "ESXi 8.0.2 build 24789317: ESXi 8.0 Update 2: VMSA-2026-0011 (CVE-2026-123911, network code execution) names a fix "
                   "for ESXi 8.0 in Update 3m only: update to 8.0 Update 3")),
    ("build=8.1.0-0.0.99999999\n", "99999999",
     (Status.NOT_APPLICABLE, "ESXi 8.1.0 build 99999999: its release line is not in the {said}, "
                             "so whether it is patched is unknown")),
    ("kernel=b.b00\n", None, (Status.NOT_APPLICABLE, "/bootbank/boot.cfg has no build= line (ESXi 6.x and older boot banks do not write one)")),
    ("build=eight\n", None, (Status.NOT_APPLICABLE, "/bootbank/boot.cfg: build= line 'eight' is not <version>-<n>.<n>.<build>")),
    (None, None, (Status.NOT_APPLICABLE, "/bootbank/boot.cfg not found: the offline tree does not say which ESXi build it is")),
])
def test_build_patch_offline_from_boot_cfg(tmp_path: pathlib.Path, boot_cfg: str | None, build: str | None,
                                           expected: tuple[Status, str]) -> None:
    root = tmp_path / "esx"
    shutil.copytree(FIXTURES / "hardened", root, symlinks=True)
    if boot_cfg is None:
        (root / "bootbank/boot.cfg").unlink()
    else:
        (root / "bootbank/boot.cfg").write_text("bootstate=0\ntitle=Loading VMware ESXi\n" + boot_cfg + "updated=2\n")
    report = scan(root, only=["HV-PATCH-100"])
    assert _messages(report, "HV-PATCH-100") == {HARD_HOST: (expected[0], expected[1].replace("{said}", esxi_table_said()))}


def test_switch_without_security_keys_is_not_a_pass(tmp_path: pathlib.Path) -> None:
    """ESXi 7.0 U2 and later keep networking in ConfigStore: an esx.conf without the vSwitch's
    securityPolicy keys says nothing about it."""
    root = tmp_path / "esx"
    shutil.copytree(FIXTURES / "hardened", root, symlinks=True)
    conf = root / "etc/vmware/esx.conf"
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "securityPolicy" not in line))
    report = scan(root, only=["HV-NET-102"])
    status, message = _messages(report, "HV-NET-102")[HARD_HOST]
    assert status is Status.NOT_APPLICABLE and "no (or no true/false) securityPolicy" in message and "vSwitch0" in message
    conf.write_text("".join(line + "\n" for line in conf.read_text().splitlines() if "/net/vswitch" not in line))
    report = scan(root, only=["HV-NET-102", "HV-NET-103"])
    both = [*_messages(report, "HV-NET-102").values(), *_messages(report, "HV-NET-103").values()]
    assert [s for s, _ in both] == [Status.NOT_APPLICABLE] * 2 and all("no /net/vswitch entries" in m for _, m in both)
