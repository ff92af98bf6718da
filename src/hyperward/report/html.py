"""A report to open and hand on: one HTML file that needs nothing else.

It is read from file://, mailed, attached to a ticket and opened where a strict Content-Security-
Policy applies, so it fetches nothing: the style, the script and every picture (inline SVG) are in
the file, and its own CSP meta tag allows exactly that style and that script by their SHA-256 and
nothing else (no 'unsafe-inline', no network source of any kind). The script and the style are
constants, so their hashes are too; all data is markup, never script text, which keeps a string a
guest chose out of the one place where escaping rules differ.

Every string that came from the host (guest, network, file and user names, messages) goes through
`_e`: terminal-unsafe characters shown as escapes (textsafe.visible: a bidirectional override
must not reorder a row) and then HTML-escaped, attributes quoted. Nothing from the facts is shown
that the JSON report does not show: no secret reaches a finding, so none reaches this page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html

from .. import __version__
from ..engine import ScanReport
from ..guests.model import Guest
from ..model import Finding, Severity, Status
from ..reach import Reach, port_label
from ..textsafe import visible
from . import RenderOptions
from .common import view

STYLE = """
:root{--bg:#fff;--fg:#1b1f24;--mute:#5b6570;--line:#d5dae0;--card:#f5f7f9;--crit:#8b0000;--high:#c62828;--med:#b26a00;
--low:#1f6fb2;--info:#6b7785;--ok:#2e7d32;--na:#8a939d;--sup:#7b5ea7}
*{box-sizing:border-box}
body{margin:0;padding:1.2rem 1.6rem;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.5rem;margin:0 0 .2rem}h2{font-size:1.15rem;margin:1.8rem 0 .6rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
.sub{color:var(--mute);margin:0 0 1rem}
.cards{display:flex;flex-wrap:wrap;gap:.7rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.55rem .8rem;min-width:11rem}
.card b{display:block;font-size:1.25rem}.card span{color:var(--mute);font-size:.8rem;text-transform:uppercase;letter-spacing:.04em}
.bad b{color:var(--high)}
svg text{font:12px system-ui,sans-serif;fill:var(--fg)}
.chart .bar-critical{fill:var(--crit)}.chart .bar-high{fill:var(--high)}.chart .bar-medium{fill:var(--med)}
.chart .bar-low{fill:var(--low)}.chart .bar-info{fill:var(--info)}
.controls{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:.4rem 0 .6rem}
.controls input,.controls select{font:inherit;padding:.25rem .4rem;border:1px solid var(--line);border-radius:4px}
.controls input{min-width:18rem}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:var(--card);position:sticky;top:0}
th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer;color:inherit}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
#findings td:nth-child(3){white-space:nowrap}#findings td:nth-child(4){word-break:break-word;max-width:28rem}
#findings td:nth-child(5){word-break:break-word}
#findings tr[data-v="5"] td:first-child{color:var(--crit);font-weight:700}#findings tr[data-v="4"] td:first-child{color:var(--high);font-weight:700}
#findings tr[data-v="3"] td:first-child{color:var(--med);font-weight:600}#findings tr[data-v="2"] td:first-child{color:var(--low)}
#findings tr[data-v="1"] td:first-child{color:var(--info)}
#findings tr[data-s=fail] td:nth-child(2){color:var(--high);font-weight:600}#findings tr[data-s=error] td:nth-child(2){color:#a0007a;font-weight:600}
#findings tr[data-s=suppressed] td:nth-child(2){color:var(--sup)}#findings tr[data-s=pass] td:nth-child(2){color:var(--ok)}
#findings tr[data-s=not_applicable] td:nth-child(2){color:var(--na)}
.v5{color:var(--crit);font-weight:700}.v4{color:var(--high);font-weight:700}.v3{color:var(--med);font-weight:600}
.v2{color:var(--low)}.v1{color:var(--info)}
.s-fail{color:var(--high);font-weight:600}.s-error{color:#a0007a;font-weight:600}.s-suppressed{color:var(--sup)}
.s-pass{color:var(--ok)}.s-not_applicable{color:var(--na)}
.matrix{overflow:auto;max-height:70vh;border:1px solid var(--line)}
.matrix table{width:auto}.matrix td{text-align:center;padding:.1rem .3rem;border:1px solid var(--line)}
.matrix th{font-size:.75rem;white-space:nowrap}.matrix tbody th{text-align:left;position:sticky;left:0}
.matrix thead th{writing-mode:vertical-rl;transform:rotate(180deg);vertical-align:bottom}
.matrix thead th:first-child{writing-mode:horizontal-tb;transform:none}
td.F{background:#fbe3e3;color:var(--high)}td.E{background:#f6def0;color:#a0007a}td.S{background:#ece6f5;color:var(--sup)}
td.P{background:#e5f3e6;color:var(--ok)}td.N{color:var(--na)}
.graph{overflow:auto;border:1px solid var(--line)}
.graph .node rect{fill:var(--card);stroke:#8a939d}.graph .node.danger rect{fill:#fbe3e3;stroke:var(--high);stroke-width:2}
.graph .node.exposed rect{fill:#fff2dc;stroke:var(--med)}
.graph path{fill:none;stroke-width:2}.graph .e-danger{stroke:var(--high);stroke-width:3}.graph .e-open{stroke:var(--med)}
.graph .e-unknown{stroke:#8a939d;stroke-dasharray:5 4}.graph .e-blocked{stroke:#9ccc9f;stroke-width:1}.graph .e-net{stroke:#6b7785}
.graph .col{font-weight:700;fill:var(--mute)}
.legend span{margin-right:1rem}.sw{display:inline-block;width:1.6rem;height:.3rem;vertical-align:middle;margin-right:.3rem}
.sw.danger{background:var(--high)}.sw.open{background:var(--med)}.sw.unknown{background:#8a939d}.sw.blocked{background:#9ccc9f}
.note{color:var(--mute)}
.checks dt{font-weight:600;margin-top:.5rem}.checks dd{margin:0 0 0 1.2rem}
footer{margin-top:2rem;color:var(--mute);font-size:.8rem}
@media screen{#findings tbody tr{content-visibility:auto;contain-intrinsic-size:auto 1.6em}
.matrix tbody tr{content-visibility:auto;contain-intrinsic-size:auto 1.4em}}
@media print{
body{padding:0;font-size:10pt}.controls{display:none}th{position:static}
.matrix,.graph{overflow:visible;max-height:none;border:0}
h2{break-after:avoid}tr,.card,dt,dd{break-inside:avoid}
a{color:inherit;text-decoration:none}
td.F,td.E,td.S,td.P,.graph .node.danger rect{print-color-adjust:exact;-webkit-print-color-adjust:exact}
}
"""

SCRIPT = """
(function () {
  "use strict";
  var table = document.getElementById("findings");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.map.call(body.rows, function (row) {
    return { row: row, text: row.textContent.toLowerCase() };
  });
  var q = document.getElementById("f-text"), sev = document.getElementById("f-sev"),
      status = document.getElementById("f-status"), cat = document.getElementById("f-cat"),
      shown = document.getElementById("f-shown");
  var problems = { fail: 1, error: 1, suppressed: 1 };
  var rank = { fail: 5, error: 4, suppressed: 3, pass: 2, not_applicable: 1 };
  function apply() {
    var text = q.value.trim().toLowerCase(), min = Number(sev.value || 0), st = status.value, c = cat.value, n = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i], d = r.row.dataset;
      var ok = Number(d.v) >= min && (!c || d.c === c) &&
               (!st || (st === "problems" ? problems[d.s] === 1 : d.s === st)) &&
               (!text || r.text.indexOf(text) !== -1);
      r.row.hidden = !ok;
      if (ok) { n++; }
    }
    shown.textContent = String(n);
  }
  [q, sev, status, cat].forEach(function (el) {
    el.addEventListener("input", apply);
    el.addEventListener("change", apply);
  });
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var down = th.getAttribute("aria-sort") !== "descending";
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      var by = th.dataset.sort;
      var key = function (r) {
        if (by === "v") { return Number(r.row.dataset.v); }
        if (by === "s") { return rank[r.row.dataset.s]; }
        return r.row.cells[col].textContent.toLowerCase();
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var order = x < y ? -1 : x > y ? 1 : 0;
        return down ? -order : order;
      });
      var frag = document.createDocumentFragment();
      rows.forEach(function (r) { frag.appendChild(r.row); });
      body.appendChild(frag);
    });
  });
  apply();
}());
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


#: frame-ancestors and sandbox are ignored in a meta tag (a server's header would set them)
CSP = (f"default-src 'none'; script-src {_sha256(SCRIPT)}; style-src {_sha256(STYLE)}; img-src 'none'; "
       "base-uri 'none'; form-action 'none'")

_SEV_ORDER = sorted(Severity, reverse=True)
_STATUS_LETTER = {Status.FAIL: ("F", "\u2717"), Status.ERROR: ("E", "!"), Status.SUPPRESSED: ("S", "s"),
                  Status.PASS: ("P", "\u2713"), Status.NOT_APPLICABLE: ("N", "\u2013")}
_STATUS_WORD = {s: s.value.replace("_", " ") for s in Status}
_QUIET_CELL = {s: f"<td class={cls}>{sym}" for s, (cls, sym) in _STATUS_LETTER.items()}
#: by id(): an Enum member's hash is computed in Python, and the matrix looks ranks up 30,000 times
_RANK_BY_ID = {id(s): rank for s, rank in ((Status.FAIL, 0), (Status.ERROR, 1), (Status.SUPPRESSED, 2), (Status.PASS, 3),
                                           (Status.NOT_APPLICABLE, 4))}
_STATUS_RANK = {Status.FAIL: 0, Status.ERROR: 1, Status.SUPPRESSED: 2, Status.PASS: 3, Status.NOT_APPLICABLE: 4}
#: services drawn in the reachability picture; the rest are counted (the JSON report has them all)
MAX_SERVICES = 80


def _e(value: object) -> str:
    return _escaped(value if isinstance(value, str) else str(value))


@functools.lru_cache(maxsize=1 << 16)
def _escaped(text: str) -> str:
    """Memoized: at 1,000 guests each guest's label and most messages recur a dozen times or more."""
    return html.escape(visible(text), quote=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def render(report: ScanReport, options: RenderOptions) -> str:
    meta = report.facts.meta
    title = f"hyperward report: {meta.hostname}"
    dot = " \u00b7 "
    where = "live host" if meta.root == "/" else "root " + _e(meta.root)
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">",
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"sub\">hyperward {_e(__version__)}{dot}{where}{dot}profile {_e(report.profile)}{dot}"
        f"collected {_e(meta.collected_at)}{'' if meta.euid == 0 else dot + 'not as root'}</p>",
    ]
    parts += _cards(report)
    parts += _chart(report)
    parts += _drift(report)
    parts += _graph(report)
    parts += _table(report)
    parts += _matrix(report)
    parts += _checks(report)
    if report.warnings:
        parts.append("<h2 id=\"warnings\">Warnings</h2><ul>")
        parts += [f"<li>{_e(w)}</li>" for w in report.warnings]
        parts.append("</ul>")
    parts.append(f"<footer>Written by hyperward {_e(__version__)}; this page fetches nothing and runs only its own script.</footer>")
    parts.append(f"<script>{SCRIPT}</script></body></html>\n")
    _escaped.cache_clear()  # one report's strings are not kept for the next (nor timed warm)
    return "".join(parts)


def _cards(report: ScanReport) -> list[str]:
    meta = report.facts.meta
    fails = [f for f in report.findings if f.status is Status.FAIL]
    checks = len({f.check_id for f in fails})
    resources = len({f.result.resource for f in fails})
    status = view(report).counts_by_status(report)
    platforms = ", ".join(sorted(report.facts.platforms)) or "none found"
    guests = report.derived().guests
    duration = report.total_s if report.total_s is not None else report.duration_s

    def card(label: str, value: str, extra: str = "", cls: str = "") -> str:
        return (f"<div class=\"card{' ' + cls if cls else ''}\"><span>{label}</span><b>{value}</b>"
                f"{'<small>' + extra + '</small>' if extra else ''}</div>")

    return [
        "<section class=\"cards\" id=\"summary\">",
        card("Host", _e(meta.hostname)),
        card("Platforms", _e(platforms), f"{_count(len(guests), 'guest')}"),
        card("Collected", _e(meta.collected_at), f"scan {duration:.2f} s"),
        card("Failing", f"{_count(checks, 'check')}", f"on {_count(resources, 'resource')}, {_count(len(fails), 'result')}",
             "bad" if fails else ""),
        card("Errors", str(status["error"]), "checks that could not run", "bad" if status["error"] else ""),
        card("Passed", str(status["pass"]), f"{status['not_applicable']} not applicable, {status['suppressed']} accepted"),
        "</section>",
    ]


def _chart(report: ScanReport) -> list[str]:
    counts = report.counts_by_severity()
    top = max(counts.values()) or 1
    bar_w, row_h = 420, 26
    height = row_h * len(counts) + 10
    out = ["<h2 id=\"severity\">Failing results by severity</h2>",
           f"<svg class=\"chart\" role=\"img\" aria-label=\"failing results by severity\" width=\"640\" height=\"{height}\" "
           f"viewBox=\"0 0 640 {height}\" xmlns=\"http://www.w3.org/2000/svg\">"]
    for i, (label, n) in enumerate(counts.items()):
        y = 5 + i * row_h
        width = round(bar_w * n / top) if n else 0
        out.append(f"<g><title>{n} failing {label}</title><text x=\"0\" y=\"{y + 16}\">{label}</text>"
                   f"<rect class=\"bar-{label}\" x=\"80\" y=\"{y + 3}\" width=\"{max(width, 1 if n else 0)}\" height=\"{row_h - 8}\" rx=\"2\"/>"
                   f"<text x=\"{86 + width}\" y=\"{y + 16}\">{n}</text></g>")
    out.append("</svg>")
    return out


def _drift(report: ScanReport) -> list[str]:
    """HV-IDS-006's comparison with the accepted baseline (`hyperward baseline accept`)."""
    drift = report.facts.drift
    rows = [f for f in report.findings if f.check_id == "HV-IDS-006"]
    out = ["<h2 id=\"drift\">Drift since the baseline</h2>"]
    if drift is None or not rows:
        out.append("<p class=\"note\">No libvirt configuration to compare (or HV-IDS-006 was not run).</p>")
        return out
    if not isinstance(drift.baseline, dict):
        out.append(f"<p class=\"note\">{_e(rows[0].result.message)}</p>")
        return out
    changed = [f for f in rows if f.status in (Status.FAIL, Status.SUPPRESSED)]
    since = f" accepted {_e(drift.accepted_at)}" if drift.accepted_at else ""
    if not changed:
        out.append(f"<p>Nothing changed: {_count(len(drift.current), 'file and definition')} match the baseline{since}.</p>")
        return out
    out.append(f"<p>{_count(len(changed), 'change')} against the baseline{since} ({_e(drift.baseline_path)}):</p>"
               "<table class=\"drift\"><thead><tr><th>file or definition</th><th>change</th></tr></thead><tbody>")
    for f in changed:
        state = f.result.message.split(" ", 1)[0]
        out.append(f"<tr><td>{_e(f.result.resource)}</td><td class=\"s-{f.status.value}\">{_e(state)}"
                   f"{' (accepted: ' + _e(f.suppression_reason) + ')' if f.suppression_reason else ''}</td></tr>")
    out.append("</tbody></table>")
    return out


def _edge_kind(r: Reach) -> str:
    if r.reachable is True:
        return "danger" if port_label(r.port) else "open"
    return "unknown" if r.reachable is None else "blocked"


_EDGE_RANK = {"danger": 0, "open": 1, "unknown": 2, "blocked": 3}


def _graph(report: ScanReport) -> list[str]:
    """Guest networks -> host bridges -> host services, from the reachability rows HV-FW-002 judges."""
    derived = report.derived()
    out = ["<h2 id=\"reachability\">What guests reach on the host</h2>"]
    # left column: where guest NICs attach (a libvirt network, or straight onto a bridge)
    attach: dict[tuple[str, str], list[str]] = {}
    elsewhere = 0
    for guest in derived.guests:
        for nic in guest.nics:
            if nic.attachment == "network" and nic.source:
                key = ("network", nic.source)
            elif nic.attachment == "bridge" and nic.source:
                key = ("bridge", nic.source)
            else:
                elsewhere += 1
                continue
            names = attach.setdefault(key, [])
            if guest.label not in names:
                names.append(guest.label)
    rows = derived.reachability
    bridges = sorted({r.source for r in rows} | {derived.network_bridges.get(name, "") if kind == "network" else name
                                                  for kind, name in attach} - {""})
    if not rows and not attach:
        out.append("<p class=\"note\">No guest-facing bridge and no reachability rows: nothing to draw.</p>")
        return out
    services: dict[tuple[str, int, str, str], list[Reach]] = {}
    for r in rows:
        services.setdefault((r.address, r.port, r.protocol, r.family), []).append(r)
    ranked = sorted(services.items(), key=lambda kv: (min(_EDGE_RANK[_edge_kind(r)] for r in kv[1]), kv[0][1], kv[0][0]))
    hidden = len(ranked) - MAX_SERVICES
    ranked = ranked[:MAX_SERVICES]
    left = sorted(attach.items())
    row_h, top = 34, 40
    xs = (10, 390, 690)
    widths = (300, 200, 320)
    height = top + row_h * max(len(left), len(bridges), len(ranked), 1) + 10
    width = xs[2] + widths[2] + 10
    ys_bridge = {b: top + i * row_h for i, b in enumerate(bridges)}
    svg = [f"<div class=\"graph\"><svg role=\"img\" aria-label=\"guest networks to bridges to host services\" width=\"{width}\" "
           f"height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">",
           f"<text class=\"col\" x=\"{xs[0]}\" y=\"20\">guest networks</text><text class=\"col\" x=\"{xs[1]}\" y=\"20\">host bridges</text>"
           f"<text class=\"col\" x=\"{xs[2]}\" y=\"20\">host services</text>"]
    edges: list[str] = []
    nodes: list[str] = []
    for i, ((kind, name), guests) in enumerate(left):
        y = top + i * row_h
        shown = ", ".join(guests[:20]) + (f" and {len(guests) - 20} more" if len(guests) > 20 else "")
        label = f"{kind} {name} ({_count(len(guests), 'guest')})"
        bridge = derived.network_bridges.get(name) if kind == "network" else name
        nodes.append(_node(xs[0], y, widths[0], label, f"{label}: {shown}", ""))
        if bridge in ys_bridge:
            said = f"network {name} puts its guests on bridge {bridge}" if kind == "network" else f"guests attached to bridge {name} directly"
            edges.append(_edge(xs[0] + widths[0], y, xs[1], ys_bridge[bridge], "net", said))
    for bridge, y in ys_bridge.items():
        nodes.append(_node(xs[1], y, widths[1], f"bridge {bridge}", f"bridge {bridge}", ""))
    for i, ((address, port, protocol, family), reach) in enumerate(ranked):
        y = top + i * row_h
        service = port_label(port)
        where = f"[{address}]" if family == "ipv6" and address != "*" else address
        processes = sorted({r.process for r in reach if r.process})
        text = f"{where}:{port}/{protocol}" + (" ipv6" if family == "ipv6" else "") + (f" {service}" if service else "") + (f" ({', '.join(processes)})" if processes else "")
        kinds = {_edge_kind(r) for r in reach}
        cls = "danger" if "danger" in kinds else "exposed" if "open" in kinds else ""
        nodes.append(_node(xs[2], y, widths[2], text, text + ("" if reach[0].listening is not None else " (offline tree: not seen listening)"), cls))
        for r in sorted(reach, key=lambda r: _EDGE_RANK[_edge_kind(r)], reverse=True):
            if r.source in ys_bridge:
                state = {True: "reachable", False: "blocked", None: "unknown"}[r.reachable]
                edges.append(_edge(xs[1] + widths[1], ys_bridge[r.source], xs[2], y, _edge_kind(r),
                                   f"{r.source} -> {text}: {state}, because {r.because}"))
    svg += edges + nodes
    svg.append("</svg></div>")
    out += svg
    notes = ["<p class=\"legend\"><span><i class=\"sw danger\"></i>reachable virtualization or management service</span>"
             "<span><i class=\"sw open\"></i>reachable</span><span><i class=\"sw unknown\"></i>unknown</span>"
             "<span><i class=\"sw blocked\"></i>blocked</span> Hover an edge for the rule that decided it.</p>"]
    if hidden > 0:
        notes.append(f"<p class=\"note\">{_count(hidden, 'more service')} not drawn (the JSON report and <code>hyperward reach</code> list all).</p>")
    if elsewhere:
        notes.append(f"<p class=\"note\">{_count(elsewhere, 'NIC')} attach outside a host bridge (macvtap, passthrough, user-mode) "
                     "and are not drawn.</p>")
    if rows and all(r.listening is None for r in rows):
        notes.append("<p class=\"note\">Offline tree: no listening socket can be seen, so the services are the well-known "
                     "ports and each edge is what the firewall rules would do.</p>")
    return out + notes


def _node(x: int, y: int, width: int, label: str, title: str, cls: str) -> str:
    shown = label if len(label) <= width // 7 else label[: width // 7 - 1] + "\u2026"
    return (f"<g class=\"node{' ' + cls if cls else ''}\"><title>{_e(title)}</title>"
            f"<rect x=\"{x}\" y=\"{y}\" width=\"{width}\" height=\"26\" rx=\"4\"/><text x=\"{x + 8}\" y=\"{y + 17}\">{_e(shown)}</text></g>")


def _edge(x1: int, y1: int, x2: int, y2: int, kind: str, title: str) -> str:
    a, b = y1 + 13, y2 + 13
    mid = (x1 + x2) // 2
    return f"<path class=\"e-{kind}\" d=\"M{x1} {a} C{mid} {a} {mid} {b} {x2} {b}\"><title>{_e(title)}</title></path>"


_SELECT_SEV = "".join(f"<option value=\"{int(s)}\">{s.label}{'' if s is Severity.CRITICAL else ' and worse'}</option>" for s in _SEV_ORDER)
_SELECT_STATUS = ("<option value=\"\">any status</option><option value=\"problems\" selected>fail, error, accepted</option>"
                  + "".join(f"<option value=\"{s.value}\">{s.value.replace('_', ' ')}</option>" for s in Status))


def _table(report: ScanReport) -> list[str]:
    categories = sorted({f.meta.category for f in report.findings}, key=lambda c: c.label)
    out = [
        "<h2 id=\"findings-h\">Findings</h2><div class=\"controls\">",
        "<input id=\"f-text\" type=\"search\" placeholder=\"filter: check, resource, message\" aria-label=\"filter text\">",
        f"<select id=\"f-sev\" aria-label=\"severity\"><option value=\"0\">any severity</option>{_SELECT_SEV}</select>",
        f"<select id=\"f-status\" aria-label=\"status\">{_SELECT_STATUS}</select>",
        "<select id=\"f-cat\" aria-label=\"category\"><option value=\"\">any category</option>"
        + "".join(f"<option value=\"{c.value}\">{_e(c.label)}</option>" for c in categories) + "</select>",
        f"<span><b id=\"f-shown\">{len(report.findings)}</b> of {len(report.findings)} shown</span></div>",
        "<table id=\"findings\"><thead><tr><th data-sort=\"v\"><button type=\"button\">severity</button></th>"
        "<th data-sort=\"s\"><button type=\"button\">status</button></th><th><button type=\"button\">check</button></th>"
        "<th><button type=\"button\">resource</button></th><th>message</th></tr></thead><tbody>",
    ]
    # end tags of td and tr are optional in HTML: at 16,000 rows they are a fifth of the file
    # the row's constant part per (check, severity, status): 16,000 rows share a few hundred
    heads: dict[tuple[str, int, int], str] = {}
    for f in report.findings:
        result = f.result
        message = _escaped(result.message)
        if f.suppression_reason is not None:
            message += f" <i>accepted: {_e(f.suppression_reason)}</i>"
        key = (f.meta.check_id, id(f.severity), id(f.status))
        head = heads.get(key)
        if head is None:
            cid = f.meta.check_id
            # colours come from the row's data attributes (CSS), not from a class on each cell
            head = heads[key] = (f"<tr data-v={int(f.severity)} data-s={f.status.value} data-c={f.meta.category.value}>"
                                 f"<td>{f.severity.label}<td>{_STATUS_WORD[f.status]}<td><a href=#{cid}>{cid}</a><td>")
        out.append(f"{head}{_escaped(result.resource)}<td>{message}")
    out.append("</tbody></table>")
    return out


def _matrix(report: ScanReport) -> list[str]:
    """Guest x check: each guest's worst status per check that judges guests."""
    guests = report.derived().guests
    out = ["<h2 id=\"matrix\">Guests \u00d7 checks</h2>"]
    if not guests:
        out.append("<p class=\"note\">No guests.</p>")
        return out
    by_id = {(g.platform, g.id): g for g in guests}
    by_name: dict[str, list[Guest]] = {}
    for g in guests:
        by_name.setdefault(g.name, []).append(g)
    cells: dict[int, dict[str, Finding]] = {}
    checks: set[str] = set()
    for f in report.findings:
        d = f.result.details
        name = d.get("guest")
        if name is None:
            continue
        guest = by_id.get((str(d.get("platform") or f.result.platform or ""), str(d.get("guest_id"))))
        if guest is None:
            # a process result names the guest only (details "guest" from "NAME (pid N)"): one guest of that name
            same = by_name.get(str(name), [])
            if len(same) != 1:
                continue
            guest = same[0]
        row = cells.setdefault(id(guest), {})
        cid = f.meta.check_id
        held = row.get(cid)
        if held is None or _RANK_BY_ID[id(f.status)] < _RANK_BY_ID[id(held.status)]:
            row[cid] = f
        checks.add(cid)
    columns = sorted(checks)
    if not columns:
        out.append("<p class=\"note\">No guest results.</p>")
        return out
    out.append("<p class=\"legend\"><span>\u2717 fail</span><span>! error</span><span>s accepted</span><span>\u2713 pass</span>"
               "<span>\u2013 not applicable</span><span>(blank: not judged)</span></p>"
               "<div class=\"matrix\"><table><thead><tr><th>guest</th>")
    out += [f"<th><a href=#{c}>{c}</a></th>" for c in columns]
    out.append("</tr></thead><tbody>")
    ordered = sorted(guests, key=lambda g: (min((_RANK_BY_ID[id(f.status)] for f in cells.get(id(g), {}).values()), default=9), g.name, g.id))
    for g in ordered:
        row = cells.get(id(g), {})
        line = [f"<tr><th title=\"{_e(g.platform)} {_e(g.kind)} {_e(g.id)}\">{_e(g.label)}"]
        for c in columns:
            cell = row.get(c)
            if cell is None:
                line.append("<td>")
            elif cell.status is Status.FAIL or cell.status is Status.ERROR:
                cls, sym = _STATUS_LETTER[cell.status]
                # a title on failures only: 30,000 cells with a message each would triple the file
                line.append(f"<td class={cls} title=\"{c}: {_escaped(cell.result.message)}\">{sym}")
            else:
                line.append(_QUIET_CELL[cell.status])  # pass, n/a, suppressed: a few hundred per guest at most
        out.append("".join(line))
    out.append("</tbody></table></div>")
    return out


def _checks(report: ScanReport) -> list[str]:
    """What each check is and how to fix it: said once here, linked from every row."""
    seen: dict[str, Finding] = {}
    fixes: dict[str, dict[str, None]] = {}
    for f in report.findings:
        seen.setdefault(f.check_id, f)
        if f.status is Status.FAIL and f.remediation:
            fixes.setdefault(f.check_id, {})[f.remediation] = None
    out = ["<h2 id=\"checks\">Checks in this report</h2><dl class=\"checks\">"]
    for cid in sorted(seen):
        f = seen[cid]
        out.append(f"<dt id=\"{cid}\">{cid} \u00b7 {_e(f.meta.title)} <span class=\"v{int(f.meta.severity)}\">{f.meta.severity.label}</span>"
                   f" \u00b7 {_e(f.meta.category.label)}</dt>")
        shown = list(fixes.get(cid, {}))[:5] or ([f.meta.fix] if f.meta.fix else [])
        out += [f"<dd>fix: {_e(fix)}</dd>" for fix in shown]
    out.append("</dl>")
    return out

