"""A .vmx file's keys as an EsxiVm: devices, firmware, vTPM, encryption, disk modes.

Key names and values as ESXi 7/8 write them: `virtualHW.version = "19"`, `firmware = "efi"`,
`uefi.secureBoot.enabled = "TRUE"`, `vtpm.present = "TRUE"`, `scsi0:0.mode =
"independent-nonpersistent"`, `serial0.fileType = "network"`, `pciPassthru0.present = "TRUE"`,
`ethernet0.networkName = "VM Network"`. A device exists when its `<prefix>.present` is TRUE
(VMware ignores the other keys of a device that is not present).
"""

from __future__ import annotations

import posixpath
import re

from .facts import EsxiVm, VmDevice, VmNic
from .parsers import Dictionary, is_true

_DISK = re.compile(r"^((?:scsi|sata|ide|nvme)\d+:\d+)\.present$")
_NUMBERED = re.compile(r"^(floppy|serial|parallel|pcipassthru|ethernet)(\d+)\.present$")
_USB_DEVICE = re.compile(r"^(usb(?:_xhci)?:\d+)\.present$")
CDROM_TYPES = ("cdrom-image", "atapi-cdrom", "cdrom-raw")


def normalize_uuid(value: str | None) -> str | None:
    """uuid.bios is written as 16 hex bytes with spaces and a dash (`42 1e ... 9a-7b ...`)."""
    if not value:
        return None
    digits = re.sub(r"[^0-9a-fA-F]", "", value)
    if len(digits) != 32:
        return None
    d = digits.lower()
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def devices(c: dict[str, str]) -> tuple[list[VmDevice], list[VmNic]]:
    found: list[VmDevice] = []
    nics: list[VmNic] = []
    for key in sorted(k for k in c if k.endswith(".present")):
        if is_true(c[key]) is not True:
            continue
        if match := _DISK.match(key):
            prefix = match.group(1)
            kind_text = c.get(f"{prefix}.devicetype", "")
            kind = "cdrom" if kind_text.lower() in CDROM_TYPES else "disk"
            connected = is_true(c.get(f"{prefix}.startconnected"))
            found.append(VmDevice(kind, prefix, True if connected is None else connected,
                                  c.get(f"{prefix}.filename"), c.get(f"{prefix}.mode")))
        elif match := _NUMBERED.match(key):
            base, number = match.group(1), match.group(2)
            prefix = f"{base}{number}"
            if base == "ethernet":
                nics.append(VmNic(prefix, c.get(f"{prefix}.networkname"),
                                  c.get(f"{prefix}.address") or c.get(f"{prefix}.generatedaddress"),
                                  c.get(f"{prefix}.virtualdev")))
                continue
            kind = {"pcipassthru": "pci-passthrough"}.get(base, base)
            connected = is_true(c.get(f"{prefix}.startconnected"))
            backing = c.get(f"{prefix}.filename") or c.get(f"{prefix}.id") or c.get(f"{prefix}.deviceid")
            found.append(VmDevice(kind, prefix, True if connected is None else connected, backing,
                                  c.get(f"{prefix}.filetype")))
        elif key in ("usb.present", "ehci.present", "usb_xhci.present"):
            found.append(VmDevice("usb-controller", key[:-len(".present")], True))
        elif match := _USB_DEVICE.match(key):
            prefix = match.group(1)
            found.append(VmDevice("usb", prefix, True, c.get(f"{prefix}.deviceid") or c.get(f"{prefix}.devicetype")))
        elif key == "vtpm.present":
            found.append(VmDevice("vtpm", "vtpm", True))
    return found, nics


def vm_from_vmx(d: Dictionary, path: str) -> EsxiVm:
    c = d.values
    name = c.get("displayname") or posixpath.splitext(posixpath.basename(path))[0]
    firmware_text = c.get("firmware", "bios").strip().lower()
    firmware = "efi" if firmware_text == "efi" else "bios" if firmware_text == "bios" else None
    devs, nics = devices(c)
    encrypted = any(k in c for k in ("encryption.keysafe", "encryption.data"))
    migrate = c.get("migrate.encryptionmode")
    return EsxiVm(
        name=name,
        location=path,
        origin=path,
        source="vmx",
        vcenter=None,
        cluster=None,
        host=None,
        uuid=normalize_uuid(c.get("uuid.bios")),
        config=dict(c),
        hardware_version=_int(c.get("virtualhw.version")),
        firmware=firmware,
        secure_boot=is_true(c.get("uefi.secureboot.enabled")) is True if firmware == "efi" else False,
        vtpm=is_true(c.get("vtpm.present")) is True,
        encrypted=encrypted,
        migrate_encryption=migrate.strip().lower() if migrate else None,
        ft_encryption=None,
        logging=is_true(c.get("logging")) is not False,
        power_state=None,
        devices=devs,
        nics=nics,
        conflicts=dict(d.conflicts),
        ignored_lines=d.ignored_lines,
        template=is_true(c.get("templatevm")) is True,
        guest_id=c.get("guestos"),
        lines=dict(d.lines),
    )
