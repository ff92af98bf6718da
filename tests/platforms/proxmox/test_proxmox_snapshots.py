"""Proxmox VE snapshot sections: each `[name]` section of a qm.conf / pct.conf holds the full
configuration `qm rollback` / `pct rollback` writes back, so the neutral guest checks judge it as
`name (vmid)@snapshot`, mapped like the current configuration.

tests/fixtures/proxmox/snapshots holds a VM (120.conf) and a container (220.conf) written as
qemu-server's write_vm_config and pve-container's write_pct_config write them (sorted keys,
[PENDING], [special:cloudinit], then the snapshots sorted by name): hardened in their current
configuration and in their "hardened" snapshot, weak only in "before-hardening" (the VM: SeaBIOS
without a vTPM and `args: -vnc 0.0.0.0:1`; the container: a writable bind mount of /etc). They
are installed into a copy of the hardened Proxmox tree."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
from conftest import failing, scan, statuses

from hyperward.collect import collect_host
from hyperward.collect.fs import RootFS
from hyperward.facts import dump_snapshot, load_snapshot
from hyperward.model import Status, Unavailable
from hyperward.platforms.proxmox import PLATFORM, parsers
from hyperward.platforms.proxmox.collect import collect
from hyperward.platforms.proxmox.facts import ProxmoxFacts, PveGuestConfig

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "proxmox"
SNAPSHOTS = FIXTURES / "snapshots"
QM = "/etc/pve/nodes/pve1/qemu-server/120.conf"
PCT = "/etc/pve/nodes/pve1/lxc/220.conf"
VM, CT = "app (120)", "cache (220)"


@pytest.fixture
def root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "pve"
    shutil.copytree(FIXTURES / "hardened", root, symlinks=True)
    shutil.copy(SNAPSHOTS / "120.conf", root / QM.lstrip("/"))
    shutil.copy(SNAPSHOTS / "220.conf", root / PCT.lstrip("/"))
    return root


def configs(facts: ProxmoxFacts) -> dict[str, PveGuestConfig]:
    return {g.vmid: g for g in facts.nodes[0].guests if not isinstance(g, Unavailable)}


def line_of(text: str, section: str, key: str) -> int:
    lines = text.splitlines()
    start = lines.index(f"[{section}]")
    return next(n for n, line in enumerate(lines[start:], start + 1) if line.startswith(f"{key}:"))


def test_each_snapshot_section_is_kept_with_its_keys_and_lines(root: pathlib.Path) -> None:
    vm = configs(collect(RootFS(str(root))))["120"]
    assert vm.snapshots == ["before-hardening", "hardened"]
    weak, hardened = vm.snapshot_sections
    assert (weak.name, hardened.name) == ("before-hardening", "hardened")
    assert weak.config["args"] == "-vnc 0.0.0.0:1" and weak.config["snaptime"] == "1709251200"
    assert weak.config["vmstate"] == "local-lvm:vm-120-state-before-hardening" and "bios" not in weak.config
    assert hardened.config["bios"] == "ovmf" and hardened.config["parent"] == "before-hardening"
    text = (SNAPSHOTS / "120.conf").read_text()
    assert weak.lines["args"] == line_of(text, "before-hardening", "args")
    # the current configuration is the top section only: not the pending memory, not a snapshot's args
    assert "args" not in vm.config and vm.config["memory"] == "4096" and vm.pending == {"memory": "8192"}
    assert vm.lines["memory"] < line_of(text, "PENDING", "memory")


def test_pending_and_special_sections_are_not_snapshots() -> None:
    """qemu-server: [PENDING] (any case) is the pending change, [special:cloudinit] and
    [special:fleecing] are special sections, any other bracketed line an unknown section whose
    lines are skipped; none of them is a snapshot, and none of their keys reaches the current
    configuration or a snapshot."""
    text = ("name: vm\nmemory: 1024\n\n[PENDING]\nargs: -vnc 0.0.0.0:5\n\n[special:cloudinit]\nargs: -vnc 0.0.0.0:6\n"
            "\n[special:fleecing]\nfleecing-images: local:vm-1-fleece-0\n\n[special:other]\nargs: -vnc 0.0.0.0:7\n"
            "\n[two words]\nargs: -vnc 0.0.0.0:8\n\n[a]\nargs: -vnc 0.0.0.0:9\n\n[pending]\nmemory: 2048\n\n[snap1]\ncores: 4\n")
    parsed = parsers.parse_guest_config(text, "qemu")
    assert parsed.snapshots == ["snap1"] and [s.name for s in parsed.snapshot_sections] == ["snap1"]
    assert parsed.snapshot_sections[0].config == {"cores": "4"}
    assert parsed.current == {"name": "vm", "memory": "1024"}
    assert parsed.pending == {"memory": "2048"}  # a later [pending] section starts afresh, as in qemu-server


def test_a_containers_sections_follow_pve_container() -> None:
    """pve-container knows [pve:pending] and the snapshot form only: [PENDING] is a snapshot name
    there, and any other bracketed line is an unparseable line whose followers stay in the section
    before (as parse_pct_config reads them)."""
    text = ("hostname: ct\nmemory: 512\n\n[pve:pending]\nmemory: 1024\n\n[PENDING]\ncores: 2\n"
            "\n[special:cloudinit]\nswap: 0\n\n[snap1]\nmp0: /etc,mp=/mnt/etc\n")
    parsed = parsers.parse_guest_config(text, "lxc")
    assert parsed.pending == {"memory": "1024"}
    assert parsed.snapshots == ["PENDING", "snap1"]
    assert parsed.snapshot_sections[0].config == {"cores": "2", "swap": "0"} and parsed.ignored_lines == 1
    assert parsed.snapshot_sections[1].config == {"mp0": "/etc,mp=/mnt/etc"}
    # a snapshot section's secrets and free text are dropped as the current section's are
    secret = parsers.parse_guest_config("name: v\n[s1]\n#owner note\ncipassword: $6$x\ndescription: hi\ncores: 1\n")
    assert secret.snapshot_sections[0].config == {"cores": "1"}


def test_a_repeated_snapshot_section_is_the_later_one() -> None:
    parsed = parsers.parse_guest_config("name: v\n[s1]\nargs: -vnc 0.0.0.0:1\n[s2]\ncores: 1\n[s1]\ncores: 2\n")
    assert parsed.snapshots == ["s1", "s2"]
    assert [(s.name, s.config) for s in parsed.snapshot_sections] == [("s1", {"cores": "2"}), ("s2", {"cores": "1"})]


def test_the_neutral_guest_checks_judge_each_snapshot_too(root: pathlib.Path) -> None:
    """A rollback to "before-hardening" brings back a VNC display on every address without a
    password (raw args), SeaBIOS without Secure Boot, and the container's writable /etc: the
    neutral rows fail exactly that snapshot, while the current configurations and the
    "hardened" snapshots pass. Snapshots are judged, not inventoried."""
    report = scan(root, only=["HV-AUTH-010", "HV-TPM-003", "HV-ISO-014"])
    weak_vm, weak_ct = f"{VM}@before-hardening", f"{CT}@before-hardening"
    assert failing(report, "HV-AUTH-010") == {weak_vm}
    assert failing(report, "HV-TPM-003") == {weak_vm}
    assert failing(report, "HV-ISO-014") == {weak_ct}
    vnc = statuses(report, "HV-AUTH-010")
    assert vnc[VM] is vnc[f"{VM}@hardened"] is Status.PASS
    assert statuses(report, "HV-TPM-003")[f"{VM}@hardened"] is Status.PASS
    shares = statuses(report, "HV-ISO-014")
    assert shares[CT] is shares[f"{CT}@hardened"] is Status.PASS
    found = next(f for f in report.findings if f.check_id == "HV-AUTH-010" and f.result.resource == weak_vm)
    assert "VNC on 0.0.0.0: no password, no TLS" in found.result.message
    details = found.result.details
    assert (details["snapshot"], details["snapshot_id"], details["guest_id"]) == ("before-hardening", "before-hardening", "120")
    assert details["guest_uuid"] == "7c1d2e3f-4a5b-4c6d-8e7f-90a1b2c3d4e5"
    assert (details["file"], details["element"]) == (QM, "args")
    assert details["line"] == line_of((SNAPSHOTS / "120.conf").read_text(), "before-hardening", "args")
    share = next(f for f in report.findings if f.check_id == "HV-ISO-014" and f.result.resource == weak_ct)
    assert "/etc -> /mnt/etc: shares a host system directory" in share.result.message
    assert share.result.details["snapshot"] == "before-hardening" and share.result.details["file"] == PCT
    assert not [r for r in report.findings if "PENDING" in r.result.resource or "special" in r.result.resource]
    guests = report.derived().guests
    assert not [g for g in guests if g.snapshot is not None or "@" in g.label]
    assert {g.label for g in guests} >= {VM, CT}


def test_snapshots_map_through_the_current_mapping(root: pathlib.Path) -> None:
    facts = collect(RootFS(str(root)))
    got = {g.label: g for g in PLATFORM.snapshots(facts)}
    assert set(got) == {f"{VM}@before-hardening", f"{VM}@hardened", f"{CT}@before-hardening", f"{CT}@hardened"}
    weak = got[f"{VM}@before-hardening"]
    assert (weak.kind, weak.firmware, weak.state, weak.nested, weak.origin) == ("vm", "bios", None, True, QM)
    assert [(c.kind, c.listen) for c in weak.consoles if c.source == "args"] == [("vnc", ["0.0.0.0"])]
    hardened = got[f"{VM}@hardened"]
    assert (hardened.secure_boot, [t.version for t in hardened.tpms], hardened.memory_sharing_opt_out) == (True, ["2.0"], True)
    ct = got[f"{CT}@before-hardening"]
    assert ct.kind == "container" and [(s.host_path, s.writable) for s in ct.shared_directories] == [("/etc", True)]
    # the weak Proxmox tree's VM has a snapshot section too; a guest without one adds nothing
    weak_tree = collect(RootFS(str(FIXTURES / "weak")))
    assert [g.label for g in PLATFORM.snapshots(weak_tree)] == ["web (100)@before-upgrade"]
    assert PLATFORM.snapshots(collect(RootFS(str(FIXTURES / "hardened")))) == []


def test_a_long_section_name_is_cut_in_results_and_kept_whole_as_the_id(root: pathlib.Path) -> None:
    conf = root / QM.lstrip("/")
    name = "s" + "x" * 199
    conf.write_text(conf.read_text() + f"\n[{name}]\nargs: -vnc 0.0.0.0:2\n")
    (long,) = [g for g in PLATFORM.snapshots(collect(RootFS(str(root)))) if g.snapshot_id == name]
    assert long.label == f"{VM}@{name[:80]}..."


def test_snapshot_sections_survive_a_facts_snapshot_and_old_facts_still_load(root: pathlib.Path) -> None:
    facts = collect_host(str(root))
    again = load_snapshot(dump_snapshot(facts))
    before, after = facts.platforms["proxmox"], again.platforms["proxmox"]
    assert configs(after)["120"].snapshot_sections == configs(before)["120"].snapshot_sections
    assert [s.name for s in configs(after)["220"].snapshot_sections] == ["before-hardening", "hardened"]
    assert {g.label for g in again.guest_snapshots} == {g.label for g in facts.guest_snapshots}
    # facts written before the sections were kept: no `snapshot_sections` key, the names alone
    doc = json.loads(dump_snapshot(facts))
    assert "AAAAC3Nza" not in dump_snapshot(facts)  # [special:cloudinit] is not kept
    for node in doc["facts"]["platforms"]["proxmox"]["nodes"]:
        for guest in node["guests"]:
            guest.pop("snapshot_sections", None)
    old = load_snapshot(json.dumps(doc))
    assert configs(old.platforms["proxmox"])["120"].snapshots == ["before-hardening", "hardened"]
    assert configs(old.platforms["proxmox"])["120"].snapshot_sections == [] and old.guest_snapshots == []


def test_a_config_of_more_than_1000_snapshot_sections_is_an_error_naming_it(root: pathlib.Path) -> None:
    """The VM's config is root's, but a snapshot a tenant's API token may take: 1001 sections."""
    conf = root / QM.lstrip("/")
    conf.write_text(conf.read_text() + "".join(f"\n[s{i}]\ncores: 1\n" for i in range(1001)))
    report = scan(root, only=["HV-AUTH-010"])
    got = statuses(report, "HV-AUTH-010")
    assert got[QM] is Status.ERROR
    broken = next(f for f in report.findings if f.result.resource == QM)
    assert "more than 1000 snapshot sections" in broken.result.message
    assert got["db (110)"] is Status.PASS and f"{VM}@before-hardening" not in got  # the rest of the root still runs
    exactly = parsers.parse_guest_config("name: v\n" + "".join(f"[s{i}]\ncores: 1\n" for i in range(1000)))
    assert len(exactly.snapshot_sections) == 1000
