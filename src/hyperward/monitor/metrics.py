"""The Prometheus endpoint: per-VM rates, alert counts, monitor health, in the text exposition
format (version 0.0.4). Served from a snapshot the monitor replaces once per interval, so a
scrape never waits for libvirt."""

from __future__ import annotations

import errno
import http.server
import io
import ipaddress
import os
import resource
import socket
import sys
import threading
import time
from collections.abc import Iterable

from .rates import Rates
from ..addresses import is_loopback as _loopback

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
    "up": ("gauge", "1 when the monitor is connected to libvirt and sampling (0 while it is out of file descriptors)."),
    "domains": ("gauge", "Running domains in the last sample."),
    "last_sample_timestamp_seconds": ("gauge", "Unix time of the last complete sample."),
    "sample_duration_seconds": ("gauge", "Wall time of the last interval's sampling, storing and detection."),
    "gaps_total": ("counter", "Intervals lost to libvirt being unreachable or the host stalling."),
    "reconnects_total": ("counter", "Successful reconnections to libvirt."),
    "clock_jumps_total": ("counter", "Wall-clock jumps seen between intervals."),
    "open_fds": ("gauge", "File descriptors the monitor has open."),
    "max_fds": ("gauge", "The monitor's file descriptor limit (RLIMIT_NOFILE soft limit)."),
    "fd_exhausted": ("gauge", "1 while the monitor is (nearly) out of file descriptors: samples, /proc reads and alerts may be missed."),
    "metrics_rejected_total": ("counter", "Metrics connections refused because MAX_CONNECTIONS were open."),
}


MAX_CONNECTIONS = 32
REQUEST_TIMEOUT_S = 5.0
CONNECTION_DEADLINE_S = 15.0
MAX_REQUEST_BYTES = 16 * 1024


class _CappedSocketReader(io.RawIOBase):
    """The request side of a connection, ending (EOF) after `limit` bytes: a scrape is one short
    GET, and http.server would otherwise buffer up to 100 header lines of 64 KiB each."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        if self.left <= 0:
            return 0
        view = memoryview(buffer)[: self.left]
        got = self.sock.recv_into(view)
        self.left -= got
        return got


class MetricsServer:
    """The endpoint is reachable by every local user (and more, on a non-loopback bind), so no
    client may hold what the monitor needs: at most `max_connections` at once (more are
    answered 503 and closed at once), `timeout` seconds per read or write, `deadline` seconds
    per connection however slowly it trickles, MAX_REQUEST_BYTES per request, one request per
    connection. A full descriptor table is reported once on stderr, not spun on."""

    def __init__(self, address: str, *, max_connections: int = MAX_CONNECTIONS, timeout: float = REQUEST_TIMEOUT_S,
                 deadline: float = CONNECTION_DEADLINE_S) -> None:
        host, port = parse_listen(address)
        self.body = b"# no sample yet\n"
        self.rejected = 0
        self.accept_errors = 0
        self._last_report = -60.0
        self.deadline = deadline
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.rfile.close()
                self.capped = _CappedSocketReader(self.connection, MAX_REQUEST_BYTES)
                self.rfile = io.BufferedReader(self.capped)

            def parse_request(self) -> bool:
                if not super().parse_request():
                    return False
                if self.capped.left <= 0:
                    self.send_error(431, f"request larger than {MAX_REQUEST_BYTES} bytes")
                    return False
                return True

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

        Handler.timeout = timeout
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.httpd = _Server((host, port), Handler, family, max_connections, self)
        self.address = f"{host}:{self.httpd.server_address[1]}"
        if not _loopback(host):
            print(f"hyperward monitor: warning: metrics on {self.address} are reachable from other hosts "
                  "(VM names, alert counts; no authentication); bind 127.0.0.1 and scrape through a proxy or firewall it",
                  file=sys.stderr, flush=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="metrics", daemon=True)
        self.thread.start()

    def update(self, text: str) -> None:
        self.body = text.encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _accept_failed(self, exc: OSError) -> None:
        self.accept_errors += 1
        now = time.monotonic()
        if now - self._last_report >= 60:
            self._last_report = now
            full = exc.errno in (errno.EMFILE, errno.ENFILE)
            print(f"hyperward monitor: metrics: cannot accept a connection: {exc.strerror or exc}"
                  + ("; the monitor is out of file descriptors" if full else ""), file=sys.stderr, flush=True)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler], family: int,
                 max_connections: int, owner: MetricsServer) -> None:
        self.address_family = family
        self.owner = owner
        self.slots = threading.BoundedSemaphore(max_connections)
        self.active: dict[socket.socket, float] = {}
        self.lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, object]:
        try:
            return super().get_request()
        except OSError as exc:
            self.owner._accept_failed(exc)
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                # The listening socket stays readable while the table is full: without a pause
                # this thread would spin on accept().
                time.sleep(0.2)
            raise

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        if not self.slots.acquire(blocking=False):
            self.owner.rejected += 1
            try:
                request.setblocking(False)
                request.send(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self.lock:
            self.active[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: socket.socket) -> None:
        with self.lock:
            if self.active.pop(request, None) is not None:
                self.slots.release()

    def service_actions(self) -> None:
        """Runs between accepts (every poll interval): ends connections past the deadline, which
        a client trickling a byte at a time would otherwise hold forever."""
        now = time.monotonic()
        with self.lock:
            late = [sock for sock, since in self.active.items() if now - since > self.owner.deadline]
        for sock in late:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def descriptors() -> tuple[int, int] | None:
    """(open descriptors, soft limit) of this process, or None when /proc/self/fd cannot be
    listed, itself a sign the table is full."""
    try:
        count = len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
    return count, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


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
