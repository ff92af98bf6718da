"""Prometheus text exposition for node-exporter's textfile collector: a fleet graphs and alerts on
failing findings without parsing reports. Every check the scan ran has a series (0 when it passes),
so an alert on "> 0" resolves when the finding is fixed instead of going stale."""

from __future__ import annotations

import datetime
from collections import Counter

from .. import __version__
from ..engine import ScanReport
from ..model import Status
from . import RenderOptions
from .common import view


def _label(value: str) -> str:
    """The exposition format's escapes (backslash, quote, newline); other control characters are
    dropped, since a guest name is attacker-chosen text."""
    cleaned = "".join(c for c in value if c == "\n" or c >= " " and c != "\x7f")
    return cleaned.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**pairs: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items()) + "}"


def _epoch(timestamp: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


def render(report: ScanReport, options: RenderOptions) -> str:
    meta = report.facts.meta
    failing: Counter[tuple[str, str, str]] = Counter()
    per_check: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    statuses = view(report).counts_by_status(report)
    for f in report.findings:
        per_check[f.check_id] += 0
        if f.status is Status.FAIL:
            failing[(f.check_id, f.severity.label, f.result.platform or "host")] += 1
            per_check[f.check_id] += 1
        elif f.status is Status.ERROR:
            errors[f.check_id] += 1
    lines = [
        "# HELP hyperward_info The hyperward version and profile of the last scan.",
        "# TYPE hyperward_info gauge",
        f"hyperward_info{_labels(version=__version__, host=meta.hostname, profile=report.profile)} 1",
        "# HELP hyperward_findings_failing Failing findings of the last scan by check, severity and platform.",
        "# TYPE hyperward_findings_failing gauge",
        *(f"hyperward_findings_failing{_labels(check=c, severity=s, platform=p)} {n}" for (c, s, p), n in sorted(failing.items())),
        "# HELP hyperward_check_failing Failing resources per check of the last scan (0: the check passed or did not apply).",
        "# TYPE hyperward_check_failing gauge",
        *(f"hyperward_check_failing{_labels(check=c)} {n}" for c, n in sorted(per_check.items())),
        "# HELP hyperward_results Results of the last scan by status.",
        "# TYPE hyperward_results gauge",
        *(f"hyperward_results{_labels(status=s.value)} {statuses[s.value]}" for s in Status),
        "# HELP hyperward_check_errors Results of the last scan that could not be decided (collector or check errors), by check.",
        "# TYPE hyperward_check_errors gauge",
        *(f"hyperward_check_errors{_labels(check=c)} {n}" for c, n in sorted(errors.items())),
        "# HELP hyperward_warnings Warnings the last scan printed (collectors that could not read an input).",
        "# TYPE hyperward_warnings gauge",
        f"hyperward_warnings {len(report.warnings)}",
        "# HELP hyperward_scan_duration_seconds How long the last scan took.",
        "# TYPE hyperward_scan_duration_seconds gauge",
        f"hyperward_scan_duration_seconds {report.total_s if report.total_s is not None else report.duration_s:.6f}",
    ]
    collected = _epoch(meta.collected_at)
    if collected is not None:
        lines += ["# HELP hyperward_scan_timestamp_seconds When the last scan collected its facts (Unix time).",
                  "# TYPE hyperward_scan_timestamp_seconds gauge",
                  f"hyperward_scan_timestamp_seconds {collected:.0f}"]
    return "\n".join(lines) + "\n"
