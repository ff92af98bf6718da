"""ESXi VMs on the neutral Guest model.

What ESXi decides for the guest, filled in truthfully:
- clipboard and drag and drop are off unless `isolation.tools.copy/paste.disable` or
  `isolation.tools.dnd.disable` say FALSE (ESXi's default since 4.1, Broadcom's SCG "true or not
  present"): an absent key is recorded as a default, not as a setting.
- the legacy VNC server (`RemoteDisplay.vnc.enabled`) listens on `RemoteDisplay.vnc.ip` where
  given (as libvirt's VMX reader takes it), else on every host address; a
  `RemoteDisplay.vnc.password` (or `.key`) is the only authentication it has, without TLS.
- a serial port of fileType "network" is a TCP/telnet endpoint (`serial0.fileName =
  "telnet://:23"`); without vSPC it is served by the host without TLS.
- NICs attach to port groups; their anti-spoofing is the port group's security policy, judged
  by the ESXi rows (HV-NET-10x), so the neutral attachment is "portgroup" and HV-NET-001 (which
  judges Linux bridges) does not apply to them.
- DirectPath I/O devices are passed as "pci"; ESXi assigns them only through the IOMMU.
"""

from __future__ import annotations

import posixpath
import re

from ...guests.model import (
    Console,
    Guest,
    GuestDisk,
    GuestNic,
    GuestTpm,
    NetworkChardev,
    PassedDevice,
)
from ...model import Unavailable
from .facts import EsxiFacts, EsxiVm
from .parsers import is_true

_NETWORK_URI = re.compile(r"^(telnet|tcp|tcp4|tcp6|telnets|ssl)://\[?([^\]/]*?)\]?:(\d+)")


def _console(vm: EsxiVm) -> list[Console]:
    c = vm.config
    if is_true(c.get("remotedisplay.vnc.enabled")) is not True:
        return []
    auth = ["password"] if c.get("remotedisplay.vnc.password") or c.get("remotedisplay.vnc.key") else ["none"]
    listen = c.get("remotedisplay.vnc.ip") or "0.0.0.0"
    return [Console("vnc", [listen], auth=auth, tls=False, tls_verify=False, source="RemoteDisplay.vnc.enabled")]


def _chardevs(vm: EsxiVm) -> list[NetworkChardev]:
    out = []
    for dev in vm.devices:
        if dev.kind != "serial" or (dev.mode or "").lower() != "network" or not dev.backing:
            continue
        match = _NETWORK_URI.match(dev.backing.strip())
        if not match:
            continue
        scheme, host, port = match.groups()
        out.append(NetworkChardev("serial", host or "0.0.0.0", port, scheme, scheme in ("telnets", "ssl")))
    return out


def to_guest(vm: EsxiVm) -> Guest:
    c = vm.config
    defaults: list[str] = []
    copy = is_true(c.get("isolation.tools.copy.disable"))
    paste = is_true(c.get("isolation.tools.paste.disable"))
    dnd = is_true(c.get("isolation.tools.dnd.disable"))
    if copy is None or paste is None:
        defaults.append("clipboard off (isolation.tools.copy/paste.disable default TRUE)")
    if dnd is None:
        defaults.append("drag and drop off (isolation.tools.dnd.disable default TRUE)")
    disks = [GuestDisk(disk_path(vm, d.backing), disk_format(vm, d.kind, d.backing), readonly=False,
                       shared=(d.mode or "").lower() == "multi-writer",
                       encrypted=vm.encrypted, target=d.name, device="cdrom" if d.kind == "cdrom" else "disk",
                       raw_device=disk_format(vm, d.kind, d.backing) is None and vm.source == "vmx" and d.kind == "cdrom")
             for d in vm.devices if d.kind in ("disk", "cdrom")]
    passed = [PassedDevice("pci", d.backing, target=d.name) for d in vm.devices if d.kind == "pci-passthrough"]
    passed += [PassedDevice("usb", d.backing, target=d.name) for d in vm.devices if d.kind == "usb"]
    nics = [GuestNic("portgroup", n.network, n.mac, None, name=n.name,
                     why="judged by the port group's security policy (HV-NET-100, HV-NET-101)") for n in vm.nics]
    nested = is_true(c.get("vhv.enable")) is True
    memory = c.get("memsize", "")
    return Guest(
        platform="esxi",
        kind="vm",
        name=vm.name,
        id=vm.location,
        uuid=vm.uuid,
        origin=vm.origin,
        state={"poweredOn": "running", "poweredOff": "shut off", "suspended": "paused"}.get(vm.power_state or "", None),
        firmware="uefi" if vm.firmware == "efi" else vm.firmware,
        secure_boot=vm.secure_boot,
        keys_enrolled=True if vm.secure_boot else None,
        tpms=[GuestTpm("emulator", "2.0", True)] if vm.vtpm else [],
        consoles=_console(vm),
        shared_directories=[],
        devices=passed,
        disks=disks,
        nics=nics,
        nested=nested,
        clipboard=(copy is False or paste is False),
        file_transfer=None,
        drag_drop=dnd is False,
        memory_sharing_opt_out=None,
        network_chardevs=_chardevs(vm),
        vcpus=int(c["numvcpus"]) if c.get("numvcpus", "").isdigit() else None,
        memory_kib=int(memory) * 1024 if memory.isdigit() else None,
        defaults=defaults,
        arch="x86_64",
        nested_kind="requested" if nested else None,
        nested_detail="vhv.enable = TRUE (hardware virtualization exposed to the guest)" if nested else None,
        disk_dirs=[VOLUMES, posixpath.dirname(vm.origin)] if vm.source == "vmx" else [],
    )


VOLUMES = "/vmfs/volumes"


def disk_path(vm: EsxiVm, backing: str | None) -> str | None:
    """A .vmx `fileName` as ESXi opens it: relative names are relative to the .vmx's directory.
    The API's `[datastore] dir/file.vmdk` names stay as they are (no local file)."""
    if not backing or vm.source != "vmx" or backing.startswith("/"):
        return backing
    return posixpath.join(posixpath.dirname(vm.origin), backing)


def disk_format(vm: EsxiVm, kind: str, backing: str | None) -> str | None:
    """A disk's fileName names a descriptor .vmdk (its extents beside it); a CD-ROM image an ISO."""
    if vm.source != "vmx" or not backing:
        return None
    if kind == "cdrom":
        return "raw" if backing.lower().endswith(".iso") else None  # else a host drive (cdrom-raw, atapi-cdrom)
    return "vmdk" if backing.lower().endswith(".vmdk") else None


def to_guests(facts: EsxiFacts) -> list[Guest]:
    return [to_guest(vm) for vm in facts.vms if not isinstance(vm, Unavailable) and not vm.template]
