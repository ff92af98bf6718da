"""`hyperward monitor` against real components: a real libvirtd running a TCG guest that boots
Debian's kernel with a busybox initramfs built here, a real Prometheus Alertmanager receiving the
alerts and a real Prometheus scraping the metrics endpoint (Debian packages, on loopback).

One scenario runs once for the module (it takes about three minutes under TCG) and records every
alert line with the time it appeared; the tests below each assert one part of it:
define -> start -> quiet phase -> trigger (CPU burn + TCP stream out) -> console connection ->
device hot-plug -> definition change -> unmanaged QEMU -> libvirtd restart -> destroy ->
undefine -> SIGTERM.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import tiny_guest
from conftest import require
from hyperward.monitor.detect import RULE_BY_KIND, DetectorConfig
from live_libvirt import connect, responds, running_libvirtd

INTERVAL = 2.0
DELIVERY_S = 1.0
HOST_IP, GUEST_IP = "10.252.9.1", "10.252.9.2"
IMAGES = pathlib.Path("/var/lib/libvirt/hwmon-test")

NETWORK = f"""<network>
  <name>hwmon-net</name>
  <bridge name='hwmonbr0' stp='off' delay='0'/>
  <ip address='{HOST_IP}' netmask='255.255.255.0'/>
</network>
"""


def domain_xml(listen: str, uuid: str | None = None) -> str:
    return f"""<domain type='qemu'>
  <name>hwmon-guest</name>{f"<uuid>{uuid}</uuid>" if uuid else ""}
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{IMAGES}/vmlinuz</kernel>
    <initrd>{IMAGES}/initrd.cpio</initrd>
    <cmdline>console=ttyS0 quiet panic=-1</cmdline>
  </os>
  <features><acpi/></features>
  <on_reboot>destroy</on_reboot>
  <devices>
    <interface type='network'><source network='hwmon-net'/><model type='e1000'/></interface>
    <serial type='file'><source path='{IMAGES}/console.log'/><target port='0'/></serial>
    <graphics type='vnc' autoport='yes' listen='{listen}'/>
  </devices>
</domain>
"""


HOTPLUG = """<interface type='network'><source network='hwmon-net'/><model type='e1000'/></interface>"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float, what: str, step: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@dataclass
class Scenario:
    alerts: list[tuple[float, dict]] = field(default_factory=list)  # (time the line appeared, alert)
    marks: dict[str, float] = field(default_factory=dict)
    webhook: list[dict] = field(default_factory=list)
    alertmanager: list[dict] = field(default_factory=list)
    prometheus: dict[str, object] = field(default_factory=dict)
    status_running: dict[str, object] = field(default_factory=dict)
    status_rc_running: int = -1
    status_rc_stopped: int = -1
    exit_code: int | None = None
    stderr: str = ""
    uuid: str = ""
    metrics_text: str = ""
    top: list[dict] = field(default_factory=list)
    db: pathlib.Path | None = None

    def between(self, start: str, end: str | None = None) -> list[dict]:
        lo, hi = self.marks[start], self.marks[end] if end else float("inf")
        return [a for t, a in self.alerts if lo <= t < hi]

    def kinds(self, start: str, end: str | None = None) -> list[str]:
        return [a["kind"] for a in self.between(start, end)]

    def first(self, kind: str, after: str) -> tuple[float, dict]:
        return next((t, a) for t, a in self.alerts if a["kind"] == kind and a["status"] == "firing" and t >= self.marks[after])


class Tail:
    """Follows the JSON-lines file, stamping each alert with the time it was first seen."""

    def __init__(self, path: pathlib.Path, into: list[tuple[float, dict]]) -> None:
        self.path, self.into, self.offset = path, into, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            time.sleep(0.05)

    def poll(self) -> None:
        if not self.path.exists():
            return
        with self.path.open() as handle:
            handle.seek(self.offset)
            data = handle.read()
        complete = data[: data.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            self.into.append((time.time(), json.loads(line)))


def _sink_server(stop: threading.Event) -> None:
    """The guest's exfiltration target: accepts and discards."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((HOST_IP, tiny_guest.SINK_PORT))
    server.listen()
    server.settimeout(0.5)

    def drain(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1)
            while not stop.is_set():
                try:
                    if not conn.recv(1 << 16):
                        return
                except OSError:
                    if stop.is_set():
                        return

    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except OSError:
            continue
        threading.Thread(target=drain, args=(conn,), daemon=True).start()
    server.close()


class WebhookReceiver:
    def __init__(self, into: list[dict]) -> None:
        import http.server

        received = into

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def _start(args: list[str], tmp: pathlib.Path, name: str) -> subprocess.Popen:
    log = (tmp / f"{name}.log").open("w")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _console() -> str:
    try:
        return (IMAGES / "console.log").read_text(errors="replace")
    except OSError:
        return ""


def _restart_libvirtd() -> None:
    """SIGTERM the running libvirtd and start a new one, as a package upgrade would."""
    pid = int(subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, text=True, check=True).stdout.split()[0])
    os.kill(pid, signal.SIGTERM)
    _wait(lambda: subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode != 0, 60, "libvirtd to exit")
    time.sleep(2 * INTERVAL)
    subprocess.run(["libvirtd", "-d"], check=True, timeout=60)
    _wait(responds, 300, "libvirtd to answer again")


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    for tool, package in (("prometheus", "prometheus"), ("prometheus-alertmanager", "prometheus-alertmanager"),
                          ("busybox", "busybox-static"), ("apt-get", "apt")):
        require(shutil.which(tool) is not None, f"{tool} not installed (apt install {package})")
    tmp = tmp_path_factory.mktemp("monitor-live")
    with running_libvirtd("hwmon-"):
        yield from _run_scenario(tmp)


def _run_scenario(tmp: pathlib.Path) -> Iterator[Scenario]:
    import libvirt

    s = Scenario()
    tiny_guest.build(IMAGES, GUEST_IP, HOST_IP)
    (IMAGES / "console.log").unlink(missing_ok=True)
    am_port, prom_port, metrics_port = _free_port(), _free_port(), _free_port()
    (tmp / "am.yml").write_text("route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n")
    (tmp / "prom.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: hyperward\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n")
    webhook = WebhookReceiver(s.webhook)
    db = tmp / "monitor.sqlite"
    s.db = db
    jsonl = tmp / "alerts.jsonl"
    (tmp / "config.toml").write_text(
        f"[monitor]\ninterval = {INTERVAL}\ndatabase = \"{db}\"\nmetrics = \"127.0.0.1:{metrics_port}\"\n"
        "[monitor.detector]\nwarmup = 10\nrefresh_every = 5\n"
        f"[[monitor.sink]]\ntype = \"jsonl\"\npath = \"{jsonl}\"\n"
        f"[[monitor.sink]]\ntype = \"alertmanager\"\nurl = \"http://127.0.0.1:{am_port}\"\nresend_seconds = 5\n"
        f"[[monitor.sink]]\ntype = \"webhook\"\nurl = \"{webhook.url}\"\ntoken_env = \"HWTEST_WEBHOOK_TOKEN\"\n")
    procs: list[subprocess.Popen] = []
    stop_sink = threading.Event()
    tail = Tail(jsonl, s.alerts)
    conn = connect()
    rogue = None
    try:
        procs.append(_start(["prometheus-alertmanager", f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'am'}",
                             f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="], tmp, "alertmanager"))
        procs.append(_start(["prometheus", f"--config.file={tmp / 'prom.yml'}", f"--storage.tsdb.path={tmp / 'prom'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], tmp, "prometheus"))
        _wait(lambda: _ready(f"http://127.0.0.1:{am_port}/-/ready"), 60, "alertmanager")
        _wait(lambda: _ready(f"http://127.0.0.1:{prom_port}/-/ready"), 60, "prometheus")
        conn.networkCreateXML(NETWORK)
        threading.Thread(target=_sink_server, args=(stop_sink,), daemon=True).start()
        env = {**os.environ, "HWTEST_WEBHOOK_TOKEN": "hwtest-secret-token-1234"}
        monitor = subprocess.Popen([sys.executable, "-m", "hyperward", "monitor", "--config", str(tmp / "config.toml")],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        _wait(lambda: _ready(f"http://127.0.0.1:{metrics_port}/metrics"), 30, "the metrics endpoint")
        time.sleep(INTERVAL)

        s.marks["define"] = time.time()
        dom = conn.defineXML(domain_xml("127.0.0.1"))
        s.uuid = dom.UUIDString()
        _wait(lambda: "vm_defined" in s.kinds("define"), 20, "vm_defined")
        s.marks["start"] = time.time()
        dom.create()
        _wait(lambda: "HYPERWARD-GUEST-READY" in _console(), 180, "the guest to boot")
        s.marks["quiet"] = time.time()
        time.sleep(20 * INTERVAL)
        s.status_rc_running, s.status_running = _status(db)

        s.marks["trigger"] = time.time()
        with socket.create_connection((GUEST_IP, tiny_guest.TRIGGER_PORT), timeout=10):
            pass
        # The change is when the guest starts burning, which under TCG can lag the trigger by a second.
        _wait(lambda: "HYPERWARD-GUEST-BUSY" in _console(), 30, "the guest to start its load", step=0.02)
        s.marks["busy"] = time.time()
        _wait(lambda: {"cpu_saturation", "egress_surge"} <= set(s.kinds("trigger")), 30, "CPU and network alerts")
        _wait(lambda: _am_alerts(am_port, "hyperward_cpu_saturation"), 30, "the alert in Alertmanager")
        s.alertmanager = _get_json(f"http://127.0.0.1:{am_port}/api/v2/alerts")  # type: ignore[assignment]
        s.prometheus["cpu"] = _wait(lambda: _prom(prom_port, 'hyperward_vm_cpu_ratio{vm="hwmon-guest"} > 0.8'), 30, "Prometheus to scrape a busy guest")
        s.prometheus["up"] = _prom(prom_port, 'up{job="hyperward"}')
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
            s.metrics_text = response.read().decode()
        top = subprocess.run([sys.executable, "-m", "hyperward", "top", "--once", "--interval", "2", "--format", "json"],
                             capture_output=True, text=True, timeout=60)
        s.top = json.loads(top.stdout) if top.returncode == 0 else [{"error": top.stderr}]

        s.marks["console"] = time.time()
        port = int(dom.XMLDesc(0).split("<graphics type='vnc' port='")[1].split("'")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as vnc:
            vnc.recv(12)
            _wait(lambda: "console_connection" in s.kinds("console"), 20, "a console_connection event")

        s.marks["hotplug"] = time.time()
        dom.attachDeviceFlags(HOTPLUG, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        _wait(lambda: "device_hotplug" in s.kinds("hotplug"), 20, "a device_hotplug event")

        s.marks["redefine"] = time.time()
        conn.defineXML(domain_xml("0.0.0.0", s.uuid))
        _wait(lambda: "definition_changed" in s.kinds("redefine"), 20, "a definition_changed event")

        s.marks["rogue"] = time.time()
        rogue = subprocess.Popen(["qemu-system-x86_64", "-name", "guest=hwmon-rogue", "-machine", "none", "-display", "none",
                                  "-S", "-nodefaults"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: "unmanaged_qemu" in s.kinds("rogue"), 20, "an unmanaged_qemu alert")
        _stop(rogue)
        _wait(lambda: any(a["kind"] == "unmanaged_qemu" and a["status"] == "resolved" for a in s.between("rogue")), 20, "unmanaged_qemu resolved")

        s.marks["restart"] = time.time()
        _restart_libvirtd()
        conn.close()
        conn = connect()
        dom = conn.lookupByUUIDString(s.uuid)
        _wait(lambda: _metric(metrics_port, "hyperward_monitor_reconnects_total") >= 1, 120, "the monitor to reconnect")
        s.marks["reconnected"] = time.time()
        time.sleep(2 * INTERVAL)

        s.marks["destroy"] = time.time()
        dom.destroy()
        _wait(lambda: "vm_stopped" in s.kinds("destroy"), 20, "vm_stopped")
        _wait(lambda: any(a["kind"] == "cpu_saturation" and a["status"] == "resolved" for a in s.between("destroy")), 20, "cpu_saturation resolved")
        s.marks["undefine"] = time.time()
        dom.undefine()
        _wait(lambda: "vm_undefined" in s.kinds("undefine"), 20, "vm_undefined")

        s.marks["sigterm"] = time.time()
        monitor.send_signal(signal.SIGTERM)
        try:
            s.exit_code = monitor.wait(20)
        except subprocess.TimeoutExpired:
            monitor.kill()
        s.stderr = monitor.communicate()[1]
        s.status_rc_stopped, _ = _status(db)
        tail.poll()
        conn.networkLookupByName("hwmon-net").destroy()
        yield s
    finally:
        tail.stop.set()
        stop_sink.set()
        if rogue is not None:
            _stop(rogue)
        for proc in procs:
            _stop(proc)
        if "monitor" in locals() and monitor.poll() is None:
            monitor.kill()
        try:
            conn.close()
        except Exception:
            pass


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _am_alerts(port: int, name: str) -> list[dict]:
    alerts = _get_json(f"http://127.0.0.1:{port}/api/v2/alerts")
    return [a for a in alerts if a["labels"].get("alertname") == name]  # type: ignore[union-attr]


def _prom(port: int, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?query={urllib.request.quote(query)}"
    return _get_json(url)["data"]["result"]  # type: ignore[index,no-any-return]


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def _status(db: pathlib.Path) -> tuple[int, dict]:
    result = subprocess.run([sys.executable, "-m", "hyperward", "monitor", "status", "--db", str(db), "--format", "json"],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, json.loads(result.stdout) if result.stdout.strip().startswith("{") else {}


ANOMALIES = {"cpu_saturation", "egress_surge", "packet_rate_surge", "disk_write_surge", "memory_growth"}


def test_quiet_phase_raises_no_anomaly(scenario: Scenario) -> None:
    assert not [a for a in scenario.between("define", "trigger") if a["kind"] in ANOMALIES]


def _first_above(scenario: Scenario, metric: str, threshold: float, after: float) -> float | None:
    import sqlite3

    with sqlite3.connect(str(scenario.db)) as conn:
        row = conn.execute(f"SELECT min(ts) FROM samples WHERE uuid = ? AND ts > ? AND {metric} > ?",
                           (scenario.uuid, after, threshold)).fetchone()
    return row[0] if row else None


def test_cpu_and_network_alerts_within_the_stated_bound(scenario: Scenario) -> None:
    """The detector's promise (DetectorConfig.alert_within, docs/alerts.md): a change is alerted
    within 4 intervals of its start, whatever its phase in the interval; a change that ramps up
    counts from the interval in which its rate first exceeds the threshold. The CPU burn starts at
    the BUSY mark at full demand; the TCP stream starts after it and ramps up (slow start, a
    starved guest), so egress counts from the interval ending at its first sample above the
    threshold. DELIVERY_S covers the tick that
    carries the alert to the JSON-lines file and the tail that stamps it."""
    busy = scenario.marks["busy"]
    for kind in ("cpu_saturation", "egress_surge"):
        seen, alert = scenario.first(kind, "trigger")
        t0 = busy
        if kind == "egress_surge":
            above = _first_above(scenario, "tx_bps", alert["details"]["threshold"], busy)
            assert above is not None, "no sample above the egress threshold"
            t0 = max(busy, above - INTERVAL)
        bound = DetectorConfig().alert_within(RULE_BY_KIND[kind]) * INTERVAL + DELIVERY_S
        print(f"{kind}: alerted {seen - t0:.2f} s = {(seen - t0) / INTERVAL:.2f} intervals after the change "
              f"({seen - busy:.2f} s after the BUSY mark; bound {bound:.1f} s)")
        assert seen - t0 <= bound, f"{kind} came {seen - t0:.1f} s after the change (bound {bound:.1f} s)"
        assert alert["vm"] == {"name": "hwmon-guest", "uuid": scenario.uuid}
        assert alert["observed"] and alert["baseline"] and alert["action"] and alert["since"]
    egress = scenario.first("egress_surge", "trigger")[1]
    assert list(egress["details"]["tx_bytes_per_second_by_nic"]) and egress["summary"].endswith(")")
    assert all(nic.startswith("vnet") for nic in egress["details"]["tx_bytes_per_second_by_nic"])
    cpu = scenario.first("cpu_saturation", "trigger")[1]
    assert cpu["details"]["value"] > 0.9 > cpu["details"]["median"]


def test_alerts_are_deduplicated_and_resolved(scenario: Scenario) -> None:
    cpu = [a["status"] for a in (a for _, a in scenario.alerts) if a["kind"] == "cpu_saturation"]
    assert cpu == ["firing", "resolved"]


def test_lifecycle_console_hotplug_and_definition_events(scenario: Scenario) -> None:
    kinds = [a["kind"] for _, a in scenario.alerts]
    for kind in ("vm_defined", "vm_started", "console_connection", "device_hotplug", "definition_changed", "vm_stopped", "vm_undefined"):
        assert kind in kinds
    change = next(a for _, a in scenario.alerts if a["kind"] == "definition_changed")
    assert 'graphics[0].listens[0].address: "127.0.0.1" -> "0.0.0.0"' in change["details"]["changes"]
    assert change["severity"] == "high"
    console = next(a for _, a in scenario.alerts if a["kind"] == "console_connection")
    assert console["details"]["remote"].startswith("127.0.0.1:")


def test_unmanaged_qemu_fires_and_resolves(scenario: Scenario) -> None:
    rogue = [a for a in scenario.between("rogue", "restart") if a["kind"] == "unmanaged_qemu"]
    assert [a["status"] for a in rogue] == ["firing", "resolved"]
    assert rogue[0]["vm"]["name"] == "hwmon-rogue"


def test_survives_libvirtd_restart_and_records_the_gap(scenario: Scenario) -> None:
    import sqlite3

    with sqlite3.connect(str(scenario.db)) as conn:
        gaps = conn.execute("SELECT start, end, reason FROM gaps").fetchall()
        after = conn.execute("SELECT count(*) FROM samples WHERE ts > ?", (scenario.marks["reconnected"],)).fetchone()[0]
    assert any("libvirt unreachable" in reason and scenario.marks["restart"] - 1 <= start <= end for start, end, reason in gaps)
    assert after >= 1, "sampling resumed after the reconnect"


def test_sigterm_exits_cleanly(scenario: Scenario) -> None:
    assert scenario.exit_code == 0, scenario.stderr
    assert "Traceback" not in scenario.stderr
    assert scenario.status_rc_running == 0
    assert scenario.status_running["running"] is True
    assert [vm["name"] for vm in scenario.status_running["vms"]] == ["hwmon-guest"]
    assert scenario.status_rc_stopped == 1


def test_alertmanager_received_the_alerts(scenario: Scenario) -> None:
    cpu = [a for a in scenario.alertmanager if a["labels"]["alertname"] == "hyperward_cpu_saturation"]
    assert cpu and cpu[0]["labels"]["vm"] == "hwmon-guest" and cpu[0]["labels"]["severity"] == "high"
    assert "action" in cpu[0]["annotations"] and "since" in cpu[0]["annotations"]["summary"]


def test_prometheus_scraped_the_metrics(scenario: Scenario) -> None:
    assert scenario.prometheus["up"][0]["value"][1] == "1"
    assert float(scenario.prometheus["cpu"][0]["value"][1]) > 0.8
    assert 'hyperward_alerts_firing{kind="cpu_saturation"} 1' in scenario.metrics_text


def test_webhook_received_json_with_the_token_in_a_header_only(scenario: Scenario) -> None:
    kinds = {a["kind"] for post in scenario.webhook for a in post["body"]["alerts"]}
    assert {"cpu_saturation", "vm_started"} <= kinds
    assert all(post["headers"]["Authorization"] == "Bearer hwtest-secret-token-1234" for post in scenario.webhook)
    assert "hwtest-secret-token-1234" not in json.dumps([p["body"] for p in scenario.webhook])
    assert "hwtest-secret-token-1234" not in scenario.stderr


def test_top_shows_the_busy_guest(scenario: Scenario) -> None:
    guest = [row for row in scenario.top if row.get("name") == "hwmon-guest"]
    assert guest, scenario.top
    assert guest[0]["cpu"] > 0.8 and guest[0]["tx_bps"] > 512 * 1024 and guest[0]["uuid"] == scenario.uuid
