"""File modes: disk images, memory-state directories, the TLS private key; /dev/kvm through a udev
rule (a chmod of a device node lasts until the next boot or udev event)."""

from __future__ import annotations

from ..plan import ChMod, Context, Failing, Fix, Needs, WriteFile, fixer

KVM_RULE = '# hyperward fix (HV-ISO-021): /dev/kvm for root and group kvm only\nKERNEL=="kvm", OWNER="root", GROUP="kvm", MODE="0660"\n'


def _mode(finding: Failing) -> int | None:
    mode = finding.details.get("mode")
    try:
        return int(str(mode), 8)
    except ValueError:
        return None


@fixer("HV-ISO-009", "HV-BAK-004", "HV-AUTH-004")
def file_mode(finding: Failing, context: Context) -> Fix | None:
    path, scanned = finding.details.get("file"), _mode(finding)
    if not isinstance(path, str) or scanned is None:
        return None
    kind = context.kind(path)
    if kind is None:
        return None
    if finding.check_id == "HV-AUTH-004":
        target = 0o600
    elif kind == "file":
        target = 0o600
    elif finding.check_id == "HV-ISO-009":
        target = 0o711
    else:
        target = 0o700
    # only ever take permissions away
    target &= scanned
    if kind == "dir":
        target |= scanned & 0o700
    return Fix((ChMod(path, target, scanned, kind),))


@fixer("HV-ISO-021")
def kvm_device(finding: Failing, context: Context) -> Fix | None:
    if finding.resource != "/dev/kvm":
        return None
    return Fix((WriteFile("/etc/udev/rules.d/65-hyperward-kvm.rules", KVM_RULE),),
               (Needs("command", "udevadm control --reload && udevadm trigger --name-match=kvm"),))
