"""Alerts: what a sink receives. Conditions (a surge, an unmanaged QEMU) fire once and resolve
once; events (a VM started, a console connection) are one-shot. De-duplication is by key."""

from __future__ import annotations

import dataclasses
import datetime
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..facts import Domain
from ..model import Severity
from .detect import RULE_BY_KIND, Anomaly

# The domain fields hyperward's libvirt checks read, minus the ones that describe where the
# definition was read, not what it says.
_NOT_DEFINITION = {"origin", "running"}
# has_password is learnt only from the secure XML, which the monitor never asks for.
_NOT_COMPARED_LEAF = {"has_password"}
_HIGH_RISK_FIELDS = ("graphics", "seclabels", "qemu_passthrough", "hostdevs", "filesystems", "launch_security",
                     "sev_policy", "chardevs", "tpms", "loader_secure", "firmware_features", "interfaces")


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Alert:
    """`severity` is a label of the scan's own scale (model.Severity: critical, high, medium, low,
    info), so a SIEM ranks monitor alerts and scan findings alike."""

    key: str
    kind: str
    severity: str
    summary: str
    action: str
    since: float
    vm: str | None = None
    uuid: str | None = None
    observed: str | None = None
    baseline: str | None = None
    status: str = "firing"
    event: bool = False
    ended: float | None = None
    details: dict[str, object] = field(default_factory=dict)
    host: str = field(default_factory=socket.gethostname)


    def __post_init__(self) -> None:
        Severity.parse(self.severity)
    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": self.status,
            "kind": self.kind,
            "event": self.event,
            "severity": self.severity,
            "vm": {"name": self.vm, "uuid": self.uuid} if self.vm or self.uuid else None,
            "summary": self.summary,
            "observed": self.observed,
            "baseline": self.baseline,
            "since": iso(self.since),
            "ended": iso(self.ended) if self.ended is not None else None,
            "action": self.action,
            "host": self.host,
            "key": self.key,
        }
        if self.details:
            out["details"] = self.details
        return out

    def line(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)


class AlertBook:
    """The open conditions. fire() returns the alert only when it is new; resolve() only when it
    was open: sinks see each transition once however often the condition is re-observed."""

    def __init__(self) -> None:
        self.open: dict[str, Alert] = {}

    def fire(self, alert: Alert) -> Alert | None:
        if alert.event:
            return alert
        if alert.key in self.open:
            return None
        self.open[alert.key] = alert
        return alert

    def resolve(self, key: str, when: float, observed: str | None = None) -> Alert | None:
        alert = self.open.pop(key, None)
        if alert is None:
            return None
        resolved = dataclasses.replace(alert, status="resolved", ended=when)
        if observed:
            resolved.details = {**alert.details, "resolved_with": observed}
        return resolved

    def keys_for(self, uuid: str) -> list[str]:
        return [k for k, a in self.open.items() if a.uuid == uuid]


# --- formatting findings ----------------------------------------------------------------------
def human(metric: str, value: float) -> str:
    if metric == "cpu":
        return f"{value * 100:.0f}% of its vCPUs"
    if metric.endswith("_bps"):
        return _bytes(value) + "/s"
    if metric.endswith("_pps"):
        return f"{value:,.0f} packets/s"
    if metric == "mem_kib":
        return _bytes(value * 1024)
    return f"{value:g}"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def finding_alert(f: Anomaly, interval: float, extra: str = "") -> Alert:
    rule = RULE_BY_KIND[f.kind]
    observed = human(rule.metric, f.observed)
    baseline = f"median {human(rule.metric, f.baseline)}; alert above {human(rule.metric, f.threshold)}"
    if f.seasonal:
        baseline += " (this hour's usual high included)"
    if f.packet_bytes is not None:
        observed += f" of {f.packet_bytes:,.0f}-byte packets"
    summary = f"{f.name}: {rule.title}: {observed} since {iso(f.since)}, baseline {human(rule.metric, f.baseline)}{extra}"
    return Alert(
        key=f"{f.kind}:{f.uuid}",
        kind=f.kind,
        severity=rule.severity,
        summary=summary,
        action=rule.action,
        since=f.since,
        vm=f.name,
        uuid=f.uuid,
        observed=observed,
        baseline=baseline,
        details={"metric": rule.metric, "value": round(f.observed, 6), "median": round(f.baseline, 6),
                 "threshold": None if f.threshold == float("inf") else round(f.threshold, 6),
                 "interval_s": interval,
                 **({"bytes_per_packet": round(f.packet_bytes, 1)} if f.packet_bytes is not None else {})},
    )


# --- definition changes -----------------------------------------------------------------------
def definition_fields(domain: Domain) -> dict[str, object]:
    data = dataclasses.asdict(domain)
    for key in _NOT_DEFINITION:
        data.pop(key, None)
    return data


def _flatten(value: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, dict):
        for key in sorted(value):
            if key in _NOT_COMPARED_LEAF:
                continue
            yield from _flatten(value[key], f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        if not value:
            yield path, []
        for i, item in enumerate(value):
            yield from _flatten(item, f"{path}[{i}]")
    else:
        yield path, value


def definition_diff(old: dict[str, object], new: dict[str, object]) -> list[str]:
    """Changed leaves as 'path: old -> new', in field order; added and removed list items too."""
    before, after = dict(_flatten(old, "")), dict(_flatten(new, ""))
    out = []
    for path in list(dict.fromkeys([*before, *after])):
        a, b = before.get(path, "(absent)"), after.get(path, "(absent)")
        if a != b:
            out.append(f"{path}: {_show(a)} -> {_show(b)}")
    return out


def _show(value: object) -> str:
    return "(absent)" if value == "(absent)" else json.dumps(value)


def diff_severity(changes: list[str]) -> str:
    return "high" if any(c.startswith(_HIGH_RISK_FIELDS) for c in changes) else "medium"
