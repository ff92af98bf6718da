"""`hyperward fleet report` in text, HTML (the host x category table as a heat map) and the
Prometheus exposition; JSON is build_report's document itself. Host names, sites, groups, titles and
problems come from reports that the hosts themselves wrote: escaped for the terminal, HTML and
Prometheus each by that format's own rules."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from .report.prometheus import _label
from .textsafe import visible


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1) + "\n"


def to_text(doc: dict[str, Any]) -> str:
    v = visible
    lines = [f"hyperward fleet report: {doc['hosts']} hosts (generated {doc['generated_at']})"]
    active = {k: x for k, x in doc["filters"].items() if x}
    if active:
        lines.append("filters: " + ", ".join(f"{k}={v(x)}" for k, x in active.items()))
    lines += ["", "Worst hosts (failing findings weighted critical 10, high 5, medium 2, low 1):"]
    for r in doc["worst_hosts"][:20]:
        where = " ".join(x for x in (r["site"] and f"site={v(r['site'])}", r["group"] and f"group={v(r['group'])}") if x)
        lines.append(f"  {r['score']:>6}  {v(r['host'])}  {r['failing']} failing  {v(r['collected_at'])}{'  ' + where if where else ''}")
    lines += ["", "Most common findings:"]
    for e in doc["most_common"]:
        lines.append(f"  {e['hosts']:>4} hosts  {e['severity'].upper():<8} {e['id']}  {v(e['title'])}")
    if doc["categories"]:
        cats = doc["categories"]
        width = max([len(h) for h in doc["matrix"]] + [4])
        lines += ["", "Failing findings per host and category:", "  " + "host".ljust(width) + "".join(f" {c:>5}" for c in cats)]
        for host, counts in doc["matrix"].items():
            lines.append("  " + v(host).ljust(width) + "".join(f" {counts.get(c, 0):>5}" for c in cats))
    lines += ["", f"Not scanned within {doc['stale_days']:g} days: {len(doc['stale'])}"]
    lines += [f"  {v(r['host'])}  last {v(r['collected_at'])}" for r in doc["stale"]]
    lines += ["", f"Hosts whose last report is not usable: {len(doc['problems'])}"]
    lines += [f"  {v(r['host'])}  {r['state'].replace('_', ' ')}: {v(r['problem'])}" for r in doc["problems"]]
    lines += ["", "Trends (new / fixed findings per week):"]
    lines += [f"  {t['week']}  +{t['new']} new  -{t['fixed']} fixed  ({t['reports']} rescans)" for t in doc["trends"]] or ["  (no host scanned twice yet)"]
    return "\n".join(lines) + "\n"


def to_prometheus(doc: dict[str, Any]) -> str:
    """Per-host gauges for a Prometheus that scrapes the controller (the per-host textfile
    reporter already covers each host's own node-exporter)."""
    out = ["# HELP hyperward_fleet_host_score Failing findings of the host's last good report, weighted by severity.",
           "# TYPE hyperward_fleet_host_score gauge"]
    out += [f'hyperward_fleet_host_score{{host="{_label(r["host"])}"}} {r["score"]}' for r in doc["worst_hosts"]]
    out += ["# HELP hyperward_fleet_host_failing Failing findings of the host's last good report.",
            "# TYPE hyperward_fleet_host_failing gauge"]
    out += [f'hyperward_fleet_host_failing{{host="{_label(r["host"])}"}} {r["failing"]}' for r in doc["worst_hosts"]]
    out += ["# HELP hyperward_fleet_finding_hosts Hosts on which a check fails.", "# TYPE hyperward_fleet_finding_hosts gauge"]
    out += [f'hyperward_fleet_finding_hosts{{check="{_label(e["id"])}",severity="{_label(e["severity"])}"}} {e["hosts"]}'
            for e in doc["most_common"]]
    out += ["# HELP hyperward_fleet_hosts_stale Hosts not scanned within the stale window.", "# TYPE hyperward_fleet_hosts_stale gauge",
            f"hyperward_fleet_hosts_stale {len(doc['stale'])}",
            "# HELP hyperward_fleet_host_unusable 1 when the host's last report was bad input or a failed scan.",
            "# TYPE hyperward_fleet_host_unusable gauge"]
    out += [f'hyperward_fleet_host_unusable{{host="{_label(r["host"])}",state="{_label(r["state"])}"}} 1' for r in doc["problems"]]
    return "\n".join(out) + "\n"


STYLE = ("body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td.h,th.h{text-align:left}"
         ".h0{background:#fff}.h1{background:#fde0c5}.h2{background:#facba6}.h3{background:#f59e72}.h4{background:#e8654e;color:#fff}"
         ".bad{color:#a00}")
CSP = ("default-src 'none'; style-src 'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
       + "'; img-src 'none'; base-uri 'none'; form-action 'none'")


def _e(value: object) -> str:
    return html.escape(visible(value if isinstance(value, str) else str(value)), quote=True)


def _heat(n: int, top: int) -> str:
    return "h0" if n == 0 else f"h{min(4, 1 + (n * 4 - 1) // max(top, 1))}"


def to_html(doc: dict[str, Any]) -> str:
    """One static page, no script: the CSP allows only its own stylesheet."""
    p = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
         f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\"><meta name=\"referrer\" content=\"no-referrer\">",
         f"<title>hyperward fleet report</title><style>{STYLE}</style></head><body>",
         f"<h1>hyperward fleet report</h1><p>{doc['hosts']} hosts, generated {_e(doc['generated_at'])}</p>",
         "<h2>Worst hosts</h2><table><tr><th class=h>host</th><th>score</th><th>failing</th><th class=h>collected</th>"
         "<th class=h>site</th><th class=h>group</th></tr>"]
    p += [f"<tr><td class=h>{_e(r['host'])}<td>{r['score']}<td>{r['failing']}<td class=h>{_e(r['collected_at'])}"
          f"<td class=h>{_e(r['site'])}<td class=h>{_e(r['group'])}</tr>" for r in doc["worst_hosts"]]
    p += ["</table><h2>Most common findings</h2><table><tr><th>hosts</th><th class=h>severity</th><th class=h>check</th><th class=h>title</th></tr>"]
    p += [f"<tr><td>{e['hosts']}<td class=h>{_e(e['severity'])}<td class=h>{_e(e['id'])}<td class=h>{_e(e['title'])}</tr>"
          for e in doc["most_common"]]
    cats = doc["categories"]
    top = max([n for counts in doc["matrix"].values() for n in counts.values()] + [1])
    p += ["</table><h2>Failing findings per host and category</h2><table class=heat><tr><th class=h>host</th>"
          + "".join(f"<th>{_e(c)}</th>" for c in cats) + "</tr>"]
    for host, counts in doc["matrix"].items():
        p.append(f"<tr><td class=h>{_e(host)}" + "".join(
            f"<td class={_heat(counts.get(c, 0), top)} title=\"{_e(host)} {_e(c)}\">{counts.get(c, 0)}" for c in cats) + "</tr>")
    p += [f"</table><h2>Not scanned within {doc['stale_days']:g} days</h2><ul>"]
    p += [f"<li>{_e(r['host'])}: last {_e(r['collected_at'])}</li>" for r in doc["stale"]]
    p += ["</ul><h2>Hosts whose last report is not usable</h2><ul>"]
    p += [f"<li class=bad>{_e(r['host'])}: {_e(r['state'].replace('_', ' '))}: {_e(r['problem'])}</li>" for r in doc["problems"]]
    p += ["</ul><h2>Trends</h2><table><tr><th class=h>week</th><th>new</th><th>fixed</th><th>rescans</th></tr>"]
    p += [f"<tr><td class=h>{_e(t['week'])}<td>{t['new']}<td>{t['fixed']}<td>{t['reports']}</tr>" for t in doc["trends"]]
    p.append("</table></body></html>\n")
    return "".join(p)


def diff_text(doc: dict[str, Any]) -> str:
    v = visible
    s = doc["summary"]
    lines = [f"hyperward fleet diff: {v(doc['since'])} -> {v(doc['until'] or 'now')}"]
    for h in doc["hosts"]:
        if h.get("new_host"):
            lines.append(f"  {v(h['host'])}: first report in the window ({v(h['collected_at'])}, {h['failing']} failing)")
            continue
        hs = h["summary"]
        lines.append(f"  {v(h['host'])}: {hs['new']} new, {hs['fixed']} fixed, {hs['still_failing']} still failing "
                     f"({v(h['old'])} -> {v(h['new'])})")
        for kind in ("new", "fixed"):
            for c in h["changes"][kind]:
                lines.append(f"    {kind:<5} {c['severity'].upper():<8} {c['id']}  {v(c['resource'])}")
    lines.append(f"Fleet: {s['new']} new, {s['fixed']} fixed, {s['still_failing']} still failing, {s['not_judged']} no longer judged")
    return "\n".join(lines) + "\n"
