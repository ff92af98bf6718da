"""The TOML configuration: scan defaults and accepted risks (suppressions)."""

from __future__ import annotations

import datetime
import os
import re
import stat
from collections.abc import Callable
from typing import Any
from dataclasses import field

from .catalog import catalog
from .facts import BackupRepository
from .model import PROFILES, Severity, Suppression
from .records import frozen
from .safefile import Ownership

DEFAULT_PATH = "/etc/hyperward/config.toml"
_TOP_KEYS = {"scan", "suppress", "vulndb", "backups", "history", "monitor", "files", "vsphere", "fleet", "virtualbox"}
_VIRTUALBOX_KEYS = {"sensitive"}
_FLEET_KEYS = {"database", "retention_days", "stale_days"}
_VSPHERE_KEYS = {"user", "password_file", "ca_file", "insecure", "timeout", "framework", "hosts"}
_FILES_KEYS = {"group"}
_MONITOR_KEYS = {"interval", "database", "retention_days", "connect", "metrics", "detector", "floors", "sink"}
_DETECTOR_NUMBERS = {"window": int, "warmup": int, "refresh_every": int, "k": float, "ratio": float,
                     "memory_ratio": float, "cpu_saturation": float, "cpu_sustain": int, "sustain": int,
                     "resolve_after": int, "seasonal_min_days": int, "seasonal_days": int, "seasonal_margin": float,
                     "boot_grace": int, "hysteresis": float, "onset": float, "burst_margin": float, "burst_accept": int,
                     "max_sustain": int, "small_packet_bytes": float}
_FLOOR_KEYS = {"tx_bps", "tx_pps", "wr_bps", "mem_kib"}
_SINK_KEYS = {"jsonl": {"path"}, "syslog": {"address", "facility"}, "webhook": {"url", "token_env"},
              "alertmanager": {"url", "token_env", "resend_seconds"}}
_HISTORY_KEYS = {"path", "record", "reports"}
_BACKUPS_KEYS = {"guest_max_age_hours", "host_max_age_days", "repository"}
_REPOSITORY_KEYS = {"kind", "location", "password_file", "password_env", "name", "binary"}
_VULNDB_KEYS = {"path", "max_age_days", "sources", "esxi_builds_url", "virtualbox_security_url", "lifecycle_url"}
#: [vulndb] keys naming where `hyperward db update` fetches each sourced table (hyperward.sourced)
TABLE_URL_KEYS = ("esxi_builds_url", "virtualbox_security_url", "lifecycle_url")
_SCAN_KEYS = {"profile", "fail_on", "only", "skip"}
_SUPPRESS_KEYS = {"check", "resource", "reason", "expires"}


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and, where known, the line."""


@frozen
class BackupConfig:
    repositories: list[BackupRepository]
    guest_max_age_hours: int = 24
    host_max_age_days: int = 7


@frozen
class SinkConfig:
    type: str
    options: dict[str, object]


@frozen
class MonitorConfig:
    interval: float | None = None
    database: str | None = None
    retention_days: float | None = None
    connect: str | None = None
    metrics: str | None = None
    detector: dict[str, float] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)
    sinks: list[SinkConfig] = field(default_factory=list)


@frozen
class VirtualBoxConfig:
    """[virtualbox]: `sensitive` the machines (names or UUIDs, shell globs) whose disks must be
    encrypted; `source` names where the list was set, for the results that rest on it."""

    sensitive: list[str] = field(default_factory=list)
    source: str | None = None


@frozen
class Config:
    path: str | None = None
    profile: str | None = None
    fail_on: Severity | None = None
    only: list[str] = field(default_factory=list)
    skip: list[str] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    vulndb_path: str | None = None
    vulndb_max_age_days: int | None = None
    vulndb_sources: list[str] = field(default_factory=list)
    backups: BackupConfig | None = None
    history_path: str | None = None
    history_record: bool = False
    scan_reports: list[str] = field(default_factory=list)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    files_group: str | None = None
    #: [vsphere]: user, password_file, ca_file, insecure, timeout, framework ("stig"/"scg"), hosts
    vsphere: dict[str, object] = field(default_factory=dict)
    #: [fleet]: the fleet database (a SQLite path or a postgresql:// URL), retention and staleness in days
    fleet_database: str | None = None
    fleet_retention_days: float | None = None
    fleet_stale_days: float | None = None
    #: [vulndb] esxi_builds_url: where `hyperward db update` fetches a newer ESXi build table
    esxi_builds_url: str | None = None
    #: [vulndb] virtualbox_security_url: where it fetches a newer VirtualBox security table (HV-PATCH-032)
    virtualbox_security_url: str | None = None
    #: [vulndb] lifecycle_url: where it fetches a newer guest OS end-of-life table (HV-PATCH-071)
    lifecycle_url: str | None = None
    virtualbox: VirtualBoxConfig = field(default_factory=VirtualBoxConfig)

    def ownership(self) -> Ownership:
        """How hyperward's own files are created: 0600, or 0640 for the [files] group."""
        return Ownership(self.files_group)


def _table_lines(text: str, header: str) -> list[int]:
    pattern = re.compile(r"^\s*\[\[\s*" + re.escape(header) + r"\s*\]\]")
    return [i for i, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


def _key_line(text: str, key: str) -> int | None:
    pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return i
    return None


def parse_config(text: str, path: str) -> Config:
    import tomllib  # only when there is a config file: most scans have none

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None

    def fail(message: str, line: int | None) -> ConfigError:
        return ConfigError(f"{path}{f' line {line}' if line else ''}: {message}")

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(f"unknown section or key {key!r} (expected: {', '.join(sorted(_TOP_KEYS))})", _key_line(text, key))
    scan = data.get("scan", {})
    if not isinstance(scan, dict):
        raise fail("[scan] must be a table", _key_line(text, "scan"))
    for key in scan:
        if key not in _SCAN_KEYS:
            raise fail(f"unknown key {key!r} in [scan] (expected: {', '.join(sorted(_SCAN_KEYS))})", _key_line(text, key))
    profile = scan.get("profile")
    if profile is not None and profile not in PROFILES:
        raise fail(f"profile must be one of {', '.join(PROFILES)}, not {profile!r}", _key_line(text, "profile"))
    fail_on = None
    if "fail_on" in scan:
        try:
            fail_on = Severity.parse(str(scan["fail_on"]))
        except ValueError as exc:
            raise fail(str(exc), _key_line(text, "fail_on")) from None
    for key in ("only", "skip"):
        if key in scan and not (isinstance(scan[key], list) and all(isinstance(v, str) for v in scan[key])):
            raise fail(f"{key} must be a list of check IDs or categories", _key_line(text, key))

    raw = data.get("suppress", [])
    if not isinstance(raw, list):
        raise fail("suppress must be an array of tables: [[suppress]]", _key_line(text, "suppress"))
    lines = _table_lines(text, "suppress")
    known = catalog()
    suppressions = []
    for index, entry in enumerate(raw):
        line = lines[index] if index < len(lines) else None
        if not isinstance(entry, dict):
            raise fail("each suppression must be a table", line)
        unknown = set(entry) - _SUPPRESS_KEYS
        if unknown:
            raise fail(f"unknown key {sorted(unknown)[0]!r} in [[suppress]] (expected: {', '.join(sorted(_SUPPRESS_KEYS))})", line)
        check_id = entry.get("check")
        if not isinstance(check_id, str) or check_id.upper() not in known:
            raise fail(f"[[suppress]] needs check = a catalog ID (got {check_id!r})", line)
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise fail(f"[[suppress]] for {check_id} needs a reason", line)
        resource = entry.get("resource", "*")
        if not isinstance(resource, str) or not resource:
            raise fail("resource must be a non-empty string (a glob; '*' for every resource)", line)
        expires = entry.get("expires")
        if isinstance(expires, datetime.datetime):
            expires = expires.date()
        elif isinstance(expires, str):
            try:
                expires = datetime.date.fromisoformat(expires)
            except ValueError:
                raise fail(f"expires must be a date (YYYY-MM-DD), not {expires!r}", line) from None
        elif expires is not None and not isinstance(expires, datetime.date):
            raise fail(f"expires must be a date (YYYY-MM-DD), not {expires!r}", line)
        source = f"{path} line {line}" if line else path
        suppressions.append(Suppression(check_id.upper(), resource, reason.strip(), expires, source))
    vulndb = data.get("vulndb", {})
    if not isinstance(vulndb, dict):
        raise fail("[vulndb] must be a table", _key_line(text, "vulndb"))
    for key in vulndb:
        if key not in _VULNDB_KEYS:
            raise fail(f"unknown key {key!r} in [vulndb] (expected: {', '.join(sorted(_VULNDB_KEYS))})", _key_line(text, key))
    if "path" in vulndb and not isinstance(vulndb["path"], str):
        raise fail("[vulndb] path must be a string", _key_line(text, "path"))
    max_age = vulndb.get("max_age_days")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1):
        raise fail("[vulndb] max_age_days must be a whole number of days >= 1", _key_line(text, "max_age_days"))
    urls = vulndb.get("sources", [])
    if not (isinstance(urls, list) and all(isinstance(u, str) and u.startswith(("http://", "https://", "file://")) for u in urls)):
        raise fail("[vulndb] sources must be a list of http(s):// or file:// URLs", _key_line(text, "sources"))
    table_urls: dict[str, str | None] = {}
    for key in TABLE_URL_KEYS:
        table_url = vulndb.get(key)
        if table_url is not None and not (isinstance(table_url, str) and table_url.startswith(("http://", "https://", "file://"))):
            raise fail(f"[vulndb] {key} must be an http(s):// or file:// URL", _key_line(text, key))
        table_urls[key] = table_url
    hist = data.get("history", {})
    if not isinstance(hist, dict):
        raise fail("[history] must be a table", _key_line(text, "history"))
    for key in hist:
        if key not in _HISTORY_KEYS:
            raise fail(f"unknown key {key!r} in [history] (expected: {', '.join(sorted(_HISTORY_KEYS))})", _key_line(text, key))
    if not isinstance(hist.get("record", False), bool):
        raise fail("[history] record must be true or false", _key_line(text, "record"))
    reports = hist.get("reports", [])
    if not (isinstance(reports, list) and all(isinstance(r, str) for r in reports)):
        raise fail("[history] reports must be a list of file paths or globs", _key_line(text, "reports"))
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise fail("[files] must be a table", _key_line(text, "files"))
    for key in files:
        if key not in _FILES_KEYS:
            raise fail(f"unknown key {key!r} in [files] (expected: {', '.join(sorted(_FILES_KEYS))})", _key_line(text, key))
    group = files.get("group")
    if group is not None and not (isinstance(group, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}", group)):
        raise fail("[files] group must be a group name", _key_line(text, "group"))
    return Config(path, profile, fail_on, list(scan.get("only", [])), list(scan.get("skip", [])), suppressions,
                  vulndb.get("path"), max_age, list(urls), _backups(data.get("backups"), text, fail),
                  hist.get("path"), hist.get("record", False), list(reports), _monitor(data.get("monitor"), text, fail), group,
                  _vsphere(data.get("vsphere"), text, fail), **_fleet(data.get("fleet"), text, fail), esxi_builds_url=table_urls["esxi_builds_url"],
                  virtualbox_security_url=table_urls["virtualbox_security_url"], lifecycle_url=table_urls["lifecycle_url"],
                  virtualbox=_virtualbox(data.get("virtualbox"), text, path, fail))


def _virtualbox(table: object, text: str, path: str, fail: Callable[[str, int | None], ConfigError]) -> VirtualBoxConfig:
    """`sensitive` is a list of names, UUIDs or globs, or one string of them separated by commas."""
    if table is None:
        return VirtualBoxConfig()
    if not isinstance(table, dict):
        raise fail("[virtualbox] must be a table", _key_line(text, "virtualbox"))
    for key in table:
        if key not in _VIRTUALBOX_KEYS:
            raise fail(f"unknown key {key!r} in [virtualbox] (expected: {', '.join(sorted(_VIRTUALBOX_KEYS))})", _key_line(text, key))
    raw = table.get("sensitive", [])
    if isinstance(raw, str):
        raw = raw.split(",")
    if not (isinstance(raw, list) and all(isinstance(v, str) for v in raw)):
        raise fail("[virtualbox] sensitive must be a list of machine names, UUIDs or globs", _key_line(text, "sensitive"))
    names = [v.strip() for v in raw if v.strip()]
    if any(len(v) > 256 for v in names):
        raise fail("[virtualbox] sensitive: a name longer than 256 characters", _key_line(text, "sensitive"))
    line = _key_line(text, "sensitive")
    return VirtualBoxConfig(names, f"{path}{f' line {line}' if line else ''} [virtualbox] sensitive" if names else None)


def _fleet(table: object, text: str, fail: Callable[[str, int | None], ConfigError]) -> dict[str, Any]:
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise fail("[fleet] must be a table", _key_line(text, "fleet"))
    for key in table:
        if key not in _FLEET_KEYS:
            raise fail(f"unknown key {key!r} in [fleet] (expected: {', '.join(sorted(_FLEET_KEYS))})", _key_line(text, key))
    if "database" in table and not (isinstance(table["database"], str) and table["database"]):
        raise fail("[fleet] database must be a file path or a postgresql:// URL", _key_line(text, "database"))
    for key in ("retention_days", "stale_days"):
        if key in table and not (_number(table[key]) and table[key] > 0):
            raise fail(f"[fleet] {key} must be a positive number of days", _key_line(text, key))
    return {"fleet_database": table.get("database"), "fleet_retention_days": table.get("retention_days"),
            "fleet_stale_days": table.get("stale_days")}


def _vsphere(table: object, text: str, fail: Callable[[str, int | None], ConfigError]) -> dict[str, object]:
    """[vsphere]: how to reach vCenter or ESXi. The password is never in the config itself: only
    the name of a file that holds it (checked when a scan reads it)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise fail("[vsphere] must be a table", _key_line(text, "vsphere"))
    for key in table:
        if key not in _VSPHERE_KEYS:
            hint = " (name a password_file instead: the config holds no secrets)" if key in ("password", "pwd") else ""
            raise fail(f"unknown key {key!r} in [vsphere] (expected: {', '.join(sorted(_VSPHERE_KEYS))}){hint}", _key_line(text, key))
    for key in ("user", "password_file", "ca_file"):
        if key in table and not (isinstance(table[key], str) and table[key]):
            raise fail(f"[vsphere] {key} must be a non-empty string", _key_line(text, key))
    if "insecure" in table and not isinstance(table["insecure"], bool):
        raise fail("[vsphere] insecure must be true or false", _key_line(text, "insecure"))
    timeout = table.get("timeout")
    if timeout is not None and not (_number(timeout) and 0 < float(timeout) <= 3600):
        raise fail("[vsphere] timeout must be a number of seconds (0 to 3600)", _key_line(text, "timeout"))
    if table.get("framework", "stig") not in ("stig", "scg"):
        raise fail("[vsphere] framework must be \"stig\" or \"scg\"", _key_line(text, "framework"))
    hosts = table.get("hosts", [])
    if not (isinstance(hosts, list) and all(isinstance(h, str) and h for h in hosts)):
        raise fail("[vsphere] hosts must be a list of host names", _key_line(text, "hosts"))
    return dict(table)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _monitor(table: object, text: str, fail: Callable[[str, int | None], ConfigError]) -> MonitorConfig:
    if table is None:
        return MonitorConfig()
    if not isinstance(table, dict):
        raise fail("[monitor] must be a table", _key_line(text, "monitor"))
    for key in table:
        if key not in _MONITOR_KEYS:
            raise fail(f"unknown key {key!r} in [monitor] (expected: {', '.join(sorted(_MONITOR_KEYS))})", _key_line(text, key))
    for key in ("interval", "retention_days"):
        if key in table and not (_number(table[key]) and table[key] > 0):
            raise fail(f"[monitor] {key} must be a positive number", _key_line(text, key))
    for key in ("database", "connect", "metrics"):
        if key in table and not (isinstance(table[key], str) and table[key]):
            raise fail(f"[monitor] {key} must be a non-empty string", _key_line(text, key))
    detector = table.get("detector", {})
    if not isinstance(detector, dict):
        raise fail("[monitor.detector] must be a table", _key_line(text, "detector"))
    for key, value in detector.items():
        kind = _DETECTOR_NUMBERS.get(key)
        if kind is None:
            raise fail(f"unknown key {key!r} in [monitor.detector] (expected: {', '.join(sorted(_DETECTOR_NUMBERS))})", _key_line(text, key))
        if not _number(value) or value <= 0 or (kind is int and not isinstance(value, int)):
            raise fail(f"[monitor.detector] {key} must be a positive {'whole ' if kind is int else ''}number", _key_line(text, key))
    floors = table.get("floors", {})
    if not isinstance(floors, dict):
        raise fail("[monitor.floors] must be a table", _key_line(text, "floors"))
    for key, value in floors.items():
        if key not in _FLOOR_KEYS:
            raise fail(f"unknown key {key!r} in [monitor.floors] (expected: {', '.join(sorted(_FLOOR_KEYS))})", _key_line(text, key))
        if not _number(value) or value < 0:
            raise fail(f"[monitor.floors] {key} must be a number >= 0", _key_line(text, key))
    sinks = []
    raw = table.get("sink", [])
    if not isinstance(raw, list):
        raise fail("sinks must be an array of tables: [[monitor.sink]]", _key_line(text, "sink"))
    lines = _table_lines(text, "monitor.sink")
    for index, entry in enumerate(raw):
        line = lines[index] if index < len(lines) else None
        if not isinstance(entry, dict) or entry.get("type") not in _SINK_KEYS:
            raise fail(f"[[monitor.sink]] type must be one of {', '.join(_SINK_KEYS)}", line)
        allowed = _SINK_KEYS[entry["type"]]
        options = {k: v for k, v in entry.items() if k != "type"}
        for key, value in options.items():
            if key not in allowed:
                raise fail(f"unknown key {key!r} in a {entry['type']} [[monitor.sink]] (expected: {', '.join(sorted(allowed))})", line)
            if key == "resend_seconds" and not (_number(value) and value > 0):
                raise fail("resend_seconds must be a positive number", line)
            if key != "resend_seconds" and not (isinstance(value, str) and value):
                raise fail(f"{key} must be a non-empty string", line)
        if entry["type"] in ("webhook", "alertmanager") and not str(options.get("url", "")).startswith(("http://", "https://")):
            raise fail(f"a {entry['type']} sink needs url = an http:// or https:// URL", line)
        if entry["type"] == "jsonl" and "path" not in options:
            raise fail("a jsonl sink needs path (a file, or \"-\" for standard output)", line)
        sinks.append(SinkConfig(entry["type"], options))
    return MonitorConfig(table.get("interval"), table.get("database"), table.get("retention_days"), table.get("connect"),
                         table.get("metrics"), dict(detector), dict(floors), sinks)


def _backups(table: object, text: str, fail: Callable[[str, int | None], ConfigError]) -> BackupConfig | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise fail("[backups] must be a table", _key_line(text, "backups"))
    for key in table:
        if key not in _BACKUPS_KEYS:
            raise fail(f"unknown key {key!r} in [backups] (expected: {', '.join(sorted(_BACKUPS_KEYS))})", _key_line(text, key))
    repositories = []
    for entry in table.get("repository", []):
        line = _key_line(text, "location")
        if not isinstance(entry, dict):
            raise fail("[[backups.repository]] must be tables", line)
        unknown = set(entry) - _REPOSITORY_KEYS
        if unknown:
            raise fail(f"unknown key {sorted(unknown)[0]!r} in [[backups.repository]] (expected: {', '.join(sorted(_REPOSITORY_KEYS))})", line)
        kind, location = entry.get("kind"), entry.get("location")
        if kind not in ("restic", "borg", "directory"):
            raise fail(f"[[backups.repository]] kind must be restic, borg or directory, not {kind!r}", _key_line(text, "kind"))
        if not isinstance(location, str) or not location:
            raise fail("[[backups.repository]] needs a location", line)
        for key in ("password_file", "password_env", "name", "binary"):
            if key in entry and not isinstance(entry[key], str):
                raise fail(f"[[backups.repository]] {key} must be a string", _key_line(text, key))
        if "binary" in entry and not entry["binary"].startswith("/"):
            raise fail("[[backups.repository]] binary must be an absolute path (the tool is never looked up in PATH)", _key_line(text, "binary"))
        repositories.append(BackupRepository(kind, location, entry.get("password_file"), entry.get("password_env"), entry.get("name"),
                                             entry.get("binary")))
    limits = {}
    for key in ("guest_max_age_hours", "host_max_age_days"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f"[backups] {key} must be a whole number >= 1", _key_line(text, key))
            limits[key] = value
    return BackupConfig(repositories, **limits)


def load_config(path: str | None) -> Config:
    """`path` given: it must exist. Not given: the default path if present, else no config."""
    explicit = path is not None
    path = path or DEFAULT_PATH
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        # The config names programs, paths and passwords files that a scan as root uses: a file
        # another user may change would hand them root.
        if os.geteuid() == 0 and (st.st_uid != 0 or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            raise ConfigError(f"{path}: refusing a config that a user other than root can change "
                              f"(owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); chown root and chmod go-w")
        try:
            data = handle.read(1024 * 1024 + 1)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    if len(data) > 1024 * 1024:
        raise ConfigError(f"{path}: larger than 1 MiB; not a hyperward config")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse_config(text, path)
