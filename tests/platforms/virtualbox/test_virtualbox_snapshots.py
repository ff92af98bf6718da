"""Snapshots' settings: a .vbox <Snapshot> carries its own <Hardware> (and from settings 1.20
its <Platform>), storage attachments and recording settings, which restoring the snapshot brings
back (MachineConfigFile::readSnapshot in src/VBox/Main/xml/Settings.cpp). The checks that judge a
machine's hardware judge each snapshot too, as "machine@snapshot".

VirtualBox cannot run here: tests/fixtures/virtualbox/snapshots holds machine files written in the
format VirtualBox writes them (see that folder's README): Snap70 (settings 1.19) is hardened in
its current state and in its "hardened" snapshot, weak only in its first snapshot
"before-hardening"; Snap71 (1.20) has one snapshot whose x86 CPU switches MDS clearing off.
"""

from __future__ import annotations

import os
import pathlib

import pytest
from conftest import failing, scan, statuses
from vbox_roots import HARDENED, make_hardened_root

from hyperward.collect import collect_host
from hyperward.config import VirtualBoxConfig
from hyperward.engine import registry, run_checks, select
from hyperward.facts import dump_snapshot, load_snapshot
from hyperward.model import Status
from hyperward.platforms.virtualbox import parsers
from hyperward.platforms.virtualbox.facts import VirtualBoxFacts

SNAPSHOTS = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "virtualbox" / "snapshots"
SNAP70 = "Snap70 (5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc04)"
WEAK_SNAP = f"{SNAP70}@before-hardening"
GOOD_SNAP = f"{SNAP70}@hardened"
SNAP71 = "Snap71 (5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc05)"
S70 = HARDENED["safe70"]
HOME = "home/bob/.VirtualBox"


def install(root: pathlib.Path, name: str, text: str | None = None) -> pathlib.Path:
    """Put a machine folder into bob's hardened home and register it, as VirtualBox does."""
    folder = root / HOME / "Machines" / name
    folder.mkdir(parents=True)
    target = folder / f"{name}.vbox"
    target.write_text(text if text is not None else (SNAPSHOTS / f"{name}.vbox").read_text())
    os.chmod(folder, 0o700)
    os.chmod(target, 0o600)
    registry_file = root / HOME / "VirtualBox.xml"
    uuid = {"Snap70": "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc04", "Snap71": "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc05"}[name]
    registry_file.write_text(registry_file.read_text().replace(
        "</MachineRegistry>", f'  <MachineEntry uuid="{{{uuid}}}" src="Machines/{name}/{name}.vbox"/>\n    </MachineRegistry>'))
    return target


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = make_hardened_root(tmp_path)
    install(root, "Snap70")
    install(root, "Snap71")
    return root


def test_the_snapshot_tree_is_read_parents_first_with_each_snapshots_own_settings():
    _u, _n, current, snaps = parsers.parse_machine_snapshots((SNAPSHOTS / "Snap70.vbox").read_text(), "/x/Snap70.vbox", "/x")
    assert current is not None and not current.vrde.enabled and current.clipboard_mode == "Disabled"
    assert [(s.name, s.parent) for s in snaps] == [("before-hardening", None), ("hardened", "c0ffee00-0000-4000-8000-00000000a001")]
    weak, good = snaps[0].config, snaps[1].config
    assert weak.vrde.enabled and weak.vrde.auth_type == "Null" and "VRDE authType Null" in weak.defaults
    assert weak.clipboard_mode == "Bidirectional" and weak.recording and not weak.cpu.l1d_flush_sched
    assert [(d.location, d.encrypted) for d in weak.disks] == [("/x/Snap70.vdi", True), ("/x/scratch.vdi", False)]
    assert [d.location for d in good.disks] == ["/x/Snapshots/{9a8b7c6d-1111-4222-8333-4444555566a1}.vdi"]
    assert good.disks[0].encrypted, "a differencing image inherits its base's encryption"
    assert not good.recording and not good.vrde.enabled
    _u, _n, new, [pre] = parsers.parse_machine_snapshots((SNAPSHOTS / "Snap71.vbox").read_text(), "/y/Snap71.vbox", "/y")
    assert new is not None and new.cpu.mds_clear_sched and not pre.config.cpu.mds_clear_sched, "1.20: Snapshot/Platform/x86/CPU"


CHECKS = ["HV-AUTH-030", "HV-AUTH-031", "HV-ISO-030", "HV-ISO-031", "HV-ISO-032", "HV-ISO-036", "HV-NET-030", "HV-SIDE-030"]


@pytest.mark.parametrize("check_id", CHECKS)
def test_only_the_weak_snapshot_fails_each_hardware_check(root, check_id):
    report = scan(root, only=[check_id])
    bad = {WEAK_SNAP} | ({f"{SNAP71}@pre-update"} if check_id == "HV-SIDE-030" else set())
    assert failing(report, check_id) == bad
    got = statuses(report, check_id)
    if check_id != "HV-ISO-030":  # neither the machine nor its "hardened" snapshot has a shared folder
        assert got[SNAP70] is Status.PASS and got[GOOD_SNAP] is Status.PASS and got[S70] is Status.PASS
    found = next(f for f in report.findings if f.result.resource == WEAK_SNAP)
    assert found.result.details["snapshot"] == "before-hardening"
    assert found.result.details["snapshot_id"] == "c0ffee00-0000-4000-8000-00000000a001"
    assert found.result.details["file"] == f"/{HOME}/Machines/Snap70/Snap70.vbox"


def test_the_weak_snapshot_says_what_restoring_it_brings_back(root):
    report = scan(root, only=["HV-AUTH-030", "HV-ISO-030", "HV-SIDE-030"])
    messages = {(f.check_id, f.result.resource): f.result.message for f in report.findings}
    assert messages[("HV-AUTH-030", WEAK_SNAP)].startswith("VRDE enabled with authType Null (the default)")
    assert "'root' (/): shares the host's root directory" in messages[("HV-ISO-030", WEAK_SNAP)]
    assert "MDSClearOn scheduling=false" in messages[("HV-SIDE-030", f"{SNAP71}@pre-update")]


def test_machine_wide_and_guest_reported_settings_are_the_machines_alone(root):
    """Teleporter is read from Machine only; a snapshot's guest properties say what the guest
    claimed then (Guest Additions 6.1.50 in before-hardening), not a setting."""
    report = scan(root, only=["HV-NET-032", "HV-PATCH-031"])
    resources = {f.result.resource for f in report.findings}
    assert SNAP70 in resources and not {r for r in resources if "@" in r}
    assert not failing(report)


def test_a_sensitive_machines_snapshot_with_a_clear_disk_fails(root):
    settings = VirtualBoxConfig(["Snap70"], "config.toml [virtualbox] sensitive")
    report = run_checks(collect_host(str(root), virtualbox_settings=settings), select(registry(), ["HV-BAK-030"]))
    got = {f.result.resource: (f.status, f.result.message) for f in report.findings}
    assert got[SNAP70][0] is Status.PASS and got[GOOD_SNAP][0] is Status.PASS
    assert got[WEAK_SNAP] == (Status.FAIL, f"marked sensitive, disk not encrypted: /{HOME}/Machines/Snap70/scratch.vdi (SATA)")


def test_snapshots_survive_a_facts_snapshot(root):
    facts = collect_host(str(root))
    again = load_snapshot(dump_snapshot(facts))
    vbox = again.platforms["virtualbox"]
    assert isinstance(vbox, VirtualBoxFacts)
    [machine] = [m for _h, m in vbox.machines() if m.name == "Snap70"]
    assert [s.name for s in machine.snapshots] == ["before-hardening", "hardened"]
    [before] = [m for _h, m in facts.platforms["virtualbox"].machines() if m.name == "Snap70"]
    assert machine.snapshots == before.snapshots


def _snapshot_chain(depth: int) -> str:
    text = (SNAPSHOTS / "Snap71.vbox").read_text()
    start, end = text.index("    <Snapshot "), text.index("  </Machine>")
    one = text[start:end].replace("</Snapshot>\n", "")
    uuid = "c0ffee00-0000-4000-8000-00000000b001"
    nested = ""
    for i in range(depth, 0, -1):
        child = f"<Snapshots>{nested}</Snapshots>" if nested else ""
        nested = one.replace(uuid, f"c0ffee00-0000-4000-8000-{i:012d}").replace('name="pre-update"', f'name="s{i}"') + child + "</Snapshot>"
    return text[:start] + nested + text[end:].replace(uuid, "c0ffee00-0000-4000-8000-000000000001")


def test_a_snapshot_tree_as_deep_as_virtualbox_allows_is_read():
    text = _snapshot_chain(250).replace('currentSnapshot="{c0ffee00-0000-4000-8000-00000000b001}"',
                                        'currentSnapshot="{c0ffee00-0000-4000-8000-000000000250}"')
    *_rest, snaps = parsers.parse_machine_snapshots(text, "/z/Snap71.vbox", "/z")
    assert len(snaps) == 250 and snaps[-1].name == "s250" and snaps[-1].parent == "c0ffee00-0000-4000-8000-000000000249"


@pytest.mark.parametrize("change, words", [
    (lambda t: _snapshot_chain(251).replace('currentSnapshot="{c0ffee00-0000-4000-8000-00000000b001}"',
                                            'currentSnapshot="{c0ffee00-0000-4000-8000-000000000001}"'),
     "snapshot tree deeper than 250"),
    (lambda t: t.replace(' currentSnapshot="{c0ffee00-0000-4000-8000-00000000b001}"', ""), "Machine/@currentSnapshot is missing"),
    (lambda t: t.replace('currentSnapshot="{c0ffee00-0000-4000-8000-00000000b001}"',
                         'currentSnapshot="{c0ffee00-0000-4000-8000-0000000000ff}"'), "no snapshot matches Machine/@currentSnapshot"),
    (lambda t: t.replace(' timeStamp="2025-01-20T10:00:00Z"', ""), "Snapshot without uuid, name or timeStamp"),
    (lambda t: t[:t.index("      <Platform")] + t[t.index("      <Hardware>", t.index("<Snapshot ")):],
     "settings 1.20+ Snapshot without <Platform>"),
])
def test_a_snapshot_virtualbox_refuses_is_an_error_naming_the_file_and_the_rest_still_runs(root, change, words):
    path = root / HOME / "Machines/Snap71/Snap71.vbox"
    path.write_text(change(path.read_text()))
    report = scan(root, only=["HV-SIDE-030"])
    got = {f.result.resource: f for f in report.findings}
    broken = got[f"/{HOME}/Machines/Snap71/Snap71.vbox"]
    assert broken.status is Status.ERROR and words in broken.result.message, broken.result.message
    assert got[WEAK_SNAP].status is Status.FAIL and got[S70].status is Status.PASS


def test_a_file_of_thousands_of_snapshots_is_an_error_not_a_slow_scan(root):
    """The machine's owner writes its .vbox: 1001 sibling snapshots under one parent."""
    text = (SNAPSHOTS / "Snap71.vbox").read_text()
    start, end = text.index("    <Snapshot "), text.index("  </Machine>")
    one = text[start:end].replace("</Snapshot>\n", "")
    kids = "".join(one.replace("c0ffee00-0000-4000-8000-00000000b001", f"c0ffee00-0000-4000-8000-{i:012d}") + "</Snapshot>"
                   for i in range(1, 1001))
    path = root / HOME / "Machines/Snap71/Snap71.vbox"
    path.write_text(text[:start] + one + "<Snapshots>" + kids + "</Snapshots></Snapshot>" + text[end:])
    report = scan(root, only=["HV-SIDE-030"])
    got = {f.result.resource: f for f in report.findings}
    broken = got[f"/{HOME}/Machines/Snap71/Snap71.vbox"]
    assert broken.status is Status.ERROR and "more than 1000 snapshots" in broken.result.message
    assert got[WEAK_SNAP].status is Status.FAIL


def test_a_snapshot_without_hardware_is_refused():
    text = (SNAPSHOTS / "Snap70.vbox").read_text()
    start = text.index("<Hardware>", text.index('name="hardened"'))
    end = text.index("</Hardware>", start) + len("</Hardware>")
    with pytest.raises(parsers.ParseError, match="Snapshot 'hardened' without <Hardware>"):
        parsers.parse_machine_snapshots(text[:start] + text[end:], "/x/Snap70.vbox", "/x")


def test_a_hostile_snapshot_name_is_shortened_and_escaped_on_the_terminal(tmp_path):
    from conftest import hyperward

    root = make_hardened_root(tmp_path)
    text = (SNAPSHOTS / "Snap70.vbox").read_text().replace('name="before-hardening"', 'name="ok&#x202E;gnp.exe' + "x" * 300 + '"')
    install(root, "Snap70", text)
    result = hyperward("scan", "--root", str(root), "--only", "HV-ISO-031", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "\u202e" not in result.stdout and "ok\\u202egnp.exe" in result.stdout
    assert "x" * 120 not in result.stdout


def test_the_neutral_guest_checks_judge_each_snapshot_too(root):
    """A restore brings the weak snapshot's writable share of / and its clipboard back: the neutral
    rows (HV-ISO-014, HV-ISO-026) judge it as the VirtualBox rows do, under the same name, while
    the machine's current state and its "hardened" snapshot share nothing. Snapshots are judged,
    not inventoried: the report's guests are the machines alone."""
    report = scan(root, only=["HV-ISO-014", "HV-ISO-026", "HV-NEST-002"])
    assert failing(report, "HV-ISO-014") == {WEAK_SNAP}
    assert failing(report, "HV-ISO-026") == {WEAK_SNAP}
    share = next(f for f in report.findings if f.check_id == "HV-ISO-014")
    assert "/ -> root: writable" in share.result.message
    assert share.result.details["snapshot"] == "before-hardening"
    assert share.result.details["snapshot_id"] == "c0ffee00-0000-4000-8000-00000000a001"
    assert share.result.details["guest_id"] == "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc04"
    nested = statuses(report, "HV-NEST-002")
    assert nested[SNAP70] is nested[WEAK_SNAP] is nested[GOOD_SNAP] is Status.PASS
    assert not [g for g in report.derived().guests if g.snapshot is not None or "@" in g.label]
    assert {g.label for g in report.derived().guests} >= {SNAP70, SNAP71}
