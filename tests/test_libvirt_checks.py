"""Per-check variants for the libvirt/QEMU checks, beyond the golden roots: one real file
changed on the hardened root (or the weak one), and the exact failing resources."""

from __future__ import annotations

import os
import pathlib

import pytest

from hyperward.model import Severity, Status

from conftest import apply, copy_root, failing, scan, statuses

HVM = "hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)"
SEV = "sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)"
DOMAIN = "etc/libvirt/qemu/hardened-vm.xml"
LIVE = "run/libvirt/qemu/hardened-vm.xml"
QEMU_CONF = "etc/libvirt/qemu.conf"
LIBVIRTD_CONF = "etc/libvirt/libvirtd.conf"


def _edit(root: pathlib.Path, rel: str, old: str, new: str) -> None:
    path = root / rel
    text = path.read_text()
    assert old in text, f"{old!r} not in {rel}"
    path.write_text(text.replace(old, new))


def _edit_domain(root: pathlib.Path, old: str, new: str) -> None:
    """The hardened guest runs: its live status XML is what libvirt (and hyperward) judge."""
    _edit(root, DOMAIN, old, new)
    _edit(root, LIVE, old, new)


def _append(root: pathlib.Path, rel: str, text: str) -> None:
    with open(root / rel, "a") as handle:
        handle.write(text)


DOMAIN_CASES = [
    ("seclabel-none", "HV-ISO-003", "<seclabel type='dynamic' model='apparmor' relabel='yes'/>", "<seclabel type='none' model='apparmor'/>", {HVM}),
    ("dac-root-label", "HV-ISO-003", "<seclabel type='dynamic' model='dac' relabel='yes'/>", "<seclabel type='static' model='dac' relabel='yes'><label>+0:+0</label></seclabel>", {HVM}),
    ("share-etc", "HV-ISO-014", "<source dir='/srv/guest-share/hardened-vm'/>", "<source dir='/etc'/>", {HVM}),
    ("share-writable", "HV-ISO-014", "<target dir='share'/>\n      <readonly/>", "<target dir='share'/>", {HVM}),
    ("rawio-lun", "HV-ISO-015", "<disk type='file' device='disk'>", "<disk type='block' device='lun' rawio='yes'><source dev='/dev/sdb'/><target dev='sdb' bus='scsi'/></disk>\n    <disk type='file' device='disk'>", {HVM}),
    ("host-root-disk", "HV-ISO-015", "<disk type='file' device='disk'>", "<disk type='block' device='disk'><source dev='/dev/mapper/vg0-root'/><target dev='vdz' bus='virtio'/></disk>\n    <disk type='file' device='disk'>", {HVM}),
    ("qemu-commandline", "HV-ISO-017", "<domain type='kvm'", "<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0' type='kvm'", set()),
    ("floppy", "HV-ISO-018", "<controller type='usb'", "<disk type='file' device='floppy'><source file='/var/lib/libvirt/images/f.img'/><target dev='fda' bus='fdc'/></disk>\n    <controller type='usb'", {HVM}),
    ("e1000", "HV-ISO-018", "<model type='virtio'/>\n      <filterref", "<model type='e1000'/>\n      <filterref", {HVM}),
    ("dumpcore", "HV-ISO-019", "<memory unit='KiB'>4194304</memory>", "<memory dumpCore='on' unit='KiB'>4194304</memory>", {HVM}),
    ("locked-no-limit", "HV-ISO-020", "<memtune>\n    <hard_limit unit='KiB'>5242880</hard_limit>\n  </memtune>", "", {HVM}),
    ("spice-clipboard", "HV-ISO-026", "<clipboard copypaste='no'/>", "", {HVM}),
    ("redir-allow-all", "HV-ISO-026", "<usbdev allow='no'/>", "<usbdev allow='yes'/>", {HVM}),
    # libvirt refuses enrolled-keys without secure-boot: both go
    ("no-secure-boot", "HV-TPM-003", "<feature enabled='yes' name='enrolled-keys'/>\n      <feature enabled='yes' name='secure-boot'/>",
     "<feature enabled='no' name='enrolled-keys'/>\n      <feature enabled='no' name='secure-boot'/>", {HVM}),
    ("no-enrolled-keys", "HV-TPM-003", "<feature enabled='yes' name='enrolled-keys'/>", "<feature enabled='no' name='enrolled-keys'/>", {HVM}),
    ("smm-off", "HV-TPM-004", "<smm state='on'/>", "<smm state='off'/>", {HVM}),
    ("no-vtpm", "HV-TPM-005", "<tpm model='tpm-crb'>\n      <backend type='emulator' version='2.0'>\n        <encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/>\n      </backend>\n    </tpm>", "", {HVM}),
    ("vtpm-unencrypted", "HV-TPM-006", "<encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/>", "", {HVM}),
    ("vmx-required", "HV-NEST-002", "<feature policy='disable' name='vmx'/>", "<feature policy='require' name='vmx'/>", {HVM}),
    ("passthrough-nested-off", "HV-NEST-002", "<cpu mode='host-model' check='partial'>\n    <feature policy='disable' name='vmx'/>", "<cpu mode='host-passthrough' check='none'>", set()),
    ("no-filterref", "HV-NET-001", "<filterref filter='clean-traffic'>\n        <parameter name='IP' value='192.168.122.15'/>\n      </filterref>", "", {HVM}),
    ("filter-without-antispoof", "HV-NET-001", "filter='clean-traffic'", "filter='allow-arp'", {HVM}),
    ("undefined-filter", "HV-NET-001", "filter='clean-traffic'", "filter='site-default'", {HVM}),
    ("vlan-trunk", "HV-NET-004", "<model type='virtio'/>\n      <filterref", "<vlan trunk='yes'><tag id='10'/></vlan>\n      <model type='virtio'/>\n      <filterref", {HVM}),
    ("trust-rx", "HV-NET-005", "<interface type='network'>", "<interface type='network' trustGuestRxFilters='yes'>", {HVM}),
    ("vnc-any-address", "HV-AUTH-010", "<listen type='socket'/>", "<listen type='address' address='0.0.0.0'/>", {HVM}),
    ("vnc-loopback", "HV-AUTH-010", "<listen type='socket'/>", "<listen type='address' address='127.0.0.1'/>", set()),
    ("serial-tcp", "HV-AUTH-011", "<serial type='pty'>", "<serial type='tcp'><source mode='bind' host='0.0.0.0' service='4555'/><protocol type='raw'/></serial>\n    <serial type='pty'>", {HVM}),
    ("serial-tcp-loopback", "HV-AUTH-011", "<serial type='pty'>", "<serial type='tcp'><source mode='bind' host='127.0.0.1' service='4555'/></serial>\n    <serial type='pty'>", set()),
    ("rbd-no-auth", "HV-AUTH-012", "<auth username='libvirt'>\n        <secret type='ceph' uuid='2ec115d7-3a88-3ceb-bc12-0ac909a6fd87'/>\n      </auth>", "", {HVM}),
    ("rbd-no-luks", "HV-BAK-005", "<encryption format='luks' engine='librbd'>\n          <secret type='passphrase' uuid='f52a81b2-424e-490c-823d-6bd4235bc572'/>\n        </encryption>", "", {HVM}),
    ("backing-outside-pools", "HV-VULN-003", "<target dev='vda' bus='virtio'/>", "<backingStore type='file'><format type='qcow2'/><source file='/tmp/base.qcow2'/></backingStore>\n      <target dev='vda' bus='virtio'/>", {HVM}),
    ("tcg-guest", "HV-VULN-005", "<domain type='kvm'", "<domain type='qemu'", {HVM}),
    ("spec-ctrl-off", "HV-SIDE-007", "<feature policy='disable' name='vmx'/>", "<feature policy='disable' name='vmx'/>\n    <feature policy='disable' name='ssbd'/>", {HVM}),
    ("no-nosharepages-ksm-on", "HV-SIDE-005", "<nosharepages/>", "", set()),
]


@pytest.mark.parametrize("name,check_id,old,new,expected", DOMAIN_CASES, ids=[c[0] for c in DOMAIN_CASES])
def test_domain_variant(tmp_path, name, check_id, old, new, expected):
    root = copy_root("hardened", tmp_path)
    _edit_domain(root, old, new)
    if name == "qemu-commandline":
        _edit_domain(root, "</devices>", "</devices>\n  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>")
        expected = {HVM}
    if name == "passthrough-nested-off":
        assert failing(scan(root, only=[check_id]), check_id) == set()
        (root / "sys/module/kvm_intel/parameters/nested").write_text("Y\n")
        expected = {HVM}
    if name == "no-nosharepages-ksm-on":
        (root / "sys/kernel/mm/ksm/run").write_text("1\n")
        expected = {"ksm", HVM}
    report = scan(root, only=[check_id])
    assert failing(report, check_id) == expected
    assert not [f for f in report.findings if f.status is Status.ERROR]


CONFIG_CASES = [
    ("qemu-user-plus-zero", "HV-ISO-005", QEMU_CONF, 'user = "+0"\n', {"qemu.conf:user"}),
    ("seccomp-off", "HV-ISO-006", QEMU_CONF, "seccomp_sandbox = 0\n", {"qemu.conf:seccomp_sandbox"}),
    ("extra-device", "HV-ISO-007", QEMU_CONF, 'cgroup_device_acl = [ "/dev/null", "/dev/kvm", "/dev/vfio/vfio", "/dev/sdb" ]\n', {"qemu.conf:cgroup_device_acl"}),
    ("relaxed-acs", "HV-ISO-013", QEMU_CONF, "relaxed_acs_check = 1\n", {"qemu.conf:relaxed_acs_check"}),
    ("stdio-file", "HV-ISO-020", QEMU_CONF, 'stdio_handler = "file"\n', {"qemu.conf:stdio_handler"}),
    ("migration-plain", "HV-NET-007", QEMU_CONF, "migrate_tls_force = 0\n", {"qemu.conf:migrate_tls_force"}),
    ("vnc-listen-any", "HV-AUTH-010", QEMU_CONF, 'vnc_listen = "0.0.0.0"\n', {"qemu.conf:vnc_listen"}),
    ("tcp-sasl-is-fine", "HV-AUTH-001", LIBVIRTD_CONF, 'listen_tcp = 1\nauth_tcp = "sasl"\n', set()),
    ("no-verify", "HV-AUTH-002", LIBVIRTD_CONF, "tls_no_verify_certificate = 1\n", {"libvirtd.conf:tls_no_verify_certificate"}),
    # Debian's sockets are socket-activated: systemd makes them with the unit's SocketMode, the key is not used
    ("admin-perms-unused-under-activation", "HV-AUTH-006", LIBVIRTD_CONF, 'unix_sock_admin_perms = "0770"\n', set()),
    ("rw-none-0600", "HV-AUTH-005", LIBVIRTD_CONF, 'auth_unix_rw = "none"\nunix_sock_rw_perms = "0600"\n', {"libvirtd.conf:auth_unix_rw"}),
    ("no-access-driver", "HV-AUTH-008", LIBVIRTD_CONF, "access_drivers = [ ]\n", {"libvirtd.conf:access_drivers"}),
    ("audit-off", "HV-IDS-003", LIBVIRTD_CONF, "audit_level = 0\n", {"libvirtd.conf:audit_level"}),
    ("debug-log", "HV-MON-002", LIBVIRTD_CONF, "log_level = 1\n", {"libvirtd.conf:log_level"}),
]


@pytest.mark.parametrize("name,check_id,rel,appended,expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_variant(tmp_path, name, check_id, rel, appended, expected):
    root = copy_root("hardened", tmp_path)
    _append(root, rel, appended)
    assert failing(scan(root, only=[check_id]), check_id) == expected


def test_auth_none_with_socket_unit_0600_passes_but_0666_fails(hardened):
    """systemd socket activation ignores unix_sock_rw_perms: the unit's SocketMode decides."""
    _append(hardened, LIBVIRTD_CONF, 'auth_unix_rw = "none"\n')
    apply(hardened, {"etc/systemd/system/libvirtd.socket.d/10-mode.conf": "[Socket]\nSocketMode=0600\n"})
    assert failing(scan(hardened, only=["HV-AUTH-005"])) == set()
    apply(hardened, {"etc/systemd/system/libvirtd.socket.d/20-mode.conf": "[Socket]\nSocketMode=0666\n"})
    assert failing(scan(hardened, only=["HV-AUTH-005"])) == {("HV-AUTH-005", "libvirtd.conf:auth_unix_rw")}


def test_tcp_socket_unit_enabled_without_sasl_fails(hardened):
    _append(hardened, LIBVIRTD_CONF, 'auth_tcp = "none"\n')
    assert failing(scan(hardened, only=["HV-AUTH-001"])) == set()
    os.symlink("/lib/systemd/system/libvirtd-tcp.socket", hardened / "etc/systemd/system/sockets.target.wants/libvirtd-tcp.socket")
    [finding] = [f for f in scan(hardened, only=["HV-AUTH-001"]).findings if f.status is Status.FAIL]
    assert finding.result.resource == "libvirtd.conf:auth_tcp" and "libvirtd-tcp.socket is enabled" in finding.result.message


def test_defaults_are_named_as_assumed(hardened):
    [f] = [f for f in scan(hardened, only=["HV-ISO-006"]).findings if f.result.resource == "qemu.conf:seccomp_sandbox"]
    assert "default assumed" in f.result.message and "/etc/libvirt/qemu.conf does not set it" in f.result.message


def test_qemu_user_default_comes_from_the_shipped_file(hardened):
    """Debian's qemu.conf carries '#user = "libvirt-qemu"' (the build's @QEMU_USER@); without it
    upstream's default is root."""
    assert failing(scan(hardened, only=["HV-ISO-005"])) == set()
    _edit(hardened, QEMU_CONF, '#user = "libvirt-qemu"', "#")
    assert failing(scan(hardened, only=["HV-ISO-005"])) == {("HV-ISO-005", "qemu.conf:user")}


def test_console_severity_by_protection(hardened):
    _edit_domain(hardened, "<listen type='socket'/>", "<listen type='address' address='0.0.0.0'/>")
    [f] = [f for f in scan(hardened, only=["HV-AUTH-010"]).findings if f.status is Status.FAIL]
    assert f.severity is Severity.CRITICAL and "no password, no TLS" in f.result.message
    _edit_domain(hardened, "<graphics type='spice'>", "<graphics type='spice' passwd='x9!Lm2pQ'>")
    [f] = [f for f in scan(hardened, only=["HV-AUTH-010"]).findings if f.status is Status.FAIL]
    assert f.severity is Severity.MEDIUM and "password only" in f.result.message and "x9!Lm2pQ" not in f.result.message
    _edit_domain(hardened, "<graphics type='spice' passwd='x9!Lm2pQ'>", "<graphics type='spice' tlsPort='5902'>")
    _append(hardened, QEMU_CONF, "spice_tls = 1\n")
    assert failing(scan(hardened, only=["HV-AUTH-010"])) == set()


def test_root_qemu_with_passthrough_share_is_critical(hardened):
    _append(hardened, QEMU_CONF, 'user = "root"\n')
    _edit_domain(hardened, "<target dir='share'/>\n      <readonly/>", "<target dir='share'/>")
    [f] = [f for f in scan(hardened, only=["HV-ISO-014"]).findings if f.status is Status.FAIL]
    assert f.severity is Severity.CRITICAL and "passthrough with QEMU running as root" in f.result.message


def test_tpm_passthrough_is_low(hardened):
    _edit_domain(hardened, "<backend type='emulator' version='2.0'>\n        <encryption secret='6dd3e4a5-1d76-44ce-961f-f119f5aad935'/>\n      </backend>",
                 "<backend type='passthrough'><device path='/dev/tpm0'/></backend>")
    [f] = [f for f in scan(hardened, only=["HV-TPM-005"]).findings if f.status is Status.FAIL]
    assert f.result.resource == HVM and f.severity is Severity.LOW


def test_iommu_group_shared_with_a_nic(hardened):
    group = hardened / "sys/kernel/iommu_groups/7/devices"
    os.symlink("../../../../devices/pci0000:00/0000:03:00.1", group / "0000:03:00.1")
    apply(hardened, {"sys/bus/pci/devices/0000:03:00.1/class": "0x020000\n"})
    [f] = [f for f in scan(hardened, only=["HV-ISO-013"]).findings if f.status is Status.FAIL]
    assert f.result.resource == HVM and "0000:03:00.0 shares IOMMU group 7 with 0000:03:00.1" in f.result.message


def test_shared_svirt_label_fails_both_processes(tmp_path):
    root = copy_root("hardened", tmp_path)
    label = "system_u:system_r:svirt_t:s0:c12,c345"
    apply(root, {"proc/2345/attr/current": label + "\n"})
    import shutil

    shutil.copytree(root / "proc/2345", root / "proc/2346", symlinks=True)
    apply(root, {"proc/2346/cmdline": (root / "proc/2346/cmdline").read_text().replace("guest=hardened-vm", "guest=sev-vm")})
    assert failing(scan(root, only=["HV-ISO-004"])) == {("HV-ISO-004", "hardened-vm (pid 2345)"), ("HV-ISO-004", "sev-vm (pid 2346)")}


def test_proxmox_qemu_is_managed(tmp_path):
    root = copy_root("hardened", tmp_path)
    apply(root, {"run/libvirt/qemu/hardened-vm.pid": None, "proc/2345/cgroup": "0::/qemu.slice/101.scope\n"})
    report = scan(root, only=["HV-IDS-005"])
    assert statuses(report, "HV-IDS-005") == {"hardened-vm (pid 2345)": Status.PASS}
    assert "proxmox" in report.findings[0].result.message


def test_amd_cross_thread_rsb(tmp_path):
    root = copy_root("hardened", tmp_path)
    cpuinfo = (root / "proc/cpuinfo").read_text().replace("GenuineIntel", "AuthenticAMD").replace("cpu family\t: 6", "cpu family\t: 23")
    apply(root, {"proc/cpuinfo": cpuinfo, "sys/devices/system/cpu/smt/control": "on\n"})
    args = (root / "proc/2345/cmdline").read_text()
    apply(root, {"proc/2345/cmdline": args + "-overcommit\0mem-lock=off,cpu-pm=on\0"})
    assert failing(scan(root, only=["HV-SIDE-006"])) == {("HV-SIDE-006", "hardened-vm (pid 2345)")}
    apply(root, {"sys/module/kvm/parameters/mitigate_smt_rsb": "Y\n"})
    assert failing(scan(root, only=["HV-SIDE-006"])) == set()


def test_garbage_config_is_an_error_never_a_pass(hardened):
    apply(hardened, {QEMU_CONF: "user = \"libvirt-qemu\nthis is not = = libvirt syntax\n"})
    report = scan(hardened, only=["HV-ISO-002", "HV-ISO-006", "HV-NET-007"])
    assert {f.status for f in report.findings if f.result.resource.startswith(("qemu.conf", "/etc/libvirt/qemu.conf"))} == {Status.ERROR}
    assert all("/etc/libvirt/qemu.conf" in f.result.message for f in report.findings if f.status is Status.ERROR)


def test_no_libvirt_means_not_applicable_not_errors(hardened):
    import shutil

    shutil.rmtree(hardened / "etc/libvirt")
    shutil.rmtree(hardened / "run/libvirt")
    report = scan(hardened)
    libvirt_checks = {f.check_id for f in report.findings if f.result.message.startswith("libvirt is not installed")}
    assert {"HV-ISO-001", "HV-ISO-003", "HV-AUTH-005", "HV-NET-002", "HV-IDS-003"} <= libvirt_checks
    assert not [f for f in report.findings if f.status is Status.ERROR]


def test_world_writable_state_directory_and_readable_image(hardened):
    os.chmod(hardened / "var/lib/libvirt/qemu/save", 0o777)
    os.chmod(hardened / "var/lib/libvirt/images/hardened-vm.qcow2", 0o644)
    # the memory-state directory is judged once, by HV-BAK-004 (issue 23: one fact, one verdict)
    assert failing(scan(hardened, only=["HV-ISO-009", "HV-BAK-004"])) == {
        ("HV-BAK-004", "/var/lib/libvirt/qemu/save"),
        ("HV-ISO-009", "/var/lib/libvirt/images/hardened-vm.qcow2"),
    }


RAW_SDB = ("<disk type='file' device='disk'>",
           "<disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb' bus='virtio'/></disk>\n    <disk type='file' device='disk'>")


def _iso015(report) -> list[tuple[Status, str]]:
    """The hardened guest's verdict (the root's other guest passes no block device)."""
    return [(f.status, f.result.message) for f in report.findings if f.check_id == "HV-ISO-015" and f.result.resource == HVM]


def test_raw_disk_whose_partition_the_host_mounts_fails_naming_the_partition(hardened):
    _edit_domain(hardened, *RAW_SDB)
    assert _iso015(scan(hardened, only=["HV-ISO-015"])) == [
        (Status.PASS, "host block device /dev/sdb: neither it nor a partition of it is mounted on the host")]
    _append(hardened, "proc/mounts", "/dev/sdb1 /srv/data ext4 rw,relatime 0 0\n/dev/sdba1 /srv/other ext4 rw 0 0\n")
    assert _iso015(scan(hardened, only=["HV-ISO-015"])) == [
        (Status.FAIL, "vdb: /dev/sdb is mounted on the host (its partition /dev/sdb1 on /srv/data)")]


def test_raw_disk_without_a_mount_table_is_not_applicable_with_the_reason(hardened):
    _edit_domain(hardened, *RAW_SDB)
    (hardened / "proc/mounts").unlink()
    assert _iso015(scan(hardened, only=["HV-ISO-015"])) == [
        (Status.NOT_APPLICABLE, "passes host block device /dev/sdb; whether the host mounts it is unknown (/proc/mounts: not found)")]


def test_rawio_fails_even_without_a_mount_table(hardened):
    _edit_domain(hardened, *DOMAIN_CASES[4][2:4])
    (hardened / "proc/mounts").unlink()
    assert _iso015(scan(hardened, only=["HV-ISO-015"])) == [(Status.FAIL, "sdb: rawio='yes'")]


def test_nvme_partition_of_the_root_disk(hardened):
    _edit_domain(hardened, "<disk type='file' device='disk'>",
                 "<disk type='block' device='disk'><source dev='/dev/nvme0n1'/><target dev='vdb' bus='virtio'/></disk>\n    <disk type='file' device='disk'>")
    assert _iso015(scan(hardened, only=["HV-ISO-015"])) == [
        (Status.FAIL, "vdb: /dev/nvme0n1 is mounted on the host (its partition /dev/nvme0n1p1 on /boot/efi)")]


def test_guest_nvram_readable_by_others_fails(hardened):
    nvram = hardened / "var/lib/libvirt/qemu/nvram/hardened-vm_VARS.fd"
    nvram.write_bytes(b"\0" * 64)
    nvram.chmod(0o600)
    assert failing(scan(hardened, only=["HV-ISO-009"])) == set()
    nvram.chmod(0o644)
    assert failing(scan(hardened, only=["HV-ISO-009"])) == {("HV-ISO-009", "/var/lib/libvirt/qemu/nvram/hardened-vm_VARS.fd")}


HVM_TPM = "/var/lib/libvirt/swtpm/6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69"


def _tpm006(report) -> list[tuple[Status, str]]:
    return [(f.status, f.result.message) for f in report.findings if f.check_id == "HV-TPM-006" and f.result.resource == HVM]


def test_vtpm_state_owned_by_root_when_swtpm_runs_as_tss_fails(hardened):
    """libvirt runs swtpm as tss when the host has that user (qemu_conf.c), as Debian's has."""
    assert _tpm006(scan(hardened, only=["HV-TPM-006"])) == [(Status.PASS, "")]  # no tss user: root is right
    _append(hardened, "etc/passwd", "tss:x:104:107:TPM software stack,,,:/var/lib/tpm:/bin/false\n")
    _append(hardened, "etc/group", "tss:x:107:\n")
    assert _tpm006(scan(hardened, only=["HV-TPM-006"])) == [(Status.FAIL, f"{HVM_TPM}/tpm2 owned by root, not tss (swtpm_user)")]
    os.chown(hardened / HVM_TPM.lstrip("/") / "tpm2", 104, 107)
    assert _tpm006(scan(hardened, only=["HV-TPM-006"])) == [(Status.PASS, "")]
    _append(hardened, QEMU_CONF, 'swtpm_user = "root"\n')
    assert _tpm006(scan(hardened, only=["HV-TPM-006"])) == [(Status.FAIL, f"{HVM_TPM}/tpm2 owned by tss, not root (swtpm_user)")]


def test_vtpm_directory_modes(hardened):
    os.chmod(hardened / HVM_TPM.lstrip("/"), 0o755)
    os.chmod(hardened / HVM_TPM.lstrip("/") / "tpm2", 0o750)
    assert _tpm006(scan(hardened, only=["HV-TPM-006"])) == [(
        Status.FAIL, f"{HVM_TPM} mode 0755 (0711 expected: others may enter, not list or write); {HVM_TPM}/tpm2 mode 0750 (0700 expected)")]


def test_nesting_checks_agree_when_the_host_state_is_unknown(hardened):
    """Modules not loaded and nothing configured: HV-NEST-001 cannot tell, so neither can HV-NEST-002."""
    _edit_domain(hardened, "<cpu mode='host-model' check='partial'>\n    <feature policy='disable' name='vmx'/>", "<cpu mode='host-passthrough' check='none'>")
    apply(hardened, {"sys/module/kvm_intel": None, "etc/modprobe.d/kvm-nested.conf": None})
    report = scan(hardened, only=["HV-NEST-001", "HV-NEST-002"])
    reason = "kvm_intel and kvm_amd are not loaded; no nested option in modprobe.d or the boot configuration"
    assert [(f.check_id, f.status, f.result.message) for f in report.findings if f.result.resource in ("host", HVM)] == [
        ("HV-NEST-001", Status.NOT_APPLICABLE, reason),
        ("HV-NEST-002", Status.NOT_APPLICABLE, f"cpu mode host-passthrough exposes VMX/SVM if the host enables nested; host nested state unknown: {reason}"),
    ]
    apply(hardened, {"etc/modprobe.d/kvm-nested.conf": "options kvm_intel nested=1\n"})
    assert failing(scan(hardened, only=["HV-NEST-001", "HV-NEST-002"])) == {
        ("HV-NEST-001", "kvm_intel (/etc/modprobe.d/kvm-nested.conf)"), ("HV-NEST-002", HVM)}
    apply(hardened, {"etc/modprobe.d/kvm-nested.conf": "options kvm_intel nested=0\n"})
    assert failing(scan(hardened, only=["HV-NEST-001", "HV-NEST-002"])) == set()


def test_unknown_cpu_count_and_memory_are_not_applicable(hardened):
    apply(hardened, {"proc/meminfo": None, "sys/devices/system/cpu/online": None})
    report = scan(hardened, only=["HV-ISO-020"])
    got = {f.result.resource: (f.status, f.result.message) for f in report.findings}
    assert got["memory"] == (Status.NOT_APPLICABLE, "guest memory against host RAM unknown: /proc/meminfo: not found")
    assert got[HVM] == (Status.NOT_APPLICABLE, "2 vCPUs; the host's CPU count is unknown: /sys/devices/system/cpu/online: not found")
    _edit_domain(hardened, "<memtune>\n    <hard_limit unit='KiB'>5242880</hard_limit>\n  </memtune>", "")
    assert failing(scan(hardened, only=["HV-ISO-020"])) == {("HV-ISO-020", HVM)}


def _iso007_acl(report) -> tuple[Status, str]:
    [f] = [f for f in report.findings if f.check_id == "HV-ISO-007" and f.result.resource == "qemu.conf:cgroup_device_acl"]
    return f.status, f.result.message


def test_default_device_acl_is_libvirt_9_0s(hardened):
    """libvirt 9.0's qemu.conf lists no /dev/userfaultfd; a list naming it (a later default) is not widened."""
    assert _iso007_acl(scan(hardened, only=["HV-ISO-007"])) == (Status.PASS, (
        "cgroup_device_acl = ['/dev/null', '/dev/full', '/dev/zero', '/dev/random', '/dev/urandom', '/dev/ptmx', '/dev/kvm'] "
        "(default assumed, /etc/libvirt/qemu.conf does not set it)"))
    _append(hardened, QEMU_CONF, 'cgroup_device_acl = [ "/dev/null", "/dev/kvm", "/dev/userfaultfd" ]\n')
    assert _iso007_acl(scan(hardened, only=["HV-ISO-007"]))[0] is Status.PASS
    _append(hardened, QEMU_CONF, 'cgroup_device_acl = [ "/dev/null", "/dev/kvm", "/dev/userfaultfd", "/dev/mem" ]\n')
    assert _iso007_acl(scan(hardened, only=["HV-ISO-007"])) == (Status.FAIL, (
        "cgroup_device_acl = ['/dev/null', '/dev/kvm', '/dev/userfaultfd', '/dev/mem'] (/etc/libvirt/qemu.conf): devices beyond the default set: /dev/mem"))


def test_audit_fix_names_only_what_is_set(hardened):
    """Without auditd the fix is to install it, not to remove an audit_level the file does not set."""
    status = hardened / "var/lib/dpkg/status"
    status.write_text(status.read_text().replace("Package: auditd\n", "Package: auditd-gone\n"))
    [f] = [f for f in scan(hardened, only=["HV-IDS-003"]).findings if f.status is Status.FAIL]
    assert f.remediation == "apt install auditd (dnf install audit) and systemctl enable --now auditd"
    _append(hardened, LIBVIRTD_CONF, "audit_level = 0\n")
    [f] = [f for f in scan(hardened, only=["HV-IDS-003"]).findings if f.status is Status.FAIL]
    assert f.remediation == ("remove audit_level = 0 from /etc/libvirt/libvirtd.conf (or set audit_level = 2 to refuse to start "
                             "without audit), restart the daemon; install and run auditd")


def test_tcp_listener_message_does_not_claim_what_an_offline_tree_cannot_show(hardened):
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        (hardened / f"proc/net/{proto}").unlink(missing_ok=True)
    [f] = [f for f in scan(hardened, only=["HV-AUTH-001"]).findings if f.result.resource == "libvirtd.conf:auth_tcp"]
    assert "nothing on port 16509" not in f.result.message and "listening sockets unknown: /proc/net/tcp: not found" in f.result.message


@pytest.mark.parametrize("appended,status,message", [
    ("", Status.PASS, "log_level = 3 (default assumed, /etc/libvirt/libvirtd.conf does not set it)"),
    ("log_level = 1\n", Status.FAIL, "log_level = 1 (/etc/libvirt/libvirtd.conf): debug logging of every API call"),
    ("log_level = 2\n", Status.PASS, "log_level = 2 (/etc/libvirt/libvirtd.conf)"),
])
def test_log_level_default_and_debug(hardened, appended, status, message):
    """libvirtd.conf.in: "the default log level is 3" (warnings and errors); only 1 is debug."""
    _append(hardened, "etc/libvirt/libvirtd.conf", appended)
    [f] = scan(hardened, only=["HV-MON-002"]).findings
    assert f.result.resource == "libvirtd.conf:log_level" and f.status is status and f.result.message.startswith(message), f.result.message


def test_spice_tls_port_without_spice_tls_is_not_protected(hardened):
    """qemu.conf.in: spice_tls defaults to 0, and a tlsPort is then not served with TLS."""
    _edit_domain(hardened, "<listen type='socket'/>", "<listen type='address' address='0.0.0.0'/>")
    _edit_domain(hardened, "<graphics type='spice'>", "<graphics type='spice' tlsPort='5902'>")
    assert failing(scan(hardened, only=["HV-AUTH-010"]), "HV-AUTH-010")
    _append(hardened, QEMU_CONF, "spice_tls = 1\n")
    assert failing(scan(hardened, only=["HV-AUTH-010"])) == set()
