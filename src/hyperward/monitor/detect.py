"""Per-VM, per-metric baselines and the anomaly rules.

A baseline is the median and the median absolute deviation (MAD) of the VM's own recent values:
both ignore the occasional spike that would drag a mean and a standard deviation. Values judged
anomalous are kept out of the baseline, so an attack in progress does not become "normal" within
the hour. Once a VM has `seasonal_min_days` of history at an hour of the day, that hour's typical
high (the median over days of the hour's 95th percentile) also counts as normal: the nightly backup
that writes 200 MB/s at 02:00 stops alerting, a 02:00 surge on a VM that never does that does not.

Each rule needs `sustain` consecutive anomalous intervals to fire and `resolve_after` normal ones
to resolve; the first interval after a VM (re)starts or after a gap has no rate and breaks neither.
A change rarely starts on a sample: a rate is the average over the interval, so the interval a
change begins in shows part of it. That interval counts by its share when it is clearly above
normal (beyond the baseline's k sigma and `onset` of the way to the threshold), and an episode
fires once it has lasted more than `sustain - 1` intervals. With the default 3, a change that holds
its level is alerted at the third sample after it begins when the interval it began in shows it,
and at the fourth when it began too late in that interval to be told from noise: within
`sustain + 1` = 4 intervals of the change whatever its phase (`DetectorConfig.alert_within`), for a
VM that has not learnt longer bursts. Three cannot be promised: a change in the last moments of an
interval looks, three samples later, exactly like a 20-second burst that straddles three samples,
which has lasted two intervals and must not alert. A change that ramps up (a TCP stream's slow
start) counts from the interval it first exceeds the threshold in; one sample that dips below the
threshold but stays clearly above normal keeps a pending episode alive by its share.

packet_rate_surge is about small packets (a SYN scan, a flood): it counts an interval only when
the packets above the VM's usual rate are small (bytes per packet from tx_bps/tx_pps, see
`_packet_bytes`). A surge of full-size packets is egress_surge's business; its packet rate is
still kept out of the packet-rate baseline, so a scan that follows it is not hidden.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import field

from ..records import frozen
from .rates import Rates

MAD_SCALE = 1.4826  # MAD of a normal distribution times this is its standard deviation


@frozen
class Rule:
    kind: str
    metric: str
    title: str
    severity: str
    floor: float
    action: str
    gauge: bool = False  # a reading at the sample, not an average over the interval


RULES: tuple[Rule, ...] = (
    Rule("cpu_saturation", "cpu", "sustained CPU saturation", "high", 0.0,
         "look for a cryptominer or runaway process in the guest (top inside it; the QEMU process on the host); pause the VM if you cannot explain it"),
    Rule("egress_surge", "tx_bps", "outbound traffic surge", "high", 512 * 1024,
         "check where the VM sends data (conntrack -L, a capture on its tap device); block the destination or pause the VM if it is exfiltration or DDoS participation"),
    Rule("packet_rate_surge", "tx_pps", "outbound packet-rate surge", "high", 300.0,
         "many small packets suggest scanning or a flood: capture on the VM's tap device and apply an nwfilter or rate limit"),
    Rule("disk_write_surge", "wr_bps", "disk write surge", "high", 8 * 1024 * 1024,
         "mass rewriting of files is how ransomware looks from outside: snapshot the disk now, then look inside the guest"),
    Rule("memory_growth", "mem_kib", "memory growth", "medium", 512 * 1024,
         "compare the guest's memory with its definition (virsh dommemstat); a QEMU that keeps growing may be leaking or abused",
         gauge=True),
)
RULE_BY_KIND = {r.kind: r for r in RULES}
RULE_FOR_METRIC = {r.metric: r for r in RULES}
METRICS = tuple(dict.fromkeys(r.metric for r in RULES))


@frozen
class DetectorConfig:
    window: int = 360
    warmup: int = 90
    refresh_every: int = 30
    k: float = 6.0
    ratio: float = 4.0
    memory_ratio: float = 1.25
    cpu_saturation: float = 0.9
    cpu_sustain: int = 3
    sustain: int = 3
    resolve_after: int = 3
    seasonal_min_days: int = 1
    seasonal_days: int = 14
    seasonal_margin: float = 1.5
    forget_after_s: float = 86400.0
    boot_grace: int = 12
    hysteresis: float = 0.5
    onset: float = 0.05
    burst_margin: float = 0.5
    burst_accept: int = 6
    burst_memory_s: float = 7 * 86400.0
    max_sustain: int = 18
    small_packet_bytes: float = 256.0
    floors: dict[str, float] = field(default_factory=dict)

    def floor(self, rule: Rule) -> float:
        return self.floors.get(rule.metric, rule.floor)

    def alert_within(self, rule: Rule) -> int:
        """Intervals from the start of a change that holds its level to its alert, at the latest:
        `sustain` whole intervals after the one it began in, which may not count."""
        return (self.cpu_sustain if rule.metric == "cpu" else self.sustain) + 1


@frozen
class Anomaly:
    """A rule that fired or resolved for one VM. `observed` and `baseline` are the values that
    decided it, in the metric's unit."""

    kind: str
    uuid: str
    name: str
    status: str
    since: float
    at: float
    observed: float
    baseline: float
    threshold: float
    seasonal: bool
    packet_bytes: float | None = None


def _median(values: list[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[index]


class Series:
    """One VM's one metric. Plain slots and an array ring: 1,000 VMs x 5 metrics must stay small."""

    __slots__ = ("ring", "pos", "count", "pushes", "med", "sigma", "lasted", "cool", "firing", "since", "bursts", "dipped",
                 "onset_ts", "onset_value", "streak", "peak", "hour", "day", "hour_values", "profile", "seasonal_hi", "threshold")

    def __init__(self, window: int) -> None:
        self.ring = array("d", bytes(8 * window))
        self.pos = 0
        self.count = 0
        self.pushes = 0
        self.med = 0.0
        self.sigma = 0.0
        self.lasted = 0.0
        self.streak: array[float] | None = None
        self.dipped = False
        self.bursts: deque[tuple[float, float]] | None = None
        self.cool = 0
        self.firing = False
        self.since = 0.0
        self.onset_ts = 0.0
        self.onset_value = 0.0
        self.peak = 0.0
        self.hour = -1
        self.day = -1
        self.hour_values = array("d")
        self.profile: dict[int, deque[float]] = {}
        self.seasonal_hi: float | None = None
        self.threshold = float("inf")

    def push(self, value: float, window: int) -> None:
        self.ring[self.pos] = value
        self.pos = (self.pos + 1) % window
        if self.count < window:
            self.count += 1
        self.pushes += 1

    def refresh(self) -> None:
        values = sorted(self.ring[: self.count])
        med = _median(values)
        deviations = sorted(abs(v - med) for v in values)
        self.med = med
        self.sigma = MAD_SCALE * _median(deviations)


class Detector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.series: dict[tuple[str, str], Series] = {}
        self.names: dict[str, str] = {}
        self.last_seen: dict[str, float] = {}
        self.grace: dict[str, int] = {}

    # --- learning -----------------------------------------------------------------------
    def _series(self, uuid: str, metric: str) -> Series:
        key = (uuid, metric)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series(self.config.window)
        return series

    def learn(self, uuid: str, metric: str, values: Iterable[float]) -> None:
        """Seed a baseline from stored samples (a restarted monitor need not warm up again)."""
        series = self._series(uuid, metric)
        for value in values:
            series.push(value, self.config.window)
        if series.count:
            series.refresh()
            self._threshold(series, RULE_FOR_METRIC[metric])

    def seed_profile(self, uuid: str, metric: str, hour: int, highs: Iterable[float]) -> None:
        series = self._series(uuid, metric)
        series.profile[hour] = deque(highs, maxlen=self.config.seasonal_days)

    def profiles(self) -> Iterator[tuple[str, str, int, list[float]]]:
        for (uuid, metric), series in self.series.items():
            for hour, highs in series.profile.items():
                yield uuid, metric, hour, list(highs)

    def ready(self, uuid: str, metric: str) -> bool:
        series = self.series.get((uuid, metric))
        return series is not None and series.count >= self.config.warmup

    def baseline(self, uuid: str, metric: str) -> tuple[float, float, float | None] | None:
        series = self.series.get((uuid, metric))
        if series is None or series.count == 0:
            return None
        return series.med, series.sigma, series.seasonal_hi

    def _threshold(self, series: Series, rule: Rule) -> None:
        c = self.config
        if rule.metric == "cpu":
            # Saturation is abnormal only for a VM whose usual level (or this hour's) is below it.
            normal_hi = max(series.med + c.k * series.sigma, series.seasonal_hi or 0.0)
            series.threshold = c.cpu_saturation if normal_hi < c.cpu_saturation else float("inf")
            return
        floor = c.floor(rule)
        ratio = c.memory_ratio if rule.metric == "mem_kib" else c.ratio
        threshold = max(series.med + c.k * series.sigma, series.med * ratio, series.med + floor)
        if series.seasonal_hi is not None:
            threshold = max(threshold, series.seasonal_hi * c.seasonal_margin)
        series.threshold = threshold

    def _roll_hour(self, series: Series, hour: int, day: int) -> None:
        if series.hour != -1 and (hour != series.hour or day != series.day) and len(series.hour_values) >= 3:
            high = _quantile(sorted(series.hour_values), 0.95)
            series.profile.setdefault(series.hour, deque(maxlen=self.config.seasonal_days)).append(high)
        if hour != series.hour or day != series.day:
            series.hour, series.day = hour, day
            series.hour_values = array("d")
            highs = series.profile.get(hour)
            if highs is not None and len(highs) >= self.config.seasonal_min_days:
                series.seasonal_hi = _median(sorted(highs))
            else:
                series.seasonal_hi = None

    def restarted(self, uuid: str) -> None:
        """A VM that (re)boots burns CPU and writes logs for a minute or two: that is neither an
        anomaly nor its baseline, so `boot_grace` intervals are skipped."""
        self.grace[uuid] = self.config.boot_grace

    # --- judging ------------------------------------------------------------------------
    def observe(self, rates: list[Rates]) -> list[Anomaly]:
        c = self.config
        out: list[Anomaly] = []
        clock: dict[float, tuple[int, int]] = {}
        for r in rates:
            hour_day = clock.get(r.ts)
            if hour_day is None:
                local = time.localtime(r.ts)
                hour_day = clock[r.ts] = (local.tm_hour, local.tm_yday)
            self.names[r.uuid] = r.name
            self.last_seen[r.uuid] = r.ts
            if self.grace:
                left = self.grace.get(r.uuid, 0)
                if left:
                    if left == 1:
                        del self.grace[r.uuid]
                    else:
                        self.grace[r.uuid] = left - 1
                    continue
            for rule in RULES:
                value = getattr(r, rule.metric)
                if value is None:
                    continue
                value = float(value)
                series = self._series(r.uuid, rule.metric)
                hour_before = series.hour
                self._roll_hour(series, *hour_day)
                if series.hour != hour_before and series.count:
                    self._threshold(series, rule)
                series.hour_values.append(value)
                if series.count < c.warmup:
                    series.push(value, c.window)
                    if series.count == c.warmup or series.count % c.refresh_every == 0:
                        series.refresh()
                        self._threshold(series, rule)
                    continue
                # Hysteresis: once firing, a condition ends only below halfway between the median
                # and the threshold, so a noisy plateau does not fire and resolve repeatedly.
                threshold = series.threshold
                if rule.metric == "mem_kib" and r.balloon_kib:
                    # QEMU's memory grows after boot until the guest has touched its allocation:
                    # that is normal. More than the allocation plus QEMU's overhead is not.
                    threshold = r.balloon_kib + c.floor(rule)
                if series.firing:
                    anomalous = value > series.med + (threshold - series.med) * c.hysteresis
                else:
                    anomalous = value > threshold
                large = beyond = False
                if rule.kind == "packet_rate_surge":
                    size = self._packet_bytes(r)
                    large = size is not None and size > c.small_packet_bytes
                    beyond = anomalous
                    anomalous = anomalous and not large
                if anomalous:
                    series.cool = 0
                    series.dipped = False
                    if series.firing:
                        series.lasted += 1.0
                        series.peak = max(series.peak, value)
                        continue
                    if series.streak is None:
                        series.streak = array("d")
                        series.since = r.ts
                        if series.onset_ts:
                            series.streak.append(series.onset_value)
                            series.since = series.onset_ts
                    series.streak.append(value)
                    series.onset_ts = 0.0
                    series.peak = max(series.streak)
                    series.lasted = self._duration(series)
                    need = float((c.cpu_sustain if rule.metric == "cpu" else c.sustain) - 1)
                    if series.bursts:
                        need = self._learnt_sustain(series, need, r.ts)
                    if series.lasted > need:
                        series.firing = True
                        series.streak = None
                        out.append(Anomaly(rule.kind, r.uuid, r.name, "firing", series.since, r.ts, value,
                                           series.med, threshold, series.seasonal_hi is not None,
                                           self._packet_bytes(r) if rule.kind == "packet_rate_surge" else None))
                    continue
                rising = not series.firing and not rule.gauge and not large and value > series.med + max(c.k * series.sigma, (threshold - series.med) * c.onset)
                if rising and series.streak is not None and not series.dipped:
                    # A change does not always hold its level (a TCP stream stalls, a starved guest
                    # slows): one sample still clearly above normal keeps a pending episode alive,
                    # by its share, and cannot fire it; the next must be anomalous again.
                    series.dipped = True
                    series.streak.append(value)
                    series.lasted = self._duration(series)
                    continue
                series.dipped = False
                series.onset_ts = r.ts if rising else 0.0
                series.onset_value = value
                if series.lasted:
                    if series.lasted < c.burst_accept:
                        if series.bursts is None:
                            series.bursts = deque(maxlen=64)
                        series.bursts.append((r.ts, series.lasted))
                    series.lasted = 0.0
                    series.streak = None
                if series.firing:
                    series.cool += 1
                    if series.cool >= c.resolve_after:
                        series.firing = False
                        series.cool = 0
                        out.append(Anomaly(rule.kind, r.uuid, r.name, "resolved", series.since, r.ts, value,
                                           series.med, threshold, series.seasonal_hi is not None))
                if large and beyond:
                    continue
                series.push(value, c.window)
                if series.pushes % c.refresh_every == 0:
                    series.refresh()
                    self._threshold(series, rule)
        return out

    def _packet_bytes(self, r: Rates) -> float | None:
        """The size of the packets above the VM's usual rate: the excess bytes over the excess
        packets, against the medians of tx_bps and tx_pps, so a scan on top of a VM's steady bulk
        traffic still shows as small packets. None when a rate is missing (then the rate decides alone)."""
        if r.tx_bps is None or r.tx_pps is None:
            return None
        bps, pps = self.series.get((r.uuid, "tx_bps")), self.series.get((r.uuid, "tx_pps"))
        base_bps = bps.med if bps is not None and bps.count else 0.0
        base_pps = pps.med if pps is not None and pps.count else 0.0
        extra_pps = r.tx_pps - base_pps
        if extra_pps <= 0:
            return r.tx_bps / r.tx_pps if r.tx_pps > 0 else None
        return max(0.0, r.tx_bps - base_bps) / extra_pps

    def _duration(self, series: Series) -> float:
        """How many intervals the episode has lasted: each interval counts by its excess over the
        median relative to the episode's peak, so the partly covered intervals at either end of a
        20-second burst that straddles three samples add up to one, and the burst lasted two."""
        assert series.streak is not None
        full = series.peak - series.med
        if full <= 0:
            return float(len(series.streak))
        return sum(min(1.0, max(0.0, (v - series.med) / full)) for v in series.streak)

    def _learnt_sustain(self, series: Series, sustain: float, now: float) -> float:
        """Episodes shorter than `burst_accept` intervals that ended on their own teach how long
        this VM's normal bursts last (a build, an upload): only longer ones alert. A VM that never
        bursts keeps the short default, so detection stays within a few intervals."""
        assert series.bursts is not None
        while series.bursts and now - series.bursts[0][0] > self.config.burst_memory_s:
            series.bursts.popleft()
        longest = max((length for _, length in series.bursts), default=0.0)
        return min(max(sustain, longest + self.config.burst_margin), self.config.max_sustain - 1)

    def vanished(self, now: float, present: set[str]) -> list[Anomaly]:
        """A VM that stopped ends its conditions; one gone for a day is forgotten (VM churn)."""
        out: list[Anomaly] = []
        for (uuid, metric), series in list(self.series.items()):
            if uuid in present:
                continue
            if series.firing:
                series.firing = False
                series.cool = 0
                out.append(Anomaly(RULE_FOR_METRIC[metric].kind, uuid, self.names.get(uuid, uuid), "resolved",
                                   series.since, now, 0.0, series.med, series.threshold, False))
            series.lasted = 0.0
            series.streak = None
            series.dipped = False
            if now - self.last_seen.get(uuid, now) > self.config.forget_after_s:
                del self.series[(uuid, metric)]
        for uuid in [u for u, seen in self.last_seen.items() if u not in present and now - seen > self.config.forget_after_s]:
            del self.last_seen[uuid]
            self.names.pop(uuid, None)
        return out
