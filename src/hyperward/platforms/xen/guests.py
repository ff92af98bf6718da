"""Xen domains on the neutral Guest model, and the xl.cfg(5) semantics the checks share.

Defaults are libxl's, as xl.cfg(5) states them: an HVM guest gets a VNC display unless vnc=0, on
vnclisten (default 127.0.0.1) over TCP, without a password unless vncpasswd is set and non-empty;
a PV guest gets one only through vfb= (or the top-level vnc/sdl keys); SPICE listens on
spicehost, "otherwise any interface", and asks for spicepasswd unless spicedisable_ticketing=1;
the device model (QEMU) runs in dom0 as root unless the guest uses a stub domain
(device_model_stubdomain_override=1) or dm_restrict=1; nestedhvm is off by default.

xl.conf(5) supplies what a guest's file leaves unset for its vifs: vif.default.bridge (else
xenbr0), vif.default.script (else vif-bridge), vif.default.backend (else dom0). xl applies them
while it parses the guest's config (xl.c parse_global_config reads the deprecated defaultbridge
and vifscript first and lets the vif.default.* names win), so they are the effective values of a
defined guest; a running domain's `xl list -l` already carries the values it was created with, so
xl.conf is never applied to it a second time.

A device's `backend=` names the domain that serves it (xl-network-configuration(5),
xl-disk-configuration(5), xl.cfg(5) for vtpm, p9, pvcalls, channel, vkb, vdispl, vsnd, usbctrl,
virtio); absent, "0" or "Domain-0" is dom0 itself.
"""

from __future__ import annotations

import re

from ...facts import Maybe
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
from ...records import frozen
from . import parsers
from .facts import XenFacts, XenGuestConfig

NETWORK_SCRIPTS = {"block-iscsi": "iscsi", "block-nbd": "nbd", "block-drbd": "drbd", "block-dmmd": None}


@frozen
class XlDefaults:
    """xl.conf(5)'s defaults for a guest's vifs (see the module docstring)."""

    vif_bridge: str = "xenbr0"
    vif_script: str = "vif-bridge"
    vif_backend: str | None = None


BUILTIN = XlDefaults()


def xl_defaults(xl_conf: Maybe[dict[str, str]]) -> XlDefaults:
    if not isinstance(xl_conf, dict):
        return BUILTIN

    def pick(new: str, old: str | None) -> str | None:
        for key in (new, old):
            if key and xl_conf.get(key):
                return xl_conf[key]
        return None

    return XlDefaults(pick("vif.default.bridge", "defaultbridge") or BUILTIN.vif_bridge,
                      pick("vif.default.script", "vifscript") or BUILTIN.vif_script,
                      pick("vif.default.backend", None))


def defaults_for(c: XenGuestConfig, defaults: XlDefaults) -> XlDefaults:
    """xl.conf applies to a defined guest's file, never again to a running domain."""
    return defaults if c.source == "file" else BUILTIN


def is_dom0(backend: str | None) -> bool:
    return backend is None or backend.strip() in ("", "0", "Domain-0")


#: the device lists whose specs take backend= (the manuals named in the module docstring)
BACKEND_LISTS = ("disk", "vif", "vtpm", "p9", "pvcalls", "channel", "vkb", "vdispl", "vsnd", "usbctrl", "virtio")


@frozen
class BackendUse:
    """One device served by a domain other than dom0: `device` as "vif[0]", `backend` as written
    (a name or a domid), `trusted` the device's trusted/untrusted flag (trusted by default; None
    for the kinds that have no such flag: only vif and disk do)."""

    device: str
    backend: str
    trusted: bool | None


def device_backends(c: XenGuestConfig, defaults: XlDefaults = BUILTIN) -> list[BackendUse]:
    out: list[BackendUse] = []
    own = defaults_for(c, defaults)
    for key in BACKEND_LISTS:
        for index, spec in enumerate(c.items(key)):
            trusted: bool | None = None
            if key == "disk":
                disk = parsers.parse_disk_spec(spec)
                backend, trusted = disk.backend, disk.trusted
            else:
                positional, keyed = parsers.spec_string(spec)
                backend = keyed.get("backend") or (own.vif_backend if key == "vif" else None)
                if key == "vif":
                    trusted = "untrusted" not in positional
            if not is_dom0(backend):
                assert backend is not None
                out.append(BackendUse(f"{key}[{index}]", backend.strip(), trusted))
    return out


def flag(c: XenGuestConfig, key: str, default: bool) -> bool:
    """A BOOLEAN setting: a NUMBER, 0 false and anything else true (xl.cfg(5)); absent or not a
    number (which xl refuses) means the default."""
    value = parsers.c_long(c.get(key))
    return default if value is None else value != 0


def guest_type(c: XenGuestConfig) -> str:
    """type= (pv, pvh, hvm); the deprecated builder="hvm"/"generic"; an xm-era HVM config named
    hvmloader as its kernel. PV is the default on x86."""
    kind = (c.get("type") or "").lower()
    if kind in ("pv", "pvh", "hvm"):
        return kind
    builder = c.get("builder")
    if builder == "hvm" or (c.get("kernel") or "").endswith("/hvmloader"):
        return "hvm"
    return "pv"


def stubdomain(c: XenGuestConfig) -> bool:
    return flag(c, "device_model_stubdomain_override", False)


def dm_restricted(c: XenGuestConfig) -> bool:
    return flag(c, "dm_restrict", False) and c.get("device_model_user") != "root"


def qemu_in_dom0(c: XenGuestConfig) -> list[str]:
    """Why a QEMU runs in dom0 for this guest (empty: none does): the HVM device model, or for a
    PV/PVH guest the backends QEMU provides (a framebuffer, qdisk disks, 9pfs, QEMU USB)."""
    kind = guest_type(c)
    if kind == "hvm":
        return [] if stubdomain(c) else ["HVM device model"]
    reasons = []
    if c.items("vfb") or (kind == "pv" and (c.get("vnc") is not None or c.get("sdl") is not None)):
        reasons.append("framebuffer (vfb)")
    if any("backendtype=qdisk" in d for d in c.items("disk")):
        reasons.append("qdisk disk backend")
    if c.items("p9"):
        reasons.append("9pfs backend")
    if any("type=qusb" in u for u in c.items("usbctrl")):
        reasons.append("QEMU USB backend")
    return reasons


@frozen
class VncDisplay:
    listen: str
    password: bool
    default_listen: bool
    where: str


def _split_listen(value: str) -> str:
    """vnclisten="ADDRESS[:DISPLAYNUM]"; an IPv6 address comes bracketed or bare."""
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def vnc_displays(c: XenGuestConfig) -> list[VncDisplay]:
    out: list[VncDisplay] = []
    kind = guest_type(c)
    if kind == "hvm":
        if flag(c, "vnc", True):
            listen = c.get("vnclisten")
            out.append(VncDisplay(_split_listen(listen) if listen else "127.0.0.1", bool(c.get("vncpasswd")),
                                  listen is None, "vnc"))
        return out
    vfbs = c.items("vfb")
    if not vfbs and kind == "pv" and (c.get("vnc") is not None or c.get("sdl") is not None):
        if flag(c, "vnc", True):
            listen = c.get("vnclisten")
            out.append(VncDisplay(_split_listen(listen) if listen else "127.0.0.1", bool(c.get("vncpasswd")),
                                  listen is None, "vnc"))
        return out
    for index, spec in enumerate(vfbs):
        _pos, keyed = parsers.spec_string(spec)
        enabled = parsers.c_long(keyed.get("vnc"))
        if enabled is None and keyed.get("type") == "sdl":  # xm's vfb `type=sdl|vnc`, which xl still reads
            enabled = 0
        if enabled == 0:
            continue
        listen = keyed.get("vnclisten")
        out.append(VncDisplay(_split_listen(listen) if listen else "127.0.0.1", bool(keyed.get("vncpasswd")),
                              listen is None, f"vfb[{index}]"))
    return out


@frozen
class SpiceDisplay:
    listen: str
    ticketing: bool
    password: bool
    tls: bool


def spice_display(c: XenGuestConfig) -> SpiceDisplay | None:
    if guest_type(c) != "hvm" or not flag(c, "spice", False):
        return None
    return SpiceDisplay(c.get("spicehost") or "0.0.0.0", not flag(c, "spicedisable_ticketing", False),
                        bool(c.get("spicepasswd")), c.get("spicetls_port") is not None)


_SERIAL_NET = re.compile(r"^(tcp|telnet|udp):([^:,@]*):(\d+)")


def network_serials(c: XenGuestConfig) -> list[NetworkChardev]:
    out = []
    for value in c.items("serial"):
        match = _SERIAL_NET.match(value)
        if match:
            proto, host, port = match.groups()
            transport = "udp" if proto == "udp" else "tcp"
            out.append(NetworkChardev("serial", host or "0.0.0.0", port, "telnet" if proto == "telnet" else "raw",
                                      False, transport))
    return out


def pci_devices(c: XenGuestConfig) -> list[tuple[str, dict[str, bool]]]:
    """Each pci= device with its effective permissive/seize/msitranslate/power_mgmt, the guest-wide
    pci_* settings being the defaults a device may override."""
    out = []
    for spec in c.items("pci"):
        bdf, keyed = parsers.parse_pci_spec(spec)
        effective = {}
        for key in ("permissive", "seize", "msitranslate", "power_mgmt"):
            own = parsers.c_long(keyed.get(key))
            effective[key] = own != 0 if own is not None else flag(c, f"pci_{key}", False)
        out.append((bdf, effective))
    return out


def _firmware(c: XenGuestConfig, kind: str, defaults: list[str]) -> tuple[str | None, bool | None]:
    if kind != "hvm":
        return None, None
    chosen = (c.get("firmware") or c.get("bios") or "").lower()
    if chosen in ("uefi", "ovmf"):
        return "uefi", None
    if not chosen:
        defaults.append("firmware (bios: seabios with qemu-xen)")
    return "bios", False


def _disks(c: XenGuestConfig) -> tuple[list[GuestDisk], list[PassedDevice]]:
    disks: list[GuestDisk] = []
    devices: list[PassedDevice] = []
    for spec in c.items("disk"):
        disk = parsers.parse_disk_spec(spec)
        if not disk.target:
            continue
        network = NETWORK_SCRIPTS.get(disk.script or "") if disk.script else None
        if disk.target.startswith(("rbd:", "iscsi:", "nbd:")):
            network = disk.target.split(":", 1)[0]
        raw = disk.target.startswith("/dev/")
        disks.append(GuestDisk(disk.target, disk.format, disk.readonly, False, None, network=network,
                               raw_device=raw, target=disk.vdev, device="cdrom" if disk.cdrom else "disk"))
        if raw and not disk.cdrom:
            devices.append(PassedDevice("block", disk.target, target=disk.vdev))
    return disks, devices


@frozen
class Vif:
    """One vif= entry with xl.conf's defaults applied: `bridge` None when its script is not
    vif-bridge and it names none; `backend` None for dom0."""

    index: int
    keyed: dict[str, str]
    script: str
    bridge: str | None
    backend: str | None


def vifs(c: XenGuestConfig, defaults: XlDefaults = BUILTIN) -> list[Vif]:
    own = defaults_for(c, defaults)
    out = []
    for index, spec in enumerate(c.items("vif")):
        _pos, keyed = parsers.spec_string(spec)
        script = keyed.get("script", own.vif_script).rsplit("/", 1)[-1]
        bridged = "bridge" in keyed or script == "vif-bridge"
        backend = keyed.get("backend", own.vif_backend)
        out.append(Vif(index, keyed, script, keyed.get("bridge", own.vif_bridge) if bridged else None,
                       None if is_dom0(backend) else backend))
    return out


def dom0_bridges(xen: XenFacts) -> list[str]:
    """Bridges in dom0 that guests' vifs join: a vif a driver domain serves joins a bridge inside
    that domain, not one of dom0's."""
    defaults = xl_defaults(xen.xl_conf)
    return sorted({v.bridge for c in xen.guests() for v in vifs(c, defaults) if v.bridge and v.backend is None})


def _nics(c: XenGuestConfig, defaults: XlDefaults) -> list[GuestNic]:
    """vif= entries. vif-bridge (the default script) attaches to bridge= or xl.conf's default
    bridge (xenbr0 unless vif.default.bridge says otherwise); xl's vif scripts never filter the
    source MAC, and `ip=` only adds iptables accept rules for that address, so no NIC counts as
    anti-spoofed."""
    nics = []
    for vif in vifs(c, defaults):
        keyed = vif.keyed
        why = "xl's vif scripts filter no source MAC; " + (
            "ip= only adds iptables accept rules for that address" if keyed.get("ip") else "no ip=, so no source IP rule either")
        nics.append(GuestNic("bridge" if vif.bridge else vif.script, vif.bridge, keyed.get("mac"), False, None,
                             name=keyed.get("vifname") or f"vif{vif.index}", why=why))
    return nics


def to_guest(c: XenGuestConfig, xl_conf: XlDefaults = BUILTIN) -> Guest:
    kind = guest_type(c)
    defaults: list[str] = []
    firmware, secure_boot = _firmware(c, kind, defaults)
    consoles: list[Console] = []
    for vnc in vnc_displays(c):
        if vnc.default_listen:
            defaults.append(f"{vnc.where} vnclisten (127.0.0.1)")
        consoles.append(Console("vnc", [vnc.listen], auth=["password"] if vnc.password else ["none"], tls=False,
                                tls_verify=False, source=f"xl {vnc.where}"))
    spice = spice_display(c)
    if spice is not None:
        if c.get("spicehost") is None:
            defaults.append("spicehost (any interface)")
        consoles.append(Console("spice", [spice.listen], auth=["password"] if spice.ticketing else ["none"],
                                tls=None if spice.tls else False, tls_verify=None if spice.tls else False, source="xl spice"))
    vdagent = spice is not None and flag(c, "spicevdagent", False)
    clipboard = vdagent and flag(c, "spice_clipboard_sharing", False)
    usbredir = (parsers.c_long(c.get("spiceusbredirection")) or 0) if spice is not None else 0
    devices: list[PassedDevice] = [PassedDevice("pci", bdf, target=f"pci[{i}]") for i, (bdf, _f) in enumerate(pci_devices(c))]
    for spec in c.items("usbdev"):
        _pos, keyed = parsers.spec_string(spec)
        if keyed.get("type", "hostdev") == "hostdev" and ("hostbus" in keyed or "hostaddr" in keyed):
            devices.append(PassedDevice("usb", f"{keyed.get('hostbus', '?')}.{keyed.get('hostaddr', '?')}"))
    for item in c.items("usbdevice"):
        if item.startswith("host:"):
            devices.append(PassedDevice("usb", item[5:]))
    for value in c.items("serial"):
        if value.startswith("/dev/"):
            devices.append(PassedDevice("device-node", value))
    disks, block = _disks(c)
    devices.extend(block)
    restricted = stubdomain(c) or dm_restricted(c)
    shared = []
    for spec in c.items("p9"):
        _pos, keyed = parsers.spec_string(spec)
        if keyed.get("path"):
            shared.append(SharedDirectory(keyed["path"], keyed.get("tag"), True, mode=keyed.get("security_model", "none"),
                                          as_root=not restricted))
    tpms = [GuestTpm("external", None, None) for _ in c.items("vtpm")]
    nested = kind != "pv" and flag(c, "nestedhvm", False)
    memory = parsers.c_long(c.get("memory"))
    origin = c.path if c.also is None else f"{c.path}; defined in {c.also}"
    state = None if c.running is None else ("running" if c.running else "stopped")
    return Guest(
        platform="xen", kind="vm", name=c.name, id=c.name, uuid=c.get("uuid"), origin=origin, state=state,
        firmware=firmware, secure_boot=secure_boot, keys_enrolled=None if firmware == "uefi" else (False if firmware else None),
        tpms=tpms, consoles=consoles, shared_directories=shared, devices=devices, disks=disks, nics=_nics(c, xl_conf),
        nested=nested, clipboard=clipboard, file_transfer=None if vdagent else False, drag_drop=None if vdagent else False,
        memory_sharing_opt_out=None, network_chardevs=network_serials(c),
        vcpus=parsers.c_long(c.get("vcpus")), memory_kib=memory * 1024 if memory is not None else None,
        defaults=defaults, nested_kind="requested" if nested else None,
        nested_detail="nestedhvm=1 (VMX/SVM exposed to the guest)" if nested else None,
        usb_redirection=max(usbredir, 0),
    )


def to_guests(xen: XenFacts) -> list[Guest]:
    defaults = xl_defaults(xen.xl_conf)
    return [to_guest(c, defaults) for c in xen.guests()]
