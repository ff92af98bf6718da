"""libvirt domain and network XML (docs/formatdomain.rst, formatnetwork.rst) to the facts the
checks judge. Parsing goes through defusedxml: no entity expansion, no external fetches.

Secrets stay out: a graphics password, a TPM encryption secret UUID or a disk's auth username
are reduced to "set / not set".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import xml.parsers.expat

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from ..facts import (
    CharDev,
    Disk,
    Domain,
    DomainSnapshot,
    Filesystem,
    Graphics,
    HostDev,
    Interface,
    Listen,
    Network,
    Seclabel,
    Tpm,
)

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
LEGACY_NIC_MODELS = {"rtl8139", "e1000", "ne2k_pci", "pcnet", "i82551", "i82557b", "i82559er", "lan9118", "smc91c111"}
LEGACY_VIDEO_MODELS = {"cirrus", "vga", "vmvga"}
CHARDEV_ELEMENTS = ("serial", "parallel", "console", "channel")


class XmlError(ValueError):
    pass


def _parse(text: str | bytes, root_tag: str, wrapper: str = "domstatus") -> ET.Element:
    """The <ROOT_TAG> element, inside WRAPPER when the file wraps it: the daemon's live state
    (<domstatus>) or a snapshot's metadata (<domainsnapshot>) hold the definition as <domain>."""
    try:
        root = DET.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise XmlError(f"refused unsafe XML ({type(exc).__name__}: DTDs and entities are not allowed)") from None
    except ET.ParseError as exc:
        raise XmlError(f"not well-formed XML ({exc})") from None
    if root.tag == wrapper:
        inner = root.find("domain")
        if inner is None:
            raise XmlError(f"<{wrapper}> without a <domain>")
        root = inner
    if root.tag != root_tag:
        raise XmlError(f"root element is <{root.tag}>, expected <{root_tag}>")
    return root


def _host_port(name: str, port: str | None) -> str:
    """name:port, with an IPv6 address bracketed so the port stays separable ([::1]:10809)."""
    if port and ":" in name:
        return f"[{name}]:{port}"
    return f"{name}:{port}" if port else name


def _int(text: str | None, default: int | None = None) -> int | None:
    if text is None:
        return default
    try:
        return int(text.strip(), 0)
    except ValueError:
        return default


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "on", "1")


def _kib(el: ET.Element | None) -> int | None:
    """A memory size in KiB, whatever the unit attribute says (formatdomain "Memory Allocation")."""
    if el is None or el.text is None:
        return None
    value = _int(el.text)
    if value is None:
        return None
    unit = (el.get("unit") or "KiB").lower()
    factor = {
        "b": 1 / 1024, "bytes": 1 / 1024, "kb": 1000 / 1024, "k": 1, "kib": 1, "mb": 1e6 / 1024,
        "m": 1024, "mib": 1024, "gb": 1e9 / 1024, "g": 1024**2, "gib": 1024**2, "tb": 1e12 / 1024,
        "t": 1024**3, "tib": 1024**3,
    }.get(unit, 1)
    return int(value * factor)


def _disk(el: ET.Element) -> Disk:
    source = el.find("source")
    driver = el.find("driver")
    target = el.find("target")
    src_value = protocol = tls = None
    hosts: list[str] = []
    has_auth = el.find("auth") is not None
    encryption = None
    if source is not None:
        protocol = source.get("protocol")
        src_value = source.get("file") or source.get("dev") or source.get("dir") or source.get("name") or source.get("volume")
        if source.get("pool"):
            src_value = f"{source.get('pool')}/{source.get('volume')}"
        tls = source.get("tls")
        hosts = [_host_port(h.get("name") or h.get("socket") or "", h.get("port")) for h in source.findall("host")]
        has_auth = has_auth or source.find("auth") is not None
        enc = source.find("encryption")
        if enc is not None:
            encryption = enc.get("format") or "default"
    enc = el.find("encryption")
    if enc is not None and encryption is None:
        encryption = enc.get("format") or "default"
    backing: list[str] = []
    chain = el.find("backingStore")
    while chain is not None and len(backing) < 64:
        bsrc = chain.find("source")
        if bsrc is not None:
            value = bsrc.get("file") or bsrc.get("dev") or bsrc.get("name")
            if value:
                backing.append(value)
        chain = chain.find("backingStore")
    return Disk(
        type=el.get("type"),
        device=el.get("device") or "disk",
        target=target.get("dev") if target is not None else None,
        driver_type=driver.get("type") if driver is not None else None,
        source=src_value,
        protocol=protocol,
        hosts=hosts,
        tls=tls,
        has_auth=has_auth,
        encryption=encryption,
        readonly=el.find("readonly") is not None,
        shareable=el.find("shareable") is not None,
        rawio=el.get("rawio"),
        sgio=el.get("sgio"),
        backing=backing,
    )


def _hostdev(el: ET.Element) -> HostDev:
    address = None
    addr = el.find("source/address")
    if el.get("type") == "pci" and addr is not None:
        try:
            address = "{:04x}:{:02x}:{:02x}.{:x}".format(
                int(addr.get("domain", "0"), 0), int(addr.get("bus", "0"), 0),
                int(addr.get("slot", "0"), 0), int(addr.get("function", "0"), 0),
            )
        except ValueError:
            address = None
    elif addr is not None:
        address = ",".join(f"{k}={v}" for k, v in sorted(addr.attrib.items()))
    adapter = el.find("source/adapter")
    if address is None and adapter is not None:
        address = adapter.get("name") or adapter.get("wwpn")
    return HostDev(type=el.get("type"), address=address)


def _interface(el: ET.Element) -> Interface:
    source = el.find("source")
    src = None
    if source is not None:
        src = source.get("bridge") or source.get("network") or source.get("dev") or source.get("path")
    filterref = el.find("filterref")
    vlan = el.find("vlan")
    tags = [t for t in (_int(tag.get("id")) for tag in vlan.findall("tag")) if t is not None] if vlan is not None else []
    target, model, mac = el.find("target"), el.find("model"), el.find("mac")
    return Interface(
        type=el.get("type"),
        source=src,
        model=model.get("type") if model is not None else None,
        target_dev=target.get("dev") if target is not None else None,
        mac=mac.get("address") if mac is not None else None,
        filterref=filterref.get("filter") if filterref is not None else None,
        vlan_tags=tags,
        vlan_trunk=vlan is not None and _yes(vlan.get("trunk")),
        trust_guest_rx_filters=_yes(el.get("trustGuestRxFilters")),
    )


def _graphics(el: ET.Element) -> Graphics:
    listens: list[Listen] = []
    for listen in el.findall("listen"):
        listens.append(Listen(listen.get("type") or "address", listen.get("address"), listen.get("network")))
        if listen.get("socket"):
            listens[-1] = Listen("socket", None, None)
    if not listens and el.get("listen"):
        listens.append(Listen("address", el.get("listen"), None))
    if el.get("socket"):
        listens.append(Listen("socket", None, None))
    clipboard, filetransfer = el.find("clipboard"), el.find("filetransfer")
    return Graphics(
        type=el.get("type") or "",
        listens=listens,
        autoport=_yes(el.get("autoport")),
        port=_int(el.get("port")),
        tls_port=_int(el.get("tlsPort")),
        has_password=el.get("passwd") is not None,
        default_mode=el.get("defaultMode"),
        clipboard=clipboard.get("copypaste") if clipboard is not None else None,
        filetransfer=filetransfer.get("enable") if filetransfer is not None else None,
    )


def _chardev(el: ET.Element) -> CharDev:
    source = el.find("source")
    protocol = el.find("protocol")
    return CharDev(
        element=el.tag,
        type=el.get("type"),
        host=source.get("host") if source is not None else None,
        service=source.get("service") if source is not None else None,
        mode=source.get("mode") if source is not None else None,
        protocol=protocol.get("type") if protocol is not None else None,
        tls=source.get("tls") if source is not None else None,
    )


def _tpm(el: ET.Element) -> Tpm:
    backend = el.find("backend")
    return Tpm(
        model=el.get("model"),
        backend=backend.get("type") if backend is not None else None,
        version=backend.get("version") if backend is not None else None,
        encrypted=backend is not None and backend.find("encryption") is not None,
    )


def _legacy_devices(devices: ET.Element) -> list[str]:
    found: list[str] = []
    for disk in devices.findall("disk"):
        if disk.get("device") == "floppy":
            target = disk.find("target")
            found.append(f"floppy disk {target.get('dev') if target is not None else ''}".strip())
    for controller in devices.findall("controller"):
        if controller.get("type") == "fdc":
            found.append("fdc controller")
    for sound in devices.findall("sound"):
        found.append(f"sound {sound.get('model') or ''}".strip())
    for iface in devices.findall("interface"):
        model = iface.find("model")
        if model is not None and model.get("type") in LEGACY_NIC_MODELS:
            found.append(f"NIC model {model.get('type')}")
    for video in devices.findall("video"):
        model = video.find("model")
        if model is not None and model.get("type") in LEGACY_VIDEO_MODELS:
            found.append(f"video {model.get('type')}")
    for smartcard in devices.findall("smartcard"):
        found.append(f"smartcard {smartcard.get('mode') or ''}".strip())
    for shmem in devices.findall("shmem"):
        found.append(f"shmem {shmem.get('name') or ''}".strip())
    return found


def _qemu_passthrough(root: ET.Element) -> list[str]:
    """Option names only (`-object`, env var names, capability names): values can hold secrets."""
    out: list[str] = []
    for el in root.iter():
        if not isinstance(el.tag, str) or not el.tag.startswith("{" + QEMU_NS + "}"):
            continue
        local = el.tag.split("}", 1)[1]
        if local == "arg":
            value = el.get("value") or ""
            out.append(f"commandline arg {value.split('=', 1)[0] if value.startswith('-') else '(value)'}")
        elif local == "env":
            out.append(f"commandline env {el.get('name') or ''}")
        elif local in ("add", "del") and el.get("capability"):
            out.append(f"capabilities {local} {el.get('capability')}")
        elif local == "property":
            out.append(f"override property {el.get('name') or ''}")
        elif local == "frontend":
            out.append("override frontend")
    return out


def element_lines(text: str | bytes, wrapper: str = "domstatus") -> dict[str, int]:
    """Element path under <domain> -> line of its first occurrence, and each device (a child of
    <devices>) by its XPath position among its kind: "devices/graphics[2]" is the second <graphics>,
    "devices/interface[2]/vlan" the first <vlan> inside the second <interface>, so a finding names
    the element that decided it. A second, event-only pass with expat (ElementTree keeps no line
    numbers); run only on text _parse already accepted, which has no DTD and so no entity to expand."""
    lines: dict[str, int] = {}
    # per open element: its path under <domain> ("" for <domain> itself, None outside the
    # definition: the wrapper and its other children) and its indexed device path
    paths: list[tuple[str | None, str]] = []
    devices: dict[str, int] = {}
    parser = xml.parsers.expat.ParserCreate()

    def start(tag: str, _attrs: object) -> None:
        if not paths:
            paths.append((None if tag == wrapper else "", ""))
            return
        parent, parent_device = paths[-1]
        if parent is None:
            paths.append(("" if len(paths) == 1 and tag == "domain" else None, ""))
            return
        path = f"{parent}/{tag}" if parent else tag
        number = parser.CurrentLineNumber
        lines.setdefault(path, number)
        if parent == "devices":
            devices[tag] = devices.get(tag, 0) + 1
            device = f"devices/{tag}[{devices[tag]}]"
        else:
            device = f"{parent_device}/{tag}" if parent_device else ""
        if device:
            lines.setdefault(device, number)
        paths.append((path, device))

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _tag: paths.pop()
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError:
        return {}
    return lines


def parse_domain(text: str | bytes, origin: str, running: bool = False, wrapper: str = "domstatus") -> Domain:
    root = _parse(text, "domain", wrapper)
    name = (root.findtext("name") or "").strip()
    if not name:
        raise XmlError("domain without a <name>")
    uuid = (root.findtext("uuid") or "").strip()
    os_el = root.find("os")
    os_type = os_el.find("type") if os_el is not None else None
    loader = os_el.find("loader") if os_el is not None else None
    fw_features: dict[str, str] = {}
    if os_el is not None:
        for feature in os_el.findall("firmware/feature"):
            if feature.get("name"):
                fw_features[feature.get("name", "")] = feature.get("enabled", "")
    smm = root.find("features/smm")
    memory_backing = root.find("memoryBacking")
    memory = root.find("memory")
    cpu = root.find("cpu")
    cpu_features: dict[str, str] = {}
    if cpu is not None:
        for feature in cpu.findall("feature"):
            if feature.get("name"):
                cpu_features[feature.get("name", "")] = feature.get("policy") or "require"
    devices = root.find("devices")
    if devices is None:
        devices = ET.Element("devices")
    launch = root.find("launchSecurity")
    redirfilter = devices.find("redirfilter")
    filter_default: bool | None = None
    if redirfilter is not None:
        rules = redirfilter.findall("usbdev")
        catch_all = [r for r in rules if not any(r.get(a) for a in ("class", "vendor", "product", "version"))]
        filter_default = _yes(catch_all[-1].get("allow")) if catch_all else True
    return Domain(
        name=name,
        uuid=uuid,
        origin=origin,
        running=running,
        type=root.get("type"),
        arch=os_type.get("arch") if os_type is not None else None,
        machine=os_type.get("machine") if os_type is not None else None,
        firmware=os_el.get("firmware") if os_el is not None else None,
        loader_type=loader.get("type") if loader is not None else None,
        loader_readonly=loader.get("readonly") if loader is not None else None,
        loader_secure=loader.get("secure") if loader is not None else None,
        firmware_features=fw_features,
        smm=smm.get("state", "on") if smm is not None else None,
        seclabels=[
            Seclabel(s.get("type"), s.get("model"), s.get("relabel"), (s.findtext("label") or "").strip() or None)
            for s in root.findall("seclabel")
        ] + [
            Seclabel(s.get("type"), s.get("model"), s.get("relabel"), (s.findtext("label") or "").strip() or None, owner)
            for owner, s in _device_seclabels(devices)
        ],
        memory_kib=_kib(memory),
        dump_core=memory.get("dumpCore") if memory is not None else None,
        nosharepages=memory_backing is not None and memory_backing.find("nosharepages") is not None,
        locked=memory_backing is not None and memory_backing.find("locked") is not None,
        hard_limit_kib=_kib(root.find("memtune/hard_limit")),
        vcpus=_int(root.findtext("vcpu"), 1),
        cpu_mode=(cpu.get("mode") or "custom") if cpu is not None else None,
        cpu_features=cpu_features,
        disks=[_disk(d) for d in devices.findall("disk")],
        filesystems=[
            Filesystem(
                type=f.get("type") or "mount",
                accessmode=f.get("accessmode"),
                driver=f.find("driver").get("type") if f.find("driver") is not None else None,  # type: ignore[union-attr]
                source=_fs_source(f),
                target=f.find("target").get("dir") if f.find("target") is not None else None,  # type: ignore[union-attr]
                readonly=f.find("readonly") is not None,
            )
            for f in devices.findall("filesystem")
        ],
        hostdevs=[_hostdev(h) for h in devices.findall("hostdev")],
        interfaces=[_interface(i) for i in devices.findall("interface")],
        graphics=[_graphics(g) for g in devices.findall("graphics")],
        chardevs=[_chardev(c) for tag in CHARDEV_ELEMENTS for c in devices.findall(tag)],
        tpms=[_tpm(t) for t in devices.findall("tpm")],
        launch_security=launch.get("type") if launch is not None else None,
        sev_policy=_int(launch.findtext("policy")) if launch is not None else None,
        qemu_passthrough=_qemu_passthrough(root),
        legacy_devices=_legacy_devices(devices),
        redirdevs=len(devices.findall("redirdev")),
        redirfilter_default_allow=filter_default,
        lines=element_lines(text, wrapper) if origin.startswith("/") else {},
    )


def parse_domain_snapshot(text: str | bytes, origin: str) -> DomainSnapshot | None:
    """A snapshot's metadata file (/var/lib/libvirt/qemu/snapshot/<domain>/<name>.xml, as
    virDomainSnapshotDefFormat writes it): its name and the <domain> definition
    `virsh snapshot-revert` brings back. None for a snapshot without a <domain> (redefined bare):
    it restores disks, no settings to judge."""
    root = _parse(text, "domainsnapshot", wrapper="")
    name = (root.findtext("name") or "").strip()
    if not name:
        raise XmlError("<domainsnapshot> without a <name>")
    if root.find("domain") is None:
        return None
    return DomainSnapshot(name=name, domain=parse_domain(text, origin, wrapper="domainsnapshot"),
                          current=(root.findtext("active") or "").strip() == "1")


def _fs_source(el: ET.Element) -> str | None:
    source = el.find("source")
    if source is None:
        return None
    return source.get("dir") or source.get("file") or source.get("name") or source.get("socket")


def _device_seclabels(devices: ET.Element) -> list[tuple[str, ET.Element]]:
    out: list[tuple[str, ET.Element]] = []
    for device in devices:
        for label in device.iter("seclabel"):
            target = device.find("target")
            name = target.get("dev") if target is not None and target.get("dev") else device.tag
            out.append((f"{device.tag} {name}" if name != device.tag else device.tag, label))
    return out


def parse_network(text: str | bytes, origin: str) -> Network:
    root = _parse(text, "network")
    name = (root.findtext("name") or "").strip()
    if not name:
        raise XmlError("network without a <name>")
    forward = root.find("forward")
    bridge = root.find("bridge")
    return Network(
        name=name,
        uuid=(root.findtext("uuid") or "").strip(),
        origin=origin,
        forward_mode=(forward.get("mode") or "nat") if forward is not None else None,
        bridge=bridge.get("name") if bridge is not None else None,
        interfaces=[i.get("dev", "") for i in (forward.findall("interface") + forward.findall("pf")) if i.get("dev")] if forward is not None else [],
    )


def parse_nwfilter(text: str | bytes) -> tuple[str, list[str]]:
    """A filter's name and the filters it includes (<filterref filter=...>)."""
    root = _parse(text, "filter")
    name = root.get("name")
    if not name:
        raise XmlError("<filter> without a name attribute")
    return name, [ref.get("filter", "") for ref in root.findall("filterref") if ref.get("filter")]


def pool_target(text: str | bytes) -> str | None:
    """A storage pool's target directory (/etc/libvirt/storage/*.xml), for dir/fs/netfs pools."""
    root = _parse(text, "pool")
    return (root.findtext("target/path") or "").strip() or None

