"""Counters to rates. Rates use the monotonic clock, so a wall-clock jump never makes a rate;
a counter that goes down (the VM restarted, so QEMU's counters began again) gives no rate for
that interval instead of a negative or huge one."""

from __future__ import annotations

from dataclasses import dataclass

from ..parsers.domstats import DomainCounters


@dataclass(frozen=True, slots=True)
class Rates:
    """One VM over one interval. cpu is the share of its vCPUs' capacity it used or waited for
    (1.0 = every vCPU busy; libvirt's vcpu.N.delay is the waiting)."""

    ts: float
    uuid: str
    name: str
    vcpus: int
    cpu: float | None
    mem_kib: int | None
    balloon_kib: int | None
    rx_bps: float | None
    tx_bps: float | None
    rx_pps: float | None
    tx_pps: float | None
    drop_ps: float | None
    rd_bps: float | None
    wr_bps: float | None
    rd_iops: float | None
    wr_iops: float | None

    def as_row(self) -> tuple[object, ...]:
        return (self.ts, self.uuid, self.cpu, self.mem_kib, self.balloon_kib, self.rx_bps, self.tx_bps,
                self.rx_pps, self.tx_pps, self.drop_ps, self.rd_bps, self.wr_bps, self.rd_iops, self.wr_iops)


RATE_COLUMNS = ("ts", "uuid", "cpu", "mem_kib", "balloon_kib", "rx_bps", "tx_bps", "rx_pps", "tx_pps",
                "drop_ps", "rd_bps", "wr_bps", "rd_iops", "wr_iops")


def _rate(new: int | None, old: int | None, dt: float) -> float | None:
    if new is None or old is None or new < old:
        return None
    return (new - old) / dt


def _drops(c: DomainCounters) -> int | None:
    if c.rx_drop is None and c.tx_drop is None:
        return None
    return (c.rx_drop or 0) + (c.tx_drop or 0)


class RateTracker:
    """Keeps the previous counters per VM. `resets` after update() names the VMs whose counters
    went backwards this interval."""

    def __init__(self) -> None:
        self._prev: dict[str, tuple[float, DomainCounters]] = {}
        self._before: dict[str, tuple[float, DomainCounters]] = {}
        self.resets: list[str] = []

    def forget(self) -> None:
        """After a gap (libvirtd away) the next interval would average over the gap: start over."""
        self._prev.clear()
        self._before.clear()

    def update(self, counters: list[DomainCounters], wall: float, mono: float) -> list[Rates]:
        self.resets = []
        out: list[Rates] = []
        seen: dict[str, tuple[float, DomainCounters]] = {}
        for c in counters:
            if not c.uuid:
                continue
            seen[c.uuid] = (mono, c)
            prev = self._prev.get(c.uuid)
            if prev is None:
                continue
            dt = mono - prev[0]
            if dt <= 0:
                continue
            p = prev[1]
            reset = c.cpu_ns is not None and p.cpu_ns is not None and c.cpu_ns < p.cpu_ns
            if reset:
                self.resets.append(c.uuid)
            cpu = None
            if c.vcpus > 0 and not reset:
                ns = _rate(c.cpu_ns, p.cpu_ns, dt)
                # A guest that keeps its vCPUs busy on a host with no CPU to spare gets less than it
                # asks for: the time its vCPUs waited to run counts as demand, or a miner on a busy
                # host would never look saturated.
                waited = _rate(c.vcpu_delay_ns, p.vcpu_delay_ns, dt)
                cpu = None if ns is None else min((ns + (waited or 0.0)) / 1e9 / c.vcpus, 1.5)
            out.append(Rates(
                ts=wall, uuid=c.uuid, name=c.name, vcpus=c.vcpus, cpu=cpu,
                mem_kib=c.rss_kib if c.rss_kib is not None else c.balloon_kib,
                balloon_kib=c.balloon_kib,
                rx_bps=None if reset else _rate(c.rx_bytes, p.rx_bytes, dt),
                tx_bps=None if reset else _rate(c.tx_bytes, p.tx_bytes, dt),
                rx_pps=None if reset else _rate(c.rx_pkts, p.rx_pkts, dt),
                tx_pps=None if reset else _rate(c.tx_pkts, p.tx_pkts, dt),
                drop_ps=None if reset else _rate(_drops(c), _drops(p), dt),
                rd_bps=None if reset else _rate(c.rd_bytes, p.rd_bytes, dt),
                wr_bps=None if reset else _rate(c.wr_bytes, p.wr_bytes, dt),
                rd_iops=None if reset else _rate(c.rd_reqs, p.rd_reqs, dt),
                wr_iops=None if reset else _rate(c.wr_reqs, p.wr_reqs, dt),
            ))
        self._before, self._prev = self._prev, seen
        return out

    def nic_tx_rates(self, uuid: str) -> dict[str, float]:
        """Bytes per second each NIC sent over the last interval: which interface a surge used."""
        return self._per_device(uuid, "nics", "nic_tx_bytes")

    def disk_write_rates(self, uuid: str) -> dict[str, float]:
        """Bytes per second written to each disk over the last interval: which disk is being rewritten."""
        return self._per_device(uuid, "disks", "disk_wr_bytes")

    def _per_device(self, uuid: str, names: str, counters: str) -> dict[str, float]:
        before, now = self._before.get(uuid), self._prev.get(uuid)
        if before is None or now is None or now[0] <= before[0]:
            return {}
        dt = now[0] - before[0]
        old = dict(zip(getattr(before[1], names), getattr(before[1], counters)))
        out = {}
        for name, value in zip(getattr(now[1], names), getattr(now[1], counters)):
            rate = _rate(value, old.get(name), dt)
            if rate is not None:
                out[name] = rate
        return out
