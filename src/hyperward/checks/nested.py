"""Nested virtualization on the host."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Result, Severity, Unavailable
from ..parsers.cmdline import split_param
from ._common import is_enabled, module_param

NESTED_MODULES = ("kvm_intel", "kvm_amd")


@check("HV-NEST-001",
    fix="echo 'options kvm_intel nested=0' (kvm_amd on AMD) > /etc/modprobe.d/hyperward-nested.conf, then reload the module with no guests running or reboot",
    references=("Linux Documentation/virt/kvm/x86/running-nested-guests.rst",),
    profile_severity={"single-tenant": Severity.LOW},
)
def host_nested_enabled(host: HostFacts) -> Iterator[Result]:
    """Nested VMX/SVM exposes L0's nested-virtualization code, a large and bug-prone surface, to
    every guest given vmx/svm. Judged on the loaded module's parameter and, for the next load, on
    modprobe.d options and configured kernel command lines."""
    configured = _configured(host)
    yielded = False
    for module in NESTED_MODULES:
        loaded_value = module_param(host, module, "nested")
        if isinstance(loaded_value, Unavailable):
            yield Result.unavailable(loaded_value, module)
            yielded = True
        elif isinstance(loaded_value, str):
            value = loaded_value
            yielded = True
            note = ""
            if module in configured and is_enabled(configured[module][0]) != is_enabled(value):
                note = f"; {configured[module][1]} sets nested={configured[module][0]} for the next module load"
            if is_enabled(value):
                yield Result.fail(module, f"{module}.nested={value} (loaded){note}")
            else:
                yield Result.passed(module, f"{module}.nested={value} (loaded){note}")
        elif module in configured:
            yielded = True
            setting, path = configured[module]
            if is_enabled(setting):
                yield Result.fail(f"{module} ({path})", f"{path} sets {module} nested={setting}")
            else:
                yield Result.passed(f"{module} ({path})", f"{path} sets {module} nested={setting}")
    if not yielded:
        yield Result.not_applicable(_unknown_reason(host))


def _configured(host: HostFacts) -> dict[str, tuple[str, str]]:
    """module -> (nested value, where) for the next module load: modprobe.d options, then the
    configured (not running) kernel command lines, which override them."""
    configured: dict[str, tuple[str, str]] = {}
    for opt in host.modules.options:
        if opt.module in NESTED_MODULES and opt.param == "nested":
            configured[opt.module] = (opt.value, opt.file)
    for source in host.kernel.cmdlines:
        if source.running or isinstance(source.tokens, Unavailable):
            continue
        for token in source.tokens:
            name, value = split_param(token)
            module, _, param = name.partition(".")
            if module in NESTED_MODULES and param == "nested" and value is not None:
                configured[module] = (value, source.path)
    return configured


def _unknown_reason(host: HostFacts) -> str:
    loaded = host.modules.loaded
    reason = loaded.describe() if isinstance(loaded, Unavailable) else "kvm_intel and kvm_amd are not loaded"
    return f"{reason}; no nested option in modprobe.d or the boot configuration"


def _host_nested(host: HostFacts) -> bool | str:
    """Whether nested is on, as HV-NEST-001 judges it, or why that is unknown."""
    configured = _configured(host)
    states: list[bool] = []
    unknown: list[str] = []
    for module in NESTED_MODULES:
        value = module_param(host, module, "nested")
        if isinstance(value, str):
            states.append(is_enabled(value))
        elif isinstance(value, Unavailable):
            unknown.append(value.describe())
        elif module in configured:
            states.append(is_enabled(configured[module][0]))
    if any(states):
        return True
    if states:
        return False
    return "; ".join(unknown) if unknown else _unknown_reason(host)
