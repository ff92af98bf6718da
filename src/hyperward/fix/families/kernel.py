"""The kernel's configuration for the next boot or module load: tokens removed from
GRUB_CMDLINE_LINUX* (then update-grub and a reboot, which the artifact only names), modprobe.d
options rewritten where they are set (or set in a file of hyperward's), sysctl.d drop-ins."""

from __future__ import annotations

import re

from ..plan import (
    Context,
    Failing,
    Fix,
    GrubCmdline,
    Manual,
    ModprobeOption,
    Needs,
    Sysctl,
    WriteFile,
    fixer,
)

GRUB = "/etc/default/grub"
GRUB_D = "/etc/default/grub.d"
TOKEN = re.compile(r"^[A-Za-z0-9_.,=:-]+$")


def grub_files(context: Context, token: str) -> tuple[str, ...]:
    """The grub default files whose GRUB_CMDLINE_LINUX* lines carry TOKEN."""
    names = [GRUB] + [f"{GRUB_D}/{n}" for n in context.listdir(GRUB_D) if n.endswith(".cfg")]
    found = []
    for path in names:
        text = context.read(path) or ""
        for line in text.splitlines():
            if re.match(r"^\s*(export\s+)?GRUB_CMDLINE_LINUX(_DEFAULT)?=", line) and token in re.split(r"[\s\"']+", line):
                found.append(path)
                break
    return tuple(found)


def for_cmdline(finding: Failing, context: Context) -> Fix | None:
    """RESOURCE 'SOURCE: TOKEN' (HV-VULN-002) or '/proc/cmdline:NAME' (HV-ISO-013)."""
    source, sep, token = finding.resource.partition(": ")
    if not sep and finding.resource.startswith("/proc/cmdline:"):
        name = finding.resource.split(":", 1)[1]
        match = re.search(rf"(?:^|\s){re.escape(name)}=?\S*", finding.message)
        source, token = "/proc/cmdline", match.group(0).strip().split(":")[0] if match else name
    if not token or not TOKEN.match(token):
        return None
    files = grub_files(context, token)
    reboot = Needs("reboot", "the kernel command line changes at the next boot")
    if not files:
        if source == "/proc/cmdline":
            return Fix((Manual(f"{token} is on the running kernel's command line but in no GRUB_CMDLINE_LINUX* of {GRUB} or "
                               f"{GRUB_D}: remove it where the boot loader gets it (/etc/kernel/cmdline, a BLS entry), then reboot"),),
                       (reboot,))
        return None
    return Fix((GrubCmdline(files, token),), (Needs("command", "update-grub"), reboot))


@fixer("HV-VULN-002")
def cmdline(finding: Failing, context: Context) -> Fix | None:
    return for_cmdline(finding, context)


def _modprobe_files(context: Context, module: str, param: str) -> tuple[str, ...]:
    from ...parsers.config_files import parse_modprobe

    out = []
    for name in context.listdir("/etc/modprobe.d"):
        if not name.endswith(".conf"):
            continue
        path = f"/etc/modprobe.d/{name}"
        options = parse_modprobe(context.read(path) or "", path)
        if any(o.module.replace("-", "_") == module and o.param == param for o in options):
            out.append(path)
    return tuple(out)


MODULE_PARAMS = {
    "HV-ISO-011": ("vfio_iommu_type1", "allow_unsafe_interrupts", "0"),
    "HV-ISO-012": ("vfio", "enable_unsafe_noiommu_mode", "0"),
    "HV-SIDE-004": ("kvm", "nx_huge_pages", "auto"),
}


@fixer("HV-NEST-001", "HV-ISO-011", "HV-ISO-012", "HV-SIDE-004")
def module_option(finding: Failing, context: Context) -> Fix | None:
    if finding.check_id == "HV-NEST-001":
        module = finding.resource.split(" ", 1)[0]
        if module not in ("kvm_intel", "kvm_amd"):
            return None
        module, param, value = module, "nested", "0"
    elif finding.check_id in MODULE_PARAMS:
        module, param, value = MODULE_PARAMS[finding.check_id]
        if finding.check_id != "HV-SIDE-004" and finding.resource != f"{module}.{param}":
            return Fix((Manual("a VFIO group without IOMMU protection exists: stop its user and unbind the device; "
                               "the modprobe.d fix of vfio.enable_unsafe_noiommu_mode keeps it from coming back"),),
                       (Needs("reboot", "or reload vfio with no device bound"),))
    else:
        return None
    files = _modprobe_files(context, module, param)
    return Fix((ModprobeOption(module, param, value, files),),
               (Needs("reboot", f"or reload {module} with no guest running (modprobe -r {module}; modprobe {module})"),))


@fixer("HV-FW-003")
def bridge_netfilter(finding: Failing, context: Context) -> Fix | None:
    if not finding.resource.startswith("net.bridge.bridge-nf-call-"):
        return None
    return Fix((WriteFile("/etc/modules-load.d/hyperward-br_netfilter.conf", "br_netfilter\n"),
                Sysctl(finding.resource, "1")),
               (Needs("command", "modprobe br_netfilter && sysctl --system"),))
