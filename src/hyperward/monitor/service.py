"""The monitor's loop: sample, rate, store, detect, deliver; events in between.

Time: intervals are scheduled on the monotonic clock; samples are stamped with wall time. A wall
clock that jumps (NTP step, suspend) is counted and noted, never turned into a rate. An interval
that starts more than 2.5 intervals after the previous one (the host stalled, libvirt was away)
is recorded as a gap.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..parsers.domain_xml import XmlError, parse_domain
from ..parsers.domstats import DomainCounters, parse_domain_stats
from ..textsafe import visible
from . import metrics as metrics_mod
from .alerts import Alert, AlertBook, definition_diff, definition_fields, diff_severity, finding_alert, human
from .detect import METRICS, RULE_BY_KIND, Detector, DetectorConfig, Anomaly
from .rates import Rates, RateTracker
from .sinks import Sink
from .source import Event, SourceError, StatsSource
from .store import Store
from .unmanaged import QemuWatch

MAX_BACKOFF_S = 60.0
# Descriptors kept free for what one interval needs (libvirt, the store, /proc reads, sinks):
# with fewer, /proc reads fail and a new QEMU would be taken for a non-QEMU process. A quarter
# of the limit when that is less (a small LimitNOFILE).
FD_RESERVE = 64


@dataclass
class MonitorOptions:
    interval: float = 10.0
    retention_days: float = 14.0
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    proc_root: str | None = "/"


class Monitor:
    def __init__(self, options: MonitorOptions, source: StatsSource, store: Store, sinks: list[Sink],
                 metrics: metrics_mod.MetricsServer | None = None,
                 wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self.options = options
        self.source = source
        self.store = store
        self.sinks = sinks
        self.metrics = metrics
        self.wall = wall
        self.mono = mono
        self.detector = Detector(options.detector)
        self.tracker = RateTracker()
        self.book = AlertBook()
        self.qemu = QemuWatch(options.proc_root) if options.proc_root else None
        self.connected = False
        self.gap_start: float | None = None
        self.last_error: str | None = None
        self.started = wall()
        self.last_wall: float | None = None
        self.last_mono: float | None = None
        self.active: set[str] | None = None
        self.names: dict[str, str] = {}
        self.definitions = store.definitions()
        self.counts: Counter[str] = Counter()
        self.health: dict[str, float] = {"up": 0, "gaps_total": 0, "reconnects_total": 0, "clock_jumps_total": 0}
        self.last_rates: list[Rates] = []
        self.balloons: dict[str, int] = {}
        self.pending: list[Alert] = []
        self.hour = time.localtime(self.started).tm_hour
        self.fd_exhausted = False
        self._seed()

    # --- start-up ---------------------------------------------------------------------------
    def _seed(self) -> None:
        """A restarted monitor picks up its baselines, seasonal profiles and open conditions."""
        for (uuid, metric), values in self.store.recent_values(self.options.detector.window, METRICS).items():
            self.detector.learn(uuid, metric, values)
        for uuid, metric, hour, highs in self.store.profiles():
            self.detector.seed_profile(uuid, metric, hour, highs)
        for alert in open_conditions(self.store):
            self.book.open[alert.key] = alert
            rule = RULE_BY_KIND.get(alert.kind)
            series = self.detector.series.get((alert.uuid or "", rule.metric)) if rule else None
            if series is not None:
                series.firing, series.since = True, alert.since

    # --- the loop ---------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        self._heartbeat(running=True)
        backoff = 1.0
        next_tick = self.mono()
        try:
            while not stop.is_set():
                if not self.connected:
                    if self._connect():
                        backoff = 1.0
                        next_tick = self.mono()
                    else:
                        self._publish()
                        stop.wait(backoff)
                        backoff = min(backoff * 2, MAX_BACKOFF_S)
                        continue
                self._events_until(next_tick, stop)
                if stop.is_set():
                    break
                if self.connected:
                    self.tick()
                next_tick += self.options.interval
                now = self.mono()
                if next_tick < now:
                    next_tick = now + self.options.interval
        finally:
            self.shutdown()

    def _connect(self) -> bool:
        try:
            self.source.connect()
        except SourceError as exc:
            self._lost(str(exc))
            return False
        self.connected = True
        self.health["up"] = 1
        if self.gap_start is not None:
            end = self.wall()
            self.store.record_gap(self.gap_start, end, f"libvirt unreachable: {self.last_error}")
            self.health["reconnects_total"] += 1
            self.gap_start = None
        self.last_error = None
        self.tracker.forget()
        try:
            self._reconcile()
        except SourceError as exc:
            self._lost(str(exc))
            return False
        return True

    def _lost(self, reason: str) -> None:
        if self.connected or self.gap_start is None:
            if self.gap_start is None:
                self.gap_start = self.wall()
                self.health["gaps_total"] += 1
            print(f"hyperward monitor: {visible(reason)}; reconnecting with backoff", file=sys.stderr, flush=True)
        self.connected = False
        self.health["up"] = 0
        self.last_error = reason
        self.source.close()
        self._heartbeat(running=True)

    def _events_until(self, deadline: float, stop: threading.Event) -> None:
        while not stop.is_set():
            remaining = deadline - self.mono()
            if remaining <= 0:
                return
            try:
                event = self.source.events.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self.handle_event(event)
            if self.pending:
                self._deliver_pending()
            if not self.connected:
                return

    # --- one interval -----------------------------------------------------------------------
    def tick(self) -> None:
        begin, wall = self.mono(), self.wall()
        if self.last_mono is not None and self.last_wall is not None:
            elapsed = begin - self.last_mono
            if abs((wall - self.last_wall) - elapsed) > max(2.0, self.options.interval):
                self.health["clock_jumps_total"] += 1
                self.store.record_gap(self.last_wall, wall, f"wall clock jumped by {wall - self.last_wall - elapsed:+.0f} s")
            elif elapsed > 2.5 * self.options.interval:
                self.health["gaps_total"] += 1
                self.store.record_gap(self.last_wall, wall, f"no sample for {elapsed:.0f} s (host stalled or monitor paused)")
        try:
            records = self.source.sample()
        except SourceError as exc:
            self._lost(str(exc))
            return
        counters = [parse_domain_stats(name, uuid, params) for name, uuid, params in records]
        rates = self.tracker.update(counters, wall, begin)
        present = {c.uuid for c in counters}
        for uuid in self.tracker.resets:
            self.detector.restarted(uuid)
        if self.active is not None:
            for uuid in present - self.active:
                self.detector.restarted(uuid)
        self.names.update((c.uuid, c.name) for c in counters)
        self.active = present
        self._memory_resized(counters, wall)
        findings = self.detector.observe(rates) + self.detector.vanished(wall, present)
        self._findings(findings)
        descriptors_ok = self._descriptors_ok()
        if self.qemu is not None and descriptors_ok:
            self._watch_qemu(wall)
        self.last_rates = rates
        self.last_mono, self.last_wall = begin, wall
        out, self.pending = self.pending, []
        delivered = self._transitions(out)
        for sink in self.sinks:
            sink.tick(list(self.book.open.values()))
        self.health["domains"] = len(counters)
        self.health["last_sample_timestamp_seconds"] = wall
        self.health["sample_duration_seconds"] = self.mono() - begin
        self.store.write_interval(rates, delivered, self._heartbeat_values(running=True))
        self.store.purge(self.options.retention_days, wall)
        hour = time.localtime(wall).tm_hour
        if hour != self.hour:
            self.hour = hour
            self.store.save_profiles(self.detector.profiles())
        self._publish()

    @staticmethod
    def _name_device(alert: Alert, rates: dict[str, float], detail: str, preposition: str) -> None:
        """The VM-wide sum decided the alert; the per-device rates of the same interval say where to look."""
        if rates:
            alert.details[detail] = {n: round(v, 1) for n, v in rates.items()}
            alert.summary += f" (mostly {preposition} {max(rates, key=rates.__getitem__)})"

    def _findings(self, findings: list[Anomaly]) -> None:
        for f in findings:
            if f.status == "firing":
                alert = finding_alert(f, self.options.interval)
                if f.kind in ("egress_surge", "packet_rate_surge"):
                    self._name_device(alert, self.tracker.nic_tx_rates(f.uuid), "tx_bytes_per_second_by_nic", "via")
                elif f.kind == "disk_write_surge":
                    self._name_device(alert, self.tracker.disk_write_rates(f.uuid), "write_bytes_per_second_by_disk", "to")
                self.pending.append(alert)
            else:
                key = f"{f.kind}:{f.uuid}"
                if key in self.book.open:
                    self.pending.append(Alert(key, f.kind, "info", "", "", f.since, status="resolved",
                                              ended=f.at, details={"observed": f.observed}))

    def _transitions(self, alerts: list[Alert]) -> list[Alert]:
        """Through the book: only new conditions, real resolutions and events reach the sinks."""
        out = []
        for alert in alerts:
            if alert.status == "resolved":
                done = self.book.resolve(alert.key, alert.ended or self.wall())
                if done is not None:
                    out.append(done)
            else:
                fired = self.book.fire(alert)
                if fired is not None:
                    out.append(fired)
        for alert in out:
            self.counts[alert.kind] += alert.status != "resolved"
        if out:
            for sink in self.sinks:
                try:
                    sink.send(out)
                except Exception as exc:  # a broken sink must not stop the monitor
                    sink.failed(f"{type(exc).__name__}: {exc}")
        return out

    def _deliver_pending(self) -> None:
        out, self.pending = self.pending, []
        self.store.record_alerts(self._transitions(out))

    # --- events -------------------------------------------------------------------------------
    def handle_event(self, event: Event) -> None:
        name, uuid = event.name, event.uuid
        detail = event.detail or {}
        if event.kind == "disconnected":
            self._lost(f"connection to {self.source.uri} closed (reason {detail.get('reason')})")
            return
        if event.kind == "lifecycle":
            kind, how = str(detail.get("event")), str(detail.get("detail"))
            self._lifecycle(kind, how, name, uuid, event.at)
        elif event.kind in ("device-added", "device-removed"):
            verb = "added to" if event.kind == "device-added" else "removed from"
            self.pending.append(self._event("device_hotplug", "medium", event.at, name, uuid,
                                            f"device {detail.get('device')} {verb} {name} while running",
                                            "confirm the hot-plug was planned; a disk or host device attached to a running guest bypasses change review",
                                            {"device": detail.get("device"), "change": event.kind.removeprefix("device-")}))
        elif event.kind == "graphics":
            phase = detail.get("phase")
            severity = "medium" if phase == "connect" else "info"
            self.pending.append(self._event("console_connection", severity, event.at, name, uuid,
                                            f"console {phase} on {name} from {detail.get('remote')} (auth {detail.get('auth') or 'none'})",
                                            "confirm who opened the console; restrict graphics listen addresses and require passwords or TLS",
                                            detail))

    def _lifecycle(self, kind: str, how: str, name: str | None, uuid: str | None, at: float, note: str = "") -> None:
        migrated = how == "migrated" and kind in ("started", "stopped")
        label = "migrated" if migrated else kind
        severity = {"defined": "medium", "undefined": "medium", "migrated": "medium", "crashed": "medium"}.get(label, "info")
        direction = {"started": " in", "stopped": " out"}.get(kind, "") if migrated else ""
        summary = f"{name} {label}{direction} ({how}){note}"
        action = {
            "defined": "confirm the new or changed definition was intended",
            "undefined": "confirm the removal was intended; its disks may still hold data",
            "migrated": "confirm the migration was planned and the peer host is trusted",
            "crashed": "look at the guest's and QEMU's logs (/var/log/libvirt/qemu)",
        }.get(label, "none needed if expected")
        self.pending.append(self._event(f"vm_{label}", severity, at, name, uuid, summary, action, {"event": kind, "detail": how}))
        if uuid and kind == "defined":
            self._check_definition(uuid, at)
        elif uuid and kind == "undefined" and how != "renamed":
            self.definitions.pop(uuid, None)
            self.store.forget_definition(uuid)

    def _event(self, kind: str, severity: str, at: float, name: str | None, uuid: str | None, summary: str,
               action: str, details: dict[str, object]) -> Alert:
        return Alert(key=f"{kind}:{uuid}:{at}", kind=kind, severity=severity, summary=summary, action=action,
                     since=at, vm=name, uuid=uuid, event=True, details=details)

    def _check_definition(self, uuid: str, at: float) -> None:
        try:
            xml = self.source.definition(uuid)
        except SourceError:
            return
        if xml is None:
            return
        try:
            domain = parse_domain(xml, "libvirt API")
        except XmlError:
            return
        fields = definition_fields(domain)
        old = self.definitions.get(uuid)
        self.definitions[uuid] = (domain.name, fields)
        self.store.save_definition(uuid, domain.name, fields)
        if old is None:
            return
        changes = definition_diff(old[1], fields)
        if changes:
            shown = changes[:20]
            more = f" and {len(changes) - 20} more" if len(changes) > 20 else ""
            self.pending.append(self._event(
                "definition_changed", diff_severity(changes), at, domain.name, uuid,
                f"{domain.name}: security-relevant definition changed: {'; '.join(shown[:3])}{more if len(shown) <= 3 else ''}",
                "review the change (virsh dumpxml --inactive); run hyperward scan to see whether it weakens isolation",
                {"changes": shown, "changed_fields": len(changes)}))

    def _reconcile(self) -> None:
        """After (re)connecting: what happened while nobody was listening."""
        domains = self.source.domains()
        now = self.wall()
        first_run = not self.definitions
        note = " while the monitor was not connected"
        current = {d.uuid: d for d in domains}
        for d in domains:
            self.names[d.uuid] = d.name
            if d.uuid not in self.definitions and not first_run:
                self._lifecycle("defined", "added", d.name, d.uuid, now, note)
            else:
                self._check_definition(d.uuid, now)
        for uuid, (name, _) in list(self.definitions.items()):
            if uuid not in current:
                self._lifecycle("undefined", "removed", name, uuid, now, note)
        if self.active is not None:
            self._fill_missed_lifecycle({d.uuid for d in domains if d.active}, now, note)
            self.active = {d.uuid for d in domains if d.active}

    def _fill_missed_lifecycle(self, present: set[str], now: float, note: str) -> None:
        """Starts and stops that happened while the event stream was down."""
        assert self.active is not None
        for uuid in present - self.active:
            self._lifecycle("started", "booted", self.names.get(uuid, uuid), uuid, now, note)
        for uuid in self.active - present:
            self._lifecycle("stopped", "shutdown", self.names.get(uuid, uuid), uuid, now, note)


    def _memory_resized(self, counters: list[DomainCounters], now: float) -> None:
        """The guest's memory allocation (balloon target, or hot-plugged DIMMs) changed while running."""
        for c in counters:
            if c.balloon_kib is None:
                continue
            before = self.balloons.get(c.uuid)
            self.balloons[c.uuid] = c.balloon_kib
            if before and abs(c.balloon_kib - before) >= max(0.01 * before, 1024):
                self.pending.append(self._event(
                    "memory_changed", "medium", now, c.name, c.uuid,
                    f"{c.name}: memory changed from {human('mem_kib', before)} to {human('mem_kib', c.balloon_kib)} while running",
                    "confirm the balloon or memory hot-plug change was made by an operator (virsh setmem / attach-device)",
                    {"before_kib": before, "after_kib": c.balloon_kib}))
        for uuid in [u for u in self.balloons if u not in {c.uuid for c in counters}]:
            del self.balloons[uuid]

    def _watch_qemu(self, now: float) -> None:
        assert self.qemu is not None
        seen = self.qemu.scan()
        unmanaged = {p.pid: p for p in seen if p.managed_by is None}
        for pid, proc in unmanaged.items():
            key = f"unmanaged_qemu:{pid}"
            if key not in self.book.open:
                self.pending.append(Alert(
                    key=key, kind="unmanaged_qemu", severity="high", since=now, vm=proc.guest, uuid=proc.uuid,
                    summary=f"QEMU pid {pid} ({proc.exe}{', guest ' + proc.guest if proc.guest else ''}) is not managed by libvirt",
                    action="find out who started it (ps -o user,lstart,args -p PID); bring it under libvirt or stop it",
                    observed=f"pid {pid}, cgroup {proc.cgroup or 'unknown'}", details={"pid": pid, "exe": proc.exe}))
        for key in [k for k, a in self.book.open.items() if a.kind == "unmanaged_qemu"]:
            if int(key.split(":")[1]) not in unmanaged:
                self.pending.append(Alert(key, "unmanaged_qemu", "info", "", "", now, status="resolved", ended=now))

    def _descriptors_ok(self) -> bool:
        """Whether this interval has the descriptors it needs. Exhaustion is said once on stderr
        (and once when it ends), turns hyperward_monitor_up to 0 and sets
        hyperward_monitor_fd_exhausted; the QEMU watch is skipped meanwhile rather than run
        with reads that fail, so a QEMU started meanwhile is judged once descriptors are back."""
        counted = metrics_mod.descriptors()
        if counted is not None:
            self.health["open_fds"], self.health["max_fds"] = counted
        exhausted = counted is None or counted[0] >= counted[1] - min(FD_RESERVE, counted[1] // 4)
        if exhausted and not self.fd_exhausted:
            what = "cannot list /proc/self/fd" if counted is None else f"{counted[0]} of {counted[1]} open"
            print(f"hyperward monitor: out of file descriptors ({what}): skipping the QEMU process watch until they are freed",
                  file=sys.stderr, flush=True)
        elif not exhausted and self.fd_exhausted:
            print(f"hyperward monitor: file descriptors available again ({counted[0] if counted else '?'} open); "
                  "QEMU process watch resumed", file=sys.stderr, flush=True)
        self.fd_exhausted = exhausted
        self.health["fd_exhausted"] = int(exhausted)
        self.health["up"] = int(self.connected and not exhausted)
        return not exhausted

    # --- reporting --------------------------------------------------------------------------
    def _heartbeat_values(self, running: bool) -> dict[str, object]:
        return {"pid": os.getpid() if running else None, "started": self.started, "last_sample": self.last_wall,
                "interval": self.options.interval, "connected": self.connected, "source": self.source.uri,
                "domains": len(self.active or ()), "last_error": self.last_error}

    def _heartbeat(self, running: bool) -> None:
        self.store.heartbeat(self._heartbeat_values(running))

    def _publish(self) -> None:
        if self.metrics is None:
            return
        firing = Counter(a.kind for a in self.book.open.values())
        errors = {sink.name: sink.health.errors for sink in self.sinks}
        self.health["metrics_rejected_total"] = self.metrics.rejected
        self.metrics.update(metrics_mod.render(self.last_rates, dict(firing), dict(self.counts), self.health, errors))

    def shutdown(self) -> None:
        """SIGTERM path: deliver what is pending, keep the profiles, mark the heartbeat stopped."""
        try:
            if self.pending:
                self._deliver_pending()
            self.store.save_profiles(self.detector.profiles())
            self._heartbeat(running=False)
        finally:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception:  # closing one sink must not keep the others from flushing
                    pass
            self.store.close()
            self.source.close()
            if self.metrics is not None:
                self.metrics.close()


def open_conditions(store: Store) -> list[Alert]:
    """Conditions whose last record is `firing` (the monitor stopped while they were open)."""
    rows = store.conn.execute(
        "SELECT key, kind, severity, summary, action, since, vm, uuid, observed, baseline, status FROM alerts "
        "WHERE event = 0 AND id IN (SELECT max(id) FROM alerts WHERE event = 0 GROUP BY key)").fetchall()
    return [Alert(key, kind, severity, summary, action, since, vm, uuid, observed, baseline)
            for key, kind, severity, summary, action, since, vm, uuid, observed, baseline, status in rows if status == "firing"]

