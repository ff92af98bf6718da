"""Proxmox VMs and containers on the neutral Guest model.

Semantics from qm.conf(5), pct.conf(5), pve-firewall(8) and qemu-server's command line builder:
the VNC display is a UNIX socket (/var/run/qemu-server/<vmid>.vnc) reached only through
pveproxy with a ticket; SPICE listens on localhost with TLS and a ticket password, reached through
spiceproxy; only raw `args:` can open a display on the network.

A guest is mapped in its current section, and each snapshot section (the full configuration
`qm rollback` / `pct rollback` writes back, PVE::AbstractConfig snapshot_rollback) through the same
mapping as one more Guest with `snapshot` set, named `name (vmid)@snapshot`.
"""

from __future__ import annotations

import dataclasses
import re
import shlex

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
from ...model import Unavailable
from . import parsers
from .facts import ProxmoxFacts, PveGuestConfig

DISK_KEY = re.compile(r"^(ide|sata|scsi|virtio)(\d+)$")
NET_KEY = re.compile(r"^net(\d+)$")
NETWORK_STORAGE = {"rbd": "rbd", "iscsi": "iscsi", "iscsidirect": "iscsi", "nfs": "nfs", "cifs": "cifs",
                   "glusterfs": "gluster", "cephfs": "cephfs", "zfs": "iscsi"}
NESTED_FLAGS = ("+vmx", "+svm", "+nested-virt")
UNNESTED_FLAGS = ("-vmx", "-svm", "-nested-virt")


def _key_order(key: str) -> tuple[str, int]:
    match = re.match(r"^([a-z]+)(\d+)$", key)
    return (match.group(1), int(match.group(2))) if match else (key, -1)


def nic_filter(pve: ProxmoxFacts, vmid: str, index: str, props: dict[str, str]) -> tuple[bool | None, str]:
    """Whether pve-firewall filters this NIC's source MAC and IP: NIC `firewall=1`, the cluster
    firewall on, the guest's <vmid>.fw with `enable: 1`, `macfilter` not 0 (default on), and
    `ipfilter: 1` or an `ipfilter-net<N>` IP set. (None, why) when a file could not be read."""
    missing = []
    if not parsers.as_bool(props.get("firewall"), False):
        missing.append(f"firewall=1 on net{index}")
    cluster = pve.cluster_fw
    if isinstance(cluster, Unavailable) and cluster.kind != "missing":
        return None, f"cluster firewall unreadable: {cluster.describe()}"
    if isinstance(cluster, Unavailable) or not parsers.as_bool(cluster.options.get("enable"), False):
        missing.append("cluster firewall (cluster.fw enable: 1)")
    fw = pve.guest_fw.get(vmid)
    if isinstance(fw, Unavailable):
        return None, f"guest firewall unreadable: {fw.describe()}"
    if fw is None:
        missing.append(f"guest firewall (no firewall/{vmid}.fw)")
    else:
        if not parsers.as_bool(fw.options.get("enable"), False):
            missing.append(f"guest firewall enable: 1 in {vmid}.fw")
        if not parsers.as_bool(fw.options.get("macfilter"), True):
            missing.append("macfilter (set to 0)")
        if not parsers.as_bool(fw.options.get("ipfilter"), False) and f"ipfilter-net{index}" not in fw.ipsets:
            missing.append(f"ipfilter: 1 or an ipfilter-net{index} IP set")
    if missing:
        return False, "pve-firewall missing: " + ", ".join(missing)
    return True, "pve-firewall macfilter + ipfilter"


def _storage_types(pve: ProxmoxFacts) -> dict[str, str]:
    if isinstance(pve.storage, Unavailable):
        return {}
    return {s.id: s.type for s in pve.storage}


def _volume_network(volume: str, storage_types: dict[str, str]) -> str | None:
    if volume.startswith("/") or ":" not in volume:
        return None
    return NETWORK_STORAGE.get(storage_types.get(volume.split(":", 1)[0], ""))


def _args_displays(args: str) -> tuple[list[Console], list[NetworkChardev]]:
    """Displays and TCP chardevs that raw `args:` add to the QEMU command line."""
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    consoles: list[Console] = []
    chardevs: list[NetworkChardev] = []
    for opt, value in zip(words, words[1:]):
        if opt == "-vnc":
            display = value.split(",", 1)[0]
            host = None if display.startswith("unix:") else display.rsplit(":", 1)[0] or "0.0.0.0"
            auth = ["password"] if "password" in value else (["sasl"] if "sasl" in value else ["none"])
            consoles.append(Console("vnc", [host] if host else [], socket=host is None, auth=auth,
                                    tls="tls-creds" in value, source="args", where="args"))
        elif opt == "-spice":
            props = dict(p.partition("=")[::2] for p in value.split(","))
            host = props.get("addr", "0.0.0.0")
            auth = ["none"] if "disable-ticketing" in value else ["password"]
            consoles.append(Console("spice", [host], auth=auth, tls="tls-port" in props, source="args", where="args"))
        elif opt in ("-serial", "-monitor", "-qmp", "-parallel"):
            match = re.match(r"^(tcp|telnet|udp):([^:,]*):(\d+)", value)
            if match:
                chardevs.append(NetworkChardev(opt[1:], match.group(2) or "0.0.0.0", match.group(3), match.group(1), False, where="args"))
        elif opt == "-chardev" and value.startswith(("socket,", "udp,")):
            props = dict(p.partition("=")[::2] for p in value.split(",")[1:])
            if "port" in props:
                chardevs.append(NetworkChardev("chardev", props.get("host", "0.0.0.0"), props["port"],
                                               "tcp" if value.startswith("socket") else "udp", "tls-creds" in props, where="args"))
    return consoles, chardevs


def vm_guest(pve: ProxmoxFacts, g: PveGuestConfig, storage_types: dict[str, str]) -> Guest:
    c = g.config
    defaults: list[str] = []
    bios = c.get("bios")
    if bios is None:
        defaults.append("firmware (bios: seabios)")
    firmware = "uefi" if bios == "ovmf" else "bios"
    secure_boot: bool | None = None
    keys: bool | None = None
    if firmware == "uefi":
        efi = parsers.parse_property_string(c["efidisk0"], "file") if "efidisk0" in c else None
        if efi is None:
            secure_boot = keys = False
        else:
            enrolled = parsers.as_bool(efi.get("pre-enrolled-keys"), False) and efi.get("efitype", "2m") == "4m"
            if parsers.as_bool(efi.get("pre-enrolled-keys"), False) and efi.get("efitype", "2m") != "4m":
                defaults.append("efidisk0 pre-enrolled-keys ignored without efitype=4m")
            secure_boot = keys = enrolled
    tpms = []
    if "tpmstate0" in c:
        tpm = parsers.parse_property_string(c["tpmstate0"], "file")
        version = tpm.get("version")
        if version is None:
            defaults.append("tpmstate0 version (v1.2)")
        tpms.append(GuestTpm("emulator", (version or "v1.2").lstrip("v"), None))

    vga = parsers.parse_property_string(c.get("vga", ""), "type")
    vga_type = vga.get("type", "std")
    consoles: list[Console] = []
    if vga_type != "none" and not vga_type.startswith("serial"):
        consoles.append(Console("vnc", [], socket=True, auth=["ticket"], tls=True, source="pveproxy (UNIX socket)"))
    spice = vga_type.startswith("qxl")
    if spice:
        consoles.append(Console("spice", ["127.0.0.1"], auth=["ticket"], tls=True, tls_verify=False, source="spiceproxy"))
    if any(k.startswith("serial") for k in c) or vga_type.startswith("serial"):
        consoles.append(Console("serial-web", [], socket=True, auth=["ticket"], tls=True, source="pveproxy (xterm.js)"))
    chardevs: list[NetworkChardev] = []
    if c.get("args"):
        extra, chardevs = _args_displays(c["args"])
        consoles.extend(extra)

    devices: list[PassedDevice] = []
    disks: list[GuestDisk] = []
    nics: list[GuestNic] = []
    shared: list[SharedDirectory] = []
    for key in sorted(c, key=_key_order):
        value = c[key]
        if key.startswith("hostpci") and key[7:].isdigit():
            props = parsers.parse_property_string(value, "host")
            kind = "mdev" if props.get("mdev") else "pci"
            if "mapping" in props:
                devices.append(PassedDevice(kind, f"mapping:{props['mapping']}", where=key))
            for host in filter(None, props.get("host", "").split(";")):
                devices.append(PassedDevice(kind, host, where=key))
        elif key.startswith("usb") and key[3:].isdigit():
            props = parsers.parse_property_string(value, "host")
            if props.get("host") == "spice":
                continue
            if "mapping" in props:
                devices.append(PassedDevice("usb", f"mapping:{props['mapping']}", where=key))
            elif "host" in props:
                devices.append(PassedDevice("usb", props["host"], where=key))
        elif (key.startswith("serial") and key[6:].isdigit()) or (key.startswith("parallel") and key[8:].isdigit()):
            if value.startswith("/dev/"):
                devices.append(PassedDevice("device-node", value, where=key))
        elif key.startswith("virtiofs") and key[8:].isdigit():
            props = parsers.parse_property_string(value, "dirid")
            dirid = props.get("dirid", "")
            shared.append(SharedDirectory(f"mapping:{dirid}", dirid, None, mode="virtiofs", where=key))
        elif DISK_KEY.match(key) or key == "efidisk0":
            props = parsers.parse_property_string(value, "file")
            volume = props.get("file", "")
            if volume in ("", "none", "cdrom"):
                continue
            raw = volume.startswith("/dev/")
            cdrom = props.get("media") == "cdrom"
            disks.append(GuestDisk(
                source=volume, format=props.get("format"), readonly=cdrom or parsers.as_bool(props.get("ro"), False),
                shared=False, encrypted=None, network=_volume_network(volume, storage_types),
                raw_device=raw, target=key,
            ))
            if raw and not cdrom:
                devices.append(PassedDevice("scsi" if parsers.as_bool(props.get("scsiblock"), False) else "block",
                                            volume, raw_io=parsers.as_bool(props.get("scsiblock"), False), where=key))
        elif NET_KEY.match(key):
            index = key[3:]
            props = parsers.parse_qemu_nic(value)
            bridge = props.get("bridge")
            anti, why = nic_filter(pve, g.vmid, index, props) if bridge else (False, "user-mode networking (no bridge)")
            nics.append(GuestNic("bridge" if bridge else "user", bridge, props.get("macaddr"), anti, why, where=key))

    cputype, flags = parsers.cpu_flags(c.get("cpu", ""))
    if "cpu" not in c:
        defaults.append("cpu (kvm64)")
    if any(f in flags for f in UNNESTED_FLAGS):
        nested = False
    else:
        nested = cputype in ("host", "max") or any(f in flags for f in NESTED_FLAGS)
    clipboard = vga.get("clipboard") == "vnc" or spice
    if spice and vga.get("clipboard") != "vnc":
        defaults.append("clipboard (SPICE vdagent, added for qxl displays)")
    folder = parsers.parse_property_string(c.get("spice_enhancements", ""), None).get("foldersharing")
    file_transfer = spice and parsers.as_bool(folder, False)
    vcpus = _int(c.get("vcpus")) or (_int(c.get("sockets")) or 1) * (_int(c.get("cores")) or 1)
    memory = parsers.parse_property_string(c.get("memory", "512"), "current").get("current")
    memory_mib = _int(memory) or 512
    uuid = parsers.parse_property_string(c.get("smbios1", ""), None).get("uuid")
    return Guest(
        platform="proxmox", kind="vm", name=g.name, id=g.vmid, uuid=uuid, origin=g.path, lines=g.lines,
        state=None if g.running is None else ("running" if g.running else "stopped"),
        firmware=firmware, secure_boot=secure_boot, keys_enrolled=keys, tpms=tpms, consoles=consoles,
        shared_directories=shared, devices=devices, disks=disks, nics=nics, nested=nested,
        clipboard=clipboard, file_transfer=file_transfer, drag_drop=None if spice else False,
        memory_sharing_opt_out=not parsers.as_bool(c.get("allow-ksm"), True),
        network_chardevs=chardevs, vcpus=vcpus, memory_kib=memory_mib * 1024, defaults=defaults,
    )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def container_privileged(c: dict[str, str]) -> bool:
    """pct.conf(5): `unprivileged` defaults to 0, so a container without it is privileged."""
    return not parsers.as_bool(c.get("unprivileged"), False)


def ct_guest(pve: ProxmoxFacts, g: PveGuestConfig, storage_types: dict[str, str]) -> Guest:
    c = g.config
    privileged = container_privileged(c)
    shared: list[SharedDirectory] = []
    devices: list[PassedDevice] = []
    disks: list[GuestDisk] = []
    nics: list[GuestNic] = []
    for key in sorted(c, key=_key_order):
        value = c[key]
        if key == "rootfs" or (key.startswith("mp") and key[2:].isdigit()):
            props = parsers.parse_property_string(value, "volume")
            volume = props.get("volume", "")
            readonly = parsers.as_bool(props.get("ro"), False)
            target = props.get("mp", "/" if key == "rootfs" else None)
            if volume.startswith("/dev/"):
                devices.append(PassedDevice("block", volume, where=key))
                disks.append(GuestDisk(volume, None, readonly, False, None, raw_device=True, target=target))
            elif volume.startswith("/"):
                shared.append(SharedDirectory(volume, target, not readonly, mode="bind", as_root=privileged, where=key))
            elif volume:
                disks.append(GuestDisk(volume, None, readonly, False, None,
                                       network=_volume_network(volume, storage_types), target=target))
        elif key.startswith("dev") and key[3:].isdigit():
            props = parsers.parse_property_string(value, "path")
            devices.append(PassedDevice("device-node", props.get("path"), where=key))
        elif key in ("lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow"):
            for n, entry in enumerate(value.split("\n"), 1):
                devices.append(PassedDevice("device-node", f"cgroup:{entry.strip()}", where=f"{key}[{n}]"))
        elif key == "lxc.mount.entry":
            for n, entry in enumerate(value.split("\n"), 1):
                fields = entry.split()
                if len(fields) >= 4 and fields[0].startswith("/"):
                    options = fields[3].split(",")
                    if fields[0].startswith("/dev/"):
                        devices.append(PassedDevice("device-node", fields[0], where=f"{key}[{n}]"))
                    else:
                        shared.append(SharedDirectory(fields[0], fields[1], "ro" not in options, mode="bind",
                                                      as_root=privileged, where=f"{key}[{n}]"))
        elif NET_KEY.match(key):
            index = key[3:]
            props = parsers.parse_property_string(value, "name")
            bridge = props.get("bridge")
            anti, why = nic_filter(pve, g.vmid, index, props) if bridge else (False, "no bridge")
            nics.append(GuestNic("bridge" if bridge else None, bridge, props.get("hwaddr"), anti, why, where=key))
    kvm = any(d.host_id in ("/dev/kvm", "cgroup:c 10:232 rwm") for d in devices)
    memory = _int(c.get("memory")) or 512
    return Guest(
        platform="proxmox", kind="container", name=g.name, id=g.vmid, uuid=None, origin=g.path, lines=g.lines, state=None,
        firmware=None, secure_boot=None, keys_enrolled=None, tpms=[],
        consoles=[Console("serial-web", [], socket=True, auth=["ticket"], tls=True, source="pveproxy (termproxy)")],
        shared_directories=shared, devices=devices, disks=disks, nics=nics, nested=kvm,
        clipboard=None, file_transfer=None, drag_drop=None, memory_sharing_opt_out=None,
        network_chardevs=[], vcpus=_int(c.get("cores")), memory_kib=memory * 1024,
        defaults=["unprivileged (0: privileged)"] if "unprivileged" not in c else [],
    )


def to_guests(pve: ProxmoxFacts) -> list[Guest]:
    """Every VM and container of the scoped nodes (the local node when known). Unreadable
    configs are not guests; the checks report them from the facts."""
    storage_types = _storage_types(pve)
    good, _bad = pve.guest_configs()
    return [vm_guest(pve, g, storage_types) if g.kind == "qemu" else ct_guest(pve, g, storage_types) for g in good]


def snapshot_guests(pve: ProxmoxFacts) -> list[Guest]:
    """Each snapshot section as its guest would be after a rollback (a snapshot with saved RAM,
    `vmstate`, resumes running in these settings): no state of its own, under the guest's current
    name and SMBIOS UUID (what results name the guest by), its lines the section's own."""
    storage_types = _storage_types(pve)
    good, _bad = pve.guest_configs()
    out = []
    for g in good:
        if not g.snapshot_sections:
            continue
        mapping = vm_guest if g.kind == "qemu" else ct_guest
        uuid = parsers.parse_property_string(g.config.get("smbios1", ""), None).get("uuid") if g.kind == "qemu" else None
        for section in g.snapshot_sections:
            restored = dataclasses.replace(g, config=section.config, pending={}, lines=section.lines, running=None)
            guest = mapping(pve, restored, storage_types)
            out.append(dataclasses.replace(guest, name=g.name, uuid=uuid, state=None,
                                           snapshot=section.name, snapshot_id=section.name))
    return out
