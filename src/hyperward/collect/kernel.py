"""Kernel, CPU and module facts from /proc, /sys, /boot, /lib/modules and boot configuration."""

from __future__ import annotations

import re

from ..facts import (
    VULN_DIR,
    CmdlineSource,
    SourceLine,
    CpuFacts,
    KernelFacts,
    KsmFacts,
    Maybe,
    ModprobeOption,
    ModuleFacts,
    RebootRequired,
    SmtFacts,
)
from ..model import Unavailable, is_missing
from ..parsers.cmdline import grub_token_lines, parse_cmdline, parse_grub_defaults
from ..parsers.config_files import parse_cpuinfo, parse_modprobe
from .fs import RootFS
from .grub import grub_defaults

CMDLINE_LIMIT = 64 * 1024

# The modules and parameters the checks judge: a fixed list keeps the live scan to a few reads.
MODULE_PARAMS: dict[str, tuple[str, ...]] = {
    "kvm": ("nx_huge_pages", "mitigate_smt_rsb"),
    "kvm_intel": ("nested", "vmentry_l1d_flush"),
    "kvm_amd": ("nested",),
    "vfio": ("enable_unsafe_noiommu_mode",),
    "vfio_iommu_type1": ("allow_unsafe_interrupts",),
}
MODPROBE_DIRS = ("/etc/modprobe.d", "/run/modprobe.d", "/usr/local/lib/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")


def collect_cmdlines(fs: RootFS) -> list[CmdlineSource]:
    out: list[CmdlineSource] = []
    running = fs.read_text("/proc/cmdline", CMDLINE_LIMIT)
    out.append(CmdlineSource("/proc/cmdline", True, running if isinstance(running, Unavailable) else parse_cmdline(running)))

    grub = grub_defaults(fs)
    if grub.main_error is not None:
        out.append(CmdlineSource(grub.main_error.path, False, grub.main_error))
    if grub.files:
        origins = {token: SourceLine(*where) for token, where in grub_token_lines(grub.files).items()}
        out.append(CmdlineSource(grub.label, False, parse_grub_defaults(grub.files), origins))

    kernel_cmdline = fs.read_text("/etc/kernel/cmdline", CMDLINE_LIMIT)
    if not is_missing(kernel_cmdline):
        tokens = kernel_cmdline if isinstance(kernel_cmdline, Unavailable) else parse_cmdline(kernel_cmdline)
        written = [] if isinstance(kernel_cmdline, Unavailable) else [
            (number, line) for number, line in enumerate(kernel_cmdline.splitlines(), 1) if line.strip()]
        # kernel-install joins the file into one line; a token's line is certain only when there is one
        origins = ({t: SourceLine("/etc/kernel/cmdline", written[0][0]) for t in tokens}
                   if len(written) == 1 and isinstance(tokens, list) else {})
        out.append(CmdlineSource("/etc/kernel/cmdline", False, tokens, origins))
    return out


_KERNEL_IMAGE = re.compile(r"^(?:vmlinuz|vmlinux|kernel)-(.+)$")


def collect_installed_kernels(fs: RootFS) -> Maybe[list[str]]:
    found: set[str] = set()
    seen_dir = False
    denied: Unavailable | None = None
    modules = fs.listdir("/lib/modules")
    if isinstance(modules, list):
        seen_dir = True
        for name in modules:
            if fs.exists(f"/lib/modules/{name}/modules.dep") or fs.exists(f"/lib/modules/{name}/kernel"):
                found.add(name)
    elif modules.kind == "denied":
        denied = modules
    boot = fs.listdir("/boot")
    if isinstance(boot, list):
        seen_dir = True
        for name in boot:
            match = _KERNEL_IMAGE.match(name)
            if match and not name.endswith((".sig", ".old", ".bak")):
                found.add(match.group(1))
    elif boot.kind == "denied":
        denied = denied or boot
    if found:
        return sorted(found)
    if denied:
        return denied
    reason = "no installed kernels found" if seen_dir else "neither directory exists"
    return Unavailable("/lib/modules, /boot", "missing", reason)


def collect_kernel(fs: RootFS) -> KernelFacts:
    release = fs.read_line("/proc/sys/kernel/osrelease")
    tainted = fs.read_int("/proc/sys/kernel/tainted")

    reboot: Maybe[RebootRequired]
    flag = fs.read_text("/var/run/reboot-required")
    if is_missing(flag):
        reboot = RebootRequired(False, [])
    elif isinstance(flag, Unavailable):
        reboot = flag
    else:
        pkgs = fs.read_text("/var/run/reboot-required.pkgs")
        packages = sorted(set(pkgs.split())) if isinstance(pkgs, str) else []
        reboot = RebootRequired(True, packages)

    return KernelFacts(
        release=release,
        cmdlines=collect_cmdlines(fs),
        tainted=tainted,
        installed=collect_installed_kernels(fs),
        reboot_required=reboot,
    )


def collect_cpu(fs: RootFS) -> CpuFacts:
    names = fs.listdir(VULN_DIR)
    vulns: Maybe[dict[str, Maybe[str]]]
    if isinstance(names, Unavailable):
        vulns = names
    else:
        vulns = {}
        for name in names:
            vulns[name] = fs.read_line(f"{VULN_DIR}/{name}", 4096)
    cpuinfo = fs.read_text("/proc/cpuinfo")
    info = cpuinfo if isinstance(cpuinfo, Unavailable) else parse_cpuinfo(cpuinfo)
    smt = SmtFacts(
        control=fs.read_line("/sys/devices/system/cpu/smt/control", 256),
        active=fs.read_line("/sys/devices/system/cpu/smt/active", 256),
    )
    return CpuFacts(vulnerabilities=vulns, smt=smt, info=info)


def collect_modules(fs: RootFS) -> ModuleFacts:
    loaded: Maybe[dict[str, dict[str, Maybe[str]]]]
    if not fs.exists("/sys/module"):
        loaded = Unavailable("/sys/module", "missing", "not found (no live /sys under this root)")
    else:
        loaded = {}
        for module, params in MODULE_PARAMS.items():
            base = f"/sys/module/{module}"
            if not fs.exists(base):
                continue
            loaded[module] = {p: fs.read_line(f"{base}/parameters/{p}", 256) for p in params}
    options: list[ModprobeOption] = []
    seen_names: set[str] = set()
    for directory in MODPROBE_DIRS:
        names = fs.listdir(directory)
        if isinstance(names, Unavailable):
            continue
        for name in names:
            # modprobe.d(5): a file in an earlier directory overrides one of the same name later.
            if not name.endswith(".conf") or name in seen_names:
                continue
            seen_names.add(name)
            text = fs.read_text(f"{directory}/{name}")
            if isinstance(text, str):
                options.extend(parse_modprobe(text, f"{directory}/{name}"))
    return ModuleFacts(loaded=loaded, options=options)


def collect_ksm(fs: RootFS) -> Maybe[KsmFacts]:
    run = fs.read_int("/sys/kernel/mm/ksm/run")
    if isinstance(run, Unavailable):
        return run
    sharing = fs.read_int("/sys/kernel/mm/ksm/pages_sharing")
    return KsmFacts(run=run, pages_sharing=sharing if isinstance(sharing, int) else None)
