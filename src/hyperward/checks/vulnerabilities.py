"""Vulnerability exposure the host configures for itself: kernel command-line off-switches."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from ..engine import check
from ..facts import Domain, HostFacts
from ._libvirt import as_int, each_domain, qemu_settings
from ..model import Details, Result, Severity, Unavailable
from ..parsers.cmdline import split_param

_OFF = frozenset({"off"})
ANY = None

# name -> (values that weaken it, or ANY for a bare flag / any value; what it turns off)
WEAKENING: dict[str, tuple[frozenset[str] | None, str]] = {
    "nospectre_v1": (ANY, "Spectre v1 (bounds check bypass) mitigations"),
    "nospectre_v2": (ANY, "Spectre v2 (branch target injection) mitigations, guest-to-host included"),
    "spectre_v2": (_OFF, "Spectre v2 (branch target injection) mitigations, guest-to-host included"),
    "spectre_v2_user": (_OFF, "STIBP/IBPB between processes, QEMU processes of different guests included"),
    "spectre_bhi": (_OFF, "the Branch History Injection mitigation"),
    "nospec_store_bypass_disable": (ANY, "the Speculative Store Bypass mitigation"),
    "spec_store_bypass_disable": (_OFF, "the Speculative Store Bypass mitigation"),
    "l1tf": (_OFF, "the L1TF mitigation (no L1D flush on VM entry: guests can read host L1D)"),
    "mds": (_OFF, "MDS buffer clearing on kernel exit and VM entry"),
    "tsx_async_abort": (_OFF, "the TSX Async Abort mitigation"),
    "mmio_stale_data": (_OFF, "the MMIO Stale Data mitigation"),
    "retbleed": (_OFF, "the Retbleed mitigation"),
    "spec_rstack_overflow": (_OFF, "the SRSO (Inception) mitigation"),
    "gather_data_sampling": (_OFF, "the Gather Data Sampling (Downfall) mitigation"),
    "reg_file_data_sampling": (_OFF, "the Register File Data Sampling mitigation"),
    "vmscape": (_OFF, "the VMSCAPE mitigation (IBPB before returning to QEMU after a VM exit)"),
    "srbds": (_OFF, "the Special Register Buffer Data Sampling mitigation"),
    "indirect_target_selection": (_OFF, "the Indirect Target Selection mitigation"),
    "tsa": (_OFF, "the Transient Scheduler Attacks mitigation"),
    "nopti": (ANY, "kernel page-table isolation (Meltdown)"),
    "pti": (_OFF, "kernel page-table isolation (Meltdown)"),
    "kvm.nx_huge_pages": (frozenset({"off", "never"}), "the iTLB multihit mitigation: a guest can machine-check the host"),
    "kvm_intel.vmentry_l1d_flush": (frozenset({"never"}), "L1D flushing on VM entry (L1TF guest-to-host leak)"),
    "intel_iommu": (_OFF, "the Intel IOMMU: passed-through devices can DMA into all host memory"),
    "amd_iommu": (_OFF, "the AMD IOMMU: passed-through devices can DMA into all host memory"),
    "iommu": (_OFF, "the IOMMU: passed-through devices can DMA into all host memory"),
    "pcie_acs_override": (ANY, "PCIe ACS isolation (IOMMU groups are split although devices can still reach each other)"),
}

# Documentation/admin-guide/hw-vuln/attack_vector_controls.rst
ATTACK_VECTORS: dict[str, str] = {
    "no_guest_host": "guest-to-host mitigations (BHI, ITS, GDS, L1TF, MDS, MMIO, Retbleed, RFDS, Spectre v2, SRBDS, SRSO, TAA, TSA): a guest can attack the host kernel",
    "no_guest_guest": "guest-to-guest mitigations (GDS, MDS, MMIO, RFDS, Spectre v2 user, SRBDS, TAA, TSA): a guest can read another guest's data",
    "no_cross_thread": "cross-thread mitigations: a guest can attack whatever runs on its SMT sibling",
    "no_user_kernel": "user-to-kernel mitigations: host processes, QEMU included, can attack the host kernel",
    "no_user_user": "user-to-user mitigations: host processes, QEMU processes of different guests included, can attack each other",
}


def weakening_effect(token: str) -> str | None:
    """What `token` turns off, or None if it does not weaken isolation."""
    name, value = split_param(token)
    if name == "mitigations":
        items = [v.strip().lower() for v in (value or "").split(",")]
        if "off" in items:
            return "turns off every CPU vulnerability mitigation (all attack vectors)"
        effects = [f"{v} turns off {ATTACK_VECTORS[v]}" for v in items if v in ATTACK_VECTORS]
        return "; ".join(effects) or None
    if name not in WEAKENING:
        return None
    values, effect = WEAKENING[name]
    if values is ANY or (value is not None and value.strip().lower() in values):
        return f"turns off {effect}"
    return None


def _fix(source: str) -> str:
    if source.startswith("/etc/default/grub"):
        return "remove it from GRUB_CMDLINE_LINUX* in /etc/default/grub (and grub.d), run update-grub, reboot"
    if source == "/etc/kernel/cmdline":
        return "remove it from /etc/kernel/cmdline, regenerate boot entries (kernel-install / proxmox-boot-tool refresh), reboot"
    return "remove it from the boot loader configuration that produced this command line, then reboot"


@check("HV-VULN-002",
    fix="remove the parameter from the boot loader configuration (/etc/default/grub, /etc/kernel/cmdline), regenerate it, reboot",
    references=("Linux Documentation/admin-guide/hw-vuln/attack_vector_controls.rst", "Linux Documentation/admin-guide/kernel-parameters.txt"),
)
def cmdline_weakens_isolation(host: HostFacts) -> Iterator[Result]:
    """Each of these parameters switches off a CPU-bug mitigation or the IOMMU for the whole host,
    so no guest configuration can win it back. The running command line (/proc/cmdline) and the
    one configured for the next boot (/etc/default/grub, /etc/kernel/cmdline) are judged apart:
    a fix that is configured but not booted yet still fails for the running kernel.
    Beyond the catalog row: nospectre_v1, spectre_v2_user, spectre_bhi, spec_store_bypass_disable,
    srbds, indirect_target_selection, tsa and pti=off, and the attack-vector forms no_cross_thread,
    no_user_kernel and no_user_user (attack_vector_controls.rst)."""
    for source in host.kernel.cmdlines:
        if isinstance(source.tokens, Unavailable):
            yield Result.unavailable(source.tokens, source.path)
            continue
        found = False
        for token in source.tokens:
            effect = weakening_effect(token)
            if effect:
                found = True
                origin = source.lines.get(token)
                where: Details = {"file": origin.file, "line": origin.line, "key": token.partition("=")[0]} if origin else {}
                yield Result.fail(f"{source.path}: {token}", effect, remediation=_fix(source.path), details=where)
        if not found:
            yield Result.passed(source.path, "no weakening parameters")


SUPPORTED_MACHINES = ("pc", "q35", "microvm", "virt", "pseries", "s390-ccw-virtio")


@check("HV-VULN-003",
    fix="set <driver name='qemu' type='qcow2'/> (or raw) on every disk, and rebase images whose backing files live outside the storage pools",
    references=("libvirt docs/kbase/backing_chains.rst", "CVE-2010-2237/2238 (format probing)"),
)
def backing_chains(host: HostFacts) -> Iterator[Result]:
    """A guest that writes a qcow2 header naming /etc/shadow as backing file into a probed raw image
    gets the host file on next start. libvirt stopped probing in 0.8.3 (an unspecified format is
    raw: the primary source, which wins over the catalog row), so a missing type is no finding
    here; qemu.conf's allow_disk_format_probing and backing files outside the pools are."""
    settings = qemu_settings(host)
    if isinstance(settings, dict) and "allow_disk_format_probing" in settings and as_int(settings["allow_disk_format_probing"]):
        yield Result.fail("qemu.conf:allow_disk_format_probing", "allow_disk_format_probing = 1: libvirt probes image formats")
    pools = tuple(p.rstrip("/") + "/" for p in host.libvirt.pools)

    def judge(d: Domain) -> tuple[list[str], Severity | None, list[str]]:
        problems: list[str] = []
        deciding = []
        for number, disk in enumerate(d.disks, 1):
            before = len(problems)
            if disk.driver_type in ("auto",):
                problems.append(f"{disk.target or disk.source}: driver type 'auto' (format probing)")
            for backing in disk.backing:
                if backing.startswith("/") and not backing.startswith(pools):
                    problems.append(f"{disk.target or disk.source}: backing file {backing} outside the storage pools")
            if len(problems) > before:
                disk_at = f"devices/disk[{number}]"
                inner = "driver" if disk.driver_type == "auto" else "backingStore"
                deciding += [f"{disk_at}/{inner}", disk_at]
        return problems, None, deciding

    yield from each_domain(host, judge)


@check("HV-VULN-005",
    fix="run the guest with <domain type='kvm'> and a versioned pc-q35-*/pc-i440fx-* (or virt-*, pseries-*, s390-ccw-virtio-*) machine type",
    references=("QEMU docs/system/security.rst (Virtualization use case)",),
)
def security_support(host: HostFacts) -> Iterator[Result]:
    """QEMU treats only KVM-accelerated guests on the listed machine types as a security
    boundary; TCG (type='qemu') and other machines get no security fixes for guest escapes."""

    def judge(d: Domain) -> list[str]:
        problems = []
        if d.type != "kvm":
            problems.append(f"domain type {d.type or 'unset'} (TCG emulation is not a security boundary)")
        machine = d.machine or ""
        if machine and not any(machine == m or machine.startswith(m + "-") for m in SUPPORTED_MACHINES):
            problems.append(f"machine type {machine} is outside QEMU's security support")
        return problems

    yield from each_domain(host, judge)


VIRT_SOURCES = ("qemu", "libvirt", "linux", "xen", "edk2", "swtpm", "libtpms", "seabios", "ipxe", "intel-microcode",
                "amd64-microcode", "spice", "virglrenderer", "libslirp", "dnsmasq", "openssh", "openssl", "gnutls28",
                "pve-qemu-kvm", "proxmox-kernel", "pve-kernel", "qemu-server", "pve-manager", "pve-container", "lxc-pve")


@check("HV-VULN-001",
    fix="apt-get update && apt-get upgrade for the listed packages; restart what runs them (HV-PATCH-002, HV-PATCH-003)",
    references=("OSV schema (ossf.github.io/osv-schema)", "Debian security tracker (security-tracker.debian.org)"),
)
def known_cves(host: HostFacts) -> Iterator[Result]:
    """Installed package versions matched against an offline advisory database (OSV, Debian security
    tracker) by source package and dpkg version order. A CVE with a fix available fails (critical
    when the fix exists and CVSS >= 9); a CVE with no fix yet is listed as info for the
    virtualization stack only. Advisories name source packages (qemu), results name both."""
    facts = host.patching.vulnerabilities
    if facts is None:
        yield Result.not_applicable("no package inventory to match (no dpkg status)")
        return
    if isinstance(facts, Unavailable):
        if facts.kind == "missing" and "no advisory database" in facts.reason:
            yield Result.error(facts.reason, "advisory database")
        else:
            yield Result.unavailable(facts, "advisory database")
        return
    if facts.updated_at:
        delta = datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(facts.updated_at)
        if delta > datetime.timedelta(days=facts.max_age_days):  # 3 days and an hour is past a 3-day policy
            yield Result.fail("advisory database", f"{facts.database} last updated {delta.days} days ago ({facts.updated_at}): newer CVEs are missing",
                              severity=Severity.MEDIUM, remediation="hyperward db update (schedule it daily)")
    open_with_fix = 0
    for m in facts.matches:
        score = f", CVSS {m.cvss:.1f}" if m.cvss is not None else ""
        label = f"{m.severity or 'severity unknown'}{score}"
        binaries = m.package.replace(",", ", ")
        resource = f"{m.cve} {m.source}"
        details: Details = {"cve": m.cve, "package": m.source, "binaries": [b.strip() for b in m.package.split(",") if b.strip()],
                            "source": m.source, "installed": m.installed, "fixed": m.fixed, "advisory": m.advisory,
                            "database": m.database, "cvss": m.cvss, "severity": m.severity, "fixed_by_pending": m.fixed_by_pending}
        if m.fixed is not None:
            open_with_fix += 1
            pending = "the pending update fixes it" if m.fixed_by_pending else "no pending update fixes it yet (apt-get update?)"
            severity = Severity.CRITICAL if (m.cvss or 0) >= 9 else Severity.HIGH
            yield Result.fail(resource, f"{binaries} {m.installed}, fixed in {m.fixed} ({label}; {m.advisory} in {m.database}); {pending}",
                              severity=severity, details=details)
        elif m.source in VIRT_SOURCES and m.severity != "unimportant":
            yield Result.fail(resource, f"{binaries} {m.installed}: no fix yet ({label}; {m.advisory})", severity=Severity.INFO,
                              remediation="watch the advisory; mitigate by configuration until a fix is released", details=details)
    if not open_with_fix:
        yield Result.passed("packages", f"no known CVE with a fix available ({facts.advisories} advisories for {facts.release}, "
                                        f"database updated {facts.updated_at})")


SCAN_MAX_AGE_DAYS = 7


@check("HV-SCAN-001",
    fix="scan weekly: `hyperward db update && hyperward scan --record` for the host, OpenVAS/Greenbone or Nessus for the guests, and list the report files under [history] reports",
    references=("Greenbone report export", "Nessus v2 file format"),
)
def recent_scans(host: HostFacts) -> Iterator[Result]:
    """A vulnerability that nobody looks for is never fixed: host and guests need a scan at least
    weekly. Evidence: hyperward's recorded scans with an advisory database, and the scanners' reports;
    none of either is a failure, not "not applicable": a scan nobody can see is no evidence. The
    age is the time elapsed: a scan 7 days and 20 hours old is not "within 7 days" (whole days
    passed it until issue 22's mutation run)."""
    scans = host.scans
    if scans is None:
        yield Result.fail("host", "no vulnerability scan hyperward can see: no scan history (hyperward scan --record) and no "
                                  "OpenVAS/Nessus report files configured ([history] reports in /etc/hyperward/config.toml)")
        return
    for problem in scans.problems:
        yield Result.unavailable(problem, problem.path)
    now = datetime.datetime.fromisoformat(host.meta.collected_at)

    def newest(names: list[str]) -> tuple[str, str] | None:
        wanted = {n.lower() for n in names}
        hits = [(r.time, r.source) for r in scans.records if wanted & {t.lower() for t in r.targets}]
        return max(hits) if hits else None

    targets = [("host", scans.host_names)] + list(scans.guest_names.items())
    for resource, names in targets:
        found = newest(names)
        if found is None:
            yield Result.fail(resource, f"no vulnerability scan on record for {', '.join(names[:3])}")
            continue
        age = now - datetime.datetime.fromisoformat(found[0])
        if age > datetime.timedelta(days=SCAN_MAX_AGE_DAYS):
            yield Result.fail(resource, f"last scanned {found[0]} ({age.days} days ago) by {found[1]}")
        else:
            yield Result.passed(resource, f"scanned {found[0]} by {found[1]}")
