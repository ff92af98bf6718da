"""What the monitor tells an operator: which rule a traffic surge raises (packet size decides
between packet_rate_surge and egress_surge), `monitor status` once the monitor stopped and in
colour on a terminal, `history` sparklines on fixed scales, the alert bands and the learnt
baseline on the PNG and the HTML charts (asserted on their pixels), and `top` on libvirt's test
driver. Recorded rates are JSON lines with the samples table's columns."""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from hyperward.monitor.alerts import finding_alert, iso
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
    require(importlib.util.find_spec("libvirt") is not None, "python3-libvirt (Debian's binding)")
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


def _set_heartbeat(db: pathlib.Path, **values: object) -> None:
    from hyperward.monitor.store import Store

    store = Store(str(db))
    store.heartbeat(values)
    store.close()


def _exe() -> str:
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable)) or shutil.which("hyperward")
    assert exe
    return exe


def _on_a_tty(*args: str, no_color: bool = False) -> str:
    """The command under script(1): a real terminal, 100 columns."""
    require(shutil.which("script") is not None, "script(1) gives the command a real tty")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update({"COLUMNS": "100", "TERM": "xterm-256color", **({"NO_COLOR": "1"} if no_color else {})})
    command = " ".join(shlex.quote(a) for a in [_exe(), *args])
    done = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)
    return done.stdout


# --- monitor status ----------------------------------------------------------------------------
def test_status_of_a_stopped_monitor_says_when_it_was_last_seen_not_connected(tmp_path: pathlib.Path) -> None:
    db, _ = monitor_db(tmp_path, n=40)
    dead = subprocess.Popen(["true"])
    dead.wait()
    last = time.time() - 300
    _set_heartbeat(db, pid=dead.pid, connected=True, last_sample=last)  # SIGKILLed while connected
    done = hyperward("monitor", "status", "--db", str(db))
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert first == f"hyperward monitor: not running (pid {dead.pid} is gone; last seen {iso(last)}, 5 min ago)"
    assert "connected" not in done.stdout and "not watching (the monitor is not running)" in done.stdout
    assert "\x1b[" not in done.stdout, "no colour into a pipe"
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        _set_heartbeat(db, pid=sleeper.pid)  # the monitor's pid, reused by another program
        done = hyperward("monitor", "status", "--db", str(db))
        assert done.returncode == 1 and f"not running (pid {sleeper.pid} is now another program; last seen" in done.stdout
        coloured = _on_a_tty("monitor", "status", "--db", str(db))
        assert "\x1b[1;31mnot running" in coloured, "red on a terminal"
        assert "\x1b[" not in _on_a_tty("monitor", "status", "--db", str(db), no_color=True), "NO_COLOR"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_status_of_a_running_monitor_is_green_on_a_terminal(tmp_path: pathlib.Path) -> None:
    from test_monitor import _samples, _start_replay

    proc, db, _ = _start_replay(tmp_path)
    try:
        deadline = time.monotonic() + 30
        while _samples(db) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        coloured = _on_a_tty("monitor", "status", "--db", str(db))
        plain = hyperward("monitor", "status", "--db", str(db))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert f"\x1b[1;32mrunning (pid {proc.pid})" in coloured and "\x1b[32mconnected" in coloured, coloured
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    assert f"running (pid {proc.pid}), last sample" in plain.stdout and ", connected" in plain.stdout
    stopped = hyperward("monitor", "status", "--db", str(db))
    assert stopped.returncode == 1 and "not running (last seen" in stopped.stdout and "connected" not in stopped.stdout


# --- history -----------------------------------------------------------------------------------
def test_an_idle_guest_draws_low_bars_and_each_row_names_its_scale(tmp_path: pathlib.Path) -> None:
    from hyperward.monitor.views import sparkline

    idle = [0.05, 0.06, 0.07, 0.08] * 20
    assert set(sparkline(idle, 40, top=1.0)) <= {"▁", "▂"}
    assert sparkline([0.0, 0.5, 1.0, 1.5], 4, top=1.0) == "▁▅██"
    assert sparkline([0.0, 50.0, 100.0], 3) == "▁▅█", "0 to the maximum"
    db, _ = monitor_db(tmp_path, n=120)  # idle at 5-8% CPU, no alert yet
    done = hyperward("history", "web1", "--db", str(db), "--since", "1h")
    assert done.returncode == 0, done.stderr
    rows = {title: next(line for line in done.stdout.splitlines() if line.strip().startswith(title))
            for title in ("CPU (share of vCPUs)", "network out", "memory")}
    cpu = rows["CPU (share of vCPUs)"]
    assert "█" not in cpu and "0-100%: max 8%" in cpu
    assert "0-" in rows["network out"] and "KiB/s, last" in rows["network out"]
    assert "0-" in rows["memory"] and "MiB, last" in rows["memory"]


def test_history_lists_a_resolution_at_its_end(tmp_path: pathlib.Path) -> None:
    db, _ = monitor_db(tmp_path)
    with sqlite3.connect(db) as conn:
        since, ended = conn.execute("SELECT since, ended FROM alerts WHERE kind = 'egress_surge' AND status = 'resolved'").fetchone()
    done = hyperward("history", "web1", "--db", str(db), "--since", "1h")
    lines = [ln.strip() for ln in done.stdout.splitlines()]
    assert any(ln.startswith(f"{iso(ended)} resolved [high] web1: outbound traffic surge") for ln in lines), done.stdout
    assert any(ln.startswith(f"{iso(since)} firing   [high] web1: outbound traffic surge") for ln in lines)
    assert not any(ln.startswith(f"{iso(since)} resolved") for ln in lines)


# --- charts ------------------------------------------------------------------------------------
def _charts(tmp_path: pathlib.Path, n: int = 220) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    db, _ = monitor_db(tmp_path, n)
    page, png = tmp_path / "web1.html", tmp_path / "web1.png"
    done = hyperward("history", "web1", "--db", str(db), "--since", "1h", "--html", str(page), "--png", str(png))
    assert done.returncode == 0, done.stderr
    return db, page, png


def _svg(page: str, metric: str) -> str:
    match = re.search(rf'<svg [^>]*data-metric="{metric}">.*?</svg>', page)
    assert match, metric
    return match.group()


def test_html_charts_shade_each_alert_span_and_draw_the_learnt_baseline(tmp_path: pathlib.Path) -> None:
    db, page_path, _ = _charts(tmp_path)
    page = page_path.read_text()
    assert "<script" not in page
    with sqlite3.connect(db) as conn:
        since, ended = conn.execute("SELECT since, ended FROM alerts WHERE kind = 'egress_surge' AND status = 'resolved'").fetchone()
        open_since = conn.execute("SELECT since FROM alerts WHERE kind = 'cpu_saturation'").fetchone()[0]
        first, last = conn.execute("SELECT min(ts), max(ts) FROM samples").fetchone()
    net = _svg(page, "tx_bps")
    [band] = re.findall(r'<rect class="alert-band"[^>]*>', net)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', band))
    assert (attrs["data-kind"], attrs["data-start"], attrs["data-end"]) == ("egress_surge", iso(since), iso(ended))
    left, plot_w = 100, 860 - 100 - 16
    assert float(attrs["x"]) == pytest.approx(left + (since - first) / (last - first) * plot_w, abs=0.1)
    assert float(attrs["width"]) == pytest.approx((ended - since) / (last - first) * plot_w, abs=0.2)
    cpu = _svg(page, "cpu")
    [open_band] = re.findall(r'<rect class="alert-band"[^>]*>', cpu)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', open_band))
    assert attrs["data-start"] == iso(open_since) and attrs["data-end"] == "", "still open: drawn to the last sample"
    assert float(attrs["x"]) + float(attrs["width"]) == pytest.approx(left + plot_w, abs=0.1)
    assert "alert-band" not in _svg(page, "tx_pps"), "1,400-byte packets raised no packet-rate alert"
    # the learnt baseline: the median near the VM's usual 20 KiB/s, the threshold at the floor above it
    assert 'class="baseline-median"' in net and 'class="baseline-threshold"' in net
    assert re.search(r"learnt median \(2\d\.\d KiB/s\)", net) and re.search(r"alert above 5\d\d\.\d KiB/s", net)
    assert ">MiB/s</text>" in net and "time (UTC)" in net and ">% of vCPUs</text>" in cpu and ">100%</text>" in cpu


BAND_RGB = tuple(round(255 * (1 - 0.18) + 0.18 * int("d1242f"[i:i + 2], 16)) for i in (0, 2, 4))


def _band_pixels(png: pathlib.Path) -> tuple[int, float]:
    """Pixels of the alert band's colour (the band over white), and the share that is not white."""
    import matplotlib.image as mpimg

    image = (mpimg.imread(str(png))[:, :, :3] * 255).round()
    band = (abs(image - BAND_RGB) <= 3).all(axis=2).sum()
    return int(band), float((image < 250).any(axis=2).mean())


def test_png_shades_the_alert_bands_and_has_units(tmp_path: pathlib.Path) -> None:
    _, _, png = _charts(tmp_path)
    band, ink = _band_pixels(png)
    assert band > 5000 and ink > 0.03, (band, ink)
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    _, _, png = _charts(quiet, n=120)
    band, ink = _band_pixels(png)
    assert band == 0 and ink > 0.03, "no alert: no band, still a chart"


def test_the_html_page_as_chromium_draws_it(tmp_path: pathlib.Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    require(chromium is not None, "chromium (scripts/install.sh --test) screenshots the page")
    assert chromium
    for case, n, expect in (("alerts", 220, True), ("quiet", 120, False)):
        root = tmp_path / case
        root.mkdir()
        _, page, _ = _charts(root, n)
        shot = root / "page.png"
        done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={root / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
                               page.as_uri()], capture_output=True, text=True, timeout=120)
        assert shot.exists(), done.stderr
        band, ink = _band_pixels(shot)
        assert ink > 0.03, "not blank"
        assert (band > 3000) if expect else band == 0, (case, band)
