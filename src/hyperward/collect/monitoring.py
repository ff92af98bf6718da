"""Host intrusion detection (AIDE, auditd, Suricata/Snort/Zeek, Wazuh/OSSEC, Falco), log
persistence and forwarding, time synchronisation, and whether guest activity is monitored."""

from __future__ import annotations

import ctypes
import datetime
import os
import re
import sqlite3

from ..facts import AideFacts, AuditWatch, GuestMonitorFacts, IdsTool, LogFacts, Maybe, MonitoringFacts, ServiceFacts
from ..model import Unavailable
from ..parsers.aide import AideSelection, _hazard, _posix
from .fs import RootFS

AIDE_REQUIRED = ("/etc/libvirt", "/usr/bin/qemu-system-x86_64", "/usr/sbin/libvirtd", "/boot")


def _iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="seconds")


def collect_services(fs: RootFS) -> ServiceFacts:
    running: Maybe[list[str]]
    if fs.live:
        names = set()
        listing = fs.listdir("/proc")
        for pid in listing if isinstance(listing, list) else []:
            if pid.isdigit():
                comm = fs.read_line(f"/proc/{pid}/comm", 64)
                if isinstance(comm, str):
                    names.add(comm)
        running = sorted(names)
    else:
        running = Unavailable("/proc", "missing", "offline root: no process table")
    enabled: set[str] = set()
    listing = fs.listdir("/etc/systemd/system")
    for entry in listing if isinstance(listing, list) else []:
        if entry.endswith(".wants"):
            units = fs.listdir(f"/etc/systemd/system/{entry}")
            enabled.update(units if isinstance(units, list) else [])
    return ServiceFacts(running, sorted(enabled))


def _aide_rules(fs: RootFS, text: str, rules: list[tuple[str, str]], defines: dict[str, str], depth: int = 0) -> None:
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"@@define\s+(\S+)\s*(.*)", line)
        if match:
            defines[match.group(1)] = match.group(2).strip()
            continue
        match = re.match(r"@@x?_?include\s+(\S+)(?:\s+(\S+))?", line)
        if match and depth < 8:
            target, pattern = match.group(1), match.group(2)
            listing = fs.listdir(target)
            if isinstance(listing, list):
                names = pattern.strip("^$") if pattern is not None else None
                problem = _hazard(_posix(names)) if names is not None else None
                if names is not None and problem is None:
                    try:
                        selector = re.compile(_posix(names))
                    except re.error:
                        problem = "not a valid regular expression"
                if problem is not None:
                    # The included files' rules are unknown: any of them could select or exclude anything.
                    rules.append(("?", f"{line[:200]}\n{problem}"))
                    continue
                for name in listing:
                    if names is None or selector.fullmatch(name):
                        sub = fs.read_text(f"{target}/{name}", 1024 * 1024)
                        if isinstance(sub, str):
                            _aide_rules(fs, sub, rules, defines, depth + 1)
            else:
                sub = fs.read_text(target, 1024 * 1024)
                if isinstance(sub, str):
                    _aide_rules(fs, sub, rules, defines, depth + 1)
            continue
        if line[0] in "/!=":
            for _ in range(8):  # a define may name another (Debian: RUNSYSD = @@{RUN}/systemd)
                before = line
                for name, value in defines.items():
                    line = line.replace("@@{" + name + "}", value)
                if line == before or "@@{" not in line:
                    break
            kind = line[0]
            pattern = line[1:] if kind in "!=" else line
            rules.append((kind, pattern.split()[0] if pattern.split() else ""))


def collect_aide(fs: RootFS, services: ServiceFacts) -> AideFacts | None:
    path = "/etc/aide/aide.conf"
    text = fs.read_text(path, 1024 * 1024)
    if isinstance(text, Unavailable):
        return None
    rules: list[tuple[str, str]] = []
    defines: dict[str, str] = {"ETC": "etc", "BOOT": "boot", "RUN": "run", "VAR": "var"}
    _aide_rules(fs, text, rules, defines)
    database_path = "/var/lib/aide/aide.db"
    match = re.search(r"^database_in\s*=\s*file:(\S+)", text, re.M)
    if match:
        database_path = match.group(1)
    database: Maybe[str] = Unavailable(database_path, "missing", "no AIDE database (aideinit never ran)")
    for candidate in (database_path, database_path + ".gz"):
        st = fs.stat(candidate)
        if not isinstance(st, Unavailable):
            database = _iso(st.st_mtime)
            break
        if st.kind != "missing":
            database = st
    periodic = "dailyaidecheck.timer" in services.enabled or fs.exists("/etc/cron.daily/aide")
    log = fs.stat("/var/log/aide/aide.log")
    last = None if isinstance(log, Unavailable) else _iso(log.st_mtime)
    selection = AideSelection(rules)
    coverage = {p: selection.covers(p) for p in AIDE_REQUIRED}
    unknown = [f"{rule}: {why}" for rule, why in selection.unknown.items()]
    return AideFacts(path, coverage, database, periodic, last, unknown)


def collect_audit_watches(fs: RootFS) -> Maybe[list[AuditWatch]]:
    files = []
    listing = fs.listdir("/etc/audit/rules.d")
    if isinstance(listing, list):
        files += [f"/etc/audit/rules.d/{n}" for n in listing if n.endswith(".rules")]
    files.append("/etc/audit/audit.rules")
    watches: list[AuditWatch] = []
    found = False
    for path in files:
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, Unavailable):
            if text.kind != "missing":
                return text
            continue
        found = True
        for number, line in enumerate(text.splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if "-w" in words:
                target = words[words.index("-w") + 1] if words.index("-w") + 1 < len(words) else ""
                perms = words[words.index("-p") + 1] if "-p" in words and words.index("-p") + 1 < len(words) else "rwxa"
                watches.append(AuditWatch(target, perms, path, number))
            elif "dir=" in line or "path=" in line:
                match = re.search(r"-F\s+(?:dir|path)=(\S+)", line)
                perm = re.search(r"-F\s+perm=(\S+)", line)
                if match:
                    watches.append(AuditWatch(match.group(1), perm.group(1) if perm else "rwxa", path, number))
    return watches if found else Unavailable("/etc/audit/rules.d", "missing", "no audit rules (auditd not installed)")


def _yaml_interfaces(text: str) -> list[str]:
    try:
        import yaml

        doc = yaml.safe_load(text)
    except Exception:
        return re.findall(r"^\s*-\s*interface:\s*(\S+)", text, re.M)
    out = []
    for key in ("af-packet", "pcap", "af-xdp"):
        for entry in (doc or {}).get(key) or []:
            if isinstance(entry, dict) and entry.get("interface") not in (None, "default"):
                out.append(str(entry["interface"]))
    return out


def collect_ids_tools(fs: RootFS) -> list[IdsTool]:
    tools = []
    text = fs.read_text("/etc/suricata/suricata.yaml", 8 * 1024 * 1024)
    if isinstance(text, str):
        interfaces = _yaml_interfaces(text)
        default = fs.read_text("/etc/default/suricata", 64 * 1024)
        if isinstance(default, str):
            match = re.search(r'^IFACE=["\']?([^"\'\s]+)', default, re.M)
            if match:
                interfaces.append(match.group(1))
        newest = None
        for path in ("/var/lib/suricata/rules/suricata.rules", "/etc/suricata/rules"):
            st = fs.stat(path)
            if not isinstance(st, Unavailable):
                newest = max(newest or 0, st.st_mtime)
        tools.append(IdsTool("suricata", sorted(set(interfaces)), _iso(newest) if newest else None, "/etc/suricata/suricata.yaml"))
    text = fs.read_text("/etc/snort/snort.debian.conf", 256 * 1024)
    if isinstance(text, str):
        match = re.search(r'^DEBIAN_SNORT_INTERFACE=["\']?([^"\']*)', text, re.M)
        st = fs.stat("/etc/snort/rules")
        tools.append(IdsTool("snort", (match.group(1).split() if match else []), None if isinstance(st, Unavailable) else _iso(st.st_mtime),
                             "/etc/snort/snort.debian.conf"))
    for name, config in (("zeek", "/etc/zeek/node.cfg"), ("wazuh-agent", "/var/ossec/etc/ossec.conf"), ("falco", "/etc/falco/falco.yaml")):
        if fs.exists(config):
            text = fs.read_text(config, 256 * 1024) if name == "zeek" else ""
            interfaces = re.findall(r"^interface=(\S+)", text, re.M) if isinstance(text, str) else []
            tools.append(IdsTool(name, interfaces, None, config))
    return tools


def _conf_dir(fs: RootFS, main: str, directory: str, suffix: str = ".conf") -> list[str]:
    listing = fs.listdir(directory)
    return [main] + ([f"{directory}/{n}" for n in listing if n.endswith(suffix)] if isinstance(listing, list) else [])


_RSYSLOG_LEGACY = re.compile(r"^\S+\s+(@@?)(\(\w+\))?([\w.\-\[\]:]+)")
_RSYSLOG_ACTION = re.compile(r'type\s*=\s*"(omfwd|omrelp)".*?target\s*=\s*"([^"]+)"', re.S)


def collect_logs(fs: RootFS) -> LogFacts:
    storage = "auto"
    for path in _conf_dir(fs, "/etc/systemd/journald.conf", "/etc/systemd/journald.conf.d"):
        text = fs.read_text(path, 256 * 1024)
        if isinstance(text, str):
            found = re.findall(r"^\s*Storage\s*=\s*(\w+)", text, re.M)
            if found:
                storage = found[-1].lower()
    forwarding: list[str] = []
    for path in _conf_dir(fs, "/etc/rsyslog.conf", "/etc/rsyslog.d"):
        text = fs.read_text(path, 1024 * 1024)
        if not isinstance(text, str):
            continue
        body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        for line in body.splitlines():
            match = _RSYSLOG_LEGACY.match(line.strip())
            if match:
                forwarding.append(f"rsyslog {'TCP' if match.group(1) == '@@' else 'UDP'} to {match.group(3)} ({path})")
        for kind, target in _RSYSLOG_ACTION.findall(body):
            forwarding.append(f"rsyslog {kind} to {target} ({path})")
    upload = fs.read_text("/etc/systemd/journal-upload.conf", 64 * 1024)
    if isinstance(upload, str) and re.search(r"^\s*URL\s*=\s*\S+", upload, re.M):
        forwarding.append("systemd-journal-upload (/etc/systemd/journal-upload.conf)")
    for agent, config in (("vector", "/etc/vector/vector.yaml"), ("fluent-bit", "/etc/fluent-bit/fluent-bit.conf"),
                          ("filebeat", "/etc/filebeat/filebeat.yml"), ("wazuh-agent", "/var/ossec/etc/ossec.conf")):
        if fs.exists(config):
            forwarding.append(f"{agent} ({config})")
    return LogFacts(storage, fs.exists("/var/log/journal"), forwarding)


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long), ("maxerror", ctypes.c_long),
                ("esterror", ctypes.c_long), ("status", ctypes.c_int), ("constant", ctypes.c_long), ("precision", ctypes.c_long),
                ("tolerance", ctypes.c_long), ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long), ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long),
                ("tai", ctypes.c_int), ("padding", ctypes.c_int * 11)]


def adjtimex_state(fs: RootFS) -> int | None:
    """The kernel clock state (adjtimex(2) with modes 0 only reads): 0 TIME_OK ... 5 TIME_ERROR
    (unsynchronised); None offline or when the call is unavailable."""
    if not fs.live:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        buf = _Timex()
        return int(libc.adjtimex(ctypes.byref(buf)))
    except (OSError, AttributeError):
        return None


EXPORTER_NAMES = ("prometheus-libvirt-exporter", "libvirt_exporter", "libvirt-exporter")
EXPORTER_UNITS = ("prometheus-libvirt-exporter.service", "libvirt-exporter.service", "libvirt_exporter.service")
MONITOR_UNIT = "hyperward-monitor.service"


def collect_guest_monitor(fs: RootFS, services: ServiceFacts, db_path: str | None) -> GuestMonitorFacts:
    """Read-only: the database is opened with mode=ro (WAL readers never block the monitor)."""
    from ..heartbeat import HeartbeatError, open_read_only, read_heartbeat
    from ..paths import data_file

    path = db_path or (data_file("HYPERWARD_MONITOR_DB", "monitor.sqlite") if fs.live else "/var/lib/hyperward/monitor.sqlite")
    local = path if fs.live else fs.local_path(path)
    running = services.running if isinstance(services.running, list) else []
    # /proc/PID/comm is cut at 15 characters: "prometheus-libvirt-exporter" shows as "prometheus-libv".
    exporters = sorted({n for n in EXPORTER_NAMES if any(r == n[:15] for r in running)}
                       | {u for u in EXPORTER_UNITS if u in services.enabled})
    facts = dict(database=path, present=False, error=None, pid=None, pid_running=None, last_sample=None,
                 interval_s=None, connected=None, unit_enabled=MONITOR_UNIT in services.enabled, exporters=exporters)
    if not os.path.isfile(local):
        return GuestMonitorFacts(**facts)  # type: ignore[arg-type]
    facts["present"] = True
    try:
        conn = open_read_only(local, immutable=not fs.live)
        try:
            hb = read_heartbeat(conn)
        finally:
            conn.close()
    except (HeartbeatError, sqlite3.Error) as exc:
        facts["error"] = str(exc).replace(local, path)
        return GuestMonitorFacts(**facts)  # type: ignore[arg-type]
    facts.update(pid=hb.pid, last_sample=_iso(hb.last_sample) if hb.last_sample else None, interval_s=hb.interval,
                 connected=hb.connected)
    if fs.live and hb.pid:
        cmdline = fs.read_bytes(f"/proc/{hb.pid}/cmdline", 64 * 1024)
        facts["pid_running"] = isinstance(cmdline, bytes) and b"hyperward" in cmdline and b"monitor" in cmdline
    elif fs.live:
        facts["pid_running"] = False
    return GuestMonitorFacts(**facts)  # type: ignore[arg-type]


def collect_monitoring(fs: RootFS, guest_bridges: list[str], monitor_db: str | None = None) -> MonitoringFacts:
    services = collect_services(fs)
    return MonitoringFacts(
        services=services,
        aide=collect_aide(fs, services),
        audit_watches=collect_audit_watches(fs),
        ids_tools=collect_ids_tools(fs),
        guest_bridges=guest_bridges,
        logs=collect_logs(fs),
        time_sync=adjtimex_state(fs),
        guest_monitor=collect_guest_monitor(fs, services, monitor_db),
    )

