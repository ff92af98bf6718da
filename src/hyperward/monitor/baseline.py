"""The learnt baseline a chart draws: each sample's median and alert threshold per metric.

The monitor does not store its baselines: a restarted monitor re-learns them from the stored
samples (Detector.learn), and `profiles` keeps only the hourly highs. So the charts derive them
the same way: the stored samples are replayed, in order, through the production Detector with the
configured parameters, starting `window` samples before the charted period so the first charted
samples already have a baseline. The median and threshold after each sample are what the detector
compared the next one with. What the replay cannot know and therefore leaves out: the seasonal
hourly highs learnt before the replayed samples (they enter only once the replay itself has seen a
day), and restarts other than a counter reset (an all-empty row) or a gap in the samples.
"""

from __future__ import annotations

import sqlite3

from ..records import frozen
from .detect import METRICS, RULE_FOR_METRIC, Detector, DetectorConfig
from .rates import RATE_COLUMNS, Rates


@frozen
class BaselinePoint:
    ts: float
    median: float
    threshold: float | None  # None: no threshold (a VM normally saturated never alerts on CPU)


def _rates(row: sqlite3.Row, name: str, vcpus: int) -> Rates:
    values = {c: row[c] for c in RATE_COLUMNS}
    return Rates(name=name, vcpus=vcpus, **values)


def replay_baseline(conn: sqlite3.Connection, uuid: str, name: str, since: float,
                    config: DetectorConfig | None = None) -> dict[str, list[BaselinePoint]]:
    """Per metric with a rule, the baseline at each charted sample once the detector judged it
    (after its warm-up). Reads through the caller's (read-only) connection."""
    config = config or DetectorConfig()
    conn.row_factory = sqlite3.Row
    columns = ", ".join(RATE_COLUMNS)
    before = conn.execute(f"SELECT {columns} FROM samples WHERE uuid = ? AND ts < ? ORDER BY ts DESC LIMIT ?",
                          (uuid, since, config.window)).fetchall()
    during = conn.execute(f"SELECT {columns} FROM samples WHERE uuid = ? AND ts >= ? ORDER BY ts", (uuid, since)).fetchall()
    vcpu_row = conn.execute("SELECT vcpus FROM vms WHERE uuid = ?", (uuid,)).fetchone()
    vcpus = int(vcpu_row[0] or 0) if vcpu_row else 0
    rows = list(reversed(before)) + list(during)
    detector = Detector(config)
    out: dict[str, list[BaselinePoint]] = {m: [] for m in METRICS}
    steps = sorted(b["ts"] - a["ts"] for a, b in zip(rows, rows[1:]))
    interval = steps[len(steps) // 2] if steps else 0.0
    previous: float | None = None
    for row in rows:
        rates = _rates(row, name, vcpus)
        empty = all(getattr(rates, m) is None for m in ("cpu", "tx_bps", "wr_bps"))
        if empty or (previous is not None and interval and rates.ts - previous > 2.5 * interval):
            detector.restarted(uuid)  # what the monitor did for a counter reset or a VM back after a gap
        previous = rates.ts
        detector.observe([rates])
        if rates.ts < since:
            continue
        for metric in METRICS:
            series = detector.series.get((uuid, metric))
            if series is None or series.count < config.warmup:
                continue
            threshold: float | None = series.threshold
            if metric == "mem_kib" and rates.balloon_kib:
                threshold = rates.balloon_kib + config.floor(RULE_FOR_METRIC[metric])  # as Detector.observe
            if threshold == float("inf"):
                threshold = None
            out[metric].append(BaselinePoint(rates.ts, series.med, threshold))
    return out
