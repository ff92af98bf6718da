"""Messages that were wrong on a stock Debian host (issue 12): each result says what the host
really enforces, and each fix fits what is installed."""

from __future__ import annotations

import pathlib

import pytest

from hyperward.model import Status

from conftest import apply, copy_root, scan

#: /etc/pam.d/common-password as Debian 12 ships it (libpam-runtime, no libpam-pwquality)
DEBIAN_COMMON_PASSWORD = """\
# here are the per-package modules (the "Primary" block)
password\t[success=1 default=ignore]\tpam_unix.so obscure yescrypt
# here's the fallback if no module succeeds
password\trequisite\t\t\tpam_deny.so
password\trequired\t\t\tpam_permit.so
"""


def _policy(report):
    return [(f.status, f.result.message) for f in report.findings if f.check_id == "HV-AUTH-015" and f.result.resource == "password policy"]


@pytest.mark.parametrize("common_password,pwquality,status,message", [
    (DEBIAN_COMMON_PASSWORD, None, Status.FAIL,
     "pam_unix.so obscure (/etc/pam.d/common-password) without minlen= or pam_pwquality: pam_unix's default minimum of 6 "
     "characters: passwords of 6 characters are accepted (shorter than 12)"),
    (DEBIAN_COMMON_PASSWORD.replace("obscure yescrypt", "obscure yescrypt minlen=14"), None, Status.PASS,
     "pam_unix.so minlen=14 (/etc/pam.d/common-password), no pam_pwquality"),
    ("password\t[success=1 default=ignore]\tpam_unix.so yescrypt\n", None, Status.FAIL,
     "/etc/pam.d/common-password: no pam_pwquality, and pam_unix without obscure or minlen=: no minimum password length is enforced"),
    ("password requisite pam_pwquality.so retry=3\npassword [success=1 default=ignore] pam_unix.so obscure use_authtok yescrypt\n",
     "minlen = 14\n", Status.PASS, "pwquality minlen 14 (/etc/security/pwquality.conf)"),
    ("password requisite pam_pwquality.so retry=3 minlen=9\npassword [success=1 default=ignore] pam_unix.so obscure use_authtok\n",
     "minlen = 14\n", Status.FAIL,
     "pam_pwquality.so minlen=9 (/etc/pam.d/common-password): passwords of 9 characters are accepted (shorter than 12)"),
    ("password requisite pam_pwquality.so retry=3\npassword [success=1 default=ignore] pam_unix.so obscure use_authtok\n", None, Status.FAIL,
     "pwquality minlen 8 (libpwquality's default; /etc/security/pwquality.conf does not set it): passwords of 8 characters are accepted (shorter than 12)"),
])
def test_password_length_is_what_the_password_stack_enforces(tmp_path: pathlib.Path, common_password, pwquality, status, message):
    root = copy_root("hardened", tmp_path)
    apply(root, {"etc/pam.d/common-password": common_password, "etc/security/pwquality.conf": pwquality})
    assert _policy(scan(root, ["HV-AUTH-015"])) == [(status, message)]


def test_password_policy_without_any_pam_stack_is_unknown(tmp_path: pathlib.Path):
    root = copy_root("hardened", tmp_path)
    apply(root, {"etc/pam.d/common-password": None, "etc/security/pwquality.conf": None})
    assert _policy(scan(root, ["HV-AUTH-015"])) == [(Status.NOT_APPLICABLE,
        "password policy unknown: no /etc/pam.d/common-password, /etc/pam.d/system-auth or /etc/security/pwquality.conf")]


def _iso014(report):
    return [(f.result.resource, f.status, f.result.message, f.remediation) for f in report.findings if f.check_id == "HV-ISO-014"]


WEAK_VM = "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"


def _virtiofs_weak(tmp_path: pathlib.Path, libvirt_version: str | None) -> pathlib.Path:
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    xml = root / "etc/libvirt/qemu/weak-vm.xml"
    xml.write_text(xml.read_text().replace("<driver type='path'/>\n      <source dir='/'/>", "<driver type='virtiofs'/>\n      <source dir='/'/>"))
    status = root / "var/lib/dpkg/status"
    if libvirt_version is not None:
        status.write_text(status.read_text().replace("Version: 9.0.0-4+deb12u2", f"Version: {libvirt_version}"))
    return root


def test_virtiofs_share_fix_fits_libvirt_9(tmp_path: pathlib.Path):
    """Debian 12's libvirt 9.0 refuses <readonly/> on virtiofs: the fix must not suggest it."""
    [(resource, status, message, fix)] = _iso014(scan(_virtiofs_weak(tmp_path, None), ["HV-ISO-014"]))
    assert (resource, status) == (WEAK_VM, Status.FAIL)
    assert message == ("/ -> hostroot: shares a host system directory; / -> hostroot: writable (virtiofs); "
                       "/ -> hostroot: accessmode passthrough with QEMU running as root")
    assert fix == ("libvirt 9.0.0 cannot make a virtiofs share read-only (<readonly/> for virtiofs needs libvirt 11.0.0): "
                   "share a dedicated directory that holds only what the guest may change, or use 9p (<driver type='path'/>, "
                   "accessmode='mapped') with <readonly/>, or bind-mount the directory read-only on the host (mount --bind -o ro) "
                   "and share that")


def test_virtiofs_share_fix_on_libvirt_11_uses_readonly(tmp_path: pathlib.Path):
    [(_, status, _, fix)] = _iso014(scan(_virtiofs_weak(tmp_path, "11.3.0-3"), ["HV-ISO-014"]))
    assert status is Status.FAIL
    assert fix == ("add <readonly/> to the virtiofs <filesystem> (libvirt 11.3.0 supports it), and share a dedicated directory, "
                   "never /, /etc, /home or /var/lib/libvirt")


def test_9p_share_fix_is_the_readonly_element(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    [(_, status, _, fix)] = _iso014(scan(root, ["HV-ISO-014"]))
    assert status is Status.FAIL
    assert fix.startswith("share a dedicated directory read-only (libvirt: <readonly/> in the <filesystem>;")


def _auth006(report):
    return {f.result.resource: (f.status, f.result.message) for f in report.findings if f.check_id == "HV-AUTH-006"}


def test_socket_activated_admin_mode_is_the_units_not_libvirtd_conf(tmp_path: pathlib.Path):
    """Debian enables libvirtd-admin.socket: systemd creates the socket with the unit's SocketMode
    (here a drop-in's 0666), and libvirtd.conf's unix_sock_admin_perms = "0777" is never used."""
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    results = _auth006(scan(root, ["HV-AUTH-006"]))
    assert results == {
        "libvirtd-admin.socket": (Status.FAIL, "SocketMode=0666: the admin socket is open beyond root"),
        "libvirtd.conf:auth_unix_ro": (Status.FAIL, 'auth_unix_ro = "none" (/etc/libvirt/libvirtd.conf), libvirtd-ro.socket '
                                       "SocketMode=0666 (socket activation: unix_sock_ro_perms is not used): any local user "
                                       "reads every guest definition"),
    }


def test_socket_activated_admin_unit_at_0600_passes_whatever_libvirtd_conf_says(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    apply(root, {"etc/systemd/system/libvirtd-admin.socket.d/override.conf": None})
    results = _auth006(scan(root, ["HV-AUTH-006"]))
    assert results["libvirtd-admin.socket"] == (Status.PASS, "SocketMode=0600: the admin socket is root's alone")
    assert "libvirtd.conf:unix_sock_admin_perms" not in results


def test_without_socket_activation_libvirtd_conf_perms_are_judged(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    apply(root, {f"etc/systemd/system/sockets.target.wants/{u}": None for u in ("libvirtd.socket", "libvirtd-admin.socket", "libvirtd-ro.socket")})
    results = _auth006(scan(root, ["HV-AUTH-006"]))
    assert results == {
        "libvirtd.conf:unix_sock_admin_perms": (Status.FAIL, 'unix_sock_admin_perms = "0777" (/etc/libvirt/libvirtd.conf): '
                                                "others can reach the admin interface"),
        "libvirtd.conf:auth_unix_ro": (Status.FAIL, 'auth_unix_ro = "none" (/etc/libvirt/libvirtd.conf), unix_sock_ro_perms = "0777" '
                                       "(default assumed, /etc/libvirt/libvirtd.conf does not set it): any local user reads every "
                                       "guest definition"),
    }


def test_memory_state_directories_are_judged_once(tmp_path: pathlib.Path):
    """Issue 23: /var/lib/libvirt/qemu/save at 0755 passed HV-ISO-009 and failed HV-BAK-004, and the
    dump directory was judged by HV-ISO-019 too. Now HV-BAK-004 alone judges them."""
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    report = scan(root, ["HV-ISO-009", "HV-ISO-019", "HV-BAK-004"])
    state = ("/var/lib/libvirt/qemu/save", "/var/lib/libvirt/qemu/snapshot", "/var/lib/libvirt/qemu/dump")
    judged = sorted((f.check_id, f.result.resource, f.status.value) for f in report.findings if f.result.resource in state)
    assert judged == [("HV-BAK-004", "/var/lib/libvirt/qemu/dump", "fail"), ("HV-BAK-004", "/var/lib/libvirt/qemu/save", "fail"),
                      ("HV-BAK-004", "/var/lib/libvirt/qemu/snapshot", "fail")]
