"""`hyperward fix` against the real libvirtd (started here when none runs; run under
`flock /tmp/hyperward-live.lock`): a weak domain defined through the API is fixed by the bash form
as --apply runs it (an edited copy of `virsh dumpxml --inactive --security-info`, `virsh define`d
with HW_DEFINE=1), the rescan of this host passes, and a second run defines nothing. Only the
hwfix-* domain's results are planned: nothing else on this machine is touched (this host's own
qemu.conf is left alone; the offline tests cover qemu.conf)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from live_libvirt import connect, running_libvirtd, weak_domain_xml

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks
from hyperward.fix import bash
from hyperward.fix.apply import run_script
from hyperward.fix.plan import Context, Failing, build
from hyperward.model import Status

WEAK = weak_domain_xml("hwfix-weak", vnc_password="Zq8%Pw3x")
CHECKS = {"HV-AUTH-010", "HV-AUTH-011", "HV-ISO-019"}


@pytest.fixture(scope="module")
def weak_domain() -> Iterator[str]:
    with running_libvirtd("hwfix-"):
        conn = connect()
        try:
            dom = conn.defineXML(WEAK)
            yield f"hwfix-weak ({dom.UUIDString()})"
        finally:
            conn.close()


def mine(resource: str) -> dict[str, tuple[Status, str]]:
    report = run_checks(collect_host("/"), registry(), "multi-tenant")
    return {f.check_id: (f.status, f.result.message) for f in report.findings
            if f.check_id in CHECKS and f.result.resource == resource}


def test_a_weak_live_domain_is_fixed_through_virsh_define(weak_domain, tmp_path):
    report = run_checks(collect_host("/"), registry(), "multi-tenant")
    failing = [Failing(f.check_id, f.result.resource, f.result.message, f.remediation, dict(f.result.details))
               for f in report.findings if f.status is Status.FAIL and f.result.resource == weak_domain and f.check_id in CHECKS]
    assert {f.check_id for f in failing} == CHECKS
    blocks = build(failing, Context("/"))
    assert all(b.automatic for b in blocks) and all(op.kind == "xml" for b in blocks for op in b.ops)
    script = bash.render(blocks, root="/", source="live test", stamp="T")
    assert "Zq8%Pw3x" not in script  # the console password is never in the artifact

    results, output = run_script(script, "/", str(tmp_path / "backups"))
    assert set(results.values()) == {"done"}, output
    assert "to apply: virsh define" not in output  # HW_DEFINE=1 defined them
    after = mine(weak_domain)
    assert after["HV-AUTH-010"][0] is Status.PASS and after["HV-AUTH-011"][0] is Status.PASS, after
    assert after.get("HV-ISO-019", (Status.PASS, ""))[0] is Status.PASS, after
    conn = connect()
    try:
        xml = conn.lookupByName("hwfix-weak").XMLDesc(3)  # VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE
    finally:
        conn.close()
    assert "listen='127.0.0.1'" in xml and "host='127.0.0.1'" in xml and "dumpCore='off'" in xml
    assert "0.0.0.0" not in xml
    assert "passwd='Zq8%Pw3x'" in xml  # defined from the --security-info copy: the password survives
    assert (pathlib.Path(tmp_path / "backups") / "hwfix-weak.edited.xml").exists()

    again, output = run_script(script, "/", str(tmp_path / "backups-2"))
    assert set(again.values()) == {"done"}, output
    assert "changed:" not in output and "already in place" in output
