"""HV-SCAN-001: hyperward's own recorded scans, Nessus and OpenVAS report files, guests found by
name and by their DHCP leases."""

from __future__ import annotations

import datetime
import json
import os
import time

import pytest

from conftest import hyperward

HVM = "hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)"
SEV = "sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)"


def _nessus(hosts: list[tuple[str, str, str]]) -> str:
    """A Nessus v2 export: ReportHost name, host-ip, hostname and HOST_START tags."""
    body = "".join(
        f'<ReportHost name="{ip}"><HostProperties><tag name="HOST_END">{when}</tag><tag name="host-ip">{ip}</tag>'
        f'<tag name="hostname">{name}</tag><tag name="HOST_START">{when}</tag></HostProperties>'
        f'<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="0" pluginID="10267" pluginName="SSH Server Type and Version Information" pluginFamily="Service detection"/>'
        f"</ReportHost>" for ip, name, when in hosts)
    return f'<?xml version="1.0" ?>\n<NessusClientData_v2><Policy><policyName>Basic Network Scan</policyName></Policy><Report name="weekly">{body}</Report></NessusClientData_v2>\n'


def _openvas(start: str, hosts: list[tuple[str, str]]) -> str:
    """A Greenbone report export: report/report with scan_start and host entries with details."""
    body = "".join(f"<host><ip>{ip}</ip><start>{start}</start><detail><name>hostname</name><value>{name}</value></detail></host>" for ip, name in hosts)
    return (f'<report id="f0fdf522-276d-4893-9274-fb8699dc2270" format_id="a994b278-1f62-11e1-96ac-406186ea4fc5">'
            f'<report id="f0fdf522-276d-4893-9274-fb8699dc2270"><scan_start>{start}</scan_start>{body}</report></report>\n')


def _results(root, config, env=None) -> dict[str, tuple[str, str]]:
    done = hyperward("scan", "--root", str(root), "--config", str(config), "--only", "HV-SCAN-001", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return {r["resource"]: (r["status"], r["message"]) for r in json.loads(done.stdout)["results"]}


def test_reports_and_leases_cover_host_and_guests(hardened, tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    recent = now - datetime.timedelta(days=2)
    old = now - datetime.timedelta(days=40)
    (hardened / "var/lib/libvirt/dnsmasq").mkdir(parents=True)
    (hardened / "var/lib/libvirt/dnsmasq/virbr0.status").write_text(json.dumps([
        {"ip-address": "192.168.122.15", "mac-address": "52:54:00:6b:3c:58", "hostname": "web01", "expiry-time": 1795800000}]))
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "weekly.nessus").write_text(_nessus([("192.168.122.15", "web01", recent.strftime("%a %b %d %H:%M:%S %Y")),
                                                    ("10.20.0.5", "kvm-hardened", recent.strftime("%a %b %d %H:%M:%S %Y"))]))
    (reports / "openvas.xml").write_text(_openvas(old.isoformat().replace("+00:00", "Z"), [("10.20.0.9", "sev-vm")]))
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\nreports = ["{reports}/*.nessus", "{reports}/*.xml"]\n')
    results = _results(hardened, config)
    assert results["host"][0] == "pass" and "Nessus" in results["host"][1]
    assert results[HVM][0] == "pass" and "Nessus" in results[HVM][1]  # by its DHCP lease's address
    assert results[SEV][0] == "fail" and "days ago" in results[SEV][1] and "OpenVAS" in results[SEV][1]


def test_recorded_hyperward_scans_count_for_the_host(hardened, tmp_path):
    history = tmp_path / "history.sqlite"
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\npath = "{history}"\n')
    first = _results(hardened, config)
    assert first == {"host": ("fail", "no vulnerability scan hyperward can see: no scan history (hyperward scan --record) and no "
                                      "OpenVAS/Nessus report files configured ([history] reports in /etc/hyperward/config.toml)")}
    assert hyperward("scan", "--root", str(hardened), "--config", str(config), "--record", "-q").returncode == 0
    results = _results(hardened, config)
    assert results["host"][0] == "pass" and "hyperward history" in results["host"][1]
    assert results[HVM][0] == "fail" and "no vulnerability scan on record" in results[HVM][1]


def test_broken_report_is_named_and_the_rest_counts(hardened, tmp_path):
    reports = tmp_path / "r"
    reports.mkdir()
    (reports / "cut.nessus").write_text("<NessusClientData_v2><Report><ReportHost")
    (reports / "bomb.xml").write_text('<!DOCTYPE x [<!ENTITY a "aaaa">]><report>&a;</report>')
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\nreports = ["{reports}/*"]\n')
    results = _results(hardened, config)
    assert results[str(reports / "cut.nessus")][0] == "error" and "not a Nessus or OpenVAS report" in results[str(reports / "cut.nessus")][1]
    assert results[str(reports / "bomb.xml")][0] == "error"
    assert results["host"][0] == "fail"


def test_reports_that_are_not_small_regular_files_are_named_and_skipped(hardened, tmp_path):
    """What a user who can write the report directory may plant: a FIFO (would block forever), a
    symlink to /dev/zero (would never end), a 1 TiB sparse file. Each is one error naming the
    path, and the scan finishes at once with the real report still counted."""
    reports = tmp_path / "r"
    reports.mkdir()
    os.mkfifo(reports / "fifo.xml")
    (reports / "zero.xml").symlink_to("/dev/zero")
    with open(reports / "sparse.xml", "wb") as handle:
        handle.truncate(1 << 40)
    (reports / "real.nessus").symlink_to(tmp_path / "elsewhere.nessus")
    (tmp_path / "elsewhere.nessus").write_text(_nessus([("192.168.122.15", "web01", "Mon Mar  2 10:00:00 2026")]))
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\nreports = ["{reports}/*"]\n')
    started = time.monotonic()
    results = _results(hardened, config)
    assert time.monotonic() - started < 20
    assert results[str(reports / "fifo.xml")] == ("error", f"{reports / 'fifo.xml'}: not a regular file (a FIFO, socket or device); not read")
    assert results[str(reports / "zero.xml")] == ("error", f"{reports / 'zero.xml'}: is a symbolic link; not followed (name the file itself)")
    assert results[str(reports / "sparse.xml")] == ("error", f"{reports / 'sparse.xml'}: larger than {512 * 1024 * 1024} bytes; not read")
    assert results[str(reports / "real.nessus")][0] == "error"


SCAN_AGES = [
    # hours since the OpenVAS scan of the host, whether the host fails (7 days is the policy)
    (1, False), (7 * 24 - 1, False), (7 * 24 + 1, True), (8 * 24 + 1, True),
]


@pytest.mark.parametrize("hours,fails", SCAN_AGES, ids=[f"{h}h" for h, _ in SCAN_AGES])
def test_scan_age_boundary(hardened, tmp_path, hours, fails):
    """"Within 7 days" (the catalog): a scan 7 days and an hour old is past it; whole days are not the unit."""
    when = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=hours)).replace(microsecond=0)
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "openvas.xml").write_text(_openvas(when.isoformat().replace("+00:00", "Z"), [("10.20.0.5", "kvm-hardened")]))
    config = tmp_path / "config.toml"
    config.write_text(f'[history]\nreports = ["{reports}/*.xml"]\n')
    status, message = _results(hardened, config)["host"]
    if fails:
        assert (status, message) == ("fail", f"last scanned {when.isoformat()} ({hours // 24} days ago) by OpenVAS {reports}/openvas.xml")
    else:
        assert status == "pass" and message.startswith(f"scanned {when.isoformat()} by OpenVAS"), message
