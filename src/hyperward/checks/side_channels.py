"""CPU side channels: the kernel's own verdicts in sysfs, SMT, L1TF, iTLB multihit and KSM."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import Domain, HostFacts
from ..model import Result, Severity, Unavailable
from ..parsers.cpu_vuln import main_status, parse_vulnerability
from ..facts import VULN_DIR
from ._common import is_enabled, module_param, vuln_text
from ._libvirt import each_domain, process_label, qemu_processes

SINGLE_TENANT_LOW = {"single-tenant": Severity.LOW}


@check("HV-SIDE-001",
    fix="update the kernel and CPU microcode (intel-microcode / amd64-microcode), remove mitigation off-switches from the kernel command line, reboot",
    references=("Linux Documentation/ABI/testing/sysfs-devices-system-cpu", "Linux Documentation/admin-guide/hw-vuln/index.rst"),
)
def cpu_reported_vulnerable(host: HostFacts) -> Iterator[Result]:
    """The kernel knows best which speculative-execution bugs this CPU has and whether it mitigates
    them. Every file is judged, including files newer kernels add, and every "; "-separated
    sub-clause: spectre_v2 can be mitigated while its BHI clause says Vulnerable."""
    vulns = host.cpu.vulnerabilities
    if isinstance(vulns, Unavailable):
        yield Result.unavailable(vulns)
        return
    if not vulns:
        yield Result.not_applicable(f"{VULN_DIR}: empty (kernel reports no CPU vulnerabilities)")
        return
    for name, value in vulns.items():
        if isinstance(value, Unavailable):
            yield Result.unavailable(value, name)
            continue
        clauses = parse_vulnerability(value)
        bad = [c for c in clauses if c.vulnerable]
        state = main_status(value)
        if bad:
            for clause in bad:
                resource = name if clause.name is None else f"{name} ({clause.name})"
                yield Result.fail(resource, value)
        elif state == "unknown":
            yield Result.fail(name, f"{value} (the kernel cannot tell; treat as unmitigated)", severity=Severity.MEDIUM)
        elif state == "unrecognized" or not clauses:
            yield Result.error(f"{VULN_DIR}/{name}: unrecognized value {value[:120]!r}", name)
        else:
            yield Result.passed(name, value)


@check("HV-SIDE-002",
    fix="keep kvm-intel.vmentry_l1d_flush at cond or always (boot with l1tf=full,force for the strictest setting) and update microcode",
    references=("Linux Documentation/admin-guide/hw-vuln/l1tf.rst",),
)
def l1tf_guest_host(host: HostFacts) -> Iterator[Result]:
    """L1 Terminal Fault lets a guest read host L1D contents unless KVM flushes L1D on VM entry
    (hw-vuln/l1tf.rst). Fails on "VMX: vulnerable" or vmentry_l1d_flush=never.
    Primary source over the catalog row: the kernel never prints "L1D vulnerable"; l1tf_show_state()
    in arch/x86/kernel/cpu/bugs.c prints "VMX: vulnerable" when the L1D flush is off."""
    value = vuln_text(host, "l1tf")
    if isinstance(value, Result):
        yield value
        return
    if main_status(value) == "not_affected":
        yield Result.passed("l1tf", value)
        return
    problems = []
    if any(c.name == "VMX" and c.vulnerable for c in parse_vulnerability(value)):
        problems.append(f"{VULN_DIR}/l1tf: {value}")
    flush = module_param(host, "kvm_intel", "vmentry_l1d_flush")
    if isinstance(flush, str) and flush.lower() == "never":
        problems.append("kvm_intel.vmentry_l1d_flush=never")
    if problems:
        yield Result.fail("l1tf", "; ".join(problems))
    else:
        detail = value if not isinstance(flush, str) else f"{value} (vmentry_l1d_flush={flush})"
        yield Result.passed("l1tf", detail)


_SMT_OFF = ("off", "forceoff", "notsupported", "notimplemented")
_SCHED_CORE_ON = ("vcpus", "emulator", "full")


@check("HV-SIDE-003",
    fix="boot with nosmt=force (or echo off > /sys/devices/system/cpu/smt/control), or set sched_core = \"full\" in /etc/libvirt/qemu.conf",
    references=("Linux Documentation/admin-guide/hw-vuln/core-scheduling.rst", "Linux Documentation/admin-guide/hw-vuln/mds.rst", "libvirt src/qemu/qemu.conf.in (sched_core)"),
    profile_severity=SINGLE_TENANT_LOW,
)
def smt_shared(host: HostFacts) -> Iterator[Result]:
    """With SMT on, sibling threads share L1, buffers and predictors: several leaks (MDS, TAA,
    MMIO, L1TF, cross-thread RSB) cannot be fully mitigated while two guests, or a guest and the
    host, run on one core. Core scheduling (qemu.conf sched_core) is the accepted alternative.
    Beyond the catalog row: smt/control "notimplemented" (kernels built without SMT control) also
    passes, as the kernel documents it next to "notsupported"."""
    control = host.cpu.smt.control
    if isinstance(control, Unavailable):
        yield Result.unavailable(control, "smt")
        return
    if control in _SMT_OFF:
        yield Result.passed("smt", f"smt/control={control}")
        return
    settings = host.qemu_conf.settings
    sched_core = settings.get("sched_core") if isinstance(settings, dict) else None
    if isinstance(sched_core, str) and sched_core in _SCHED_CORE_ON:
        yield Result.passed("smt", f"smt/control={control}, but {host.qemu_conf.path} sched_core=\"{sched_core}\" isolates guests per core")
        return
    reports = []
    vulns = host.cpu.vulnerabilities
    if isinstance(vulns, dict):
        reports = [name for name, v in vulns.items() if isinstance(v, str) and "SMT vulnerable" in v]
    active = host.cpu.smt.active
    message = f"smt/control={control}" + (f", smt/active={active}" if isinstance(active, str) else "")
    if reports:
        message += f"; kernel reports \"SMT vulnerable\" for {', '.join(reports)}"
    yield Result.fail("smt", message)


@check("HV-SIDE-004",
    fix="set kvm.nx_huge_pages=auto (options kvm nx_huge_pages=auto in /etc/modprobe.d/), then reload kvm or reboot",
    references=("Linux Documentation/admin-guide/hw-vuln/multihit.rst",),
)
def itlb_multihit(host: HostFacts) -> Iterator[Result]:
    """On affected Intel CPUs a guest can hang the host with a machine check unless KVM splits
    huge pages for executable guest memory (kvm.nx_huge_pages, hw-vuln/multihit.rst)."""
    value = vuln_text(host, "itlb_multihit")
    if isinstance(value, Result):
        yield value
        return
    nx = module_param(host, "kvm", "nx_huge_pages")
    nx_text = f" (kvm.nx_huge_pages={nx})" if isinstance(nx, str) else ""
    if value.startswith("Not affected") or "Mitigation" in value:
        yield Result.passed("itlb_multihit", value + nx_text)
    else:
        yield Result.fail("itlb_multihit", f"{VULN_DIR}/itlb_multihit: {value}{nx_text}")


@check("HV-SIDE-006",
    fix="boot with kvm.mitigate_smt_rsb=1 (or disable SMT), or drop cpu-pm=on from the guests",
    references=("Linux Documentation/admin-guide/hw-vuln/cross-thread-rsb.rst",),
)
def cross_thread_rsb(host: HostFacts) -> Iterator[Result]:
    """On AMD family 17h, a guest allowed to idle its vCPU thread (cpu-pm=on: no HLT exits) can
    read the sibling thread's return predictions unless KVM stuffs the RSB (mitigate_smt_rsb)."""
    info = host.cpu.info
    if isinstance(info, Unavailable):
        yield Result.unavailable(info, "cpu")
        return
    if info.vendor not in ("AuthenticAMD", "HygonGenuine") or info.family != 0x17:
        yield Result.not_applicable(f"CPU {info.vendor} family {info.family}: only AMD family 17h is affected", "cpu")
        return
    control = host.cpu.smt.control
    if isinstance(control, str) and control in ("off", "forceoff", "notsupported"):
        yield Result.passed("smt", f"smt/control={control}: no sibling thread to attack")
        return
    mitigation = module_param(host, "kvm", "mitigate_smt_rsb")
    if isinstance(mitigation, str) and is_enabled(mitigation):
        yield Result.passed("kvm.mitigate_smt_rsb", f"kvm.mitigate_smt_rsb={mitigation}")
        return
    procs = qemu_processes(host)
    if isinstance(procs, Result):
        yield procs
        return
    for proc in procs:
        if proc.cpu_pm:
            yield Result.fail(process_label(proc), "runs with -overcommit cpu-pm=on while kvm.mitigate_smt_rsb is off and SMT is on")
        else:
            yield Result.passed(process_label(proc), "cpu-pm off")


MITIGATION_FEATURES = ("spec-ctrl", "ssbd", "virt-ssbd", "amd-ssbd", "md-clear", "ibpb", "stibp", "arch-capabilities", "flush-l1d",
                       "amd-stibp", "ibrs", "amd-no-ssb", "pschange-mc-no")


@check("HV-SIDE-007",
    fix="remove <feature policy='disable'> for the listed mitigation features from the guest's <cpu>",
    references=("QEMU docs/system/i386/cpu.rst (Important CPU features for Intel/AMD x86 hosts)",),
)
def guest_mitigation_features(host: HostFacts) -> Iterator[Result]:
    """Without spec-ctrl, ssbd, md-clear and friends the guest kernel cannot protect itself (or
    its other processes) from Spectre-class attacks by its own users."""

    def judge(d: Domain) -> list[str]:
        disabled = [n for n, p in d.cpu_features.items() if p in ("disable", "forbid") and n in MITIGATION_FEATURES]
        return [f"disables {', '.join(sorted(disabled))}"] if disabled else []

    yield from each_domain(host, judge)
