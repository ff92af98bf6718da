"""SSH against the real thing: a real sshd started on a loopback port from a configuration with
Include and Match, compared with what `sshd -T` prints for it and with ssh-audit's view of the
running server."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from hyperward.collect import collect_host
from hyperward.model import Status
from hyperward.parsers.sshd import DEFAULTS, JUDGED, parse_sshd_t, resolve_algorithms, weak_algorithms

from conftest import apply, require, scan

SSHD = "/usr/sbin/sshd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_tree(tmp: pathlib.Path, main: str, includes: dict[str, str]) -> tuple[pathlib.Path, pathlib.Path]:
    """The same configuration twice: at real paths for sshd, and inside an offline root for
    hyperward (which resolves absolute Include paths inside the root, as on the audited host)."""
    root = tmp / "root"
    real = tmp / "real"
    for base in (real, root / str(real).lstrip("/")):
        for name, text in includes.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_text(text)
    key = real / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    text = main.format(real=real, key=key)
    (real / "sshd_config").write_text(text)
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/ssh/sshd_config").write_text(text)
    return real / "sshd_config", root


MAIN = """# as Debian ships it, plus site includes
Include {real}/conf.d/*.conf
HostKey {key}
KbdInteractiveAuthentication no
UsePAM yes
PidFile {real}/sshd.pid
Subsystem sftp /usr/lib/openssh/sftp-server
"""
INCLUDES = {
    "conf.d/10-site.conf": "PermitRootLogin yes\nPasswordAuthentication yes\nCiphers +3des-cbc,aes128-cbc\n"
                           "MACs +hmac-md5\nKexAlgorithms +diffie-hellman-group14-sha1\n",
    "conf.d/20-later.conf": "# first value wins: these do not apply\nPermitRootLogin no\nPasswordAuthentication no\n"
                            "Match User backup\n    PasswordAuthentication yes\n",
}


@pytest.fixture
def sshd_config(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    require(os.path.exists(SSHD) and os.geteuid() == 0, "a real sshd (Debian package openssh-server), run as root")
    return _config_tree(tmp_path, MAIN, INCLUDES)


@pytest.fixture
def privsep_dir() -> Iterator[None]:
    """sshd refuses to run without its privilege-separation directory (the package's tmpfiles entry)."""
    created = not os.path.isdir("/run/sshd")
    if created:
        os.makedirs("/run/sshd", mode=0o755)
    yield
    if created:
        shutil.rmtree("/run/sshd", ignore_errors=True)


def test_effective_configuration_matches_sshd_t(sshd_config, privsep_dir):
    config, root = sshd_config
    done = subprocess.run([SSHD, "-T", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    truth = parse_sshd_t(done.stdout)
    ssh = collect_host(str(root)).access.ssh
    for key in JUDGED:
        ours = ssh.values[key]
        if key in ("ciphers", "macs", "kexalgorithms"):
            assert resolve_algorithms(ours, DEFAULTS[key]) == truth[key].split(","), key
        elif key == "permitrootlogin" and ours == "prohibit-password":
            assert truth[key] == "without-password"
        else:
            assert ours.lower() == truth[key].lower(), key
    assert [(o.criteria, o.keyword, o.value) for o in ssh.overrides] == [("User backup", "passwordauthentication", "yes")]
    assert ssh.sources["permitrootlogin"].endswith("conf.d/10-site.conf:1")


def test_weak_algorithms_agree_with_ssh_audit(sshd_config, privsep_dir):
    audit = shutil.which("ssh-audit", path=os.path.dirname(sys.executable))
    require(audit is not None, "ssh-audit (pip, test extra)")
    config, root = sshd_config
    port = _free_port()
    server = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-p", str(port), "-o", "ListenAddress=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        done = subprocess.run([audit, "-j", "-p", str(port), "127.0.0.1"], capture_output=True, text=True, timeout=60)
        report = json.loads(done.stdout)
    finally:
        server.terminate()
        server.wait(10)
    ssh = collect_host(str(root)).access.ssh
    for ours_key, theirs_key in (("ciphers", "enc"), ("macs", "mac"), ("kexalgorithms", "kex")):
        offered = [a["algorithm"] for a in report[theirs_key] if not a["algorithm"].startswith("kex-strict")]
        failing = {a["algorithm"] for a in report[theirs_key] if a.get("notes", {}).get("fail")}
        ours = resolve_algorithms(ssh.values[ours_key], DEFAULTS[ours_key])
        assert set(ours) == set(offered), ours_key
        assert set(weak_algorithms(ours_key, ours)) == failing, ours_key


def test_broken_pam_file_is_an_error_naming_it(hardened):
    (hardened / "etc/pam.d/sudo").unlink()
    (hardened / "etc/pam.d/sudo").mkdir()
    by = {f.result.resource: f for f in scan(hardened, only=["HV-AUTH-014"]).findings}
    assert by["sudo"].status is Status.ERROR and "/etc/pam.d/sudo" in by["sudo"].result.message
    assert by["sshd"].status is Status.PASS


def test_sshd_t_is_preferred_on_the_live_host(privsep_dir):
    require(os.path.exists(SSHD) and os.path.exists("/etc/ssh/sshd_config") and os.geteuid() == 0, "sshd installed on this host")
    ssh = collect_host("/").access.ssh
    assert isinstance(ssh.sshd_t, dict) and "permitrootlogin" in ssh.sshd_t
    [f] = [f for f in scan("/", only=["HV-AUTH-013"]).findings if f.result.resource == "sshd:PermitRootLogin"]
    assert "(sshd -T)" in f.result.message


def test_authentication_methods_two_factors(hardened):
    apply(hardened, {"etc/ssh/sshd_config.d/50-hardening.conf": "PasswordAuthentication yes\nAuthenticationMethods publickey,password\n"})
    statuses = {f.result.resource: f.status for f in scan(hardened, only=["HV-AUTH-013", "HV-AUTH-014"]).findings if f.check_id == "HV-AUTH-013"}
    assert statuses["sshd:PasswordAuthentication"] is Status.PASS
    apply(hardened, {"etc/ssh/sshd_config.d/50-hardening.conf": "PasswordAuthentication yes\nAuthenticationMethods publickey,password password\n"})
    statuses = {f.result.resource: f.status for f in scan(hardened, only=["HV-AUTH-013"]).findings}
    assert statuses["sshd:PasswordAuthentication"] is Status.FAIL


def test_weak_algorithms_are_their_own_check_not_the_login_one(tmp_path):
    """HV-AUTH-013 is about root and password logins; algorithms are HV-AUTH-016 (medium)."""
    from conftest import copy_root

    weak = copy_root("weak", tmp_path, kvm_mode=0o666)
    report = scan(weak, only=["HV-AUTH-013", "HV-AUTH-016"])
    got = {(f.check_id, f.result.resource): (f.severity.label, f.result.message) for f in report.findings if f.status.value == "fail"}
    assert got == {
        ("HV-AUTH-013", "sshd:Match Address 10.0.0.0/8"): ("high", "PermitEmptyPasswords yes (/etc/ssh/sshd_config.d/10-legacy.conf:7): accounts with empty passwords may log in"),
        ("HV-AUTH-013", "sshd:PasswordAuthentication"): ("high", "PasswordAuthentication yes (/etc/ssh/sshd_config.d/10-legacy.conf:3): password logins allowed"),
        ("HV-AUTH-013", "sshd:PermitRootLogin"): ("high", "PermitRootLogin yes (/etc/ssh/sshd_config.d/10-legacy.conf:2): root may log in with a password"),
        ("HV-AUTH-016", "sshd:KexAlgorithms"): ("medium", "ecdh-sha2-nistp256, ecdh-sha2-nistp384, ecdh-sha2-nistp521 offered (OpenSSH default)"),
        ("HV-AUTH-016", "sshd:MACs"): ("medium", "hmac-sha1-etm@openssh.com, hmac-sha1, hmac-md5 offered (/etc/ssh/sshd_config.d/10-legacy.conf:4)"),
    }
    [title] = {f.meta.title for f in report.findings if f.check_id == "HV-AUTH-016"}
    assert title == "SSH offers weak ciphers, MACs or key exchange"


@pytest.mark.parametrize("kind,query,db", [("macs", "mac", "mac"), ("ciphers", "cipher", "enc"), ("kexalgorithms", "kex", "kex")])
def test_every_algorithm_this_openssh_knows_is_rated_as_ssh_audit_rates_it(kind, query, db):
    """Beyond what one sshd offers: every algorithm this OpenSSH can be configured with (`ssh -Q`)
    is weak here exactly when ssh-audit's own database fails it, and no name on our lists is one
    ssh-audit rates otherwise."""
    ssh = shutil.which("ssh")
    require(ssh is not None, "openssh-client (Debian package)")
    try:
        from ssh_audit.ssh2_kexdb import SSH2_KexDB
    except ImportError:
        require(False, "ssh-audit (pip, test extra)")
    rated = SSH2_KexDB.get_db()[db]

    def fails(name: str) -> bool:
        notes = rated.get(name)
        return bool(notes and len(notes) > 1 and notes[1])

    known = subprocess.run([ssh, "-Q", query], capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert known
    assert set(weak_algorithms(kind, known)) == {a for a in known if fails(a)}
    from hyperward.parsers import sshd

    ours = {"macs": sshd.WEAK_MACS, "ciphers": sshd.WEAK_CIPHERS, "kexalgorithms": sshd.WEAK_KEX}[kind]
    assert not [a for a in ours if a in rated and not fails(a)]
