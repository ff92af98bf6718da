"""Collecting ESXi hosts and VMs over the vSphere API (pyvmomi), from a vCenter or one host.

Round trips are batched: one RetrievePropertiesEx over a container view returns every host's,
VM's, cluster's and distributed port group's properties (paged with ContinueRetrievePropertiesEx),
then one call per kind of host sub-object (all option managers' settings, all service systems, all
firewall systems); only methods the property collector cannot serve (lockdown exceptions, the
acceptance level) are called per host. A sub-object batch that faults is retried object by object,
so one disconnected host does not hide the others.

Failures become one Unavailable naming the endpoint (refused login, TLS verification, timeout,
a session dropped mid-scan): what was collected before stays, the rest of the scan runs. The
password never appears in a message: every text built from an exception is scrubbed of it.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ...model import Unavailable
from .facts import (
    EsxiHost,
    EsxiService,
    EsxiVm,
    FirewallRuleset,
    PortGroup,
    SecurityPolicy,
    SnmpAgent,
    VmDevice,
    VmNic,
    VSwitch,
)
from .settings import CredentialError, VsphereSettings

PAGE = 500
#: the API version from which HostCapability carries uefiSecureBoot (older servers, and
#: govmomi's simulator, fault or drop the connection when asked for it)
SECURE_BOOT_API = (8, 0)


@dataclass
class EndpointResult:
    hosts: list[EsxiHost] = field(default_factory=list)
    vms: list[EsxiVm | Unavailable] = field(default_factory=list)
    errors: list[Unavailable | str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Scrubber:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret

    def __call__(self, text: object) -> str:
        out = str(text)
        if self.secret:
            out = out.replace(self.secret, "********")
        out = " ".join(out.split())
        return out[:300]


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """HOST, HOST:PORT or [V6]:PORT (default 443)."""
    host, port = endpoint, 443
    if endpoint.startswith("["):
        end = endpoint.find("]")
        host = endpoint[1:end]
        rest = endpoint[end + 1:]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif endpoint.count(":") == 1:
        name, _, p = endpoint.partition(":")
        if p.isdigit():
            host, port = name, int(p)
    return host, port


def _session_lost(exc: BaseException) -> bool:
    """vim.fault.NotAuthenticated (pyVmomi's classes carry their WSDL name, not a Python one)."""
    return getattr(type(exc), "_wsdlName", "") == "NotAuthenticated"


def _fault_text(exc: BaseException, scrub: _Scrubber) -> str:
    name = getattr(type(exc), "_wsdlName", None) or type(exc).__name__
    msg = getattr(exc, "msg", None) or str(exc) or name
    return scrub(f"{name}: {msg}" if name not in str(msg) else msg)


def collect_endpoint(endpoint: str, settings: object) -> EndpointResult:
    """Every host and VM `endpoint` serves; never raises."""
    result = EndpointResult()
    where = f"vsphere://{endpoint}"
    conf = settings if isinstance(settings, VsphereSettings) else VsphereSettings()
    try:
        user = conf.resolved_user()
        password = conf.password()
    except CredentialError as exc:
        result.errors.append(Unavailable(where, "invalid", str(exc)))
        return result
    scrub = _Scrubber(password)
    try:
        from pyVim.connect import Disconnect, SmartConnect
        from pyVmomi import vim, vmodl
    except ImportError:
        result.errors.append(Unavailable(where, "missing", "pyvmomi is not installed (pip install pyvmomi)"))
        return result
    host, port = split_endpoint(endpoint)
    if conf.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        result.notes.append(f"{endpoint}: TLS certificate not verified (--vsphere-insecure)")
    else:
        try:
            context = ssl.create_default_context(cafile=conf.ca_file) if conf.ca_file else ssl.create_default_context()
        except (OSError, ssl.SSLError) as exc:
            result.errors.append(Unavailable(where, "invalid", f"--vsphere-ca {conf.ca_file}: {scrub(exc)}"))
            return result
    try:
        si = SmartConnect(host=host, port=port, user=user, pwd=password, sslContext=context,
                          httpConnectionTimeout=conf.timeout, connectionPoolTimeout=-1)  # type: ignore[no-untyped-call]
    except vim.fault.InvalidLogin:
        result.errors.append(Unavailable(where, "invalid", f"login refused for user {scrub(user)!r} (wrong user or password)"))
        return result
    except ssl.SSLCertVerificationError as exc:
        result.errors.append(Unavailable(where, "invalid", f"TLS certificate not trusted ({scrub(exc.verify_message or exc)}); "
                                         "give --vsphere-ca FILE (or --vsphere-insecure to skip verification)"))
        return result
    except (socket.timeout, TimeoutError):
        result.errors.append(Unavailable(where, "invalid", f"no answer within {conf.timeout:g} s"))
        return result
    except Exception as exc:  # connection refused, DNS, HTTP errors, SOAP faults
        result.errors.append(Unavailable(where, "invalid", f"cannot connect: {_fault_text(exc, scrub)}"))
        return result
    try:
        _collect(si, endpoint, conf, result, scrub, vim, vmodl)
    except vim.fault.NotAuthenticated:
        result.errors.append(Unavailable(where, "invalid", "the session ended during the scan (NotAuthenticated); "
                                         "results from this endpoint are incomplete"))
    except (socket.timeout, TimeoutError):
        result.errors.append(Unavailable(where, "invalid", f"no answer within {conf.timeout:g} s during the scan; "
                                         "results from this endpoint are incomplete"))
    except Exception as exc:
        result.errors.append(Unavailable(where, "invalid", f"the scan stopped: {_fault_text(exc, scrub)}; "
                                         "results from this endpoint are incomplete"))
    finally:
        try:
            Disconnect(si)  # type: ignore[no-untyped-call]
        except Exception:
            pass
    return result


def _retrieve(pc: Any, specs: list[Any], vmodl: Any) -> Iterator[Any]:
    """RetrievePropertiesEx and its continuation pages."""
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE)
    page = pc.RetrievePropertiesEx(specs, options)
    while page is not None:
        yield from page.objects or []
        if not page.token:
            break
        page = pc.ContinueRetrievePropertiesEx(page.token)


def _props(content: Any) -> dict[str, Any]:
    return {p.name: p.val for p in content.propSet or []}


HOST_PATHS = ["name", "parent", "summary.config.product", "config.network", "config.lockdownMode",
              "config.authenticationManagerInfo", "config.dateTimeInfo", "configManager.advancedOption",
              "configManager.serviceSystem", "configManager.firewallSystem", "configManager.imageConfigManager",
              "configManager.hostAccessManager", "configManager.snmpSystem", "runtime.connectionState"]
VM_PATHS = ["name", "config", "runtime.powerState", "runtime.host", "guest.toolsVersionStatus2"]
DVPG_PATHS = ["name", "config.defaultPortConfig", "config.distributedVirtualSwitch", "host"]


def _collect(si: Any, endpoint: str, conf: VsphereSettings, result: EndpointResult, scrub: _Scrubber,
             vim: Any, vmodl: Any) -> None:
    content = si.RetrieveContent()
    about = content.about
    vcenter = endpoint if about.apiType == "VirtualCenter" else None
    pc = content.propertyCollector
    view = content.viewManager.CreateContainerView(
        content.rootFolder, [vim.HostSystem, vim.VirtualMachine, vim.ComputeResource, vim.dvs.DistributedVirtualPortgroup], True)
    try:
        traversal = vmodl.query.PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
        obj_spec = vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])
        prop_specs = [
            vmodl.query.PropertyCollector.PropertySpec(type=vim.HostSystem, pathSet=HOST_PATHS),
            vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PATHS),
            vmodl.query.PropertyCollector.PropertySpec(type=vim.ComputeResource, pathSet=["name"]),
            vmodl.query.PropertyCollector.PropertySpec(type=vim.dvs.DistributedVirtualPortgroup, pathSet=DVPG_PATHS),
        ]
        spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=[obj_spec], propSet=prop_specs, reportMissingObjectsInResults=True)
        objects = list(_retrieve(pc, [spec], vmodl))
    finally:
        try:
            view.Destroy()
        except Exception:
            pass
    hosts: dict[str, dict[str, Any]] = {}
    vms: list[tuple[str, dict[str, Any]]] = []
    names: dict[str, str] = {}
    clusters: set[str] = set()
    dvpgs: list[dict[str, Any]] = []
    for oc in objects:
        moid = oc.obj._moId
        props = _props(oc)
        if isinstance(oc.obj, vim.HostSystem):
            hosts[moid] = props
        elif isinstance(oc.obj, vim.VirtualMachine):
            vms.append((moid, props))
        elif isinstance(oc.obj, vim.ComputeResource):
            names[moid] = props.get("name", moid)
            if isinstance(oc.obj, vim.ClusterComputeResource):
                clusters.add(moid)
        elif isinstance(oc.obj, vim.dvs.DistributedVirtualPortgroup):
            dvpgs.append(props)
    # the inventory page is complete; a session lost from here on keeps it, and what was not
    # read yet is an Unavailable saying so (the endpoint's error is raised at the end)
    lost: BaseException | None = None
    try:
        sub = _sub_objects(pc, hosts, vmodl, scrub)
        secure_boot = _secure_boot(pc, hosts, about, vim, vmodl, scrub)
    except Exception as exc:
        if not _session_lost(exc):
            raise
        lost = exc
        gone = Unavailable(f"vsphere://{endpoint}", "invalid", "the session ended before this was read")
        sub = {(moid, kind): gone for moid in hosts for kind in ("advanced", "services", "firewall", "snmp")}
        secure_boot = {}
    host_names: dict[str, str] = {}
    for moid, props in sorted(hosts.items(), key=lambda kv: str(kv[1].get("name", kv[0]))):
        parent = props.get("parent")
        cluster = names.get(parent._moId) if parent is not None and parent._moId in clusters else None
        name = str(props.get("name", moid))
        host_names[moid] = name
        if lost is None:
            try:
                result.hosts.append(_host(moid, props, endpoint, vcenter, cluster, sub, secure_boot.get(moid), dvpgs, scrub, vim))
                continue
            except Exception as exc:
                if not _session_lost(exc):
                    raise
                lost = exc
        result.hosts.append(_host(moid, props, endpoint, vcenter, cluster, sub, secure_boot.get(moid), dvpgs, scrub, vim,
                                  calls=False))
    for moid, props in sorted(vms, key=lambda kv: str(kv[1].get("name", kv[0]))):
        host_ref = props.get("runtime.host")
        host_moid = host_ref._moId if host_ref is not None else None
        host_name = host_names.get(host_moid or "", None)
        cluster = None
        if host_moid and host_moid in hosts:
            parent = hosts[host_moid].get("parent")
            cluster = names.get(parent._moId) if parent is not None and parent._moId in clusters else None
        result.vms.append(_vm(moid, props, endpoint, vcenter, cluster, host_name, vim))
    if lost is not None:
        raise lost


def _sub_objects(pc: Any, hosts: dict[str, dict[str, Any]], vmodl: Any, scrub: _Scrubber) -> dict[tuple[str, str], Any]:
    """(host moid, kind) -> the sub-object's property value, or an Unavailable."""
    out: dict[tuple[str, str], Any] = {}
    for kind, path, prop in (("advanced", "configManager.advancedOption", "setting"),
                             ("services", "configManager.serviceSystem", "serviceInfo"),
                             ("firewall", "configManager.firewallSystem", "firewallInfo"),
                             ("snmp", "configManager.snmpSystem", "configuration")):
        refs = {moid: props.get(path) for moid, props in hosts.items()}
        present = {moid: ref for moid, ref in refs.items() if ref is not None}
        for moid in refs:
            if moid not in present:
                out[(moid, kind)] = Unavailable(f"{path}", "missing", f"the host has no {path.split('.')[-1]} (API)")
        if not present:
            continue
        for moid, value in _batch(pc, present, prop, vmodl, scrub).items():
            out[(moid, kind)] = value
    return out


def _batch(pc: Any, refs: dict[str, Any], prop: str, vmodl: Any, scrub: _Scrubber) -> dict[str, Any]:
    # host moids by sub-object moid: a list, as a standalone host (and the simulator) names every
    # host's manager alike ("serviceSystem")
    by_ref: dict[str, list[str]] = {}
    for moid, ref in refs.items():
        by_ref.setdefault(ref._moId, []).append(moid)
    PC = vmodl.query.PropertyCollector

    def ask(items: list[Any]) -> dict[str, Any]:
        unique = list({ref._moId: ref for ref in items}.values())
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=ref, skip=False) for ref in unique],
                             propSet=[PC.PropertySpec(type=type(ref), pathSet=[prop]) for ref in {type(r): r for r in unique}.values()])
        got: dict[str, Any] = {}
        for oc in _retrieve(pc, [spec], vmodl):
            values = _props(oc)
            for host_moid in by_ref.get(oc.obj._moId, []):
                if host_moid in {m for r in items for m in by_ref.get(r._moId, [])}:
                    got[host_moid] = values.get(prop)
        return got

    try:
        return ask(list(refs.values()))
    except vmodl.fault.ManagedObjectNotFound:
        pass
    except vmodl.MethodFault as exc:
        if _session_lost(exc):
            raise
    out: dict[str, Any] = {}
    for moid, ref in refs.items():
        try:
            out.update(ask([ref]))
        except vmodl.MethodFault as exc:
            if _session_lost(exc):
                raise
            out[moid] = Unavailable(f"{ref._wsdlName}:{ref._moId}", "missing", f"not served by this endpoint ({_fault_text(exc, scrub)})")
    return out


def _secure_boot(pc: Any, hosts: dict[str, dict[str, Any]], about: Any, vim: Any, vmodl: Any, scrub: _Scrubber) -> dict[str, Any]:
    version = tuple(int(p) for p in (about.apiVersion or "0").split(".")[:2] if p.isdigit())
    if version < SECURE_BOOT_API or not hosts:
        return {}
    PC = vmodl.query.PropertyCollector
    spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=vim.HostSystem(moid, pc._stub), skip=False) for moid in hosts],
                         propSet=[PC.PropertySpec(type=vim.HostSystem, pathSet=["capability.uefiSecureBoot"])])
    try:
        return {oc.obj._moId: _props(oc).get("capability.uefiSecureBoot") for oc in _retrieve(pc, [spec], vmodl)}
    except vmodl.MethodFault as exc:
        if _session_lost(exc):
            raise
        return {}


def _policy(security: Any) -> SecurityPolicy:
    if security is None:
        return SecurityPolicy(None, None, None)
    return SecurityPolicy(getattr(security, "allowPromiscuous", None), getattr(security, "macChanges", None),
                          getattr(security, "forgedTransmits", None))


def _dv_bool(policy: Any, name: str) -> bool | None:
    value = getattr(policy, name, None)
    return getattr(value, "value", None) if value is not None else None


def _host(moid: str, props: dict[str, Any], endpoint: str, vcenter: str | None, cluster: str | None,
          sub: dict[tuple[str, str], Any], secure_boot: Any, dvpgs: list[dict[str, Any]], scrub: _Scrubber, vim: Any,
          calls: bool = True) -> EsxiHost:
    """calls=False: the session is gone; the per-host methods are not asked again."""
    name = str(props.get("name", moid))
    origin = f"vsphere://{endpoint}/{moid}"
    product = props.get("summary.config.product")
    advanced: dict[str, str] | Unavailable
    raw_adv = sub.get((moid, "advanced"))
    if isinstance(raw_adv, Unavailable):
        advanced = raw_adv
    else:
        advanced = {str(o.key): _text(o.value) for o in raw_adv or []}
    services: list[EsxiService] | Unavailable
    raw_svc = sub.get((moid, "services"))
    if isinstance(raw_svc, Unavailable) or raw_svc is None:
        services = raw_svc if isinstance(raw_svc, Unavailable) else Unavailable(origin, "missing", "no service information (API)")
    else:
        services = [EsxiService(str(s.key), str(s.label or s.key), str(s.policy), bool(s.running)) for s in raw_svc.service or []]
    raw_fw = sub.get((moid, "firewall"))
    rulesets: list[FirewallRuleset] | Unavailable
    default_allow: bool | Unavailable
    if isinstance(raw_fw, Unavailable) or raw_fw is None:
        missing = raw_fw if isinstance(raw_fw, Unavailable) else Unavailable(origin, "missing", "no firewall information (API)")
        rulesets, default_allow = missing, missing
    else:
        policy = raw_fw.defaultPolicy
        default_allow = not bool(getattr(policy, "incomingBlocked", True))
        rulesets = [FirewallRuleset(str(r.key), bool(r.enabled), bool(getattr(r.allowedHosts, "allIp", True)),
                                    [str(a) for a in getattr(r.allowedHosts, "ipAddress", []) or []]) for r in raw_fw.ruleset or []]
    network = props.get("config.network")
    vswitches: list[VSwitch] | Unavailable
    portgroups: list[PortGroup] | Unavailable
    if network is None:
        vswitches = portgroups = Unavailable(origin, "missing", "no network configuration (API)")
    else:
        vmk_pgs = {str(v.portgroup) for v in network.vnic or [] if getattr(v, "portgroup", None)}
        vswitches = [VSwitch(str(s.name), _policy(getattr(getattr(s.spec, "policy", None), "security", None))) for s in network.vswitch or []]
        portgroups = [PortGroup(str(p.spec.name), str(p.spec.vswitchName), int(p.spec.vlanId),
                                _policy(getattr(getattr(p, "computedPolicy", None), "security", None)),
                                vmkernel=str(p.spec.name) in vmk_pgs) for p in network.portgroup or []]
        for pg in dvpgs:
            members = {h._moId for h in pg.get("host") or []}
            if moid not in members:
                continue
            port = pg.get("config.defaultPortConfig")
            sec = getattr(port, "securityPolicy", None)
            vlan = getattr(port, "vlan", None)
            vlan_id = getattr(vlan, "vlanId", None)
            portgroups.append(PortGroup(str(pg.get("name")), str(getattr(pg.get("config.distributedVirtualSwitch"), "_moId", "dvs")),
                                        vlan_id if isinstance(vlan_id, int) else None,
                                        SecurityPolicy(_dv_bool(sec, "allowPromiscuous"), _dv_bool(sec, "macChanges"),
                                                       _dv_bool(sec, "forgedTransmits")), distributed=True))
    lockdown_raw = props.get("config.lockdownMode")
    lockdown: str | Unavailable = str(lockdown_raw) if lockdown_raw else Unavailable(origin, "missing", "lockdown mode not reported (API)")
    auth = props.get("config.authenticationManagerInfo")
    joined = None
    if auth is not None:
        joined = any(isinstance(a, vim.host.ActiveDirectoryInfo) and bool(getattr(a, "enabled", False))
                     and bool(getattr(a, "joinedDomain", None)) for a in auth.authConfig or [])
    ntp: list[str] | Unavailable
    dt = props.get("config.dateTimeInfo")
    ntp = [str(s) for s in getattr(getattr(dt, "ntpConfig", None), "server", []) or []] if dt is not None else \
        Unavailable(origin, "missing", "no date/time configuration (API)")
    if calls:
        exceptions = _call(props.get("configManager.hostAccessManager"), "QueryLockdownExceptions", origin, scrub)
        acceptance = _call(props.get("configManager.imageConfigManager"), "HostImageConfigGetAcceptance", origin, scrub)
    else:
        exceptions = acceptance = Unavailable(origin, "invalid", "the session ended before this was read")
    return EsxiHost(
        name=name, origin=origin, source="api", vcenter=vcenter, cluster=cluster,
        version=str(product.version) if product is not None else None,
        build=str(product.build) if product is not None else None,
        advanced=advanced, services=services, lockdown=lockdown,
        lockdown_exceptions=[str(u) for u in exceptions] if isinstance(exceptions, list) else exceptions,
        firewall_enabled=Unavailable(origin, "missing", "the firewall's on/off switch is esxcli's (network firewall get), not the API's"),
        firewall_default_allow=default_allow, rulesets=rulesets, vswitches=vswitches, portgroups=portgroups,
        acceptance=str(acceptance) if not isinstance(acceptance, Unavailable) else acceptance,
        secure_boot=bool(secure_boot) if isinstance(secure_boot, bool) else
        Unavailable(origin, "missing", "the host's Secure Boot state is not exposed by this endpoint's API version"),
        vm_overrides=Unavailable(origin, "missing", "/etc/vmware/settings is not exposed by the API"),
        host_config=Unavailable(origin, "missing", "/etc/vmware/config is not exposed by the API"),
        ntp_servers=ntp, domain_joined=joined, snmp=_snmp(sub.get((moid, "snmp")), origin),
    )


def _snmp(raw: Any, origin: str) -> SnmpAgent | Unavailable:
    """HostSnmpConfigSpec: the communities are counted, their text is dropped here."""
    if isinstance(raw, Unavailable):
        return raw
    if raw is None:
        return Unavailable(origin, "missing", "no SNMP agent configuration (API)")
    options = {str(getattr(o, "key", "")).lower(): str(getattr(o, "value", "")) for o in getattr(raw, "option", None) or []}
    v3 = any(options.get(k, "").strip() for k in ("v3targets", "users"))
    traps = [t for t in getattr(raw, "trapTargets", None) or [] if getattr(t, "community", None)]
    port = getattr(raw, "port", None)
    return SnmpAgent(enabled=bool(getattr(raw, "enabled", False)), communities=len(getattr(raw, "readOnlyCommunities", None) or []),
                     trap_communities=len(traps), port=int(port) if isinstance(port, int) else None, v3=v3)


def _call(ref: Any, method: str, origin: str, scrub: _Scrubber) -> Any:
    if ref is None:
        return Unavailable(origin, "missing", f"{method}: the host has no such manager (API)")
    try:
        value = getattr(ref, method)()
    except Exception as exc:
        if _session_lost(exc):
            raise
        return Unavailable(origin, "missing", f"{method} not answered by this endpoint ({_fault_text(exc, scrub)})")
    return list(value) if isinstance(value, (list, tuple)) or type(value).__name__.endswith("[]") else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


DISK_MODES = {"independent_nonpersistent": "independent-nonpersistent", "independent_persistent": "independent-persistent",
              "nonpersistent": "nonpersistent", "persistent": "persistent", "undoable": "undoable", "append": "append"}


def _connected(dev: Any) -> bool | None:
    c = getattr(dev, "connectable", None)
    if c is None:
        return None
    return bool(getattr(c, "connected", False) or getattr(c, "startConnected", False))


def _devices(hardware: Any, vim: Any) -> tuple[list[VmDevice], list[VmNic], bool]:
    out: list[VmDevice] = []
    nics: list[VmNic] = []
    vtpm = False
    for dev in getattr(hardware, "device", None) or []:
        label = str(getattr(getattr(dev, "deviceInfo", None), "label", "") or type(dev).__name__)
        backing = getattr(dev, "backing", None)
        file_name = getattr(backing, "fileName", None) or getattr(backing, "deviceName", None) or getattr(backing, "serviceURI", None)
        if isinstance(dev, vim.vm.device.VirtualDisk):
            out.append(VmDevice("disk", label, True, str(file_name) if file_name else None,
                                DISK_MODES.get(str(getattr(backing, "diskMode", "")), str(getattr(backing, "diskMode", "")) or None)))
        elif isinstance(dev, vim.vm.device.VirtualCdrom):
            out.append(VmDevice("cdrom", label, _connected(dev), str(file_name) if file_name else None))
        elif isinstance(dev, vim.vm.device.VirtualFloppy):
            out.append(VmDevice("floppy", label, _connected(dev), str(file_name) if file_name else None))
        elif isinstance(dev, vim.vm.device.VirtualSerialPort):
            uri = getattr(backing, "serviceURI", None)
            mode = "network" if isinstance(backing, vim.vm.device.VirtualSerialPort.URIBackingInfo) else None
            out.append(VmDevice("serial", label, _connected(dev), str(uri or file_name) if (uri or file_name) else None, mode))
        elif isinstance(dev, vim.vm.device.VirtualParallelPort):
            out.append(VmDevice("parallel", label, _connected(dev), str(file_name) if file_name else None))
        elif isinstance(dev, (vim.vm.device.VirtualUSBController, vim.vm.device.VirtualUSBXHCIController)):
            out.append(VmDevice("usb-controller", label, True))
        elif isinstance(dev, vim.vm.device.VirtualUSB):
            out.append(VmDevice("usb", label, _connected(dev), str(getattr(backing, "deviceName", "") or "") or None))
        elif isinstance(dev, vim.vm.device.VirtualPCIPassthrough):
            out.append(VmDevice("pci-passthrough", label, True, str(getattr(backing, "id", "") or "") or None))
        elif isinstance(dev, vim.vm.device.VirtualTPM):
            vtpm = True
        elif isinstance(dev, vim.vm.device.VirtualEthernetCard):
            network = getattr(backing, "deviceName", None)
            port = getattr(backing, "port", None)
            if network is None and port is not None:
                network = getattr(port, "portgroupKey", None)
            nics.append(VmNic(label, str(network) if network else None, str(dev.macAddress) if getattr(dev, "macAddress", None) else None,
                              type(dev).__name__.replace("vim.vm.device.", "")))
    return out, nics, vtpm


def _vm(moid: str, props: dict[str, Any], endpoint: str, vcenter: str | None, cluster: str | None, host: str | None,
        vim: Any) -> EsxiVm | Unavailable:
    origin = f"vsphere://{endpoint}/{moid}"
    name = str(props.get("name", moid))
    config = props.get("config")
    if config is None:
        return Unavailable(origin, "missing", f"VM {name}: no configuration (inaccessible or orphaned)")
    extra = {str(o.key).lower(): _text(o.value) for o in getattr(config, "extraConfig", None) or []}
    devices, nics, vtpm = _devices(getattr(config, "hardware", None), vim)
    version = str(getattr(config, "version", "") or "")
    boot = getattr(config, "bootOptions", None)
    firmware = str(getattr(config, "firmware", "") or "") or None
    location = "/".join(p for p in (vcenter, cluster, host, name) if p)
    flags = getattr(config, "flags", None)
    logging = getattr(flags, "enableLogging", None)
    return EsxiVm(
        name=name,
        location=location,
        origin=origin,
        source="api",
        vcenter=vcenter,
        cluster=cluster,
        host=host,
        uuid=str(config.uuid) if getattr(config, "uuid", None) else None,
        config=extra,
        hardware_version=int(version[4:]) if version.startswith("vmx-") and version[4:].isdigit() else None,
        firmware="efi" if firmware == "efi" else "bios" if firmware == "bios" else None,
        secure_boot=bool(getattr(boot, "efiSecureBootEnabled", False)) if firmware == "efi" else False,
        vtpm=vtpm,
        encrypted=getattr(config, "keyId", None) is not None,
        migrate_encryption=str(config.migrateEncryption) if getattr(config, "migrateEncryption", None) else None,
        ft_encryption=str(config.ftEncryptionMode) if getattr(config, "ftEncryptionMode", None) else None,
        logging=bool(logging) if logging is not None else None,
        power_state=str(props.get("runtime.powerState")) if props.get("runtime.powerState") else None,
        devices=devices,
        nics=nics,
        template=bool(getattr(config, "template", False)),
        guest_id=str(config.guestId) if getattr(config, "guestId", None) else None,
        vbs=getattr(flags, "vbsEnabled", None) if isinstance(getattr(flags, "vbsEnabled", None), bool) else None,
        tools_status=str(props["guest.toolsVersionStatus2"]) if props.get("guest.toolsVersionStatus2") else None,
    )
