"""What people read: `monitor status`, `top`, `history` (sparklines, an HTML page with SVG charts,
a PNG). Reads the monitor database through a read-only connection."""

from __future__ import annotations

import datetime
import html
import io
import json
import os
import shutil
import sqlite3
import time
from dataclasses import field
from typing import TYPE_CHECKING

from ..heartbeat import Heartbeat, read_heartbeat
from ..records import frozen
from ..textsafe import rich_text, visible
from .alerts import human, iso
from .rates import Rates

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from .baseline import BaselinePoint
    from .detect import DetectorConfig

SPARKS = "▁▂▃▄▅▆▇█"
HISTORY_METRICS = (
    ("cpu", "CPU (share of vCPUs)"),
    ("tx_bps", "network out"),
    ("rx_bps", "network in"),
    ("tx_pps", "packets out"),
    ("wr_bps", "disk write"),
    ("rd_bps", "disk read"),
    ("mem_kib", "memory"),
)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def monitor_alive(pid: int | None) -> bool:
    """The heartbeat's pid is a live hyperward process. A pid that exists but now belongs to
    another program (reused after the monitor died) is not the monitor; a process whose command
    line cannot be read (another user's, hidepid) is given the benefit of the doubt."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            cmdline = handle.read(65536)
    except OSError:
        return True
    return not cmdline or b"hyperward" in cmdline


@frozen
class MonitorState:
    heartbeat: Heartbeat
    running: bool
    fresh: bool
    vms: list[dict[str, object]]
    open_alerts: list[dict[str, object]]
    recent_alerts: list[dict[str, object]]
    gaps: list[dict[str, object]]

    @property
    def healthy(self) -> bool:
        return self.running and self.fresh

    def to_json(self) -> dict[str, object]:
        hb = self.heartbeat
        return {
            "running": self.running, "fresh": self.fresh, "pid": hb.pid, "source": hb.source,
            "interval_s": hb.interval, "connected": hb.connected,
            "started": iso(hb.started) if hb.started else None,
            "last_sample": iso(hb.last_sample) if hb.last_sample else None,
            "last_error": hb.last_error, "vms": self.vms, "open_alerts": self.open_alerts,
            "recent_alerts": self.recent_alerts, "gaps": self.gaps,
        }


def _alert_row(row: sqlite3.Row) -> dict[str, object]:
    return {"status": row["status"], "kind": row["kind"], "severity": row["severity"], "vm": row["vm"],
            "summary": row["summary"], "since": iso(row["since"]), "recorded": iso(row["recorded"]),
            "ended": iso(row["ended"]) if row["ended"] is not None else None}


def read_status(conn: sqlite3.Connection, now: float | None = None, recent: int = 10) -> MonitorState:
    conn.row_factory = sqlite3.Row
    now = now or time.time()
    hb = read_heartbeat(conn)
    interval = hb.interval or 10.0
    running = monitor_alive(hb.pid)
    fresh = hb.last_sample is not None and now - hb.last_sample <= 3 * interval + 5
    vms = []
    for row in conn.execute(
            "SELECT v.uuid, v.name, v.vcpus, s.* FROM vms v JOIN samples s ON s.uuid = v.uuid "
            "AND s.ts = (SELECT max(ts) FROM samples WHERE uuid = v.uuid) WHERE v.last_seen >= ? ORDER BY v.name",
            ((hb.last_sample or now) - 3 * interval,)):
        vms.append({"name": row["name"], "uuid": row["uuid"], "vcpus": row["vcpus"], "cpu": row["cpu"],
                    "tx_bps": row["tx_bps"], "rx_bps": row["rx_bps"], "wr_bps": row["wr_bps"], "mem_kib": row["mem_kib"]})
    latest = ("SELECT * FROM alerts WHERE id IN (SELECT max(id) FROM alerts WHERE event = 0 GROUP BY key) "
              "AND status = 'firing' ORDER BY since DESC")
    open_alerts = [_alert_row(r) for r in conn.execute(latest)]
    recent_alerts = [_alert_row(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id DESC LIMIT ?", (recent,))]
    gaps = [{"start": iso(r["start"]), "end": iso(r["end"]), "reason": r["reason"]}
            for r in conn.execute("SELECT * FROM gaps WHERE end >= ? ORDER BY start DESC LIMIT 20", (now - 86400,))]
    return MonitorState(hb, running, fresh, vms, open_alerts, recent_alerts, gaps)


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
STATUS_STYLE = {"firing": "bold red", "resolved": "green", "event": ""}


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.1f} days ago"


def status_lines(status: MonitorState, db_path: str, now: float | None = None) -> list["Text"]:
    """The status as styled lines: the monitor's state green (sampling), yellow (running but not
    sampling or not connected), red (not running); alerts by severity. Every string from the
    database goes through textsafe. A stopped monitor's last connection state is history, not
    a state: it says when it was last seen instead."""
    from rich.text import Text

    hb = status.heartbeat
    now = now or time.time()
    seen = f"last seen {iso(hb.last_sample)}, {_ago(now - hb.last_sample)}" if hb.last_sample else "never sampled"
    if status.healthy and hb.connected:
        state, style = f"running (pid {hb.pid}), last sample {_ago(now - (hb.last_sample or now))}", "bold green"
    elif status.running:
        if hb.last_sample is None:
            state = f"running (pid {hb.pid}), no sample yet"
        elif not status.fresh:
            state = f"running (pid {hb.pid}) but no sample for {now - hb.last_sample:.0f} s ({seen})"
        else:
            state = f"running (pid {hb.pid}), last sample {_ago(now - hb.last_sample)}"
        style = "bold yellow"
    else:
        gone = (f"pid {hb.pid} is now another program; " if pid_alive(hb.pid) else f"pid {hb.pid} is gone; ") if hb.pid else ""
        state, style = f"not running ({gone}{seen})", "bold red"
    lines = [Text.assemble("hyperward monitor: ", (state, style)), Text.assemble("  database: ", rich_text(db_path))]
    if hb.source:
        every = f", every {hb.interval:g} s" if hb.interval else ""
        if not status.running:
            link: tuple[str, str] = ("not watching (the monitor is not running)", "red")
        elif hb.connected and status.fresh:
            link = ("connected", "green")
        elif hb.connected:
            link = ("connected, but no sample for more than three intervals", "yellow")
        else:
            link = ("NOT connected", "bold red")
        lines.append(Text.assemble("  source: ", rich_text(hb.source), every, ", ", link))
    if hb.last_error:
        lines.append(Text.assemble("  last error: ", rich_text(hb.last_error, "red")))
    lines.append(Text(""))
    lines.append(Text(f"Watched VMs ({len(status.vms)})" + (":" if status.vms else ": none seen in the last three intervals"), style="bold"))
    if status.vms:
        # Columns as wide as this host's values need, so a row fits 80 columns where it can.
        cells = [[visible(vm["name"]), _fmt("cpu", vm["cpu"]), _fmt("tx_bps", vm["tx_bps"]), _fmt("rx_bps", vm["rx_bps"]),
                  _fmt("wr_bps", vm["wr_bps"])] for vm in status.vms]
        w = [min(24, max(len(row[0]) for row in cells))] + [max(len(row[i]) for row in cells) for i in range(1, 5)]
        for row in cells:
            lines.append(Text.assemble("  ", rich_text(f"{row[0]:<{w[0]}}"), f"  cpu {row[1]:>{w[1]}}  out {row[2]:>{w[2]}}"
                                       f"  in {row[3]:>{w[3]}}  disk write {row[4]:>{w[4]}}"))
    lines.append(Text(""))
    lines.append(Text(f"Open alerts ({len(status.open_alerts)}):", style="bold"))
    for a in status.open_alerts:
        lines.append(Text.assemble("  ", rich_text(f"[{visible(a['severity'])}]", SEVERITY_STYLE.get(str(a["severity"]), "")),
                                   " ", rich_text(a["summary"])))
    if not status.open_alerts:
        lines.append(Text("  none", style="green"))
    lines.append(Text(""))
    lines.append(Text("Last alerts and events:", style="bold"))
    for a in status.recent_alerts:
        lines.append(Text.assemble("  ", str(a["recorded"]), " ",
                                   rich_text(f"{visible(a['status']):<8}", STATUS_STYLE.get(str(a["status"]), "")), " ",
                                   rich_text(f"[{visible(a['severity'])}]", SEVERITY_STYLE.get(str(a["severity"]), "")), " ",
                                   rich_text(a["kind"]), ": ", rich_text(a["summary"] or a["vm"])))
    if not status.recent_alerts:
        lines.append(Text("  none"))
    if status.gaps:
        lines.append(Text(""))
        lines.append(Text("Gaps in the last 24 h:", style="bold"))
        lines += [Text.assemble(f"  {g['start']} .. {g['end']}: ", rich_text(g["reason"], "yellow")) for g in status.gaps]
    return lines


def render_status(status: MonitorState, db_path: str, now: float | None = None) -> str:
    """The status as plain text (a pipe, a log, NO_COLOR)."""
    return "".join(line.plain + "\n" for line in status_lines(status, db_path, now))


def _fmt(metric: str, value: object) -> str:
    if value is None:
        return "-"
    if metric == "cpu":
        return f"{float(value) * 100:.0f}%"  # type: ignore[arg-type]
    return human(metric, float(value))  # type: ignore[arg-type]


# --- top ----------------------------------------------------------------------------------
SORT_KEYS = {"cpu": lambda r: r.cpu or 0.0,
             "net": lambda r: (r.tx_bps or 0.0) + (r.rx_bps or 0.0),
             "disk": lambda r: (r.wr_bps or 0.0) + (r.rd_bps or 0.0)}


def _short(value: float | None, base: int, units: str) -> str:
    """A compact number for an 80-column table: at most four digits and a unit letter."""
    if value is None:
        return "-"
    unit = 0
    while abs(value) >= 1000 and unit < len(units) - 1:
        value /= base
        unit += 1
    digits = f"{value:.1f}" if unit and abs(value) < 10 else f"{value:.0f}"
    return digits + units[unit].strip()


def top_rows(rates: list[Rates], sort: str, limit: int | None, compact: bool = False) -> list[list[str]]:
    """Plain cells: the table that shows them makes each one a rich Text through textsafe.rich_text.
    compact: bytes as B/K/M/G (KiB, MiB, GiB), packets as k/M, for a terminal under 100 columns."""
    ordered = sorted(rates, key=SORT_KEYS[sort], reverse=True)[:limit]
    if compact:
        def b(v: float | None) -> str:
            return _short(v, 1024, " KMGT")

        def mem(v: int | None) -> str:
            return _short(None if v is None else v * 1024.0, 1024, " KMGT")

        return [[r.name, str(r.vcpus), _fmt("cpu", r.cpu), b(r.tx_bps), b(r.rx_bps), _short(r.tx_pps, 1000, " kMG"),
                 b(r.wr_bps), b(r.rd_bps), mem(r.mem_kib)] for r in ordered]
    return [[r.name, str(r.vcpus), _fmt("cpu", r.cpu), _fmt("tx_bps", r.tx_bps), _fmt("rx_bps", r.rx_bps),
             _fmt("tx_pps", r.tx_pps), _fmt("wr_bps", r.wr_bps), _fmt("rd_bps", r.rd_bps), _fmt("mem_kib", r.mem_kib)]
            for r in ordered]


TOP_HEADERS = ["VM", "vCPUs", "CPU", "net out", "net in", "pkts out", "disk write", "disk read", "memory"]
TOP_COMPACT_HEADERS = ["VM", "vCPUs", "CPU", "out/s", "in/s", "pkts/s", "write/s", "read/s", "memory"]
TOP_COMPACT_CAPTION = "network out/in, disk write/read; K M G = KiB MiB GiB"
TOP_COMPACT_BELOW = 110


def top_table(rates: list[Rates], uri: str, sort: str, limit: int | None, width: int) -> "Table":
    """Under TOP_COMPACT_BELOW columns the full units and borders do not fit: short numbers, no
    vertical rules, so each VM stays on one line at 80 columns."""
    from rich import box
    from rich.table import Table

    compact = width < TOP_COMPACT_BELOW
    t = Table(title=rich_text(f"hyperward top: {uri}, {len(rates)} running VMs, sorted by {sort}"),
              caption=TOP_COMPACT_CAPTION if compact else None, box=box.SIMPLE_HEAD if compact else box.HEAVY_HEAD)
    for header in TOP_COMPACT_HEADERS if compact else TOP_HEADERS:
        if header == "VM":
            # A VM's whole name, over two lines only when it is longer than 16 characters.
            t.add_column(header, overflow="fold", min_width=min(16, max((len(visible(r.name)) for r in rates), default=2)))
        else:
            t.add_column(header, justify="right", no_wrap=True)
    for row in top_rows(rates, sort, limit, compact):
        t.add_row(*(rich_text(cell) for cell in row))
    return t


# --- history ------------------------------------------------------------------------------
HISTORY_TITLES: dict[str, str] = {}  # the terminal and the charts use HISTORY_METRICS' titles
# The y axis of each chart: its unit's name, and how a value in the metric's unit is shown.
AXIS_UNITS = {"cpu": "% of vCPUs", "tx_bps": "bytes/s", "rx_bps": "bytes/s", "tx_pps": "packets/s",
              "wr_bps": "bytes/s", "rd_bps": "bytes/s", "mem_kib": "MiB"}
BAND_COLOUR = "#d1242f"
BAND_OPACITY = 0.18
MEDIAN_COLOUR = "#57606a"
THRESHOLD_COLOUR = "#bc4c00"
LINE_COLOUR = "#1f6feb"


@frozen
class Span:
    """One condition from firing to resolved (end None: still open, drawn to the chart's end)."""

    kind: str
    severity: str
    metric: str | None
    start: float
    end: float | None
    summary: str
    threshold: float | None


@frozen
class History:
    name: str
    uuid: str
    ts: list[float]
    values: dict[str, list[float | None]]
    alerts: list[dict[str, object]]
    spans: list[Span] = field(default_factory=list)
    baseline: dict[str, list["BaselinePoint"]] = field(default_factory=dict)


def find_vm(conn: sqlite3.Connection, vm: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT uuid, name FROM vms WHERE uuid = ? OR name = ? ORDER BY last_seen DESC LIMIT 1", (vm, vm)).fetchone()
    return (row[0], row[1]) if row else None


def _spans(rows: list[sqlite3.Row], since: float) -> list[Span]:
    """A condition is its firing row and, once it ended, its resolved row (same key and since)."""
    from .detect import RULE_BY_KIND

    firing: dict[tuple[str, float], sqlite3.Row] = {}
    ended: dict[tuple[str, float], float] = {}
    for row in rows:
        if row["event"]:
            continue
        key = (row["key"], row["since"])
        if row["status"] == "firing":
            firing.setdefault(key, row)
        elif row["ended"] is not None:
            ended[key] = row["ended"]
    out = []
    for key, row in firing.items():
        end = ended.get(key)
        if end is not None and end < since:
            continue
        rule = RULE_BY_KIND.get(row["kind"])
        try:
            details = json.loads(row["details"] or "{}")
        except ValueError:
            details = {}
        threshold = details.get("threshold") if isinstance(details, dict) else None
        out.append(Span(str(row["kind"]), str(row["severity"]), rule.metric if rule else None, float(row["since"]), end,
                        str(row["summary"] or ""), float(threshold) if isinstance(threshold, (int, float)) else None))
    return sorted(out, key=lambda sp: sp.start)


def read_history(conn: sqlite3.Connection, uuid: str, name: str, since: float,
                 detector: "DetectorConfig | None" = None, baseline: bool = True) -> History:
    """The samples since `since`, the alerts that touch the period (a condition that began before
    it and is still open or ended within it included), and the learnt baseline (baseline.py)."""
    conn.row_factory = sqlite3.Row
    columns = [m for m, _ in HISTORY_METRICS]
    rows = conn.execute(f"SELECT ts, {', '.join(columns)} FROM samples WHERE uuid = ? AND ts >= ? ORDER BY ts", (uuid, since)).fetchall()
    alert_rows = conn.execute("SELECT * FROM alerts WHERE uuid = ? AND (since >= ? OR ended >= ? OR (event = 0 AND status = 'firing')) "
                              "ORDER BY id", (uuid, since, since)).fetchall()
    listed = [_alert_row(r) for r in alert_rows if max(r["since"], r["ended"] or 0.0) >= since]
    learnt = {}
    if baseline and rows:
        from .baseline import replay_baseline

        learnt = replay_baseline(conn, uuid, name, since, detector)
    return History(name, uuid, [r["ts"] for r in rows], {m: [r[m] for r in rows] for m in columns}, listed,
                   _spans(alert_rows, since), learnt)


def sparkline(values: list[float | None], width: int = 60, top: float | None = None) -> str:
    """Each character is the maximum of its bucket: a 10-second spike stays visible in a day.
    top: the value of a full bar (CPU's is 100%); by default the largest value."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    n = len(values)
    cells = min(width, n)
    buckets: list[float | None] = []
    for c in range(cells):
        chunk = [v for v in values[c * n // cells:(c + 1) * n // cells] if v is not None]
        buckets.append(max(chunk) if chunk else None)
    top = max(known) if top is None else top
    if top <= 0:
        return SPARKS[0] * len(buckets)
    last = len(SPARKS) - 1
    return "".join(" " if v is None else SPARKS[max(0, min(last, int(v / top * last + 0.5)))] for v in buckets)


def _alert_time(a: dict[str, object]) -> str:
    """When the listed thing happened: a resolution's end, otherwise its start."""
    return str(a["ended"] if a["status"] == "resolved" and a.get("ended") else a["since"])


def render_history(h: History, columns: int | None = None) -> str:
    """Sparklines as wide as the terminal allows. CPU is a share and draws on 0-100%; the other
    metrics on 0 to their maximum, which the row names with its unit."""
    if not h.ts:
        return f"{visible(h.name)}: no samples in this period\n"
    columns = columns or shutil.get_terminal_size((80, 24)).columns
    rows = []
    for metric, title in HISTORY_METRICS:
        values = h.values[metric]
        known = [v for v in values if v is not None]
        if not known:
            continue
        if metric == "cpu":
            label, top = f"0-100%: max {_fmt(metric, max(known))}, last {_fmt(metric, known[-1])}", 1.0
        elif max(known) <= 0:
            label, top = f"{_fmt(metric, 0.0)} throughout", None
        else:
            label, top = f"0-{_fmt(metric, max(known))}, last {_fmt(metric, known[-1])}", None
        rows.append((metric, HISTORY_TITLES.get(metric, title), label, top))
    title_w = max(len(t) for _, t, _, _ in rows) if rows else 0
    label_w = max(len(lb) for _, _, lb, _ in rows) if rows else 0
    width = max(10, min(120, columns - 2 - title_w - 1 - 2 - label_w - 1))
    lines = [f"{visible(h.name)} ({visible(h.uuid)})",
             f"  {len(h.ts)} samples, {iso(h.ts[0])} .. {iso(h.ts[-1])}",
             "  bars: CPU on 0-100%, the others on 0 to their max"]
    for metric, title, label, top in rows:
        lines.append(f"  {title:<{title_w}} {sparkline(h.values[metric], width, top):<{width}}  {label}")
    if h.alerts:
        lines.append("  alerts (the time a condition began, a resolution the time it ended):")
        lines += [f"    {_alert_time(a)} {visible(a['status']):<8} [{visible(a['severity'])}] {visible(a['summary'])}" for a in h.alerts]
    return "\n".join(lines) + "\n"


# --- charts ---------------------------------------------------------------------------------
def _utc(ts: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def _axis_scale(metric: str, top: float) -> tuple[float, str]:
    """A divisor and unit for the y axis: CPU in %, memory in MiB, rates in the largest binary unit below the top."""
    if metric == "cpu":
        return 0.01, "%"
    if metric == "mem_kib":
        return 1024.0, "MiB"
    if metric.endswith("_pps"):
        return 1.0, "packets/s"
    for divisor, unit in ((1024.0 ** 3, "GiB/s"), (1024.0 ** 2, "MiB/s"), (1024.0, "KiB/s")):
        if top >= divisor:
            return divisor, unit
    return 1.0, "B/s"


def _chart_top(metric: str, values: list[float | None], points: list["BaselinePoint"]) -> float:
    """The y axis covers the values and the median; CPU always 0-100% (more when QEMU's threads use more)."""
    known = [v for v in values if v is not None] + [p.median for p in points]
    top = max(known, default=0.0)
    if metric == "cpu":
        return max(1.0, top)
    return top if top > 0 else 1.0


def _band_spans(h: History, metric: str) -> list[tuple[Span, float, float]]:
    """The spans a chart shades, clipped to its period: its metric's conditions, and conditions
    about no metric (an unmanaged QEMU) on every chart."""
    if not h.ts:
        return []
    first, last = h.ts[0], h.ts[-1]
    out = []
    for span in h.spans:
        if span.metric not in (metric, None):
            continue
        start, end = max(first, span.start), min(last, span.end if span.end is not None else last)
        if end >= start and span.start <= last:
            out.append((span, start, end))
    return out


def _fmt_axis(value: float, divisor: float, unit: str) -> str:
    shown = value / divisor
    text = f"{shown:.0f}" if shown >= 100 or shown == int(shown) else f"{shown:.1f}"
    return f"{text}%" if unit == "%" else f"{text} {unit}" if unit else text


def _svg_chart(h: History, metric: str, title: str, width: int = 860, height: int = 200) -> str:
    ts, values = h.ts, h.values[metric]
    points = h.baseline.get(metric, [])
    top = _chart_top(metric, values, points)
    divisor, unit = _axis_scale(metric, top)
    left, right, pad_top, pad_bottom = 100, 16, 38, 40
    span = (ts[-1] - ts[0]) or 1.0
    plot_w, plot_h = width - left - right, height - pad_top - pad_bottom

    def x(t: float) -> float:
        return left + (t - ts[0]) / span * plot_w

    def y(v: float) -> float:
        return pad_top + plot_h - min(v, top) / top * plot_h

    def polyline(pts: list[tuple[float, float | None]], attrs: str) -> str:
        segments: list[list[str]] = [[]]
        for t, v in pts:
            if v is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append(f"{x(t):.1f},{y(v):.1f}")
        return "".join(f'<polyline fill="none" {attrs} points="{" ".join(sg)}"/>' for sg in segments if sg)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}" data-metric="{metric}">',
             f'<text x="{left}" y="16" font-size="14" font-weight="bold">{html.escape(title)}</text>']
    for sp, start, end in _band_spans(h, metric):
        x0, x1 = x(start), x(end)
        if x1 - x0 < 2:
            x0, x1 = x0 - 1, x0 + 1  # an alert as short as one sample still shows
        label = f"{sp.kind}{' (open)' if sp.end is None else ''}"
        parts.append(f'<rect class="alert-band" data-kind="{html.escape(sp.kind)}" data-start="{iso(sp.start)}" '
                     f'data-end="{iso(sp.end) if sp.end is not None else ""}" x="{x0:.1f}" y="{pad_top}" width="{x1 - x0:.1f}" '
                     f'height="{plot_h}" fill="{BAND_COLOUR}" fill-opacity="{BAND_OPACITY}">'
                     f'<title>{html.escape(sp.summary)}</title></rect>')
        parts.append(f'<text x="{x0 + 3:.1f}" y="{pad_top + 12}" font-size="10" fill="{BAND_COLOUR}">{html.escape(label)}</text>')
    for frac in (0.0, 0.5, 1.0):
        yy = pad_top + plot_h - frac * plot_h
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#d0d7de" stroke-width="0.5"/>')
        parts.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{html.escape(_fmt_axis(frac * top, divisor, "" if unit == "packets/s" else unit))}</text>')
    parts.append(f'<text x="14" y="{pad_top + plot_h / 2:.1f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 14 {pad_top + plot_h / 2:.1f})">{html.escape(unit if unit != "%" else AXIS_UNITS[metric])}</text>')
    parts.append(f'<line x1="{left}" y1="{pad_top}" x2="{left}" y2="{pad_top + plot_h}" stroke="#888"/>')
    parts.append(f'<line x1="{left}" y1="{pad_top + plot_h}" x2="{left + plot_w}" y2="{pad_top + plot_h}" stroke="#888"/>')
    ticks = 5
    for i in range(ticks):
        t = ts[0] + span * i / (ticks - 1)
        anchor = "start" if i == 0 else "end" if i == ticks - 1 else "middle"
        parts.append(f'<text x="{x(t):.1f}" y="{pad_top + plot_h + 15}" font-size="11" text-anchor="{anchor}">'
                     f'{_utc(t).strftime("%H:%M:%S" if span < 600 else "%H:%M")}</text>')
    day = _utc(ts[0]).strftime("%Y-%m-%d") + ("" if _utc(ts[0]).date() == _utc(ts[-1]).date() else " .. " + _utc(ts[-1]).strftime("%Y-%m-%d"))
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">time (UTC), {day}</text>')
    if points:
        parts.append(polyline([(p.ts, p.median) for p in points],
                              f'class="baseline-median" stroke="{MEDIAN_COLOUR}" stroke-width="1.2" stroke-dasharray="5,3"'))
        parts.append(polyline([(p.ts, p.threshold if p.threshold is not None and p.threshold <= top else None) for p in points],
                              f'class="baseline-threshold" stroke="{THRESHOLD_COLOUR}" stroke-width="1.2" stroke-dasharray="2,2"'))
    parts.append(polyline(list(zip(ts, values)), f'class="rate" stroke="{LINE_COLOUR}" stroke-width="1.5"'))
    legend = [("rate", LINE_COLOUR, "")]
    if points:
        last = points[-1]
        legend.append((f"learnt median ({_fmt(metric, last.median)})", MEDIAN_COLOUR, "5,3"))
        if last.threshold is not None:
            off = " (above the chart)" if last.threshold > top else ""
            legend.append((f"alert above {_fmt(metric, last.threshold)}{off}", THRESHOLD_COLOUR, "2,2"))
    if _band_spans(h, metric):
        legend.append(("alert", BAND_COLOUR, "band"))
    lx = float(left)
    for text, colour, dash in legend:
        if dash == "band":
            parts.append(f'<rect x="{lx}" y="24" width="18" height="9" fill="{colour}" fill-opacity="{BAND_OPACITY}"/>')
        else:
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(f'<line x1="{lx}" y1="29" x2="{lx + 18}" y2="29" stroke="{colour}" stroke-width="1.5"{dashed}/>')
        parts.append(f'<text x="{lx + 22}" y="33" font-size="11">{html.escape(text)}</text>')
        lx += 30 + 6.5 * len(text)
    parts.append("</svg>")
    return "".join(parts)


def history_html(h: History) -> str:
    """One self-contained page: inline SVG, no scripts, nothing fetched."""
    charts = [_svg_chart(h, m, HISTORY_TITLES.get(m, title)) for m, title in HISTORY_METRICS
              if h.ts and any(v is not None for v in h.values[m])]
    alerts = "".join(f"<li>{html.escape(_alert_time(a))} {html.escape(str(a['status']))} [{html.escape(str(a['severity']))}] "
                     f"{html.escape(str(a['summary']))}</li>" for a in h.alerts)
    period = f"{iso(h.ts[0])} .. {iso(h.ts[-1])}" if h.ts else "no samples"
    note = ("<p class=\"note\">Shaded: each alert from firing to resolved (or to the last sample while open). Dashed: the "
            "median and the alert threshold the detector learnt from this VM's stored samples.</p>") if h.ts else ""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>hyperward history: {html.escape(h.name)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}svg{display:block;margin:1em 0}.note{color:#57606a}</style></head><body>"
            f"<h1>{html.escape(h.name)}</h1><p>{html.escape(h.uuid)} &middot; {len(h.ts)} samples &middot; {period}</p>"
            + note + "".join(charts)
            + (f"<h2>Alerts</h2><ul>{alerts}</ul>" if alerts else "")
            + "</body></html>\n")


def history_png(h: History) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    shown = [(m, HISTORY_TITLES.get(m, t)) for m, t in HISTORY_METRICS if any(v is not None for v in h.values[m])]
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(10, 2.0 * max(1, len(shown))), sharex=True, squeeze=False)
    def as_time(t: float) -> datetime.datetime:
        """matplotlib's dates, in UTC like the alert times."""
        return _utc(t).replace(tzinfo=None)

    times = [as_time(t) for t in h.ts]
    for ax, (metric, title) in zip(axes[:, 0], shown):
        points = h.baseline.get(metric, [])
        top = _chart_top(metric, h.values[metric], points)
        divisor, unit = _axis_scale(metric, top)
        values = [float("nan") if v is None else v / divisor for v in h.values[metric]]
        for sp, start, end in _band_spans(h, metric):
            ax.axvspan(as_time(start), as_time(end) if end > start else as_time(start + 1), color=BAND_COLOUR, alpha=BAND_OPACITY,
                       linewidth=0, label="alert")
        if points:
            pt = [as_time(p.ts) for p in points]
            ax.plot(pt, [p.median / divisor for p in points], linestyle="--", linewidth=1.0, color=MEDIAN_COLOUR, label="learnt median")
            ax.plot(pt, [float("nan") if p.threshold is None or p.threshold > top else p.threshold / divisor for p in points],
                    linestyle=":", linewidth=1.2, color=THRESHOLD_COLOUR, label="alert threshold")
        ax.plot(times, values, linewidth=1.0, color=LINE_COLOUR, label="rate")
        ax.set_ylim(0, top / divisor * 1.05)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("% of vCPUs" if unit == "%" else unit, fontsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos, u=unit: f"{v:g}%" if u == "%" else f"{v:g}"))
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left", framealpha=0.8)
    axes[0, 0].figure.suptitle(f"{h.name} ({h.uuid})", fontsize=10)
    bottom = axes[-1, 0]
    bottom.set_xlabel("time (UTC)", fontsize=8)
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    bottom.xaxis.set_major_locator(locator)
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()
