"""The libvirt API path through libvirt's test:/// driver (a real libvirt connection to a
custom node description), and a daemon that accepts a connection but never answers."""

from __future__ import annotations

import json
import pathlib
import socket
import threading

import pytest

from hyperward.collect import collect_host
from hyperward.collect.libvirt_api import collect
from hyperward.engine import registry, run_checks, select
from hyperward.model import Status

from conftest import hyperward, require

NODE = """<?xml version="1.0"?>
<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads>
    <active>4</active><mhz>3000</mhz><model>i686</model>
  </cpu>
  <memory>8388608</memory>
  <domain type='test'>
    <name>api-exposed</name>
    <uuid>11111111-2222-4333-8444-555555555555</uuid>
    <memory>1048576</memory>
    <vcpu>2</vcpu>
    <os><type arch='i686'>hvm</type></os>
    <devices>
      <interface type='network'>
        <mac address='52:54:00:aa:bb:01'/>
        <source network='api-routed'/>
      </interface>
      <graphics type='vnc' port='5904' autoport='no' listen='0.0.0.0' passwd='Tq9!zK2m'/>
    </devices>
  </domain>
  <domain type='test'>
    <name>api-quiet</name>
    <uuid>66666666-7777-4888-9999-000000000000</uuid>
    <memory>524288</memory>
    <memoryBacking><nosharepages/></memoryBacking>
    <os><type arch='i686'>hvm</type></os>
    <devices/>
  </domain>
  <network>
    <name>api-routed</name>
    <uuid>aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee</uuid>
    <forward mode='route'/>
    <bridge name='virbr9'/>
    <ip address='10.99.0.1' netmask='255.255.255.0'/>
  </network>
</node>
"""


def _libvirt() -> None:
    try:
        import libvirt  # noqa: F401
    except ImportError:
        require(False, "python3-libvirt is not installed")


@pytest.fixture
def node(tmp_path: pathlib.Path) -> str:
    _libvirt()
    path = tmp_path / "node.xml"
    path.write_text(NODE)
    (tmp_path / "root/etc/libvirt").mkdir(parents=True)
    return f"test://{path}"


def test_domains_and_networks_come_from_the_api(node, tmp_path):
    facts = collect_host(str(tmp_path / "root"), libvirt_uri=node)
    assert facts.libvirt.api is not None and facts.libvirt.api.connected and facts.libvirt.api.error is None
    assert "testSecurity" in facts.libvirt.api.secmodels
    domains = {d.name: d for d in facts.libvirt.domains}
    assert set(domains) == {"api-exposed", "api-quiet"}
    assert domains["api-exposed"].origin == "libvirt API" and domains["api-exposed"].running
    assert [n.name for n in facts.libvirt.networks] == ["api-routed"]
    report = run_checks(facts, select(registry(), ["HV-NET-002", "HV-AUTH-010", "HV-NET-001", "HV-SIDE-007"]))
    verdicts = {(f.check_id, f.result.resource): f.status for f in report.findings}
    assert verdicts[("HV-NET-002", "network api-routed")] is Status.FAIL
    assert verdicts[("HV-AUTH-010", "api-exposed (11111111-2222-4333-8444-555555555555)")] is Status.FAIL
    assert verdicts[("HV-NET-001", "api-exposed (11111111-2222-4333-8444-555555555555)")] is Status.FAIL
    assert verdicts[("HV-SIDE-007", "api-quiet (66666666-7777-4888-9999-000000000000)")] is Status.PASS


def test_cli_connect_reports_and_hides_the_password(node, tmp_path):
    done = hyperward("scan", "--root", str(tmp_path / "root"), "--connect", node, "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    [console] = [r for r in report["results"] if r["id"] == "HV-AUTH-010" and r["resource"].startswith("api-exposed")]
    assert console["status"] == "fail" and "VNC on 0.0.0.0" in console["message"]
    snapshot = hyperward("collect", "--root", str(tmp_path / "root"), "--connect", node, "-o", "-").stdout
    assert "Tq9!zK2m" not in done.stdout + snapshot
    assert '"has_password": true' in snapshot


def test_a_daemon_that_never_answers_hits_the_deadline(tmp_path):
    _libvirt()
    path = str(tmp_path / "hang.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    try:
        result = collect(f"qemu+unix:///system?socket={path}", timeout=1.5)
        assert not result.api.connected and "no answer from" in (result.api.error or "")
        assert result.domains == []
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_connection_refused_is_an_error_not_a_crash(tmp_path):
    _libvirt()
    result = collect(f"qemu+unix:///system?socket={tmp_path}/absent.sock", timeout=10)
    assert not result.api.connected and "absent.sock" in (result.api.error or "")
