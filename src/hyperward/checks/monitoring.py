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


TIME_DAEMONS = ("chronyd", "systemd-timesyn", "ntpd", "ntpsec", "openntpd")
TIME_UNITS = ("chrony.service", "chronyd.service", "systemd-timesyncd.service", "ntp.service", "ntpsec.service", "openntpd.service")
TIME_ERROR = 5


@check("HV-MON-001", Category.MON, Severity.MEDIUM, "Logs not persisted or forwarded",
    fix="forward logs off the host (rsyslog '*.* @@loghost:6514' with TLS, or systemd-journal-upload) and keep the journal persistent (Storage=persistent)",
    references=("journald.conf(5)", "rsyslog omfwd"),
)
def log_forwarding(host: HostFacts) -> Iterator[Result]:
    """An intruder with root on the hypervisor deletes local logs first: only copies on another host survive."""
    logs = host.monitoring.logs
    if logs.journald_storage in ("volatile", "none") or (logs.journald_storage == "auto" and not logs.journal_dir):
        yield Result.fail("journald", f"Storage={logs.journald_storage}{' and no /var/log/journal' if logs.journald_storage == 'auto' else ''}: the journal is lost at reboot")
    else:
        yield Result.passed("journald", f"Storage={logs.journald_storage}")
    if logs.forwarding:
        yield Result.passed("forwarding", "; ".join(logs.forwarding))
    else:
        yield Result.fail("forwarding", "no log forwarding (rsyslog omfwd/@@, systemd-journal-upload, or a log agent): logs stay on the host")


@check("HV-MON-003", Category.MON, Severity.MEDIUM, "Time not synchronized",
    fix="apt install chrony (or enable systemd-timesyncd) with reachable NTP servers",
    references=("adjtimex(2)", "chronyd(8)"),
)
def time_sync(host: HostFacts) -> Iterator[Result]:
    """Logs, TLS certificates, Kerberos and TOTP codes all rely on the clock; guests take theirs from the host."""
    services = host.monitoring.services
    running = services.running
    daemons = [d for d in TIME_DAEMONS if isinstance(running, list) and d in running]
    enabled = [u for u in TIME_UNITS if u in services.enabled]
    if isinstance(running, list) and not daemons:
        yield Result.fail("time daemon", "no chronyd, systemd-timesyncd or ntpd running")
    elif not isinstance(running, list) and not enabled:
        yield Result.fail("time daemon", "no chrony, systemd-timesyncd or ntp service enabled")
    else:
        yield Result.passed("time daemon", ", ".join(daemons or enabled))
    state = host.monitoring.time_sync
    if state is not None:
        if state == TIME_ERROR:
            yield Result.fail("kernel clock", "adjtimex reports TIME_ERROR: the clock is not synchronized")
        else:
            yield Result.passed("kernel clock", f"adjtimex state {state} (synchronized)")
