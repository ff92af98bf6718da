"""The Proxmox VE platform: the same facts from /etc/pve files and from config.db, every
Proxmox-only judge passing and failing on exact resources, the neutral guest mapping, bad input."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import sqlite3
import sys

import pytest

from hyperward.collect.fs import RootFS
from hyperward.facts import _from_jsonable, to_jsonable
from hyperward.model import Status, Unavailable
from hyperward.platforms.base import Source
from hyperward.platforms.proxmox import PLATFORM, parsers
from hyperward.platforms.proxmox.checks import JUDGES, vzdump_coverage
from hyperward.platforms.proxmox.collect import collect
from hyperward.platforms.proxmox.facts import ProxmoxFacts
from hyperward.platforms.proxmox.guests import to_guests

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from pvedb import build_config_db  # noqa: E402

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "proxmox"
NOW = 0x65F00000 + 6 * 3600


def tree(name: str, tmp: pathlib.Path, mode: str = "files") -> pathlib.Path:
    root = tmp / f"{name}-{mode}"
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    if mode == "db":
        etc = root / "etc/pve"
        build_config_db(etc, root / "var/lib/pve-cluster/config.db")
        shutil.rmtree(etc)
        etc.mkdir()
    return root


def scan(root: pathlib.Path) -> ProxmoxFacts:
    return collect(RootFS(str(root)), now=NOW)


def verdicts(facts: ProxmoxFacts, check: str) -> set[tuple[str, str]]:
    return {(r.resource, r.status.value) for r in JUDGES[check](facts)}


def failing(facts: ProxmoxFacts, check: str) -> set[str]:
    return {r.resource for r in JUDGES[check](facts) if r.status is Status.FAIL}


def comparable(facts: ProxmoxFacts) -> ProxmoxFacts:
    return dataclasses.replace(facts, source="", store="", notes=[])


@pytest.mark.parametrize("name", ["weak", "hardened"])
def test_files_and_config_db_give_the_same_facts(tmp_path: pathlib.Path, name: str) -> None:
    files = scan(tree(name, tmp_path, "files"))
    db = scan(tree(name, tmp_path, "db"))
    assert files.source == "pmxcfs" and db.source == "config.db"
    assert db.store == "/var/lib/pve-cluster/config.db"
    assert comparable(files) == comparable(db)
    assert to_guests(files) == to_guests(db)
    for check in JUDGES:
        assert [(r.resource, r.status, r.message) for r in JUDGES[check](files)] == \
            [(r.resource, r.status, r.message) for r in JUDGES[check](db)], check


def test_config_db_is_opened_read_only_and_immutable(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path, "db")
    db = root / "var/lib/pve-cluster/config.db"
    os.chmod(db, 0o444)
    os.chmod(db.parent, 0o555)  # no -wal/-shm/-journal could be created beside it
    try:
        before = db.read_bytes()
        facts = scan(root)
        assert facts.source == "config.db" and len(facts.nodes[0].guests) == 4
        assert db.read_bytes() == before
        assert sorted(p.name for p in db.parent.iterdir()) == ["config.db"]
    finally:
        os.chmod(db.parent, 0o755)


WEAK_FAILS = {
    "HV-FW-004": {"/etc/pve/firewall/cluster.fw"},
    "HV-FW-005": {"node/pve1"},
    "HV-ISO-027": {"VM 100 (web)"},
    "HV-ISO-028": {"VM 100 (web)", "VM 101 (win11)"},
    "HV-ISO-029": {"CT 200 (docker)", "CT 201 (legacy)"},
    "HV-SIDE-008": {"VM 100 (web)", "VM 101 (win11)"},
    "HV-AUTH-017": {"/etc/default/pveproxy"},
    "HV-AUTH-018": {"user root@pam", "user alice@pve", "user carol@pam", "token alice@pve!automation", "token root@pam!backup"},
    "HV-AUTH-019": {"user root@pam", "user alice@pve", "user bob@pve", "user carol@pam"},
    "HV-NET-008": {"/etc/pve/datacenter.cfg:migration"},
    "HV-NET-009": {"/etc/pve/corosync.conf:totem"},
    "HV-BAK-006": {"job backup-weekly", "job backup-daily"},
    "HV-BAK-007": {"storage pbs-offsite"},
}

HARDENED = {
    "HV-FW-004": {("/etc/pve/firewall/cluster.fw", "pass")},
    "HV-FW-005": {("node/pve1", "pass")},
    "HV-ISO-027": {("VM 110 (db)", "pass"), ("CT 210 (dns)", "pass")},
    "HV-ISO-028": {("VM 110 (db)", "pass")},
    "HV-ISO-029": {("CT 210 (dns)", "pass")},
    "HV-SIDE-008": {("VM 110 (db)", "pass")},
    "HV-AUTH-017": {("/etc/default/pveproxy", "pass")},
    "HV-AUTH-018": {("user root@pam", "fail"), ("user alice@pve", "pass"), ("user oldadmin@pve", "pass"),
                    ("user sso@corp", "pass"), ("token alice@pve!automation", "pass")},
    "HV-AUTH-019": {("user root@pam", "pass"), ("user alice@pve", "pass"), ("user oldadmin@pve", "pass"), ("user sso@corp", "pass")},
    "HV-NET-008": {("/etc/pve/datacenter.cfg:migration", "pass")},
    "HV-NET-009": {("/etc/pve/corosync.conf:totem", "pass")},
    "HV-BAK-006": {("job backup-nightly", "pass")},
    "HV-BAK-007": {("storage pbs-main", "pass")},
}


@pytest.mark.parametrize("check", sorted(JUDGES))
def test_weak_node_fails_exactly(check: str) -> None:
    facts = scan(FIXTURES / "weak")
    assert failing(facts, check) == WEAK_FAILS[check]


@pytest.mark.parametrize("check", sorted(JUDGES))
def test_hardened_node_passes(check: str) -> None:
    assert verdicts(scan(FIXTURES / "hardened"), check) == HARDENED[check]


def test_root_pam_admin_is_info_only() -> None:
    (root,) = [r for r in JUDGES["HV-AUTH-018"](scan(FIXTURES / "hardened")) if r.resource == "user root@pam"]
    assert root.severity is not None and root.severity.label == "info"


def test_weak_messages_name_what_is_wrong() -> None:
    facts = scan(FIXTURES / "weak")
    msgs = {(c, r.resource): r.message for c in JUDGES for r in JUDGES[c](facts)}
    assert msgs[("HV-ISO-027", "VM 100 (web)")] == "args: -vnc 0.0.0.0:77; hookscript: local:snippets/hook.pl"
    assert "privileged (unprivileged: 1 not set)" in msgs[("HV-ISO-029", "CT 201 (legacy)")]
    assert "dev0: /dev/ttyUSB0" in msgs[("HV-ISO-029", "CT 201 (legacy)")]
    assert "lxc.apparmor.profile: unconfined" in msgs[("HV-ISO-029", "CT 201 (legacy)")]
    assert msgs[("HV-ISO-029", "CT 200 (docker)")] == "features nesting=1 with keyctl=1"
    assert msgs[("HV-BAK-006", "job backup-daily")] == "last run failed: job errors"
    assert msgs[("HV-NET-009", "/etc/pve/corosync.conf:totem")] == "crypto_hash none (no authentication); crypto_cipher none (no encryption)"


# --- guest mapping ---------------------------------------------------------------------------


def guest(facts: ProxmoxFacts, vmid: str):  # type: ignore[no-untyped-def]
    (g,) = [g for g in to_guests(facts) if g.id == vmid]
    return g


def test_vm_mapping_weak() -> None:
    g = guest(scan(FIXTURES / "weak"), "100")
    assert (g.platform, g.kind, g.name, g.uuid, g.firmware, g.secure_boot, g.keys_enrolled) == \
        ("proxmox", "vm", "web", "3f2b8e3a-6d1c-4a57-9a0e-2c4f7d1b9e01", "bios", None, None)
    assert g.tpms == []
    assert [(c.kind, c.listen, c.socket, c.auth, c.source) for c in g.consoles] == [
        ("vnc", [], True, ["ticket"], "pveproxy (UNIX socket)"),
        ("spice", ["127.0.0.1"], False, ["ticket"], "spiceproxy"),
        ("serial-web", [], True, ["ticket"], "pveproxy (xterm.js)"),
        ("vnc", ["0.0.0.0"], False, ["none"], "args"),
    ]
    assert [(d.kind, d.host_id) for d in g.devices] == [
        ("pci", "0000:01:00.0"), ("pci", "0000:01:00.1"),
        ("block", "/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567"),
        ("device-node", "/dev/ttyS0"), ("usb", "046d:c52b"),
    ]
    assert [(d.target, d.source, d.readonly, d.raw_device) for d in g.disks] == [
        ("ide2", "local:iso/debian-12.5.0-amd64-netinst.iso", True, False),
        ("scsi0", "local-lvm:vm-100-disk-0", False, False),
        ("scsi1", "/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1234567", False, True),
    ]
    (nic,) = g.nics
    assert (nic.attachment, nic.source, nic.mac, nic.anti_spoofing) == ("bridge", "vmbr0", "BC:24:11:2A:3B:4C", False)
    assert nic.filter == "pve-firewall missing: firewall=1 on net0, cluster firewall (cluster.fw enable: 1), guest firewall (no firewall/100.fw)"
    assert (g.nested, g.clipboard, g.memory_sharing_opt_out, g.vcpus, g.memory_kib) == (True, True, False, 2, 2048 * 1024)
    assert g.state is None and g.defaults == ["firmware (bios: seabios)"]


def test_vm_mapping_uefi_without_keys_and_v12_tpm() -> None:
    g = guest(scan(FIXTURES / "weak"), "101")
    assert (g.firmware, g.secure_boot, g.keys_enrolled, g.nested, g.clipboard) == ("uefi", False, False, True, False)
    assert [(t.kind, t.version, t.state_encrypted) for t in g.tpms] == [("emulator", "1.2", None)]
    assert g.defaults == ["tpmstate0 version (v1.2)"]
    assert [n.filter for n in g.nics] == [
        "pve-firewall missing: cluster firewall (cluster.fw enable: 1), macfilter (set to 0), ipfilter: 1 or an ipfilter-net0 IP set",
        "pve-firewall missing: cluster firewall (cluster.fw enable: 1), macfilter (set to 0), ipfilter: 1 or an ipfilter-net1 IP set",
    ]


def test_vm_mapping_hardened() -> None:
    g = guest(scan(FIXTURES / "hardened"), "110")
    assert (g.firmware, g.secure_boot, g.keys_enrolled, g.nested, g.clipboard, g.memory_sharing_opt_out) == \
        ("uefi", True, True, False, False, True)
    assert [(t.kind, t.version) for t in g.tpms] == [("emulator", "2.0")]
    assert [(n.anti_spoofing, n.filter) for n in g.nics] == [(True, "pve-firewall macfilter + ipfilter")]
    assert [(d.target, d.network) for d in g.disks] == [("efidisk0", None), ("scsi0", "rbd")]
    assert g.consoles[0].listen == [] and g.consoles[0].socket and g.devices == [] and g.defaults == []


def test_container_mapping() -> None:
    weak = scan(FIXTURES / "weak")
    docker = guest(weak, "200")
    assert docker.kind == "container" and docker.name == "docker"
    assert [(s.host_path, s.guest_tag, s.writable, s.as_root) for s in docker.shared_directories] == [
        ("/srv/data", "/data", True, False), ("/mnt/backup", "/backup", False, False)]
    legacy = guest(weak, "201")
    assert [(d.kind, d.host_id) for d in legacy.devices] == [
        ("device-node", "/dev/ttyUSB0"), ("device-node", "cgroup:c 188:* rwm"), ("device-node", "/dev/net")]
    assert [(s.host_path, s.writable, s.as_root) for s in legacy.shared_directories] == [("/var/lib/shared", True, True)]
    assert legacy.defaults == ["unprivileged (0: privileged)"]
    assert legacy.nics[0].anti_spoofing is False


def test_snapshot_sections_and_pending_are_not_current() -> None:
    (vm,) = [g for g in scan(FIXTURES / "weak").nodes[0].guests if not isinstance(g, Unavailable) and g.vmid == "100"]
    assert vm.snapshots == ["before-upgrade"]
    assert vm.config["cores"] == "2" and vm.config["memory"] == "2048" and vm.config["args"] == "-vnc 0.0.0.0:77"
    assert vm.pending == {"memory": "4096"}
    assert vm.config["x-future-option"] == "something-new"  # a newer key: kept, not an error
    assert "description" not in vm.config
    assert vm.pid_file is True


def test_vzdump_coverage() -> None:
    assert vzdump_coverage(scan(FIXTURES / "weak")) == {"100": [], "101": ["backup-daily"], "200": ["backup-daily"], "201": []}
    assert vzdump_coverage(scan(FIXTURES / "hardened")) == {"110": ["backup-nightly"], "210": ["backup-nightly"]}


def test_snapshot_round_trip() -> None:
    facts = scan(FIXTURES / "weak")
    assert _from_jsonable(ProxmoxFacts, to_jsonable(facts), "proxmox") == facts


def test_platform_protocol(tmp_path: pathlib.Path) -> None:
    assert (PLATFORM.name, PLATFORM.title, PLATFORM.letter, PLATFORM.checks_module) == \
        ("proxmox", "Proxmox VE", "P", "hyperward.platforms.proxmox.checks")
    assert PLATFORM.detect(Source(RootFS(str(FIXTURES / "weak"))))
    assert PLATFORM.detect(Source(RootFS(str(tree("weak", tmp_path, "db")))))
    (tmp_path / "empty").mkdir()
    assert not PLATFORM.detect(Source(RootFS(str(tmp_path / "empty"))))
    assert not PLATFORM.detect(Source(None))
    facts = PLATFORM.collect(Source(RootFS(str(tmp_path / "empty"))))
    assert facts.source == "none"
    assert all(r.status is Status.NOT_APPLICABLE for c in JUDGES for r in JUDGES[c](facts) if c != "HV-AUTH-017")


# --- bad input ---------------------------------------------------------------------------------


def test_corrupt_config_db_is_one_error_naming_it(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path, "db")
    db = root / "var/lib/pve-cluster/config.db"
    db.write_bytes(b"SQLite format 3\0" + os.urandom(4096))
    facts = scan(root)
    assert isinstance(facts.store, Unavailable) and facts.store.kind == "invalid"
    assert facts.store.path == "/var/lib/pve-cluster/config.db"
    results = list(JUDGES["HV-FW-004"](facts))
    assert [(r.status, r.resource) for r in results] == [(Status.ERROR, "/var/lib/pve-cluster/config.db")]
    assert to_guests(facts) == []


def test_config_db_with_another_schema(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path, "db")
    db = root / "var/lib/pve-cluster/config.db"
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    facts = scan(root)
    assert isinstance(facts.store, Unavailable) and "not a pmxcfs database" in facts.store.reason


def test_config_db_with_a_file_as_parent_is_refused(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "r"
    (root / "etc/pve").mkdir(parents=True)
    (root / "var/lib/pve-cluster").mkdir(parents=True)
    src = tmp_path / "src"
    (src / "nodes").mkdir(parents=True)
    (src / "datacenter.cfg").write_text("keyboard: de\n")
    build_config_db(src, root / "var/lib/pve-cluster/config.db", extra=[(500, 2, 8, "child", b"x")])
    facts = scan(root)
    assert isinstance(facts.store, Unavailable) and "parent is not a directory" in facts.store.reason


@pytest.mark.parametrize("content", [b"\x00\x01garbage\xff" * 10, b"this is not a config\n!!!\n###x\n@@@\n", b"net0: virtio=BC:24:11:"])
def test_garbage_or_truncated_guest_config(tmp_path: pathlib.Path, content: bytes) -> None:
    root = tree("weak", tmp_path)
    conf = root / "etc/pve/nodes/pve1/qemu-server/101.conf"
    conf.write_bytes(content)
    facts = scan(root)
    bad = [g for g in facts.nodes[0].guests if isinstance(g, Unavailable)]
    if content.startswith(b"net0"):
        # one valid key line: Proxmox reads it; a truncated value is not a whole-VM error
        assert bad == []
        assert guest(facts, "101").nics[0].mac == "BC:24:11:"
        return
    assert [b.path for b in bad] == ["/etc/pve/nodes/pve1/qemu-server/101.conf"]
    results = list(JUDGES["HV-ISO-027"](facts))
    assert (Status.ERROR, "/etc/pve/nodes/pve1/qemu-server/101.conf") in {(r.status, r.resource) for r in results}
    assert ("VM 100 (web)", Status.FAIL) in {(r.resource, r.status) for r in results}


def test_garbage_firewall_file(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path)
    (root / "etc/pve/firewall/cluster.fw").write_text("enable 1\nrandom words here\n")
    (root / "etc/pve/firewall/101.fw").write_bytes(b"\xff\xfe\x00")
    facts = scan(root)
    assert [(r.status, r.resource) for r in JUDGES["HV-FW-004"](facts)] == [(Status.ERROR, "/etc/pve/firewall/cluster.fw")]
    g = guest(facts, "101")
    assert g.nics[0].anti_spoofing is None and "unreadable" in (g.nics[0].filter or "")


def test_huge_files_are_not_read(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path)
    (root / "etc/pve/nodes/pve1/qemu-server/102.conf").write_text("name: big\n" + "# x\n" * 400_000)
    facts = scan(root)
    (bad,) = [g for g in facts.nodes[0].guests if isinstance(g, Unavailable)]
    assert bad.path.endswith("/102.conf") and "larger than" in bad.reason
    dbroot = tmp_path / "dbroot"
    shutil.copytree(FIXTURES / "weak", dbroot)
    (dbroot / "etc/pve/nodes/pve1/qemu-server/102.conf").write_text("name: big\n" + "# x\n" * 400_000)
    build_config_db(dbroot / "etc/pve", dbroot / "var/lib/pve-cluster/config.db")
    shutil.rmtree(dbroot / "etc/pve")
    (dbroot / "etc/pve").mkdir()
    facts = scan(dbroot)
    assert facts.source == "config.db"
    (bad,) = [g for g in facts.nodes[0].guests if isinstance(g, Unavailable)]
    assert bad.path.endswith("/102.conf") and "larger than" in bad.reason and "config.db" in bad.reason


def test_fifo_config_does_not_block(tmp_path: pathlib.Path) -> None:
    root = tree("weak", tmp_path)
    os.mkfifo(root / "etc/pve/nodes/pve1/lxc/202.conf")
    facts = scan(root)
    (bad,) = [g for g in facts.nodes[0].guests if isinstance(g, Unavailable)]
    assert bad.reason.startswith("not a regular file")


def test_unreadable_tfa_is_an_error_not_a_pass(tmp_path: pathlib.Path) -> None:
    root = tree("hardened", tmp_path)
    (root / "etc/pve/priv/tfa.cfg").write_text("{not json")
    results = list(JUDGES["HV-AUTH-019"](scan(root)))
    assert [(r.status, r.resource) for r in results] == [(Status.ERROR, "/etc/pve/priv/tfa.cfg")]


# --- parsers -------------------------------------------------------------------------------------


def test_old_tfa_line_format_and_disabled_entries() -> None:
    assert parsers.parse_tfa_cfg("root@pam:oath:eyJrZXlzIjoiWFhYIn0=\nbob@pve:u2f:e30=\n") == {"root@pam": ["totp"], "bob@pve": ["u2f"]}
    assert parsers.parse_tfa_cfg('{"users":{"a@pve":{"totp":[{"id":"t","enable":false,"entry":"x"}]}}}') == {"a@pve": []}


def test_vzdump_cron() -> None:
    text = ("# cluster wide vzdump cron schedule\n# Automatically generated file - do not edit\n\n"
            "PATH=\"/usr/sbin:/usr/bin:/sbin:/bin\"\n\n"
            "0 1 * * 6           root vzdump 100 101 --mailnotification always --quiet 1 --mode snapshot --storage local\n"
            "30 2 * * *          root vzdump --all 1 --exclude 105 --compress zstd --storage pbs\n")
    jobs = parsers.parse_vzdump_cron(text)
    assert [(j["schedule"], j["vmid"], j.get("all"), j.get("exclude"), j["storage"]) for j in jobs] == [
        ("0 1 * * 6", "100,101", None, None, "local"), ("30 2 * * *", "", "1", "105", "pbs")]


def test_corosync_explicit_crypto_and_truncation() -> None:
    totem, nodes, _ = parsers.parse_corosync("totem {\n crypto_cipher: aes256\n crypto_hash: sha1\n interface {\n linknumber: 0\n }\n}\nnodelist {\n node {\n name: a\n }\n}\n")
    assert parsers.corosync_crypto(totem) == ("aes256", "sha1") and nodes == 1
    with pytest.raises(parsers.ParseError):
        parsers.parse_corosync("totem {\n secauth: on\n")


def test_catalog_rows_match_the_judges() -> None:
    """Every Proxmox row of the project's catalog has a judge registered under its ID, with its
    primary sources, and every judge has a row."""
    from hyperward.catalog import catalog
    from hyperward.engine import registry

    rows = {cid: e for cid, e in catalog().items() if e.platform == "P"}
    assert sorted(rows) == sorted(JUDGES)
    checks = registry()
    for cid, entry in rows.items():
        assert entry.severity in ("high", "medium") and entry.sources, cid
        assert checks[cid].meta.title == entry.title and checks[cid].meta.severity.label == entry.severity
