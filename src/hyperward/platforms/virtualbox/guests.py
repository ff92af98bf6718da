"""VirtualBox machines on the neutral Guest model, so the neutral checks (vTPM, Secure Boot, shared
directories, passed-through devices, console channels, nested virtualization, anti-spoofing,
network character devices, backups) judge them.

What the settings cannot say stays None: Secure Boot lives in the machine's NVRAM variable store
(<name>.nvram), which hyperward does not read, so a UEFI machine's `secure_boot` is None; whether
KSM merges VirtualBox's guest memory is not something the settings tell either. A VirtualBox
VM process runs as the user who owns the machine, so host-side access of a shared folder has root's
rights only for root's own machines. Bridged adapters have no MAC or IP filtering in VirtualBox.
Machines whose settings are encrypted (MachineEncrypted) are not mapped: nothing about them is known.
A machine is mapped in its current state, and each snapshot's settings (its own Hardware and
storage, which restoring it brings back) as one more Guest with `snapshot` set, named
`machine (uuid)@snapshot` as the VirtualBox rows name it (checks.each_machine).
"""

from __future__ import annotations

import dataclasses
import posixpath

from ...guests.model import (
    Console,
    Guest,
    GuestDisk,
    GuestNic,
    GuestTpm,
    NetworkChardev,
    PassedDevice,
    SharedDirectory,
)
from .facts import VBoxHome, VBoxMachine, VirtualBoxFacts

TPMS = {"v1_2": GuestTpm("emulator", "1.2", None), "v2_0": GuestTpm("emulator", "2.0", None),
        "Host": GuestTpm("passthrough", None, None), "Swtpm": GuestTpm("external", None, None)}
ATTACHMENT = {"bridged": "bridge", "nat": "user", "natnetwork": "nat", "hostonly": "hostonly",
              "hostonlynet": "hostonly", "internal": "internal", "generic": "generic", "cloud": "cloud"}
AUTH = {"Null": ["none"], "Guest": ["guest"], "External": ["password"]}


def vrde_listen(address: str) -> list[str]:
    return [address] if address else ["0.0.0.0", "::"]


def machine_guest(facts: VirtualBoxFacts, home: VBoxHome, m: VBoxMachine) -> Guest | None:
    c = m.config
    if c is None:
        return None
    consoles = []
    if c.vrde.enabled:
        consoles.append(Console("vrde", vrde_listen(c.vrde.address), auth=AUTH.get(c.vrde.auth_type, ["none"]),
                                tls=c.vrde.security_method == "TLS", source=f"VRDE port {c.vrde.ports}"))
    as_root = home.uid == 0 if home.uid is not None else None
    shares = [SharedDirectory(sf.host_path, sf.name, sf.writable, mode="vboxsf", as_root=as_root) for sf in c.shared_folders]
    devices = [PassedDevice("pci", p.host, target=p.guest) for p in c.pci]
    if c.usb_controllers:
        for f in c.usb_filters:
            if f.active:
                ident = ":".join(x for x in (f.criteria.get("vendorId"), f.criteria.get("productId")) if x) or "any USB device"
                devices.append(PassedDevice("usb", ident, target=f.name or None))
    chardevs = []
    for port in c.ports:
        if not port.enabled:
            continue
        if port.mode == "HostDevice" and port.path:
            devices.append(PassedDevice("device-node", port.path, target=f"{port.kind} {port.slot + 1}"))
        elif port.mode == "TCP" and port.server:
            chardevs.append(NetworkChardev(port.kind, "0.0.0.0", port.path, "raw", False))
    disks = []
    for d in c.disks:
        if d.host_drive:
            disks.append(GuestDisk(d.host_drive, None, d.device != "disk", False, None, raw_device=True,
                                   target=d.controller, device="cdrom" if d.device == "dvd" else d.device))
            devices.append(PassedDevice("block", d.host_drive, raw_io=d.passthrough, target=f"{d.device} {d.controller}"))
            continue
        readonly = d.device != "disk" or d.medium_type in ("Immutable", "Readonly")
        disks.append(GuestDisk(d.location, image_format(d.format, d.device), readonly, d.medium_type in ("Shareable", "MultiAttach"),
                               d.encrypted, target=d.controller, device="cdrom" if d.device == "dvd" else d.device,
                               parents=list(d.parents)))
    nics = []
    for n in c.nics:
        if not n.enabled or n.attachment == "null":
            continue
        bridged = n.attachment == "bridged"
        nics.append(GuestNic(ATTACHMENT.get(n.attachment, n.attachment), n.network, n.mac,
                             False if bridged else None, promiscuous=n.promiscuous != "Deny",
                             host_device=n.network if bridged else None, name=f"adapter {n.slot + 1}",
                             why=f"adapter {n.slot + 1} bridged to {n.network or '?'}: VirtualBox filters no MAC or IP" if bridged else None))
    state = None
    if facts.running is not None:
        state = "running" if (m.uuid in facts.running or m.name.lower() in facts.running) else "stopped"
    return Guest(
        platform="virtualbox", kind="vm", name=m.name, id=m.uuid, uuid=m.uuid or None, origin=m.path, state=state,
        firmware="bios" if c.firmware == "BIOS" else "uefi", secure_boot=False if c.firmware == "BIOS" else None,
        keys_enrolled=None, tpms=[TPMS[c.tpm]] if c.tpm in TPMS else [], consoles=consoles,
        shared_directories=shares, devices=devices, disks=disks, nics=nics, nested=c.cpu.nested_hw_virt,
        clipboard=c.clipboard_mode != "Disabled", file_transfer=c.clipboard_mode != "Disabled" and c.file_transfers,
        drag_drop=c.dnd_mode != "Disabled", memory_sharing_opt_out=None, network_chardevs=chardevs,
        vcpus=c.cpu.count, memory_kib=c.memory_mb * 1024 if c.memory_mb else None, defaults=list(c.defaults),
        arch="aarch64" if c.architecture == "ARM" else "x86_64",
        nested_kind="requested" if c.cpu.nested_hw_virt else None,
        nested_detail="NestedHWVirt enabled (nested VT-x/AMD-V)" if c.cpu.nested_hw_virt else None,
        disk_dirs=disk_dirs(home, m),
    )


#: VirtualBox's medium formats (the MediaRegistry's `format`, VD backend names) as QEMU names them
FORMATS = {"vdi": "vdi", "vmdk": "vmdk", "vhd": "vpc", "vhdx": "vhdx", "raw": "raw", "qed": "qed", "qcow": "qcow"}


def image_format(vbox: str | None, device: str) -> str | None:
    """None where VirtualBox names no format: an ISO or floppy image is raw, a hard disk unknown."""
    if vbox is None:
        return "raw" if device in ("dvd", "floppy") else None
    return FORMATS.get(vbox.lower(), vbox.lower())


def disk_dirs(home: VBoxHome, m: VBoxMachine) -> list[str]:
    """The machine folder and the home of the user whose VirtualBox home registers the machine:
    the .vbox is that user's file and VirtualBox opens its media with that user's rights, so a
    location elsewhere (/etc/shadow, /dev/sda, another user's image) is not opened as root."""
    out = [posixpath.dirname(m.path)]
    for suffix in ("/.config/VirtualBox", "/.VirtualBox"):
        if home.path.rstrip("/").endswith(suffix):
            out.append(home.path.rstrip("/")[: -len(suffix)] or "/")
            break
    else:
        out.append(home.path)
    return list(dict.fromkeys(out))


def to_guests(facts: VirtualBoxFacts) -> list[Guest]:
    out = []
    for home, m in facts.machines():
        guest = machine_guest(facts, home, m)
        if guest is not None:
            out.append(guest)
    return out


def snapshot_guests(facts: VirtualBoxFacts) -> list[Guest]:
    """Each snapshot's settings as its machine would run after a restore: never running, the
    machine-wide settings (name, UUID, home) the machine's own."""
    out = []
    for home, m in facts.machines():
        if m.config is None:
            continue
        for snap in m.snapshots:
            guest = machine_guest(facts, home, dataclasses.replace(m, config=snap.config))
            if guest is not None:
                out.append(dataclasses.replace(guest, state=None, snapshot=snap.name, snapshot_id=snap.uuid))
    return out
