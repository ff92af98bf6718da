"""Human report: findings grouped by category, worst first, each with its resource and one-line fix."""

from __future__ import annotations

import io
import re
import textwrap
import unicodedata
from typing import IO

from .. import __version__
from ..engine import ScanReport, sort_key
from ..model import Category, Finding, Severity, Status
from ..textsafe import visible
from ..verified import verified
from . import RenderOptions
from .common import view

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
# rich's strip_control_codes: BEL, BS, VT, FF, CR never reach the terminal, coloured or not
_CONTROL = dict.fromkeys((7, 8, 11, 12, 13))
_WORD = re.compile(r"\s*\S+\s*")


class Text:
    """Styled text as the report builds it. With colour it becomes a rich Text; without, the
    report is written as rich would write it uncoloured, and a scan never imports rich."""

    def __init__(self, text: str = "", style: str = "") -> None:
        self.style = style
        self.parts: list[tuple[str, str | None]] = [(text.translate(_CONTROL), None)] if text else []

    def append(self, text: str, style: str | None = None) -> Text:
        self.parts.append((text.translate(_CONTROL), style))
        return self

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)


def _cells(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _wrap(line: str, width: int) -> list[str]:
    """rich's word wrapping (rich._wrap.divide_line, then rstrip_end): breaks before the word that
    does not fit; a word wider than the line is cut."""
    if _cells(line) <= width:
        return [line]
    breaks, offset = [], 0
    for match in _WORD.finditer(line):
        start, word = match.start(), match.group(0)
        length = _cells(word.rstrip())
        if width - offset >= length:
            offset += _cells(word)
        elif length > width:
            if start:
                breaks.append(start)
            while _cells(word) > width:
                cut = len(word)
                while _cells(word[:cut]) > width:
                    cut -= 1
                start, word = start + cut, word[cut:]
                breaks.append(start)
            offset = _cells(word)
        elif offset and start:
            breaks.append(start)
            offset = _cells(word)
    pieces = [line[a:b] for a, b in zip([0, *breaks], [*breaks, len(line)])]
    return [piece[: len(piece) - min(len(piece) - width, len(piece) - len(piece.rstrip()))] if len(piece) > width else piece
            for piece in pieces]


class _Plain:
    """The part of rich's Console the report uses, for output without colour."""

    def __init__(self, file: IO[str], width: int) -> None:
        self.file, self.width = file, width

    def print(self, obj: Text | str = "", soft_wrap: bool = False) -> None:
        text = obj.plain if isinstance(obj, Text) else obj
        lines = text.expandtabs(8).split("\n")
        if not soft_wrap:
            lines = [piece for line in lines for piece in _wrap(line, self.width)]
        self.file.write("\n".join(lines) + "\n")


class _Rich:
    """rich's Console, for colour: each Text becomes a rich Text with the same spans."""

    def __init__(self, file: IO[str], width: int) -> None:
        from rich.console import Console

        self.console = Console(file=file, force_terminal=True, no_color=False, color_system="standard", width=width, highlight=False)

    def print(self, obj: Text | str = "", soft_wrap: bool = False) -> None:
        from rich.text import Text as RichText

        if isinstance(obj, Text):
            rich = RichText(style=obj.style)
            for text, style in obj.parts:
                rich.append(text, style=style)
            self.console.print(rich, soft_wrap=soft_wrap)
        else:
            self.console.print(obj, soft_wrap=soft_wrap)


Console = _Plain | _Rich


def summary_line(report: ScanReport) -> str:
    """Checks and resources counted apart: 160 failing results may be one check on 160 guests or 160
    checks on the host, and the two call for different work."""
    failing = report.counts_by_severity()
    status = view(report).counts_by_status(report)
    checks = {f.check_id for f in report.findings if f.status is Status.FAIL}
    resources = {f.result.resource for f in report.findings if f.status is Status.FAIL}
    sev = ", ".join(f"{n} {label}" for label, n in failing.items())
    st = ", ".join(f"{n} {label}" for label, n in status.items())
    return (f"Summary: {_count(len(checks), 'check')} {'fails' if len(checks) == 1 else 'fail'}, on {_count(len(resources), 'resource')}"
            f" | {sum(failing.values())} failing ({sev}) | {st}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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
        if _cells(line.plain) <= options.width - 1:
            console.print(line, soft_wrap=True)
        else:
            # a long address or process name wraps under the service, not into the margin
            wrapped = textwrap.fill(line.plain.strip(), width=max(40, options.width - 1), initial_indent="  ",
                                    subsequent_indent=" " * 13, break_on_hyphens=False)
            console.print(Text(wrapped, style="red" if r.reachable else "yellow" if r.reachable is None else "green"), soft_wrap=True)
    if len(rows) > 40:
        console.print(f"  ... {len(rows) - 40} more (hyperward reach)")


def _category_rank(findings: list[Finding]) -> tuple[int, int, str, str]:
    return min(sort_key(f) for f in findings)


def _indented(text: str, width: int, style: str = "", indent: int = 6) -> Text:
    pad = " " * indent
    wrapped = textwrap.fill(text, width=max(40, width - 1), initial_indent=pad, subsequent_indent=pad + "  ", break_on_hyphens=False)
    return Text(wrapped, style=style)


def _line(f: Finding) -> str:
    """resource: message, the resource said once (a message may already begin with it)."""
    resource, message = f.result.resource, f.result.message
    if message.startswith(f"{resource}: "):
        message = message[len(resource) + 2:]
    if not message or message == resource:
        return resource
    return f"{resource}: {message}"


#: the tag a result line carries when its status or severity differs from its check's heading
QUIET_TAG = {Status.PASS: "ok", Status.NOT_APPLICABLE: "n/a", Status.ERROR: "error", Status.SUPPRESSED: "accepted"}
#: resources listed under one check before the rest fold into a count (-v lists them all); one more
#: than this is shown rather than folded, since "and 1 more" takes the line the resource would
FOLD_AT = 10


def _tag(f: Finding, top: Finding) -> str:
    if f.status is top.status and f.severity is top.severity:
        return ""
    if f.status is Status.FAIL:
        return f"{f.severity.label}: "
    return f"{QUIET_TAG[f.status]}: "


def _pending_updates(console: Console, pending: list[Finding], top: Finding, options: RenderOptions) -> None:
    """HV-PATCH-001 by archive, then by source package: fifty binary packages of one glibc or
    QEMU upload are one decision (upgrade that source), and the archive says how urgent it is."""
    by_archive: dict[str, dict[str, list[Finding]]] = {}
    for f in pending:
        d = f.result.details
        by_archive.setdefault(str(d["archive"]), {}).setdefault(str(d.get("source_package") or f.result.resource), []).append(f)
    # the security archive first, then the archive with the worst update
    order = sorted(by_archive.items(), key=lambda kv: (not kv[0].endswith("(security)"),
                                                        -max(f.severity for group in kv[1].values() for f in group), kv[0]))
    for archive, sources in order:
        count = sum(len(group) for group in sources.values())
        console.print(_indented(visible(f"from {archive}: {_count(count, 'update')} of {_count(len(sources), 'source package')}"),
                                options.width), soft_wrap=True)
        ranked = sorted(sources.items(), key=lambda kv: (-max(f.severity for f in kv[1]), kv[0]))
        shown = ranked if options.verbose or len(ranked) <= FOLD_AT + 1 else ranked[:FOLD_AT]
        for source, group in shown:
            worst = max(group, key=lambda f: f.severity)
            versions = dict.fromkeys(f"{f.result.details.get('installed')} -> {f.result.details.get('candidate')}" for f in group)
            names = [f.result.resource for f in group]
            listed = ", ".join(names if options.verbose or len(names) <= FOLD_AT + 1 else [*names[:FOLD_AT], f"\u2026 and {len(names) - FOLD_AT} more"])
            line = f"{_tag(worst, top)}{source}: {listed}" + (f" ({'; '.join(versions)})" if len(versions) <= 2 else "")
            console.print(_indented(visible(line), options.width, indent=8), soft_wrap=True)
        if len(shown) < len(ranked):
            console.print(_indented(f"\u2026 and {len(ranked) - len(shown)} more source packages (-v shows all)", options.width, "dim", 8),
                          soft_wrap=True)


def _check_block(console: Console, findings: list[Finding], options: RenderOptions) -> None:
    """One heading per check. A failing check keeps its severity and FAIL; a check that only passed
    (or was not applicable) is one quiet line saying what was verified, without a severity label."""
    ordered = sorted(findings, key=sort_key)
    top = ordered[0]
    check_id = top.check_id
    if top.status in (Status.PASS, Status.NOT_APPLICABLE):
        head = Text("  ")
        if top.status is Status.PASS:
            head.append("[ OK ]", style="green")
            head.append(f"  {check_id}", style="dim")
            _print_heading(console, head, verified(check_id), options.width)
        else:
            head.append("[ -- ]", style="dim")
            head.append(f"  {check_id}", style="dim")
            _print_heading(console, head, f"not judged: {top.meta.title}", options.width, "dim")
        for f in ordered:
            tag = "" if f.status is top.status else f"{QUIET_TAG[f.status]}: "
            console.print(_indented(visible(tag + _line(f)), options.width, "dim"), soft_wrap=True)
        return
    head = Text("  ")
    head.append(f"{top.severity.label.upper():<8}", style=SEVERITY_STYLE[top.severity])
    head.append(f" {top.status.value.upper():<10}", style=STATUS_STYLE[top.status])
    head.append(f" {check_id}", style="bold")
    _print_heading(console, head, top.meta.title, options.width)
    pending = [f for f in ordered if f.check_id == "HV-PATCH-001" and f.status is Status.FAIL and "archive" in f.result.details]
    grouped = {id(f) for f in pending}
    rest = [f for f in ordered if id(f) not in grouped] if pending else ordered
    shown = rest if options.verbose or len(rest) <= FOLD_AT + 1 else rest[:FOLD_AT]
    for f in shown:
        quiet = f.status in (Status.PASS, Status.NOT_APPLICABLE)
        console.print(_indented(visible(_tag(f, top) + _line(f)), options.width, "dim" if quiet else ""), soft_wrap=True)
        if f.status is Status.SUPPRESSED:
            console.print(_indented(f"accepted risk: {visible(f.suppression_reason)}", options.width, "dim", 8), soft_wrap=True)
    if len(shown) < len(rest):
        console.print(_indented(f"\u2026 and {len(rest) - len(shown)} more (-v shows all)", options.width, "dim"), soft_wrap=True)
    if pending:
        _pending_updates(console, pending, top, options)
    for fix in dict.fromkeys(f.remediation for f in ordered if f.status is Status.FAIL and f.remediation):
        console.print(_indented(f"fix: {visible(fix)}", options.width, "green"), soft_wrap=True)


def _print_heading(console: Console, head: Text, title: str, width: int, style: str = "") -> None:
    """The heading's title wrapped under itself, so a long title never breaks into the margin."""
    room = max(20, width - 1 - len(head.plain) - 2)
    lines = textwrap.wrap(title, room, break_on_hyphens=False, break_long_words=False) or [""]
    head.append(f"  {lines[0]}", style=style)
    console.print(head)
    for more in lines[1:]:
        console.print(Text(" " * (len(head.plain) - len(lines[0])) + more, style=style))


def _privilege_note(console: Console, report: ScanReport) -> None:
    """Said once, before the results: which checks could not run without root, and what they would read."""
    lacking = report.lacking_privilege()
    if not lacking:
        return
    errors = [f for f in report.findings if f.result.needs_privilege]
    paths = list(dict.fromkeys(_denied_path(f) for f in errors))
    shown = ", ".join(visible(p) for p in paths[:8]) + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")
    console.print(Text(f"Not run as root: {len(lacking)} checks ({len(errors)} results) could not read their input and are "
                       f"errors, not verdicts. As root they also read {shown}.", style="yellow"))
    console.print(Text(f"lacked privilege (run as root for these): {', '.join(lacking)}", style="yellow"))


def _denied_path(f: Finding) -> str:
    file = f.result.details.get("file")
    return file if isinstance(file, str) else f.result.resource


def render(report: ScanReport, options: RenderOptions) -> str:
    buffer = io.StringIO()
    console: Console = _Rich(buffer, options.width) if options.color else _Plain(buffer, options.width)
    meta = report.facts.meta
    if not options.quiet:
        where = "live host" if meta.root == "/" else f"root {visible(meta.root)}"
        header = Text()
        header.append(f"hyperward {__version__}", style="bold")
        header.append(f"  {visible(meta.hostname)} ({where}), profile {report.profile}, collected {visible(meta.collected_at)}")
        if meta.euid != 0:
            header.append(", not as root", style="yellow")
        console.print(header)
        _privilege_note(console, report)
        shown = [f for f in report.findings if options.verbose or f.status in SHOWN_BY_DEFAULT]
        by_category: dict[Category, list[Finding]] = {}
        for f in shown:
            by_category.setdefault(f.meta.category, []).append(f)
        for category, findings in sorted(by_category.items(), key=lambda kv: _category_rank(kv[1])):
            console.print()
            console.print(Text(category.label, style="bold underline"))
            by_check: dict[str, list[Finding]] = {}
            for f in sorted(findings, key=sort_key):
                by_check.setdefault(f.check_id, []).append(f)
            for group in by_check.values():
                _check_block(console, group, options)
        if not shown:
            console.print()
            console.print("No failures or errors." + ("" if options.verbose else " (--verbose lists passing checks)"))
        _reach_matrix(console, report, options)
        console.print()
        for warning in report.warnings:
            console.print(Text(f"warning: {visible(warning)}", style="yellow"))
    summary = summary_line(report)
    if not options.quiet:  # -q keeps it one line, for scripts; the report fits the terminal
        summary = textwrap.fill(summary, width=max(40, options.width - 1), subsequent_indent=" " * 9, break_on_hyphens=False)
    console.print(Text(summary, style="bold"), soft_wrap=True)
    return buffer.getvalue()
