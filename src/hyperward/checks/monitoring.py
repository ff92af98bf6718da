"""Monitoring and logging of the virtualization stack."""

from __future__ import annotations

import datetime
from collections.abc import Iterator

from ..engine import check
from ..facts import HostFacts
from ..model import Result
from ._libvirt import DAEMON_CONFIGS, NOT_INSTALLED, as_int, daemon_configs, daemon_setting, no_daemon_config

MONITOR_STALE_S = 120.0
MONITOR_UNIT = "hyperward-monitor.service"


@check("HV-MON-002",
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


@check("HV-MON-001",
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


@check("HV-MON-003",
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


@check("HV-MON-005",
    fix="run hyperward monitor as a service (systemctl enable --now hyperward-monitor, unit in contrib/), or a libvirt exporter scraped by Prometheus with alerting rules",
    references=("hyperward README: hyperward monitor", "libvirt virConnectGetAllDomainStats"),
)
def guest_activity_monitoring(host: HostFacts) -> Iterator[Result]:
    """A guest that starts mining, scanning or exfiltrating looks normal from every configuration
    file: only its CPU, traffic and disk rates show it, and only while someone watches them."""
    if not host.libvirt.installed:
        yield Result.not_applicable(NOT_INSTALLED)
        return
    gm = host.monitoring.guest_monitor
    if gm is None:
        yield Result.error("this snapshot predates guest-monitor facts (collect again)")
        return
    if gm.exporters:
        yield Result.passed("exporter", f"{', '.join(gm.exporters)} present")
        return
    unit = f"; {MONITOR_UNIT} is enabled" if gm.unit_enabled else ""
    if not gm.present:
        yield Result.fail("hyperward monitor", f"no hyperward monitor database at {gm.database} and no libvirt exporter{unit}: nobody watches what the guests do")
        return
    if gm.error:
        yield Result.error(f"{gm.database}: {gm.error}")
        return
    if gm.last_sample is None:
        yield Result.fail("hyperward monitor", f"{gm.database} holds no sample yet{unit}")
        return
    age = (datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(gm.last_sample)).total_seconds()
    allowed = max(3 * (gm.interval_s or 10.0), MONITOR_STALE_S)
    if gm.pid_running is False:
        yield Result.fail("hyperward monitor", f"not running (pid {gm.pid or 'none'} in {gm.database} is gone); last sample {gm.last_sample}{unit}")
    elif age > allowed:
        yield Result.fail("hyperward monitor", f"last sample {gm.last_sample}, {age / 60:.0f} min before this scan{unit}")
    elif gm.connected is False:
        yield Result.fail("hyperward monitor", f"running but not connected to libvirt (last sample {gm.last_sample})")
    else:
        yield Result.passed("hyperward monitor", f"pid {gm.pid}, last sample {age:.0f} s ago, every {gm.interval_s:g} s")
