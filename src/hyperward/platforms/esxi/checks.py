"""The ESXi and vCenter checks, as pure judges over EsxiFacts (titles, severities and sources are
the catalog rows of docs/catalog-project.md, section "VMware ESXi and vCenter").

Settings and expected values are the DISA VMware vSphere 8.0 STIG's (ESXI-80-*, VMCH-80-*) and
Broadcom's vSphere Security Configuration Guide 8's (its audit-esxi-8.ps1 / audit-vm-8.ps1 list
the values). Where the two differ (account lockout: 3 attempts against 5; vMotion encryption:
opportunistic against required) `EsxiFacts.framework` picks the one judged, the STIG by default.

A VM key that is absent is judged by ESXi's default where the STIG and the guide call the default
secure ("may exist"); where they require the key to exist (RemoteDisplay.maxConnections,
mks.enable3d) its absence fails. A host setting a source cannot tell (service state offline, a
ConfigStore setting not in esx.conf) is not applicable with the reason, never a pass.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable, Iterator
from typing import Any

from ...model import Result, Unavailable
from ..judges import register
from . import builds
from .facts import EsxiFacts, EsxiHost, EsxiVm, SecurityPolicy
from .parsers import is_true

Judge = Callable[[EsxiFacts], Iterator[Result]]
_SAFE = re.compile(r"[^\x20-\x7e]")
NOT_PRESENT = "ESXi is not present (no /etc/vmware, no .vmx files, no --vsphere endpoint)"


def _clean(text: str, limit: int = 80) -> str:
    """Values from .vmx files and the API go into messages: printable ASCII only, bounded."""
    text = _SAFE.sub("?", text)
    return text if len(text) <= limit else text[:limit] + "..."


def vm_label(vm: EsxiVm) -> str:
    return f"{vm.name} ({vm.location})" if vm.location != vm.name else vm.name


def _vm_details(vm: EsxiVm) -> dict[str, Any]:
    return {"vcenter": vm.vcenter, "cluster": vm.cluster, "esxi_host": vm.host, "vm": vm.name, "origin": vm.origin}


def _host_details(h: EsxiHost) -> dict[str, Any]:
    return {"vcenter": h.vcenter, "cluster": h.cluster, "esxi_host": h.name, "origin": h.origin}


def _endpoint_errors(facts: EsxiFacts) -> Iterator[Result]:
    for err in facts.errors:
        if isinstance(err, Unavailable):
            yield Result.unavailable(err, err.path)


# --- VMs ------------------------------------------------------------------------------------

VmJudge = Callable[[EsxiVm, EsxiFacts], list[str] | Result]


def each_vm(facts: EsxiFacts, judge: VmJudge, *, applies: Callable[[EsxiVm], bool] | None = None,
            none_reason: str = "no ESXi VM uses this feature") -> Iterator[Result]:
    """One result per VM (templates too: a template's settings are every clone's); unreadable
    .vmx files are errors naming the file; an endpoint that failed is one error of its own."""
    yield from _endpoint_errors(facts)
    vms = [vm for vm in facts.vms if not isinstance(vm, Unavailable)]
    bad = [vm for vm in facts.vms if isinstance(vm, Unavailable)]
    for problem in bad:
        yield Result.unavailable(problem, problem.path)
    if not vms and not bad:
        if not facts.errors:
            yield Result.not_applicable("no ESXi VMs (.vmx files or VMs in the inventory) found")
        return
    judged = 0
    for vm in vms:
        if applies is not None and not applies(vm):
            continue
        judged += 1
        verdict = judge(vm, facts)
        label = vm_label(vm)
        if isinstance(verdict, Result):
            yield dataclasses.replace(verdict, resource=label).with_details(**_vm_details(vm))
        elif verdict:
            yield Result.fail(label, "; ".join(verdict), details={**_vm_details(vm), **_vmx_line(vm, verdict), "problems": verdict})
        else:
            yield Result.passed(label, details=_vm_details(vm))
    if not judged and not bad:
        yield Result.not_applicable(none_reason)


#: the key or device prefix a problem starts with: "mks.enable3d = TRUE", "scsi0:1: independent-..."
_LEADING_KEY = re.compile(r"^(\S+?)(?=: |\s|$)")


def _vmx_line(vm: EsxiVm, problems: list[str]) -> dict[str, Any]:
    """The .vmx file and the line of the key the first problem names ("isolation.tools.copy.disable
    = FALSE"; "scsi0:1: independent-..." for its .mode, "serial0: ..." for serial0.present); only a
    key the file really has, never a guess: a problem about a missing key names the file alone.
    VMs read from vSphere have no file."""
    if vm.source != "vmx":
        return {}
    for problem in problems:
        match = _LEADING_KEY.match(problem)
        if not match:
            continue
        word = match.group(1).lower()
        for key in (word, f"{word}.mode", f"{word}.present"):
            if key in vm.lines:
                return {"file": vm.origin, "line": vm.lines[key], "key": key}
    return {"file": vm.origin}


#: how VMware spells the keys judged (the facts keep them lower-cased, as VMware compares them)
SPELLING = {k.lower(): k for k in (
    "isolation.tools.copy.disable", "isolation.tools.paste.disable", "isolation.tools.dnd.disable",
    "isolation.tools.diskShrink.disable", "isolation.tools.diskWiper.disable", "isolation.device.connectable.disable",
    "tools.setInfo.sizeLimit", "tools.guestlib.enableHostInfo", "RemoteDisplay.maxConnections",
    "RemoteDisplay.vnc.enabled", "mks.enable3d", "sched.mem.pshare.salt", "log.rotateSize", "log.keepOld")}


def _spelled(key: str) -> str:
    return SPELLING.get(key, key)


def _ambiguous(vm: EsxiVm, key: str) -> str | None:
    values = vm.conflicts.get(key)
    if not values:
        return None
    shown = ", ".join(repr(_clean(v, 30)) for v in values[:4])
    return f"{_spelled(key)} given {len(values)} times with different values ({shown}): VMware uses the last, libvirt the first"


def _flag(vm: EsxiVm, key: str, secure: bool, *, must_exist: bool = False) -> str | None:
    """A boolean key whose secure value is `secure`: a problem text, or None when it holds.
    Absent: ESXi's default, secure unless `must_exist` (the STIG requires the key itself)."""
    ambiguous = _ambiguous(vm, key)
    if ambiguous:
        return ambiguous
    raw = vm.config.get(key)
    name = _spelled(key)
    if raw is None:
        return f"{name} not set (the STIG requires it set to {str(secure).upper()})" if must_exist else None
    value = is_true(raw)
    if value is None:
        return f"{name} = {_clean(raw)!r} (not TRUE or FALSE)"
    if value != secure:
        return f"{name} = {_clean(raw)}"
    return None


ISOLATION_KEYS = ("isolation.tools.copy.disable", "isolation.tools.paste.disable", "isolation.tools.dnd.disable",
                  "isolation.tools.diskshrink.disable", "isolation.tools.diskwiper.disable",
                  "isolation.device.connectable.disable")


def tools_isolation(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-100: the VMware Tools backdoor lets the guest copy to and paste from the console,
    shrink or wipe its disks (a denial of service on the datastore) and connect or disconnect
    devices; each has an isolation switch, on by default."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        return [p for key in ISOLATION_KEYS if (p := _flag(vm, key, True))]

    yield from each_vm(facts, judge)


SETINFO_LIMIT = 1048576


def _int(vm: EsxiVm, key: str) -> tuple[int | None, str | None]:
    ambiguous = _ambiguous(vm, key)
    if ambiguous:
        return None, ambiguous
    raw = vm.config.get(key)
    if raw is None:
        return None, None
    try:
        return int(raw.strip()), None
    except ValueError:
        return None, f"{_spelled(key)} = {_clean(raw)!r} (not a number)"


def info_channels(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-101: the guest writes informational messages (setinfo) into the VMX process and
    its .vmx without bound if the limit is raised (the datastore fills); host info (guestlib)
    tells the guest about the host's resources and performance, useful to an attacker."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        problems = []
        size, bad = _int(vm, "tools.setinfo.sizelimit")
        if bad:
            problems.append(bad)
        elif size is not None and (size > SETINFO_LIMIT or size <= 0):
            problems.append(f"tools.setInfo.sizeLimit = {size} (at most {SETINFO_LIMIT})")
        if p := _flag(vm, "tools.guestlib.enablehostinfo", False):
            problems.append(p)
        return problems

    yield from each_vm(facts, judge)


def remote_console(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-102: with more than one console session a second user watches (or takes over)
    what an administrator does; the legacy VNC server answers on every host address with at
    most an 8-character password and no TLS."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        problems = []
        count, bad = _int(vm, "remotedisplay.maxconnections")
        if bad:
            problems.append(bad)
        elif count is None:
            problems.append("RemoteDisplay.maxConnections not set (the STIG requires 1)")
        elif count != 1:
            problems.append(f"RemoteDisplay.maxConnections = {count} (1 allowed)")
        if p := _flag(vm, "remotedisplay.vnc.enabled", False):
            port = vm.config.get("remotedisplay.vnc.port")
            problems.append(p + (f" (port {_clean(port, 10)})" if port else "") + ": legacy VNC server on the host")
        return problems

    yield from each_vm(facts, judge)


def three_d(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-103: 3D acceleration exposes the host's graphics stack (SVGA, the renderer) to the
    guest: a larger attack surface where no 3D is needed."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        p = _flag(vm, "mks.enable3d", False, must_exist=True)
        return [p] if p else []

    yield from each_vm(facts, judge)


def nonpersistent_disks(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-104: an independent non-persistent disk forgets every change at power off: an
    intruder's traces vanish with a reboot."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        return [f"{d.name}: {d.mode} ({_clean(d.backing or '?', 60)})" for d in vm.devices
                if d.kind == "disk" and (d.mode or "").lower().replace("_", "-") in ("independent-nonpersistent", "nonpersistent", "independentnonpersistent")]

    yield from each_vm(facts, judge)


DEVICE_WORDS = {"floppy": "floppy drive", "parallel": "parallel port", "serial": "serial port",
                "usb-controller": "USB controller", "usb": "USB device", "pci-passthrough": "DirectPath I/O (PCI passthrough) device"}


def unneeded_devices(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-105: floppy, serial and parallel ports, USB and connected CD/DVD media are paths in
    and out of the guest outside the network controls; a DirectPath I/O device gives the guest
    the hardware and the PCI bus itself."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        problems = []
        for d in vm.devices:
            if d.kind in DEVICE_WORDS:
                backing = f" ({_clean(d.backing, 60)})" if d.backing else ""
                problems.append(f"{d.name}: {DEVICE_WORDS[d.kind]}{backing}")
            elif d.kind == "cdrom" and d.connected:
                problems.append(f"{d.name}: CD/DVD connected" + (f" to {_clean(d.backing, 60)}" if d.backing else ""))
        return problems

    yield from each_vm(facts, judge)


MIN_HARDWARE = 19


def hardware_version(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-106: old virtual hardware lacks the newer isolation and mitigation features (vTPM,
    VBS, the side-channel mitigations ESXi exposes only to recent hardware versions)."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str] | Result:
        if vm.hardware_version is None:
            return Result.not_applicable("virtual hardware version unknown (no virtualHW.version)")
        if vm.hardware_version < MIN_HARDWARE:
            return [f"virtual hardware version {vm.hardware_version} (vmx-{MIN_HARDWARE} or later)"]
        return []

    yield from each_vm(facts, judge)


_FILTER = re.compile(r"^ethernet\d+\.filter\d+\.name$")


def dvfilter(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-100: a dvfilter attached to a NIC hands its traffic to a filter appliance through
    the dvfilter API; only VMs that need one may name it."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        return [f"{k} = {_clean(v)}" for k, v in sorted(vm.config.items()) if ".filter" in k and _FILTER.match(k)]

    yield from each_vm(facts, judge)


def migration_encryption(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-101: vMotion and Fault Tolerance logging carry the VM's memory over the network;
    "disabled" sends it in clear (the STIG fails only that; the SCG asks for "required")."""
    scg = facts.framework == "scg"

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        problems = []
        migrate = (vm.migrate_encryption or "opportunistic").lower()
        default = "" if vm.migrate_encryption else " (default)"
        if migrate == "disabled" or (scg and migrate != "required"):
            problems.append(f"vMotion encryption {migrate}{default}")
        ft = (vm.ft_encryption or "").lower()
        if ft and ("disabled" in ft or (scg and "required" not in ft)):
            problems.append(f"Fault Tolerance encryption {vm.ft_encryption}")
        return problems

    yield from each_vm(facts, judge)


def pshare_salt(facts: EsxiFacts) -> Iterator[Result]:
    """HV-SIDE-100: sched.mem.pshare.salt puts VMs with the same salt into one page-sharing
    group: their identical pages are shared again, and a VM can time copy-on-write faults to
    learn another's memory (the host's Mem.ShareForceSalting is HV-SIDE-101)."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        if "sched.mem.pshare.salt" in vm.config:
            return [f"sched.mem.pshare.salt = {_clean(vm.config['sched.mem.pshare.salt'])} (must not be set)"]
        return []

    yield from each_vm(facts, judge)


LOG_ROTATE = 2048000
LOG_KEEP = 10


def vm_logging(facts: EsxiFacts) -> Iterator[Result]:
    """HV-MON-100: without the VM's vmware.log there is no record of what happened to it; an
    unbounded log (no rotation) fills the datastore."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str]:
        problems = []
        if vm.logging is False:
            problems.append("logging disabled (logging = FALSE)")
        size, bad = _int(vm, "log.rotatesize")
        if bad:
            problems.append(bad)
        elif size is not None and (size == 0 or size > LOG_ROTATE):
            problems.append(f"log.rotateSize = {size} (rotate at {LOG_ROTATE} bytes at most)")
        keep, bad = _int(vm, "log.keepold")
        if bad:
            problems.append(bad)
        elif keep is not None and keep < LOG_KEEP:
            problems.append(f"log.keepOld = {keep} (keep {LOG_KEEP})")
        return problems

    yield from each_vm(facts, judge)


# --- hosts ----------------------------------------------------------------------------------

HostJudge = Callable[[EsxiHost, EsxiFacts], "list[str] | Result"]


def each_host(facts: EsxiFacts, judge: HostJudge) -> Iterator[Result]:
    yield from _endpoint_errors(facts)
    if not facts.hosts:
        if not facts.errors:
            yield Result.not_applicable("no ESXi host configuration (/etc/vmware or a --vsphere endpoint); only .vmx files")
        return
    for h in facts.hosts:
        verdict = judge(h, facts)
        if isinstance(verdict, Result):
            yield dataclasses.replace(verdict, resource=h.location).with_details(**_host_details(h))
        elif verdict:
            yield Result.fail(h.location, "; ".join(verdict), details={**_host_details(h), "problems": verdict})
        else:
            yield Result.passed(h.location, details=_host_details(h))


class Settings:
    """A host's advanced settings looked up case-insensitively; absent names are collected so
    the verdict can say which could not be judged."""

    def __init__(self, h: EsxiHost) -> None:
        self.problem = h.advanced if isinstance(h.advanced, Unavailable) else None
        values = h.advanced if isinstance(h.advanced, dict) else {}
        self.values = {k.lower(): (k, v) for k, v in values.items()}
        self.unknown: list[str] = []
        self.files = h.source == "files"
        self.source = "esx.conf / hostd config.xml" if self.files else "the host's advanced settings"

    def get(self, name: str) -> str | None:
        found = self.values.get(name.lower())
        if found is None:
            self.unknown.append(name)
            return None
        return found[1]

    def number(self, name: str, problems: list[str]) -> int | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            return int(raw.strip())
        except ValueError:
            problems.append(f"{name} = {_clean(raw)!r} (not a number)")
            return None

    def verdict(self, problems: list[str]) -> list[str] | Result:
        if self.problem is not None and not self.values:
            return Result.unavailable(self.problem, self.problem.path)
        if problems:
            return problems
        if self.unknown:
            if self.files:
                return Result.not_applicable(f"{', '.join(self.unknown)} not in {self.source}"
                                             " (ESXi 7.0 U2 and later keep them in ConfigStore): scan the host with --vsphere")
            return Result.not_applicable(f"{', '.join(self.unknown)} not among {self.source} (this ESXi version has no such setting)")
        return []


def account_lockout(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-100: without a lockout, passwords of the host's local accounts (root) can be
    guessed over SSH, the host client and the API. The STIG allows 3 failures, the SCG 5;
    0 switches the lockout off. Unlock after at least 15 minutes."""
    limit = 5 if facts.framework == "scg" else 3

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        failures = s.number("Security.AccountLockFailures", problems)
        if failures is not None and not 1 <= failures <= limit:
            problems.append(f"Security.AccountLockFailures = {failures} ({'no lockout' if failures == 0 else f'at most {limit}'})")
        unlock = s.number("Security.AccountUnlockTime", problems)
        if unlock is not None and unlock < 900:
            problems.append(f"Security.AccountUnlockTime = {unlock} (at least 900 seconds)")
        return s.verdict(problems)

    yield from each_host(facts, judge)


def _min_length(pqc: str) -> int | None:
    """The shortest password pam_passwdqc accepts under `min=N0,N1,N2,N3,N4` (each a length or
    `disabled`), None when there is no min= term."""
    match = re.search(r"(?:^|\s)min=([^\s]+)", pqc)
    if not match:
        return None
    lengths = []
    for part in match.group(1).split(","):
        if part.strip().lower() == "disabled":
            continue
        try:
            lengths.append(int(part))
        except ValueError:
            return 0
    return min(lengths) if lengths else 10**6


def password_policy(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-101: ESXi's pam_passwdqc policy: the STIG accepts passwords of 15 characters or
    more only (`min=disabled,disabled,disabled,disabled,15`) and no reuse of the last 5."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        pqc = s.get("Security.PasswordQualityControl")
        if pqc is not None:
            shortest = _min_length(pqc)
            if shortest is None:
                problems.append("Security.PasswordQualityControl has no min= term (pam_passwdqc's default accepts 8 characters)")
            elif shortest < 15:
                problems.append(f"Security.PasswordQualityControl accepts {shortest}-character passwords ({_clean(pqc)}; at least 15)")
            if "similar=deny" not in pqc:
                problems.append("Security.PasswordQualityControl without similar=deny")
        history = s.number("Security.PasswordHistory", problems)
        if history is not None and history < 5:
            problems.append(f"Security.PasswordHistory = {history} (at least 5)")
        return s.verdict(problems)

    yield from each_host(facts, judge)


TIMEOUTS = (("UserVars.ESXiShellInteractiveTimeOut", 900), ("UserVars.ESXiShellTimeOut", 600),
            ("UserVars.DcuiTimeOut", 600), ("UserVars.HostClientSessionTimeout", 900),
            ("Config.HostAgent.vmacore.soap.sessionTimeout", 30))


def session_timeouts(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-102: an idle ESXi Shell, DCUI, host client or API session stays open to whoever
    reaches the console or steals the session; 0 means never."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        for name, most in TIMEOUTS:
            value = s.number(name, problems)
            if value is None:
                continue
            if value == 0:
                problems.append(f"{name} = 0 (no timeout; at most {most})")
            elif value > most or value < 0:
                problems.append(f"{name} = {value} (at most {most})")
        return s.verdict(problems)

    yield from each_host(facts, judge)


#: service key -> (what it is, STIG ID)
RISKY_SERVICES = {"TSM-SSH": "SSH", "TSM": "ESXi Shell", "slpd": "SLP", "sfcbd-watchdog": "CIM server", "snmpd": "SNMP"}


def services(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-103: SSH and the ESXi Shell give a root shell on the hypervisor; SLP (OpenSLP,
    exploited by ESXiArgs ransomware) and CIM answer on the network; SNMP v1/v2c has a community
    string for a password. Each must be stopped and its startup policy off."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if isinstance(h.services, Unavailable):
            return Result.unavailable(h.services, h.location)
        problems = []
        by_key = {s.key: s for s in h.services}
        for key, what in RISKY_SERVICES.items():
            svc = by_key.get(key)
            if svc is None:
                continue
            states = []
            if svc.running:
                states.append("running")
            if svc.policy != "off":
                states.append(f"startup policy {_clean(svc.policy, 20)}")
            if states:
                problems.append(f"{what} ({key}) {' and '.join(states)}")
        return problems

    yield from each_host(facts, judge)


def _setting_is(s: Settings, name: str, secure: bool, problems: list[str], *, default: bool | None = None) -> None:
    raw = s.get(name)
    if raw is None:
        if default is not None:
            s.unknown.remove(name)
            if default != secure:
                problems.append(f"{name} not set (default {str(default).lower()})")
        return
    value = is_true(raw)
    if value is None:
        problems.append(f"{name} = {_clean(raw)!r} (not true or false)")
    elif value != secure:
        problems.append(f"{name} = {_clean(raw)}")


def mob(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-104: the Managed Object Browser is a web page that reads and changes every object
    of the host's API; off by default since 6.0."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        _setting_is(s, "Config.HostAgent.plugins.solo.enableMob", False, problems,
                    default=False if h.source == "files" and isinstance(h.advanced, dict) else None)
        return s.verdict(problems)

    yield from each_host(facts, judge)


def lockdown(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-105: without lockdown mode root logs in directly (host client, SSH, API) around
    vCenter's roles and its audit; exception users keep that direct access, and the users in
    DCUI.Access keep the console even in strict lockdown."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if isinstance(h.lockdown, Unavailable):
            return Result.unavailable(h.lockdown, h.location)
        problems = []
        if h.lockdown in ("lockdownDisabled", "", None):
            problems.append(f"lockdown mode {h.lockdown or 'disabled'}")
        if isinstance(h.lockdown_exceptions, list) and h.lockdown_exceptions:
            problems.append("lockdown exception users: " + ", ".join(_clean(u, 40) for u in h.lockdown_exceptions[:10]))
        dcui = Settings(h).values.get("dcui.access")
        if dcui is not None and {u.strip() for u in dcui[1].split(",") if u.strip()} != {"root"}:
            problems.append(f"DCUI.Access = {_clean(dcui[1], 60)!r} (root only: these users keep the console in lockdown mode)")
        return problems

    yield from each_host(facts, judge)


ESX_ADMINS = "ESX Admins"


def esx_admins_group(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-106: a host joined to Active Directory gives full administrator rights to every
    member of the AD group named here; "ESX Admins" is the default any domain user who can create
    that group can claim (CVE-2024-37085)."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        raw = s.get("Config.HostAgent.plugins.hostsvc.esxAdminsGroup")
        group = raw.strip() if raw is not None else ESX_ADMINS
        if h.domain_joined is False:
            return Result.not_applicable("the host is not joined to Active Directory")
        if group.lower() != ESX_ADMINS.lower():
            return Result.passed(h.location, f"esxAdminsGroup is {_clean(group, 60)!r}")
        said = "set to" if raw is not None else "left at its default"
        if h.domain_joined is None:
            return Result.not_applicable(f"esxAdminsGroup {said} {ESX_ADMINS!r}; whether the host is joined to Active Directory is unknown offline")
        return [f"esxAdminsGroup {said} {ESX_ADMINS!r}"]

    yield from each_host(facts, judge)


def firewall(facts: EsxiFacts) -> Iterator[Result]:
    """HV-FW-100: the ESXi firewall off or allowing by default, or an enabled ruleset open to every
    address, exposes hostd, SSH, CIM and the rest to any network that reaches the host."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        for fact in (h.firewall_default_allow, h.rulesets):
            if isinstance(fact, Unavailable):
                return Result.unavailable(fact, h.location)
        problems = []
        if h.firewall_enabled is False:
            problems.append("firewall disabled")
        if h.firewall_default_allow is True:
            problems.append("default policy allows incoming traffic")
        assert isinstance(h.rulesets, list)
        open_all = sorted(r.key for r in h.rulesets if r.enabled and r.all_ip)
        if open_all:
            problems.append("rulesets open to all IP addresses: " + ", ".join(_clean(k, 40) for k in open_all[:20])
                            + (f" and {len(open_all) - 20} more" if len(open_all) > 20 else ""))
        return problems

    yield from each_host(facts, judge)


def _policy_problems(where: str, p: SecurityPolicy) -> list[str]:
    out = []
    if p.promiscuous:
        out.append(f"{where}: promiscuous mode accepted")
    if p.mac_changes:
        out.append(f"{where}: MAC address changes accepted")
    if p.forged_transmits:
        out.append(f"{where}: forged transmits accepted")
    return out


def switch_security(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-102: a port that accepts promiscuous mode sees every frame of its switch; accepted
    MAC changes and forged transmits let a VM send as another VM or the gateway. Judged on each
    standard vSwitch, each port group's effective policy and each distributed port group."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        for fact in (h.vswitches, h.portgroups):
            if isinstance(fact, Unavailable):
                return Result.unavailable(fact, h.location)
        assert isinstance(h.vswitches, list) and isinstance(h.portgroups, list)
        problems = []
        for sw in h.vswitches:
            problems += _policy_problems(("distributed switch " if sw.distributed else "vSwitch ") + _clean(sw.name, 40), sw.policy)
        for pg in h.portgroups:
            problems += _policy_problems(f"port group {_clean(pg.name, 40)}", pg.policy)
        return problems

    yield from each_host(facts, judge)


def vlan_4095(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-103: VLAN 4095 (virtual guest tagging) hands the VM every VLAN of the trunk: it can
    reach the management and storage VLANs unless it is a trusted appliance."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if isinstance(h.portgroups, Unavailable):
            return Result.unavailable(h.portgroups, h.location)
        return [f"port group {_clean(pg.name, 40)} on VLAN 4095 (all VLANs)" for pg in h.portgroups
                if pg.vlan == 4095 and not pg.vmkernel]

    yield from each_host(facts, judge)


def network_settings(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-104: a VM that sends BPDUs can make the physical switch disable the uplink (denial of
    service for every VM on it) unless Net.BlockGuestBPDU drops them; a dvfilter bind address
    opens the dvfilter API to a network appliance; the BMC network (Redfish host interface) is a
    path from the host to the management controller."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        bpdu = s.number("Net.BlockGuestBPDU", problems)
        if bpdu is not None and bpdu != 1:
            problems.append(f"Net.BlockGuestBPDU = {bpdu} (guest BPDUs reach the physical switch)")
        dvf = s.get("Net.DVFilterBindIpAddress")
        if dvf is not None and dvf.strip():
            problems.append(f"Net.DVFilterBindIpAddress = {_clean(dvf, 40)} (not in use: must be empty)")
        bmc = s.number("Net.BMCNetworkEnable", problems)
        if bmc is not None and bmc != 0:
            problems.append(f"Net.BMCNetworkEnable = {bmc}")
        return s.verdict(problems)

    yield from each_host(facts, judge)


def logging_settings(facts: EsxiFacts) -> Iterator[Result]:
    """HV-MON-101: logs kept only on the host vanish with a reboot (a non-persistent /scratch)
    and with the intruder's clean-up; without remote syslog, audit records and certificate checks
    nobody sees what happened, or a forged log server collects it."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        log_host = s.get("Syslog.global.logHost")
        if log_host is not None and not log_host.strip():
            problems.append("Syslog.global.logHost empty (logs not forwarded)")
        log_dir = s.get("Syslog.global.logDir")
        scratch = s.values.get("scratchconfig.currentscratchlocation", ("", ""))[1]
        if log_dir is not None:
            d = log_dir.strip()
            if not d or d.startswith("/tmp") or ("/scratch" in d and scratch.startswith("/tmp")):
                problems.append(f"Syslog.global.logDir = {_clean(d, 60)!r} is not persistent"
                                + (f" (scratch is {_clean(scratch, 40)})" if scratch else ""))
        for name in ("Config.HostAgent.log.level", "Syslog.global.logLevel"):
            level = s.get(name)
            if level is not None and level.strip().lower() != "info":
                problems.append(f"{name} = {_clean(level, 20)} (info)")
        for name in ("Syslog.global.auditRecord.storageEnable", "Syslog.global.auditRecord.remoteEnable",
                     "Syslog.global.certificate.checkSSLCerts", "Syslog.global.certificate.strictX509Compliance"):
            _setting_is(s, name, True, problems)
        return s.verdict(problems)

    yield from each_host(facts, judge)


def time_sync(facts: EsxiFacts) -> Iterator[Result]:
    """HV-MON-102: without NTP the host's clock drifts: log timestamps no longer line up with the
    rest of the estate, and certificate and Kerberos checks fail or accept what they should not."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if isinstance(h.ntp_servers, Unavailable):
            return Result.unavailable(h.ntp_servers, h.location)
        problems = []
        if not h.ntp_servers:
            problems.append("no NTP server configured")
        if isinstance(h.services, list):
            ntpd = next((svc for svc in h.services if svc.key == "ntpd"), None)
            if ntpd is not None and not ntpd.running:
                problems.append("ntpd not running")
            if ntpd is not None and ntpd.policy != "on":
                problems.append(f"ntpd startup policy {_clean(ntpd.policy, 20)}")
        return problems

    yield from each_host(facts, judge)


def page_salting(facts: EsxiFacts) -> Iterator[Result]:
    """HV-SIDE-101: Mem.ShareForceSalting 2 shares pages only inside one VM (each VM gets its own
    salt); 0 or 1 share pages between VMs again, a timing side channel between tenants."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        salting = s.number("Mem.ShareForceSalting", problems)
        if salting is not None and salting != 2:
            problems.append(f"Mem.ShareForceSalting = {salting} (pages shared between VMs; 2 keeps sharing inside each VM)")
        return s.verdict(problems)

    yield from each_host(facts, judge)


def suppressed_warnings(facts: EsxiFacts) -> Iterator[Result]:
    """HV-SIDE-102: the host client's warnings that the ESXi Shell or SSH is on, or that the
    hyperthreading side-channel mitigation (L1TF) is not applied, hidden from administrators."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        for name in ("UserVars.SuppressShellWarning", "UserVars.SuppressHyperthreadWarning"):
            value = s.number(name, problems)
            if value is not None and value != 0:
                problems.append(f"{name} = {value} (warning hidden)")
        return s.verdict(problems)

    yield from each_host(facts, judge)


ACCEPTANCE_ORDER = {"vmwarecertified": 3, "vmwareaccepted": 2, "partnersupported": 1, "communitysupported": 0}


def boot_integrity(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-107: ESXi runs only signed, installed binaries when VMkernel.Boot.execInstalledOnly
    is true, loads only VIBs at PartnerSupported or above, and has its boot chain verified by UEFI
    Secure Boot; otherwise an attacker with root persists in an unsigned VIB or binary."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        s = Settings(h)
        problems: list[str] = []
        _setting_is(s, "VMkernel.Boot.execInstalledOnly", True, problems)
        unknown: list[str] = []
        if isinstance(h.acceptance, Unavailable):
            unknown.append(h.acceptance.reason)
        elif ACCEPTANCE_ORDER.get(h.acceptance.lower().replace(" ", ""), -1) < 1:
            problems.append(f"image acceptance level {_clean(h.acceptance, 30)} (PartnerSupported or higher)")
        if isinstance(h.secure_boot, Unavailable):
            unknown.append(h.secure_boot.reason)
        elif h.secure_boot is False:
            problems.append("UEFI Secure Boot off")
        verdict = s.verdict(problems)
        if isinstance(verdict, list) and not verdict and unknown:
            return Result.not_applicable("; ".join(unknown))
        return verdict

    yield from each_host(facts, judge)


def vm_overrides(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-108: /etc/vmware/settings is read before every .vmx and wins over it: one line there
    silently changes every VM's isolation; `vmx.log.*` in /etc/vmware/config overrides every VM's
    logger the same way."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        problems = []
        known = False
        if isinstance(h.vm_overrides, Unavailable):
            if h.vm_overrides.kind != "missing":
                return Result.unavailable(h.vm_overrides, h.vm_overrides.path)
        else:
            known = True
            if h.vm_overrides:
                keys = sorted(h.vm_overrides)
                problems.append("/etc/vmware/settings overrides " + ", ".join(_clean(k, 50) for k in keys[:10])
                                + (f" and {len(keys) - 10} more" if len(keys) > 10 else ""))
            elif h.vm_overrides_size:
                problems.append(f"/etc/vmware/settings is {h.vm_overrides_size} bytes (must be empty)")
        if isinstance(h.host_config, Unavailable):
            if h.host_config.kind != "missing":
                return Result.unavailable(h.host_config, h.host_config.path)
        else:
            known = True
            logs = sorted(k for k in h.host_config if k.startswith("vmx.log"))
            if logs:
                problems.append("/etc/vmware/config overrides the VM logger: " + ", ".join(_clean(k, 50) for k in logs[:10]))
        if not known:
            return Result.not_applicable("/etc/vmware/settings and /etc/vmware/config not found (the API does not expose them)")
        return problems

    yield from each_host(facts, judge)


def _version(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    parts = text.strip().split(".")
    if not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


#: a table older than this when the facts were collected cannot vouch for a build (the table's
#: own max_age_days, by default this)
MAX_TABLE_AGE_DAYS = builds.MAX_AGE_DAYS


def build_patch(facts: EsxiFacts) -> Iterator[Result]:
    """HV-PATCH-100: every ESXi VM escape and hostd/SLP remote code execution fixed since the
    host's build is open on it; a release line past its support gets no fixes at all. Judged
    against the build table the facts carry (VMSA advisories by release line; `hyperward db
    update` refreshes it). A table compiled more than its max_age_days (120) before the facts
    were collected vouches for no build: a host at its latest fix is not applicable, saying the
    table's age and to run `hyperward db update`; a build below a fix it lists still fails,
    since a missing patch stays missing. A table that cannot be loaded is an error naming its path."""
    table = facts.build_table
    if isinstance(table, Unavailable):
        fact = table
        yield from each_host(facts, lambda h, _f: Result.unavailable(fact, h.location))
        return
    collected = datetime.datetime.fromtimestamp(facts.collected_at, datetime.UTC).date()
    age = table.about.stale(collected)
    said = f"build table compiled {table.compiled.isoformat()}" + ("" if table.origin == "bundled" else f" ({_clean(table.origin, 300)})")
    if table.ignored:
        said += f"; ignored {_clean(table.ignored, 300)}"

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if not h.version or not h.build:
            return Result.not_applicable(h.build_note or "the host's ESXi version and build are not reported")
        where = f"ESXi {_clean(h.version, 20)} build {_clean(h.build, 12)}"
        line = table.line_for(h.version)
        if line is None or _version(h.version) is None:
            return Result.not_applicable(f"{where}: its release line is not in the {said}, so whether it is patched is unknown")
        if not h.build.strip().isdigit():
            return Result.not_applicable(f"{where}: the build is not a number")
        build = int(h.build)
        if line.status != "patched":
            last = f" (its last fix: {line.last_fix.release}, {line.last_fix.advisory})" if line.last_fix else ""
            return [f"{where}: {line.name}: {line.reason}{last}"]
        latest = line.latest
        assert latest is not None
        missing = sorted((f for f in line.fixes if f.build > build), key=lambda f: -f.build)
        if missing:
            # one advisory can ship several fixed builds on a line (VMSA-2026-0006 on 8.0: U3i, U3j, U3k)
            cves: dict[str, list[str]] = {}
            for f in missing:
                named_cves = cves.setdefault(f.advisory, [])
                named_cves += [c for c in f.cves if c not in named_cves]
            named = "; ".join(f"{advisory} ({', '.join(ids)})" for advisory, ids in cves.items())
            return [f"{where} is below {latest.build} ({latest.release}), the latest security patch of {line.name}: "
                    f"missing {named} [{said}]"]
        if age is not None:
            return Result.not_applicable(f"{where} is at or above {latest.release}, but the build table is {age} days older than the "
                                         f"scan (compiled {table.compiled.isoformat()}): later advisories are unknown; run `hyperward db update`")
        return Result.passed(h.location, f"{where} is at or above {latest.release}, the latest security patch of {line.name} [{said}]")

    yield from each_host(facts, judge)


#: protocols the STIG (ESXI-70-000083, ESXI-67-000074) requires ESXi to refuse
WEAK_TLS = ("sslv3", "tlsv1", "tlsv1.1")
TLS_PROFILE_FROM = (8, 0, 3)


def tls_protocols(facts: EsxiFacts) -> Iterator[Result]:
    """HV-NET-105: SSLv3, TLS 1.0 and TLS 1.1 have published weaknesses (POODLE, BEAST, SHA-1
    handshakes); before 8.0 Update 3 UserVars.ESXiVPsDisabledProtocols says which ones ESXi's
    endpoints refuse. From 8.0 Update 3 the TLS server profile (NIST_2024 for ESXI-80-000247)
    governs, which only esxcli shows."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        version = _version(h.version)
        if version is not None and version >= TLS_PROFILE_FROM:
            return Result.not_applicable(f"ESXi {_clean(h.version or '', 20)} sets TLS through its TLS server profile (the STIG's NIST_2024, "
                                         "ESXI-80-000247), which only `esxcli system tls server get` shows, not the vSphere API "
                                         "or an offline copy")
        s = Settings(h)
        problems: list[str] = []
        raw = s.get("UserVars.ESXiVPsDisabledProtocols")
        if raw is not None:
            disabled = {p.strip().lower() for p in raw.split(",") if p.strip()}
            enabled = [p for p in WEAK_TLS if p not in disabled]
            if enabled:
                problems.append(f"UserVars.ESXiVPsDisabledProtocols = {_clean(raw, 60)!r}: {', '.join(enabled)} not disabled")
        return s.verdict(problems)

    yield from each_host(facts, judge)


def snmp_communities(facts: EsxiFacts) -> Iterator[Result]:
    """HV-AUTH-107: SNMP v1 and v2c authenticate with a community string sent in clear text; an
    enabled agent with communities hands host details (and traps) to whoever sniffs or guesses
    one. Only SNMPv3 (users, authentication and privacy) is acceptable."""

    def judge(h: EsxiHost, _f: EsxiFacts) -> list[str] | Result:
        if isinstance(h.snmp, Unavailable):
            return Result.unavailable(h.snmp, h.location)
        agent = h.snmp
        if not agent.enabled:
            return Result.passed(h.location, "the SNMP agent is disabled")
        problems = []
        if agent.communities:
            problems.append(f"SNMP agent enabled with {agent.communities} v1/v2c read-only communit{'y' if agent.communities == 1 else 'ies'} "
                            "(clear-text passwords; use SNMPv3 users)")
        if agent.trap_communities:
            problems.append(f"{agent.trap_communities} trap target{'' if agent.trap_communities == 1 else 's'} sent v1/v2c traps with a community")
        return problems

    yield from each_host(facts, judge)


#: Windows versions with Virtualization-Based Security (Windows 10 / Server 2016 and later, 64-bit),
#: as the API (windows9Server64Guest, windows2019srv_64Guest) and the .vmx (windows2019srv-64) name them
VBS_GUESTS = re.compile(r"^windows(9|9server|9srv|11|12|2019srv|2019srvnext|2022srvnext)[-_]?64(guest)?$")


def vbs(facts: EsxiFacts) -> Iterator[Result]:
    """HV-ISO-109: without VBS a Windows guest has no Credential Guard or hypervisor-protected code
    integrity: an administrator inside it (or malware) reads LSASS secrets and loads unsigned
    kernel code."""

    def applies(vm: EsxiVm) -> bool:
        return bool(vm.guest_id) and VBS_GUESTS.match((vm.guest_id or "").strip().lower()) is not None

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str] | Result:
        if vm.vbs is None:
            if vm.source == "api":
                return Result.not_applicable("the endpoint does not report config.flags.vbsEnabled (the vSphere API has it from 6.7 on)")
            return Result.not_applicable("VBS is judged over the vSphere API (config.flags.vbsEnabled); no source found gives its .vmx key")
        if not vm.vbs:
            return [f"Virtualization-Based Security off on {_clean(vm.guest_id or '', 40)} (config.flags.vbsEnabled false)"]
        return []

    yield from each_vm(facts, judge, applies=applies,
                       none_reason="no ESXi VM runs a Windows version with VBS (Windows 10 / Server 2016 or later, 64-bit)")


#: VirtualMachineToolsVersionStatus (vSphere API), guest.toolsVersionStatus2
TOOLS_OUTDATED = {
    "guestToolsTooOld": "too old: no longer supported with this host",
    "guestToolsBlacklisted": "a version with a known grave bug (blacklisted): upgrade at once",
    "guestToolsNeedUpgrade": "not current: needs an upgrade",
    "guestToolsSupportedOld": "older than the version this host ships (a newer one is available)",
}
TOOLS_CURRENT = {"guestToolsCurrent": "current", "guestToolsSupportedNew": "newer than the host's bundled version, and supported"}
TOOLS_NOT_JUDGED = {
    "guestToolsUnmanaged": "managed by the guest OS (open-vm-tools packaged by its vendor): its updates come with the guest's packages",
    "guestToolsNotInstalled": "VMware Tools is not installed",
    "guestToolsTooNew": "newer than this host supports: a compatibility problem, not a missing patch",
}


def tools_version(facts: EsxiFacts) -> Iterator[Result]:
    """HV-PATCH-101: VMware Tools runs in the guest with a channel to the host (VMSA-2025-0013,
    VMSA-2026-0009 fixed Tools flaws); a version ESXi calls too old, outdated or blacklisted
    keeps those flaws."""

    def judge(vm: EsxiVm, _f: EsxiFacts) -> list[str] | Result:
        status = vm.tools_status
        if status is None:
            if vm.source == "api":
                return Result.not_applicable("no VMware Tools version status reported (guest.toolsVersionStatus2): the VM never ran Tools")
            return Result.not_applicable("the VMware Tools version status comes from the running guest over the vSphere API "
                                         "(guest.toolsVersionStatus2), not from the .vmx")
        if status in TOOLS_OUTDATED:
            return [f"VMware Tools {TOOLS_OUTDATED[status]} ({status})"]
        if status in TOOLS_CURRENT:
            return Result.passed(vm_label(vm), f"VMware Tools {TOOLS_CURRENT[status]} ({status})")
        if status in TOOLS_NOT_JUDGED:
            return Result.not_applicable(f"{TOOLS_NOT_JUDGED[status]} ({status})")
        return Result.not_applicable(f"unknown VMware Tools version status {_clean(status, 40)!r}")

    yield from each_vm(facts, judge)


JUDGES: dict[str, Judge] = {
    "HV-ISO-100": tools_isolation,
    "HV-ISO-101": info_channels,
    "HV-ISO-102": remote_console,
    "HV-ISO-103": three_d,
    "HV-ISO-104": nonpersistent_disks,
    "HV-ISO-105": unneeded_devices,
    "HV-ISO-106": hardware_version,
    "HV-ISO-107": boot_integrity,
    "HV-ISO-108": vm_overrides,
    "HV-ISO-109": vbs,
    "HV-NET-100": dvfilter,
    "HV-NET-101": migration_encryption,
    "HV-NET-102": switch_security,
    "HV-NET-103": vlan_4095,
    "HV-NET-104": network_settings,
    "HV-NET-105": tls_protocols,
    "HV-SIDE-100": pshare_salt,
    "HV-SIDE-101": page_salting,
    "HV-SIDE-102": suppressed_warnings,
    "HV-MON-100": vm_logging,
    "HV-MON-101": logging_settings,
    "HV-MON-102": time_sync,
    "HV-AUTH-100": account_lockout,
    "HV-AUTH-101": password_policy,
    "HV-AUTH-102": session_timeouts,
    "HV-AUTH-103": services,
    "HV-AUTH-104": mob,
    "HV-AUTH-105": lockdown,
    "HV-AUTH-106": esx_admins_group,
    "HV-AUTH-107": snmp_communities,
    "HV-FW-100": firewall,
    "HV-PATCH-100": build_patch,
    "HV-PATCH-101": tools_version,
}


register("esxi", JUDGES, NOT_PRESENT)
