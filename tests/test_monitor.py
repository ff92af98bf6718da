"""hyperward monitor without a daemon: the parser on a real getAllDomainStats record, rates,
the detector, the loop with a recorded source and controlled clocks, the store, sinks, metrics,
the CLI, and HV-MON-005. The live daemon, Alertmanager and Prometheus are in test_monitor_live.py.

Clocks are injected (wall and monotonic) so clock jumps and stalls can be produced; the recorded
source is the production ReplaySource reading JSON lines in getAllDomainStats's shape.
"""

from __future__ import annotations

import copy
import http.server
import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from hyperward.model import Status
from hyperward.monitor.alerts import Alert, AlertBook, definition_diff, definition_fields
from hyperward.monitor.detect import RULES, Detector, DetectorConfig
from hyperward.monitor import metrics as metrics_mod
from hyperward.monitor.metrics import MetricsServer, parse_listen, render
from hyperward.monitor.rates import Rates, RateTracker
from hyperward.monitor.service import Monitor, MonitorOptions
from hyperward.monitor.sinks import AlertmanagerSink, JsonLinesSink, Sink, SyslogSink, WebhookSink
from hyperward.monitor.source import Event, ReplaySource, SourceError
from hyperward.monitor.store import Store, StoreError
from hyperward.monitor.unmanaged import QemuWatch
from hyperward.parsers.domain_xml import parse_domain
from hyperward.parsers.domstats import parse_domain_stats

from conftest import copy_root, hyperward, scan, statuses

RECORD = json.loads((pathlib.Path(__file__).parent / "fixtures/monitor/domstats-tcg.json").read_text())
UUID_A = "6f1a3c2e-0b7d-4e55-9a61-3c1f0e2d4b8a"
UUID_B = "0c9e5d7a-2f41-4b3e-8d6c-5a7b1e9f3c20"


# --- the record -------------------------------------------------------------------------------
def test_parse_a_real_bulk_stats_record() -> None:
    c = parse_domain_stats(RECORD["name"], RECORD["uuid"], RECORD["stats"])
    assert (c.state, c.vcpus, c.cpu_ns, c.balloon_kib, c.rss_kib) == ("running", 2, 416129000, 131072, 45480)
    assert (c.rx_bytes, c.rx_pkts, c.tx_bytes, c.tx_pkts, c.rd_bytes, c.rd_reqs, c.wr_bytes) == (90, 1, 0, 0, 512, 1, 0)
    assert c.nics == ("vnet16",) and c.disks == ("vda",) and c.vcpu_ns == (180000000, 0)


def test_parse_counts_a_disk_once_and_rejects_odd_values() -> None:
    stats = dict(RECORD["stats"])
    stats.update({"block.count": 2, "block.1.name": "vda", "block.1.wr.bytes": 10**9, "block.0.wr.bytes": 4096,
                  "net.0.tx.bytes": "lots", "balloon.rss": -1, "cpu.time": True, "net.count": 10**9})
    c = parse_domain_stats("x", UUID_A, stats)
    assert c.wr_bytes == 4096 and c.disks == ("vda",)
    assert c.tx_bytes is None and c.rss_kib is None and c.cpu_ns is None
    bare = parse_domain_stats("x", UUID_A, {"state.state": 1})
    assert bare.tx_bytes is None and bare.wr_bytes is None and bare.vcpus == 0


# --- rates ----------------------------------------------------------------------------------
def counters(uuid: str, step: int, cpu_ns_per_step: int = 5 * 10**9, tx_per_step: int = 10_000, base: dict | None = None):  # type: ignore[no-untyped-def]
    stats = copy.deepcopy(base or RECORD["stats"])
    stats["cpu.time"] = 10**9 + step * cpu_ns_per_step
    stats["net.0.tx.bytes"] = step * tx_per_step
    stats["net.0.tx.pkts"] = step * 10
    stats["block.0.wr.bytes"] = step * 4096
    return parse_domain_stats(f"vm-{uuid[:4]}", uuid, stats)


def test_rates_use_the_monotonic_clock_and_skip_counter_resets() -> None:
    tracker = RateTracker()
    assert tracker.update([counters(UUID_A, 1)], wall=1000.0, mono=10.0) == []
    rates = tracker.update([counters(UUID_A, 2)], wall=99999.0, mono=20.0)  # wall jumped; dt is 10 s
    assert rates[0].tx_bps == 1000.0 and rates[0].cpu == pytest.approx(0.25) and rates[0].wr_bps == 409.6
    rates = tracker.update([counters(UUID_A, 1)], wall=99999.0, mono=30.0)  # VM restarted
    assert tracker.resets == [UUID_A]
    assert rates[0].cpu is None and rates[0].tx_bps is None and rates[0].mem_kib == 45480
    assert tracker.update([], wall=0, mono=40.0) == []
    assert tracker.update([counters(UUID_A, 5)], wall=0, mono=50.0) == []  # back after vanishing: no rate yet


def test_cpu_counts_the_time_vcpus_waited_for_a_host_cpu() -> None:
    """A guest burning both vCPUs on a host with no CPU to spare gets 40% of them and waits the
    rest (libvirt's vcpu.N.delay): it is saturated, as its own steal time says."""
    tracker = RateTracker()
    first, second = copy.deepcopy(RECORD["stats"]), copy.deepcopy(RECORD["stats"])
    second["cpu.time"] = first["cpu.time"] + 8 * 10**9  # 0.4 of 2 vCPUs over 10 s
    second["vcpu.0.delay"] = first["vcpu.0.delay"] + 6 * 10**9
    second["vcpu.1.delay"] = first["vcpu.1.delay"] + 6 * 10**9
    tracker.update([parse_domain_stats("x", UUID_A, first)], wall=1000.0, mono=10.0)
    [rates] = tracker.update([parse_domain_stats("x", UUID_A, second)], wall=1010.0, mono=20.0)
    assert rates.cpu == pytest.approx(1.0)
    del second["vcpu.0.delay"], second["vcpu.1.delay"]  # a libvirt without the field: what it used
    tracker = RateTracker()
    tracker.update([parse_domain_stats("x", UUID_A, first)], wall=1000.0, mono=10.0)
    [rates] = tracker.update([parse_domain_stats("x", UUID_A, second)], wall=1010.0, mono=20.0)
    assert rates.cpu == pytest.approx(0.4)


# --- detector -------------------------------------------------------------------------------
def r(ts: float, uuid: str = UUID_A, cpu: float = 0.05, tx: float = 10_000.0, pps: float = 10.0, wr: float = 100_000.0,
      mem: int = 900_000, balloon: int | None = 1_048_576) -> Rates:
    return Rates(ts, uuid, "web1", 2, cpu, mem, balloon, tx, tx, pps, pps, 0.0, wr, wr, 1.0, 1.0)


CFG = DetectorConfig(window=60, warmup=20, refresh_every=5)
T0 = time.mktime((2026, 11, 2, 10, 0, 0, 0, 0, -1))


def feed(detector: Detector, samples: list[Rates]) -> list[tuple[str, str, float]]:
    return [(f.kind, f.status, f.at) for s in samples for f in detector.observe([s])]


def test_quiet_warmup_then_a_surge_fires_once_and_resolves_with_hysteresis() -> None:
    d = Detector(CFG)
    quiet = [r(T0 + 10 * i, tx=10_000 + 500 * (i % 3)) for i in range(40)]
    assert feed(d, quiet) == []
    t = T0 + 400
    surge = [r(t + 10 * i, tx=5_000_000, pps=40_000) for i in range(10)]  # 125-byte packets: a flood
    fired = feed(d, surge)
    assert ("egress_surge", "firing", t + 20) in fired and ("packet_rate_surge", "firing", t + 20) in fired
    assert len(fired) == 2
    med = d.baseline(UUID_A, "tx_bps")[0]  # type: ignore[index]
    assert med < 20_000, "surge values stay out of the baseline"
    # between threshold and the halfway mark: still firing
    assert feed(d, [r(t + 100 + 10 * i, tx=400_000, pps=4000) for i in range(5)]) == []
    done = feed(d, [r(t + 200 + 10 * i, tx=10_000, pps=10) for i in range(3)])
    assert done == [("egress_surge", "resolved", t + 220), ("packet_rate_surge", "resolved", t + 220)]


def test_a_change_is_alerted_at_the_third_sample_after_it_begins() -> None:
    """A rate is an interval's average, so a change 40% into an interval shows as 60% of itself in
    that sample: it counts by that share, and the alert comes with the third sample (within three
    intervals of the change). A 20-second burst straddling three samples (60%, full, 40%) has
    lasted two intervals and does not alert; a change at the very end of an interval is invisible
    in that sample, so three whole intervals follow it."""
    quiet = [r(T0 + 10 * i, cpu=0.03 + 0.002 * (i % 3)) for i in range(30)]
    d = Detector(CFG)
    feed(d, quiet)
    t = T0 + 300
    assert feed(d, [r(t, cpu=0.03 + 0.6 * 0.95), r(t + 10, cpu=0.95)]) == []
    assert feed(d, [r(t + 20, cpu=0.96)]) == [("cpu_saturation", "firing", t + 20)]
    assert d.series[(UUID_A, "cpu")].since == t, "the episode began in the partly covered interval"

    d = Detector(CFG)
    feed(d, quiet)
    burst = [r(t, cpu=0.6 * 0.95), r(t + 10, cpu=0.95), r(t + 20, cpu=0.4 * 0.95)] + [r(t + 30 + 10 * i) for i in range(3)]
    assert feed(d, burst) == [], "a 20-second burst is not a sustained saturation"

    d = Detector(CFG)
    feed(d, quiet)
    late = [r(t, cpu=0.031)] + [r(t + 10 + 10 * i, cpu=0.95) for i in range(3)]
    assert feed(d, late) == [("cpu_saturation", "firing", t + 30)]


def test_one_dip_below_the_threshold_does_not_restart_an_episode() -> None:
    """A stream that stalls for one interval (TCP from a starved guest) is still the same change: the
    dip counts by its share and cannot fire. Two dips in a row end the episode (a new one may begin
    with the second, as with any partly covered interval), and an elevated plateau below the
    threshold is no episode, so a single spike after it does not alert."""
    quiet = [r(T0 + 10 * i, tx=10_000.0 * (1 + 0.05 * (i % 3))) for i in range(30)]
    t = T0 + 300
    d = Detector(CFG)
    feed(d, quiet)
    assert feed(d, [r(t, tx=5e6), r(t + 10, tx=3e5)]) == [], "a dip cannot fire"
    assert feed(d, [r(t + 20, tx=5e6)]) == [("egress_surge", "firing", t + 20)]
    d = Detector(CFG)
    feed(d, quiet)
    two_dips = [r(t, tx=5e6), r(t + 10, tx=3e5), r(t + 20, tx=3e5), r(t + 30, tx=5e6), r(t + 40, tx=5e6)]
    assert feed(d, two_dips) == [("egress_surge", "firing", t + 40)], "a new episode from the second dip on, not the first one's"
    d = Detector(CFG)
    feed(d, quiet)
    plateau = [r(t + 10 * i, tx=3e5) for i in range(6)] + [r(t + 60, tx=5e6), r(t + 70, tx=10_000.0)]
    assert feed(d, plateau) == []


@pytest.mark.parametrize("metric", ["cpu", "tx"])
def test_a_change_is_alerted_within_the_stated_bound_whatever_its_phase(metric: str) -> None:
    """The bound the docs and the live test use (DetectorConfig.alert_within: 4 intervals) holds for
    every phase of a change inside its interval, on a VM and a change level that are both noisy
    (8%); the third sample suffices whenever the interval the change began in shows half of it."""
    rule = next(rule for rule in RULES if rule.metric == {"cpu": "cpu", "tx": "tx_bps"}[metric])
    bound = CFG.alert_within(rule)
    assert bound == 4
    quiet = {"cpu": 0.05, "tx": 10_000.0}[metric]
    level = {"cpu": 0.97, "tx": 5_000_000.0}[metric]
    latencies = {}
    for step in range(21):
        covered = step / 20  # share of the interval ending at t that the change covers
        d = Detector(CFG)
        noise = [1.0, 1.08, 0.93, 1.04, 0.97]
        feed(d, [r(T0 + 10 * i, **{metric: quiet * noise[i % 5]}) for i in range(30)])
        t = T0 + 300
        begins = t - 10 * covered
        samples = [r(t, **{metric: quiet + covered * (level - quiet)})] + [r(t + 10 * i, **{metric: level * noise[i % 5]}) for i in range(1, 8)]
        fired = [at for kind, status, at in feed(d, samples) if kind == rule.kind and status == "firing"]
        assert fired, f"no alert for a change covering {covered:.0%} of its first interval"
        latencies[covered] = (fired[0] - begins) / 10
    assert max(latencies.values()) <= bound, latencies
    assert all(latency <= 3 for covered, latency in latencies.items() if covered >= 0.5), latencies


def test_cpu_saturation_only_for_a_vm_not_normally_saturated() -> None:
    idle, busy = Detector(CFG), Detector(CFG)
    feed(idle, [r(T0 + 10 * i, cpu=0.05) for i in range(30)])
    feed(busy, [r(T0 + 10 * i, cpu=0.97) for i in range(30)])
    assert feed(idle, [r(T0 + 300 + 10 * i, cpu=0.99) for i in range(3)]) == [("cpu_saturation", "firing", T0 + 320)]
    assert feed(busy, [r(T0 + 300 + 10 * i, cpu=0.99) for i in range(10)]) == []


def test_daily_job_alerts_the_first_night_only_and_other_hours_still_alert() -> None:
    d = Detector(DetectorConfig(window=360, warmup=20, refresh_every=30))
    out: list[tuple[str, str, float]] = []
    for i in range(int(3 * 86400 / 10)):  # three days at the default 10 s
        ts = T0 + 10 * i
        hour = time.localtime(ts).tm_hour
        job = hour == 2 and time.localtime(ts).tm_min < 20
        out += feed(d, [r(ts, wr=80_000_000 if job else 100_000)])
    fired = [(k, time.localtime(at).tm_mday) for k, s, at in out if s == "firing"]
    assert fired == [("disk_write_surge", 3)], "first night's 02:00 job alerts, the next night's does not"
    ts = T0 + 3 * 86400 + 4 * 3600
    assert ("disk_write_surge", "firing") in [(k, s) for k, s, _ in feed(d, [r(ts + 10 * i, wr=80_000_000) for i in range(3)])]


def test_a_vm_learns_its_burst_length() -> None:
    d = Detector(CFG)
    feed(d, [r(T0 + 10 * i) for i in range(30)])
    burst = lambda t: [r(t + 10 * i, tx=3_000_000) for i in range(4)] + [r(t + 40 + 10 * i) for i in range(5)]  # noqa: E731
    assert [k for k, s, _ in feed(d, burst(T0 + 400)) if s == "firing"] == ["egress_surge"]
    assert feed(d, burst(T0 + 600)) == [], "a 4-interval burst is now this VM's normal"
    long = [r(T0 + 800 + 10 * i, tx=3_000_000) for i in range(6)]
    assert [k for k, s, _ in feed(d, long) if s == "firing"] == ["egress_surge"]


def test_boot_grace_and_memory_against_the_allocation() -> None:
    d = Detector(CFG)
    feed(d, [r(T0 + 10 * i, mem=200_000) for i in range(30)])
    d.restarted(UUID_A)
    assert feed(d, [r(T0 + 300 + 10 * i, cpu=1.0, wr=50_000_000) for i in range(12)]) == []
    assert feed(d, [r(T0 + 500 + 10 * i, mem=1_000_000) for i in range(5)]) == [], "growing into its allocation is normal"
    grown = feed(d, [r(T0 + 600 + 10 * i, mem=1_048_576 + 600 * 1024) for i in range(3)])
    assert grown == [("memory_growth", "firing", T0 + 620)]


def test_vanished_vm_resolves_and_is_forgotten() -> None:
    d = Detector(DetectorConfig(window=60, warmup=20, refresh_every=5, forget_after_s=3600))
    feed(d, [r(T0 + 10 * i) for i in range(30)] + [r(T0 + 300 + 10 * i, cpu=1.0) for i in range(3)])
    assert [(f.kind, f.status) for f in d.vanished(T0 + 400, set())] == [("cpu_saturation", "resolved")]
    d.vanished(T0 + 400 + 7200, set())
    assert not d.series and not d.last_seen


# --- the loop with a recorded source --------------------------------------------------------
def frames(n: int, vms: tuple[str, ...] = (UUID_A,), burn_from: int | None = None, reset_at: int | None = None) -> list[dict]:
    out = []
    for i in range(n):
        domains = []
        for k, uuid in enumerate(vms):
            step = i - reset_at if reset_at is not None and i >= reset_at else i
            stats = copy.deepcopy(RECORD["stats"])
            busy = burn_from is not None and i >= burn_from
            # 2 vCPUs x 10 s = 2e10 ns of capacity per interval
            stats["cpu.time"] = 10**9 + step * 10**8 + (max(0, i - burn_from) * 2 * 10**10 if busy and burn_from is not None else 0)
            stats["net.0.tx.bytes"] = step * 10_000
            stats["net.0.tx.pkts"] = step * 10
            domains.append({"name": f"vm{k}", "uuid": uuid, "stats": stats})
        out.append({"domains": domains})
    return out


def write_frames(path: pathlib.Path, data: list[dict]) -> pathlib.Path:
    path.write_text("".join(json.dumps(f) + "\n" for f in data))
    return path


class Clock:
    def __init__(self) -> None:
        self.wall, self.mono = T0, 1000.0

    def advance(self, seconds: float, wall: float | None = None) -> None:
        self.mono += seconds
        self.wall += seconds if wall is None else wall


class Collect(Sink):
    name = "collect"

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[Alert] = []

    def send(self, alerts: list[Alert]) -> None:
        self.alerts += alerts


def make_monitor(tmp: pathlib.Path, data: list[dict], clock: Clock, proc_root: str | None = None,
                 source: ReplaySource | None = None) -> tuple[Monitor, Collect]:
    sink = Collect()
    src = source or ReplaySource(str(write_frames(tmp / "frames.jsonl", data)))
    mon = Monitor(MonitorOptions(interval=10.0, detector=DetectorConfig(window=60, warmup=10, refresh_every=5, boot_grace=2),
                                 proc_root=proc_root),
                  src, Store(str(tmp / "monitor.sqlite")), [sink], wall=lambda: clock.wall, mono=lambda: clock.mono)
    src.connect()
    mon.connected = True
    return mon, sink


def run_ticks(mon: Monitor, clock: Clock, n: int) -> None:
    for _ in range(n):
        mon.tick()
        clock.advance(10.0)


def test_loop_stores_rates_in_wal_mode_and_alerts_on_a_miner(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    mon, sink = make_monitor(tmp_path, frames(40, burn_from=25), clock)
    run_ticks(mon, clock, 40)
    mon.shutdown()
    conn = sqlite3.connect(tmp_path / "monitor.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 39
    fired = [(a.kind, a.status) for a in sink.alerts]
    assert fired == [("cpu_saturation", "firing")]
    assert conn.execute("SELECT kind, status FROM alerts").fetchall() == [("cpu_saturation", "firing")]
    assert conn.execute("SELECT value FROM meta WHERE key = 'heartbeat.pid'").fetchone()[0] == "null"


def test_counter_reset_clock_jump_and_stall_are_recorded_not_turned_into_rates(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    mon, sink = make_monitor(tmp_path, frames(30, reset_at=15), clock)
    run_ticks(mon, clock, 12)
    clock.advance(0.0, wall=7200.0)  # NTP step forward by two hours
    run_ticks(mon, clock, 2)
    clock.advance(60.0)  # the host stalled for a minute
    run_ticks(mon, clock, 6)
    mon.shutdown()
    conn = sqlite3.connect(tmp_path / "monitor.sqlite")
    reasons = [row[0] for row in conn.execute("SELECT reason FROM gaps")]
    assert any(reason.startswith("wall clock jumped by +7200 s") for reason in reasons)
    assert any(reason.startswith("no sample for 70 s") for reason in reasons)
    rates = [row for row in conn.execute("SELECT tx_bps FROM samples")]
    assert (None,) in rates, "the interval across the counter reset has no rate"
    assert max(v for (v,) in rates if v is not None) <= 1000.0 + 1e-6
    assert sink.alerts == []


class FlakySource(ReplaySource):
    """A recorded source whose daemon is away for the first `down` connection attempts."""

    def __init__(self, path: str, down: int) -> None:
        super().__init__(path)
        self.down = down

    def connect(self) -> None:
        if self.down > 0:
            self.down -= 1
            raise SourceError("connect: Failed to connect socket to '/run/libvirt/libvirt-sock': Connection refused")
        super().connect()


def test_reconnects_with_backoff_and_records_the_gap(tmp_path: pathlib.Path) -> None:
    source = FlakySource(str(write_frames(tmp_path / "f.jsonl", frames(50))), down=2)
    store = Store(str(tmp_path / "monitor.sqlite"))
    mon = Monitor(MonitorOptions(interval=0.2, proc_root=None), source, store, [])
    stop = threading.Event()
    thread = threading.Thread(target=mon.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    deadline = time.monotonic() + 15
    while mon.health["reconnects_total"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    reconnected = time.monotonic() - started
    time.sleep(1.0)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert 2.5 <= reconnected < 10, "backoff of 1 s then 2 s before the third attempt"
    conn = sqlite3.connect(tmp_path / "monitor.sqlite")
    reasons = [row[0] for row in conn.execute("SELECT reason FROM gaps")]
    assert reasons and "Connection refused" in reasons[0]
    assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] >= 2


def test_a_restarted_monitor_keeps_its_baseline_and_open_conditions(tmp_path: pathlib.Path) -> None:
    clock = Clock()
    data = frames(60, burn_from=25)
    mon, sink = make_monitor(tmp_path, data[:30], clock)
    run_ticks(mon, clock, 30)
    mon.shutdown()
    assert [a.kind for a in sink.alerts] == ["cpu_saturation"]
    quiet_again = frames(60)[30:]
    mon2, sink2 = make_monitor(tmp_path, data[30:40] + quiet_again, clock)
    assert mon2.detector.ready(UUID_A, "tx_bps"), "baseline seeded from the stored samples"
    run_ticks(mon2, clock, 30)
    mon2.shutdown()
    assert [(a.kind, a.status) for a in sink2.alerts] == [("cpu_saturation", "resolved")]


def test_definition_change_and_lifecycle_events(tmp_path: pathlib.Path) -> None:
    xml = (pathlib.Path(__file__).parent / "fixtures/roots/hardened/etc/libvirt/qemu/hardened-vm.xml").read_text()
    domain = parse_domain(xml, "x")
    clock = Clock()

    class WithDefinitions(ReplaySource):
        current = xml

        def definition(self, uuid: str) -> str | None:
            return self.current if uuid == domain.uuid else None

    source = WithDefinitions(str(write_frames(tmp_path / "f.jsonl", [{"domains": [], "defined": [{"name": domain.name, "uuid": domain.uuid}]}])))
    mon, sink = make_monitor(tmp_path, [], clock, source=source)
    mon._reconcile()
    assert sink.alerts == [] and domain.uuid in mon.definitions, "first run learns definitions silently"
    changed = xml.replace("</devices>", "<graphics type='vnc' port='5901' listen='0.0.0.0' passwd='s3cr3tpw'/></devices>")
    assert changed != xml
    source.current = changed
    mon.handle_event(Event("lifecycle", clock.wall, domain.name, domain.uuid, {"event": "defined", "detail": "updated"}))
    mon._deliver_pending()
    kinds = [a.kind for a in sink.alerts]
    assert kinds == ["vm_defined", "definition_changed"]
    change = sink.alerts[1]
    assert change.severity == "high" and any(c.startswith("graphics[") for c in change.details["changes"])  # type: ignore[union-attr]
    assert "s3cr3tpw" not in json.dumps([a.to_json() for a in sink.alerts])
    mon.handle_event(Event("graphics", clock.wall, domain.name, domain.uuid, {"phase": "connect", "remote": "192.0.2.7:51234", "auth": "vnc"}))
    mon.handle_event(Event("device-added", clock.wall, domain.name, domain.uuid, {"device": "hostdev0"}))
    mon.handle_event(Event("lifecycle", clock.wall, domain.name, domain.uuid, {"event": "started", "detail": "migrated"}))
    mon._deliver_pending()
    assert [a.kind for a in sink.alerts[2:]] == ["console_connection", "device_hotplug", "vm_migrated"]
    assert "192.0.2.7" in sink.alerts[2].summary
    mon.shutdown()


def test_definition_diff_names_paths() -> None:
    xml = (pathlib.Path(__file__).parent / "fixtures/roots/hardened/etc/libvirt/qemu/hardened-vm.xml").read_text()
    before = definition_fields(parse_domain(xml, "a"))
    after = definition_fields(parse_domain(xml.replace("</devices>", "<filesystem type='mount' accessmode='passthrough'><source dir='/'/><target dir='host'/></filesystem></devices>"), "b"))
    changes = definition_diff(before, after)
    assert any(c.startswith('filesystems[1].source: (absent) -> "/"') for c in changes)
    assert definition_diff(before, before) == []


def _proc(root: pathlib.Path, pid: int, args: list[str], cgroup: str) -> None:
    d = root / "proc" / str(pid)
    d.mkdir(parents=True)
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    (d / "cgroup").write_text(cgroup)


def test_unmanaged_qemu_is_alerted_once_and_resolved(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "root"
    _proc(root, 1, ["/sbin/init"], "0::/init.scope\n")
    _proc(root, 4242, ["/usr/bin/qemu-system-x86_64", "-name", "guest=web1,debug-threads=on", "-uuid", UUID_A],
          "0::/machine.slice/machine-qemu\\x2d1\\x2dweb1.scope/libvirt/emulator\n")
    _proc(root, 5151, ["qemu-system-x86_64", "-name", "guest=rogue", "-display", "none"], "0::/user.slice/user-1000.slice/session-4.scope\n")
    (root / "run/libvirt/qemu").mkdir(parents=True)
    (root / "run/libvirt/qemu/web1.pid").write_text("4242")  # libvirt's record of the QEMU it started
    watch = QemuWatch(str(root))
    assert {(p.pid, p.guest, p.managed_by) for p in watch.scan()} == {(4242, "web1", "libvirt"), (5151, "rogue", None)}
    clock = Clock()
    mon, sink = make_monitor(tmp_path, frames(5), clock, proc_root=str(root))
    run_ticks(mon, clock, 2)
    assert [(a.kind, a.status, a.vm) for a in sink.alerts] == [("unmanaged_qemu", "firing", "rogue")]
    (root / "proc/5151/cmdline").unlink()
    (root / "proc/5151/cgroup").unlink()
    (root / "proc/5151").rmdir()
    run_ticks(mon, clock, 2)
    assert [(a.kind, a.status) for a in sink.alerts] == [("unmanaged_qemu", "firing"), ("unmanaged_qemu", "resolved")]
    mon.shutdown()


def test_retention_purges_old_samples_and_alerts(tmp_path: pathlib.Path) -> None:
    store = Store(str(tmp_path / "m.sqlite"))
    now = time.time()
    old = Rates(now - 20 * 86400, UUID_A, "a", 1, 0.1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0)
    new = Rates(now, UUID_A, "a", 1, 0.1, 1, 1, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0)
    store.write_interval([old, new], [], {})
    assert store.purge(14, now) == 1
    assert store.conn.execute("SELECT count(*) FROM samples").fetchone()[0] == 1
    assert store.purge(14, now + 60) == 0, "at most hourly"
    store.close()


def test_store_refuses_a_file_that_is_not_a_database(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "garbage.sqlite"
    bad.write_bytes(b"\x7fELF" + os.urandom(4096))
    with pytest.raises(StoreError, match="garbage.sqlite: not a hyperward monitor database"):
        Store(str(bad))


def test_alert_book_deduplicates() -> None:
    book = AlertBook()
    a = Alert("k", "egress_surge", "high", "s", "act", 1.0)
    assert book.fire(a) is a and book.fire(a) is None
    resolved = book.resolve("k", 5.0)
    assert resolved is not None and resolved.status == "resolved" and resolved.ended == 5.0
    assert book.resolve("k", 6.0) is None


# --- sinks and metrics -------------------------------------------------------------------------
def test_syslog_sink_writes_to_a_real_datagram_socket(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "log.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    sink = SyslogSink(path)
    sink.send([Alert("k", "cpu_saturation", "high", "web1: sustained CPU saturation", "look", T0, vm="web1")])
    message = server.recv(65536).decode()
    sink.close()
    server.close()
    assert message.startswith("<28>hyperward-monitor: FIRING web1: sustained CPU saturation {")  # daemon.warning
    assert json.loads(message[message.index("{"):].rstrip("\x00"))["kind"] == "cpu_saturation"
    assert sink.health.sent == 1


def test_webhook_to_a_dead_receiver_counts_errors_and_never_raises() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = WebhookSink(f"http://127.0.0.1:{port}/hook")
    sink.send([Alert("k", "vm_started", "info", "s", "a", T0, event=True)])
    sink.close(timeout=15)
    assert sink.health.errors == 1 and sink.health.sent == 0 and "Connection refused" in (sink.health.last_error or "")


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback receiver that keeps every request's path and headers; `redirect_to` makes it
    answer 302 (the compromised webhook receiver)."""

    seen: list[tuple[str, dict[str, str]]]
    redirect_to: str | None = None

    def do_POST(self) -> None:  # noqa: N802 - http.server's API
        self._answer()

    def do_GET(self) -> None:  # noqa: N802 - http.server's API
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append((self.path, dict(self.headers)))
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def _receiver(redirect_to: str | None = None) -> tuple[http.server.ThreadingHTTPServer, list[tuple[str, dict[str, str]]]]:
    seen: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen, "redirect_to": redirect_to})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.mark.parametrize("kind", ["webhook", "alertmanager"])
def test_http_sinks_refuse_redirects_and_never_forward_the_token(kind: str, monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    """The receiver answers 302 to a second loopback server on another port: the second never
    gets a request (so never the Authorization header), the delivery is one counted error, and
    stderr says so once."""
    thief, stolen = _receiver()
    target = f"http://127.0.0.1:{thief.server_address[1]}/steal"
    receiver, seen = _receiver(redirect_to=target)
    monkeypatch.setenv("HW_SINK_TOKEN", "s3cret-token")
    url = f"http://127.0.0.1:{receiver.server_address[1]}"
    sink = WebhookSink(url + "/hook", "HW_SINK_TOKEN") if kind == "webhook" else AlertmanagerSink(url, "HW_SINK_TOKEN")
    try:
        sink.send([Alert("k", "vm_started", "info", "s", "a", T0, event=True)])
        sink.send([Alert("k2", "vm_started", "info", "s", "a", T0, event=True)])
        sink.close(timeout=15)
    finally:
        receiver.shutdown()
        thief.shutdown()
    assert stolen == []
    assert len(seen) == 2 and all(h.get("Authorization") == "Bearer s3cret-token" for _, h in seen)
    assert sink.health.errors == 2 and sink.health.sent == 0
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if "redirect" in line]
    assert len(lines) == 1 and f"answered HTTP 302 redirecting to '{target}'; redirects are refused" in lines[0], err
    assert "s3cret-token" not in err


def test_token_over_plain_http_to_a_remote_host_is_warned_once(monkeypatch: pytest.MonkeyPatch,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HW_SINK_TOKEN", "t")
    for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook", "http://localhost:9/hook", "https://alerts.example.net/hook"):
        WebhookSink(url, "HW_SINK_TOKEN").close(timeout=1)
    WebhookSink("http://alerts.example.net/hook").close(timeout=1)  # no token, nothing to warn about
    assert "warning" not in capfd.readouterr().err
    WebhookSink("http://alerts.example.net/hook", "HW_SINK_TOKEN").close(timeout=1)
    err = capfd.readouterr().err
    assert err.count("warning") == 1 and "goes to alerts.example.net over plain http" in err and "$HW_SINK_TOKEN" in err


def test_jsonl_sink_appends_one_line_per_alert(tmp_path: pathlib.Path) -> None:
    sink = JsonLinesSink(str(tmp_path / "sub/alerts.jsonl"))
    sink.send([Alert("k1", "vm_started", "info", "a", "b", T0, event=True), Alert("k2", "egress_surge", "high", "c", "d", T0)])
    sink.close()
    lines = (tmp_path / "sub/alerts.jsonl").read_text().splitlines()
    assert [json.loads(x)["kind"] for x in lines] == ["vm_started", "egress_surge"]


def test_metrics_listen_defaults_to_loopback_and_escapes_labels() -> None:
    assert parse_listen("9177") == ("127.0.0.1", 9177)
    assert parse_listen(":9177") == ("127.0.0.1", 9177)
    assert parse_listen("[::1]:9177") == ("::1", 9177)
    for bad in ("host.example:9177", "127.0.0.1:99999", "nope"):
        with pytest.raises(ValueError):
            parse_listen(bad)
    rate = Rates(T0, UUID_A, 'we"b\\1\n', 1, 0.5, 1, 1, 1.0, 2.0, 3.0, 4.0, 0.0, 5.0, 6.0, 7.0, 8.0)
    text = render([rate], {"egress_surge": 1}, {"egress_surge": 2}, {"up": 1}, {"jsonl:-": 0})
    assert f'hyperward_vm_cpu_ratio{{vm="we\\"b\\\\1\\n",uuid="{UUID_A}"}} 0.5' in text
    assert "hyperward_alerts_firing{kind=\"egress_surge\"} 1" in text and "hyperward_monitor_up 1.0" in text
    server = MetricsServer("127.0.0.1:0")
    server.update(text)
    with urllib.request.urlopen(f"http://{server.address}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert response.read().decode() == text
    server.close()


HOLD_CONNECTIONS = """
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
held = []
for _ in range(n):
    held.append(socket.create_connection((host, port)))
print("holding", flush=True)
time.sleep(float(sys.argv[4]))
"""


def _hold(address: str, count: int, seconds: float) -> subprocess.Popen:
    """An unprivileged local user opening `count` connections to the endpoint and sending nothing."""
    host, port = address.rsplit(":", 1)
    proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", "/usr/bin/python3", "-c",
                             HOLD_CONNECTIONS, host, port, str(count), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
    return proc


def _scrape(address: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_metrics_endpoint_outlives_idle_and_trickling_clients(tmp_path: pathlib.Path) -> None:
    """More idle connections than the cap, and one client sending a byte every 0.3 s: the
    excess is answered 503 at once, idle ones are dropped after the timeout, the trickler at
    the deadline, a new scrape is then served, and the monitor loop samples throughout."""
    server = MetricsServer("127.0.0.1:0", max_connections=4, timeout=1.0, deadline=2.5)
    source = ReplaySource(str(write_frames(tmp_path / "f.jsonl", frames(2000))))
    mon = Monitor(MonitorOptions(interval=0.1, proc_root=None), source, Store(str(tmp_path / "monitor.sqlite")), [], metrics=server)
    stop = threading.Event()
    loop = threading.Thread(target=mon.run, args=(stop,))
    loop.start()
    try:
        trickler = socket.create_connection(tuple(server.httpd.server_address[:2]))  # type: ignore[arg-type]
        cut: list[float] = []

        def trickle() -> None:
            started = time.monotonic()
            try:
                for byte in b"GET /metrics HTTP/1.0\r\nX-Slow: " + b"a" * 100:
                    trickler.send(bytes([byte]))
                    time.sleep(0.3)
            except OSError:
                pass
            cut.append(time.monotonic() - started)

        slow = threading.Thread(target=trickle)
        slow.start()
        attacker = _hold(server.address, 20, 30)
        try:
            samples_before = _samples(tmp_path / "monitor.sqlite")
            started = time.monotonic()
            status, _ = _scrape(server.address)
            assert status == 503 and time.monotonic() - started < 1.0
            assert server.rejected >= 16
            time.sleep(1.6)  # the idle connections' timeout has passed
            status, text = _scrape(server.address)
            assert status == 200 and "hyperward_monitor_up 1.0" in text
            assert "hyperward_monitor_metrics_rejected_total" in text
            slow.join(10)
            assert cut and 2.0 <= cut[0] < 4.5, cut
            assert _samples(tmp_path / "monitor.sqlite") > samples_before + 10
        finally:
            attacker.kill()
            attacker.wait()
            trickler.close()
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()


def test_metrics_request_size_is_bounded_and_a_public_bind_is_warned(capfd: pytest.CaptureFixture[str]) -> None:
    server = MetricsServer("127.0.0.1:0")
    try:
        with socket.create_connection(tuple(server.httpd.server_address[:2]), timeout=5) as client:  # type: ignore[arg-type]
            client.sendall(b"GET /metrics HTTP/1.0\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 1000) for i in range(60)) + b"\r\n")
            answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.0 431 "), answer[:80]
        assert _scrape(server.address)[0] == 200
    finally:
        server.close()
    assert "warning" not in capfd.readouterr().err
    public = MetricsServer("0.0.0.0:0")
    public.close()
    err = capfd.readouterr().err
    assert "warning: metrics on 0.0.0.0:" in err and "reachable from other hosts" in err


def test_cli_monitor_says_when_it_runs_out_of_descriptors(tmp_path: pathlib.Path) -> None:
    """The real monitor under a 36-descriptor limit (so the metrics cap of 32 is more than it
    can hold), an unprivileged user holding 40 idle connections: accept() fails with EMFILE,
    which is said once, the loop reports exhaustion once and keeps sampling, and once the idle
    connections time out a scrape shows it recovered."""
    data = write_frames(tmp_path / "frames.jsonl", frames(2000, vms=(UUID_A, UUID_B)))
    db = tmp_path / "monitor.sqlite"
    proc = subprocess.Popen(["prlimit", "--nofile=36", "--", sys.executable, "-m", "hyperward", "monitor", "--replay", str(data),
                             "--interval", "0.2", "--db", str(db), "--metrics", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        address = proc.stderr.readline().split("metrics on http://")[1].split("/metrics")[0]
        attacker = _hold(address, 40, 30)
        time.sleep(0.5)
        during = _samples(db)
        time.sleep(1.0)
        assert _samples(db) > during, "the loop keeps sampling while the table is full"
        time.sleep(metrics_mod.REQUEST_TIMEOUT_S + 1)
        status, text = _scrape(address)
        assert status == 200 and "hyperward_monitor_fd_exhausted 0" in text and "hyperward_monitor_up 1.0" in text
        assert "hyperward_monitor_max_fds 36.0" in text
        attacker.kill()
        attacker.wait()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert err.count("metrics: cannot accept a connection: Too many open files; the monitor is out of file descriptors") == 1, err
    assert err.count("hyperward monitor: out of file descriptors (") == 1, err
    assert err.count("file descriptors available again") == 1, err


# --- the CLI --------------------------------------------------------------------------------
def _start_replay(tmp_path: pathlib.Path, extra: list[str] = ()) -> tuple[subprocess.Popen, pathlib.Path, pathlib.Path]:  # type: ignore[assignment]
    data = write_frames(tmp_path / "frames.jsonl", frames(400, vms=(UUID_A, UUID_B), burn_from=30))
    db, alerts = tmp_path / "monitor.sqlite", tmp_path / "alerts.jsonl"
    config = tmp_path / "config.toml"
    config.write_text("[monitor]\n[monitor.detector]\nwarmup = 10\nrefresh_every = 5\nboot_grace = 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "hyperward", "monitor", "--config", str(config), "--replay", str(data),
                             "--interval", "0.2", "--db", str(db), "--jsonl", str(alerts), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, db, alerts


def _samples(db: pathlib.Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_cli_monitor_status_history_and_sigterm(tmp_path: pathlib.Path) -> None:
    proc, db, alerts = _start_replay(tmp_path)
    deadline = time.monotonic() + 30
    while _samples(db) < 90 and time.monotonic() < deadline:
        time.sleep(0.1)
    running = hyperward("monitor", "status", "--db", str(db))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "Traceback" not in err and "stopped" in err
    assert running.returncode == 0 and "running (pid" in running.stdout and "vm0" in running.stdout and "vm1" in running.stdout
    stopped = hyperward("monitor", "status", "--db", str(db), "--format", "json")
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False
    kinds = [json.loads(line)["kind"] for line in alerts.read_text().splitlines()]
    assert kinds.count("cpu_saturation") == 2  # both VMs
    html, png = tmp_path / "vm0.html", tmp_path / "vm0.png"
    done = hyperward("history", "vm0", "--db", str(db), "--since", "1h", "--html", str(html), "--png", str(png))
    assert done.returncode == 0, done.stderr
    assert "CPU (share of vCPUs)" in done.stdout and "█" in done.stdout and "sustained CPU saturation" in done.stdout
    page = html.read_text()
    assert page.count("<svg") >= 3 and "<script" not in page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert hyperward("history", "nosuchvm", "--db", str(db)).returncode == 2


def test_sigkill_loses_at_most_the_interval_in_flight(tmp_path: pathlib.Path) -> None:
    proc, db, _ = _start_replay(tmp_path)
    deadline = time.monotonic() + 30
    while _samples(db) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        count = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        last = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'heartbeat.last_sample'").fetchone()[0])
        newest = conn.execute("SELECT max(ts) FROM samples").fetchone()[0]
    assert count >= 40 and count % 2 == 0, "whole intervals only (two VMs per interval)"
    assert newest == last, "samples and heartbeat are written in one transaction"


def test_monitor_status_without_a_database(tmp_path: pathlib.Path) -> None:
    done = hyperward("monitor", "status", "--db", str(tmp_path / "none.sqlite"))
    assert done.returncode == 1 and "has never run here" in done.stdout


@pytest.mark.parametrize("config, message", [
    ("[monitor]\ninterval = -1\n", "interval must be a positive number"),
    ("[monitor]\nsink = 3\n", "[[monitor.sink]]"),
    ("[[monitor.sink]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n", "needs url = an http:// or https:// URL"),
    ("[monitor.detector]\nwarmup = 1.5\n", "warmup must be a positive whole number"),
    ("[monitor]\nbogus = 1\n", "unknown key 'bogus' in [monitor]"),
])
def test_monitor_config_errors_are_one_line(tmp_path: pathlib.Path, config: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config)
    done = hyperward("monitor", "--config", str(path), "--replay", "/nonexistent")
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_replay_of_a_bad_recording_is_named(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"domains": []}\nnot json\n')
    with pytest.raises(SourceError, match="bad.jsonl line 2: not JSON"):
        ReplaySource(str(bad)).connect()


# --- HV-MON-005 -------------------------------------------------------------------------------
def _heartbeat_db(path: pathlib.Path, last_sample: float, pid: int | None) -> None:
    store = Store(str(path))
    store.heartbeat({"pid": pid, "started": last_sample - 600, "last_sample": last_sample, "interval": 10.0,
                     "connected": True, "source": "qemu:///system", "domains": 3, "last_error": None})
    store.close()


def test_hv_mon_005_offline_root(tmp_path: pathlib.Path) -> None:
    root = copy_root("weak", tmp_path / "root")
    db = root / "var/lib/hyperward/monitor.sqlite"
    db.parent.mkdir(parents=True, exist_ok=True)
    _heartbeat_db(db, time.time() - 15, 4242)
    assert statuses(scan(root, only=["HV-MON-005"]), "HV-MON-005") == {"hyperward monitor": Status.PASS}
    db.unlink()
    _heartbeat_db(db, time.time() - 3 * 3600, 4242)
    report = scan(root, only=["HV-MON-005"])
    assert statuses(report, "HV-MON-005") == {"hyperward monitor": Status.FAIL}
    assert "180 min before this scan" in report.findings[0].result.message
    db.unlink()
    db.write_bytes(b"garbage" * 100)
    report = scan(root, only=["HV-MON-005"])
    assert report.findings[0].status is Status.ERROR and "/var/lib/hyperward/monitor.sqlite" in report.findings[0].result.message


def test_hv_mon_005_live_pid_gone(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "monitor.sqlite"
    dead = subprocess.Popen(["true"])
    dead.wait()
    _heartbeat_db(db, time.time() - 5, dead.pid)
    done = hyperward("scan", "--only", "HV-MON-005", "--format", "json", env={"HYPERWARD_MONITOR_DB": str(db)})
    result = json.loads(done.stdout)["results"][0]
    assert result["status"] == "fail" and f"pid {dead.pid} in {db} is gone" in result["message"]


# --- the systemd unit -------------------------------------------------------------------------
REPO = pathlib.Path(__file__).resolve().parent.parent


def test_systemd_unit_verifies_and_runs_the_installed_monitor(tmp_path: pathlib.Path) -> None:
    """systemd-analyze verify (Debian's systemd 252) checks every key and that ExecStart exists;
    the unit is installed the way its header says, with /opt/hyperward replaced by this checkout."""
    import shutil

    from conftest import require

    require(shutil.which("systemd-analyze") is not None, "systemd-analyze not installed (apt install systemd)")
    unit = (REPO / "contrib/hyperward-monitor.service").read_text().replace("/opt/hyperward", str(REPO))
    path = tmp_path / "hyperward-monitor.service"
    path.write_text(unit)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    exec_start = next(line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.split()[1:] == ["monitor"]
    assert hyperward(*exec_start.split()[1:], "--help").returncode == 0
    broken = tmp_path / "broken.service"
    broken.write_text(unit.replace("ProtectSystem=strict", "ProtectSystem=strict\nProtectEverything=yes"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "Unknown key 'ProtectEverything'" in bad.stderr


def test_changes_while_disconnected_are_reported_after_reconnecting(tmp_path: pathlib.Path) -> None:
    """libvirtd away: a VM stopped and another was undefined meanwhile; no events came. The
    reconciliation after reconnecting reports both, marked as seen while not connected."""
    both = {"domains": frames(1, vms=(UUID_A, UUID_B))[0]["domains"],
            "defined": [{"name": "vm0", "uuid": UUID_A}, {"name": "vm1", "uuid": UUID_B}]}
    clock = Clock()
    xml = "<domain type='kvm'><name>{n}</name><uuid>{u}</uuid><memory>1</memory><os><type>hvm</type></os></domain>"

    class Host(ReplaySource):
        def definition(self, uuid: str) -> str | None:
            return xml.format(n="vm0" if uuid == UUID_A else "vm1", u=uuid)

    source = Host(str(write_frames(tmp_path / "f.jsonl", [both])))
    mon, sink = make_monitor(tmp_path, [], clock, source=source)
    mon._reconcile()
    run_ticks(mon, clock, 2)
    mon._lost("connection to replay closed")
    source.frames = [{"domains": [], "defined": [{"name": "vm0", "uuid": UUID_A}]}]
    source.index = 0
    assert mon._connect()
    mon._deliver_pending()
    got = [(a.kind, a.vm, "while the monitor was not connected" in a.summary) for a in sink.alerts]
    assert ("vm_undefined", "vm1", True) in got and ("vm_stopped", "vm0", True) in got
    assert mon.store.conn.execute("SELECT count(*) FROM gaps WHERE reason LIKE 'libvirt unreachable%'").fetchone()[0] == 1
    mon.shutdown()


def test_a_balloon_change_while_running_is_an_event(tmp_path: pathlib.Path) -> None:
    data = frames(6)
    for frame in data[3:]:
        frame["domains"][0]["stats"]["balloon.current"] = 262144
    clock = Clock()
    mon, sink = make_monitor(tmp_path, data, clock)
    run_ticks(mon, clock, 6)
    mon.shutdown()
    assert [(a.kind, a.summary) for a in sink.alerts] == [("memory_changed", "vm0: memory changed from 128.0 MiB to 256.0 MiB while running")]


def test_unreadable_inputs_give_one_line_errors(tmp_path: pathlib.Path) -> None:
    garbage = tmp_path / "g.sqlite"
    garbage.write_bytes(b"garbage" * 200)
    for args in (["monitor", "status", "--db", str(garbage)], ["history", "vm0", "--db", str(garbage)],
                 ["monitor", "--db", str(garbage / "x.sqlite"), "--replay", str(garbage)],
                 ["monitor", "--db", str(tmp_path / "m.sqlite"), "--replay", str(garbage)]):
        done = hyperward(*args)
        assert done.returncode == 2 and done.stderr.startswith("hyperward: error: ") and "Traceback" not in done.stderr, args
    assert str(garbage) in hyperward("monitor", "status", "--db", str(garbage)).stderr
    done = hyperward("top", "--connect", f"test://{tmp_path}/absent.xml", "--once")
    assert done.returncode == 2 and "hyperward: error: connect:" in done.stderr and "Traceback" not in done.stderr


def _second_nic(i: int) -> dict:
    return {"net.count": 2, "net.1.name": "vnet7", "net.1.rx.bytes": 0, "net.1.rx.pkts": 0,
            "net.1.tx.bytes": max(0, i - 20) * 50_000_000, "net.1.tx.pkts": max(0, i - 20) * 40_000}


def _second_disk(i: int) -> dict:
    return {"block.count": 2, "block.0.wr.bytes": i * 40_960, "block.1.name": "vdb", "block.1.path": "/var/lib/libvirt/images/data.qcow2",
            "block.1.wr.bytes": max(0, i - 20) * 2_000_000_000, "block.1.wr.reqs": max(0, i - 20) * 30_000}


@pytest.mark.parametrize("extra, kind, suffix, detail, rates", [
    (_second_nic, "egress_surge", "(mostly via vnet7)", "tx_bytes_per_second_by_nic", {"vnet16": 1000.0, "vnet7": 5000000.0}),
    (_second_disk, "disk_write_surge", "(mostly to vdb)", "write_bytes_per_second_by_disk", {"vda": 4096.0, "vdb": 200_000_000.0}),
])
def test_a_surge_alert_names_the_device(tmp_path: pathlib.Path, extra, kind: str, suffix: str, detail: str, rates: dict) -> None:  # type: ignore[no-untyped-def]
    """The VM-wide sum decides; the alert says which NIC or disk carried it (a second device surges)."""
    data = frames(30)
    for i, frame in enumerate(data):
        frame["domains"][0]["stats"].update(extra(i))
    clock = Clock()
    mon, sink = make_monitor(tmp_path, data, clock)
    run_ticks(mon, clock, 30)
    mon.shutdown()
    alert = next(a for a in sink.alerts if a.kind == kind)
    assert alert.summary.endswith(suffix)
    assert alert.details[detail] == rates
