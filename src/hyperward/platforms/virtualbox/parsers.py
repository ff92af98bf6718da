"""VirtualBox's settings files: VirtualBox.xml (MainConfigFile), machine .vbox files
(MachineConfigFile), ExtPack.xml, and the shell-style /etc/default/virtualbox and /etc/vbox/vbox.cfg.

The semantics follow VirtualBox's own reader, src/VBox/Main/xml/Settings.cpp, and the schema
VirtualBox-settings.xsd: a missing attribute takes the default of the settings structure's
constructor, adjusted where readHardware() changes it by settings version (VRDE and network
adapter defaults changed with 1.16, VirtualBox 5.1); a boolean attribute reads "true"/"yes"/"1"
and "false"/"no"/"0", anything else leaves the default (xml::ElementNode::getAttributeValue).
Settings 1.20 (VirtualBox 7.1) moved CPU settings under <Platform><x86><CPU>; both layouts read.

Every file is parsed with defusedxml with DTDs forbidden (VirtualBox never writes one), so
entity expansion and external entities fail as errors; the caller bounds the size.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from ...parsers import shell
from ...records import frozen
from .facts import (
    Cpu,
    Disk,
    ExtPackInfo,
    GlobalSettings,
    MachineConfig,
    Medium,
    NatRule,
    Nic,
    PciDevice,
    Port,
    RegistryEntry,
    SharedFolderConf,
    Teleporter,
    UsbFilter,
    VBoxSnapshot,
    Vrde,
)

VBOX_NS = "http://www.virtualbox.org/"
_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")
_VERSION = re.compile(r"^(\d+)\.(\d+)")
_SYMLINK_KEY = "VBoxInternal2/SharedFoldersEnableSymlinksCreate/"
_AUTH_SIMPLE_KEY = "VBoxAuthSimple/users/"
#: VRDE properties kept (others may name key files or hold values a user typed)
VRDE_PROPERTIES = ("TCP/Ports", "TCP/Address", "Security/Method")
ATTACHMENTS = {
    "NAT": "nat", "HostInterface": "bridged", "BridgedInterface": "bridged", "InternalNetwork": "internal",
    "HostOnlyInterface": "hostonly", "HostOnlyNetwork": "hostonlynet", "GenericInterface": "generic",
    "NATNetwork": "natnetwork", "VDE": "generic", "CloudNetwork": "cloud",
}
USB_CRITERIA = ("vendorId", "productId", "revision", "manufacturer", "product", "serialNumber", "port", "remote")


class ParseError(Exception):
    """The file is not a VirtualBox settings file of the expected kind."""


def _local(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1] if text.startswith("{") else text


def _parse(text: str, root_name: str) -> ET.Element:
    try:
        root = DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ParseError(f"refused: {type(exc).__name__} (a DTD or entity; VirtualBox never writes one)") from None
    except ET.ParseError as exc:
        raise ParseError(f"not well-formed XML ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not parseable XML ({type(exc).__name__})") from None
    if _local(root.tag) != root_name:
        raise ParseError(f"root element is <{_local(root.tag)[:60]}>, expected <{root_name}>")
    # VirtualBox matches element names without their namespace (xml::ElementNode::nameEquals);
    # dropping it once lets ElementTree's own C lookups find children.
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.startswith("{"):
            el.tag = el.tag.rsplit("}", 1)[-1]
    return root


def _children(el: ET.Element | None, name: str) -> Iterator[ET.Element]:
    if el is None:
        return iter(())
    return el.iterfind(name)


def _child(el: ET.Element | None, name: str) -> ET.Element | None:
    return el.find(name) if el is not None else None


def _bool(el: ET.Element | None, name: str, default: bool) -> bool:
    if el is None:
        return default
    value = el.get(name)
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


def _int(el: ET.Element | None, name: str) -> int | None:
    value = el.get(name) if el is not None else None
    if value is None:
        return None
    try:
        return int(value, 0) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def settings_version(root: ET.Element) -> tuple[str, tuple[int, int]]:
    """The root's version attribute ("1.16-linux") and its (major, minor); ConfigFileBase refuses a
    file without one."""
    full = root.get("version")
    if not full:
        raise ParseError("no version attribute on <VirtualBox> (VirtualBox refuses such a file)")
    match = _VERSION.match(full)
    if not match:
        raise ParseError(f"unrecognised settings version {full[:40]!r}")
    return full, (int(match.group(1)), int(match.group(2)))


def _extradata(parent: ET.Element | None) -> tuple[set[str], int]:
    """Shared folders with symlink creation switched on, and the number of VBoxAuthSimple users
    (their password hashes are counted, never kept)."""
    symlinks: set[str] = set()
    users = 0
    for item in _children(_child(parent, "ExtraData"), "ExtraDataItem"):
        name = item.get("name", "")
        if name.startswith(_SYMLINK_KEY) and item.get("value", "") == "1":
            symlinks.add(name[len(_SYMLINK_KEY):])
        elif name.startswith(_AUTH_SIMPLE_KEY):
            users += 1
    return symlinks, users


def _media(registry: ET.Element | None) -> list[Medium]:
    """Every medium of a MediaRegistry, children (differencing images) included; a child is
    encrypted when it or an ancestor carries the CRYPT/KeyStore property."""
    out: list[Medium] = []
    stack: list[tuple[ET.Element, bool, str | None]] = []
    for kind in ("HardDisks", "DVDImages", "FloppyImages"):
        section = _child(registry, kind)
        if section is None:
            continue
        for el in section:
            stack.append((el, False, None))
    while stack:
        el, inherited, parent = stack.pop()
        props = {p.get("name", ""): True for p in _children(el, "Property")}
        encrypted = inherited or "CRYPT/KeyStore" in props or "CRYPT/KeyId" in props
        uuid = el.get("uuid", "").strip("{}").lower()
        if uuid:
            out.append(Medium(uuid, el.get("location", ""), el.get("format"), el.get("type"), encrypted, parent))
        for child in _children(el, "HardDisk"):
            stack.append((child, encrypted, uuid or None))
    return out


def parse_global(text: str, path: str) -> GlobalSettings:
    root = _parse(text, "VirtualBox")
    full, _version = settings_version(root)
    glob = _child(root, "Global")
    if glob is None:
        raise ParseError("no <Global> element (not a VirtualBox.xml)")
    machines = []
    for entry in _children(_child(glob, "MachineRegistry"), "MachineEntry"):
        src = entry.get("src", "").strip()
        if src:
            machines.append(RegistryEntry(entry.get("uuid", "").strip("{}").lower(), src))
    props = _child(glob, "SystemProperties")
    _symlinks, users = _extradata(glob)
    nat_networks = {}
    for net in _children(_child(_child(glob, "NetserviceRegistry"), "NATNetworks"), "NATNetwork"):
        if not _bool(net, "enabled", False):
            continue
        rules = [_nat_rule(rule) for kind in ("PortForwarding4", "PortForwarding6") for rule in _children(_child(net, kind), "Forwarding")]
        nat_networks[net.get("networkName", "")] = rules
    return GlobalSettings(
        path=path, settings_version=full, machines=machines, media=_media(_child(glob, "MediaRegistry")),
        vrde_auth_library=props.get("VRDEAuthLibrary") if props is not None else None,
        websrv_auth_library=props.get("webServiceAuthLibrary") if props is not None else None,
        auth_simple_users=users, nat_networks=nat_networks,
    )


def _nat_rule(rule: ET.Element) -> NatRule:
    """A <Forwarding>: proto 0 UDP, 1 TCP (NATProtocol); hostip empty binds every host address."""
    return NatRule(rule.get("name", ""), {"0": "udp", "1": "tcp"}.get(rule.get("proto", "1"), "?"),
                   rule.get("hostip", "").strip(), _int(rule, "hostport"), rule.get("guestip", "").strip(), _int(rule, "guestport"))



def parse_extpack(text: str, path: str) -> ExtPackInfo:
    root = _parse(text, "VirtualBoxExtensionPack")
    name_el = _child(root, "Name")
    name = (name_el.text or "").strip() if name_el is not None else ""
    version_el = _child(root, "Version")
    version = (version_el.text or "").strip() if version_el is not None else ""
    if not name or not version:
        raise ParseError("ExtPack.xml without <Name> or <Version>")
    vrde = _child(root, "VRDEModule")
    vrde_module = (vrde.text or "").strip() or None if vrde is not None else None
    return ExtPackInfo(path, name, version, version_el.get("revision") if version_el is not None else None, vrde_module)


_CLIPBOARD_MODES = ("Disabled", "HostToGuest", "GuestToHost", "Bidirectional")
_AUTH_TYPES = {"NULL": "Null", "GUEST": "Guest", "EXTERNAL": "External"}
_FIRMWARE = {"BIOS": "BIOS", "1": "BIOS", "EFI": "EFI", "2": "EFI", "EFI32": "EFI32", "EFI64": "EFI64", "EFIDUAL": "EFIDUAL"}


def pci_address(value: int) -> str:
    """VirtualBox stores a PCI address as (bus << 8) | (device << 3) | function."""
    return f"{(value >> 8) & 0xFF:02x}:{(value >> 3) & 0x1F:02x}.{value & 0x7:x}"


def _mode(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise ParseError(f"invalid value {value[:40]!r} in {what} (VirtualBox refuses the file)")
    return value


def _cpu(cpu_generic: ET.Element | None, cpu_x86: ET.Element | None) -> Cpu:
    """Defaults from PlatformX86::PlatformX86(): L1D flush and MDS clearing on scheduling are on,
    IBPB on VM exit/entry, SPEC_CTRL exposure and nested hardware virtualization off."""
    def sub(name: str) -> ET.Element | None:
        return _child(cpu_x86, name)

    ibpb, l1d, mds = sub("IBPBOn"), sub("L1DFlushOn"), sub("MDSClearOn")
    return Cpu(
        count=_int(cpu_generic, "count") or 1,
        nested_hw_virt=_bool(sub("NestedHWVirt"), "enabled", False),
        hw_virt=_bool(sub("HardwareVirtEx"), "enabled", True),
        spec_ctrl=_bool(sub("SpecCtrl"), "enabled", False),
        ibpb_vmexit=_bool(ibpb, "vmexit", False),
        ibpb_vmentry=_bool(ibpb, "vmentry", False),
        l1d_flush_sched=_bool(l1d, "scheduling", True),
        l1d_flush_vmentry=_bool(l1d, "vmentry", False),
        mds_clear_sched=_bool(mds, "scheduling", True),
        mds_clear_vmentry=_bool(mds, "vmentry", False),
    )


def _vrde(hw: ET.Element, version: tuple[int, int], defaults: list[str]) -> Vrde:
    """VRDESettings: enabled by default for settings before 1.16 (readHardware() switches the
    default off from 1.16, VirtualBox 5.1), authType Null, one connection, port 3389, every address."""
    rd = _child(hw, "RemoteDisplay")
    old = version < (1, 16)
    enabled = _bool(rd, "enabled", old)
    if rd is None or rd.get("enabled") not in (*_TRUE, *_FALSE):
        defaults.append(f"VRDE enabled={'true' if old else 'false'} (settings {'before' if old else 'since'} 1.16)")
    props: dict[str, str] = {}
    if rd is not None:
        if rd.get("port") is not None:
            props["TCP/Ports"] = rd.get("port", "")
        if rd.get("netAddress") is not None:
            props["TCP/Address"] = rd.get("netAddress", "")
        for prop in _children(_child(rd, "VRDEProperties"), "Property"):
            name = prop.get("name")
            if name in VRDE_PROPERTIES and prop.get("value") is not None:
                props[name] = prop.get("value", "")
    raw_auth = rd.get("authType") if rd is not None else None
    if raw_auth is None:
        auth = "Null"
        if enabled:
            defaults.append("VRDE authType Null")
    else:
        found = _AUTH_TYPES.get(raw_auth.upper())
        if found is None:
            raise ParseError(f"invalid value {raw_auth[:40]!r} in RemoteDisplay/@authType (VirtualBox refuses the file)")
        auth = found
    return Vrde(
        enabled=enabled, auth_type=auth, auth_library=rd.get("authLibrary") if rd is not None else None,
        ports=props.get("TCP/Ports") or "3389", address=props.get("TCP/Address", "").strip(),
        multi_connection=_bool(rd, "allowMultiConnection", False),
        reuse_single_connection=_bool(rd, "reuseSingleConnection", False),
        security_method=props.get("Security/Method"), ext_pack=rd.get("VRDEExtPack") if rd is not None else None,
    )


def _nics(hw: ET.Element) -> list[Nic]:
    """NetworkAdapter: disabled, promiscuousModePolicy Deny, attachment Null unless a mode element
    outside <DisabledModes> names one."""
    out = []
    for adapter in _children(_child(hw, "Network"), "Adapter"):
        slot = _int(adapter, "slot")
        if slot is None:
            raise ParseError("network Adapter without a slot attribute (VirtualBox refuses the file)")
        attachment, network, rules = "null", None, []
        for mode in adapter:
            name = _local(mode.tag)
            if name == "DisabledModes" or name not in ATTACHMENTS:
                continue
            attachment = ATTACHMENTS[name]
            network = mode.get("network") if name in ("NAT", "VDE") else mode.get("name")
            if name == "GenericInterface":
                network = mode.get("driver")
            if name == "NAT":
                rules = [_nat_rule(rule) for rule in _children(mode, "Forwarding")]
        out.append(Nic(slot, _bool(adapter, "enabled", False), attachment, network, adapter.get("MACAddress"),
                       adapter.get("promiscuousModePolicy", "Deny"), rules))
    return out


def _ports(hw: ET.Element) -> list[Port]:
    out = []
    for name in ("UART", "Uart"):
        for port in _children(_child(hw, name), "Port"):
            mode = port.get("hostMode")
            if mode is None:
                raise ParseError("UART/Port without hostMode (VirtualBox refuses the file)")
            _mode(mode, ("Disconnected", "RawFile", "HostPipe", "HostDevice", "TCP"), "UART/Port/@hostMode")
            out.append(Port("serial", _int(port, "slot") or 0, _bool(port, "enabled", False), mode, port.get("path"),
                            _bool(port, "server", False)))
    for name in ("LPT", "Lpt"):
        for port in _children(_child(hw, name), "Port"):
            path = port.get("path")
            out.append(Port("parallel", _int(port, "slot") or 0, _bool(port, "enabled", False),
                            "HostDevice" if path else "Disconnected", path, False))
    return out


def _usb(hw: ET.Element, version: tuple[int, int]) -> tuple[list[str], list[UsbFilter]]:
    controllers: list[str] = []
    filters_el: ET.Element | None
    legacy = _child(hw, "USBController") if version <= (1, 14) else None
    if legacy is not None:
        if _bool(legacy, "enabled", False):
            controllers.append("OHCI")
        if _bool(legacy, "enabledEhci", False):
            controllers.append("EHCI")
        filters_el = legacy
    else:
        usb = _child(hw, "USB")
        controllers = [c.get("type", "?") for c in _children(_child(usb, "Controllers"), "Controller")]
        filters_el = _child(usb, "DeviceFilters")
    filters = [
        UsbFilter(f.get("name", ""), _bool(f, "active", False),
                  {k: f.get(k, "") for k in USB_CRITERIA if f.get(k, "").strip()})
        for f in _children(filters_el, "DeviceFilter")
    ]
    return controllers, filters


def _recording(machine: ET.Element, hw: ET.Element, version: tuple[int, int]) -> list[int]:
    """Screens recorded. Settings 1.19+ (VirtualBox 7.0): <Recording enabled> with <Screen
    enabled>; 1.14 to 1.18: <VideoCapture enabled screens=bitmap> applying to every monitor, which
    VirtualBox 5 and 6 write inside <Hardware> and the current reader looks for under <Machine>."""
    if version >= (1, 19):
        rec = _child(machine, "Recording")
        if not _bool(rec, "enabled", False):
            return []
        return sorted(_int(s, "id") or 0 for s in _children(rec, "Screen") if _bool(s, "enabled", False))
    if version >= (1, 14):
        cap = _child(machine, "VideoCapture")
        if cap is None:
            cap = _child(hw, "VideoCapture")
        if not _bool(cap, "enabled", False):
            return []
        bitmap = _int(cap, "screens") or 0
        monitors = _int(_child(hw, "Display"), "monitorCount") or 1
        return [i for i in range(min(monitors, 64)) if bitmap & (1 << i)] or [0]
    return []


def _disks(machine: ET.Element, hw: ET.Element, media: dict[str, Medium], base: str) -> list[Disk]:
    out = []
    for holder in (machine, hw):
        for ctl in _children(_child(holder, "StorageControllers"), "StorageController"):
            for att in _children(ctl, "AttachedDevice"):
                kind = {"HardDisk": "disk", "DVD": "dvd", "Floppy": "floppy"}.get(att.get("type", ""))
                if kind is None:
                    continue
                image, drive = _child(att, "Image"), _child(att, "HostDrive")
                uuid = image.get("uuid", "").strip("{}").lower() if image is not None else None
                medium = media.get(uuid) if uuid else None
                location = _located(medium.location, base) if medium else None
                ancestors = _ancestors(media, medium)
                parents = [_located(m.location, base) for m in ancestors]
                fmt = (medium.format if medium else None) or next((m.format for m in ancestors if m.format), None)
                out.append(Disk(kind, uuid, location, fmt,
                                medium.medium_type if medium else None,
                                medium.encrypted if medium else None,
                                drive.get("src") if drive is not None else None,
                                _bool(att, "passthrough", False), ctl.get("name", ""), parents))
    return out


#: differencing chains longer than this are cut (a registry naming a parent loop stays finite)
MAX_CHAIN = 64


def _located(location: str, base: str) -> str:
    """A medium location as VirtualBox resolves it: relative to the machine folder."""
    if location and not location.startswith("/") and not re.match(r"^[A-Za-z]:[\\/]", location):
        return f"{base.rstrip('/')}/{location}"
    return location


def _ancestors(media: dict[str, Medium], medium: Medium | None) -> list[Medium]:
    out: list[Medium] = []
    while medium is not None and medium.parent and len(out) < MAX_CHAIN:
        medium = media.get(medium.parent)
        if medium is not None:
            out.append(medium)
    return out


def parse_machine(text: str, path: str, base: str, extra_media: list[Medium] | None = None) -> tuple[str, str, MachineConfig | None]:
    """(uuid, name, config) of a .vbox file; config None for a MachineEncrypted file. `base` is
    the machine folder relative media locations are resolved against; `extra_media` the global
    registry's."""
    uuid, name, config, _snapshots = parse_machine_snapshots(text, path, base, extra_media)
    return uuid, name, config


def parse_machine_snapshots(text: str, path: str, base: str,
                            extra_media: list[Medium] | None = None) -> tuple[str, str, MachineConfig | None, list[VBoxSnapshot]]:
    """parse_machine, plus the machine's snapshots: each carries its own Hardware (and, from
    settings 1.20, Platform), storage attachments and recording settings, which restoring it
    brings back (MachineConfigFile::readSnapshot). Machine-wide settings (ExtraData, Teleporter,
    the media registry) are the machine's."""
    root = _parse(text, "VirtualBox")
    full, version = settings_version(root)
    machine = _child(root, "Machine")
    if machine is None:
        encrypted = _child(root, "MachineEncrypted")
        if encrypted is not None:
            stem = path.rsplit("/", 1)[-1].removesuffix(".vbox")
            return encrypted.get("uuid", "").strip("{}").lower(), stem, None, []
        raise ParseError("no <Machine> element (VirtualBox refuses the file)")
    uuid, named = machine.get("uuid", "").strip("{}").lower(), machine.get("name")
    if not uuid or named is None:
        raise ParseError("Machine without uuid or name (VirtualBox refuses the file)")
    hw = _child(machine, "Hardware")
    if hw is None:
        raise ParseError("Machine without <Hardware> (VirtualBox refuses the file)")
    symlinks, auth_users = _extradata(machine)
    tele_el = _child(machine, "Teleporter")
    teleporter = Teleporter(_bool(tele_el, "enabled", False), _int(tele_el, "port"),
                            (tele_el.get("address", "") if tele_el is not None else "").strip(),
                            bool(tele_el is not None and tele_el.get("password")))
    media = {m.uuid: m for m in (extra_media or [])}
    media.update({m.uuid: m for m in _media(_child(machine, "MediaRegistry"))})
    shared = _Shared(full, version, machine.get("OSType"), symlinks, auth_users, teleporter, media, base)
    config = _config(machine, hw, shared, "Machine")
    return uuid, named, config, _snapshots(machine, shared)


@frozen
class _Shared:
    """What a machine's snapshots share with it: the file's settings version, its ExtraData and
    Teleporter, its media registry and folder."""

    full: str
    version: tuple[int, int]
    os_type: str | None
    symlinks: set[str]
    auth_users: int
    teleporter: Teleporter
    media: dict[str, Medium]
    base: str


#: MachineConfigFile::readSnapshot refuses a deeper snapshot tree (SETTINGS_SNAPSHOT_DEPTH_MAX, include/VBox/settings.h)
SNAPSHOT_DEPTH_MAX = 250
#: VirtualBox sets no count, but every snapshot is judged by every hardware check: a user's file of
#: tens of thousands of empty snapshots would cost a root scan minutes and bury the report
SNAPSHOT_COUNT_MAX = 1000


def _snapshots(machine: ET.Element, shared: _Shared) -> list[VBoxSnapshot]:
    """Every snapshot of the tree under Machine/Snapshot (children in Snapshot/Snapshots), parents
    first. VirtualBox refuses a tree without Machine/@currentSnapshot naming one of them."""
    first = _child(machine, "Snapshot")
    if first is None:
        return []
    current = machine.get("currentSnapshot", "").strip("{}").lower()
    if not current:
        raise ParseError("Snapshots present but Machine/@currentSnapshot is missing (VirtualBox refuses the file)")
    out: list[VBoxSnapshot] = []
    todo: collections.deque[tuple[ET.Element, str | None, int]] = collections.deque([(first, None, 1)])
    while todo:
        el, parent, depth = todo.popleft()
        if len(out) >= SNAPSHOT_COUNT_MAX:
            raise ParseError(f"more than {SNAPSHOT_COUNT_MAX} snapshots: not audited (hyperward's bound; VirtualBox sets none)")
        if depth > SNAPSHOT_DEPTH_MAX:
            raise ParseError(f"snapshot tree deeper than {SNAPSHOT_DEPTH_MAX} (VirtualBox refuses the file)")
        uuid, name = el.get("uuid", "").strip("{}").lower(), el.get("name")
        if not uuid or name is None or el.get("timeStamp") is None:
            raise ParseError("Snapshot without uuid, name or timeStamp (VirtualBox refuses the file)")
        hw = _child(el, "Hardware")
        if hw is None:
            raise ParseError(f"Snapshot {name[:60]!r} without <Hardware> (VirtualBox refuses the file)")
        out.append(VBoxSnapshot(uuid, name, parent, _config(el, hw, shared, "Snapshot")))
        todo.extend((child, uuid, depth + 1) for child in _children(_child(el, "Snapshots"), "Snapshot"))
    if current not in {s.uuid for s in out}:
        raise ParseError("no snapshot matches Machine/@currentSnapshot (VirtualBox refuses the file)")
    return out


def _config(owner: ET.Element, hw: ET.Element, shared: _Shared, what: str) -> MachineConfig:
    """The settings of a Machine or a Snapshot element: `owner` holds Platform (1.20+),
    StorageControllers and Recording/VideoCapture beside `hw`, its Hardware."""
    version = shared.version
    defaults: list[str] = []
    architecture = "x86"
    if version >= (1, 20):
        platform = _child(owner, "Platform")
        if platform is None:
            raise ParseError(f"settings 1.20+ {what} without <Platform> (VirtualBox refuses the file)")
        architecture = _mode(platform.get("architecture"), ("x86", "ARM"), "Platform/@architecture") or "x86"
        if architecture == "ARM":
            arm_cpu = _child(_child(platform, "arm"), "CPU")
            cpu = dataclasses.replace(_cpu(_child(platform, "CPU"), None),
                                      nested_hw_virt=_bool(_child(arm_cpu, "NestedHWVirt"), "enabled", False))
        else:
            cpu = _cpu(_child(platform, "CPU"), _child(_child(platform, "x86"), "CPU"))
    else:
        cpu = _cpu(_child(hw, "CPU"), _child(hw, "CPU"))
    fw = _child(hw, "Firmware")
    raw_fw = fw.get("type") if fw is not None else None
    if raw_fw is None:
        defaults.append("firmware BIOS")
    firmware = _FIRMWARE.get(raw_fw or "BIOS")
    if firmware is None:
        raise ParseError(f"invalid value {str(raw_fw)[:40]!r} in Firmware/@type (VirtualBox refuses the file)")
    tpm_el = _child(hw, "TrustedPlatformModule")
    tpm = _mode(tpm_el.get("type") if tpm_el is not None else None, ("None", "v1_2", "v2_0", "Host", "Swtpm"),
                "TrustedPlatformModule/@type") or "None"

    clipboard = "Disabled"
    if version < (1, 22) and hw.get("clipboardMode") is not None:
        clipboard = _mode(hw.get("clipboardMode"), _CLIPBOARD_MODES, "Hardware/@clipboardMode") or clipboard
    clip_el = _child(hw, "Clipboard")
    clipboard = _mode(clip_el.get("mode") if clip_el is not None else None, _CLIPBOARD_MODES, "Clipboard/@mode") or clipboard
    dnd_el = _child(hw, "DragAndDrop")
    dnd = _mode(dnd_el.get("mode") if dnd_el is not None else None, _CLIPBOARD_MODES, "DragAndDrop/@mode") or "Disabled"

    folders = [
        SharedFolderConf(sf.get("name", ""), sf.get("hostPath", ""), _bool(sf, "writable", True), _bool(sf, "autoMount", False),
                         sf.get("autoMountPoint") or None, sf.get("symlinkPolicy"), sf.get("name", "") in shared.symlinks)
        for sf in _children(_child(hw, "SharedFolders"), "SharedFolder")
    ]
    controllers, filters = _usb(hw, version)
    pci = []
    for dev in _children(_child(_child(hw, "HostPci"), "Devices"), "Device"):
        host, guest = _int(dev, "host"), _int(dev, "guest")
        if host is None or guest is None:
            raise ParseError("HostPci Device without host or guest address (VirtualBox refuses the file)")
        pci.append(PciDevice(pci_address(host), pci_address(guest), dev.get("name")))
    screens = _recording(owner, hw, version)
    return MachineConfig(
        settings_version=shared.full, architecture=architecture, os_type=shared.os_type, memory_mb=_int(_child(hw, "Memory"), "RAMSize"),
        firmware=firmware, tpm=tpm, cpu=cpu, vrde=_vrde(hw, version, defaults), shared_folders=folders,
        clipboard_mode=clipboard, file_transfers=_bool(clip_el, "fileTransfersEnabled", False), dnd_mode=dnd,
        nics=_nics(hw), ports=_ports(hw), usb_controllers=controllers, usb_filters=filters, pci=pci,
        teleporter=shared.teleporter, recording=bool(screens), recording_screens=screens,
        disks=_disks(owner, hw, shared.media, shared.base), auth_simple_users=shared.auth_users, defaults=defaults,
        guest_additions=_guest_additions(hw),
    )


def _guest_additions(hw: ET.Element) -> str | None:
    """The Guest Additions version the guest last set (a guest-controlled string: a version shape
    or nothing)."""
    for prop in _children(_child(hw, "GuestProperties"), "GuestProperty"):
        if prop.get("name") == "/VirtualBox/GuestAdd/Version":
            value = prop.get("value", "").strip()
            match = re.match(r"^\d+\.\d+(\.\d+)?", value)
            return match.group(0) if match else None
    return None


#: /etc/default/virtualbox keys never kept: a password hash
SECRET_KEYS = ("VBOXWEB_AUTH_PWHASH",)


def parse_shell_defaults(text: str, prefix: str = "") -> dict[str, str]:
    """Only keys with `prefix` are kept, never SECRET_KEYS."""
    try:
        return shell.assignments(text, lambda name: name.startswith(prefix) and name not in SECRET_KEYS)
    except shell.ShellQuoteError as exc:
        raise ParseError(str(exc)) from None


_RUNNING_LINE = re.compile(r'^"(.*)" \{([0-9a-fA-F-]{36})\}$')


def parse_running_vms(text: str) -> list[str]:
    """UUIDs from `VBoxManage list runningvms` ("name" {uuid} a line; a name may hold quotes,
    so the UUID is taken from the end of the line)."""
    out = []
    for line in text.splitlines():
        match = _RUNNING_LINE.match(line.strip())
        if match:
            out.append(match.group(2).lower())
    return out
