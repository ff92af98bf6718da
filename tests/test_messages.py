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
