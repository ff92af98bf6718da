"""Where the monitor's numbers and events come from: libvirt, or a recording of what libvirt said.

Both sources give the same thing: `sample()` returns (name, uuid, typed-params dict) for every
running domain, exactly virConnectGetAllDomainStats's shape; `domains()` lists every defined
domain; events arrive on a queue as Event tuples. Every libvirt call runs on one worker thread
with a deadline, so a hung daemon costs a timeout, never a hung monitor.
"""

from __future__ import annotations

import concurrent.futures
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..collect.libvirt_api import error_line
from ..records import frozen

CALL_TIMEOUT_S = 10.0


class SourceError(Exception):
    """The source cannot answer now (daemon gone, call timed out); the monitor reconnects."""


@frozen
class DomainInfo:
    name: str
    uuid: str
    active: bool


@frozen
class Event:
    """kind: lifecycle, device-added, device-removed, graphics, disconnected."""

    kind: str
    at: float
    name: str | None = None
    uuid: str | None = None
    detail: dict[str, Any] | None = None


StatsRecord = tuple[str, str, dict[str, Any]]


class StatsSource(Protocol):
    uri: str
    events: "queue.Queue[Event]"

    def connect(self) -> None: ...
    def close(self) -> None: ...
    def sample(self) -> list[StatsRecord]: ...
    def domains(self) -> list[DomainInfo]: ...
    def definition(self, uuid: str) -> str | None: ...


# virDomainEventType and the details the monitor names
LIFECYCLE = {0: "defined", 1: "undefined", 2: "started", 3: "suspended", 4: "resumed", 5: "stopped",
             6: "shutdown", 7: "pmsuspended", 8: "crashed"}
LIFECYCLE_DETAIL = {
    "defined": {0: "added", 1: "updated", 2: "renamed", 3: "from snapshot"},
    "undefined": {0: "removed", 1: "renamed"},
    "started": {0: "booted", 1: "migrated", 2: "restored", 3: "from snapshot", 4: "wakeup", 5: "recreated"},
    "suspended": {0: "paused", 1: "migrated", 2: "I/O error", 3: "watchdog", 4: "restored", 5: "from snapshot",
                  6: "API error", 7: "postcopy", 8: "postcopy failed"},
    "resumed": {0: "unpaused", 1: "migrated", 2: "from snapshot", 3: "postcopy", 4: "postcopy failed"},
    "stopped": {0: "shutdown", 1: "destroyed", 2: "crashed", 3: "migrated", 4: "saved", 5: "failed",
                6: "from snapshot"},
    "crashed": {0: "panicked", 1: "crashloaded"},
    "shutdown": {0: "finished", 1: "by the guest", 2: "by the host"},
}
GRAPHICS_PHASE = {0: "connect", 1: "initialize", 2: "disconnect"}
ADDRESS_FAMILY = {0: "ipv4", 1: "ipv6", 2: "unix"}


class LibvirtSource:
    """One connection, kept open; events through libvirt's default event loop on a daemon thread."""

    _loop_started = False
    _loop_lock = threading.Lock()

    def __init__(self, uri: str, timeout: float = CALL_TIMEOUT_S) -> None:
        import libvirt

        self.libvirt = libvirt
        self.uri = uri
        self.timeout = timeout
        self.events: queue.Queue[Event] = queue.Queue(maxsize=10000)
        self.conn: Any = None
        self._callbacks: list[int] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvirt-call")
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        self._start_event_loop()

    @classmethod
    def _start_event_loop(cls) -> None:
        import libvirt

        with cls._loop_lock:
            if cls._loop_started:
                return
            libvirt.virEventRegisterDefaultImpl()

            def run() -> None:
                while True:
                    try:
                        libvirt.virEventRunDefaultImpl()
                    except Exception:  # the loop must outlive one bad callback
                        time.sleep(0.1)

            threading.Thread(target=run, name="libvirt-events", daemon=True).start()
            cls._loop_started = True

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        future = self._pool.submit(fn)
        try:
            return future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            # The worker may stay stuck in the call; give later calls a fresh one.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvirt-call")
            self.conn = None
            raise SourceError(f"{what}: no answer from {self.uri} within {self.timeout:.0f} s") from None
        except self.libvirt.libvirtError as exc:
            raise SourceError(f"{what}: {error_line(exc)}") from None

    def _push(self, event: Event) -> None:
        try:
            self.events.put_nowait(event)
        except queue.Full:
            pass

    def connect(self) -> None:
        lv = self.libvirt

        def open_() -> Any:
            conn = lv.openReadOnly(self.uri)
            try:
                conn.setKeepAlive(5, 3)
            except lv.libvirtError:
                pass
            return conn

        conn = self._call(open_, "connect")
        self.conn = conn

        def name_uuid(dom: Any) -> tuple[str | None, str | None]:
            try:
                return dom.name(), dom.UUIDString()
            except lv.libvirtError:
                return None, None

        def lifecycle(_c: Any, dom: Any, event: int, detail: int, _o: Any) -> None:
            name, uuid = name_uuid(dom)
            kind = LIFECYCLE.get(event, f"event {event}")
            self._push(Event("lifecycle", time.time(), name, uuid,
                             {"event": kind, "detail": LIFECYCLE_DETAIL.get(kind, {}).get(detail, str(detail))}))

        def device_added(_c: Any, dom: Any, alias: str, _o: Any) -> None:
            name, uuid = name_uuid(dom)
            self._push(Event("device-added", time.time(), name, uuid, {"device": alias}))

        def device_removed(_c: Any, dom: Any, alias: str, _o: Any) -> None:
            name, uuid = name_uuid(dom)
            self._push(Event("device-removed", time.time(), name, uuid, {"device": alias}))

        def graphics(_c: Any, dom: Any, phase: int, local: dict[str, Any], remote: dict[str, Any], scheme: str, subject: Any, _o: Any) -> None:
            name, uuid = name_uuid(dom)
            self._push(Event("graphics", time.time(), name, uuid, {
                "phase": GRAPHICS_PHASE.get(phase, str(phase)),
                "remote": f"{remote.get('node')}:{remote.get('service')}" if remote else None,
                "local": f"{local.get('node')}:{local.get('service')}" if local else None,
                "family": ADDRESS_FAMILY.get(int(remote.get("family", -1)), None) if remote else None,
                "auth": scheme,
                "subject": [f"{t}={v}" for t, v in subject] if subject else [],
            }))

        def closed(_c: Any, reason: int, _o: Any) -> None:
            self._push(Event("disconnected", time.time(), detail={"reason": reason}))

        def register() -> None:
            self._callbacks = [
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, None),
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, device_added, None),
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, device_removed, None),
                conn.domainEventRegisterAny(None, lv.VIR_DOMAIN_EVENT_ID_GRAPHICS, graphics, None),
            ]
            conn.registerCloseCallback(closed, None)

        self._call(register, "register events")

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return

        def shut() -> None:
            for cb in self._callbacks:
                try:
                    conn.domainEventDeregisterAny(cb)
                except self.libvirt.libvirtError:
                    pass
            try:
                conn.unregisterCloseCallback()
            except self.libvirt.libvirtError:
                pass
            conn.close()

        try:
            self._call(shut, "close")
        except SourceError:
            pass

    def _need(self) -> Any:
        if self.conn is None:
            raise SourceError(f"not connected to {self.uri}")
        return self.conn

    def sample(self) -> list[StatsRecord]:
        lv, conn = self.libvirt, self._need()
        stats = (lv.VIR_DOMAIN_STATS_STATE | lv.VIR_DOMAIN_STATS_CPU_TOTAL | lv.VIR_DOMAIN_STATS_BALLOON
                 | lv.VIR_DOMAIN_STATS_VCPU | lv.VIR_DOMAIN_STATS_INTERFACE | lv.VIR_DOMAIN_STATS_BLOCK)
        flags = lv.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | getattr(lv, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)

        def call() -> list[StatsRecord]:
            out = []
            for dom, params in conn.getAllDomainStats(stats, flags):
                try:
                    if "vcpu.current" not in params or "balloon.current" not in params:
                        params = {**_from_info(dom), **params}
                    out.append((dom.name(), dom.UUIDString(), params))
                except lv.libvirtError:
                    continue
            return out

        return self._call(call, "getAllDomainStats")  # type: ignore[no-any-return]

    def domains(self) -> list[DomainInfo]:
        lv, conn = self.libvirt, self._need()

        def call() -> list[DomainInfo]:
            out = []
            for dom in conn.listAllDomains(0):
                try:
                    out.append(DomainInfo(dom.name(), dom.UUIDString(), bool(dom.isActive())))
                except lv.libvirtError:
                    continue
            return out

        return self._call(call, "listAllDomains")  # type: ignore[no-any-return]

    def definition(self, uuid: str) -> str | None:
        """The inactive definition without VIR_DOMAIN_XML_SECURE: passwords never reach the monitor."""
        lv, conn = self.libvirt, self._need()

        def call() -> str | None:
            try:
                return conn.lookupByUUIDString(uuid).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)  # type: ignore[no-any-return]
            except lv.libvirtError as exc:
                if exc.get_error_code() == lv.VIR_ERR_NO_DOMAIN:
                    return None
                raise

        return self._call(call, "XMLDesc")  # type: ignore[no-any-return]


def _from_info(dom: Any) -> dict[str, int]:
    """Drivers whose bulk stats leave out vcpu.* and balloon.* (libvirt's test driver gives only
    state.*) still know the vCPU count and the memory, as `virsh dominfo` shows: virDomainGetInfo's
    nrVirtCpu and memory (KiB). Only such drivers pay this extra call; QEMU reports both."""
    info = dom.info()
    out = {}
    if len(info) > 3 and isinstance(info[3], int) and info[3] > 0:
        out["vcpu.current"] = info[3]
    if len(info) > 2 and isinstance(info[2], int) and info[2] > 0:
        out["balloon.current"] = info[2]
    return out


class ReplaySource:
    """A recording: JSON lines, each {"domains": [{"name", "uuid", "stats": {...}}, ...]} (what
    getAllDomainStats returned at one interval), optionally with "defined": [...] and "events".
    Each sample() returns the next line; at the end the last line repeats with its counters
    frozen, as a host whose guests went idle would."""

    def __init__(self, path: str) -> None:
        self.uri = f"replay:{path}"
        self.path = path
        self.events: queue.Queue[Event] = queue.Queue()
        self.frames: list[dict[str, Any]] = []
        self.index = 0

    def connect(self) -> None:
        if self.frames:
            return  # reconnecting to a recording continues where it was
        try:
            with open(self.path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    try:
                        frame = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise SourceError(f"{self.path} line {number}: not JSON ({exc.msg})") from None
                    if not isinstance(frame, dict) or not isinstance(frame.get("domains"), list):
                        raise SourceError(f"{self.path} line {number}: expected an object with a \"domains\" list")
                    self.frames.append(frame)
        except OSError as exc:
            raise SourceError(f"{self.path}: {exc.strerror or exc}") from None
        if not self.frames:
            raise SourceError(f"{self.path}: no recorded samples")

    def close(self) -> None:
        pass

    def _frame(self) -> dict[str, Any]:
        return self.frames[min(self.index, len(self.frames) - 1)]

    def sample(self) -> list[StatsRecord]:
        frame = self._frame()
        self.index += 1
        for raw in frame.get("events", []):
            self.events.put(Event(raw.get("kind", "lifecycle"), time.time(), raw.get("name"), raw.get("uuid"), raw.get("detail")))
        return [(str(d.get("name", "")), str(d.get("uuid", "")), dict(d.get("stats", {})))
                for d in frame["domains"] if isinstance(d, dict)]

    def domains(self) -> list[DomainInfo]:
        frame = self._frame()
        active = {str(d.get("uuid")) for d in frame["domains"] if isinstance(d, dict)}
        defined = frame.get("defined") or [{"name": d.get("name"), "uuid": d.get("uuid")} for d in frame["domains"] if isinstance(d, dict)]
        return [DomainInfo(str(d.get("name")), str(d.get("uuid")), str(d.get("uuid")) in active) for d in defined]

    def definition(self, uuid: str) -> str | None:
        return None
