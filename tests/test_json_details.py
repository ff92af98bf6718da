"""The JSON report gives each result structured details and each check its reference URLs (issue
23): package, versions and CVE; guest and platform; file, key, line and mode, without a regex."""

from __future__ import annotations

import json

import pytest

from hyperward.catalog import catalog
from hyperward.engine import registry
from hyperward.references import check_urls, urls_for

from conftest import copy_root, hyperward


@pytest.fixture(scope="module")
def weak_json(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = copy_root("weak", tmp_path_factory.mktemp("json"), kvm_mode=0o666)
    done = hyperward("scan", "--root", str(root), "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _result(report: dict, check_id: str, resource: str) -> dict:
    [found] = [r for r in report["results"] if r["id"] == check_id and r["resource"] == resource]
    return found


def test_schema_2_every_result_has_details(weak_json):
    assert weak_json["schema"] == 2
    assert all(isinstance(r["details"], dict) for r in weak_json["results"])
    for r in weak_json["results"]:
        for value in r["details"].values():
            assert value is None or isinstance(value, (str, int, float, bool)) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value)), (r["id"], r["details"])


def test_cve_details(weak_json):
    result = _result(weak_json, "HV-VULN-001", "CVE-2024-7409 qemu")
    details = result["details"]
    assert details["cve"] == "CVE-2024-7409" and details["package"] == "qemu" and details["source"] == "qemu"
    assert details["binaries"] and all(isinstance(b, str) for b in details["binaries"])
    assert details["installed"] and details["fixed"] and details["advisory"]
    assert isinstance(details["fixed_by_pending"], bool)
    assert details["installed"] in result["message"] and details["fixed"] in result["message"]


def test_guest_details(weak_json):
    result = _result(weak_json, "HV-TPM-003", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)")
    assert result["platform"] == "libvirt"
    assert result["details"] == {"platform": "libvirt", "guest": "weak-vm", "guest_id": "c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c",
                                 "guest_uuid": "c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c",
                                 "problems": ["BIOS (SeaBIOS) firmware: no Secure Boot"],
                                 # issue 14: the definition file and the line of the element the check judges (<os>)
                                 "file": "/etc/libvirt/qemu/weak-vm.xml", "element": "os", "line": 10}
    domain = _result(weak_json, "HV-NET-005", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)")
    assert domain["details"]["guest"] == "weak-vm" and domain["details"]["platform"] == "libvirt"


def test_file_key_line_and_mode_details(weak_json):
    # issue 14: the line of the key that decided it (qemu.conf line 975 is `user = "root"`)
    assert _result(weak_json, "HV-ISO-005", "qemu.conf:user")["details"] == {"file": "/etc/libvirt/qemu.conf", "key": "user", "default": False,
                                                                              "line": 975}
    assert _result(weak_json, "HV-AUTH-013", "sshd:PermitRootLogin")["details"] == {
        "key": "PermitRootLogin", "default": False, "file": "/etc/ssh/sshd_config.d/10-legacy.conf", "line": 2}
    assert _result(weak_json, "HV-BAK-004", "/var/lib/libvirt/qemu/save")["details"] == {"file": "/var/lib/libvirt/qemu/save", "mode": "0755"}
    assert _result(weak_json, "HV-ISO-005", "weak-vm (pid 3456)")["details"] == {"pid": 3456, "guest": "weak-vm"}


def test_checks_map_gives_reference_urls(weak_json):
    checks = weak_json["checks"]
    assert set(checks) == {r["id"] for r in weak_json["results"]}
    assert checks["HV-ISO-014"]["urls"] == ["https://libvirt.org/formatdomain.html", "https://libvirt.org/kbase/virtiofs.html",
                                           "https://pve.proxmox.com/wiki/Manual:_pct.conf"]
    assert all(checks[c]["urls"] for c in checks)


@pytest.mark.parametrize("reference,urls", [
    ("libvirt docs/formatdomain.rst (Filesystems)", ["https://libvirt.org/formatdomain.html"]),
    ("libvirt docs/kbase/secureboot.rst", ["https://libvirt.org/kbase/secureboot.html"]),
    ("Linux Documentation/admin-guide/hw-vuln/l1tf.rst", ["https://docs.kernel.org/admin-guide/hw-vuln/l1tf.html"]),
    ("shadow(5), crypt(5)", ["https://manpages.debian.org/bookworm/shadow.5.en.html", "https://manpages.debian.org/bookworm/crypt.5.en.html"]),
    ("Proxmox VE qm.conf(5) tpmstate0", ["https://pve.proxmox.com/wiki/Manual:_qm.conf"]),
    ("libvirt src/qemu/qemu.conf.in user/group", ["https://gitlab.com/libvirt/libvirt/-/blob/master/src/qemu/qemu.conf.in"]),
    ("https://pve.proxmox.com/pve-docs/pveproxy.8.html", ["https://pve.proxmox.com/pve-docs/pveproxy.8.html"]),
    ("something nobody knows", []),
])
def test_reference_urls(reference, urls):
    assert urls_for(reference) == urls


def test_every_implemented_check_has_a_url():
    entries = catalog()
    missing = [cid for cid, c in registry().items() if not check_urls(c.meta, entries[cid].sources if cid in entries else "")]
    assert missing == []
