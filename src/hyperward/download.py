"""Downloads for `hyperward db update`: plain urllib with a timeout, a size limit and a progress bar.

Three clocks bound a download, because a server that sends one byte just before each read
timeout would otherwise keep a root process (and its lock on the update) forever: `timeout`
per read, `deadline` for the whole transfer (connecting, headers and body), and a minimum rate
(MIN_RATE bytes per second averaged over each `timeout`-long window once data flows).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

MAX_DOWNLOAD = 2 * 1024 * 1024 * 1024
DEFAULT_DEADLINE = 1800.0
MIN_RATE = 1024


class DownloadError(Exception):
    pass


class _Watchdog:
    """Shuts every socket the download opened once the deadline passes, which ends a read
    blocked in the kernel (a TLS handshake or a status line trickled a byte at a time) at once."""

    def __init__(self, seconds: float) -> None:
        self.sockets: list[socket.socket] = []
        self.fired = False
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def track(self, create: Callable[..., socket.socket]) -> Callable[..., socket.socket]:
        def created(*args: Any, **kwargs: Any) -> socket.socket:
            sock = create(*args, **kwargs)
            with self.lock:
                self.sockets.append(sock)
                if self.fired:
                    sock.shutdown(socket.SHUT_RDWR)
            return sock
        return created

    def _fire(self) -> None:
        with self.lock:
            self.fired = True
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def _opener(watchdog: _Watchdog) -> urllib.request.OpenerDirector:
    class HTTPConnection(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = watchdog.track(self._create_connection)  # type: ignore[has-type]

    class HTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = watchdog.track(self._create_connection)  # type: ignore[has-type]

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(HTTPSConnection, req)

    return urllib.request.build_opener(HTTPHandler(), HTTPSHandler())


def download(url: str, dest: str, *, timeout: float = 60.0, show_progress: bool = True, limit: int = MAX_DOWNLOAD,
             deadline: float = DEFAULT_DEADLINE, min_rate: int = MIN_RATE) -> int:
    """Fetch url into dest; returns the byte count. Only http(s) and file URLs."""
    if not url.startswith(("http://", "https://", "file://")):
        raise DownloadError("only http://, https:// and file:// URLs are supported")
    started = time.monotonic()
    watchdog = _Watchdog(deadline)
    watchdog.timer.start()
    try:
        return _fetch(url, dest, timeout, show_progress, limit, deadline, min_rate, started, watchdog)
    except DownloadError:
        if watchdog.fired:
            raise DownloadError(f"did not finish within the {deadline:.0f} s deadline; abandoned") from None
        raise
    finally:
        watchdog.timer.cancel()


def _fetch(url: str, dest: str, timeout: float, show_progress: bool, limit: int, deadline: float, min_rate: int,
           started: float, watchdog: _Watchdog) -> int:
    request = urllib.request.Request(url, headers={"User-Agent": "hyperward"})
    try:
        response = _opener(watchdog).open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(str(getattr(exc, "reason", exc))) from None
    total = int(response.headers.get("Content-Length") or 0) or None
    done = 0
    window_start, window_bytes = time.monotonic(), 0
    try:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      disable=not show_progress, transient=True) as progress, open(dest, "wb") as out:
            task = progress.add_task(url.rsplit("/", 1)[-1] or url, total=total)
            while True:
                # read1: whatever one read returns. read(n) would wait for all n bytes, each
                # trickled byte resetting the socket timeout.
                chunk = response.read1(1 << 16) if hasattr(response, "read1") else response.read(1 << 16)
                now = time.monotonic()
                if now - started > deadline:
                    raise DownloadError(f"did not finish within the {deadline:.0f} s deadline; abandoned")
                if not chunk:
                    break
                done += len(chunk)
                window_bytes += len(chunk)
                if done > limit:
                    raise DownloadError(f"larger than {limit} bytes; abandoned")
                if now - window_start >= timeout:
                    if window_bytes / (now - window_start) < min_rate:
                        raise DownloadError(f"slower than {min_rate} bytes/s over {now - window_start:.0f} s "
                                            f"({window_bytes} bytes); abandoned after {done} bytes")
                    window_start, window_bytes = now, 0
                out.write(chunk)
                progress.update(task, advance=len(chunk))
    except (OSError, TimeoutError, http.client.HTTPException) as exc:
        raise DownloadError(f"interrupted after {done} bytes ({exc})") from None
    finally:
        response.close()
    if watchdog.fired:
        raise DownloadError(f"did not finish within the {deadline:.0f} s deadline; abandoned")
    if total is not None and done != total:
        raise DownloadError(f"truncated: {done} of {total} bytes")
    return done
