"""libvirt's bulk domain statistics (virConnectGetAllDomainStats typed parameters) to counters.

The keys are documented in libvirt's src/libvirt-domain.c (virConnectGetAllDomainStats): state.*,
cpu.*, balloon.*, vcpu.<n>.*, net.<n>.*, block.<n>.*. Values missing from a record (a guest
without a balloon driver, a NIC without stats) stay None: absent is not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# virDomainState
STATE_NAMES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended")


@dataclass(frozen=True, slots=True)
class DomainCounters:
    """One domain at one instant: cumulative counters (ns, bytes, packets, requests) and gauges (KiB)."""

    name: str
    uuid: str
    state: str
    cpu_ns: int | None
    vcpus: int
    vcpu_ns: tuple[int, ...]
    balloon_kib: int | None
    rss_kib: int | None
    available_kib: int | None
    unused_kib: int | None
    rx_bytes: int | None
    rx_pkts: int | None
    rx_drop: int | None
    tx_bytes: int | None
    tx_pkts: int | None
    tx_drop: int | None
    rd_bytes: int | None
    rd_reqs: int | None
    wr_bytes: int | None
    wr_reqs: int | None
    nics: tuple[str, ...]
    disks: tuple[str, ...]
    nic_tx_bytes: tuple[int | None, ...] = ()
    disk_wr_bytes: tuple[int | None, ...] = ()
    # vcpu.N.delay: time the vCPU threads were runnable but waited for a host CPU (the guest's steal)
    vcpu_delay_ns: int | None = None


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if value >= 0 else None


def _sum(params: Mapping[str, object], prefix: str, count: int, field: str) -> int | None:
    total, seen = 0, False
    for i in range(count):
        value = _int(params.get(f"{prefix}.{i}.{field}"))
        if value is not None:
            total += value
            seen = True
    return total if seen else None


def parse_domain_stats(name: str, uuid: str, params: Mapping[str, object]) -> DomainCounters:
    """Sums NICs and disks: an attacker exfiltrates through whichever NIC is there."""
    state_code = _int(params.get("state.state"))
    state = STATE_NAMES[state_code] if state_code is not None and state_code < len(STATE_NAMES) else "unknown"
    vcpus = _int(params.get("vcpu.current")) or 0
    vcpu_ns = tuple(_int(params.get(f"vcpu.{i}.time")) or 0 for i in range(min(vcpus, 4096)))
    nets = min(_int(params.get("net.count")) or 0, 4096)
    blocks = min(_int(params.get("block.count")) or 0, 4096)
    # Without VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING (never asked for) each entry is a disk's top
    # image; backingIndex is set even then (libvirt 9 reports 1 for a top qcow2), so it is no
    # guide. A backing-chain member, should one appear, repeats its disk's name: count a name once.
    names_seen: set[str] = set()
    top_disks = []
    for i in range(blocks):
        disk = str(params.get(f"block.{i}.name", f"block{i}"))
        if disk not in names_seen:
            names_seen.add(disk)
            top_disks.append(i)
    nic_names = tuple(str(params.get(f"net.{i}.name", f"net{i}")) for i in range(nets))
    disk_names = tuple(str(params.get(f"block.{i}.name", f"block{i}")) for i in top_disks)

    def disk_sum(field: str) -> int | None:
        values = [_int(params.get(f"block.{i}.{field}")) for i in top_disks]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return DomainCounters(
        name=name,
        uuid=uuid,
        state=state,
        cpu_ns=_int(params.get("cpu.time")),
        vcpus=vcpus,
        vcpu_ns=vcpu_ns,
        balloon_kib=_int(params.get("balloon.current")),
        rss_kib=_int(params.get("balloon.rss")),
        available_kib=_int(params.get("balloon.available")),
        unused_kib=_int(params.get("balloon.unused")),
        rx_bytes=_sum(params, "net", nets, "rx.bytes"),
        rx_pkts=_sum(params, "net", nets, "rx.pkts"),
        rx_drop=_sum(params, "net", nets, "rx.drop"),
        tx_bytes=_sum(params, "net", nets, "tx.bytes"),
        tx_pkts=_sum(params, "net", nets, "tx.pkts"),
        tx_drop=_sum(params, "net", nets, "tx.drop"),
        rd_bytes=disk_sum("rd.bytes"),
        rd_reqs=disk_sum("rd.reqs"),
        wr_bytes=disk_sum("wr.bytes"),
        wr_reqs=disk_sum("wr.reqs"),
        nics=nic_names,
        disks=disk_names,
        nic_tx_bytes=tuple(_int(params.get(f"net.{i}.tx.bytes")) for i in range(nets)),
        disk_wr_bytes=tuple(_int(params.get(f"block.{i}.wr.bytes")) for i in top_disks),
        vcpu_delay_ns=_sum(params, "vcpu", min(vcpus, 4096), "delay"),
    )
