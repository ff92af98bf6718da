"""Golden scans of the committed fixture roots: the exact set of failing (check, resource) pairs."""

from __future__ import annotations

from hyperward.engine import registry
from hyperward.model import Status

from conftest import failing, scan

G = "/etc/default/grub (with grub.d)"

WEAK_FAILURES = {
    ("HV-VULN-002", "/proc/cmdline: mitigations=off"),
    ("HV-VULN-002", "/proc/cmdline: kvm-intel.vmentry_l1d_flush=never"),
    ("HV-VULN-002", "/proc/cmdline: intel_iommu=off"),
    ("HV-VULN-002", "/proc/cmdline: pcie_acs_override=downstream,multifunction"),
    ("HV-VULN-002", f"{G}: mitigations=off"),
    ("HV-VULN-002", f"{G}: nopti"),
    ("HV-VULN-002", f"{G}: kvm.nx_huge_pages=off"),
    ("HV-SIDE-001", "gather_data_sampling"),
    ("HV-SIDE-001", "itlb_multihit"),
    ("HV-SIDE-001", "l1tf (VMX)"),
    ("HV-SIDE-001", "mds"),
    ("HV-SIDE-001", "meltdown"),
    ("HV-SIDE-001", "mmio_stale_data"),
    ("HV-SIDE-001", "old_microcode"),
    ("HV-SIDE-001", "retbleed"),
    ("HV-SIDE-001", "spec_store_bypass"),
    ("HV-SIDE-001", "spectre_v1"),
    ("HV-SIDE-001", "spectre_v2"),
    ("HV-SIDE-001", "spectre_v2 (BHI)"),
    ("HV-SIDE-002", "l1tf"),
    ("HV-SIDE-003", "smt"),
    ("HV-SIDE-004", "itlb_multihit"),
    ("HV-SIDE-005", "ksm"),
    ("HV-NEST-001", "kvm_intel"),
    ("HV-PATCH-003", "kernel"),
    ("HV-PATCH-003", "reboot-required"),
    ("HV-PATCH-004", "cpu"),
    ("HV-PATCH-005", "apt"),
    ("HV-IDS-007", "kernel"),
    ("HV-ISO-021", "/dev/kvm"),
    ("HV-TPM-001", "host"),
    ("HV-TPM-002", "host"),
}


def test_hardened_root_passes_every_check(hardened):
    report = scan(hardened)
    assert failing(report) == set()
    assert {f.status for f in report.findings} == {Status.PASS}
    assert {f.check_id for f in report.findings} == set(registry())


def test_weak_root_fails_exactly_these(weak):
    report = scan(weak)
    assert failing(report) == WEAK_FAILURES
    assert not [f for f in report.findings if f.status is Status.ERROR]


def test_every_registered_check_has_a_failing_and_a_passing_golden_root():
    assert {cid for cid, _ in WEAK_FAILURES} == set(registry())
