"""HV-BAK-030: guests the operator marks sensitive in the hyperward config ([virtualbox]
sensitive) must have every hard disk encrypted by VirtualBox (MediaRegistry HardDisk
CRYPT/KeyStore, inherited by differencing images). VirtualBox cannot run here: the machines
are the settings files of tests/fixtures/virtualbox (see its README)."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
from conftest import hyperward
from vbox_roots import HARDENED, WEAK, make_root

from hyperward.collect import collect_host
from hyperward.config import ConfigError, VirtualBoxConfig, parse_config
from hyperward.engine import registry, run_checks, select
from hyperward.model import Status

W, O, U = WEAK["win10"], WEAK["old50"], WEAK["ubuntu71"]
S70, S52, E70 = HARDENED["safe70"], HARDENED["safe52"], HARDENED["enc70"]
BROKEN = "/home/alice/VirtualBox VMs/Broken/Broken.vbox"
#: the CRYPT/KeyStore of Safe70's disk and Enc70's MachineEncrypted keyStore (tests/fixtures/virtualbox/hardened)
KEYSTORE = "U0NORQABQUVTLVhUUzI1Ni1QTEFJTjY0AAAAAAAAAAAAAAAAAABQQktERjItU0hBMjU2AAAAAAAAAAAAAAAAAAAAAAAAAEAAAAA="
SAFE70 = "home/bob/.VirtualBox/Machines/Safe70/Safe70.vbox"


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    return make_root(tmp_path)


def judged(root: pathlib.Path, *patterns: str) -> dict[str, tuple[Status, str]]:
    settings = VirtualBoxConfig(list(patterns), "/etc/hyperward/config.toml line 2 [virtualbox] sensitive") if patterns else None
    report = run_checks(collect_host(str(root), virtualbox_settings=settings), select(registry(), ["HV-BAK-030"]))
    assert all(f.result.platform == "virtualbox" for f in report.findings)
    return {f.result.resource: (f.status, f.result.message) for f in report.findings}


def test_a_sensitive_machine_with_a_clear_disk_fails_naming_the_disk_and_an_encrypted_one_passes(root):
    got = judged(root, "Win10-weak", "Safe70")
    assert got[W] == (Status.FAIL, "marked sensitive, disk not encrypted: /home/alice/VirtualBox VMs/Win10-weak/Win10-weak.vdi (SATA)")
    assert got[S70] == (Status.PASS, "1 hard disk(s), each encrypted (CRYPT/KeyStore)")
    assert got[BROKEN][0] is Status.ERROR, "an unreadable machine may be a sensitive one: an error naming its file"
    assert set(got) == {W, S70, BROKEN}, "machines not marked are not judged"


def test_globs_and_uuids_mark_machines(root):
    got = judged(root, "Safe*", "{0B6A3F2E-5D1C-4A8E-9B7F-1C2D3E4F5A03}")
    assert got[U][0] is Status.FAIL and "Ubuntu71.vdi" in got[U][1]
    assert got[S70][0] is Status.PASS
    assert got[S52] == (Status.NOT_APPLICABLE, "marked sensitive, but no hard disk is attached")


def test_two_patterns_naming_one_machine_are_both_used(root):
    got = judged(root, "Safe70", "Safe7*")
    assert set(got) == {S70, BROKEN} and got[S70][0] is Status.PASS


def test_encrypted_settings_and_names_that_match_nothing_are_not_judged(root):
    got = judged(root, "Enc70", "Typo-VM")
    assert got[E70] == (Status.NOT_APPLICABLE, "settings encrypted (VirtualBox full VM encryption): its disks cannot be "
                                               "listed without the machine's password")
    assert got["[virtualbox] sensitive Typo-VM"] == (
        Status.NOT_APPLICABLE, "marked sensitive in /etc/hyperward/config.toml line 2 [virtualbox] sensitive but no VirtualBox "
                               "machine found has that name or UUID")


def test_without_a_sensitive_guest_the_check_says_how_to_mark_one(root):
    assert judged(root) == {"host": (Status.NOT_APPLICABLE, 'no VirtualBox machine is marked sensitive (list them in the '
                                                             'hyperward config: [virtualbox] sensitive = ["name", "uuid", "glob*"])')}


def test_a_differencing_image_inherits_its_base_encryption(root):
    """A snapshot's child image of the encrypted base disk is encrypted too (VirtualBox keeps the
    key store on the base); a child of a clear base is not."""
    path = root / SAFE70
    text = path.read_text()
    child = ('<HardDisk uuid="{9a8b7c6d-1111-4222-8333-444455556699}" location="Snapshots/{9a8b7c6d-1111-4222-8333-444455556699}.vdi" '
             'format="VDI"/>\n        </HardDisk>')
    text = text.replace("</HardDisk>", child, 1).replace("{9a8b7c6d-1111-4222-8333-444455556601}\"/>", "{9a8b7c6d-1111-4222-8333-444455556699}\"/>")
    path.write_text(text)
    assert judged(root, "Safe70")[S70][0] is Status.PASS
    path.write_text(text.replace('<Property name="CRYPT/KeyId" value="Safe70"/>', "").replace(
        f'<Property name="CRYPT/KeyStore" value="{KEYSTORE}"/>', ""))
    got = judged(root, "Safe70")[S70]
    assert got[0] is Status.FAIL and "Snapshots/{9a8b7c6d-1111-4222-8333-444455556699}.vdi" in got[1]


def test_a_disk_in_no_registry_is_unknown_not_clear(root):
    edit = (root / SAFE70)
    edit.write_text(edit.read_text().replace("{9a8b7c6d-1111-4222-8333-444455556601}\"/>", "{00000000-1111-4222-8333-444455556601}\"/>"))
    status, message = judged(root, "Safe70")[S70]
    assert status is Status.NOT_APPLICABLE and "medium 00000000-1111-4222-8333-444455556601" in message and "unknown" in message


# --- the config key --------------------------------------------------------------------------------------


def test_the_config_reads_a_list_or_a_comma_separated_string():
    cfg = parse_config('[virtualbox]\nsensitive = ["Win10-weak", "Safe*"]\n', "/etc/hyperward/config.toml")
    assert cfg.virtualbox == VirtualBoxConfig(["Win10-weak", "Safe*"], "/etc/hyperward/config.toml line 2 [virtualbox] sensitive")
    assert parse_config('[virtualbox]\nsensitive = "a, b ,"\n', "c.toml").virtualbox.sensitive == ["a", "b"]
    assert parse_config("", "c.toml").virtualbox == VirtualBoxConfig()


@pytest.mark.parametrize("text, words", [
    ("[virtualbox]\nsensitive = 3\n", "c.toml line 2: [virtualbox] sensitive must be a list"),
    ("[virtualbox]\nsensitve = [\"x\"]\n", "c.toml line 2: unknown key 'sensitve' in [virtualbox]"),
    ("virtualbox = 1\n", "c.toml line 1: [virtualbox] must be a table"),
])
def test_a_bad_config_key_is_an_error_naming_the_file_and_line(text, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        parse_config(text, "c.toml")


# --- through the command line: the key store never leaves the settings file ---------------------------------


def _config(tmp_path: pathlib.Path, *names: str) -> pathlib.Path:
    path = tmp_path / "config.toml"
    path.write_text("[virtualbox]\nsensitive = [" + ", ".join(json.dumps(n) for n in names) + "]\n")
    os.chmod(path, 0o600)
    return path


def test_the_report_and_the_snapshot_never_hold_the_key_store(root, tmp_path):
    assert KEYSTORE in (root / SAFE70).read_text(), "the fixture holds the key store the test looks for"
    config = _config(tmp_path, "Safe70", "Enc70", "Win10-weak")
    for fmt in ("json", "text"):
        out = hyperward("scan", "--root", str(root), "--config", str(config), "--format", fmt, "--verbose")
        assert out.returncode == 0, out.stderr
        assert "Win10-weak.vdi" in out.stdout, "HV-BAK-030 ran"
        assert KEYSTORE not in out.stdout and KEYSTORE[:24] not in out.stdout and KEYSTORE not in out.stderr
    snap = tmp_path / "snap.json"
    out = hyperward("collect", "--root", str(root), "--config", str(config), "-o", str(snap))
    assert out.returncode == 0, out.stderr
    assert KEYSTORE[:24] not in snap.read_text()


def test_a_snapshot_keeps_its_marks_and_a_scan_config_replaces_them(root, tmp_path):
    snap = tmp_path / "snap.json"
    assert hyperward("collect", "--root", str(root), "--config", str(_config(tmp_path, "Safe70")), "-o", str(snap)).returncode == 0
    out = hyperward("scan", "--snapshot", str(snap), "--only", "HV-BAK-030", "--format", "json")
    rows = {(f["resource"], f["status"]) for f in json.loads(out.stdout)["results"]}
    assert rows == {(S70, "pass"), (BROKEN, "error")}, out.stdout
    other = tmp_path / "other"
    other.mkdir()
    out = hyperward("scan", "--snapshot", str(snap), "--config", str(_config(other, "old50")), "--only", "HV-BAK-030", "--format", "json")
    rows = {(f["resource"], f["status"]) for f in json.loads(out.stdout)["results"]}
    assert rows == {(O, "fail"), (BROKEN, "error")}, out.stdout
