"""Guest definitions: edits by XPath of one domain's XML, found from the guest's name. Offline the
file under /etc/libvirt/qemu is edited; live the artifact edits a copy of `virsh dumpxml
--inactive --security-info` and defines it only when the user applies (HW_DEFINE=1); the guest
then needs a restart. Only edits that cannot lose data or break a guest are automatic: console and
serial listen addresses to loopback, shared folders read-only, dumpCore off, trustGuestRxFilters off."""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from ..plan import Context, DomainXmlEdit, Failing, Fix, Manual, Needs, fixer

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,200}$")
LOOPBACK = "127.0.0.1"


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _definition(finding: Failing, context: Context) -> tuple[str, str, ET.Element] | None:
    guest = finding.details.get("guest")
    if guest is None:
        match = re.match(r"^(\S+) \([0-9a-f-]{36}\)$", finding.resource)
        guest = match.group(1) if match else None
    if finding.details.get("platform") not in (None, "libvirt") or not isinstance(guest, str) or not NAME.match(guest):
        return None
    path = f"/etc/libvirt/qemu/{guest}.xml"
    text = context.read(path)
    if text is None:
        return None
    try:
        return guest, path, DET.fromstring(text)
    except (ET.ParseError, DefusedXmlException):
        return None


def _listen_edits(root: ET.Element) -> list[str]:
    edits = []
    for graphics in root.findall("./devices/graphics"):
        listen = graphics.get("listen")
        if listen and _ip(listen) and not _loopback(listen):
            edits.append(f"set|./devices/graphics[@listen='{listen}']|listen|{LOOPBACK}")
        for element in graphics.findall("listen"):
            address = element.get("address")
            if element.get("type") == "address" and address and _ip(address) and not _loopback(address):
                edits.append(f"set|./devices/graphics/listen[@address='{address}']|address|{LOOPBACK}")
    return list(dict.fromkeys(edits))


def _serial_edits(root: ET.Element) -> list[str]:
    edits = []
    for kind in ("serial", "console", "channel", "parallel"):
        for source in root.findall(f"./devices/{kind}/source"):
            host = source.get("host")
            if source.get("mode") == "bind" and host and _ip(host) and not _loopback(host):
                edits.append(f"set|./devices/{kind}/source[@host='{host}']|host|{LOOPBACK}")
    return list(dict.fromkeys(edits))


def for_guest(finding: Failing, context: Context) -> Fix | None:
    found = _definition(finding, context)
    if found is None:
        return None
    guest, path, root = found
    manual: list[Manual] = []
    if finding.check_id == "HV-AUTH-010":
        edits = _listen_edits(root)
        if any(p for p in finding.details.get("problems", []) or [] if "TLS" in str(p)):
            manual.append(Manual("consoles on loopback are reached over SSH (ssh -L 5900:127.0.0.1:5900 host); "
                                 "for remote access without SSH set up VNC/SPICE TLS instead"))
    elif finding.check_id == "HV-AUTH-011":
        edits = _serial_edits(root)
    elif finding.check_id == "HV-ISO-019":
        edits = ["set|./memory[@dumpCore='on']|dumpCore|off"] if root.find("./memory[@dumpCore='on']") is not None else []
    elif finding.check_id == "HV-ISO-014":
        edits = ["add|./devices/filesystem|readonly"] if root.findall("./devices/filesystem") else []
        if any("system directory" in str(p) for p in finding.details.get("problems", []) or []):
            manual.append(Manual("share a dedicated directory instead of a host system directory (edit the <source dir=...> "
                                 "by hand: hyperward cannot choose it)"))
    elif finding.check_id == "HV-NET-005":
        edits = ["del|./devices/interface[@trustGuestRxFilters='yes']|trustGuestRxFilters"]
    else:
        return None
    if not edits:
        return Fix(tuple(manual)) if manual else None
    return Fix((DomainXmlEdit(guest, path, tuple(edits)), *manual), (Needs("guest-restart", f"the guest {guest}"),))


@fixer("HV-AUTH-011", "HV-ISO-014", "HV-NET-005")
def guest_definition(finding: Failing, context: Context) -> Fix | None:
    return for_guest(finding, context)
