"""What rendering the reports adds to a scan of 1,000 guests, and how big each report is.

    .venv/bin/python bench/bench_reports.py [--domains 1000] [--runs 7]

Builds bench_domains.py's offline root (the `hardened` fixture with that many varied domain
definitions), collects and checks it once in this process, then renders each registered format
`--runs` times (each from a fresh copy of the report, so nothing is shared between runs) and prints
the median and minimum render time, the median CPU time and the size of the output; then renders
every format back to back from one report in one process (the formats share the
report's view: locations, fingerprints, check help and counts computed once). Like `hyperward scan`,
it calls gc.freeze() after the scan (--no-freeze renders without).
Targets (issue 14): every format together under 0.5 s added to the scan; the HTML under 5 MB. The last
line times what `scan -o ...` does: report/outputs.write_all, which forks a child onto a second core
for about half of the files (one process when there is one core or a second thread).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import pathlib
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from bench_domains import build_root, templates  # noqa: E402

TARGET_TOTAL_S, TARGET_HTML_MB = 0.5, 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-freeze", action="store_true", help="render without gc.freeze() after the scan (the CLI freezes)")
    parser.add_argument("--browser", action="store_true", help="also open the HTML in headless Chromium: load and filter times")
    args = parser.parse_args()

    from hyperward.collect import collect_host
    from hyperward.engine import registry, run_checks
    from hyperward.report import FORMATS, RenderOptions, get_reporter

    with tempfile.TemporaryDirectory(prefix="hyperward-bench-") as tmp:
        root = build_root(pathlib.Path(tmp), args.domains, templates())
        started = time.perf_counter()
        report = run_checks(collect_host(str(root)), registry())
        scan_s = time.perf_counter() - started
    if not args.no_freeze:
        gc.freeze()  # as `hyperward scan` does after the checks, before it renders
    print(f"{args.domains} domains: {len(report.derived().guests)} guests, {len(report.findings)} results, "
          f"{len(report.derived().reachability)} reachability rows; collect + checks {scan_s:.3f} s (in process)")
    print(f"{'format':>8} {'median s':>9} {'min s':>7} {'cpu s':>7} {'size MB':>8}")
    total = total_cpu = 0.0
    html_text = ""
    sizes: dict[str, float] = {}
    for name in FORMATS:
        reporter = get_reporter(name)
        times, cpu = [], []
        out = ""
        for _ in range(args.runs):
            fresh = dataclasses.replace(report)  # no view shared with an earlier run: each run starts cold
            t0, c0 = time.perf_counter(), time.process_time()
            out = reporter.render(fresh, RenderOptions(width=100))
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        size = len(out.encode()) / 1e6
        sizes[name] = size
        if name == "html":
            html_text = out
        median = statistics.median(times)
        total += median
        total_cpu += statistics.median(cpu)
        print(f"{name:>8} {median:>9.3f} {min(times):>7.3f} {statistics.median(cpu):>7.3f} {size:>8.2f}")
    print(f"sum of medians: {total:.3f} s ({total_cpu:.3f} s CPU)")
    # every format from one report, one after another in this process
    together, together_cpu = [], []
    for _ in range(args.runs):
        fresh = dataclasses.replace(report)
        t0, c0 = time.perf_counter(), time.process_time()
        for name in FORMATS:
            get_reporter(name).render(fresh, RenderOptions(width=100))
        together.append(time.perf_counter() - t0)
        together_cpu.append(time.process_time() - c0)
    both = statistics.median(together)
    print(f"all formats from one report: median {both:.3f} s, min {min(together):.3f} s, CPU {statistics.median(together_cpu):.3f} s "
          f"(target < {TARGET_TOTAL_S} s: {'met' if both < TARGET_TOTAL_S else 'MISSED'})")
    # what `scan -o r.txt -o r.json ...` does since report/outputs.py: a forked child renders and
    # writes about half of the files on a second core (files written to a temporary directory)
    from hyperward.report.outputs import _cores, write_all

    suffix = {"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "html": "html", "ocsf": "ocsf.json", "prometheus": "prom"}
    written, forked = [], False
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-out-") as out:
        def write(text: str, output: str | None) -> None:
            with open(output or os.devnull, "w") as handle:
                handle.write(text)

        for _ in range(args.runs):
            fresh = dataclasses.replace(report)
            jobs = [(name, RenderOptions(width=100), f"{out}/r.{suffix.get(name, name)}") for name in FORMATS]
            t0 = time.perf_counter()
            forked = write_all(fresh, jobs, write)
            written.append(time.perf_counter() - t0)
    wall = statistics.median(written)
    print(f"scan -o for every format ({'forked onto a second core' if forked else 'one process'}, {_cores()} cores): "
          f"median {wall:.3f} s, min {min(written):.3f} s, files written "
          f"(target < {TARGET_TOTAL_S} s: {'met' if wall < TARGET_TOTAL_S else 'MISSED'})")
    if "html" in sizes:
        print(f"html: {sizes['html']:.2f} MB (target < {TARGET_HTML_MB} MB: {'met' if sizes['html'] < TARGET_HTML_MB else 'MISSED'})")
    if args.browser and "html" in sizes:
        browse(html_text)


def browse(text: str) -> None:
    """Chromium's time to load the page and to filter its table once (typing a guest's name)."""
    sys.path.insert(0, str(HERE.parent / "tests/fixtures"))
    from cdp_pipe import Browser

    with tempfile.TemporaryDirectory(prefix="hyperward-bench-html-") as tmp:
        page = pathlib.Path(tmp) / "report.html"
        page.write_text(text)
        with Browser() as b:
            t0 = time.perf_counter()
            b.call("Page.navigate", url=page.as_uri())
            b.wait_for("Page.loadEventFired", timeout=120)
            loaded = time.perf_counter() - t0
            rows = b.evaluate("document.querySelectorAll('#findings tbody tr').length")
            took = b.evaluate("(function () { var q = document.getElementById('f-text'); var t = performance.now();"
                              " q.value = 'guest-00500'; q.dispatchEvent(new Event('input'));"
                              " return [performance.now() - t, Number(document.getElementById('f-shown').textContent)]; }())")
            b.settle(0.3)
            print(f"chromium: {rows} rows loaded in {loaded:.2f} s; filtering by a guest's name took {took[0]:.0f} ms "
                  f"({took[1]} rows shown); console problems: {b.problems() or 'none'}")


if __name__ == "__main__":
    main()
