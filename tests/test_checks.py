"""Per-check pass/fail fixtures: a fixture root, a few real files changed, the exact failing resources."""

from __future__ import annotations

import os
import pathlib

import pytest

from hyperward.model import Severity, Status

from conftest import apply, copy_root, failing, scan, statuses

V = "sys/devices/system/cpu/vulnerabilities"
SB = "sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
THIS_HOSTS_SPECTRE_V2 = "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Retpoline\n"

CASES = [
    # HV-SIDE-001: every file and every sub-clause
    ("bhi-vulnerable", "HV-SIDE-001", {f"{V}/spectre_v2": "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Vulnerable\n"}, {"spectre_v2 (BHI)"}),
    ("bhi-vulnerable-kvm-loop", "HV-SIDE-001", {f"{V}/spectre_v2": "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; PBRSB-eIBRS: SW sequence; BHI: Vulnerable, KVM: SW loop\n"}, {"spectre_v2 (BHI)"}),
    ("bhi-retpoline-is-mitigated", "HV-SIDE-001", {f"{V}/spectre_v2": THIS_HOSTS_SPECTRE_V2}, set()),
    ("future-file-vulnerable", "HV-SIDE-001", {f"{V}/zenbleed_v2": "Vulnerable: no microcode\n"}, {"zenbleed_v2"}),
    ("future-file-mitigated", "HV-SIDE-001", {f"{V}/zenbleed_v2": "Mitigation: Clear FP registers\n"}, set()),
    ("unknown-state", "HV-SIDE-001", {f"{V}/mmio_stale_data": "Unknown: No mitigations\n"}, {"mmio_stale_data"}),
    ("smt-vulnerable-is-side-003s", "HV-SIDE-001", {f"{V}/mds": "Mitigation: Clear CPU buffers; SMT vulnerable\n"}, set()),
    # HV-SIDE-002
    ("l1tf-cond-flush", "HV-SIDE-002", {f"{V}/l1tf": "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT disabled\n", "sys/module/kvm_intel/parameters/vmentry_l1d_flush": "cond\n"}, set()),
    ("l1tf-flush-never", "HV-SIDE-002", {f"{V}/l1tf": "Mitigation: PTE Inversion; VMX: conditional cache flushes, SMT disabled\n", "sys/module/kvm_intel/parameters/vmentry_l1d_flush": "never\n"}, {"l1tf"}),
    ("l1tf-vmx-vulnerable", "HV-SIDE-002", {f"{V}/l1tf": "Mitigation: PTE Inversion; VMX: vulnerable, SMT disabled\n"}, {"l1tf"}),
    # HV-SIDE-003
    ("smt-on", "HV-SIDE-003", {"sys/devices/system/cpu/smt/control": "on\n", "sys/devices/system/cpu/smt/active": "1\n"}, {"smt"}),
    ("smt-on-core-scheduling", "HV-SIDE-003", {"sys/devices/system/cpu/smt/control": "on\n", "etc/libvirt/qemu.conf": 'sched_core = "full"\n'}, set()),
    ("smt-on-sched-core-none", "HV-SIDE-003", {"sys/devices/system/cpu/smt/control": "on\n", "etc/libvirt/qemu.conf": 'sched_core = "none"\n'}, {"smt"}),
    ("smt-notsupported", "HV-SIDE-003", {"sys/devices/system/cpu/smt/control": "notsupported\n"}, set()),
    # HV-SIDE-004
    ("itlb-vmx-disabled", "HV-SIDE-004", {f"{V}/itlb_multihit": "KVM: Mitigation: VMX disabled\n"}, set()),
    ("itlb-kvm-vulnerable", "HV-SIDE-004", {f"{V}/itlb_multihit": "KVM: Vulnerable\n", "sys/module/kvm/parameters/nx_huge_pages": "N\n"}, {"itlb_multihit"}),
    # HV-SIDE-005
    ("ksm-running-every-guest-opts-out", "HV-SIDE-005", {"sys/kernel/mm/ksm/run": "1\n", "sys/kernel/mm/ksm/pages_sharing": "5120\n"}, set()),
    ("ksm-running-no-guests", "HV-SIDE-005", {"sys/kernel/mm/ksm/run": "1\n", "etc/libvirt/qemu/hardened-vm.xml": None, "etc/libvirt/qemu/sev-vm.xml": None, "run/libvirt/qemu/hardened-vm.xml": None}, {"ksm"}),
    ("ksm-unmerged", "HV-SIDE-005", {"sys/kernel/mm/ksm/run": "2\n"}, set()),
    # HV-VULN-002
    ("attack-vectors-this-host", "HV-VULN-002", {"proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=/dev/vda1 ro mitigations=auto,no_guest_host,no_guest_guest console=ttyS0\n"}, {"/proc/cmdline: mitigations=auto,no_guest_host,no_guest_guest"}),
    ("attack-vectors-nosmt-strengthens", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 ro mitigations=auto,nosmt\n"}, set()),
    ("attack-vectors-empty-global", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 ro mitigations=,no_cross_thread\n"}, {"/proc/cmdline: mitigations=,no_cross_thread"}),
    ("spectre-v2-on-is-fine", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 ro spectre_v2=on spec_store_bypass_disable=on\n"}, set()),
    ("spectre-v2-off", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 ro spectre_v2=off\n"}, {"/proc/cmdline: spectre_v2=off"}),
    ("underscore-module-param", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 kvm_intel.vmentry_l1d_flush=never\n"}, {"/proc/cmdline: kvm_intel.vmentry_l1d_flush=never"}),
    ("init-args-after-dashes", "HV-VULN-002", {"proc/cmdline": "root=/dev/vda1 ro quiet -- mitigations=off nopti\n"}, set()),
    ("quoted-values", "HV-VULN-002", {"proc/cmdline": 'root=/dev/vda1 dyndbg="file drivers/kvm/* +p" mitigations=off\n'}, {"/proc/cmdline: mitigations=off"}),
    ("kernel-cmdline-file", "HV-VULN-002", {"etc/kernel/cmdline": "root=ZFS=rpool/ROOT/pve-1 boot=zfs nospectre_v2\n"}, {"/etc/kernel/cmdline: nospectre_v2"}),
    ("grub-d-extends-harmlessly", "HV-VULN-002", {"etc/default/grub.d/50-extra.cfg": 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX spectre_v2=on"\n'}, set()),
    ("grub-default-off", "HV-VULN-002", {"etc/default/grub": 'GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT="quiet iommu=off"\nGRUB_CMDLINE_LINUX=""\n'}, {"/etc/default/grub: iommu=off"}),
    # HV-NEST-001
    ("nested-loaded-y", "HV-NEST-001", {"sys/module/kvm_intel/parameters/nested": "Y\n"}, {"kvm_intel"}),
    ("nested-amd-1", "HV-NEST-001", {"sys/module/kvm_intel": None, "sys/module/kvm_amd/parameters/nested": "1\n"}, {"kvm_amd"}),
    ("nested-amd-0", "HV-NEST-001", {"sys/module/kvm_intel": None, "sys/module/kvm_amd/parameters/nested": "0\n"}, set()),
    ("nested-configured-not-loaded", "HV-NEST-001", {"sys/module/kvm_intel": None, "etc/modprobe.d/kvm-nested.conf": "options kvm_intel nested=1\n"}, {"kvm_intel (/etc/modprobe.d/kvm-nested.conf)"}),
    # HV-PATCH-003
    ("running-older-kernel", "HV-PATCH-003", {"proc/sys/kernel/osrelease": "6.1.0-27-amd64\n"}, {"kernel"}),
    ("running-kernel-removed", "HV-PATCH-003", {"lib/modules/6.1.0-28-amd64": None, "boot/vmlinuz-6.1.0-28-amd64": None, "boot/config-6.1.0-28-amd64": None}, {"kernel"}),
    ("other-flavour-not-compared", "HV-PATCH-003", {"lib/modules/6.1.0-30-cloud-amd64/modules.dep": "", "boot/vmlinuz-6.1.0-30-cloud-amd64": ""}, set()),
    ("version-ordering-numeric", "HV-PATCH-003", {"proc/sys/kernel/osrelease": "6.1.0-9-amd64\n", "lib/modules/6.1.0-9-amd64/modules.dep": ""}, {"kernel"}),
    ("reboot-required-flag", "HV-PATCH-003", {"run/reboot-required": "*** System restart required ***\n", "run/reboot-required.pkgs": "libc6\n"}, {"reboot-required"}),
    # HV-PATCH-004
    ("old-microcode", "HV-PATCH-004", {f"{V}/old_microcode": "Vulnerable\n"}, {"cpu"}),
    ("no-microcode-clause", "HV-PATCH-004", {f"{V}/mds": "Vulnerable: Clear CPU buffers attempted, no microcode; SMT disabled\n"}, {"cpu"}),
    # HV-PATCH-005
    ("no-20auto-upgrades", "HV-PATCH-005", {"etc/apt/apt.conf.d/20auto-upgrades": None}, {"apt"}),
    ("apt-nested-syntax", "HV-PATCH-005", {"etc/apt/apt.conf.d/20auto-upgrades": 'APT {\n  Periodic {\n    Update-Package-Lists "1";\n    Unattended-Upgrade "always"; // daily\n  };\n};\n'}, set()),
    ("apt-ignored-part", "HV-PATCH-005", {"etc/apt/apt.conf.d/20auto-upgrades": 'APT::Periodic::Unattended-Upgrade "0";\n', "etc/apt/apt.conf.d/99local.dpkg-old": 'APT::Periodic::Unattended-Upgrade "1";\n'}, {"apt"}),
    ("apt-later-file-wins", "HV-PATCH-005", {"etc/apt/apt.conf.d/99-disable": 'APT::Periodic::Unattended-Upgrade "0";\n'}, {"apt"}),
    ("apt-timer-masked", "HV-PATCH-005", {"etc/systemd/system/.keep": ""}, {"apt"}),
    # HV-IDS-007
    ("tainted-proprietary", "HV-IDS-007", {"proc/sys/kernel/tainted": "4097\n"}, {"kernel"}),
    # HV-TPM-001
    ("secure-boot-off", "HV-TPM-001", {SB: bytes([6, 0, 0, 0, 0])}, {"host"}),
    ("secure-boot-var-absent", "HV-TPM-001", {SB: None}, {"host"}),
    ("legacy-bios", "HV-TPM-001", {"sys/firmware/efi": None}, {"host"}),
    # HV-TPM-002
    ("no-tpm", "HV-TPM-002", {"sys/class/tpm": None}, {"host"}),
    ("tpm-1-2", "HV-TPM-002", {"sys/class/tpm/tpm0/tpm_version_major": "1\n"}, {"host"}),
    ("no-event-log", "HV-TPM-002", {"sys/kernel/security/tpm0": None}, {"host"}),
]


@pytest.mark.parametrize("name,check_id,changes,expected", CASES, ids=[c[0] for c in CASES])
def test_check_fixture(tmp_path: pathlib.Path, name, check_id, changes, expected):
    root = copy_root("hardened", tmp_path)
    apply(root, changes)
    if name == "apt-timer-masked":
        os.symlink("/dev/null", root / "etc/systemd/system/apt-daily-upgrade.timer")
    report = scan(root, only=[check_id])
    assert failing(report, check_id) == expected
    assert not [f for f in report.findings if f.status is Status.ERROR], [f.result for f in report.findings]


def test_unknown_state_is_medium(tmp_path):
    root = copy_root("hardened", tmp_path)
    apply(root, {f"{V}/mmio_stale_data": "Unknown: No mitigations\n"})
    [finding] = [f for f in scan(root, only=["HV-SIDE-001"]).findings if f.status is Status.FAIL]
    assert finding.severity is Severity.MEDIUM


def test_single_tenant_profile_lowers_smt_ksm_nested(weak):
    multi = {f.check_id: f.severity for f in scan(weak).findings if f.status is Status.FAIL}
    single = {f.check_id: f.severity for f in scan(weak, profile="single-tenant").findings if f.status is Status.FAIL}
    assert multi["HV-SIDE-003"] is Severity.HIGH and single["HV-SIDE-003"] is Severity.LOW
    assert multi["HV-SIDE-005"] is Severity.MEDIUM and single["HV-SIDE-005"] is Severity.LOW
    assert multi["HV-NEST-001"] is Severity.MEDIUM and single["HV-NEST-001"] is Severity.LOW
    assert single["HV-SIDE-001"] is Severity.HIGH


def test_attack_vector_message_says_what_is_off(tmp_path):
    root = copy_root("hardened", tmp_path)
    apply(root, {"proc/cmdline": "ro mitigations=auto,no_guest_host,no_guest_guest\n"})
    [finding] = [f for f in scan(root, only=["HV-VULN-002"]).findings if f.status is Status.FAIL]
    assert "no_guest_host turns off guest-to-host" in finding.result.message
    assert "no_guest_guest turns off guest-to-guest" in finding.result.message
    assert "grub" not in finding.remediation or "boot loader" in finding.remediation


@pytest.mark.parametrize(
    "mode,gid,group_line,expected",
    [
        (0o660, 104, "kvm:x:104:", set()),
        (0o600, 0, "kvm:x:104:", set()),
        (0o666, 104, "kvm:x:104:", {"/dev/kvm"}),
        (0o660, 104, "kvm:x:104:a,b,c,d,e,f", {"/dev/kvm"}),
        (0o660, 1234, "kvm:x:104:\nplugdev:x:1234:", {"/dev/kvm"}),
    ],
)
def test_dev_kvm(tmp_path, mode, gid, group_line, expected):
    root = copy_root("hardened", tmp_path, kvm_mode=mode, kvm_gid=gid)
    apply(root, {"etc/group": f"root:x:0:\n{group_line}\n"})
    assert failing(scan(root, only=["HV-ISO-021"]), "HV-ISO-021") == expected


def test_kvm_primary_group_members_count(tmp_path):
    root = copy_root("hardened", tmp_path)
    users = "".join(f"u{i}:x:{2000 + i}:104::/home/u{i}:/bin/sh\n" for i in range(6))
    apply(root, {"etc/passwd": "root:x:0:0:root:/root:/bin/bash\n" + users})
    [finding] = [f for f in scan(root, only=["HV-ISO-021"]).findings]
    assert finding.status is Status.FAIL and "6 members of group kvm" in finding.result.message


def test_dnf_automatic(tmp_path):
    root = copy_root("hardened", tmp_path)
    apply(root, {"etc/apt": None, "etc/dnf/automatic.conf": "[commands]\nupgrade_type = security\napply_updates = yes\n"})
    wants = root / "etc/systemd/system/timers.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    os.symlink("/usr/lib/systemd/system/dnf-automatic-install.timer", wants / "dnf-automatic-install.timer")
    assert statuses(scan(root, only=["HV-PATCH-005"]), "HV-PATCH-005") == {"dnf-automatic": Status.PASS}
    apply(root, {"etc/dnf/automatic.conf": "[commands]\napply_updates = no\n"})
    assert failing(scan(root, only=["HV-PATCH-005"]), "HV-PATCH-005") == {"dnf-automatic"}


def test_not_applicable_when_inputs_are_absent(tmp_path):
    """An /etc-only copy: every sysfs/procfs check is not_applicable with the path, never a pass."""
    root = copy_root("hardened", tmp_path, kvm_mode=None)
    apply(root, {"sys": None, "proc": None, "boot": None, "lib": None})
    report = scan(root)
    by_check = {}
    for f in report.findings:
        by_check.setdefault(f.check_id, set()).add(f.status)
    for cid in ("HV-SIDE-001", "HV-SIDE-002", "HV-SIDE-003", "HV-SIDE-004", "HV-SIDE-005", "HV-PATCH-003", "HV-PATCH-004",
                "HV-IDS-007", "HV-ISO-021", "HV-TPM-001", "HV-TPM-002"):
        assert Status.NOT_APPLICABLE in by_check[cid] and Status.PASS not in by_check[cid], cid
    na = [f for f in report.findings if f.status is Status.NOT_APPLICABLE]
    assert all("/" in f.result.message for f in na)
    assert by_check["HV-NEST-001"] == {Status.PASS}  # judged from modprobe.d alone


def test_offline_names_come_from_the_tree_not_this_machine(tmp_path):
    root = copy_root("hardened", tmp_path, kvm_mode=0o660, kvm_gid=0)
    apply(root, {"etc/passwd": None, "etc/group": None})
    [finding] = scan(root, only=["HV-ISO-021"]).findings
    assert finding.result.message.startswith("mode 0660 0:0")


def test_br_netfilter_state_unknown_without_proc_sys(tmp_path):
    root = copy_root("hardened", tmp_path)
    apply(root, {"proc/sys/net/bridge": None})
    (root / "proc/sys/net").mkdir(exist_ok=True)
    assert {f.result.message for f in scan(root, only=["HV-FW-003"]).findings} == {
        "br_netfilter not loaded: bridged guest traffic bypasses the host's IP firewall; no nwfilter on bridged NICs relies on it"}
    apply(root, {"proc/sys/net": None})
    assert [(f.status, f.result.resource, f.result.message) for f in scan(root, only=["HV-FW-003"]).findings] == [
        (Status.NOT_APPLICABLE, "net.bridge",
         "whether bridged traffic reaches the IP firewall is unknown: /proc/sys/net: not found (no live kernel state under this root)")]


@pytest.mark.parametrize(
    "gid,group_file,status,message",
    [
        (0, None, Status.PASS, "mode 0660 0:0"),
        (0, "root:x:0:\n", Status.PASS, "mode 0660 0:root"),
        (1234, "root:x:0:\nkvm:x:104:\n", Status.FAIL, "mode 0660 0:1234; group access goes to gid 1234, which names no group in /etc/group (expected kvm)"),
        (1234, None, Status.NOT_APPLICABLE, "mode 0660 0:1234; group access goes to gid 1234, whose members are unknown (/etc/group: not found)"),
    ],
)
def test_dev_kvm_group_access_is_judged_by_who_gets_it(tmp_path, gid, group_file, status, message):
    """0660 root:root admits only root; an unnamed gid admits unknown users."""
    root = copy_root("hardened", tmp_path, kvm_mode=0o660, kvm_gid=gid)
    apply(root, {"etc/passwd": None, "etc/group": group_file})
    [finding] = scan(root, only=["HV-ISO-021"]).findings
    assert (finding.status, finding.result.message) == (status, message)
