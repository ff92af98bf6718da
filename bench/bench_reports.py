"""What rendering the report formats adds to a scan of 1,000 guests (issue 14: every format together
under 0.5 s).

    .venv/bin/python bench/bench_reports.py [--runs 5] [--domains 1000]

Builds the same 1,000-domain offline root as bench_domains.py, collects and checks it once in
process, then renders each format `--runs` times and reports the median render time and the output
size. The total is the sum of the medians of the formats issue 14 adds (SARIF, JUnit, OCSF,
Prometheus, and HTML when this build has it); JSON and text are shown for comparison. Also times
one `hyperward scan -o ... -o ...` writing all of them against the same scan writing JSON only, as
the whole-process view of the same cost.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
from bench_domains import build_root, templates  # noqa: E402
from bench_scan import HYPERWARD  # noqa: E402

TARGET_S = 0.5
NEW = ["sarif", "junit", "ocsf", "prometheus", "html"]
SUFFIX = {"json": "json", "sarif": "sarif", "junit": "xml", "ocsf": "ocsf.json", "prometheus": "prom", "html": "html", "text": "txt"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--domains", type=int, default=1000)
    args = parser.parse_args()
    from hyperward.collect import collect_host
    from hyperward.engine import registry, run_checks
    from hyperward.report import RenderOptions, get_reporter

    formats = [f for f in ("json", "text", *NEW) if f != "html" or importlib.util.find_spec("hyperward.report.html")]
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-") as tmp:
        base = pathlib.Path(tmp)
        root = build_root(base, args.domains, templates())
        facts = collect_host(str(root), baseline=str(base / "nb.json"), history_path=str(base / "h.sqlite"))
        report = run_checks(facts, registry(), "multi-tenant")
        print(f"{args.domains} domains: {len(report.findings)} results, {len(report.facts.guests)} guests; {args.runs} renders per format")
        print(f"{'format':>11} {'median s':>9} {'min s':>7} {'CPU s':>7} {'MB':>7}")
        medians: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for fmt in formats:
            reporter = get_reporter(fmt)
            times, cpus, size = [], [], 0
            for _ in range(args.runs):
                started, started_cpu = time.perf_counter(), time.process_time()
                text = reporter.render(report, RenderOptions())
                times.append(time.perf_counter() - started)
                cpus.append(time.process_time() - started_cpu)
                size = len(text.encode())
            medians[fmt], cpu[fmt] = statistics.median(times), statistics.median(cpus)
            print(f"{fmt:>11} {medians[fmt]:>9.3f} {min(times):>7.3f} {cpu[fmt]:>7.3f} {size / 1e6:>7.2f}")
        added = sum(medians[f] for f in NEW if f in medians)
        added_cpu = sum(cpu[f] for f in NEW if f in cpu)
        # CPU seconds of this process: on a shared machine, wall time also counts other processes' turns
        print(f"added by {', '.join(f for f in NEW if f in medians)}: {added:.3f} s wall, {added_cpu:.3f} s CPU "
              f"(target < {TARGET_S} s: {'met' if added_cpu < TARGET_S else 'MISSED'} by CPU, "
              f"{'met' if added < TARGET_S else 'MISSED'} by wall time); "
              f"{added_cpu / cpu['json']:.2f}x the JSON report's CPU time")

        def scan(*outputs: str) -> float:
            cmd = [HYPERWARD, "scan", "--root", str(root)]
            for fmt in outputs:
                cmd += ["-o", str(base / f"out.{SUFFIX[fmt]}")]
            started = time.perf_counter()
            subprocess.run(cmd, check=False, capture_output=True, timeout=300)
            return time.perf_counter() - started

        only_json = statistics.median(scan("json") for _ in range(3))
        every = statistics.median(scan("json", *[f for f in NEW if f in medians]) for _ in range(3))
        print(f"whole scan, -o json only: {only_json:.3f} s; -o every format: {every:.3f} s; difference {every - only_json:.3f} s")


if __name__ == "__main__":
    main()
