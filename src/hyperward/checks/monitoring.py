"""Monitoring and logging of the virtualization stack."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Category, Result, Severity
from ._libvirt import DAEMON_CONFIGS, as_int, daemon_configs, daemon_setting, no_daemon_config


@check("HV-MON-002", Category.MON, Severity.LOW, "libvirt debug logging in production",
    fix="set log_level = 3 (or remove it) and use log_filters such as \"3:remote 4:event 3:util.json 1:qemu\" only while debugging",
    references=("libvirt docs/kbase/debuglogs.rst", "libvirt src/remote/libvirtd.conf.in log_level"),
)
def debug_logging(host: HostFacts) -> Iterator[Result]:
    """Debug logs record every API call with its arguments (XML with disk paths, sometimes secrets
    passed to QEMU) and grow until the disk fills."""
    seen = False
    for name, settings in daemon_configs(host, DAEMON_CONFIGS):
        seen = True
        if isinstance(settings, Result):
            yield settings
            continue
        level = daemon_setting(name, settings, "log_level")
        if as_int(level.value, 3) == 1:
            yield Result.fail(f"{name}:log_level", f"{level.describe()}: debug logging of every API call")
        else:
            yield Result.passed(f"{name}:log_level", level.describe())
    if not seen:
        yield no_daemon_config(host)
