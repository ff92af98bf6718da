"""Host boot integrity: UEFI Secure Boot and a TPM 2.0 with a measured-boot event log."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Category, Result, Severity, Unavailable


@check("HV-TPM-001", Category.TPM, Severity.HIGH, "Host Secure Boot off",
    fix="boot the host in UEFI mode with Secure Boot enabled in the firmware setup (Debian ships signed shim, GRUB and kernel); verify with mokutil --sb-state",
    references=("UEFI specification, SecureBoot global variable", "Debian wiki SecureBoot"),
)
def host_secure_boot(host: HostFacts) -> Iterator[Result]:
    """Without Secure Boot a bootkit or a tampered kernel/initramfs under the hypervisor goes
    unnoticed, and every guest runs on it. The SecureBoot EFI variable's data byte follows 4
    attribute bytes in efivarfs."""
    fw = host.firmware
    if isinstance(fw.efi, Unavailable):
        yield Result.unavailable(fw.efi)
        return
    if fw.efi is False:
        yield Result.fail("host", "booted in legacy BIOS mode (no /sys/firmware/efi): Secure Boot is unavailable")
        return
    if isinstance(fw.secure_boot, Unavailable):
        yield Result.unavailable(fw.secure_boot)
    elif fw.secure_boot == 1:
        yield Result.passed("host", "SecureBoot=1")
    else:
        yield Result.fail("host", f"SecureBoot={fw.secure_boot} (UEFI boot with Secure Boot disabled)")


@check("HV-TPM-002", Category.TPM, Severity.MEDIUM, "No host TPM / measured boot",
    fix="enable the TPM 2.0 (firmware TPM / PTT or a discrete chip) in the firmware setup so the kernel exposes /sys/class/tpm/tpm0 and the event log",
    references=("Linux Documentation/security/tpm/tpm_event_log.rst",),
)
def host_tpm(host: HostFacts) -> Iterator[Result]:
    """A TPM 2.0 with the firmware's event log lets the host prove what it booted (remote
    attestation, sealed disk keys); without it nobody can tell a tampered hypervisor."""
    fw = host.firmware
    version = fw.tpm_version_major
    if isinstance(version, Unavailable):
        yield Result.unavailable(version)
        return
    if version == 0:
        yield Result.fail("host", "no TPM device (/sys/class/tpm/tpm0 absent)")
        return
    if version != 2:
        yield Result.fail("host", f"TPM {version}.x only (TPM 2.0 needed for measured boot with modern tooling)")
        return
    log = fw.tpm_event_log
    if isinstance(log, Unavailable):
        yield Result.unavailable(log)
    elif log:
        yield Result.passed("host", "TPM 2.0 with a measured-boot event log")
    else:
        yield Result.fail("host", "TPM 2.0 present but no measured-boot event log (/sys/kernel/security/tpm0/binary_bios_measurements)")
