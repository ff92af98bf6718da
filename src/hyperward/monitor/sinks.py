"""Alert delivery: JSON lines (file or stdout), syslog, a webhook, Prometheus Alertmanager (v2 API).

Network sinks deliver from their own thread through a bounded queue with retries, so a slow or
dead receiver delays nothing and crashes nothing; failures are counted for the metrics endpoint
and reported on stderr at most once a minute. Tokens come from the environment and are only ever
put in a request header, to the configured URL only: a 3xx answer is a delivery error, never
followed.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import IO

from ..safefile import PRIVATE, Ownership, ensure_directory, open_append
from ..textsafe import visible
from .alerts import Alert, iso
from ..addresses import is_loopback as _is_loopback

HTTP_TIMEOUT_S = 5.0
QUEUE_LIMIT = 5000
RETRIES = 3


@dataclass
class SinkHealth:
    sent: int = 0
    errors: int = 0
    dropped: int = 0
    last_error: str | None = None
    last_reported: float = field(default=0.0)


class Sink:
    name = "sink"

    def __init__(self) -> None:
        self.health = SinkHealth()

    def send(self, alerts: list[Alert]) -> None:
        raise NotImplementedError

    def tick(self, open_alerts: list[Alert]) -> None:
        """Called every interval with every open condition (Alertmanager needs re-sends)."""

    def close(self) -> None:
        pass

    def failed(self, message: str) -> None:
        self.health.errors += 1
        self.health.last_error = message
        now = time.time()
        if now - self.health.last_reported >= 60:
            self.health.last_reported = now
            print(f"hyperward monitor: {visible(self.name)}: {visible(message)}", file=sys.stderr, flush=True)


class JsonLinesSink(Sink):
    """One alert per line, flushed at once. '-' is standard output."""

    def __init__(self, path: str, ownership: Ownership = PRIVATE) -> None:
        super().__init__()
        self.name = f"jsonl:{path}"
        self.path = path
        self.handle: IO[str]
        if path == "-":
            self.handle = sys.stdout
        else:
            ensure_directory(os.path.dirname(os.path.abspath(path)))
            self.handle = open_append(path, ownership)

    def send(self, alerts: list[Alert]) -> None:
        try:
            for alert in alerts:
                self.handle.write(alert.line() + "\n")
            self.handle.flush()
            self.health.sent += len(alerts)
        except OSError as exc:
            self.failed(f"cannot write: {exc.strerror or exc}")

    def close(self) -> None:
        if self.handle is not sys.stdout:
            self.handle.close()


class SyslogSink(Sink):
    """RFC 3164 via /dev/log (or host:port over UDP); facility daemon. The message is the summary
    followed by the alert as JSON, so both people and parsers can read it."""

    def __init__(self, address: str = "/dev/log", facility: str = "daemon") -> None:
        super().__init__()
        self.name = f"syslog:{address}"
        target: str | tuple[str, int]
        if ":" in address and not address.startswith("/"):
            host, _, port = address.rpartition(":")
            target = (host, int(port))
        else:
            target = address
        health = self.health

        class Handler(logging.handlers.SysLogHandler):
            def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's API
                exc = sys.exc_info()[1]
                health.errors += 1
                health.last_error = str(exc)

        self.handler = Handler(target, facility=facility)
        self.handler.ident = "hyperward-monitor: "
        self.logger = logging.Logger("hyperward.monitor.syslog")
        self.logger.addHandler(self.handler)
        self.logger.propagate = False

    def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            level = logging.WARNING if alert.status == "firing" and alert.severity in ("high", "critical") else logging.INFO
            state = "RESOLVED" if alert.status == "resolved" else "EVENT" if alert.event else "FIRING"
            before = self.health.errors
            self.logger.log(level, "%s %s %s", state, alert.summary, alert.line())
            if self.health.errors == before:
                self.health.sent += 1

    def close(self) -> None:
        self.handler.close()


class RedirectRefused(urllib.error.URLError):
    """A receiver answered 3xx. The request carries the bearer token, and urllib would repeat
    it, header included, to whatever host the Location names; a compromised or misconfigured
    receiver would thereby collect the token. The configured URL must be the final one."""

    def __init__(self, code: int, location: str) -> None:
        super().__init__(f"answered HTTP {code} redirecting to {location[:200]!r}; redirects are refused "
                         "(the token is only sent to the configured URL; configure the final URL)")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> urllib.request.Request | None:
        raise RedirectRefused(code, newurl)


class _HttpSink(Sink):
    """A background sender: send() only queues."""

    def __init__(self, url: str, token_env: str | None = None) -> None:
        super().__init__()
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url}: expected an http:// or https:// URL")
        self.url = url
        self.token = os.environ.get(token_env) if token_env else None
        self.opener = urllib.request.build_opener(_RefuseRedirects())
        host = urllib.parse.urlsplit(url).hostname or ""
        if self.token and url.startswith("http://") and not _is_loopback(host):
            print(f"hyperward monitor: {self.name}: warning: the bearer token from ${token_env} goes to {host} over plain http; "
                  "anyone on the path can read it (use https://)", file=sys.stderr, flush=True)
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_LIMIT)
        self.thread = threading.Thread(target=self._run, name=f"sink-{type(self).__name__}", daemon=True)
        self.thread.start()

    def _enqueue(self, body: bytes) -> None:
        try:
            self.queue.put_nowait(body)
        except queue.Full:
            self.health.dropped += 1

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(self.endpoint(), data=body, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "hyperward-monitor"})
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
        with self.opener.open(request, timeout=HTTP_TIMEOUT_S) as response:
            response.read(65536)

    def endpoint(self) -> str:
        return self.url

    def _run(self) -> None:
        while True:
            body = self.queue.get()
            if body is None:
                return
            for attempt in range(RETRIES):
                try:
                    self._post(body)
                    self.health.sent += 1
                    break
                except RedirectRefused as exc:
                    # Not retried: the receiver will answer the same way.
                    self.failed(f"POST {self.endpoint()} {exc.reason}")
                    break
                except (urllib.error.URLError, OSError, ValueError) as exc:
                    reason = getattr(exc, "reason", None) or exc
                    if attempt == RETRIES - 1:
                        self.failed(f"POST {self.endpoint()} failed: {reason}")
                    else:
                        time.sleep(0.5 * (2 ** attempt))

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (bounded by `timeout`), then stop."""
        try:
            self.queue.put(None, timeout=1)
        except queue.Full:
            return
        self.thread.join(timeout)


class WebhookSink(_HttpSink):
    """POST {"version": 1, "alerts": [...]} with each alert's JSON form."""

    name = "webhook"

    def send(self, alerts: list[Alert]) -> None:
        if alerts:
            self._enqueue(json.dumps({"version": 1, "source": "hyperward", "alerts": [a.to_json() for a in alerts]}).encode())


class AlertmanagerSink(_HttpSink):
    """Alertmanager's POST /api/v2/alerts. Firing conditions are re-sent every `resend_s` with
    endsAt in the future, as Prometheus does, so a monitor that dies lets them expire instead of
    firing forever; events are sent once with a short endsAt."""

    name = "alertmanager"

    def __init__(self, url: str, token_env: str | None = None, resend_s: float = 60.0, event_ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(url.rstrip("/"), token_env)
        self.resend_s = resend_s
        self.event_ttl_s = event_ttl_s
        self.clock = clock
        self._last_resend = 0.0

    def endpoint(self) -> str:
        return f"{self.url}/api/v2/alerts"

    def _payload(self, alert: Alert) -> dict[str, object]:
        now = self.clock()
        labels = {"alertname": f"hyperward_{alert.kind}", "severity": alert.severity, "kind": alert.kind,
                  "instance": alert.host, "source": "hyperward"}
        if alert.vm:
            labels["vm"] = alert.vm
        if alert.uuid:
            labels["uuid"] = alert.uuid
        annotations = {"summary": alert.summary, "action": alert.action}
        if alert.observed:
            annotations["observed"] = alert.observed
        if alert.baseline:
            annotations["baseline"] = alert.baseline
        if alert.event and alert.details:
            annotations["details"] = json.dumps(alert.details, sort_keys=True)
        if alert.status == "resolved":
            ends = alert.ended or now
        elif alert.event:
            ends = alert.since + self.event_ttl_s
        else:
            ends = now + 4 * self.resend_s
        return {"labels": labels, "annotations": annotations, "startsAt": iso(alert.since), "endsAt": iso(max(ends, alert.since + 1))}

    def send(self, alerts: list[Alert]) -> None:
        if alerts:
            self._enqueue(json.dumps([self._payload(a) for a in alerts]).encode())

    def tick(self, open_alerts: list[Alert]) -> None:
        now = self.clock()
        if open_alerts and now - self._last_resend >= self.resend_s:
            self._last_resend = now
            self.send(open_alerts)
