"""Boundaries beside the golden roots: for every mode, threshold, enum and unit a check judges, the
value just inside and just outside its rule on the hardened root, with the exact verdict and the
exact failing resources. The golden roots compare two points far apart (everything hardened,
everything weak); a bug that only moves the line between them shows here.

Every domain variant is first defined through libvirt's own parser (the test driver): a table row
libvirt refuses would judge a guest no host can have."""

from __future__ import annotations

import datetime
import os
import pathlib

import pytest

from hyperward.model import Severity, Status

import libvirt_validate
from conftest import copy_root, failing, require, scan

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
    """Both the persistent definition and the running guest's live XML (the one judged), after
    libvirt itself accepted the edited definition."""
    _edit(root, DOMAIN, old, new)
    _edit(root, LIVE, old, new)
    require(libvirt_validate.available(), "python3-libvirt (libvirt's own parser is the oracle for fixture XML)")
    assert libvirt_validate.domain_error((root / DOMAIN).read_text()) is None


def _append(root: pathlib.Path, rel: str, text: str) -> None:
    with open(root / rel, "a") as handle:
        handle.write(text)


def _verdict(report, check_id: str, resource: str) -> tuple[Status, Severity] | None:
    found = [(f.status, f.severity) for f in report.findings if f.check_id == check_id and f.result.resource == resource]
    assert len(found) <= 1, found
    return found[0] if found else None


# --- HV-ISO-021 /dev/kvm: mode one bit either side, owner, group --------------------------------

KVM = [
    # mode, uid, gid (104 = kvm, 0 = root, 100 = users), failing
    (0o660, 0, 104, False),
    (0o600, 0, 104, False),
    (0o670, 0, 104, False),   # group execute on a device: nothing more to anyone outside kvm
    (0o760, 0, 104, False),
    (0o661, 0, 104, False),   # others' execute bit opens nothing on a character device
    (0o664, 0, 104, True),    # world-readable: every user can open it read-only and issue ioctls
    (0o662, 0, 104, True),
    (0o666, 0, 104, True),
    (0o660, 0, 0, False),     # group root adds nobody beyond root
    (0o660, 0, 100, True),    # group users
    (0o600, 0, 100, False),   # no group bits: the group does not matter
    (0o606, 0, 104, True),
    (0o660, 1000, 104, True),  # owned by a user
    (0o600, 64055, 104, True),  # owned by libvirt-qemu: owner access outside root
]


@pytest.mark.parametrize("mode,uid,gid,fails", KVM, ids=[f"{m:04o}-{u}:{g}" for m, u, g, _ in KVM])
def test_kvm_device(tmp_path, mode, uid, gid, fails):
    root = copy_root("hardened", tmp_path, kvm_mode=mode, kvm_gid=gid)
    os.chown(root / "dev/kvm", uid, gid)
    report = scan(root, only=["HV-ISO-021"])
    assert failing(report) == ({("HV-ISO-021", "/dev/kvm")} if fails else set())
    assert {f.status for f in report.findings} == {Status.FAIL if fails else Status.PASS}


# --- file and directory modes -----------------------------------------------------------------

IMAGES = "var/lib/libvirt/images"
HVM_TPM = "var/lib/libvirt/swtpm/6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69"
MODES = [
    # check, path under the root, mode, failing resource or None
    ("HV-ISO-009", f"{IMAGES}/hardened-vm.qcow2", 0o600, None),
    ("HV-ISO-009", f"{IMAGES}/hardened-vm.qcow2", 0o660, None),
    ("HV-ISO-009", f"{IMAGES}/hardened-vm.qcow2", 0o601, None),
    ("HV-ISO-009", f"{IMAGES}/hardened-vm.qcow2", 0o604, "/var/lib/libvirt/images/hardened-vm.qcow2"),
    ("HV-ISO-009", f"{IMAGES}/hardened-vm.qcow2", 0o602, "/var/lib/libvirt/images/hardened-vm.qcow2"),
    ("HV-ISO-009", IMAGES, 0o711, None),
    ("HV-ISO-009", IMAGES, 0o775, None),
    ("HV-ISO-009", IMAGES, 0o713, "/var/lib/libvirt/images"),
    ("HV-ISO-009", "var/lib/libvirt/qemu/nvram", 0o701, None),
    ("HV-ISO-009", "var/lib/libvirt/qemu/nvram", 0o703, "/var/lib/libvirt/qemu/nvram"),
    ("HV-TPM-006", HVM_TPM, 0o711, None),
    ("HV-TPM-006", HVM_TPM, 0o701, None),
    ("HV-TPM-006", HVM_TPM, 0o715, HVM),
    ("HV-TPM-006", HVM_TPM, 0o713, HVM),
    ("HV-TPM-006", HVM_TPM, 0o751, HVM),
    ("HV-TPM-006", HVM_TPM, 0o731, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o700, None),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o701, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o710, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o702, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o704, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o720, HVM),
    ("HV-TPM-006", f"{HVM_TPM}/tpm2", 0o740, HVM),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o700, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o711, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o701, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o770, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o702, "/var/lib/libvirt/qemu/save"),
    ("HV-BAK-004", "var/lib/libvirt/qemu/save", 0o705, "/var/lib/libvirt/qemu/save"),
    ("HV-BAK-004", "var/lib/libvirt/qemu/snapshot", 0o704, "/var/lib/libvirt/qemu/snapshot"),
    # the dump directory is HV-BAK-004's alone (issue 23: one fact, one verdict), judged as save/ is
    ("HV-BAK-004", "var/lib/libvirt/qemu/dump", 0o700, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/dump", 0o711, None),
    ("HV-BAK-004", "var/lib/libvirt/qemu/dump", 0o702, "/var/lib/libvirt/qemu/dump"),
    ("HV-BAK-004", "var/lib/libvirt/qemu/dump", 0o704, "/var/lib/libvirt/qemu/dump"),
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o600, None),
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o640, None),   # group root
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o620, None),
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o604, "/etc/pki/libvirt/private/serverkey.pem"),
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o644, "/etc/pki/libvirt/private/serverkey.pem"),
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o601, None),   # execute on a key file opens nothing
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o602, "/etc/pki/libvirt/private/serverkey.pem"),  # anyone replaces it
    ("HV-AUTH-004", "etc/pki/libvirt/private/serverkey.pem", 0o606, "/etc/pki/libvirt/private/serverkey.pem"),
]


@pytest.mark.parametrize("check_id,rel,mode,resource", MODES, ids=[f"{c}-{r.rsplit('/', 1)[-1]}-{m:04o}" for c, r, m, _ in MODES])
def test_mode(tmp_path, check_id, rel, mode, resource):
    root = copy_root("hardened", tmp_path)
    os.chmod(root / rel, mode)
    assert failing(scan(root, only=[check_id])) == ({(check_id, resource)} if resource else set())


@pytest.mark.parametrize("gid,fails", [(0, False), (110, False), (104, True), (100, True)], ids=["root", "libvirt", "kvm", "users"])
def test_server_key_group(tmp_path, gid, fails):
    """0640: the group reads the key; only root and libvirt may (libvirt's tlscerts.rst)."""
    root = copy_root("hardened", tmp_path)
    key = root / "etc/pki/libvirt/private/serverkey.pem"
    os.chown(key, 0, gid)
    os.chmod(key, 0o640)
    assert failing(scan(root, only=["HV-AUTH-004"])) == ({("HV-AUTH-004", "/etc/pki/libvirt/private/serverkey.pem")} if fails else set())


KEY_GROUP_MODES = [
    # gid (0 root, 110 libvirt, 104 kvm), mode, message of the failure or None
    (104, 0o620, "mode 0620, group kvm can replace the private key"),   # the group writes its own key in
    (104, 0o660, "mode 0660, group kvm can read the private key"),
    (104, 0o610, None),                                                 # group execute: nothing
    (104, 0o600, None),
    (110, 0o620, None),
    (110, 0o660, None),
    (0, 0o660, None),
]


@pytest.mark.parametrize("gid,mode,message", KEY_GROUP_MODES, ids=[f"{g}-{m:04o}" for g, m, _ in KEY_GROUP_MODES])
def test_server_key_group_write(tmp_path, gid, mode, message):
    """Writing the key is as good as reading it for an attacker: whoever replaces it holds the
    private half of the key the daemon serves after its next start."""
    root = copy_root("hardened", tmp_path)
    key = root / "etc/pki/libvirt/private/serverkey.pem"
    os.chown(key, 0, gid)
    os.chmod(key, mode)
    found = {f.result.resource: (f.status, f.result.message) for f in scan(root, only=["HV-AUTH-004"]).findings}
    got = found["/etc/pki/libvirt/private/serverkey.pem"]
    assert got == ((Status.FAIL, message) if message else (Status.PASS, got[1]))
    assert set(found) == {"/etc/pki/libvirt/private/serverkey.pem", "/etc/pki/libvirt/servercert.pem"}


def _certificate_expiring(delta: datetime.timedelta) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kvm01.example.net")])
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=400)).not_valid_after(now + delta).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


DAY = datetime.timedelta(days=1)
CERT_EXPIRY = [
    # time left on the certificate, status, what the message starts with (30 days is the minimum)
    (30 * DAY + datetime.timedelta(hours=1), Status.PASS, "valid until"),
    (31 * DAY, Status.PASS, "valid until"),
    (30 * DAY - datetime.timedelta(hours=1), Status.FAIL, "expires in 29 days"),
    (datetime.timedelta(hours=1), Status.FAIL, "expires in 0 days"),
    (-datetime.timedelta(hours=1), Status.FAIL, "expired"),
    (-2 * DAY, Status.FAIL, "expired"),
]


@pytest.mark.parametrize("left,status,start", CERT_EXPIRY, ids=[f"{d.total_seconds() / 3600:.0f}h" for d, _, _ in CERT_EXPIRY])
def test_certificate_expiry(hardened, left, status, start):
    (hardened / "etc/pki/libvirt/servercert.pem").write_bytes(_certificate_expiring(left))
    [finding] = [f for f in scan(hardened, only=["HV-AUTH-004"]).findings if f.result.resource == "/etc/pki/libvirt/servercert.pem"]
    assert finding.status is status and finding.result.message.startswith(start), finding.result.message
    if status is Status.PASS:
        assert finding.result.message.endswith(f"({left.days} days)")


SOCKET_PERMS = [
    ('unix_sock_admin_perms = "0700"\n', set()),
    ('unix_sock_admin_perms = "0600"\n', set()),
    ('unix_sock_admin_perms = "0710"\n', {"libvirtd.conf:unix_sock_admin_perms"}),
    ('unix_sock_admin_perms = "0701"\n', {"libvirtd.conf:unix_sock_admin_perms"}),
    ('unix_sock_admin_perms = "0720"\n', {"libvirtd.conf:unix_sock_admin_perms"}),
    ('unix_sock_admin_perms = "0702"\n', {"libvirtd.conf:unix_sock_admin_perms"}),
    ('auth_unix_ro = "none"\nunix_sock_ro_perms = "0770"\n', set()),
    ('auth_unix_ro = "none"\nunix_sock_ro_perms = "0771"\n', set()),
    ('auth_unix_ro = "none"\nunix_sock_ro_perms = "0774"\n', {"libvirtd.conf:auth_unix_ro"}),
    ('auth_unix_ro = "none"\nunix_sock_ro_perms = "0772"\n', {"libvirtd.conf:auth_unix_ro"}),
    ('auth_unix_ro = "polkit"\nunix_sock_ro_perms = "0777"\n', set()),
]


@pytest.mark.parametrize("appended,expected", SOCKET_PERMS, ids=[a.replace("\n", " ").strip() for a, _ in SOCKET_PERMS])
def test_libvirtd_socket_perms(hardened, appended, expected):
    """libvirtd.conf's socket modes are libvirtd's own only without socket activation (with it, the
    .socket units' SocketMode wins: HV-AUTH-006 judges those, tests/test_messages.py)."""
    for unit in ("libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket"):
        (hardened / "etc/systemd/system/sockets.target.wants" / unit).unlink()
    _append(hardened, LIBVIRTD_CONF, appended)
    assert failing(scan(hardened, only=["HV-AUTH-006"]), "HV-AUTH-006") == expected


# --- HV-SIDE-003: sched_core, every value libvirt allows, with SMT on -----------------------------

SCHED_CORE = [(None, True), ("none", True), ("vcpus", False), ("emulator", False), ("full", False)]


@pytest.mark.parametrize("value,fails", SCHED_CORE, ids=[str(v) for v, _ in SCHED_CORE])
def test_sched_core(hardened, value, fails):
    (hardened / "sys/devices/system/cpu/smt/control").write_text("on\n")
    if value is not None:
        _append(hardened, QEMU_CONF, f'sched_core = "{value}"\n')
    report = scan(hardened, only=["HV-SIDE-003"])
    assert failing(report) == ({("HV-SIDE-003", "smt")} if fails else set())
    assert [f.status for f in report.findings] == [Status.FAIL if fails else Status.PASS]


@pytest.mark.parametrize("control,fails", [("on", True), ("off", False), ("forceoff", False), ("notsupported", False), ("notimplemented", False)])
def test_smt_control(hardened, control, fails):
    (hardened / "sys/devices/system/cpu/smt/control").write_text(control + "\n")
    assert failing(scan(hardened, only=["HV-SIDE-003"])) == ({("HV-SIDE-003", "smt")} if fails else set())


# --- HV-AUTH-010: every listen type, TLS with and without verification, SASL, password ---------

SPICE = """<graphics type='spice'>
      <listen type='socket'/>
      <image compression='off'/>
      <clipboard copypaste='no'/>
      <filetransfer enable='no'/>
    </graphics>"""


def _vnc(listen: str, attrs: str = "") -> str:
    return f"<graphics type='vnc' port='-1' autoport='yes'{attrs}>\n      {listen}\n    </graphics>"


def _spice(listen: str, attrs: str = "") -> str:
    return f"<graphics type='spice' autoport='yes'{attrs}>\n      {listen}\n      <clipboard copypaste='no'/>\n      <filetransfer enable='no'/>\n    </graphics>"


ANY = "<listen type='address' address='0.0.0.0'/>"
CONSOLES = [
    # name, graphics element, qemu.conf lines, verdict on the hardened guest (None: pass)
    ("vnc-socket", _vnc("<listen type='socket'/>"), "", None),
    ("vnc-none", _vnc("<listen type='none'/>"), "", None),
    ("vnc-loopback", _vnc("<listen type='address' address='127.0.0.1'/>"), "", None),
    ("vnc-loopback-v6", _vnc("<listen type='address' address='::1'/>"), "", None),
    ("vnc-default-listen", _vnc(""), "", None),  # vnc_listen defaults to 127.0.0.1
    ("vnc-any", _vnc(ANY), "", Severity.CRITICAL),
    ("vnc-any-v6", _vnc("<listen type='address' address='::'/>"), "", Severity.CRITICAL),
    ("vnc-lan-address", _vnc("<listen type='address' address='10.20.0.5'/>"), "", Severity.CRITICAL),
    ("vnc-network", _vnc("<listen type='network' network='default'/>"), "", Severity.CRITICAL),
    ("vnc-password", _vnc(ANY, " passwd='Zx81!qpa'"), "", Severity.MEDIUM),
    ("vnc-tls-no-verify", _vnc(ANY), "vnc_tls = 1\nvnc_tls_x509_verify = 0\n", Severity.MEDIUM),
    ("vnc-tls-default-verify", _vnc(ANY), "vnc_tls = 1\n", Severity.MEDIUM),  # vnc_tls_x509_verify defaults to 0
    ("vnc-tls-verify", _vnc(ANY), "vnc_tls = 1\nvnc_tls_x509_verify = 1\n", None),
    ("vnc-verify-without-tls", _vnc(ANY), "vnc_tls_x509_verify = 1\n", Severity.CRITICAL),
    ("vnc-sasl", _vnc(ANY), "vnc_sasl = 1\n", None),
    ("vnc-sasl-off", _vnc(ANY), "vnc_sasl = 0\n", Severity.CRITICAL),
    ("spice-any", _spice(ANY), "", Severity.CRITICAL),
    ("spice-network", _spice("<listen type='network' network='default'/>"), "", Severity.CRITICAL),
    ("spice-tls", _spice(ANY, " tlsPort='5902'"), "spice_tls = 1\n", None),
    ("spice-tls-port-without-spice-tls", _spice(ANY, " tlsPort='5902'"), "", Severity.CRITICAL),
    ("spice-tls-without-tls-port", _spice(ANY), "spice_tls = 1\n", Severity.CRITICAL),
    ("spice-sasl", _spice(ANY), "spice_sasl = 1\n", None),
    ("spice-password", _spice(ANY, " passwd='Zx81!qpa'"), "", Severity.MEDIUM),
]


@pytest.mark.parametrize("name,graphics,conf,severity", CONSOLES, ids=[c[0] for c in CONSOLES])
def test_console(hardened, name, graphics, conf, severity):
    _edit_domain(hardened, SPICE, graphics)
    _append(hardened, QEMU_CONF, conf)
    report = scan(hardened, only=["HV-AUTH-010"])
    assert failing(report) == ({("HV-AUTH-010", HVM)} if severity else set())
    status, got_severity = _verdict(report, "HV-AUTH-010", HVM)
    assert (status, got_severity if severity else None) == ((Status.FAIL, severity) if severity else (Status.PASS, None))
    assert not [f for f in report.findings if f.status is Status.ERROR]


def test_console_listen_setting_in_qemu_conf(hardened):
    """A <graphics> without <listen> takes vnc_listen: 0.0.0.0 there exposes the guest."""
    _edit_domain(hardened, SPICE, _vnc(""))
    _append(hardened, QEMU_CONF, 'vnc_listen = "0.0.0.0"\n')
    assert failing(scan(hardened, only=["HV-AUTH-010"])) == {("HV-AUTH-010", HVM), ("HV-AUTH-010", "qemu.conf:vnc_listen")}


# --- HV-AUTH-011: chardev transports, tls yes/no/default against chardev_tls ---------------------

PTY = "<serial type='pty'>"


def _chardev(kind: str, source: str, protocol: str = "") -> str:
    return f"<serial type='{kind}'>{source}{protocol}<target port='1'/></serial>\n    {PTY}"


CHARDEVS = [
    # name, element, qemu.conf, failing
    ("tcp-bind-any", _chardev("tcp", "<source mode='bind' host='0.0.0.0' service='4555'/>"), "", True),
    ("tcp-bind-any-chardev-tls", _chardev("tcp", "<source mode='bind' host='0.0.0.0' service='4555'/>"), "chardev_tls = 1\n", False),
    ("tcp-tls-yes", _chardev("tcp", "<source mode='bind' host='0.0.0.0' service='4555' tls='yes'/>"), "", False),
    ("tcp-tls-no-overrides-chardev-tls", _chardev("tcp", "<source mode='bind' host='0.0.0.0' service='4555' tls='no'/>"), "chardev_tls = 1\n", True),
    ("tcp-chardev-tls-0", _chardev("tcp", "<source mode='bind' host='0.0.0.0' service='4555'/>"), "chardev_tls = 0\n", True),
    ("tcp-loopback", _chardev("tcp", "<source mode='bind' host='127.0.0.1' service='4555'/>"), "", False),
    ("tcp-telnet", _chardev("tcp", "<source mode='bind' host='10.20.0.5' service='4555'/>", "<protocol type='telnet'/>"), "", True),
    ("tcp-connect-remote", _chardev("tcp", "<source mode='connect' host='192.0.2.10' service='4555'/>"), "", True),
    ("udp-any", _chardev("udp", "<source mode='bind' host='0.0.0.0' service='4556'/><source mode='connect' host='192.0.2.10' service='4557'/>"), "chardev_tls = 1\n", True),
    ("udp-loopback", _chardev("udp", "<source mode='bind' host='127.0.0.1' service='4556'/><source mode='connect' host='127.0.0.1' service='4557'/>"), "", False),
    ("unix", _chardev("unix", "<source mode='bind' path='/var/lib/libvirt/qemu/hardened-vm.serial'/>"), "", False),
]


@pytest.mark.parametrize("name,element,conf,fails", CHARDEVS, ids=[c[0] for c in CHARDEVS])
def test_chardev(hardened, name, element, conf, fails):
    _edit_domain(hardened, PTY, element)
    _append(hardened, QEMU_CONF, conf)
    assert failing(scan(hardened, only=["HV-AUTH-011"])) == ({("HV-AUTH-011", HVM)} if fails else set())


# --- HV-NEST-002: cpu modes and feature policies, with the host's nested on and off -------------

HOST_MODEL = "<cpu mode='host-model' check='partial'>\n    <feature policy='disable' name='vmx'/>\n  </cpu>"


def _cpu(mode: str, features: str = "", model: str = "") -> str:
    return f"<cpu mode='{mode}' check='none'>{model}{features}</cpu>"


NESTED = [
    # name, cpu element, host nested (kvm_intel), failing
    ("host-model-vmx-disable", HOST_MODEL, "Y", False),
    ("host-model-vmx-forbid", _cpu("host-model", "<feature policy='forbid' name='vmx'/>"), "Y", False),
    ("host-model-vmx-require", _cpu("host-model", "<feature policy='require' name='vmx'/>"), "N", True),
    ("host-model-vmx-force", _cpu("host-model", "<feature policy='force' name='vmx'/>"), "N", True),
    ("host-model-vmx-optional", _cpu("host-model", "<feature policy='optional' name='vmx'/>"), "N", True),
    ("host-model-svm-require", _cpu("host-model", "<feature policy='require' name='svm'/>"), "N", True),
    ("host-model-plain", _cpu("host-model"), "Y", False),
    ("passthrough-nested-off", _cpu("host-passthrough"), "N", False),
    ("passthrough-nested-on", _cpu("host-passthrough"), "Y", True),
    ("passthrough-nested-1", _cpu("host-passthrough"), "1", True),
    ("passthrough-vmx-disable-nested-on", _cpu("host-passthrough", "<feature policy='disable' name='vmx'/>"), "Y", False),
    ("maximum-nested-on", _cpu("maximum"), "Y", True),
    ("custom-nested-on", _cpu("custom", model="<model fallback='allow'>Skylake-Server</model>"), "Y", False),
    ("custom-vmx-require", _cpu("custom", "<feature policy='require' name='vmx'/>", "<model fallback='allow'>Skylake-Server</model>"), "N", True),
]


@pytest.mark.parametrize("name,cpu,nested,fails", NESTED, ids=[c[0] for c in NESTED])
def test_nested(hardened, name, cpu, nested, fails):
    _edit_domain(hardened, HOST_MODEL, cpu)
    (hardened / "sys/module/kvm_intel/parameters/nested").write_text(nested + "\n")
    assert failing(scan(hardened, only=["HV-NEST-002"]), "HV-NEST-002") == ({HVM} if fails else set())


# --- HV-BAK-001/002: one hour inside and outside the policy, in hours and in days ------------------

def _directory_repos(tmp_path: pathlib.Path, guest_age: datetime.timedelta, host_age: datetime.timedelta, hours: int, days: int) -> pathlib.Path:
    """Two real directory repositories (virtnbdbackup's layout: one entry per guest; a staging copy
    ending in /etc/libvirt) whose entries' modification times are the given ages before now."""
    guests, staging = tmp_path / "guests", tmp_path / "host" / "etc"
    now = datetime.datetime.now(datetime.UTC).timestamp()
    for entry, age in ((guests / "hardened-vm", guest_age), (guests / "sev-vm", guest_age), (staging / "libvirt", host_age)):
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_bytes(b"\0")
        os.utime(entry, (now - age.total_seconds(), now - age.total_seconds()))
    config = tmp_path / "config.toml"
    config.write_text(f'[backups]\nguest_max_age_hours = {hours}\nhost_max_age_days = {days}\n'
                      f'[[backups.repository]]\nkind = "directory"\nlocation = "{guests}"\n'
                      f'[[backups.repository]]\nkind = "directory"\nlocation = "{staging}"\n')
    return config


def _backup_statuses(root: pathlib.Path, config: pathlib.Path) -> dict[tuple[str, str], Status]:
    from hyperward.collect import collect_host
    from hyperward.config import load_config
    from hyperward.engine import registry, run_checks, select

    cfg = load_config(str(config))
    report = run_checks(collect_host(str(root), backups=cfg.backups), select(registry(), ["HV-BAK-001", "HV-BAK-002"]), "multi-tenant")
    return {(f.check_id, f.result.resource): f.status for f in report.findings}


H = datetime.timedelta(hours=1)
BACKUP_AGES = [
    # guest_max_age_hours, host_max_age_days, age of hardened-vm's entry, of etc-libvirt's, HVM fails, host fails
    (24, 7, 23 * H, 7 * 24 * H - H, False, False),
    (24, 7, 25 * H, 7 * 24 * H + H, True, True),
    (2, 1, 1 * H, 23 * H, False, False),
    (2, 1, 3 * H, 25 * H, True, True),
    (48, 3, 47 * H, 71 * H, False, False),
    (48, 3, 49 * H, 73 * H, True, True),
]


@pytest.mark.parametrize("hours,days,guest_age,host_age,guest_fails,host_fails", BACKUP_AGES,
                         ids=[f"{h}h-{d}d-{g / H:.0f}h-{a / H:.0f}h" for h, d, g, a, _, _ in BACKUP_AGES])
def test_backup_age(hardened, tmp_path, hours, days, guest_age, host_age, guest_fails, host_fails):
    config = _directory_repos(tmp_path, guest_age, host_age, hours, days)
    got = _backup_statuses(hardened, config)
    assert got == {
        ("HV-BAK-002", HVM): Status.FAIL if guest_fails else Status.PASS,
        ("HV-BAK-002", SEV): Status.FAIL if guest_fails else Status.PASS,
        ("HV-BAK-001", "host configuration"): Status.FAIL if host_fails else Status.PASS,
    }


# --- HV-VULN-001: installed == fixed, one revision below and above ------------------------------

QEMU_VERSION = "Version: 1:7.2+dfsg-7+deb12u18+b3"
# CVE-2025-21901 is fixed in 1:7.2+dfsg-7+deb12u12 (tests/fixtures/advisories), CVE-2024-7409 in deb12u8
ADVISORY_VERSIONS = [
    ("1:7.2+dfsg-7+deb12u12", set()),
    ("1:7.2+dfsg-7+deb12u12+b1", set()),
    ("1:7.2+dfsg-7+deb12u13", set()),
    ("1:7.2+dfsg-7+deb12u11", {"CVE-2025-21901 qemu"}),
    ("1:7.2+dfsg-7+deb12u12~1", {"CVE-2025-21901 qemu"}),
    ("1:7.2+dfsg-7+deb12u8", {"CVE-2025-21901 qemu"}),
    ("1:7.2+dfsg-7+deb12u7", {"CVE-2025-21901 qemu", "CVE-2024-7409 qemu"}),
    ("7.2+dfsg-7+deb12u99", {"CVE-2025-21901 qemu", "CVE-2024-7409 qemu"}),  # epoch 0 sorts below epoch 1
]


@pytest.mark.parametrize("version,expected", ADVISORY_VERSIONS, ids=[v for v, _ in ADVISORY_VERSIONS])
def test_advisory_fixed_version(hardened, version, expected):
    _edit(hardened, "var/lib/dpkg/status", QEMU_VERSION, f"Version: {version}")
    assert failing(scan(hardened, only=["HV-VULN-001"]), "HV-VULN-001") == expected


# --- HV-VULN-005: domain type and machine type against QEMU's security support -----------------

LEGACY_VM = "legacy-vm (a1b2c3d4-e5f6-4789-8abc-def012345678)"
MACHINES = [
    ("kvm", "pc-i440fx-7.2", False), ("kvm", "pc-q35-7.2", False), ("kvm", "pc", False), ("kvm", "q35", False),
    ("kvm", "isapc", True), ("qemu", "pc-i440fx-7.2", True),
]


@pytest.mark.parametrize("kind,machine,fails", MACHINES, ids=[f"{k}-{m}" for k, m, _ in MACHINES])
def test_machine_type(weak, kind, machine, fails):
    rel = "etc/libvirt/qemu/legacy-vm.xml"
    _edit(weak, rel, "<domain type='kvm'>", f"<domain type='{kind}'>")
    _edit(weak, rel, "machine='pc-i440fx-7.2'", f"machine='{machine}'")
    require(libvirt_validate.available(), "python3-libvirt")
    assert libvirt_validate.domain_error((weak / rel).read_text()) is None
    weak_vm = "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"  # TCG: fails whatever legacy-vm does
    assert failing(scan(weak, only=["HV-VULN-005"]), "HV-VULN-005") == {weak_vm, *([LEGACY_VM] if fails else [])}


# --- HV-AUTH-014: a PAM service file that is absent ------------------------------------------

def test_missing_pam_files_say_why(hardened):
    """No /etc/pam.d/sudo: sudo is not installed, nothing to judge. No /etc/pam.d/sshd while sshd
    is: the stack is unknown (sshd falls back to 'other'), said as such."""
    from conftest import apply

    apply(hardened, {"etc/pam.d/sudo": None})
    got = [(f.result.resource, f.status, f.result.message) for f in scan(hardened, only=["HV-AUTH-014"]).findings]
    assert got == [("sshd", Status.PASS, "AuthenticationMethods publickey,keyboard-interactive; PAM: pam_google_authenticator"),
                   ("sudo", Status.NOT_APPLICABLE, "/etc/pam.d/sudo: not found (sudo not installed)")]
    apply(hardened, {"etc/pam.d/sshd": None})
    got = [(f.result.resource, f.status, f.result.message) for f in scan(hardened, only=["HV-AUTH-014"]).findings]
    assert got[0] == ("sshd", Status.NOT_APPLICABLE, "/etc/pam.d/sshd: not found")


# --- HV-BAK-004: saved-state files, one bit either side of 0600 ---------------------------------

@pytest.mark.parametrize("mode,fails", [(0o600, False), (0o400, False), (0o640, True), (0o620, True), (0o610, True), (0o604, True), (0o601, True)],
                         ids=lambda v: f"{v:04o}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
def test_saved_state_file_mode(hardened, mode, fails):
    image = hardened / "var/lib/libvirt/qemu/save/hardened-vm.save"
    image.write_bytes(b"LibvirtQemudSave" + b"\0" * 48)
    os.chmod(image, mode)
    assert failing(scan(hardened, only=["HV-BAK-004"])) == ({("HV-BAK-004", "/var/lib/libvirt/qemu/save/hardened-vm.save")} if fails else set())


# --- HV-AUTH-006: the daemon's own sockets under /run/libvirt -------------------------------------

def _socket(path: pathlib.Path, mode: int) -> None:
    import socket

    path.parent.mkdir(parents=True, exist_ok=True)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
    os.chmod(path, mode)


@pytest.mark.parametrize("admin_mode,fails", [(0o600, False), (0o700, False), (0o660, True), (0o602, True)], ids=lambda v: f"{v:04o}" if not isinstance(v, bool) else str(v))
def test_admin_socket_mode(hardened, admin_mode, fails):
    """Only the admin socket must stay root's: the read-write and read-only sockets beside it are
    0666/0777 on Debian (authentication guards them), and are not judged by mode here."""
    _socket(hardened / "run/libvirt/libvirt-sock", 0o666)
    _socket(hardened / "run/libvirt/libvirt-sock-ro", 0o777)
    _socket(hardened / "run/libvirt/libvirt-admin-sock", admin_mode)
    assert failing(scan(hardened, only=["HV-AUTH-006"])) == ({("HV-AUTH-006", "/run/libvirt/libvirt-admin-sock")} if fails else set())


# --- HV-AUTH-012: NBD without TLS, on loopback and beyond ---------------------------------------

def _nbd(host: str, tls: str = "") -> str:
    return (f"<disk type='network' device='disk'><driver name='qemu' type='raw'/><source protocol='nbd' name='export1'{tls}>"
            f"<host name='{host}' port='10809'/></source><target dev='vdy' bus='virtio'/></disk>\n    <disk type='file' device='disk'>")


@pytest.mark.parametrize("host,tls,conf,fails", [
    ("127.0.0.1", "", "", False), ("::1", "", "", False), ("localhost", "", "", False),
    ("10.0.0.50", "", "", True), ("10.0.0.50", " tls='yes'", "", False), ("10.0.0.50", "", "nbd_tls = 1\n", False),
    ("10.0.0.50", " tls='no'", "nbd_tls = 1\n", True),
])
def test_nbd_tls(hardened, host, tls, conf, fails):
    _edit_domain(hardened, "<disk type='file' device='disk'>", _nbd(host, tls))
    _append(hardened, QEMU_CONF, conf)
    assert failing(scan(hardened, only=["HV-AUTH-012"]), "HV-AUTH-012") == ({HVM} if fails else set())


# --- HV-BAK-001: what counts as a backup of the host's configuration ------------------------------

@pytest.mark.parametrize("label,paths,tags,covers", [
    ("x", ["/etc/libvirt"], [], True), ("x", ["/etc"], [], True), ("x", ["/"], [], True),
    ("x", ["/srv/staging/etc/libvirt/"], [], True), ("x", ["/etc/ssh"], [], False), ("x", ["/var/lib/libvirt"], [], False),
    ("x", ["/srv/x"], ["etc"], True), ("x", ["/srv/x"], ["libvirt"], True), ("x", ["/srv/x"], ["host-config"], True),
    ("x", ["/srv/x"], ["hostconfig"], True), ("x", ["/srv/x"], ["config"], True), ("x", ["/srv/x"], ["images"], False),
    ("kvm01-etc-2026-11-30", [], [], True), ("kvm01-images-2026-11-30", [], [], False), ("kvm01-etc-2026-11-30", ["/srv/x"], [], False),
])
def test_host_config_coverage(label, paths, tags, covers):
    from hyperward.checks.backups import covers_host_config
    from hyperward.facts import BackupSnapshot

    assert covers_host_config(BackupSnapshot("2026-11-30T02:00:00+00:00", label, paths, tags), "kvm01") is covers


# --- HV-IDS-001: the last AIDE check an hour either side of its 7 days ----------------------------

@pytest.mark.parametrize("age,fails", [(7 * 24 - 1, False), (7 * 24 + 1, True), (1, False)], ids=["6d23h", "7d1h", "1h"])
def test_aide_last_check_age(hardened, age, fails):
    log = hardened / "var/log/aide/aide.log"
    when = datetime.datetime.now(datetime.UTC).timestamp() - age * 3600
    os.utime(log, (when, when))
    report = scan(hardened, only=["HV-IDS-001"])
    assert failing(report) == ({("HV-IDS-001", "aide:schedule")} if fails else set())


# --- HV-ISO-014: a filesystem share of each host directory a guest must never reach --------------

SHARE = "<source dir='/srv/guest-share/hardened-vm'/>"


@pytest.mark.parametrize("directory,fails", [
    *[(d, True) for d in ("/", "/etc", "/root", "/home", "/boot", "/var/lib/libvirt", "/usr", "/var", "/srv", "/run", "/dev", "/proc", "/sys")],
    ("/srv/guest-share/hardened-vm", False), ("/srv/guest-share", False),
])
def test_share_of_a_host_directory(hardened, directory, fails):
    _edit_domain(hardened, SHARE, f"<source dir='{directory}'/>")
    assert failing(scan(hardened, only=["HV-ISO-014"]), "HV-ISO-014") == ({HVM} if fails else set())


# --- HV-AUTH-012: network disk protocols without encryption or authentication --------------------

@pytest.mark.parametrize("protocol,port,fails", [("http", 80, True), ("ftp", 21, True), ("tftp", 69, True), ("https", 443, False), ("ftps", 990, False)])
def test_network_disk_protocol(hardened, protocol, port, fails):
    disk = (f"<disk type='network' device='cdrom'><driver name='qemu' type='raw'/><source protocol='{protocol}' name='/isos/debian.iso'>"
            f"<host name='mirror.example.net' port='{port}'/></source><target dev='sdy' bus='sata'/><readonly/></disk>\n    <disk type='file' device='disk'>")
    _edit_domain(hardened, "<disk type='file' device='disk'>", disk)
    assert failing(scan(hardened, only=["HV-AUTH-012"]), "HV-AUTH-012") == ({HVM} if fails else set())


# --- HV-NET-002: every forward mode libvirt allows ------------------------------------------------

@pytest.mark.parametrize("forward,fails", [
    ("<forward/>", False), ("<forward mode='nat'/>", False), ("", False), ("<forward mode='route'/>", True), ("<forward mode='open'/>", True),
    ("<forward mode='bridge'/>", False), ("<forward mode='private' dev='eth0'/>", False), ("<forward mode='passthrough' dev='eth0'/>", False),
])
def test_network_forward_mode(hardened, forward, fails):
    rel = "etc/libvirt/qemu/networks/default.xml"
    _edit(hardened, rel, "<forward/>", forward)
    xml = (hardened / rel).read_text()
    if "mode='bridge'" in forward or "dev='eth0'" in forward:  # libvirt: these modes take no <ip> of their own
        import re
        xml = re.sub(r"\s*<ip .*</ip>", "", xml, flags=re.S).replace("<bridge name='virbr0'/>", "<bridge name='br0'/>" if "bridge" in forward else "")
        (hardened / rel).write_text(xml)
    require(libvirt_validate.available(), "python3-libvirt")
    assert libvirt_validate.network_error(xml) is None
    assert failing(scan(hardened, only=["HV-NET-002"]), "HV-NET-002") == ({"network default"} if fails else set())


# --- HV-ISO-020: vCPUs against the host's CPUs (16 online) -------------------------------------

@pytest.mark.parametrize("vcpus,fails", [(15, False), (16, True), (17, True), (1, False)])
def test_vcpus_against_host_cpus(hardened, vcpus, fails):
    _edit_domain(hardened, "<vcpu placement='static'>2</vcpu>", f"<vcpu placement='static'>{vcpus}</vcpu>")
    assert failing(scan(hardened, only=["HV-ISO-020"]), "HV-ISO-020") == ({HVM} if fails else set())


# --- HV-ISO-001: the kernel's LSMs ----------------------------------------------------------------

@pytest.mark.parametrize("lsm,fails", [
    ("lockdown,capability,landlock,yama,apparmor,tomoyo", False), ("capability,selinux", False),  # security_driver unset: libvirt takes what the kernel has
    ("lockdown,capability,landlock,yama,tomoyo", True), ("capability,yama", True),
])
def test_host_lsm(hardened, lsm, fails):
    (hardened / "sys/kernel/security/lsm").write_text(lsm)
    assert failing(scan(hardened, only=["HV-ISO-001"]), "HV-ISO-001") == ({"qemu.conf:security_driver"} if fails else set())


# --- HV-SIDE-007: each mitigation feature a guest's <cpu> may disable -----------------------------

VMX_OFF = "<feature policy='disable' name='vmx'/>"


@pytest.mark.parametrize("feature,fails", [
    *[(f, True) for f in ("spec-ctrl", "ssbd", "virt-ssbd", "amd-ssbd", "md-clear", "ibpb", "stibp", "arch-capabilities", "flush-l1d",
                          "amd-stibp", "ibrs", "amd-no-ssb", "pschange-mc-no")],
    ("avx512f", False), ("pdpe1gb", False),
])
def test_disabled_cpu_feature(hardened, feature, fails):
    _edit_domain(hardened, VMX_OFF, f"{VMX_OFF}\n    <feature policy='disable' name='{feature}'/>")
    assert failing(scan(hardened, only=["HV-SIDE-007"]), "HV-SIDE-007") == ({HVM} if fails else set())


def test_unknown_running_kernel_is_not_applicable_with_the_reason(hardened):
    (hardened / "proc/sys/kernel/osrelease").unlink()
    report = scan(hardened, only=["HV-PATCH-003"])
    assert [(f.result.resource, f.status) for f in report.findings if f.result.resource == "kernel"] == [("kernel", Status.NOT_APPLICABLE)]
    assert not [f for f in report.findings if f.status is Status.ERROR]


# --- HV-TPM-007: each bit of the SEV policy the check reads ---------------------------------------

@pytest.mark.parametrize("policy,fails", [("0x0003", False), ("0x0007", False), ("0x0001", True), ("0x0002", True), ("0x0000", True)])
def test_sev_policy_bits(hardened, policy, fails):
    rel = "etc/libvirt/qemu/sev-vm.xml"
    _edit(hardened, rel, "<policy>0x0003</policy>", f"<policy>{policy}</policy>")
    require(libvirt_validate.available(), "python3-libvirt")
    assert libvirt_validate.domain_error((hardened / rel).read_text()) is None
    assert failing(scan(hardened, only=["HV-TPM-007"]), "HV-TPM-007") == ({SEV} if fails else set())


# --- HV-FW-002: DHCP and DNS of the guest's own network are the exemption, nothing next to them --

UDP_HEADER = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
TCP_LISTEN = "  {n}: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
UDP_BOUND = "  {n}: 00000000:{port:04X} 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 {inode} 2 0000000000000000 0\n"
GUEST_SERVICES = [
    # protocol, port, passes (the weak root accepts everything from br0)
    ("udp", 53, True), ("tcp", 53, True), ("udp", 67, True), ("udp", 547, True),
    ("udp", 54, False), ("udp", 68, False), ("tcp", 67, False), ("tcp", 547, False), ("udp", 546, False),
]


def test_guest_reach_exempts_exactly_dhcp_and_dns(weak):
    """Each exempt (protocol, port) passes as "allowed (DHCP/DNS)", and each neighbour (the other
    protocol, the next port, the client side of DHCP) fails like any reachable service."""
    tcp, udp = weak / "proc/net/tcp", weak / "proc/net/udp"
    lines = tcp.read_text()
    for n, (proto, port, _) in enumerate(p for p in GUEST_SERVICES if p[0] == "tcp"):
        lines += TCP_LISTEN.format(n=n + 2, port=port, inode=41000 + n)
    tcp.write_text(lines)
    udp.write_text(UDP_HEADER + "".join(UDP_BOUND.format(n=n, port=port, inode=42000 + n)
                                        for n, (proto, port, _) in enumerate(p for p in GUEST_SERVICES if p[0] == "udp")))
    found = {f.result.resource: (f.status, f.result.message) for f in scan(weak, only=["HV-FW-002"]).findings}
    expected_fail = {"br0 -> 0.0.0.0:16509/tcp", "br0 -> 0.0.0.0:8086/tcp"} | {f"br0 -> 0.0.0.0:{port}/{proto}" for proto, port, ok in GUEST_SERVICES if not ok}
    assert {r for r, (s, _) in found.items() if s is Status.FAIL} == expected_fail
    for proto, port, ok in GUEST_SERVICES:
        status, message = found[f"br0 -> 0.0.0.0:{port}/{proto}"]
        if ok:
            assert status is Status.PASS and "allowed (DHCP/DNS)" in message, message
        else:
            assert f"{proto}/{port} " in message and "reachable from guests on br0" in message, message


# --- HV-MON-005: each state of the monitor's database, and the staleness line ---------------------

MONITOR_DB = "var/lib/hyperward/monitor.sqlite"
WANTS = "etc/systemd/system/multi-user.target.wants"


def _monitor_db(root: pathlib.Path, **values: object) -> None:
    from hyperward.monitor.store import Store

    path = root / MONITOR_DB
    path.parent.mkdir(parents=True, exist_ok=True)
    store = Store(str(path))
    heartbeat: dict[str, object] = {"pid": 4242, "started": 0, "interval": 10.0, "connected": True, "source": "qemu:///system",
                                    "domains": 2, "last_error": None, **values}
    store.heartbeat(heartbeat)
    store.close()


def _monitor_finding(root: pathlib.Path) -> tuple[str | None, Status, str]:
    [finding] = scan(root, only=["HV-MON-005"]).findings
    return finding.result.resource, finding.status, finding.result.message


def _ago(seconds: float) -> float:
    import time

    return time.time() - seconds


MONITOR_AGES = [
    # interval of the monitor, seconds since its last sample, fails (3 intervals, at least 120 s)
    (10.0, 100, False), (10.0, 140, True), (60.0, 170, False), (60.0, 190, True), (30.0, 110, False), (30.0, 130, True),
]


@pytest.mark.parametrize("interval,age,fails", MONITOR_AGES, ids=[f"every-{i:g}s-{a}s" for i, a, _ in MONITOR_AGES])
def test_monitor_staleness(hardened, interval, age, fails):
    (hardened / WANTS / "prometheus-libvirt-exporter.service").unlink()
    _monitor_db(hardened, last_sample=_ago(age), interval=interval)
    resource, status, message = _monitor_finding(hardened)
    assert (resource, status) == ("hyperward monitor", Status.FAIL if fails else Status.PASS), message
    if fails:
        assert message.endswith("min before this scan") and message.startswith("last sample ")
    else:
        assert message.startswith("pid 4242, last sample ") and message.endswith(f"every {interval:g} s")


def test_monitor_database_states(hardened):
    """An exporter passes by itself; without one, no database, an empty one, a broken one and a
    monitor not connected to libvirt each say so, and an enabled unit is named."""
    assert _monitor_finding(hardened) == ("exporter", Status.PASS, "prometheus-libvirt-exporter.service present")
    (hardened / WANTS / "prometheus-libvirt-exporter.service").unlink()
    assert _monitor_finding(hardened) == ("hyperward monitor", Status.FAIL,
                                          f"no hyperward monitor database at /{MONITOR_DB} and no libvirt exporter: nobody watches what the guests do")
    (hardened / WANTS / "hyperward-monitor.service").write_text("")
    assert _monitor_finding(hardened)[2].endswith("and no libvirt exporter; hyperward-monitor.service is enabled: nobody watches what the guests do")
    _monitor_db(hardened, last_sample=None)
    assert _monitor_finding(hardened) == ("hyperward monitor", Status.FAIL, f"/{MONITOR_DB} holds no sample yet; hyperward-monitor.service is enabled")
    (hardened / MONITOR_DB).unlink()
    _monitor_db(hardened, last_sample=_ago(5), connected=False)
    resource, status, message = _monitor_finding(hardened)
    assert (resource, status) == ("hyperward monitor", Status.FAIL) and message.startswith("running but not connected to libvirt (last sample ")
    (hardened / MONITOR_DB).unlink()
    _monitor_db(hardened, last_sample=_ago(5))
    assert _monitor_finding(hardened)[1] is Status.PASS
    (hardened / MONITOR_DB).write_bytes(b"garbage" * 100)
    resource, status, message = _monitor_finding(hardened)
    assert status is Status.ERROR and message.startswith(f"/{MONITOR_DB}: ")


# --- HV-NEST-001: the loaded module's value decides; modprobe.d's disagreement is named ----------

NEST_LOADED = [
    # loaded kvm_intel.nested, modprobe.d's nested=, status, message
    ("N", "0", Status.PASS, "kvm_intel.nested=N (loaded)"),
    ("0", "0", Status.PASS, "kvm_intel.nested=0 (loaded)"),
    ("N", "1", Status.PASS, "kvm_intel.nested=N (loaded); /etc/modprobe.d/kvm-nested.conf sets nested=1 for the next module load"),
    ("Y", "0", Status.FAIL, "kvm_intel.nested=Y (loaded); /etc/modprobe.d/kvm-nested.conf sets nested=0 for the next module load"),
    ("1", "1", Status.FAIL, "kvm_intel.nested=1 (loaded)"),
    ("Y", "Y", Status.FAIL, "kvm_intel.nested=Y (loaded)"),
]


@pytest.mark.parametrize("loaded,configured,status,message", NEST_LOADED, ids=[f"{a}-{b}" for a, b, _, _ in NEST_LOADED])
def test_host_nested_loaded_and_configured(hardened, loaded, configured, status, message):
    (hardened / "sys/module/kvm_intel/parameters/nested").write_text(loaded + "\n")
    (hardened / "etc/modprobe.d/kvm-nested.conf").write_text(f"options kvm_intel nested={configured}\n")
    found = [(f.result.resource, f.status, f.result.message) for f in scan(hardened, only=["HV-NEST-001"]).findings]
    assert ("kvm_intel", status, message) in found, found
