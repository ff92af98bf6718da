"""Where in a guest's definition a guest finding was decided: the definition file (the guest's
origin) and the line of the element or key the check judges, for reports that link to lines
(SARIF, JUnit). One table instead of a line-tracking change in every guest check; a check that
judges an absent element (no <tpm> at all) names the file without a line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .model import Result

if TYPE_CHECKING:
    from .guests.model import Guest

#: check ID -> candidates in the guest's `lines`, first present wins: libvirt element paths under
#: <domain>, Proxmox qm.conf/pct.conf keys; "key*" matches any key with that prefix (serial0..3)
ELEMENTS: dict[str, tuple[str, ...]] = {
    "HV-VULN-003": ("devices/disk/driver", "devices/disk"),
    "HV-VULN-005": ("os/type", "machine"),
    "HV-SIDE-005": ("memoryBacking/nosharepages", "memoryBacking", "allow-ksm"),
    "HV-SIDE-007": ("cpu/feature", "cpu"),
    "HV-SIDE-008": ("cpu",),
    "HV-ISO-003": ("seclabel", "devices/disk/source/seclabel"),
    "HV-ISO-010": ("devices/hostdev", "hostpci*"),
    "HV-ISO-013": ("devices/hostdev", "hostpci*"),
    "HV-ISO-014": ("devices/filesystem", "virtiofs*", "mp*"),
    "HV-ISO-015": ("devices/disk", "devices/hostdev", "scsi*", "sata*", "virtio*", "ide*", "usb*"),
    "HV-ISO-016": ("devices/disk/shareable", "devices/disk", "scsi*", "sata*", "virtio*", "ide*"),
    "HV-ISO-017": ("qemu:commandline", "qemu:override", "args"),
    "HV-ISO-018": ("devices/sound", "devices/controller", "devices/input", "devices/video", "devices"),
    "HV-ISO-019": ("memory", "memoryBacking"),
    "HV-ISO-020": ("memtune", "vcpu", "memory", "cpulimit", "cores", "balloon"),
    "HV-ISO-026": ("devices/graphics", "devices/redirdev", "vga", "spice_enhancements"),
    "HV-ISO-027": ("args", "hookscript"),
    "HV-ISO-028": ("serial*", "parallel*"),
    "HV-ISO-029": ("unprivileged", "features", "lxc.apparmor.profile", "dev*", "lxc.*"),
    "HV-TPM-003": ("os/loader", "os/firmware", "os", "bios", "efidisk0"),
    "HV-TPM-004": ("os/loader", "features/smm", "os", "efidisk0"),
    "HV-TPM-005": ("devices/tpm", "tpmstate0"),
    "HV-TPM-007": ("launchSecurity", "amd-sev"),
    "HV-NEST-002": ("cpu/feature", "cpu"),
    "HV-NET-001": ("devices/interface/filterref", "devices/interface", "net*"),
    "HV-NET-004": ("devices/interface/vlan", "devices/interface", "net*"),
    "HV-NET-005": ("devices/interface", "net*"),
    "HV-AUTH-010": ("devices/graphics", "vga", "spice_enhancements"),
    "HV-AUTH-011": ("devices/serial", "devices/console", "devices/channel", "serial*", "monitor"),
    "HV-AUTH-012": ("devices/disk/source", "devices/disk"),
    "HV-BAK-005": ("devices/disk/source", "devices/disk"),
}


def _line(lines: dict[str, int], candidates: tuple[str, ...]) -> tuple[str, int] | None:
    for name in candidates:
        if name.endswith("*"):
            prefix = name[:-1]
            found = sorted((line, key) for key, line in lines.items() if key.startswith(prefix))
            if found:
                return found[0][1], found[0][0]
        elif name in lines:
            return name, lines[name]
    return None


def guest_index(guests: list[Guest]) -> dict[tuple[str, str], Guest]:
    """(platform, id) -> guest, and ("", label) -> guest for the labels only one guest has: a
    libvirt check that names a domain by its label ("web (uuid)") without guest details."""
    index = {(g.platform, g.id): g for g in guests}
    labels: dict[str, list[Guest]] = {}
    for g in guests:
        labels.setdefault(g.label, []).append(g)
    index.update({("", label): found[0] for label, found in labels.items() if len(found) == 1})
    return index


def locate(check_id: str, result: Result, guests: dict[tuple[str, str], Guest]) -> Result:
    """A guest result without a file gets its definition's file, and the line of the element the
    check judges when the definition has it."""
    details = result.details
    if "file" in details or not guests:
        return result
    platform, guest_id = details.get("platform"), details.get("guest_id")
    if isinstance(platform, str) and isinstance(guest_id, str):
        guest = guests.get((platform, guest_id))
    else:
        guest = guests.get(("", result.resource))
    if guest is None or not guest.origin.startswith("/"):
        return result
    found = _line(guest.lines, ELEMENTS.get(check_id, ()))
    if found is None:
        return result.with_details(file=guest.origin)
    return result.with_details(file=guest.origin, element=found[0], line=found[1])
