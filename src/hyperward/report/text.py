"""Human report: findings grouped by category, worst first, each with its resource and one-line fix."""

from __future__ import annotations

import io
import textwrap
from itertools import groupby

from rich.console import Console
from rich.text import Text

from .. import __version__
from ..engine import ScanReport, sort_key
from ..model import Finding, Severity, Status
from ..textsafe import visible
from . import RenderOptions

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
STATUS_STYLE = {
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.SUPPRESSED: "dim",
    Status.PASS: "green",
    Status.NOT_APPLICABLE: "dim",
}
SHOWN_BY_DEFAULT = (Status.FAIL, Status.ERROR, Status.SUPPRESSED)


def summary_line(report: ScanReport) -> str:
    failing = report.counts_by_severity()
    status = report.counts_by_status()
    sev = ", ".join(f"{n} {label}" for label, n in failing.items())
    st = ", ".join(f"{n} {label}" for label, n in status.items())
    return f"Summary: {sum(failing.values())} failing ({sev}) | {st}"


def _reach_matrix(console: Console, report: ScanReport, options: RenderOptions) -> None:
    """Guest network x host service, worst exposures first; only what guests reach (or might),
    unless --verbose."""
    from ..reach import port_label

    # offline rows (nothing seen listening) are rule-based guesses: HV-FW-002 and `hyperward reach` say so
    rows = [r for r in report.derived().reachability if r.listening is not None and (options.verbose or r.reachable is not False)]
    if not rows:
        return
    console.print()
    console.print(Text("Reachable from guest networks (HV-FW-002)", style="bold underline"))
    for r in rows[:40]:
        label = port_label(r.port)
        state = {True: "REACHABLE", False: "blocked", None: "unknown"}[r.reachable]
        line = Text("  ")
        line.append(f"{state:<10}", style="red" if r.reachable else "yellow" if r.reachable is None else "green")
        line.append(f" {visible(r.source):<12} -> {visible(r.address)}:{r.port}/{visible(r.protocol)}" + (" ipv6" if r.family == "ipv6" else ""))
        if label:
            line.append(f" {label}", style="bold")
        if r.process:
            line.append(f" ({visible(r.process)})")
        console.print(line, soft_wrap=True)
    if len(rows) > 40:
        console.print(f"  ... {len(rows) - 40} more (hyperward reach)")


def _category_rank(findings: list[Finding]) -> tuple:
    return min(sort_key(f) for f in findings)


def _indented(text: str, width: int, style: str = "", indent: int = 6) -> Text:
    pad = " " * indent
    wrapped = textwrap.fill(text, width=max(40, width - 1), initial_indent=pad, subsequent_indent=pad + "  ", break_on_hyphens=False)
    return Text(wrapped, style=style)


def render(report: ScanReport, options: RenderOptions) -> str:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        force_terminal=options.color,
        no_color=not options.color,
        color_system="standard" if options.color else None,
        width=options.width,
        highlight=False,
    )
    meta = report.facts.meta
    if not options.quiet:
        where = "live host" if meta.root == "/" else f"root {visible(meta.root)}"
        header = Text()
        header.append(f"hyperward {__version__}", style="bold")
        header.append(f"  {visible(meta.hostname)} ({where}), profile {report.profile}, collected {visible(meta.collected_at)}")
        if meta.euid != 0:
            header.append(", not as root", style="yellow")
        console.print(header, soft_wrap=True)
        shown = [f for f in report.findings if options.verbose or f.status in SHOWN_BY_DEFAULT]
        by_category: dict = {}
        for f in shown:
            by_category.setdefault(f.meta.category, []).append(f)
        for category, findings in sorted(by_category.items(), key=lambda kv: _category_rank(kv[1])):
            console.print()
            console.print(Text(category.label, style="bold underline"))
            ordered = sorted(findings, key=sort_key)
            for (_, check_id, severity, status), group in groupby(ordered, key=lambda f: (sort_key(f)[0], f.check_id, f.severity, f.status)):
                items = list(group)
                head = Text("  ")
                head.append(f"{severity.label.upper():<8}", style=SEVERITY_STYLE[severity])
                head.append(f" {status.value.upper():<14}", style=STATUS_STYLE[status])
                head.append(f" {check_id}", style="bold")
                head.append(f"  {items[0].meta.title}")
                console.print(head)
                for f in items:
                    line = f"{f.result.resource}: {f.result.message}" if f.result.message else f.result.resource
                    console.print(_indented(visible(line), options.width), soft_wrap=True)
                    if f.status is Status.SUPPRESSED:
                        console.print(_indented(f"accepted risk: {visible(f.suppression_reason)}", options.width, "dim", 8), soft_wrap=True)
                if status is Status.FAIL:
                    for fix in dict.fromkeys(f.remediation for f in items if f.remediation):
                        console.print(_indented(f"fix: {visible(fix)}", options.width, "green"), soft_wrap=True)
        if not shown:
            console.print()
            console.print("No failures or errors." + ("" if options.verbose else " (--verbose lists passing checks)"))
        _reach_matrix(console, report, options)
        console.print()
        for warning in report.warnings:
            console.print(Text(f"warning: {visible(warning)}", style="yellow"))
        lacking = report.lacking_privilege()
        if lacking:
            console.print(Text(f"lacked privilege (run as root for these): {', '.join(lacking)}", style="yellow"))
    console.print(Text(summary_line(report), style="bold"), soft_wrap=True)
    return buffer.getvalue()
