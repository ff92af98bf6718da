"""`hyperward fix --apply` against a real libvirtd of the test's own (tests/fixtures/private_libvirtd.py:
a private mount and network namespace with its own /etc/libvirt, the rest of the root read-only), so
a weak qemu.conf can be fixed without touching this machine's. Run under
`flock /tmp/hyperward-live.lock`.

What it shows: the scan finds the weak qemu.conf keys and the weak domain; the plan edits only
/etc/libvirt files and hwfixns-* definitions; --apply fixes the files and names the libvirtd restart
it did not do; the daemon still builds QEMU command lines from the old settings until it is
restarted (`virsh domxml-to-native` of a domain that inherits them); after the restart the artifact
asks for, the command line carries the new settings and the rescan passes every fixed result, with
no other result worse than before. This machine's /etc/libvirt and system daemons are unchanged."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import sys

import pytest
from live_libvirt import weak_domain_xml
from private_libvirtd import (
    PrivateLibvirtd,
    private_libvirtd,
    sha256_tree,
    system_libvirtds,
)

WEAK_CONF = """
# hyperward test: weak settings
vnc_listen = "0.0.0.0"
dump_guest_core = 1
seccomp_sandbox = 0
"""

WEAK = weak_domain_xml("hwfixns-weak")

#: no listen address and no dumpCore of its own: QEMU gets qemu.conf's as the daemon loaded them
PLAIN = """<domain type='qemu'>
  <name>hwfixns-plain</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <graphics type='vnc' port='-1' autoport='yes'/>
  </devices>
</domain>
"""

CHECKS = ("HV-AUTH-010", "HV-AUTH-011", "HV-ISO-006", "HV-ISO-019")
CONF_ROWS = {("HV-AUTH-010", "qemu.conf:vnc_listen"), ("HV-ISO-019", "qemu.conf:dump_guest_core"),
             ("HV-ISO-006", "qemu.conf:seccomp_sandbox")}
RESTART = "restart libvirtd (systemctl restart libvirtd)"
RANK = {"pass": 0, "not_applicable": 0, "warn": 1, "fail": 2, "error": 2}


def run(daemon: PrivateLibvirtd, *args: str, timeout: float = 300):  # type: ignore[no-untyped-def]
    """The installed console script inside the namespace, with this suite's environment."""
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable)) or shutil.which("hyperward")
    assert exe, "the hyperward console script is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    return daemon.inside([exe, *args], timeout=timeout, env=env)


def virsh(daemon: PrivateLibvirtd, *args: str) -> str:
    done = daemon.inside(["virsh", "-c", "qemu:///system", *args], timeout=120)
    assert done.returncode == 0, f"virsh {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def scan(daemon: PrivateLibvirtd, out: pathlib.Path) -> dict[tuple[str, str], tuple[str, str]]:
    done = run(daemon, "scan", "--format", "json", "-o", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["root"] == "/" and doc["collected_as_root"] is True
    return {(r["id"], r["resource"]): (r["status"], r["message"]) for r in doc["results"]}


def stable(resource: str) -> str:
    """A resource named after a process (libvirtd (pid N)) is the same resource after a restart."""
    return re.sub(r"\(pid \d+\)", "(pid N)", resource)


def mine(results: dict[tuple[str, str], tuple[str, str]], uuids: dict[str, str]) -> dict[tuple[str, str], str]:
    ours = set(CONF_ROWS) | {(cid, uuids[name]) for cid in CHECKS for name in uuids}
    return {key: status for key, (status, _m) in results.items() if key in ours and key[0] in CHECKS}


@pytest.fixture
def daemon(tmp_path: pathlib.Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    etc_before = sha256_tree("/etc/libvirt")
    system_before = system_libvirtds()
    with private_libvirtd(tmp_path / "ns", tmp_path_factory.getbasetemp(), WEAK_CONF) as d:
        yield d
    assert sha256_tree("/etc/libvirt") == etc_before, "this machine's /etc/libvirt changed"
    assert system_libvirtds() == system_before, "a libvirtd or virtlogd outside the namespace started or stopped"
    assert str(tmp_path / "ns") not in pathlib.Path("/proc/self/mountinfo").read_text()


def test_a_weak_qemu_conf_and_domain_are_fixed_and_pass_after_the_restart(daemon, tmp_path, advisory_db):
    work = tmp_path / "ns"
    assert daemon.inside(["touch", "/etc/hyperward-test-probe"]).returncode != 0  # the namespace's root is read-only
    assert not os.path.exists("/etc/hyperward-test-probe")
    uuids = {}
    for name, xml in (("hwfixns-weak", WEAK), ("hwfixns-plain", PLAIN)):
        (tmp_path / f"{name}.xml").write_text(xml)
        virsh(daemon, "define", str(tmp_path / f"{name}.xml"))
        uuids[name] = f"{name} ({virsh(daemon, 'domuuid', name).strip()})"
    argv = virsh(daemon, "domxml-to-native", "qemu-argv", "--domain", "hwfixns-plain")
    assert "dump-guest-core=on" in argv and "-vnc 0.0.0.0:" in argv and "-sandbox off " in argv, argv

    before = scan(daemon, tmp_path / "before.json")
    weak, plain = uuids["hwfixns-weak"], uuids["hwfixns-plain"]
    failing = {key for key, status in mine(before, uuids).items() if status == "fail"}
    assert failing == CONF_ROWS | {("HV-AUTH-010", weak), ("HV-AUTH-011", weak), ("HV-ISO-019", weak),
                                  ("HV-AUTH-010", plain)}, \
        {k: before[k] for k in mine(before, uuids)}

    only = ",".join(CHECKS)
    planned = run(daemon, "fix", "--only", only, "-o", str(tmp_path / "fix.sh"))
    assert planned.returncode == 0, planned.stderr
    artifact = (tmp_path / "fix.sh").read_text()
    blocks = re.findall(r"^# \[\d+/\d+\] (\S+) +(.+)$", artifact, re.MULTILINE)
    assert {(cid, res) for cid, res in blocks} == failing
    # every file the plan edits is one of the private daemon's, every domain it defines is ours
    edited = set(re.findall(r"^  hw (?:replace|ensure-line|xml|write|chmod) (\S+)", artifact, re.MULTILINE))
    assert edited and all(path.startswith("/etc/libvirt/") for path in edited), edited
    assert set(re.findall(r"--domain (\S+) >", artifact)) == {"hwfixns-weak"}
    for cid, key in sorted(CONF_ROWS):
        block = artifact.split(f"{cid}  {key}\n", 1)[1].split("\n# ----", 1)[0]
        assert f"# needs: {RESTART}" in block and f"echo '  needs: {RESTART}'" in block, block

    applied = run(daemon, "fix", "--only", only, "--apply", "--yes", "--backup-dir", str(work / "backups"),
                  "-o", str(tmp_path / "applied.sh"))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    lines = applied.stdout.splitlines()
    for cid, resource in failing:
        assert f"fixed          {cid:<12} {resource}" in lines, applied.stdout
    assert "summary: 7 fixed" in lines, applied.stdout  # the plain domain: by hand, fixed by vnc_listen
    assert f"  {RESTART}" in lines  # said once, under "to take effect", never done
    assert (work / "backups" / "etc%libvirt%qemu.conf").read_text().endswith(WEAK_CONF)
    conf = (work / "etc" / "qemu.conf").read_text()
    assert 'vnc_listen = "127.0.0.1"' in conf and "dump_guest_core = 0" in conf and "seccomp_sandbox = 1" in conf

    # the files are fixed, the daemon is not: it still gives QEMU the settings it started with
    argv = virsh(daemon, "domxml-to-native", "qemu-argv", "--domain", "hwfixns-plain")
    assert "dump-guest-core=on" in argv and "-vnc 0.0.0.0:" in argv and "-sandbox off " in argv, argv

    old_pid = daemon.pid("libvirtd")
    assert daemon.restart_libvirtd() != old_pid
    argv = virsh(daemon, "domxml-to-native", "qemu-argv", "--domain", "hwfixns-plain")
    assert "dump-guest-core=off" in argv and "-vnc 127.0.0.1:" in argv and "-sandbox on," in argv, argv
    weak_xml = virsh(daemon, "dumpxml", "--inactive", "hwfixns-weak")
    assert "dumpCore='off'" in weak_xml and "0.0.0.0" not in weak_xml

    after = scan(daemon, tmp_path / "after.json")
    # a row the fix turned good passes, or is not reported at all (vnc_listen on loopback and a
    # domain without dumpCore='on' give no row); no row of these checks fails anywhere on the host
    assert {key: after[key][0] for key in failing if key in after} == {key: "pass" for key in failing if key in after}
    assert {("HV-ISO-006", "qemu.conf:seccomp_sandbox"), ("HV-ISO-019", "qemu.conf:dump_guest_core"),
            ("HV-AUTH-010", weak), ("HV-AUTH-011", weak), ("HV-AUTH-010", plain)} <= set(after)
    assert not {key: value for key, value in after.items() if key[0] in CHECKS and value[0] in ("fail", "error")}
    assert all(status in ("pass", "not_applicable") for key, status in mine(after, uuids).items() if key[1] == plain)
    old = {(cid, stable(res)): status for (cid, res), (status, _m) in before.items()}
    new = {(cid, stable(res)): (status, message) for (cid, res), (status, message) in after.items()}
    worse = {key: (old.get(key), new[key]) for key in new if RANK[new[key][0]] > RANK.get(old.get(key, "pass"), 0)}
    assert not worse, worse
    gone = {key: status for key, status in old.items() if key not in new and status == "pass"}
    assert not gone, gone

    # a second run finds nothing of these checks failing: nothing to apply
    again = run(daemon, "fix", "--only", only, "--apply", "--yes", "--backup-dir", str(work / "backups-2"))
    assert again.returncode == 0 and "0 of 0 failing result(s)" in again.stdout, again.stdout + again.stderr
