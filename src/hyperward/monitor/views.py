"""What people read: `monitor status`, `top`, `history` (sparklines, an HTML page with SVG charts,
a PNG). Reads the monitor database through a read-only connection."""

from __future__ import annotations

import datetime
import io
import html
import os
import sqlite3
import time
from dataclasses import dataclass

from typing import TYPE_CHECKING

from ..textsafe import rich_text, visible
from .alerts import human, iso
from .rates import Rates
from .store import Heartbeat, read_heartbeat

if TYPE_CHECKING:
    from rich.table import Table

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


@dataclass(frozen=True)
class Status:
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
            "summary": row["summary"], "since": iso(row["since"]), "recorded": iso(row["recorded"])}


def read_status(conn: sqlite3.Connection, now: float | None = None, recent: int = 10) -> Status:
    conn.row_factory = sqlite3.Row
    now = now or time.time()
    hb = read_heartbeat(conn)
    interval = hb.interval or 10.0
    running = pid_alive(hb.pid)
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
    return Status(hb, running, fresh, vms, open_alerts, recent_alerts, gaps)


def render_status(status: Status, db_path: str) -> str:
    hb = status.heartbeat
    now = time.time()
    if status.healthy:
        state = f"running (pid {hb.pid}), last sample {now - (hb.last_sample or now):.0f} s ago"
    elif status.running:
        state = f"running (pid {hb.pid}) but no sample for {now - hb.last_sample:.0f} s" if hb.last_sample else f"running (pid {hb.pid}), no sample yet"
    else:
        state = "not running" + (f"; last sample {iso(hb.last_sample)}" if hb.last_sample else "")
    lines = [f"hyperward monitor: {state}", f"  database: {visible(db_path)}"]
    if hb.source:
        lines.append(f"  source: {visible(hb.source)}, every {hb.interval:g} s, {'connected' if hb.connected else 'NOT connected'}")
    if hb.last_error:
        lines.append(f"  last error: {visible(hb.last_error)}")
    lines.append(f"\nWatched VMs ({len(status.vms)}):")
    for vm in status.vms:
        lines.append(f"  {visible(vm['name']):<24} cpu {_fmt('cpu', vm['cpu']):>8}  out {_fmt('tx_bps', vm['tx_bps']):>12}  "
                     f"in {_fmt('rx_bps', vm['rx_bps']):>12}  disk write {_fmt('wr_bps', vm['wr_bps']):>12}")
    lines.append(f"\nOpen alerts ({len(status.open_alerts)}):")
    lines += [f"  [{visible(a['severity'])}] {visible(a['summary'])}" for a in status.open_alerts] or ["  none"]
    lines.append("\nLast alerts and events:")
    lines += [f"  {a['recorded']} {visible(a['status']):<8} [{visible(a['severity'])}] {visible(a['kind'])}: {visible(a['summary'] or a['vm'])}"
              for a in status.recent_alerts] or ["  none"]
    if status.gaps:
        lines.append("\nGaps in the last 24 h:")
        lines += [f"  {g['start']} .. {g['end']}: {visible(g['reason'])}" for g in status.gaps]
    return "\n".join(lines) + "\n"


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
        b = lambda v: _short(v, 1024, " KMGT")  # noqa: E731
        mem = lambda v: _short(None if v is None else v * 1024.0, 1024, " KMGT")  # noqa: E731
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
@dataclass(frozen=True)
class History:
    name: str
    uuid: str
    ts: list[float]
    values: dict[str, list[float | None]]
    alerts: list[dict[str, object]]


def find_vm(conn: sqlite3.Connection, vm: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT uuid, name FROM vms WHERE uuid = ? OR name = ? ORDER BY last_seen DESC LIMIT 1", (vm, vm)).fetchone()
    return (row[0], row[1]) if row else None


def read_history(conn: sqlite3.Connection, uuid: str, name: str, since: float) -> History:
    conn.row_factory = sqlite3.Row
    columns = [m for m, _ in HISTORY_METRICS]
    rows = conn.execute(f"SELECT ts, {', '.join(columns)} FROM samples WHERE uuid = ? AND ts >= ? ORDER BY ts", (uuid, since)).fetchall()
    alerts = [_alert_row(r) for r in conn.execute("SELECT * FROM alerts WHERE uuid = ? AND since >= ? ORDER BY id", (uuid, since))]
    return History(name, uuid, [r["ts"] for r in rows], {m: [r[m] for r in rows] for m in columns}, alerts)


def sparkline(values: list[float | None], width: int = 60) -> str:
    """Each character is the maximum of its bucket: a 10-second spike stays visible in a day."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    buckets: list[float | None] = []
    step = max(1, -(-len(values) // width))
    for i in range(0, len(values), step):
        chunk = [v for v in values[i:i + step] if v is not None]
        buckets.append(max(chunk) if chunk else None)
    top = max(known)
    if top <= 0:
        return SPARKS[0] * len(buckets)
    return "".join(" " if v is None else SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1) + 0.5))] for v in buckets)


def render_history(h: History) -> str:
    if not h.ts:
        return f"{visible(h.name)}: no samples in this period\n"
    lines = [f"{visible(h.name)} ({visible(h.uuid)}): {len(h.ts)} samples, {iso(h.ts[0])} .. {iso(h.ts[-1])}"]
    for metric, title in HISTORY_METRICS:
        values = h.values[metric]
        known = [v for v in values if v is not None]
        if not known:
            continue
        lines.append(f"  {title:<14} {sparkline(values)}  max {_fmt(metric, max(known))}, last {_fmt(metric, known[-1])}")
    if h.alerts:
        lines.append("  alerts:")
        lines += [f"    {a['since']} {visible(a['status'])} [{visible(a['severity'])}] {visible(a['summary'])}" for a in h.alerts]
    return "\n".join(lines) + "\n"


def _svg_chart(ts: list[float], values: list[float | None], metric: str, title: str, width: int = 760, height: int = 140) -> str:
    known = [v for v in values if v is not None]
    top = max(known) if known and max(known) > 0 else 1.0
    left, right, pad_top, pad_bottom = 90, 10, 22, 24
    span = (ts[-1] - ts[0]) or 1.0
    plot_w, plot_h = width - left - right, height - pad_top - pad_bottom
    segments: list[list[str]] = [[]]
    for t, v in zip(ts, values):
        if v is None:
            if segments[-1]:
                segments.append([])
            continue
        x = left + (t - ts[0]) / span * plot_w
        y = pad_top + plot_h - v / top * plot_h
        segments[-1].append(f"{x:.1f},{y:.1f}")
    lines = "".join(f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{" ".join(s)}"/>' for s in segments if s)
    start = datetime.datetime.fromtimestamp(ts[0]).strftime("%Y-%m-%d %H:%M")
    end = datetime.datetime.fromtimestamp(ts[-1]).strftime("%Y-%m-%d %H:%M")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">'
            f'<text x="{left}" y="15" font-size="13" font-weight="bold">{html.escape(title)}</text>'
            f'<line x1="{left}" y1="{pad_top}" x2="{left}" y2="{pad_top + plot_h}" stroke="#888"/>'
            f'<line x1="{left}" y1="{pad_top + plot_h}" x2="{left + plot_w}" y2="{pad_top + plot_h}" stroke="#888"/>'
            f'<text x="{left - 6}" y="{pad_top + 10}" font-size="11" text-anchor="end">{html.escape(_fmt(metric, top))}</text>'
            f'<text x="{left - 6}" y="{pad_top + plot_h}" font-size="11" text-anchor="end">0</text>'
            f'<text x="{left}" y="{height - 6}" font-size="11">{start}</text>'
            f'<text x="{left + plot_w}" y="{height - 6}" font-size="11" text-anchor="end">{end}</text>'
            f"{lines}</svg>")


def history_html(h: History) -> str:
    """One self-contained page: inline SVG, no scripts, nothing fetched."""
    charts = [_svg_chart(h.ts, h.values[m], m, title) for m, title in HISTORY_METRICS
              if h.ts and any(v is not None for v in h.values[m])]
    alerts = "".join(f"<li>{html.escape(str(a['since']))} {html.escape(str(a['status']))} [{html.escape(str(a['severity']))}] "
                     f"{html.escape(str(a['summary']))}</li>" for a in h.alerts)
    period = f"{iso(h.ts[0])} .. {iso(h.ts[-1])}" if h.ts else "no samples"
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>hyperward history: {html.escape(h.name)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}svg{display:block;margin:1em 0}</style></head><body>"
            f"<h1>{html.escape(h.name)}</h1><p>{html.escape(h.uuid)} &middot; {len(h.ts)} samples &middot; {period}</p>"
            + "".join(charts)
            + (f"<h2>Alerts</h2><ul>{alerts}</ul>" if alerts else "")
            + "</body></html>\n")


def history_png(h: History) -> bytes:
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    shown = [(m, t) for m, t in HISTORY_METRICS if any(v is not None for v in h.values[m])]
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(10, 1.8 * max(1, len(shown))), sharex=True, squeeze=False)
    times = [datetime.datetime.fromtimestamp(t) for t in h.ts]
    for ax, (metric, title) in zip(axes[:, 0], shown):
        values = [float("nan") if v is None else v for v in h.values[metric]]
        ax.plot(times, values, linewidth=1.0, color="#1f6feb")
        ax.set_ylabel(title, fontsize=8)
        ax.grid(True, alpha=0.3)
        for alert in h.alerts:
            if alert["status"] == "firing":
                ax.axvline(datetime.datetime.fromisoformat(str(alert["since"]).replace("Z", "+00:00")).astimezone().replace(tzinfo=None),
                           color="#d1242f", linewidth=0.8)
    axes[0, 0].set_title(f"{h.name} ({h.uuid})")
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    plt.close(fig)
    return out.getvalue()
