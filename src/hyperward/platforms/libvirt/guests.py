"""libvirt domains on the neutral Guest model.

What the domain XML leaves to qemu.conf (console listen addresses, VNC/SPICE TLS and SASL,
chardev_tls) is resolved here with libvirt's compiled defaults, and each default relied on is named
in `Guest.defaults`, so a neutral check can say "default assumed" as the libvirt checks do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ...facts import Domain, DomainSnapshot, Graphics, LibvirtFacts
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
from ...parsers.libvirt_defaults import QEMU_CONF_DEFAULTS, QEMU_USER_FALLBACK

FILTERED_TYPES = ("bridge", "network", "ethernet")
#: libvirt's own filters that stop MAC/IP/ARP spoofing (formatnwfilter.rst); a filter counts when it
#: includes one of these, by name: a user filter merely named clean-traffic-something does not
ANTI_SPOOFING_FILTERS = {"clean-traffic", "clean-traffic-gateway", "no-mac-spoofing", "no-ip-spoofing", "no-arp-spoofing",
                         "no-arp-mac-spoofing", "no-arp-ip-spoofing"}


def _qemu_settings(facts: LibvirtFacts) -> dict[str, Any] | None:
    """qemu.conf's settings ({} when absent: every default); None when it exists but cannot be read,
    so nothing that rests on it is guessed."""
    config = facts.configs.get("qemu.conf")
    if config is None:
        return {}
    if isinstance(config.settings, Unavailable):
        return {} if config.settings.kind == "missing" else None
    return config.settings


def _setting(settings: dict[str, Any], key: str, defaults: list[str]) -> Any:
    if key in settings:
        return settings[key]
    defaults.append(f"qemu.conf:{key}")
    return QEMU_CONF_DEFAULTS.get(key)


def _flag(value: Any) -> bool:
    try:
        return int(str(value), 0) == 1
    except ValueError:
        return False


def _reaches_anti_spoofing(name: str, filters: dict[str, list[str]]) -> bool:
    seen, pending = set(), [name]
    while pending:
        current = pending.pop()
        if current in ANTI_SPOOFING_FILTERS:
            return True
        if current in seen:
            continue
        seen.add(current)
        pending.extend(filters.get(current, []))
    return False


def _console(g: Graphics, settings: dict[str, Any], defaults: list[str]) -> Console:
    addresses: list[str] = []
    socket = False
    for listen in g.listens or [None]:  # type: ignore[list-item]
        if listen is None or listen.type == "address":
            address = listen.address if listen is not None else None
            addresses.append(address if address is not None else str(_setting(settings, f"{g.type}_listen", defaults)))
        elif listen.type == "network":
            addresses.append(f"network {listen.network}")
        elif listen.type == "socket":
            socket = True
    auth: list[str] = []
    if g.type == "vnc":
        tls = _flag(_setting(settings, "vnc_tls", defaults))
        verify = tls and _flag(_setting(settings, "vnc_tls_x509_verify", defaults))
        if _flag(_setting(settings, "vnc_sasl", defaults)):
            auth.append("sasl")
        if g.has_password or "vnc_password" in settings:
            auth.append("password")
    else:
        tls = _flag(_setting(settings, "spice_tls", defaults)) and g.tls_port is not None
        verify = tls
        if _flag(_setting(settings, "spice_sasl", defaults)):
            auth.append("sasl")
        if g.has_password or "spice_password" in settings:
            auth.append("password")
    if verify:
        auth.append("x509")
    return Console(g.type, addresses, socket, auth or ["none"], tls, verify, f"<graphics type='{g.type}'>")


def domain_guest(d: Domain, facts: LibvirtFacts) -> Guest:
    readable = _qemu_settings(facts)
    settings = readable if readable is not None else {}
    defaults: list[str] = []
    filters = facts.nwfilters if isinstance(facts.nwfilters, dict) else None
    user = settings.get("user", facts.qemu_user_default or QEMU_USER_FALLBACK)
    root_qemu: bool | None = str(user).strip() in ("root", "+0", "0") if readable is not None else None
    efi = d.firmware == "efi" or d.loader_type == "pflash" or bool(d.firmware_features)
    secure = d.loader_secure == "yes" or d.firmware_features.get("secure-boot") == "yes"
    if d.firmware_features.get("secure-boot") == "no":
        secure = False
    enrolled = None if not secure else d.firmware_features.get("enrolled-keys") != "no"
    consoles = [dataclasses.replace(_console(g, settings, defaults), where=f"devices/graphics[{n}]")
                for n, g in enumerate(d.graphics, 1) if g.type in ("vnc", "spice")]
    if readable is None:
        # qemu.conf unreadable: listen addresses, TLS and SASL that rest on it are unknown
        consoles = [dataclasses.replace(c, listen=None, tls=None, tls_verify=None) for c in consoles]
    spice = [g for g in d.graphics if g.type == "spice"]
    chardev_tls = _flag(settings.get("chardev_tls", QEMU_CONF_DEFAULTS.get("chardev_tls", 0)))
    network_chardevs = []
    seen_of: dict[str, int] = {}
    for c in d.chardevs:
        seen_of[c.element] = seen_of.get(c.element, 0) + 1
        if c.type not in ("tcp", "udp"):
            continue
        host_addr = c.host if c.host else ("0.0.0.0" if c.mode == "bind" or c.type == "udp" else None)
        tls = c.type == "tcp" and c.tls != "no" and (c.tls == "yes" or chardev_tls)
        network_chardevs.append(NetworkChardev(c.element, host_addr, c.service, c.protocol, tls, c.type,
                                               where=f"devices/{c.element}[{seen_of[c.element]}]"))
    hostdev_nets = {n.name for n in facts.networks if not isinstance(n, Unavailable) and n.forward_mode == "hostdev"}
    nics = []
    for number, i in enumerate(d.interfaces, 1):
        name = i.target_dev or i.mac or i.source or "interface"
        why = None
        anti: bool | None = None
        if i.type in FILTERED_TYPES:
            if i.filterref is None:
                anti, why = False, f"{name} ({i.type} {i.source or ''}): no <filterref>".replace(" )", ")")
            elif filters is None:
                anti, why = None, f"{name}: filter {i.filterref} (nwfilter definitions unreadable)"
            elif i.filterref not in filters:
                anti, why = False, f"{name}: filter {i.filterref} is not defined"
            elif not _reaches_anti_spoofing(i.filterref, filters):
                anti, why = False, f"{name}: filter {i.filterref} includes no MAC/IP/ARP anti-spoofing filter"
            else:
                anti = True
        nics.append(GuestNic(i.type, i.source, i.mac, anti, i.filterref, trusted=i.trust_guest_rx_filters,
                             host_device=i.source if i.type in ("direct", "hostdev") else None, name=name, why=why,
                             where=f"devices/interface[{number}]"))
    devices = []
    for number, disk in enumerate(d.disks, 1):
        raw = [note for note, on in (("rawio='yes'", disk.rawio == "yes"), ("sgio='unfiltered'", disk.sgio == "unfiltered"))
               if on and disk.device == "lun"]
        if (disk.type == "block" and disk.source) or raw:
            devices.append(PassedDevice("block" if disk.type == "block" and disk.source else "lun",
                                        disk.source if disk.type == "block" else None, bool(raw),
                                        disk.target or disk.source or "disk", raw, where=f"devices/disk[{number}]"))
    devices += [PassedDevice(h.type or "unknown", h.address, where=f"devices/hostdev[{n}]") for n, h in enumerate(d.hostdevs, 1)]
    devices += [PassedDevice("hostdev-net", i.source, where=f"devices/interface[{n}]") for n, i in enumerate(d.interfaces, 1)
                if i.type == "hostdev" or (i.type == "network" and i.source in hostdev_nets)]
    nested_features = [n for n in ("vmx", "svm") if d.cpu_features.get(n) in ("require", "force", "optional")]
    disabled = any(d.cpu_features.get(n) in ("disable", "forbid") for n in ("vmx", "svm"))
    nested_kind, nested_detail = None, None
    if nested_features:
        nested_kind, nested_detail = "requested", f"CPU feature {', '.join(nested_features)} requested"
    elif d.cpu_mode in ("host-passthrough", "maximum") and not disabled:
        nested_kind, nested_detail = "cpu-passthrough", f"cpu mode {d.cpu_mode}"
    nested = nested_kind is not None
    return Guest(
        platform="libvirt",
        kind="vm",
        name=d.name,
        id=d.uuid,
        uuid=d.uuid or None,
        origin=d.origin,
        lines=d.lines,
        state="running" if d.running else "defined",
        firmware="uefi" if efi else "bios",
        secure_boot=secure if efi else False,
        keys_enrolled=enrolled,
        tpms=[GuestTpm(t.backend, t.version, t.encrypted) for t in d.tpms],
        consoles=consoles,
        shared_directories=[SharedDirectory(fs.source or "/", fs.target, not fs.readonly, fs.accessmode or "passthrough",
                                            None if root_qemu is None else (fs.accessmode or "passthrough") == "passthrough" and root_qemu,
                                            fs.driver, where=f"devices/filesystem[{n}]")
                            for n, fs in enumerate(d.filesystems, 1) if fs.type in ("mount", None)],
        devices=devices,
        disks=[GuestDisk(disk.source, disk.driver_type, disk.readonly, disk.shareable,
                         True if disk.encryption else (None if disk.type == "network" else False),
                         disk.protocol if disk.type == "network" else None, disk.type == "block", disk.target, disk.device)
               for disk in d.disks],
        nics=nics,
        nested=nested,
        clipboard=any(g.clipboard != "no" for g in spice) if spice else False,
        file_transfer=any(g.filetransfer != "no" for g in spice) if spice else False,
        drag_drop=None,
        memory_sharing_opt_out=d.nosharepages,
        network_chardevs=network_chardevs,
        vcpus=d.vcpus,
        memory_kib=d.memory_kib,
        defaults=sorted(set(defaults + [f"spice:{what}" for g in spice for what, value in
                                        (("clipboard", g.clipboard), ("filetransfer", g.filetransfer)) if value is None])),
        arch=d.arch,
        nested_kind=nested_kind,
        nested_detail=nested_detail,
        usb_redirection=d.redirdevs if d.redirdevs and d.redirfilter_default_allow is not False else 0,
    )


def domain_guests(facts: LibvirtFacts) -> list[Guest]:
    return [domain_guest(d, facts) for d in facts.domains if isinstance(d, Domain)]


def snapshot_guests(facts: LibvirtFacts) -> list[Guest]:
    """Each snapshot's definition as `virsh snapshot-revert` would bring it back: never running,
    its origin the metadata file (findings name its lines)."""
    return [dataclasses.replace(domain_guest(s.domain, facts), state=None, snapshot=s.name, snapshot_id=s.name)
            for s in facts.snapshots if isinstance(s, DomainSnapshot)]
