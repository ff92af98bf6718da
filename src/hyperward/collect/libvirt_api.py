"""The one place hyperward talks to a libvirt daemon (libvirt-python), under a deadline.

Read-only connections unless running as root: a root caller opens a read-write connection only
to ask for VIR_DOMAIN_XML_SECURE, which is how libvirt reveals whether a console password is set.
The secure XML is parsed at once into facts that hold "password set: yes/no" and is dropped.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from ..facts import ApiFacts, Domain, Maybe, Network
from ..model import Unavailable
from ..parsers.domain_xml import XmlError, parse_nwfilter, parse_domain, parse_network

TIMEOUT_S = 10.0


@dataclass
class ApiResult:
    api: ApiFacts
    domains: list[Maybe[Domain]] = field(default_factory=list)
    networks: list[Maybe[Network]] = field(default_factory=list)
    nwfilters: dict[str, list[str]] = field(default_factory=dict)


def _collect(uri: str) -> ApiResult:
    try:
        import libvirt
    except ImportError:
        return ApiResult(ApiFacts(uri, False, "libvirt-python is not installed (apt install python3-libvirt)", []))
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    secure = os.geteuid() == 0
    try:
        conn = libvirt.open(uri) if secure else libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        return ApiResult(ApiFacts(uri, False, error_line(exc), []))
    try:
        return _read(libvirt, conn, uri, secure)
    except libvirt.libvirtError as exc:
        return ApiResult(ApiFacts(uri, False, error_line(exc), []))
    finally:
        try:
            conn.close()
        except libvirt.libvirtError:
            pass


def error_line(exc: Exception) -> str:
    """The first line of a libvirt error: the rest repeats it with internals."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read(libvirt, conn, uri: str, secure: bool) -> ApiResult:  # type: ignore[no-untyped-def]
    secmodels: list[str] = []
    try:
        # The primary model (virNodeGetSecurityModel) is instant; getCapabilities re-probes the
        # host CPU and takes seconds. DAC is always stacked under it.
        model = conn.getSecurityModel()
        secmodels = [m for m in (model[0] if model else "", "dac") if m]
    except libvirt.libvirtError:
        pass
    result = ApiResult(ApiFacts(uri, True, None, secmodels))
    flags = libvirt.VIR_DOMAIN_XML_SECURE if secure else 0
    for dom in conn.listAllDomains(0):
        where = f"{uri} domain {dom.name()}"
        try:
            running = bool(dom.isActive())
            result.domains.append(parse_domain(dom.XMLDesc(flags), "libvirt API", running=running))
        except XmlError as exc:
            result.domains.append(Unavailable(where, "invalid", f"cannot read domain XML: {exc}"))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # undefined between listing and reading
            result.domains.append(Unavailable(where, "invalid", error_line(exc)))
    for net in conn.listAllNetworks(0):
        try:
            result.networks.append(parse_network(net.XMLDesc(0), "libvirt API"))
        except XmlError as exc:
            result.networks.append(Unavailable(f"{uri} network {net.name()}", "invalid", str(exc)))
        except libvirt.libvirtError:
            continue
    try:
        for nwfilter in conn.listAllNWFilters(0):
            try:
                name, refs = parse_nwfilter(nwfilter.XMLDesc(0))
                result.nwfilters[name] = refs
            except (XmlError, libvirt.libvirtError):
                continue
    except libvirt.libvirtError:
        pass  # drivers without nwfilter support (test:///)
    return result


# The sockets a qemu:///system client connects to: libvirtd's, or the modular daemons' (virtqemud
# directly, virtproxyd for the legacy path); systemd's socket units create them before the daemon runs.
SYSTEM_SOCKETS = ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock", "/run/libvirt/virtproxyd-sock")


def collect(uri: str, timeout: float = TIMEOUT_S) -> ApiResult:
    """A hung daemon must not hang the audit: the calls run in a worker thread with a deadline.
    Without a socket to connect to, the libvirt binding (tens of ms to load) is not imported."""
    if uri == "qemu:///system" and not any(os.path.exists(path) for path in SYSTEM_SOCKETS):
        return ApiResult(ApiFacts(uri, False, f"no daemon socket ({', '.join(SYSTEM_SOCKETS)}): the libvirt daemon is not running", []))
    box: list[ApiResult] = []

    def work() -> None:
        try:
            box.append(_collect(uri))
        except Exception as exc:  # a broken binding must not end the scan
            box.append(ApiResult(ApiFacts(uri, False, f"{type(exc).__name__}: {exc}", [])))

    worker = threading.Thread(target=work, name="libvirt-api", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        return ApiResult(ApiFacts(uri, False, f"no answer from {uri} within {timeout:.0f} s", []))
    return box[0]
