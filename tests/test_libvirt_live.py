"""Against a real libvirtd (started here when none runs) with real QEMU processes under TCG.

Networks and domains are defined through the libvirt API, one guest is started, and `hyperward
scan` runs on this live host as a user would run it. Everything the tests create is named
hwtest-* and removed afterwards; daemons the tests started are stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from conftest import hyperward, require
from live_libvirt import connect, running_libvirtd

PASSWORD = "Zq8%Pw3x"  # VNC passwords are at most 8 characters

ISOLATED_NET = """<network>
  <name>hwtest-iso</name>
  <bridge name='hwtestbr0' stp='on' delay='0'/>
  <ip address='10.251.7.1' netmask='255.255.255.0'/>
</network>
"""

RUNNING = f"""<domain type='qemu'>
  <name>hwtest-run</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <interface type='network'>
      <source network='hwtest-iso'/>
      <model type='virtio'/>
    </interface>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='{PASSWORD}'/>
    <video><model type='virtio'/></video>
  </devices>
</domain>
"""

WEAK = """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>hwtest-weak</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <sound model='ich6'/>
    <graphics type='spice' autoport='yes' listen='0.0.0.0'/>
  </devices>
  <seclabel type='none'/>
  <qemu:commandline>
    <qemu:arg value='-no-hpet'/>
  </qemu:commandline>
</domain>
"""


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[None]:
    with running_libvirtd("hwtest-"):
        yield


@pytest.fixture(scope="module")
def guests(libvirtd: None) -> Iterator[dict[str, str]]:
    conn = connect()
    try:
        net = conn.networkDefineXML(ISOLATED_NET)
        net.create()
        running = conn.defineXML(RUNNING)
        running.create()
        weak = conn.defineXML(WEAK)
        with open("/run/libvirt/qemu/hwtest-run.pid") as handle:
            pid = int(handle.read().strip())
        yield {
            "run": f"hwtest-run ({running.UUIDString()})",
            "weak": f"hwtest-weak ({weak.UUIDString()})",
            "proc": f"hwtest-run (pid {pid})",
        }
    finally:
        conn.close()


def _results(*args: str) -> dict[tuple[str, str], dict]:
    done = hyperward("scan", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    return {(r["id"], r["resource"]): r for r in json.loads(done.stdout)["results"]}


def test_live_scan_judges_real_domains_networks_and_qemu(guests):
    results = _results()
    status = {key: r["status"] for key, r in results.items()}
    proc = guests["proc"]
    # The running TCG guest's real QEMU process, found in /proc and tied to its domain.
    assert status[("HV-ISO-005", proc)] == "pass" and "uid 64055" in results[("HV-ISO-005", proc)]["message"]
    assert status[("HV-ISO-006", proc)] == "pass"
    assert status[("HV-IDS-005", proc)] == "pass"
    assert status[("HV-PATCH-002", proc)] == "pass"
    assert ("HV-ISO-004", proc) in status and status[("HV-ISO-004", proc)] != "error"
    # Definitions read through the API and the files, named by name and UUID.
    assert status[("HV-VULN-005", guests["run"])] == "fail"
    assert status[("HV-NET-001", guests["run"])] == "fail"
    assert status[("HV-AUTH-010", guests["run"])] == "pass"
    assert status[("HV-NET-002", "network hwtest-iso")] == "pass"
    for check in ("HV-ISO-003", "HV-ISO-017", "HV-ISO-018", "HV-ISO-026"):
        assert status[(check, guests["weak"])] == "fail", check
    assert status[("HV-AUTH-010", guests["weak"])] == "fail"
    assert results[("HV-AUTH-010", guests["weak"])]["severity"] == "critical"


def test_a_snapshot_taken_by_libvirtd_is_judged_as_it_would_come_back(libvirtd, tmp_path):
    """A real internal snapshot of a shut-off guest whose VNC listened on every address, then the
    guest made safe: the definition passes and the snapshot (which `virsh snapshot-revert` would
    bring back, password and all) fails HV-AUTH-010 under its own name; the password stays out."""
    require(shutil.which("qemu-img") is not None, "qemu-img (qemu-utils)")
    disk = tmp_path / "hwtest-snap.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True, timeout=60)
    ident = str(uuid.uuid4())

    def definition(listen: str) -> str:
        return f"""<domain type='qemu'>
  <name>hwtest-snap</name>
  <uuid>{ident}</uuid>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' port='-1' autoport='yes' listen='{listen}' passwd='{PASSWORD}'/>
  </devices>
</domain>
"""

    conn = connect()
    try:
        dom = conn.defineXML(definition("0.0.0.0"))
        dom.snapshotCreateXML("<domainsnapshot><name>before lockdown</name></domainsnapshot>", 0)
        conn.defineXML(definition("127.0.0.1"))
    finally:
        conn.close()
    done = hyperward("scan", "--only", "HV-AUTH-010", "--format", "json")
    status = {r["resource"]: r["status"] for r in json.loads(done.stdout)["results"]}
    assert status[f"hwtest-snap ({ident})"] == "pass"
    assert status[f"hwtest-snap ({ident})@before lockdown"] == "fail"
    [found] = [r for r in json.loads(done.stdout)["results"] if r["resource"].endswith("@before lockdown")]
    assert found["details"]["file"] == "/var/lib/libvirt/qemu/snapshot/hwtest-snap/before lockdown.xml"
    assert PASSWORD not in done.stdout + done.stderr


def test_live_console_password_is_seen_as_set_and_never_shown(guests, tmp_path):
    snapshot = tmp_path / "facts.json"
    assert hyperward("collect", "-o", str(snapshot)).returncode == 0
    facts = json.loads(snapshot.read_text())["facts"]
    [run] = [d for d in facts["platforms"]["libvirt"]["domains"] if d.get("name") == "hwtest-run"]
    assert run["graphics"][0]["has_password"] is True and run["running"] is True
    outputs = [snapshot.read_text()]
    for args in (("--format", "json"), ("-v",), ("--format", "text")):
        done = hyperward("scan", *args)
        outputs += [done.stdout, done.stderr]
    assert not [o for o in outputs if PASSWORD in o]


def test_rogue_and_replaced_qemu_are_found(libvirtd, tmp_path):
    """A QEMU started outside libvirt from a binary that was then deleted (a package update)."""
    binary = tmp_path / "qemu-system-x86_64"
    shutil.copy2("/usr/bin/qemu-system-x86_64", binary)
    proc = subprocess.Popen(
        [str(binary), "-machine", "none", "-nodefaults", "-display", "none", "-S", "-name", "guest=hwtest-rogue"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # A copied QEMU finds its accelerator modules only through this variable.
        env={**os.environ, "QEMU_MODULE_DIR": "/usr/lib/x86_64-linux-gnu/qemu"},
    )
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/proc/{proc.pid}/exe") or os.readlink(f"/proc/{proc.pid}/exe") != str(binary):
            assert proc.poll() is None and time.monotonic() < deadline, "qemu did not start"
            time.sleep(0.05)
        binary.unlink()
        results = _results("--only", "HV-IDS-005,HV-PATCH-002")
        resource = f"hwtest-rogue (pid {proc.pid})"
        assert results[("HV-IDS-005", resource)]["status"] == "fail"
        stale = results[("HV-PATCH-002", resource)]
        assert stale["status"] == "fail" and f"executable {binary} was replaced" in stale["message"]
    finally:
        proc.kill()
        proc.wait(10)


def test_daemon_unreachable_is_one_clear_warning_and_files_still_count(libvirtd):
    done = hyperward("scan", "--format", "json", "--connect", "qemu+unix:///system?socket=/run/hwtest-no-such.sock")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    [warning] = [w for w in report["warnings"] if w.startswith("libvirt API")]
    assert "/run/hwtest-no-such.sock" in warning and "judged the files" in warning
    assert {r["id"] for r in report["results"]} >= {"HV-ISO-002", "HV-AUTH-005", "HV-NET-007"}


def test_unprivileged_user_gets_the_permission_error_once(libvirtd, unprivileged_can_run):
    done = hyperward("scan", "--format", "json", user="nobody")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout)
    api_warnings = [w for w in report["warnings"] if w.startswith("libvirt API qemu:///system")]
    assert len(api_warnings) <= 1
    assert "HV-ISO-005" in {r["id"] for r in report["results"]}


def test_replaced_swtpm_and_current_libvirtd(libvirtd, tmp_path):
    """swtpm (a guest's vTPM) started from a binary a package update then replaced; libvirtd runs
    the installed binary."""
    binary = tmp_path / "swtpm"
    shutil.copy2(shutil.which("swtpm") or "/usr/bin/swtpm", binary)
    state = tmp_path / "state"
    state.mkdir()
    proc = subprocess.Popen([str(binary), "socket", "--tpm2", "--tpmstate", f"dir={state}", "--ctrl", f"type=unixio,path={tmp_path}/ctrl"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(f"/proc/{proc.pid}/exe") or os.readlink(f"/proc/{proc.pid}/exe") != str(binary):
            assert proc.poll() is None and time.monotonic() < deadline, f"swtpm did not start: {proc.stderr.read() if proc.stderr else ''}"
            time.sleep(0.05)
        binary.unlink()
        results = _results("--only", "HV-PATCH-002")
        stale = results[("HV-PATCH-002", f"swtpm (pid {proc.pid})")]
        assert stale["status"] == "fail" and f"executable {binary} was replaced" in stale["message"]
        daemons = [r for (cid, resource), r in results.items() if resource.startswith("libvirtd (pid")]
        assert daemons and all(r["status"] == "pass" for r in daemons)
    finally:
        proc.kill()
        proc.wait(10)


LIBVIRT_NETS = {
    "nat": "<network><name>hwtest-rnat</name><forward mode='nat'/><bridge name='virbr-hwn' stp='on' delay='0'/>"
           "<ip address='10.93.0.1' netmask='255.255.255.0'><dhcp><range start='10.93.0.100' end='10.93.0.200'/></dhcp></ip></network>",
    "isolated": "<network><name>hwtest-riso</name><bridge name='virbr-hwi' stp='on' delay='0'/>"
                "<ip address='10.94.0.1' netmask='255.255.255.0'/></network>",
}


@pytest.mark.parametrize("kind", LIBVIRT_NETS)
def test_reachability_through_the_rules_libvirt_installs(libvirtd, kind, tmp_path):
    """A real libvirt NAT/isolated network: its bridge, its dnsmasq and the rules libvirt put into
    the firewall; a guest namespace plugged into the bridge probes our listeners."""
    import reach_lab
    import test_reach as harness

    require(shutil.which("nft") is not None and shutil.which("ip") is not None, "nftables and iproute2")
    conn = connect()
    net = conn.networkCreateXML(LIBVIRT_NETS[kind])
    bridge = net.bridgeName()
    subnet = "10.93.0" if kind == "nat" else "10.94.0"
    guest = f"hwr-lv-{uuid.uuid4().hex[:6]}"
    ports = [("tcp", 16509), ("tcp", 5901), ("tcp", 8006), ("udp", 5353)]
    server = None
    try:
        subprocess.run(["ip", "netns", "add", guest], check=True, timeout=30)
        subprocess.run(["ip", "link", "add", "vnet-hwr", "type", "veth", "peer", "name", "eth0", "netns", guest], check=True, timeout=30)
        subprocess.run(["ip", "link", "set", "vnet-hwr", "master", bridge], check=True, timeout=30)
        subprocess.run(["ip", "link", "set", "vnet-hwr", "up"], check=True, timeout=30)
        for args in (["link", "set", "eth0", "up"], ["link", "set", "lo", "up"], ["addr", "add", f"{subnet}.2/24", "dev", "eth0"]):
            subprocess.run(["ip", "-n", guest, *args], check=True, timeout=30)
        deadline = time.monotonic() + 60
        while open("/sys/class/net/vnet-hwr/brport/state").read().strip() != "3":  # STP: wait until the port forwards
            assert time.monotonic() < deadline, "the bridge port never reached the forwarding state"
            time.sleep(0.2)
        server = subprocess.Popen([sys.executable, "-c", reach_lab.SERVER, json.dumps([(p, "0.0.0.0", n) for p, n in ports])],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        rows = json.loads(hyperward("reach", "--format", "json").stdout)
        predicted = {f"{r['protocol']}:{r['port']}": r["reachable"] for r in rows if r["source"] == bridge}
        done = subprocess.run(["ip", "netns", "exec", guest, sys.executable, "-c", harness.PROBE, f"{subnet}.1",
                               *(f"{p}:{n}" for p, n in ports)], capture_output=True, text=True, timeout=60)
        actual = json.loads(done.stdout)
        assert {k: predicted.get(k) for k in actual} == actual, rows
        # libvirt's own accept rules for DHCP and DNS on its bridge are read as such
        dhcp = [r for r in rows if r["source"] == bridge and r["protocol"] == "udp" and r["port"] == 67]
        assert not dhcp or dhcp[0]["reachable"] is True
    finally:
        if server is not None:
            server.kill()
            server.wait(10)
        subprocess.run(["ip", "link", "del", "vnet-hwr"], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", guest], capture_output=True, timeout=30)
        net.destroy()
        conn.close()
