"""The Prometheus endpoint: per-VM rates, alert counts, monitor health, in the text exposition
format (version 0.0.4). Served from a snapshot the monitor replaces once per interval, so a
scrape never waits for libvirt."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterable

from .rates import Rates

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

VM_GAUGES = (
    ("cpu", "hyperward_vm_cpu_ratio", "Share of the VM's vCPU capacity used or waited for (vcpu.N.delay) over the last interval (1 = all vCPUs busy)."),
    ("mem_kib", "hyperward_vm_memory_bytes", "Host memory used by the VM's QEMU process (balloon rss), or its current balloon size.", 1024),
    ("rx_bps", "hyperward_vm_network_receive_bytes_per_second", "Bytes per second received by the VM, all NICs."),
    ("tx_bps", "hyperward_vm_network_transmit_bytes_per_second", "Bytes per second sent by the VM, all NICs."),
    ("rx_pps", "hyperward_vm_network_receive_packets_per_second", "Packets per second received by the VM."),
    ("tx_pps", "hyperward_vm_network_transmit_packets_per_second", "Packets per second sent by the VM."),
    ("drop_ps", "hyperward_vm_network_drops_per_second", "Packets per second dropped on the VM's NICs."),
    ("rd_bps", "hyperward_vm_disk_read_bytes_per_second", "Bytes per second read from the VM's disks."),
    ("wr_bps", "hyperward_vm_disk_write_bytes_per_second", "Bytes per second written to the VM's disks."),
    ("rd_iops", "hyperward_vm_disk_read_requests_per_second", "Read requests per second."),
    ("wr_iops", "hyperward_vm_disk_write_requests_per_second", "Write requests per second."),
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    return repr(float(value))


def render(rates: Iterable[Rates], firing: dict[str, int], alerts_total: dict[str, int], health: dict[str, float],
           sink_errors: dict[str, int]) -> str:
    rates = list(rates)
    lines: list[str] = []
    for spec in VM_GAUGES:
        attr, metric, help_text = spec[0], spec[1], spec[2]
        scale = spec[3] if len(spec) > 3 else 1
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for r in rates:
            value = getattr(r, attr)
            if value is not None:
                lines.append(f"{metric}{_labels(vm=r.name, uuid=r.uuid)} {_num(value * scale)}")
    lines += ["# HELP hyperward_alerts_firing Open alert conditions by kind.", "# TYPE hyperward_alerts_firing gauge"]
    lines += [f"hyperward_alerts_firing{_labels(kind=k)} {v}" for k, v in sorted(firing.items())]
    lines += ["# HELP hyperward_alerts_total Alerts and events raised since the monitor started, by kind.",
              "# TYPE hyperward_alerts_total counter"]
    lines += [f"hyperward_alerts_total{_labels(kind=k)} {v}" for k, v in sorted(alerts_total.items())]
    lines += ["# HELP hyperward_monitor_sink_errors_total Failed alert deliveries by sink.",
              "# TYPE hyperward_monitor_sink_errors_total counter"]
    lines += [f"hyperward_monitor_sink_errors_total{_labels(sink=k)} {v}" for k, v in sorted(sink_errors.items())]
    for name, (kind, help_text) in HEALTH.items():
        if name in health:
            lines += [f"# HELP hyperward_monitor_{name} {help_text}", f"# TYPE hyperward_monitor_{name} {kind}",
                      f"hyperward_monitor_{name} {_num(health[name])}"]
    return "\n".join(lines) + "\n"


HEALTH = {
    "up": ("gauge", "1 when the monitor is connected to libvirt and sampling."),
    "domains": ("gauge", "Running domains in the last sample."),
    "last_sample_timestamp_seconds": ("gauge", "Unix time of the last complete sample."),
    "sample_duration_seconds": ("gauge", "Wall time of the last interval's sampling, storing and detection."),
    "gaps_total": ("counter", "Intervals lost to libvirt being unreachable or the host stalling."),
    "reconnects_total": ("counter", "Successful reconnections to libvirt."),
    "clock_jumps_total": ("counter", "Wall-clock jumps seen between intervals."),
}


class MetricsServer:
    def __init__(self, address: str) -> None:
        host, port = parse_listen(address)
        self.body = b"# no sample yet\n"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's API
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = server.body
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        cls = http.server.ThreadingHTTPServer
        if ":" in host:
            class V6(http.server.ThreadingHTTPServer):
                address_family = __import__("socket").AF_INET6
            cls = V6
        self.httpd = cls((host, port), Handler)
        self.httpd.daemon_threads = True
        self.address = f"{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    def update(self, text: str) -> None:
        self.body = text.encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def parse_listen(address: str) -> tuple[str, int]:
    """"9177" and ":9177" mean loopback; any other host must be named."""
    text = address.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not port_text.isdigit():
            raise ValueError(f"{address!r}: expected HOST:PORT, [IPv6]:PORT or PORT")
        host = host.strip("[]") or "127.0.0.1"
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{address!r}: port out of range")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"{address!r}: {host!r} is not an IP address") from None
    return host, port
