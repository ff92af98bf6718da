"""Host boot integrity: UEFI Secure Boot and a TPM 2.0 with a measured-boot event log."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import Domain, FileNode, HostFacts
from ._libvirt import each_domain, qemu_settings
from ..model import Result, Unavailable


@check("HV-TPM-001",
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


@check("HV-TPM-002",
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


def _secure_boot_requested(d: Domain) -> bool:
    return d.loader_secure == "yes" or d.firmware_features.get("secure-boot") == "yes"


@check("HV-TPM-004",
    fix="add <features><smm state='on'/></features> and <loader readonly='yes' secure='yes' type='pflash'>",
    references=("libvirt docs/formatdomain.rst (BIOS bootloader: secure, readonly)", "libvirt docs/kbase/secureboot.rst"),
)
def secure_boot_smm(host: HostFacts) -> Iterator[Result]:
    """Secure Boot's variable store is protected only by SMM; without it, or with writable
    firmware code, the guest OS can rewrite the keys and disable Secure Boot."""

    def judge(d: Domain) -> list[str]:
        problems = []
        if d.smm == "off" or (d.smm is None and d.loader_secure == "yes"):
            problems.append("secure-boot firmware without <smm state='on'/>")
        if d.loader_readonly == "no":
            problems.append("firmware code is writable (loader readonly='no')")
        return problems

    yield from each_domain(host, judge, applies=_secure_boot_requested, none_reason="no domain uses Secure Boot firmware")


@check("HV-TPM-006",
    fix="add <encryption secret='UUID'/> to the TPM backend (a libvirt secret) and keep /var/lib/libvirt/swtpm/<uuid> 0700 owned by swtpm_user",
    references=("libvirt docs/formatdomain.rst (TPM device: encryption)", "libvirt src/qemu/qemu.conf.in swtpm_user"),
)
def vtpm_state(host: HostFacts) -> Iterator[Result]:
    """The swtpm state holds the vTPM's keys in the clear unless encrypted; whoever reads it can
    impersonate the guest's TPM. libvirt (src/qemu/qemu_tpm.c) keeps it in
    /var/lib/libvirt/swtpm/<uuid>/tpm2 (tpm1.2), created 0700 and owned by qemu.conf's swtpm_user
    and swtpm_group; the <uuid> directory above it is 0711 ("allow others to cd into this dir").
    Unset, swtpm_user is tss when the host has that user, else root (src/qemu/qemu_conf.c)."""
    settings = qemu_settings(host)
    expected = _swtpm_user(host, settings if isinstance(settings, dict) else {})

    def judge(d: Domain) -> list[str]:
        problems = []
        base = f"/var/lib/libvirt/swtpm/{d.uuid}"
        for t in d.tpms:
            if t.backend != "emulator":
                continue
            if not t.encrypted:
                problems.append("vTPM state not encrypted")
            parent = host.libvirt.paths.get(base)
            if isinstance(parent, FileNode) and parent.mode & 0o066:
                problems.append(f"{base} mode {parent.mode:04o} (0711 expected: others may enter, not list or write)")
            state_dir = f"{base}/{'tpm1.2' if t.version == '1.2' else 'tpm2'}"
            node = host.libvirt.paths.get(state_dir)
            if not isinstance(node, FileNode):
                continue
            if node.mode & 0o077:
                problems.append(f"{state_dir} mode {node.mode:04o} (0700 expected)")
            owner = node.owner or ("root" if node.uid == 0 else str(node.uid))
            if expected is not None and expected not in (owner, str(node.uid)):
                problems.append(f"{state_dir} owned by {owner}, not {expected} (swtpm_user)")
        return problems

    yield from each_domain(host, judge, applies=lambda d: any(t.backend == "emulator" for t in d.tpms), none_reason="no domain has an emulated vTPM")


def _swtpm_user(host: HostFacts, settings: dict[str, object]) -> str | None:
    """The user libvirt runs swtpm as; None when the host's accounts cannot be read to tell."""
    if "swtpm_user" in settings:
        value = str(settings["swtpm_user"]).strip()
        return "root" if value in ("+0", "0") else value.lstrip("+")
    users = host.accounts.primary_gids
    if isinstance(users, Unavailable):
        return None
    return "tss" if "tss" in users else "root"


@check("HV-TPM-007",
    fix="set bits 0 (NODBG) and 1 (NOKS) in <launchSecurity type='sev'><policy> (e.g. 0x0003, 0x0007 for SEV-ES)",
    references=("libvirt docs/kbase/launch_security_sev.rst", "AMD SEV API specification, guest policy"),
)
def sev_policy(host: HostFacts) -> Iterator[Result]:
    """Debug lets the host decrypt guest memory; key sharing lets another guest use this guest's key."""

    def judge(d: Domain) -> list[str]:
        policy = d.sev_policy
        if policy is None:
            return ["no <policy>: the firmware default allows debugging"]
        problems = []
        if not policy & 0x1:
            problems.append(f"policy {policy:#06x}: debugging allowed (NODBG bit 0 clear)")
        if not policy & 0x2:
            problems.append(f"policy {policy:#06x}: key sharing allowed (NOKS bit 1 clear)")
        return problems

    yield from each_domain(host, judge, applies=lambda d: d.launch_security == "sev",
                           none_reason="no domain uses AMD SEV")
