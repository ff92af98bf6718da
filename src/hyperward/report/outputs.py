"""Writing several reports of one scan: `scan -o r.json -o r.sarif -o r.ocsf.json -o r.html`.

Every format of a 1,000-guest report together is about 0.35 s of one core (bench/bench_reports.py),
most of it in formats that share nothing but the finished report. When the host has a second core
the files are split into two groups of about equal cost and a forked child renders and writes one
of them: the child inherits the report as it is in memory (frozen for the collector, so its pages
stay shared), and each file is still written by safefile, atomically. Fork is used only where it is
safe: the process has no thread besides the main one (a thread holding a lock at fork would leave
that lock held forever in the child: the libvirt API's worker thread can outlive a call that timed
out), and there are two files at least. Otherwise, and always for standard output, the reports are
rendered here one after another, as before."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import RenderOptions, get_reporter

if TYPE_CHECKING:
    from ..engine import ScanReport

#: relative cost of each format at 1,000 guests (bench_reports.py medians, ms), to balance the groups
COST = {"ocsf": 100, "json": 65, "sarif": 55, "html": 40, "junit": 27, "text": 15, "prometheus": 6}

Job = tuple[str, RenderOptions, str | None]
Write = Callable[[str, str | None], None]


def _only_thread() -> bool:
    if threading.active_count() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1  # threads a C library started, too
    except OSError:
        return False


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def split(jobs: Sequence[Job]) -> tuple[list[Job], list[Job]]:
    """(for the child, for this process): the costliest first, each to the lighter group; standard
    output always stays here."""
    child: list[Job] = []
    here: list[Job] = [j for j in jobs if j[2] is None]
    loads = [0, sum(COST.get(j[0], 50) for j in here)]
    for job in sorted((j for j in jobs if j[2] is not None), key=lambda j: -COST.get(j[0], 50)):
        side = 0 if loads[0] <= loads[1] else 1
        (child if side == 0 else here).append(job)
        loads[side] += COST.get(job[0], 50)
    return child, here


def _render(report: ScanReport, jobs: Sequence[Job], write: Write) -> None:
    for name, options, output in jobs:
        write(get_reporter(name).render(report, options), output)


def write_all(report: ScanReport, jobs: Sequence[Job], write: Write, *, parallel: bool = True) -> bool:
    """Render and write every job; whether a child wrote some of them. A job that fails ends the
    run as it would alone (write's SystemExit, with its message already on stderr): in the child,
    the parent exits with the child's code once its own files are written."""
    files = [j for j in jobs if j[2] is not None]
    if not (parallel and len(files) >= 2 and _cores() >= 2 and _only_thread()):
        _render(report, jobs, write)
        return False
    theirs, mine = split(jobs)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is its files, which the tests read
        code = 0
        try:
            _render(report, theirs, write)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:  # noqa: BLE001 - the child must end here whatever happened
            from ..textsafe import visible

            print(f"hyperward: error: rendering a report failed: {visible(repr(exc))}", file=sys.stderr)
            code = 2
        finally:
            sys.stderr.flush()
        os._exit(code)
    try:
        _render(report, mine, write)
    finally:
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(code if code > 0 else 2)
    return True
