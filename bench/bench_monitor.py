"""The monitor's cost per interval for a fleet: 1,000 VMs sampled every 10 s.

    .venv/bin/python bench/bench_monitor.py [--vms 1000] [--intervals 360] [--metrics]

The stats come from a recorded source at the same interface as the libvirt one (sample() returns
(name, uuid, typed-params) exactly as virConnectGetAllDomainStats does; the parameter set is a real
record from a TCG guest, tests/fixtures/monitor/domstats-tcg.json), with counters advancing by
per-VM rates. The monitor's own loop body (Monitor.tick: parse, rates, detection, alert book,
SQLite write in WAL mode, the /proc watch for unmanaged QEMU, the Prometheus snapshot with
--metrics) runs back to back on clocks advanced 10 s per interval, without sleeping. The CPU time of
generating the recorded frames is measured alone and subtracted.

Target (issue #7): sampling, storing and detecting use at most 2% of one core (0.2 s of CPU per
10 s interval) and at most 200 MB of memory. It also times the real getAllDomainStats call for the
guests running on this host's libvirtd, if any.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import queue
import resource
import statistics
import sys
import tempfile
import time
import uuid as uuidlib

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
from hyperward.monitor.metrics import MetricsServer  # noqa: E402
from hyperward.monitor.service import Monitor, MonitorOptions  # noqa: E402
from hyperward.monitor.source import DomainInfo, Event  # noqa: E402
from hyperward.monitor.store import Store  # noqa: E402

TEMPLATE = REPO / "tests/fixtures/monitor/domstats-tcg.json"
INTERVAL = 10.0
CPU_TARGET, MEM_TARGET_MB = 0.02, 200.0
COUNTERS = {"cpu.time": 2.0e8, "cpu.user": 1.5e8, "cpu.system": 0.5e8, "vcpu.0.time": 1.8e8,
            "net.0.rx.bytes": 40_000, "net.0.rx.pkts": 60, "net.0.tx.bytes": 200_000, "net.0.tx.pkts": 180,
            "block.0.rd.bytes": 100_000, "block.0.rd.reqs": 12, "block.0.wr.bytes": 800_000, "block.0.wr.reqs": 40}


class RecordedFleet:
    """`vms` copies of a recorded record; counters advance by a per-VM multiple of COUNTERS."""

    uri = "recorded:fleet"

    def __init__(self, vms: int) -> None:
        record = json.loads(TEMPLATE.read_text())
        self.base = record["stats"]
        self.vms = [(f"vm-{i:04d}", str(uuidlib.UUID(int=i + 1)), 0.5 + (i % 7) / 4) for i in range(vms)]
        self.tick = 0
        self.events: queue.Queue[Event] = queue.Queue()

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sample(self) -> list[tuple[str, str, dict[str, object]]]:
        self.tick += 1
        out = []
        for name, uuid, scale in self.vms:
            params = dict(self.base)
            for key, rate in COUNTERS.items():
                if key in params:
                    params[key] = int(params[key]) + int(rate * scale * INTERVAL * self.tick)
            out.append((name, uuid, params))
        return out

    def domains(self) -> list[DomainInfo]:
        return [DomainInfo(name, uuid, True) for name, uuid, _ in self.vms]

    def definition(self, uuid: str) -> str | None:
        return None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fleet(vms: int, intervals: int, with_metrics: bool) -> dict[str, float]:
    generator = RecordedFleet(vms)
    began = time.process_time()
    for _ in range(intervals):
        generator.sample()
    generate_cpu = (time.process_time() - began) / intervals

    clock = {"wall": time.time() - intervals * INTERVAL, "mono": 1000.0}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(pathlib.Path(tmp) / "monitor.sqlite"))
        server = MetricsServer("127.0.0.1:0") if with_metrics else None
        monitor = Monitor(MonitorOptions(interval=INTERVAL), RecordedFleet(vms), store, [], server,
                          wall=lambda: clock["wall"], mono=lambda: clock["mono"])
        monitor.connected = True
        per_tick = []
        for _ in range(intervals):
            start = time.process_time()
            monitor.tick()
            per_tick.append(time.process_time() - start)
            clock["wall"] += INTERVAL
            clock["mono"] += INTERVAL
        rss = peak_rss_mb()
        rows = store.conn.execute("SELECT count(*) FROM samples").fetchone()[0]
        size = sum(f.stat().st_size for f in pathlib.Path(tmp).glob("monitor.sqlite*")) / 1e6
        monitor.shutdown()
    steady = per_tick[10:] or per_tick
    cpu = statistics.median(steady) - generate_cpu
    return {"cpu_s": cpu, "p95_s": sorted(steady)[int(0.95 * (len(steady) - 1))] - generate_cpu,
            "generate_s": generate_cpu, "rss_mb": rss, "rows": rows, "db_mb": size}


def real_bulk_call(uri: str, runs: int) -> None:
    try:
        import libvirt  # type: ignore[import-not-found]
    except ImportError:
        print("real getAllDomainStats: python3-libvirt not installed")
        return
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as exc:
        print(f"real getAllDomainStats: {uri} not reachable ({str(exc).splitlines()[0]})")
        return
    stats = (libvirt.VIR_DOMAIN_STATS_STATE | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL | libvirt.VIR_DOMAIN_STATS_BALLOON
             | libvirt.VIR_DOMAIN_STATS_VCPU | libvirt.VIR_DOMAIN_STATS_INTERFACE | libvirt.VIR_DOMAIN_STATS_BLOCK)
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = len(conn.getAllDomainStats(stats, libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE))
        times.append(time.perf_counter() - start)
    conn.close()
    if count == 0:
        print(f"real getAllDomainStats on {uri}: no running guest to measure")
        return
    print(f"real getAllDomainStats on {uri}: {count} running guest(s), median {statistics.median(times) * 1000:.1f} ms "
          f"over {runs} calls ({statistics.median(times) / count * 1000:.2f} ms per guest)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=360, help="intervals to run (360 = one hour of 10 s samples)")
    parser.add_argument("--metrics", action="store_true", help="also render the Prometheus snapshot every interval")
    parser.add_argument("--connect", default="qemu:///system", help="libvirt URI for the real bulk-call timing")
    args = parser.parse_args()
    r = fleet(args.vms, args.intervals, args.metrics)
    share = r["cpu_s"] / INTERVAL
    print(f"{args.vms} VMs x {args.intervals} intervals of {INTERVAL:g} s{' with metrics' if args.metrics else ''}: "
          f"median {r['cpu_s'] * 1000:.0f} ms CPU per interval (p95 {r['p95_s'] * 1000:.0f} ms) = {share * 100:.2f}% of one core "
          f"(target <= {CPU_TARGET * 100:.0f}%); peak RSS {r['rss_mb']:.0f} MB (target <= {MEM_TARGET_MB:.0f}); "
          f"{r['rows']:,} samples stored, database {r['db_mb']:.0f} MB; frame generation {r['generate_s'] * 1000:.0f} ms subtracted")
    real_bulk_call(args.connect, 21)
    return 0 if share <= CPU_TARGET and r["rss_mb"] <= MEM_TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
