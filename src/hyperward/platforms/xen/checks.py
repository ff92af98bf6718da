"""The Xen-only checks, as pure judges over XenFacts (titles, severities and remediations are the
catalog rows of docs/catalog-project.md's Xen section).

Hypervisor rows judge every Xen command line found, each as its own resource: the one the
hypervisor booted with (`xl info`) and the ones configured for the next boot (GRUB's
GRUB_CMDLINE_XEN*, EFI xen.cfg). Option semantics are docs/misc/xen-command-line.pandoc's with
xen/common/kernel.c's parsing (see parsers.py). Guest rows judge each domain: a running one as
`xl list -l` reports it, a defined one as its xl.cfg says, with xl.cfg(5)'s defaults and
xl.conf(5)'s; HV-ISO-060 judges xl.conf itself. On a live dom0 the booted line of a runtime
parameter (`ept`) is judged by its live value where xenhypfs shows it, and the results of
boot-only options say that the booted line is what runs.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any

from ...addresses import is_loopback
from ...model import Result, Severity, Status, Unavailable
from ..judges import register
from . import parsers
from .facts import XenCmdline, XenFacts, XenGuestConfig
from .guests import (
    device_backends,
    dm_restricted,
    flag,
    guest_type,
    pci_devices,
    qemu_in_dom0,
    spice_display,
    stubdomain,
    vnc_displays,
    xl_defaults,
)

Judge = Callable[[XenFacts], Iterator[Result]]
_UNSAFE = re.compile(r"[^\x20-\x7e]")
NO_CMDLINE = ("no Xen command line found (not a live dom0, no GRUB defaults file, no EFI xen.cfg): "
              "the hypervisor's options are unknown")


def _clean(text: str, limit: int = 120) -> str:
    """Values from audited files go into messages: printable ASCII only, bounded."""
    text = _UNSAFE.sub("?", text)
    return text if len(text) <= limit else text[:limit] + "..."


# --- helpers --------------------------------------------------------------------------------------


#: said of the booted line for options Xen parses once at boot (custom_param/boolean_param, not
#: a runtime parameter): `xl set-parameters` refuses them, so the booted line is what runs
BOOT_ONLY = "boot-only option: xl set-parameters cannot change it, so the booted line is what runs"


def _each_cmdline(xen: XenFacts, judge: Callable[[XenCmdline], list[str] | Result], ok: str,
                  running_note: str = "") -> Iterator[Result]:
    """`running_note` is added to the booted line's result: whether the value could have changed
    since boot (xl set-parameters, xen-hptool) and what shows the live one."""
    if not xen.cmdlines:
        yield Result.not_applicable(NO_CMDLINE)
        return
    for line in xen.cmdlines:
        if isinstance(line, Unavailable):
            yield Result.unavailable(line, line.path)
            continue
        verdict = judge(line)
        note = f" ({running_note})" if line.running and running_note else ""
        if isinstance(verdict, Result):
            if note and verdict.status in (Status.PASS, Status.FAIL):
                verdict = dataclasses.replace(verdict, message=verdict.message + note)
            yield verdict
        elif verdict:
            yield Result.fail(line.source, "; ".join(verdict) + note)
        else:
            yield Result.passed(line.source, ok + note)


def _each_guest(xen: XenFacts, judge: Callable[[XenGuestConfig], list[str] | Result], *,
                applies: Callable[[XenGuestConfig], bool] | None = None, none_reason: str) -> Iterator[Result]:
    """One result per domain: fail with every problem, pass, or the judge's own Result; configs
    that could not be read or parsed are errors naming their file."""
    for problem in xen.unreadable():
        yield Result.unavailable(problem, problem.path)
    judged = 0
    for guest in xen.guests():
        if applies is not None and not applies(guest):
            continue
        judged += 1
        verdict = judge(guest)
        if isinstance(verdict, Result):
            yield verdict
        elif verdict:
            yield Result.fail(guest.label, "; ".join(verdict))
        else:
            yield Result.passed(guest.label)
    if not judged and not xen.unreadable():
        yield Result.not_applicable(none_reason if xen.guests() or xen.configs else "no Xen domains defined or running")


def _last(events: list[tuple[int, Any]]) -> Any:
    """The setting that counts: events are in command-line order (items of one option in theirs),
    and a `spec-ctrl=no` stands in only before any explicit setting, so the last one wins."""
    return events[-1][1] if events else None


def _spec_ctrl_off(tokens: list[str]) -> int | None:
    """Index of the last `spec-ctrl=no` (or `no-spec-ctrl`): every mitigation off."""
    found = None
    for setting, items in parsers.custom_items(tokens, "spec-ctrl"):
        if items and parsers.parse_bool(items[0]) is False:
            found = setting.index
    return found


def _first_index(tokens: list[str], name: str) -> int | None:
    found = parsers.settings(tokens, name, boolean=False)
    return found[0].index if found else None


# --- hypervisor -----------------------------------------------------------------------------------

#: spec-ctrl sub-options whose explicit off removes a protection Xen applies by default where the
#: hardware needs it (docs/misc/xen-command-line.pandoc, spec-ctrl (x86))
SPEC_CTRL_SUBOPTIONS = {
    "pv": "every mitigation for PV guests", "hvm": "every mitigation for HVM guests",
    "msr-sc": "MSR_SPEC_CTRL handling on entry/exit (guests cannot use IBRS/STIBP/SSBD)",
    "rsb": "Return Stack Buffer overwrite on entry", "md-clear": "VERW buffer flushing (MDS)", "mds": "VERW buffer flushing (MDS)",
    "verw": "VERW buffer flushing (MDS/RFDS/GDS)", "ibpb": "IBPB on vCPU context switch", "ibpb-entry": "IBPB on entry",
    "bhb-entry": "branch history clearing on entry", "ibrs": "IBRS use by Xen", "stibp": "STIBP use by Xen",
    "eager-fpu": "eager FPU switching (Lazy FPU state leak)", "l1d-flush": "L1D flush on VM entry (L1TF)",
    "l1tf-barrier": "L1TF barriers", "branch-harden": "conditional branch hardening", "div-scrub": "divider scrubbing (AMD DIV leak)",
    "lock-harden": "speculative lock hardening", "ibpb-ctxt": "IBPB on context switch",
}


def spec_ctrl(xen: XenFacts) -> Iterator[Result]:
    """HV-SIDE-050: `spec-ctrl=no` turns off every speculative-execution mitigation (and, unless
    given earlier, xpti and pv-l1tf); `no-xen` Xen's own; a sub-option set to false removes one."""

    def judge(line: XenCmdline) -> list[str]:
        state: dict[str, tuple[bool, str]] = {}
        problems = []
        for setting, items in parsers.custom_items(line.tokens, "spec-ctrl"):
            for position, item in enumerate(items):
                if position == 0 and parsers.parse_bool(item) is False:
                    problems.append(f"{_clean(setting.token)}: every mitigation off")
                    continue
                xen_own = parsers.parse_boolean("xen", item)
                if xen_own is False:
                    problems.append(f"{_clean(setting.token)}: Xen's own mitigations off")
                if item.startswith("bti-thunk="):
                    state["bti-thunk"] = (item.split("=", 1)[1] != "jmp", setting.token)
                for name in SPEC_CTRL_SUBOPTIONS:
                    value = parsers.parse_boolean(name, item)
                    if value is not None:
                        state[name] = (value, setting.token)
        for name, (value, token) in state.items():
            if not value:
                what = "bti-thunk=jmp: no retpoline or lfence thunk" if name == "bti-thunk" else f"{name} off: {SPEC_CTRL_SUBOPTIONS[name]}"
                problems.append(f"{what} ({_clean(token)})")
        return problems

    yield from _each_cmdline(xen, judge, "spec-ctrl not weakened (Xen picks mitigations for the hardware)", BOOT_ONLY)


def xpti(xen: XenFacts) -> Iterator[Result]:
    """HV-SIDE-051: without XPTI, 64-bit PV guests on Meltdown-affected CPUs read Xen's memory
    and every other guest's."""

    def judge(line: XenCmdline) -> list[str]:
        dom0: list[tuple[int, Any]] = []
        domu: list[tuple[int, Any]] = []
        off = _spec_ctrl_off(line.tokens)
        first = _first_index(line.tokens, "xpti")
        if off is not None and (first is None or first > off):
            dom0.append((off, (False, "spec-ctrl=no")))
            domu.append((off, (False, "spec-ctrl=no")))
        for setting, items in parsers.custom_items(line.tokens, "xpti"):
            for item in items:
                whole = parsers.parse_bool(item)
                if item == "default" or whole is not None:
                    value = None if item == "default" else (whole, setting.token)
                    dom0.append((setting.index, value))
                    domu.append((setting.index, value))
                for name, events in (("dom0", dom0), ("domu", domu)):
                    sub = parsers.parse_boolean(name, item)
                    if sub is not None:
                        events.append((setting.index, (sub, setting.token)))
        problems = []
        for who, events in (("guests (domu)", domu), ("dom0", dom0)):
            last = _last(events)
            if last is not None and last[0] is False:
                problems.append(f"XPTI off for {who} ({_clean(last[1])})")
        return problems

    yield from _each_cmdline(xen, judge, "XPTI left at its default (on where Meltdown applies)", BOOT_ONLY)


def pv_l1tf(xen: XenFacts) -> Iterator[Result]:
    """HV-SIDE-052: without the PV L1TF mitigation (XSA-273) a PV guest kernel writes
    L1TF-vulnerable page-table entries and reads host memory through the L1 cache."""

    def judge(line: XenCmdline) -> list[str]:
        domu: list[tuple[int, Any]] = []
        off = _spec_ctrl_off(line.tokens)
        first = _first_index(line.tokens, "pv-l1tf")
        if off is not None and (first is None or first > off):
            domu.append((off, (False, "spec-ctrl=no")))
        for setting, items in parsers.custom_items(line.tokens, "pv-l1tf"):
            for item in items:
                whole = parsers.parse_bool(item)
                if whole is not None:
                    domu.append((setting.index, (whole, setting.token)))
                sub = parsers.parse_boolean("domu", item)
                if sub is not None:
                    domu.append((setting.index, (sub, setting.token)))
        last = _last(domu)
        if last is not None and last[0] is False:
            return [f"PV L1TF shadowing off for guests ({_clean(last[1])})"]
        return []

    yield from _each_cmdline(xen, judge, "pv-l1tf left at its default (domu on affected hardware)", BOOT_ONLY)


def smt_scheduling(xen: XenFacts) -> Iterator[Result]:
    """HV-SIDE-053: with SMT on and the default per-thread scheduling, vCPUs of different guests
    share a core and its caches and buffers (MDS, L1TF, Spectre-style leaks between siblings);
    `smt=0`, or core scheduling (`sched-gran=core`), keeps guests off each other's siblings."""
    info = xen.xl_info if isinstance(xen.xl_info, dict) else {}
    single = info.get("threads_per_core") == "1"
    live_gran = _hypfs(xen, "/cpupool/0/sched-gran")

    def judge(line: XenCmdline) -> list[str] | Result:
        smt = parsers.last_boolean(line.tokens, "smt")
        if smt is not None and not smt.flag:
            return Result.passed(line.source, f"SMT off ({_clean(smt.token)})")
        gran = [s.value for s in parsers.settings(line.tokens, "sched-gran", boolean=False)]
        shown_gran = f"sched-gran={_clean(gran[-1])}" if gran else "sched-gran=cpu (default)"
        if line.running and live_gran:
            gran, shown_gran = [live_gran], f"sched-gran {_clean(live_gran)} (live: xenhypfs /cpupool/0/sched-gran)"
        if gran and gran[-1] in ("core", "socket"):
            return Result.passed(line.source, f"{shown_gran}: vCPUs of one core belong to one guest")
        if single:
            return Result.passed(line.source, "xl info: threads_per_core 1 (no SMT siblings in use)")
        shown = f"smt on ({_clean(smt.token)})" if smt is not None else "smt on (default)"
        return [f"{shown} with {shown_gran}"]

    yield from _each_cmdline(xen, judge, "", "SMT is switched at run time by xen-hptool smt-enable/smt-disable and "
                             "xl info threads_per_core is the live count" + (
                                 "" if live_gran else "; Pool-0's live sched-gran unknown (no xenhypfs /cpupool/0/sched-gran)"))


def ept_exec_sp(xen: XenFacts) -> Iterator[Result]:
    """HV-SIDE-054: `ept=exec-sp` permits executable EPT superpages; on CPUs affected by
    CVE-2018-12207 (XSA-304, iTLB multihit) an HVM guest kernel can then crash the host."""

    live = _hypfs(xen, "/params/ept")

    def judge(line: XenCmdline) -> list[str] | Result:
        last = None
        for setting, items in parsers.custom_items(line.tokens, "ept"):
            for item in items:
                value = parsers.parse_boolean("exec-sp", item)
                if value is not None:
                    last = (value, setting.token)
        if line.running and live:
            now = parsers.parse_boolean("exec-sp", live)
            booted = f"booted with {_clean(last[1])}" if last is not None else "not set at boot"
            if now:
                return [f"executable superpages allowed now (xenhypfs /params/ept: {_clean(live)}; {booted})"]
            if now is False:
                return Result.passed(line.source, f"exec-sp off now (xenhypfs /params/ept: {_clean(live)}; {booted})")
        if last is not None and last[0]:
            return [f"executable superpages allowed ({_clean(last[1])})"]
        return []

    note = "" if live else ("ept is a runtime parameter: xl set-parameters ept=exec-sp may have changed it since boot, "
                            "and its live value is unknown (no xenhypfs /params/ept)")
    yield from _each_cmdline(xen, judge, "ept exec-sp left at its default (off on affected hardware)", note)


def _hypfs(xen: XenFacts, path: str) -> str | None:
    """A live hypervisor value xenhypfs read (None offline, without xenhypfs, or when Xen has none)."""
    return xen.hypfs.get(path) or None if isinstance(xen.hypfs, dict) else None


def iommu_problems(line: XenCmdline) -> list[str]:
    """What one Xen command line does to the IOMMU (`iommu=`, `dom0-iommu=`); the first problem
    starts with "IOMMU disabled" when it is off altogether."""
    state: dict[str, tuple[bool, str]] = {}
    for setting, items in parsers.custom_items(line.tokens, "iommu"):
        for item in items:
            whole = parsers.parse_bool(item)
            if whole is not None:
                state["enabled"] = (whole, setting.token)
            for name in ("force", "required", "intremap", "dom0-passthrough", "amd-iommu-perdev-intremap"):
                value = parsers.parse_boolean(name, item)
                if value is not None:
                    state[name] = (value, setting.token)
    for setting, items in parsers.custom_items(line.tokens, "dom0-iommu"):
        for item in items:
            value = parsers.parse_boolean("passthrough", item)
            if value is not None:
                state["dom0-passthrough"] = (value, setting.token)
            if item == "none":
                state["none"] = (True, setting.token)
    problems = []
    enabled = state.get("enabled")
    if enabled is not None and not enabled[0]:
        problems.append(f"IOMMU disabled ({_clean(enabled[1])})")
    for key, message in (("intremap", "interrupt remapping off"),
                         ("amd-iommu-perdev-intremap", "one global AMD interrupt remapping table (not security supported)")):
        if key in state and not state[key][0]:
            problems.append(f"{message} ({_clean(state[key][1])})")
    for key, message in (("dom0-passthrough", "dom0 devices untranslated: they DMA to all of memory"),
                         ("none", "dom0 IOMMU safety checks skipped (dom0-iommu=none, development only)")):
        if key in state and state[key][0]:
            problems.append(f"{message} ({_clean(state[key][1])})")
    return problems


def iommu(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-050: with the IOMMU off (`iommu=no`) a device dom0 or a guest drives can DMA
    anywhere; without interrupt remapping a passed-through device can inject interrupts (XSA-59);
    a shared AMD interrupt table lets devices impersonate each other (XSA-36); dom0 passthrough
    lets dom0's devices DMA into every guest. On a live dom0 the booted line also fails when Xen
    reports no IOMMU at all (`xl info` virt_caps without directio): nothing was found to enable."""
    caps = xen.xl_info.get("virt_caps", "").split() if isinstance(xen.xl_info, dict) else None

    def judge(line: XenCmdline) -> list[str]:
        problems = iommu_problems(line)
        if line.running and caps is not None and not {"hvm_directio", "pv_directio"} & set(caps) \
                and not any(p.startswith("IOMMU disabled") for p in problems):
            problems.append("no IOMMU active (xl info virt_caps has no hvm_directio or pv_directio)")
        return problems

    yield from _each_cmdline(xen, judge, "IOMMU on by default where present",
                             BOOT_ONLY + "; xl info virt_caps shows whether an IOMMU is in use")


def iommu_state(xen: XenFacts) -> tuple[bool | None, str]:
    """Whether Xen runs with an IOMMU (for HV-ISO-010): on a live dom0 `xl info` virt_caps holds
    hvm_directio/pv_directio exactly when it does; offline only a command line that switches it
    off is evidence."""
    for line in xen.cmdlines:
        if isinstance(line, XenCmdline) and line.running:
            off = [p for p in iommu_problems(line) if p.startswith("IOMMU disabled")]
            if off:
                return False, f"the booted Xen command line has the {off[0]}"
    if isinstance(xen.xl_info, dict):
        caps = xen.xl_info.get("virt_caps", "").split()
        if "hvm_directio" in caps or "pv_directio" in caps:
            return True, "xl info virt_caps: directio"
        return False, "xl info virt_caps has no hvm_directio or pv_directio: Xen runs without an IOMMU"
    configured = [line for line in xen.cmdlines if isinstance(line, XenCmdline)
                  and any(p.startswith("IOMMU disabled") for p in iommu_problems(line))]
    if configured:
        return False, f"{configured[0].source} disables the IOMMU for the next boot"
    return None, ("Xen owns the IOMMU, so dom0's /sys/kernel/iommu_groups cannot show it; whether one is active "
                  "is known on a live dom0 only (xl info virt_caps)")


def _flask(line: XenCmdline) -> tuple[bool, str]:
    """(FLASK selected, its mode) from one command line: `xsm=flask`, or `flask=` given without
    another xsm= module."""
    xsm = [s.value for s in parsers.settings(line.tokens, "xsm", boolean=False)]
    modes = [s.value for s in parsers.settings(line.tokens, "flask", boolean=False)]
    selected = (xsm[-1] == "flask") if xsm else bool(modes) and modes[-1] != "disabled"
    return selected, modes[-1] if modes else "enforcing"


def flask_in_use(xen: XenFacts) -> bool:
    if isinstance(xen.getenforce, str) and xen.getenforce in ("Enforcing", "Permissive"):
        return True
    return any(isinstance(line, XenCmdline) and _flask(line)[0] for line in xen.cmdlines)


def xsm_flask(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-051: FLASK in permissive mode (or disabled, or `late` with no policy loaded)
    enforces nothing: every domain may use every hypercall the dummy policy allows dom0."""
    enforce = xen.getenforce if isinstance(xen.getenforce, str) else None

    def judge(line: XenCmdline) -> list[str] | Result:
        selected, mode = _flask(line)
        if line.running and enforce in ("Enforcing", "Permissive"):
            if enforce == "Permissive":
                return [f"xl getenforce: Permissive (flask={_clean(mode)} at boot)"]
            return Result.passed(line.source, "xl getenforce: Enforcing")
        if not selected:
            return Result.not_applicable("FLASK not selected (xsm=dummy, the default module): no XSM policy to enforce",
                                         line.source)
        if mode != "enforcing":
            return [f"flask={_clean(mode)}: the policy is not enforced" + (" until one is loaded" if mode == "late" else "")]
        return []

    yield from _each_cmdline(xen, judge, "FLASK enforcing")


# --- guests ---------------------------------------------------------------------------------------


def vnc_auth(xen: XenFacts) -> Iterator[Result]:
    """HV-AUTH-050: xl serves a guest's VNC display over TCP only (no UNIX socket, no TLS): without
    vncpasswd anyone who reaches the port, every local user of dom0 included, gets keyboard and
    screen; off loopback, a VNC password (DES, 8 characters) is all that stands in the way."""

    def judge(c: XenGuestConfig) -> list[str]:
        problems = []
        for vnc in vnc_displays(c):
            where = f"VNC ({vnc.where}) on {_clean(vnc.listen)}" + (" (default)" if vnc.default_listen else "")
            if not vnc.password:
                problems.append(f"{where} without a password (no vncpasswd, or empty)")
            elif not is_loopback(vnc.listen):
                problems.append(f"{where}: vncpasswd set, but VNC passwords are 8 DES characters and xl offers no TLS")
        return problems

    yield from _each_guest(xen, judge, applies=lambda c: bool(vnc_displays(c)), none_reason="no guest has a VNC display")


def spice_auth(xen: XenFacts) -> Iterator[Result]:
    """HV-AUTH-051: `spicedisable_ticketing=1` lets any client connect; SPICE listens on every
    interface unless spicehost names one, and xl sets up no TLS for it."""

    def judge(c: XenGuestConfig) -> list[str]:
        spice = spice_display(c)
        assert spice is not None
        problems = []
        if not spice.ticketing:
            problems.append("spicedisable_ticketing=1: clients connect without a password")
        elif not spice.password:
            problems.append("ticketing on without spicepasswd: xl refuses to start the display")
        if not is_loopback(spice.listen):
            default = " (spicehost unset: any interface)" if c.get("spicehost") is None else ""
            problems.append(f"SPICE on {_clean(spice.listen)}{default} without TLS")
        return problems

    yield from _each_guest(xen, judge, applies=lambda c: spice_display(c) is not None, none_reason="no guest has SPICE enabled")


def pci_permissive(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-052: `permissive=1` (or pci_permissive=1) lets the guest write any of the device's
    PCI configuration space, past pciback's and QEMU's filter of known-safe writes; `seize=1` has
    xl take a device from dom0 without asking, a disk or network controller included."""

    def judge(c: XenGuestConfig) -> list[str]:
        problems = []
        for bdf, effective in pci_devices(c):
            if effective["permissive"]:
                problems.append(f"{_clean(bdf)}: permissive (all config-space writes allowed)")
            if effective["seize"]:
                problems.append(f"{_clean(bdf)}: seize (re-assigned from dom0 without confirmation)")
        return problems

    yield from _each_guest(xen, judge, applies=lambda c: bool(c.items("pci")), none_reason="no guest has a PCI device passed through")


def gfx_passthru(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-053: gfx_passthru also passes legacy VGA memory ranges, BARs, MMIO and I/O ports
    and runs the card's video BIOS in the guest: far more of the host than one PCI function."""

    def judge(c: XenGuestConfig) -> list[str]:
        value = c.get("gfx_passthru")
        if value is None:
            return []
        number = parsers.c_long(value)
        if number == 0:
            return []
        return [f"gfx_passthru={_clean(value)}"]

    yield from _each_guest(xen, judge, applies=lambda c: guest_type(c) == "hvm", none_reason="no HVM guest")


def device_model(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-054: by default QEMU runs in dom0 as root: a guest that escapes into its device
    model owns the host. A stub domain moves QEMU into its own domain; dm_restrict=1 drops its
    privileges, and needs its own user per guest (device_model_user), never root."""
    users: dict[str, list[str]] = {}
    for c in xen.guests():
        user = c.get("device_model_user")
        if user and flag(c, "dm_restrict", False) and qemu_in_dom0(c):
            users.setdefault(user, []).append(c.name)

    def judge(c: XenGuestConfig) -> list[str] | Result:
        if guest_type(c) == "hvm" and stubdomain(c):
            return Result.passed(c.label, "device model in a stub domain")
        reasons = qemu_in_dom0(c)
        restrict = flag(c, "dm_restrict", False)
        user = c.get("device_model_user")
        if not restrict:
            return [f"QEMU ({', '.join(reasons)}) runs in dom0 as root: no stub domain, no dm_restrict=1"]
        if user == "root":
            return ["dm_restrict=1 with device_model_user=root: QEMU keeps root"]
        if user and len(users.get(user, [])) > 1:
            others = ", ".join(_clean(n) for n in users[user] if n != c.name)
            return [f"device_model_user={_clean(user)} shared with {others} (each domain needs its own user)"]
        return []

    yield from _each_guest(xen, judge, applies=lambda c: bool(qemu_in_dom0(c)) or (guest_type(c) == "hvm" and stubdomain(c)),
                           none_reason="no guest has a device model in dom0")


def e820_host(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-055: `e820_host` shows a PV guest the host's memory map (on by default when PCI
    devices are passed through): the host's layout for the guest to aim at."""

    def judge(c: XenGuestConfig) -> list[str]:
        explicit = c.get("e820_host")
        on = flag(c, "e820_host", bool(c.items("pci")))
        if not on:
            return []
        return ["e820_host=1" if explicit is not None else "e820_host on by default (PCI passthrough configured)"]

    yield from _each_guest(xen, judge, applies=lambda c: guest_type(c) == "pv", none_reason="no PV guest")


def msr_relaxed(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-056: `msr_relaxed=1` makes Xen answer guest reads of MSRs it does not handle instead
    of injecting #GP: the guest sees values it was never meant to."""

    def judge(c: XenGuestConfig) -> list[str]:
        return ["msr_relaxed=1"] if flag(c, "msr_relaxed", False) else []

    yield from _each_guest(xen, judge, none_reason="no Xen domains defined or running")


def raw_resources(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-057: `iomem` maps host machine pages into the guest without the IOMMU knowing;
    `ioports` and `irqs` give it host I/O ports and physical interrupts. xl.cfg(5): only for
    trusted VMs under the administrator's control."""

    def judge(c: XenGuestConfig) -> list[str]:
        problems = []
        for key in ("iomem", "ioports", "irqs"):
            items = c.items(key)
            if items:
                shown = ", ".join(_clean(i, 40) for i in items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                problems.append(f"{key}: {shown}")
        return problems

    yield from _each_guest(xen, judge, none_reason="no Xen domains defined or running")


def seclabels(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-058: under FLASK a domain without seclabel runs under the policy's default label,
    alike with every other unlabelled domain: the policy cannot keep them apart."""
    if not flask_in_use(xen):
        for problem in xen.unreadable():
            yield Result.unavailable(problem, problem.path)
        yield Result.not_applicable("FLASK not in use on any Xen command line (and xl getenforce does not say Enforcing or Permissive)")
        return

    def judge(c: XenGuestConfig) -> list[str]:
        return [] if c.get("seclabel") else ["no seclabel: the policy's default label, shared with every unlabelled domain"]

    yield from _each_guest(xen, judge, none_reason="no Xen domains defined or running")


def driver_domains(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-059: a driver domain is an unprivileged domain that runs the backends of other
    domains' devices: every vif, disk, p9, vtpm, pvcalls, channel, vkb, vdispl, vsnd, usbctrl or
    virtio whose `backend=` names it (xl-network-configuration(5), xl-disk-configuration(5),
    xl.cfg(5); xl.conf's vif.default.backend for vifs that name none), and every domain with
    `driver_domain=1` (xl.cfg(5): "enables certain features needed in order to run a driver
    domain"). It maps its frontends' granted pages and sees all their disk and network traffic,
    and it is the domain that parses what arrives from the wire: the point of moving backends out
    of dom0 is that its compromise stays contained (Xen wiki, Driver Domain). That holds only if
    the domain is itself held the way an untrusted guest is:

    - a passed-through device it drives is not `permissive` (pciback's config-space filter stays);
    - its devices are not passed through while Xen runs without an IOMMU ("without IOMMU support,
      there's nothing to stop the driver domain from using the network card's DMA engine to read
      and write any system memory", Xen wiki);
    - no QEMU of its own runs in dom0 as root (a stub domain or dm_restrict=1 with its own user);
    - under FLASK it has its own seclabel, or the policy cannot tell it from its frontends;
    - and each frontend device it serves is marked `untrusted`, so the frontend's driver limits
      what the backend sees to the I/O itself (xl-network-configuration(5),
      xl-disk-configuration(5) trusted/untrusted; trusted is the default).

    One result per driver domain, naming the guests it serves. A `backend=` naming a domain that is
    neither defined nor running is not applicable under that name: its isolation is unknown. What
    runs inside a driver domain is not in any config, so "runs untrusted workloads" is not judged
    beyond these settings."""
    defaults = xl_defaults(xen.xl_conf)
    domains = xen.guests()
    by_name = {c.name: c for c in domains}
    by_domid = {str(c.domid): c for c in domains if c.domid is not None}
    served: dict[str, list[str]] = {}
    trusting: dict[str, list[str]] = {}
    unknown: dict[str, list[str]] = {}
    for c in domains:
        for use in device_backends(c, defaults):
            target = by_name.get(use.backend) or by_domid.get(use.backend)
            if target is None:
                unknown.setdefault(use.backend, []).append(f"{c.name} {use.device}")
                continue
            if target.name == c.name:
                continue
            served.setdefault(target.name, []).append(f"{c.name} {use.device}")
            if use.trusted is True:
                trusting.setdefault(target.name, []).append(f"{c.name} {use.device}")
    for problem in xen.unreadable():
        yield Result.unavailable(problem, problem.path)
    flask = flask_in_use(xen)
    iommu_on, iommu_why = iommu_state(xen)
    judged = 0
    for c in domains:
        if c.name not in served and not flag(c, "driver_domain", False):
            continue
        judged += 1
        problems = []
        for bdf, effective in pci_devices(c):
            if effective["permissive"]:
                problems.append(f"{_clean(bdf)} passed through permissive (the device may write all of its config space)")
        if c.items("pci") and iommu_on is False:
            problems.append(f"PCI devices passed through while Xen runs without an IOMMU ({_clean(iommu_why)}): their DMA reaches all memory")
        reasons = qemu_in_dom0(c)
        if reasons and not dm_restricted(c):
            problems.append(f"its QEMU ({', '.join(reasons)}) runs in dom0 as root: no stub domain, no dm_restrict=1")
        if flask and not c.get("seclabel"):
            problems.append("no seclabel under FLASK: the policy cannot tell it from the guests it serves")
        for device in trusting.get(c.name, []):
            problems.append(f"{_clean(device)} trusts it (not marked untrusted)")
        serves = ", ".join(_clean(u) for u in served.get(c.name, [])) or "no device found yet (driver_domain=1)"
        if problems:
            yield Result.fail(c.label, f"driver domain for {serves}: " + "; ".join(problems))
        else:
            yield Result.passed(c.label, f"driver domain for {serves}: held like an untrusted guest, its frontends mark it untrusted")
    for backend, frontends in sorted(unknown.items()):
        judged += 1
        yield Result.not_applicable(f"named as backend= by {', '.join(_clean(u) for u in frontends)}, but no domain of that name or domid "
                                    "is defined or running: its isolation is unknown", _clean(backend))
    if not judged and not xen.unreadable():
        yield Result.not_applicable("no driver domain: dom0 serves every device and no guest sets driver_domain=1")


#: xl.c auto_autoballoon(): how xl recognises dom0_mem on the running Xen's command line
DOM0_MEM = re.compile(r"(^| )dom0_mem=((|min:|max:)[0-9]+[bBkKmMgG]?,?)+($| )")
XL_CONF = "/etc/xen/xl.conf"


def autoballoon(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-060: with autoballoon on, xl takes the memory for each new guest from dom0 (xl.conf(5));
    with dom0_mem on Xen's command line dom0 was sized on purpose, and the manual "strongly
    recommends" off or auto there (xl(1) NOTES likewise): dom0 runs every backend, QEMU and the
    toolstack, and a guest created with enough memory leaves it starved. `auto` (the default, and
    what xl falls back to for a value it does not know) turns ballooning off exactly when the
    booted command line has dom0_mem (xl.c auto_autoballoon), so only an explicit on/1 is judged."""
    conf = xen.xl_conf
    if isinstance(conf, Unavailable) and conf.kind != "missing":
        yield Result.unavailable(conf, conf.path)
        return
    value: str = (conf.get("autoballoon") if isinstance(conf, dict) else None) or "auto"
    if value not in ("on", "1"):
        shown = value if value in ("off", "0", "auto") else f"{_clean(value)} (not known to xl: auto)"
        yield Result.passed(XL_CONF, f"autoballoon={shown}: xl does not shrink a dom0 sized with dom0_mem")
        return
    found = [line for line in xen.cmdlines if isinstance(line, XenCmdline)]
    sized = [line.source for line in found if DOM0_MEM.search(" ".join(line.tokens))]
    if sized:
        yield Result.fail(XL_CONF, f"autoballoon={value} while dom0_mem is set ({', '.join(sized)}): "
                                   "xl shrinks dom0 for every guest it creates")
    elif not found:
        yield Result.not_applicable(f"autoballoon={value}, but no Xen command line was found to say whether dom0_mem is set", XL_CONF)
    else:
        yield Result.passed(XL_CONF, f"autoballoon={value} without dom0_mem on any Xen command line: dom0 starts with "
                                     "the host's memory and hands it out by design")


def _pygrub(c: XenGuestConfig) -> str | None:
    """The guest's bootloader when libxl runs it in dom0 (PV and PVH; HVM firmware boots itself)."""
    program = c.get("bootloader")
    return program if program and guest_type(c) in ("pv", "pvh") else None


def bootloader(xen: XenFacts) -> Iterator[Result]:
    """HV-ISO-061: `bootloader="pygrub"` has libxl run pygrub in dom0, as root, on the guest's own
    disk image: it mounts and parses guest-owned filesystems and grub configs, and XSA-443, XSA-497
    and XSA-508 each let a guest take the toolstack domain that way ("A guest using pygrub can
    escalate its privilege to that of the domain construction tools (i.e., normally, to control of
    the host)"); since XSA-508 only the de-privileged mode is security supported. That mode is
    `bootloader_restrict=1` (xl.cfg(5): restrict the bootloader "to limit the consequences of
    security vulnerabilities due to parsing guest owned image files"), whose system-wide default is
    xl.conf's `bootloader_restrict` (xl.conf(5)); unset everywhere, libxl restricts only when
    `bootloader_user` is given (libxl_create.c: "providing a bootloader user implies enabling
    restrict"). The restricted bootloader runs as bootloader_user, which "MUST" be separate for
    each domain (xl.cfg(5)). A bootloader other than pygrub is not judged: whether it can run
    de-privileged is its own affair. A running domain is judged by what `xl list -l` stored."""
    conf = xen.xl_conf if isinstance(xen.xl_conf, dict) else {}
    default = parsers.c_long(conf.get("bootloader_restrict"))

    def restricted(c: XenGuestConfig) -> tuple[bool, str]:
        own = parsers.c_long(c.get("bootloader_restrict"))
        if own is not None:
            return own != 0, f"bootloader_restrict={c.get('bootloader_restrict')}"
        if c.source == "file" and default is not None:
            return default != 0, f"xl.conf bootloader_restrict={conf.get('bootloader_restrict')}"
        if c.get("bootloader_user"):
            return True, "bootloader_user set (implies bootloader_restrict)"
        return False, "no bootloader_restrict in the guest or xl.conf"

    users: dict[str, list[str]] = {}
    for c in xen.guests():
        user = c.get("bootloader_user")
        program = _pygrub(c)
        if user and program and "pygrub" in program.rsplit("/", 1)[-1] and restricted(c)[0]:
            users.setdefault(user, []).append(c.name)

    def judge(c: XenGuestConfig) -> list[str] | Result:
        program = _pygrub(c) or ""
        if "pygrub" not in program.rsplit("/", 1)[-1]:
            return Result.not_applicable(f"bootloader {_clean(program)} is not pygrub: whether it can run de-privileged is not known",
                                         c.label)
        on, why = restricted(c)
        if not on:
            return [(f"pygrub runs as root in dom0 on the guest's own disk ({_clean(why)}): only de-privileged pygrub is "
                     "security supported (XSA-508)")]
        user = c.get("bootloader_user")
        if user and len(users.get(user, [])) > 1:
            others = ", ".join(_clean(n) for n in users[user] if n != c.name)
            return [f"bootloader_user={_clean(user)} shared with {others} (each domain needs its own user)"]
        return Result.passed(c.label, f"pygrub restricted ({_clean(why)})")

    yield from _each_guest(xen, judge, applies=lambda c: _pygrub(c) is not None,
                           none_reason="no PV or PVH guest boots through a bootloader in dom0")


JUDGES: dict[str, Judge] = {
    "HV-SIDE-050": spec_ctrl,
    "HV-SIDE-051": xpti,
    "HV-SIDE-052": pv_l1tf,
    "HV-SIDE-053": smt_scheduling,
    "HV-SIDE-054": ept_exec_sp,
    "HV-ISO-050": iommu,
    "HV-ISO-051": xsm_flask,
    "HV-ISO-052": pci_permissive,
    "HV-ISO-053": gfx_passthru,
    "HV-ISO-054": device_model,
    "HV-ISO-055": e820_host,
    "HV-ISO-056": msr_relaxed,
    "HV-ISO-057": raw_resources,
    "HV-ISO-058": seclabels,
    "HV-ISO-059": driver_domains,
    "HV-ISO-060": autoballoon,
    "HV-ISO-061": bootloader,
    "HV-AUTH-050": vnc_auth,
    "HV-AUTH-051": spice_auth,
}


#: rows whose weight depends on who the guests are (the SMT row is the spec's single-tenant case)
PROFILE_SEVERITY = {"HV-SIDE-053": {"single-tenant": Severity.LOW}}


register("xen", JUDGES, "Xen is not installed (no /etc/xen/xl.conf, /etc/xen/auto, xl, or /sys/hypervisor/type xen)", profile_severity=PROFILE_SEVERITY)
