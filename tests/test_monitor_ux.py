"""What the monitor tells an operator: which rule a traffic surge raises (packet size decides
between packet_rate_surge and egress_surge), `monitor status` once the monitor stopped and in
colour on a terminal, `history` sparklines on fixed scales, the alert bands and the learnt
baseline on the PNG and the HTML charts (asserted on their pixels), and `top` on libvirt's test
driver. Recorded rates are JSON lines with the samples table's columns."""

from __future__ import annotations

import json
import pathlib
import random
import shutil
import subprocess
import time

import pytest

from hyperward.monitor.alerts import finding_alert
from hyperward.monitor.detect import Detector, DetectorConfig
from hyperward.monitor.rates import Rates

from conftest import hyperward, require

FIXTURES = pathlib.Path(__file__).parent / "fixtures/monitor"


def recorded(name: str) -> list[Rates]:
    out = []
    for line in (FIXTURES / name).read_text().splitlines():
        row = json.loads(line)
        if "comment" in row:
            continue
        out.append(Rates(row["ts"], row["uuid"], row["name"], row["vcpus"], row["cpu"], row["mem_kib"], row["balloon_kib"],
                         row["rx_bps"], row["tx_bps"], row["rx_pps"], row["tx_pps"], row["drop_ps"], row["rd_bps"],
                         row["wr_bps"], row["rd_iops"], row["wr_iops"]))
    return out


def fired(detector: Detector, rates: list[Rates]) -> list[tuple[str, str, float, float | None]]:
    return [(f.kind, f.status, f.at, f.packet_bytes) for r in rates for f in detector.observe([r])]


# --- packet_rate_surge is about small packets -------------------------------------------------
def test_an_exfiltration_of_full_size_packets_is_an_egress_surge_only() -> None:
    rates = recorded("rates-exfil-1400B.jsonl")
    out = fired(Detector(DetectorConfig()), rates)
    surge_start = rates[120].ts
    assert [(k, s, at) for k, s, at, _ in out] == [("egress_surge", "firing", surge_start + 20),
                                                  ("egress_surge", "resolved", rates[136].ts)]


def test_a_syn_scan_of_small_packets_is_a_packet_rate_surge() -> None:
    rates = recorded("rates-synscan-60B.jsonl")
    out = fired(Detector(DetectorConfig()), rates)
    surge_start = rates[120].ts
    assert [(k, s, at) for k, s, at, _ in out] == [("packet_rate_surge", "firing", surge_start + 20),
                                                  ("packet_rate_surge", "resolved", rates[136].ts)]
    size = out[0][3]
    assert size is not None and 50 < size < 70, "the size of the packets above the usual rate"
    d = Detector(DetectorConfig())
    finding = next(f for r in rates for f in d.observe([r]) if f.status == "firing")
    alert = finding_alert(finding, 10.0)
    assert alert.details["bytes_per_packet"] == pytest.approx(size, abs=0.1)
    assert "-byte packets since" in alert.summary


def test_a_scan_on_top_of_bulk_traffic_still_shows_its_small_packets() -> None:
    """The VM usually sends 5 MB/s of full-size packets: the average packet stays large during a
    scan, the packets above the usual rate do not."""
    base = recorded("rates-exfil-1400B.jsonl")[:120]
    bulk = [Rates(r.ts, r.uuid, r.name, r.vcpus, r.cpu, r.mem_kib, r.balloon_kib, r.rx_bps, r.tx_bps + 5_000_000,
                  r.rx_pps, r.tx_pps + 3_570, r.drop_ps, r.rd_bps, r.wr_bps, r.rd_iops, r.wr_iops) for r in base]
    t = bulk[-1].ts + 10
    scan = [Rates(t + 10 * i, r.uuid, r.name, r.vcpus, r.cpu, r.mem_kib, r.balloon_kib, r.rx_bps, r.tx_bps + 60 * 20_000,
                  r.rx_pps, r.tx_pps + 20_000, r.drop_ps, r.rd_bps, r.wr_bps, r.rd_iops, r.wr_iops) for i, r in enumerate(bulk[:5])]
    assert (scan[0].tx_bps or 0) / (scan[0].tx_pps or 1) > 256, "the average packet is not small"
    out = fired(Detector(DetectorConfig()), bulk + scan)
    assert [(k, s) for k, s, _, _ in out] == [("packet_rate_surge", "firing")]


def test_full_size_packets_stay_out_of_the_packet_rate_baseline() -> None:
    """A long exfiltration does not raise the packet-rate baseline, so a scan after it still alerts."""
    rates = recorded("rates-exfil-1400B.jsonl")
    d = Detector(DetectorConfig())
    fired(d, rates[:120])
    before = d.baseline(rates[0].uuid, "tx_pps")
    t = rates[119].ts
    long_exfil = [Rates(t + 10 * (i + 1), r.uuid, r.name, r.vcpus, r.cpu, r.mem_kib, r.balloon_kib, r.rx_bps,
                        r.tx_bps + 8000 * 1400, r.rx_pps, r.tx_pps + 8000, r.drop_ps, r.rd_bps, r.wr_bps, r.rd_iops, r.wr_iops)
                  for i, r in enumerate(rates[:120] * 3)]
    fired(d, long_exfil)
    assert d.baseline(rates[0].uuid, "tx_pps") == before


# --- top on libvirt's test driver -------------------------------------------------------------
def test_top_on_the_test_driver_shows_what_virsh_dominfo_says() -> None:
    """The test driver's bulk stats carry only state.*: the vCPU count and memory come from
    virDomainGetInfo, as `virsh dominfo` shows them (no daemon: test:/// runs in the client)."""
    require(shutil.which("virsh") is not None, "virsh (libvirt-clients) to compare with")
    pytest.importorskip("libvirt")
    info = subprocess.run(["virsh", "-c", "test:///default", "dominfo", "test"], capture_output=True, text=True, timeout=30)
    assert info.returncode == 0, info.stderr
    fields = dict(line.split(":", 1) for line in info.stdout.splitlines() if ":" in line)
    cpus, used_kib = int(fields["CPU(s)"]), int(fields["Used memory"].split()[0])
    assert cpus == 2
    done = hyperward("top", "--once", "--connect", "test:///default", "--interval", "0.2", "--format", "json")
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert (row["name"], row["vcpus"], row["mem_kib"]) == ("test", cpus, used_kib)
    table = hyperward("top", "--once", "--connect", "test:///default", "--interval", "0.2")
    line = next(ln for ln in table.stdout.splitlines() if "│ test" in ln)
    assert line.split("│")[2].strip() == str(cpus) and "2.0 GiB" in line


def test_top_fits_80_columns_with_one_line_per_vm() -> None:
    from rich.console import Console

    from hyperward.monitor.views import top_table

    rates = [Rates(0, "u1", "db-primary", 16, 0.999, 33554432, 33554432, 1023.6 * 1024, 38.2 * 1048576, 912345, 45678, 0,
                   1.5 * 2**30, 600 * 2**20, 1, 1),
             Rates(0, "u2", "web1", 2, 0.05, 900000, 1048576, 15000, 18000, 30, 30, 0, 4096, 100000, 1, 1)]
    for width in (80, 160):
        console = Console(width=width, record=True, color_system=None)
        console.print(top_table(rates, "qemu:///system", "cpu", None, width))
        lines = console.export_text().splitlines()
        assert max(len(line) for line in lines) <= width
        rows = [line for line in lines if "db-primary" in line or "web1" in line]
        assert len(rows) == 2, lines
    assert [cell.strip() for cell in rows[0].split("│")[1:4]] == ["db-primary", "16", "100%"], "160 columns: full units"
    assert "38.2 MiB/s" in rows[0] and "45,678 packets/s" in rows[0]
    console = Console(width=80, record=True, color_system=None)
    console.print(top_table(rates, "qemu:///system", "cpu", None, 80))
    db = next(line.split() for line in console.export_text().splitlines() if "db-primary" in line)
    assert db == ["db-primary", "16", "100%", "38M", "1.0M", "46k", "600M", "1.5G", "32G"]


# --- a monitor database to look at --------------------------------------------------------------
RECORD = json.loads((FIXTURES / "domstats-tcg.json").read_text())
UUID = "6f1a3c2e-0b7d-4e55-9a61-3c1f0e2d4b8a"
EXFIL = range(130, 150)   # intervals of 8,000 packets/s of 1,400 bytes out
BURN = range(185, 220)    # a miner from interval 185 to the end: still open


def _frames(n: int = 220) -> list[dict]:
    rnd = random.Random(3)
    cpu, tx, pkts, wr = 10**9, 0, 0, 0
    out = []
    for i in range(n):
        stats = dict(RECORD["stats"])
        share = 0.995 if i in BURN else 0.05 + rnd.uniform(0, 0.03)  # 5-8% when idle
        cpu += int(share * 2 * 10 * 1e9)
        rate_pkts = 30 + rnd.randint(-5, 5) + (8000 if i in EXFIL else 0)
        tx += (30 + rnd.randint(-5, 5)) * 700 * 10 + (8000 * 1400 * 10 if i in EXFIL else 0)
        pkts += rate_pkts * 10
        wr += int((100_000 + rnd.uniform(-10_000, 10_000)) * 10)
        stats.update({"cpu.time": cpu, "net.0.tx.bytes": tx, "net.0.tx.pkts": pkts, "block.0.wr.bytes": wr})
        out.append({"domains": [{"name": "web1", "uuid": UUID, "stats": stats}]})
    return out


def monitor_db(tmp: pathlib.Path, n: int = 220) -> tuple[pathlib.Path, float]:
    """A real store written by the real loop over a recording, with the wall clock ending now:
    an egress surge that fired and resolved, then a CPU saturation still open. Returns the
    database and the first sample's time."""
    from hyperward.monitor.service import Monitor, MonitorOptions
    from hyperward.monitor.source import ReplaySource
    from hyperward.monitor.store import Store

    recording = tmp / "frames.jsonl"
    recording.write_text("".join(json.dumps(f) + "\n" for f in _frames(n)))
    clock = {"wall": time.time() - 10 * n, "mono": 1000.0}
    db = tmp / "monitor.sqlite"
    source = ReplaySource(str(recording))
    mon = Monitor(MonitorOptions(interval=10.0, detector=DetectorConfig(), proc_root=None), source, Store(str(db)), [],
                  wall=lambda: clock["wall"], mono=lambda: clock["mono"])
    source.connect()
    mon.connected = True
    first = clock["wall"]
    for _ in range(n):
        mon.tick()
        clock["wall"] += 10.0
        clock["mono"] += 10.0
    mon.store.close()
    return db, first
