"""Every finding from a configuration file names the file and the line of the deciding key or element,
and that line really holds it: checked against the files of the golden roots (libvirt and Proxmox)."""

from __future__ import annotations

import pathlib
import shutil

import pytest
from conftest import REPO, copy_root

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks
from hyperward.model import Status
from hyperward.parsers.domain_xml import element_lines


def _findings(root: pathlib.Path, tmp: pathlib.Path):  # type: ignore[no-untyped-def]
    facts = collect_host(str(root), baseline=str(tmp / "nb.json"), history_path=str(tmp / "h.sqlite"))
    return run_checks(facts, registry(), "multi-tenant").findings


def _roots(tmp: pathlib.Path) -> dict[str, pathlib.Path]:
    roots = {name: copy_root(name, tmp / name) for name in ("weak", "hardened")}
    for name in ("weak", "hardened"):
        target = tmp / f"pve-{name}"
        shutil.copytree(REPO / "tests/fixtures/proxmox" / name, target, symlinks=True)
        roots[f"pve-{name}"] = target
    return roots


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("locations")
    return {name: (root, _findings(root, tmp)) for name, root in _roots(tmp).items()}


def test_every_line_named_holds_the_key_or_element(scanned):
    located = 0
    for name, (root, findings) in scanned.items():
        for f in findings:
            d = f.result.details
            if not isinstance(d.get("line"), int) or not isinstance(d.get("file"), str):
                continue
            file, _, token = str(d["file"]).partition(":")  # "/etc/pve/datacenter.cfg:migration"
            path = root / file.lstrip("/")
            assert path.is_file(), (name, f.check_id, d)
            text = path.read_text().splitlines()[int(d["line"]) - 1]
            word = d.get("key") or token or str(d.get("element", "")).rsplit("/", 1)[-1].split("[", 1)[0]
            # a line taken from the message's "(FILE:LINE)" names no key: it must at least exist
            assert not word or str(word).lower() in text.lower(), (name, f.check_id, f.result.resource, d, text)
            located += 1
    assert located > 60


def test_config_file_failures_name_their_line(scanned):
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1]}
    assert by_key[("HV-ISO-001", "qemu.conf:security_driver")]["line"] == 973
    assert by_key[("HV-AUTH-001", "libvirtd.conf:auth_tcp")]["line"] == 540
    guest = by_key[("HV-TPM-003", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)")]
    assert (guest["file"], guest["element"], guest["line"]) == ("/etc/libvirt/qemu/weak-vm.xml", "os", 10)
    graphics = by_key[("HV-AUTH-010", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)")]
    assert (graphics["element"], graphics["line"]) == ("devices/graphics[1]", 88)
    # a key left at its default is in no line of the file: the file is named, no line
    default = by_key[("HV-AUTH-003", "libvirtd.conf:tls_allowed_dn_list")]
    assert default["file"] == "/etc/libvirt/libvirtd.conf" and "line" not in default


def test_proxmox_options_name_their_line(scanned):
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["pve-weak"][1] if f.status is Status.FAIL}
    fw = by_key[("HV-FW-004", "/etc/pve/firewall/cluster.fw")]
    assert (fw["key"], fw["line"]) == ("enable", 3)
    args = by_key[("HV-ISO-027", "VM 100 (web)")]
    assert (args["file"], args["element"], args["line"]) == ("/etc/pve/nodes/pve1/qemu-server/100.conf", "args", 4)
    serial = by_key[("HV-ISO-028", "VM 100 (web)")]
    assert (serial["element"], serial["line"]) == ("serial0", 19)
    migration = by_key[("HV-NET-008", "/etc/pve/datacenter.cfg:migration")]
    assert (migration["file"], migration["line"]) == ("/etc/pve/datacenter.cfg:migration", 2)


@pytest.mark.parametrize("text,expected", [
    ("<domain>\n  <os>\n    <loader/>\n  </os>\n  <devices>\n<graphics/><graphics/>\n<disk>\n<source/></disk>\n</devices>\n</domain>",
     {"os": 2, "os/loader": 3, "devices": 5, "devices/graphics": 6, "devices/graphics[1]": 6, "devices/graphics[2]": 6,
      "devices/disk": 7, "devices/disk[1]": 7, "devices/disk/source": 8, "devices/disk[1]/source": 8}),
    ("<domstatus>\n<other/>\n<domain>\n<cpu/>\n</domain>\n</domstatus>", {"cpu": 4}),
    ("<domain><unclosed></domain>", {}),
])
def test_element_lines(text, expected):
    assert element_lines(text) == expected


def test_grub_tokens_name_the_assignment_that_wrote_them(scanned):
    """The deciding line is not the file's first: mitigations=off is on /etc/default/grub line 9,
    nopti arrives through grub.d's "$GRUB_CMDLINE_LINUX nopti ..." on its line 2."""
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1]}
    label = "/etc/default/grub (with grub.d)"
    off = by_key[("HV-VULN-002", f"{label}: mitigations=off")]
    assert (off["file"], off["line"], off["key"]) == ("/etc/default/grub", 9, "mitigations")
    nopti = by_key[("HV-VULN-002", f"{label}: nopti")]
    assert (nopti["file"], nopti["line"]) == ("/etc/default/grub.d/60-performance.cfg", 2)
    running = by_key[("HV-VULN-002", "/proc/cmdline: mitigations=off")]
    assert "line" not in running and "file" not in running


def test_grub_token_lines_never_guess():
    from hyperward.parsers.cmdline import grub_token_lines

    files = [("/etc/default/grub", '# x\nGRUB_CMDLINE_LINUX=""\nGRUB_CMDLINE_LINUX_DEFAULT="quiet nopti"\n'),
             ("/etc/default/grub.d/a.cfg", 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX mitigations=off"\n'
                                           'GRUB_CMDLINE_LINUX_DEFAULT="${GRUB_CMDLINE_LINUX_DEFAULT}"\n')]
    assert grub_token_lines(files) == {"mitigations=off": ("/etc/default/grub.d/a.cfg", 1),
                                       "quiet": ("/etc/default/grub", 3), "nopti": ("/etc/default/grub", 3)}
    # a reset forgets the earlier line; a token written on two lines, or glued to a variable, gets none
    reset = [("/g", 'GRUB_CMDLINE_LINUX="nopti"\nGRUB_CMDLINE_LINUX="pti=off"\nGRUB_CMDLINE_LINUX_DEFAULT="nopti x$GRUB_CMDLINE_LINUX"\n')]
    assert grub_token_lines(reset) == {"pti=off": ("/g", 2), "nopti": ("/g", 3)}
    twice = [("/g", 'GRUB_CMDLINE_LINUX="nopti"\nGRUB_CMDLINE_LINUX_DEFAULT="nopti"\n')]
    assert grub_token_lines(twice) == {}


def test_accounts_sudoers_and_login_defs_name_their_line_never_the_hash(scanned):
    root, findings = scanned["weak"]
    by_key = {(f.check_id, f.result.resource): f.result.details for f in findings if f.status is Status.FAIL}
    bob = by_key[("HV-AUTH-015", "account bob")]
    assert (bob["file"], bob["line"], bob["key"]) == ("/etc/shadow", 3, "bob")
    md5 = by_key[("HV-AUTH-015", "account root")]
    assert (md5["file"], md5["line"]) == ("/etc/shadow", 1)
    toor = by_key[("HV-AUTH-015", "account toor")]
    assert (toor["file"], toor["line"]) == ("/etc/passwd", 9)
    sudo = by_key[("HV-AUTH-015", "sudo %ops")]
    assert (sudo["file"], sudo["line"]) == ("/etc/sudoers.d/90-ops", 2)
    defs = by_key[("HV-AUTH-015", "login.defs")]
    assert (defs["file"], defs["line"], defs["key"]) == ("/etc/login.defs", 294, "ENCRYPT_METHOD")
    hashes = [line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines() if len(line.split(":")[1]) > 2]
    assert hashes
    for f in findings:
        text = repr(f.result)
        assert not any(h in text for h in hashes), (f.check_id, f.result.resource)


def test_socket_mode_names_the_drop_in_line_that_set_it(scanned):
    weak = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1]}
    admin = weak[("HV-AUTH-006", "libvirtd-admin.socket")]
    assert (admin["file"], admin["line"], admin["key"]) == ("/etc/systemd/system/libvirtd-admin.socket.d/override.conf", 2, "SocketMode")
    hardened = {(f.check_id, f.result.resource): f.result.details for f in scanned["hardened"][1]}
    unit = hardened[("HV-AUTH-006", "libvirtd-admin.socket")]
    assert (unit["file"], unit["line"]) == ("/usr/lib/systemd/system/libvirtd-admin.socket", 11)


def test_systemd_key_lines_follow_drop_ins_and_resets():
    from hyperward.parsers.systemd import key_lines

    files = [("/u", "[Socket]\nListenStream=/a\nSocketMode=0600\n"), ("/d1", "[Socket]\n# x\nSocketMode=\\\n 0666\n"),
             ("/d2", "[Socket]\nListenStream=\n")]
    assert key_lines(files) == {("Socket", "SocketMode"): ("/d1", 3)}


def test_audit_watches_name_their_rule_line(scanned, tmp_path):
    hardened = {(f.check_id, f.result.resource): f.result.details for f in scanned["hardened"][1]}
    watched = hardened[("HV-IDS-002", "/etc/libvirt")]
    assert (watched["file"], watched["line"]) == ("/etc/audit/rules.d/50-libvirt.rules", 2)
    root = copy_root("hardened", tmp_path)
    (root / "etc/audit/rules.d/50-libvirt.rules").write_text(
        "## virtualization configuration\n-w /usr/bin/qemu-system-x86_64 -p wa -k qemu-binary\n-w /etc/libvirt/ -p r -k libvirt-read\n")
    found = {(f.check_id, f.result.resource): f for f in _findings(root, tmp_path)}
    read_only = found[("HV-IDS-002", "/etc/libvirt")]
    assert read_only.status is Status.FAIL and "without w" in read_only.result.message
    assert (read_only.result.details["file"], read_only.result.details["line"]) == ("/etc/audit/rules.d/50-libvirt.rules", 3)


def test_proxmox_users_acls_storage_and_corosync_name_their_line(scanned):
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["pve-weak"][1] if f.status is Status.FAIL}

    def at(check: str, resource: str) -> tuple[object, ...]:
        d = by_key[(check, resource)]
        return d["file"], d.get("line"), d.get("key")

    assert at("HV-AUTH-019", "user bob@pve") == ("/etc/pve/user.cfg", 4, "bob@pve")
    # the acl line that grants Administrator on /: directly, or through the group carol is in
    assert at("HV-AUTH-018", "user alice@pve") == ("/etc/pve/user.cfg", 11, "alice@pve")
    assert at("HV-AUTH-018", "user carol@pam") == ("/etc/pve/user.cfg", 12, "@admins")
    assert at("HV-AUTH-018", "token root@pam!backup") == ("/etc/pve/user.cfg", 7, "root@pam!backup")
    assert at("HV-BAK-007", "storage pbs-offsite") == ("/etc/pve/storage.cfg", 10, "pbs-offsite")
    # no crypto_* keys: secauth: off (line 33 of the totem block) decides
    assert at("HV-NET-009", "/etc/pve/corosync.conf:totem") == ("/etc/pve/corosync.conf", 33, "secauth")
    # no /etc/default/pveproxy at all: the file is named, no line
    assert at("HV-AUTH-017", "/etc/default/pveproxy") == ("/etc/default/pveproxy", None, None)


def test_pveproxy_and_explicit_corosync_keys_name_their_line(tmp_path):
    root = tmp_path / "pve"
    shutil.copytree(REPO / "tests/fixtures/proxmox/weak", root, symlinks=True)
    (root / "etc/default").mkdir(parents=True, exist_ok=True)
    (root / "etc/default/pveproxy").write_text('# restrict the API\n\nALLOW_FROM="10.0.0.0/8"\n')
    corosync = root / "etc/pve/corosync.conf"
    corosync.write_text(corosync.read_text().replace("  secauth: off\n", "  crypto_cipher: aes256\n  crypto_hash: none\n"))
    found = {(f.check_id, f.result.resource): f.result.details for f in _findings(root, tmp_path) if f.status is Status.FAIL}
    proxy = found[("HV-AUTH-017", "/etc/default/pveproxy")]
    assert (proxy["file"], proxy["line"], proxy["key"]) == ("/etc/default/pveproxy", 3, "ALLOW_FROM")
    totem = found[("HV-NET-009", "/etc/pve/corosync.conf:totem")]
    assert (totem["line"], totem["key"]) == (34, "crypto_hash")


def test_vmx_findings_name_the_key_line(tmp_path):
    """The key a problem names, at the line VMware uses (the last of a key given twice); a
    problem about no key (the hardware version's wording) names the .vmx alone."""
    root = tmp_path / "esxi"
    shutil.copytree(REPO / "tests/fixtures/esxi/weak", root, symlinks=True)
    ds = "/vmfs/volumes/650b3f2e-1c7d9a40-5b2e-0050569a1b2c"
    found = {(f.check_id, f.result.resource): f.result.details for f in _findings(root, tmp_path) if f.status is Status.FAIL}
    web = f"web01 ({ds}/web01/web01.vmx)"
    disk = found[("HV-ISO-104", web)]
    assert (disk["file"], disk["line"], disk["key"]) == (f"{ds}/web01/web01.vmx", 18, "scsi0:1.mode")
    assert (found[("HV-ISO-103", web)]["line"], found[("HV-ISO-103", web)]["key"]) == (60, "mks.enable3d")
    twice = found[("HV-ISO-100", f"db01 Caf\u00e9 ({ds}/db01/db01.vmx)")]
    assert (twice["line"], twice["key"]) == (12, "isolation.tools.paste.disable")
    old = found[("HV-ISO-106", web)]
    assert old["file"] == f"{ds}/web01/web01.vmx" and "line" not in old
    for (check, _), d in found.items():
        if isinstance(d.get("line"), int) and str(d.get("file", "")).endswith(".vmx"):
            text = (root / str(d["file"]).lstrip("/")).read_bytes().decode("latin-1").splitlines()[int(d["line"]) - 1]
            assert str(d["key"]) in text.lower(), (check, d, text)


def test_a_guest_finding_names_the_element_that_decided_it(tmp_path):
    """Two <graphics>: the first a SPICE socket (fine), the second VNC on every address. The
    finding names the second, by its XPath position and its own line, not the first of its kind."""
    root = copy_root("hardened", tmp_path)
    xml = root / "run/libvirt/qemu/hardened-vm.xml"  # running: the live definition is judged
    lines = xml.read_text().splitlines(keepends=True)
    end = next(n for n, line in enumerate(lines) if "</graphics>" in line)
    lines.insert(end + 1, "    <graphics type='vnc' port='5901' listen='0.0.0.0'>\n      <listen type='address' address='0.0.0.0'/>\n    </graphics>\n")
    xml.write_text("".join(lines))
    found = {(f.check_id, f.result.resource): f for f in _findings(root, tmp_path)}
    console = next(f for (check, _), f in found.items() if check == "HV-AUTH-010" and f.status is Status.FAIL and "hardened-vm" in f.result.resource)
    d = console.result.details
    assert (d["file"], d["element"], d["line"]) == ("/run/libvirt/qemu/hardened-vm.xml", "devices/graphics[2]", end + 2)
    assert "type='vnc'" in lines[int(d["line"]) - 1]


def test_proxmox_console_names_the_key_that_opened_it(scanned):
    """web (100) has vga: (line 24) and args: -vnc 0.0.0.0:77 (line 4): the open VNC comes from args."""
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["pve-weak"][1] if f.status is Status.FAIL}
    vnc = by_key[("HV-AUTH-010", "web (100)")]
    assert (vnc["file"], vnc["element"], vnc["line"]) == ("/etc/pve/nodes/pve1/qemu-server/100.conf", "args", 4)
    nic = by_key[("HV-NET-001", "win11 (101)")]
    assert nic["element"] == "net0"
    # legacy (201) has two lxc.mount.entry lines: /dev/net (line 11, a device) and the writable
    # /var/lib/shared bind mount (line 12) that HV-ISO-014 is about
    share = by_key[("HV-ISO-014", "legacy (201)")]
    assert (share["element"], share["line"]) == ("lxc.mount.entry[2]", 12)


def test_host_side_domain_findings_name_the_deciding_disk_and_interface(scanned):
    """weak-vm's first disk is a plain file; the NBD disk without TLS is the fourth, its <source>
    on line 46; the backing file outside the pools is the first disk's <backingStore> (line 28)."""
    by_key = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1] if f.status is Status.FAIL}
    vm = "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"
    nbd = by_key[("HV-AUTH-012", vm)]
    assert (nbd["element"], nbd["line"]) == ("devices/disk[4]/source", 46)
    backing = by_key[("HV-VULN-003", vm)]
    assert (backing["element"], backing["line"]) == ("devices/disk[1]/backingStore", 28)
    trunk = by_key[("HV-NET-004", vm)]
    assert (trunk["element"], trunk["line"]) == ("devices/interface[1]/vlan", 73)
    raw = by_key[("HV-ISO-015", vm)]
    assert (raw["element"], raw["line"]) == ("devices/disk[3]", 39)


def test_firewall_findings_name_the_deciding_rule_logically(scanned, tmp_path):
    """nft -j gives handles (new on every reload) and no lines: the location is the ruleset, the
    chain and the rule's position in it, or its policy."""
    weak = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1]}
    assert {k: weak[("HV-FW-001", "input")][k] for k in ("ruleset", "chain", "rule")} == {
        "ruleset": "nftables", "chain": "inet filter input", "rule": "policy"}
    root = copy_root("hardened", tmp_path)
    conf = root / "etc/nftables.conf"
    conf.write_text(conf.read_text().replace('\t\tiifname "lo" accept\n', '\t\tiifname "lo" accept\n\t\ttcp dport 65000 accept\n'))
    found = {(f.check_id, f.result.resource): f for f in _findings(root, tmp_path)}
    opened = found[("HV-FW-001", "input")]
    assert opened.status is Status.FAIL and "rule 4 of chain inet filter input" in opened.result.message
    assert {k: opened.result.details[k] for k in ("ruleset", "chain", "rule")} == {
        "ruleset": "nftables", "chain": "inet filter input", "rule": "4"}


def test_password_length_names_the_rule_or_setting_that_decided(scanned, tmp_path):
    hardened = {(f.check_id, f.result.resource): f.result.details for f in scanned["hardened"][1]}
    conf = hardened[("HV-AUTH-015", "password policy")]
    assert (conf["file"], conf["line"], conf["key"]) == ("/etc/security/pwquality.conf", 82, "minlen")
    weak = {(f.check_id, f.result.resource): f.result.details for f in scanned["weak"][1]}
    # libpwquality's default, and no pwquality.conf to name: no location rather than a missing file
    assert "file" not in weak[("HV-AUTH-015", "password policy")]
    assert weak[("HV-AUTH-014", "sshd")]["file"] == "/etc/pam.d/sshd"
    root = copy_root("hardened", tmp_path)
    (root / "etc/security/pwquality.conf.d").mkdir(exist_ok=True)
    (root / "etc/security/pwquality.conf.d/50-short.conf").write_text("# for the kiosk accounts\nminlen = 9\n")
    found = {(f.check_id, f.result.resource): f.result for f in _findings(root, tmp_path)}
    short = found[("HV-AUTH-015", "password policy")]
    assert short.status is Status.FAIL
    assert (short.details["file"], short.details["line"]) == ("/etc/security/pwquality.conf.d/50-short.conf", 2)
    pam = root / "etc/pam.d/common-password"
    pam.write_text(pam.read_text().replace("pam_pwquality.so retry=3", "pam_pwquality.so retry=3 minlen=10"))
    found = {(f.check_id, f.result.resource): f.result for f in _findings(root, tmp_path)}
    argument = found[("HV-AUTH-015", "password policy")]
    assert (argument.details["file"], argument.details["line"], argument.details["key"]) == ("/etc/pam.d/common-password", 25, "pam_pwquality")
