"""The platforms redesign (issue 13) must not change what a libvirt user sees: the (check, resource,
status) sets of both golden roots were captured from the code before it (tests/fixtures/
golden-results.json) and are compared here. A change made on purpose (an accuracy fix) is listed in
DIVERGENCES with its reason, so every difference from the capture is named."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, copy_root

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks

CAPTURE = json.loads((REPO / "tests/fixtures/golden-results.json").read_text())

WHY = {
    "HV-AUTH-013": "issue 12: weak SSH algorithms moved to their own row, HV-AUTH-016",
    "HV-AUTH-016": "issue 12: new row for weak SSH ciphers, MACs and key exchange (was part of HV-AUTH-013)",
    "HV-BAK-001": "issue 12: no backup hyperward can see is a finding, not 'not applicable'",
    "HV-BAK-002": "issue 12: no backup hyperward can see is a finding, per guest",
    "HV-SCAN-001": "issue 12: no scan history hyperward can see is a finding",
    "HV-AUTH-006": "issue 12: under socket activation the -admin.socket unit's SocketMode is the admin socket's mode; "
                   "libvirtd.conf's unix_sock_admin_perms is not used, so the unit is judged (pass or fail), not the key",
    "HV-ISO-009": "issue 23: one fact, one verdict: the memory-state directories (save, snapshot, dump) are judged by "
                  "HV-BAK-004 alone (0755 passed here and failed there)",
    "HV-ISO-019": "issue 23: the dump directory's mode is judged by HV-BAK-004 alone (HV-ISO-019 keeps dump_guest_core and dumpCore)",
    "HV-PATCH-001": "issue 12: every pending update is listed, not only security ones (base-files is pending from the point release: low)",
    "HV-FW-003": "issue 12: the weak root has no /proc/sys/net, so br_netfilter's state is unknown, not 'not loaded'",
    "2025-files": "issue 22: the hardened root runs Debian's 6.1.119 (November 2024), which has no 2025 vulnerability files",
    "weak-kernel": "issue 22: the weak root runs Debian's 6.1.90 (May 2024), which has no old_microcode file",
    "weak-cpu": "issue 22: the weak root is the Skylake-SP its strings describe: with TSX (RTM) and mitigations=off, TAA is 'Vulnerable'",
    "issue-18": "issue 18: new rows judged inside the guests' disks; not applicable unless the scan is asked to look inside (--guests)",
}
INSIDE_ROWS = ("HV-PATCH-070", "HV-PATCH-071", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-AUTH-072", "HV-AUTH-073", "HV-AUTH-074",
               "HV-AUTH-075", "HV-AUTH-076", "HV-ISO-070", "HV-SCAN-070")

#: (root, check, resource) -> (status before or None when the row is new, status now or None when
#: the row is gone, why)
DIVERGENCES: dict[tuple[str, str, str], tuple[str | None, str | None, str]] = {
    ('weak', 'HV-PATCH-001', 'base-files'): (None, 'fail', WHY['HV-PATCH-001']),
    ('hardened', 'HV-AUTH-006', 'libvirtd-admin.socket'): (None, 'pass', WHY['HV-AUTH-006']),
    ('hardened', 'HV-AUTH-006', 'libvirtd.conf:unix_sock_admin_perms'): ('pass', None, WHY['HV-AUTH-006']),
    ('hardened', 'HV-AUTH-013', 'sshd:Ciphers'): ('pass', None, WHY['HV-AUTH-013']),
    ('hardened', 'HV-AUTH-013', 'sshd:KexAlgorithms'): ('pass', None, WHY['HV-AUTH-013']),
    ('hardened', 'HV-AUTH-013', 'sshd:MACs'): ('pass', None, WHY['HV-AUTH-013']),
    ('hardened', 'HV-AUTH-016', 'sshd:Ciphers'): (None, 'pass', WHY['HV-AUTH-016']),
    ('hardened', 'HV-AUTH-016', 'sshd:KexAlgorithms'): (None, 'pass', WHY['HV-AUTH-016']),
    ('hardened', 'HV-AUTH-016', 'sshd:MACs'): (None, 'pass', WHY['HV-AUTH-016']),
    ('hardened', 'HV-BAK-001', 'host'): ('not_applicable', None, WHY['HV-BAK-001']),
    ('hardened', 'HV-BAK-001', 'host configuration'): (None, 'fail', WHY['HV-BAK-001']),
    ('hardened', 'HV-BAK-002', 'hardened-vm (6f1a8e5c-3b2d-4c9e-8a7f-1d2e3c4b5a69)'): (None, 'fail', WHY['HV-BAK-002']),
    ('hardened', 'HV-BAK-002', 'host'): ('not_applicable', None, WHY['HV-BAK-002']),
    ('hardened', 'HV-BAK-002', 'sev-vm (0b9d7c3e-5f21-4a8b-9c6d-2e4f6a8b0c1d)'): (None, 'fail', WHY['HV-BAK-002']),
    ('hardened', 'HV-SCAN-001', 'host'): ('not_applicable', 'fail', WHY['HV-SCAN-001']),
    ('weak', 'HV-AUTH-006', 'libvirtd.conf:unix_sock_admin_perms'): ('fail', None, WHY['HV-AUTH-006']),
    ('hardened', 'HV-SIDE-001', 'indirect_target_selection'): ('pass', None, WHY['2025-files']),
    ('hardened', 'HV-SIDE-001', 'old_microcode'): ('pass', None, WHY['2025-files']),
    ('hardened', 'HV-SIDE-001', 'tsa'): ('pass', None, WHY['2025-files']),
    ('hardened', 'HV-SIDE-001', 'vmscape'): ('pass', None, WHY['2025-files']),
    ('weak', 'HV-SIDE-001', 'old_microcode'): ('fail', None, WHY['weak-kernel']),
    ('weak', 'HV-SIDE-001', 'tsx_async_abort'): ('pass', 'fail', WHY['weak-cpu']),
    ('weak', 'HV-AUTH-013', 'sshd:Ciphers'): ('pass', None, WHY['HV-AUTH-013']),
    ('weak', 'HV-AUTH-013', 'sshd:KexAlgorithms'): ('fail', None, WHY['HV-AUTH-013']),
    ('weak', 'HV-AUTH-013', 'sshd:MACs'): ('fail', None, WHY['HV-AUTH-013']),
    ('weak', 'HV-AUTH-016', 'sshd:Ciphers'): (None, 'pass', WHY['HV-AUTH-016']),
    ('weak', 'HV-AUTH-016', 'sshd:KexAlgorithms'): (None, 'fail', WHY['HV-AUTH-016']),
    ('weak', 'HV-AUTH-016', 'sshd:MACs'): (None, 'fail', WHY['HV-AUTH-016']),
    ('weak', 'HV-BAK-001', 'host'): ('not_applicable', None, WHY['HV-BAK-001']),
    ('weak', 'HV-BAK-001', 'host configuration'): (None, 'fail', WHY['HV-BAK-001']),
    ('weak', 'HV-BAK-002', 'host'): ('not_applicable', None, WHY['HV-BAK-002']),
    ('weak', 'HV-BAK-002', 'legacy-vm (a1b2c3d4-e5f6-4789-8abc-def012345678)'): (None, 'fail', WHY['HV-BAK-002']),
    ('weak', 'HV-BAK-002', 'weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)'): (None, 'fail', WHY['HV-BAK-002']),
    ('weak', 'HV-FW-003', 'net.bridge'): (None, 'not_applicable', WHY['HV-FW-003']),
    ('weak', 'HV-FW-003', 'net.bridge.bridge-nf-call-ip6tables'): ('pass', None, WHY['HV-FW-003']),
    ('weak', 'HV-FW-003', 'net.bridge.bridge-nf-call-iptables'): ('pass', None, WHY['HV-FW-003']),
    ('weak', 'HV-SCAN-001', 'host'): ('not_applicable', 'fail', WHY['HV-SCAN-001']),
    ('hardened', 'HV-ISO-009', '/var/lib/libvirt/qemu/dump'): ('pass', None, WHY['HV-ISO-009']),
    ('hardened', 'HV-ISO-009', '/var/lib/libvirt/qemu/save'): ('pass', None, WHY['HV-ISO-009']),
    ('hardened', 'HV-ISO-009', '/var/lib/libvirt/qemu/snapshot'): ('pass', None, WHY['HV-ISO-009']),
    ('hardened', 'HV-ISO-019', '/var/lib/libvirt/qemu/dump'): ('pass', None, WHY['HV-ISO-019']),
    ('weak', 'HV-ISO-009', '/var/lib/libvirt/qemu/dump'): ('pass', None, WHY['HV-ISO-009']),
    ('weak', 'HV-ISO-009', '/var/lib/libvirt/qemu/save'): ('pass', None, WHY['HV-ISO-009']),
    ('weak', 'HV-ISO-009', '/var/lib/libvirt/qemu/snapshot'): ('pass', None, WHY['HV-ISO-009']),
    ('weak', 'HV-ISO-019', '/var/lib/libvirt/qemu/dump'): ('fail', None, WHY['HV-ISO-019']),
    **{(root, row, 'host'): (None, 'not_applicable', WHY['issue-18']) for root in ('hardened', 'weak') for row in INSIDE_ROWS},
}


@pytest.mark.parametrize("name,kvm_mode", [("hardened", 0o660), ("weak", 0o666)])
def test_golden_roots_give_the_captured_results(tmp_path, name, kvm_mode, advisory_db):
    root = copy_root(name, tmp_path, kvm_mode=kvm_mode)
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(tmp_path / "no-baseline.json"),
                         history_path=str(tmp_path / "no-history.sqlite"))
    report = run_checks(facts, registry(), "multi-tenant")
    now = {(f.check_id, f.result.resource.replace(str(root), "ROOT")): f.status.value for f in report.findings}
    before = {(c, r): s for c, r, s in CAPTURE["results"][name]}
    expected = dict(before)
    for (root_name, check, resource), (old, new, _why) in DIVERGENCES.items():
        if root_name != name:
            continue
        assert before.get((check, resource)) == old, f"divergence {check} {resource}: capture says {before.get((check, resource))}"
        if new is None:
            expected.pop((check, resource), None)
        else:
            expected[(check, resource)] = new
    changed = {k: (expected.get(k), now.get(k)) for k in expected.keys() | now.keys() if expected.get(k) != now.get(k)}
    assert not changed, "results differ from the capture and no divergence names them: " + json.dumps(
        sorted([list(k), *v] for k, v in changed.items()), indent=0)
