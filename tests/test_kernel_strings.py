"""Every value arch/x86/kernel/cpu/bugs.c can print into /sys/devices/system/cpu/vulnerabilities,
judged by HV-SIDE-001 (and HV-PATCH-004 for microcode): no value may be "unrecognized"."""

from __future__ import annotations

import pytest

from hyperward.model import Severity, Status

from conftest import apply, copy_root, scan

V = "sys/devices/system/cpu/vulnerabilities"

MITIGATED = [
    "Not affected",
    "Mitigation: PTE Inversion",
    "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT disabled",
    "Mitigation: PTE Inversion; VMX: cache flushes, SMT vulnerable",
    "Mitigation: PTE Inversion; VMX: EPT disabled",
    "Mitigation: PTE Inversion; VMX: flush not necessary, SMT disabled",
    "KVM: Mitigation: VMX unsupported",
    "KVM: Mitigation: VMX disabled",
    "KVM: Mitigation: Split huge pages",
    "Mitigation: Clear CPU buffers; SMT disabled",
    "Mitigation: Clear CPU buffers; SMT vulnerable",
    "Mitigation: Clear CPU buffers; SMT Host state unknown",
    "Mitigation: Clear CPU buffers; SMT mitigated",
    "Mitigation: TSX disabled",
    "Mitigation: Clear Register File",
    "Mitigation: Microcode",
    "Mitigation: Microcode (locked)",
    "Mitigation: usercopy/swapgs barriers and __user pointer sanitization",
    "Mitigation: untrained return thunk; SMT enabled with STIBP protection",
    "Mitigation: IBPB; SMT disabled",
    "Mitigation: IBRS",
    "Mitigation: Enhanced IBRS",
    "Mitigation: Stuffing",
    "Mitigation: Aligned branch/return thunks",
    "Mitigation: Retpolines, Stuffing RSB",
    "Mitigation: Clear CPU buffers: user/kernel boundary",
    "Mitigation: Clear CPU buffers: VM",
    "Mitigation: Speculative Store Bypass disabled",
    "Mitigation: Speculative Store Bypass disabled via prctl and seccomp",
    "Mitigation: SMT disabled",
    "Mitigation: Safe RET",
    "Mitigation: IBPB on VMEXIT only",
    "Mitigation: Reduced Speculation",
    "Mitigation: IBPB before exit to userspace",
    "Mitigation: IBPB on VMEXIT",
    "Mitigation: PTI",
    "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; PBRSB-eIBRS: SW sequence; BHI: BHI_DIS_S",
    "Mitigation: Retpolines; IBPB: conditional; IBRS_FW; STIBP: conditional; RSB filling; PBRSB-eIBRS: Not affected; BHI: Retpoline",
    # an AMD Zen guest's spectre_v2 (this repository's CI VM): retpolines, no IBPB in use, no STIBP
    "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Not affected",
    "Mitigation: Enhanced / Automatic IBRS + LFENCE; IBPB: always-on; PBRSB-eIBRS: SW sequence; BHI: SW loop, KVM: SW loop",
    "Mitigation: AVX disabled, no microcode",
]

VULNERABLE = {
    "Vulnerable": {None},
    "Vulnerable; SMT vulnerable": {None},
    "Vulnerable: Clear CPU buffers attempted, no microcode; SMT vulnerable": {None},
    "Vulnerable: No microcode": {None},
    "Processor vulnerable": {None},
    "KVM: Vulnerable": {None},
    "Mitigation: PTE Inversion; VMX: vulnerable": {"VMX"},
    "Mitigation: PTE Inversion; VMX: vulnerable, SMT disabled": {"VMX"},
    "Vulnerable: __user pointer sanitization and usercopy barriers only; no swapgs barriers": {None},
    "Vulnerable: untrained return thunk / IBPB on non-AMD based uarch": {None},
    "Mitigation: Vulnerable, KVM: Not affected": {None},
    "Vulnerable: Safe RET, no microcode": {None},
    "Vulnerable: Microcode, no safe RET": {None},
    "Vulnerable: LFENCE; IBPB: conditional; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Vulnerable": {None, "BHI"},
    "Vulnerable: eIBRS with unprivileged eBPF": {None},
    "Vulnerable: eIBRS+LFENCE with unprivileged eBPF and SMT": {None},
    "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; PBRSB-eIBRS: Vulnerable; BHI: BHI_DIS_S": {"PBRSB-eIBRS"},
    "Mitigation: Retpolines; IBPB: conditional; RSB filling; PBRSB-eIBRS: Not affected; BHI: Retpoline - vulnerable module loaded": {"BHI"},
}

UNKNOWN = [
    "Unknown: Dependent on hypervisor status",
    "Unknown (XEN PV detected, hypervisor mitigation required)",
    "Unknown: running under hypervisor",
    "Unknown: No mitigations",
]


def _side_001(tmp_path, value):
    root = copy_root("hardened", tmp_path, kvm_mode=None)
    apply(root, {f"{V}/probe": value + "\n"})
    return [f for f in scan(root, only=["HV-SIDE-001"]).findings if f.result.resource.split(" ")[0] == "probe"]


@pytest.mark.parametrize("value", MITIGATED)
def test_mitigated_values_pass(tmp_path, value):
    assert [f.status for f in _side_001(tmp_path, value)] == [Status.PASS]


@pytest.mark.parametrize("value", list(VULNERABLE))
def test_vulnerable_values_fail_per_clause(tmp_path, value):
    findings = _side_001(tmp_path, value)
    assert {f.status for f in findings} == {Status.FAIL}
    expected = {"probe" if name is None else f"probe ({name})" for name in VULNERABLE[value]}
    assert {f.result.resource for f in findings} == expected


@pytest.mark.parametrize("value", UNKNOWN)
def test_unknown_values_fail_as_medium(tmp_path, value):
    [finding] = _side_001(tmp_path, value)
    assert finding.status is Status.FAIL and finding.severity is Severity.MEDIUM


@pytest.mark.parametrize(
    "value,fails",
    [("Mitigation: AVX disabled, no microcode", True), ("Vulnerable: No microcode", True), ("Vulnerable: Microcode, no safe RET", False), ("Mitigation: Microcode", False)],
)
def test_microcode_words(tmp_path, value, fails):
    root = copy_root("hardened", tmp_path, kvm_mode=None)
    apply(root, {f"{V}/gather_data_sampling": value + "\n"})
    [finding] = scan(root, only=["HV-PATCH-004"]).findings
    assert finding.status is (Status.FAIL if fails else Status.PASS)
