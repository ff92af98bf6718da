"""Packages and patch automation, /dev/kvm and its group, firmware (EFI, Secure Boot, TPM),
and the libvirt QEMU driver configuration."""

from __future__ import annotations

import stat

from ..facts import (
    AccountFacts,
    AptFacts,
    DeviceNode,
    DnfAutomaticFacts,
    FirmwareFacts,
    Maybe,
    Package,
    PatchingFacts,
)
from ..model import Unavailable, is_missing
from ..parsers.config_files import (
    apt_conf_part_ok,
    parse_apt_conf,
    parse_dpkg_packages,
    parse_group,
    parse_ini,
    parse_passwd_gids,
    parse_passwd_uids,
)
from .fs import RootFS
from .packages import collect_apk_packages, collect_apk_state, collect_apt_state, collect_os_release, collect_rpm_packages

SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def collect_apt(fs: RootFS, installed: Maybe[dict[str, str]]) -> AptFacts | None:
    if not fs.exists("/etc/apt"):
        return None
    files: list[str] = []
    settings: dict[str, str] = {}
    parts = fs.listdir("/etc/apt/apt.conf.d")
    names = parts if isinstance(parts, list) else []
    for path in [f"/etc/apt/apt.conf.d/{n}" for n in names if apt_conf_part_ok(n)] + ["/etc/apt/apt.conf"]:
        text = fs.read_text(path)
        if isinstance(text, str):
            files.append(path)
            settings.update(parse_apt_conf(text))
    periodic = {k: v for k, v in settings.items() if k.startswith(("apt::periodic::", "unattended-upgrade::")) or k == "apt::default-release"}
    uu_installed = None if isinstance(installed, Unavailable) else "unattended-upgrades" in installed
    masked = any(fs.is_masked_unit(f"{d}/apt-daily-upgrade.timer") for d in ("/etc/systemd/system", "/run/systemd/system"))
    return AptFacts(files=files, settings=periodic, unattended_upgrades_installed=uu_installed, upgrade_timer_masked=masked)


def collect_dnf_automatic(fs: RootFS) -> DnfAutomaticFacts | None:
    for path in ("/etc/dnf/automatic.conf", "/etc/dnf/dnf5-plugins/automatic.conf"):
        text = fs.read_text(path)
        if isinstance(text, Unavailable):
            continue
        commands = parse_ini(text).get("commands", {})
        timers = []
        wants = fs.listdir("/etc/systemd/system/timers.target.wants")
        if isinstance(wants, list):
            timers = [n for n in wants if n.startswith("dnf") and "automatic" in n]
        return DnfAutomaticFacts(path, commands.get("apply_updates"), commands.get("upgrade_type"), timers)
    return None


def _installed_versions(packages: list[Package]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in packages:
        out[p.name if p.name not in out else f"{p.name}:{p.arch}"] = p.version
    return out


def collect_patching(fs: RootFS) -> PatchingFacts:
    status = fs.read_text("/var/lib/dpkg/status", 256 * 1024 * 1024)
    skipped: list[int] = []
    packages: Maybe[list[Package]] = status if isinstance(status, Unavailable) else parse_dpkg_packages(status, skipped)
    # parse_dpkg_status's mapping, from the same parse (the status file is megabytes)
    installed: Maybe[dict[str, str]] = packages if isinstance(packages, Unavailable) else _installed_versions(packages)
    warnings = [f"/var/lib/dpkg/status: {len(skipped)} malformed stanza(s) skipped (no Package or Version; first at line {skipped[0]})"] if skipped else []
    if is_missing(status):
        rpms = collect_rpm_packages(fs)
        if rpms is not None:
            packages = rpms
            installed = rpms if isinstance(rpms, Unavailable) else {p.name: p.version for p in rpms}
        else:
            apks = collect_apk_packages(fs)
            if apks is not None:
                packages = apks
                installed = apks if isinstance(apks, Unavailable) else {p.name: p.version for p in apks}
    apt = collect_apt(fs, installed)
    default_release = apt.settings.get("apt::default-release") if apt is not None else None
    return PatchingFacts(
        apt=apt,
        dnf_automatic=collect_dnf_automatic(fs),
        installed_packages=installed,
        packages=packages,
        os=collect_os_release(fs),
        apt_state=collect_apt_state(fs, packages, default_release) if isinstance(packages, list) else None,
        warnings=warnings,
        apk_state=collect_apk_state(fs, packages) if isinstance(packages, list) else None,
    )


def _name_of(ident: int, table: dict[str, int]) -> str | None:
    return next((name for name, value in table.items() if value == ident), None)


def collect_kvm_device(fs: RootFS, accounts: AccountFacts, passwd_uids: dict[str, int] | None) -> Maybe[DeviceNode]:
    """Owner and group names come from the audited tree's own /etc, live or offline alike."""
    st = fs.stat("/dev/kvm")
    if isinstance(st, Unavailable):
        return st
    gids = {name: entry.gid for name, entry in accounts.groups.items()} if isinstance(accounts.groups, dict) else {}
    owner, group = _name_of(st.st_uid, passwd_uids or {}), _name_of(st.st_gid, gids)
    return DeviceNode("/dev/kvm", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, owner, group, stat.S_ISCHR(st.st_mode))


def collect_accounts(fs: RootFS) -> tuple[AccountFacts, dict[str, int] | None]:
    group_text = fs.read_text("/etc/group")
    groups = group_text if isinstance(group_text, Unavailable) else parse_group(group_text)
    passwd_text = fs.read_text("/etc/passwd")
    gids: Maybe[dict[str, int]] = passwd_text if isinstance(passwd_text, Unavailable) else parse_passwd_gids(passwd_text)
    uids = parse_passwd_uids(passwd_text) if isinstance(passwd_text, str) else None
    return AccountFacts(groups=groups, primary_gids=gids), uids


def collect_firmware(fs: RootFS) -> FirmwareFacts:
    efi: Maybe[bool]
    if fs.exists("/sys/firmware/efi"):
        efi = True
    elif fs.exists("/sys/firmware"):
        efi = False
    else:
        efi = Unavailable("/sys/firmware", "missing", "not found (no live /sys under this root)")

    secure: Maybe[int]
    if efi is True:
        raw = fs.read_bytes(SECURE_BOOT_VAR, 64)
        if is_missing(raw):
            efivars = fs.listdir("/sys/firmware/efi/efivars")
            # Firmware without Secure Boot support has no SecureBoot variable at all.
            secure = 0 if isinstance(efivars, list) and efivars else Unavailable(
                "/sys/firmware/efi/efivars", "missing", "efivarfs not mounted or empty"
            )
        elif isinstance(raw, Unavailable):
            secure = raw
        elif len(raw) < 5:
            secure = Unavailable(SECURE_BOOT_VAR, "invalid", f"{len(raw)} bytes, expected 4 attribute bytes and a value")
        else:
            secure = raw[4]
    elif efi is False:
        secure = Unavailable("/sys/firmware/efi", "missing", "host booted in legacy BIOS mode")
    else:
        secure = efi

    version: Maybe[int]
    if not fs.exists("/sys/class/tpm/tpm0"):
        version = 0 if fs.exists("/sys/class") else Unavailable("/sys/class", "missing", "not found (no live /sys under this root)")
    else:
        text = fs.read_line("/sys/class/tpm/tpm0/tpm_version_major", 64)
        if isinstance(text, str) and text.isdigit():
            version = int(text)
        elif isinstance(text, str):
            version = Unavailable("/sys/class/tpm/tpm0/tpm_version_major", "invalid", f"not a number: {text[:20]!r}")
        elif text.kind == "missing" and fs.exists("/sys/class/tpm/tpm0/caps"):
            version = 1  # kernels before 5.6 lack tpm_version_major; only TPM 1.2 devices have caps
        else:
            version = text

    log: Maybe[bool]
    log_path = "/sys/kernel/security/tpm0/binary_bios_measurements"
    st = fs.stat(log_path)
    if isinstance(st, Unavailable):
        if st.kind == "missing" and fs.exists("/sys/kernel/security"):
            listing = fs.listdir("/sys/kernel/security")
            log = listing if isinstance(listing, Unavailable) else False
        else:
            log = st
    else:
        log = True
    return FirmwareFacts(efi=efi, secure_boot=secure, tpm_version_major=version, tpm_event_log=log)

