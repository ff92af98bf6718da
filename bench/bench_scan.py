"""Wall time and peak memory of `hyperward scan` on this live host, against Lynis on the same machine.

    .venv/bin/python bench/bench_scan.py [--runs 21] [--lynis-runs 3] [--no-lynis]

Each run is a fresh process (interpreter start included), its output thrown away; peak memory is
the child's maximum resident set size (wait4 rusage). Targets (issue #2): median < 0.5 s, peak < 60 MB.
Lynis (`lynis audit system --quick`, Debian package lynis) is the anchor users compare against.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
HYPERWARD = shutil.which("hyperward", path=str(pathlib.Path(sys.executable).parent)) or "hyperward"
TARGET_S, TARGET_MB = 0.5, 60.0


def measure(cmd: list[str], timeout: float) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run."""
    with open(os.devnull, "wb") as null:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=null, stdin=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024.0, os.waitstatus_to_exitcode(status)


def series(name: str, cmd: list[str], runs: int, timeout: float) -> dict:
    walls, peaks, codes = [], [], set()
    for _ in range(runs):
        wall, peak, code = measure(cmd, timeout)
        walls.append(wall)
        peaks.append(peak)
        codes.add(code)
    return {"name": name, "runs": runs, "median": statistics.median(walls), "min": min(walls), "max": max(walls),
            "peak_mb": max(peaks), "exit": sorted(codes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--lynis-runs", type=int, default=3)
    parser.add_argument("--no-lynis", action="store_true")
    args = parser.parse_args()

    rows = [
        series("hyperward scan (text)", [HYPERWARD, "scan"], args.runs, 60),
        series("hyperward scan --format json", [HYPERWARD, "scan", "--format", "json"], args.runs, 60),
    ]
    lynis = shutil.which("lynis")
    if not args.no_lynis and lynis:
        rows.append(series("lynis audit system --quick", [lynis, "audit", "system", "--quick", "--no-colors"], args.lynis_runs, 600))
    elif not args.no_lynis:
        print("lynis not installed (apt-get install lynis): no comparison", file=sys.stderr)

    print(f"{'command':<32} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MB':>8}  exit")
    for r in rows:
        print(f"{r['name']:<32} {r['runs']:>4} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f} {r['peak_mb']:>8.1f}  {r['exit']}")
    scan = rows[0]
    print()
    print(f"target: median < {TARGET_S} s: {'met' if scan['median'] < TARGET_S else 'MISSED'} ({scan['median']:.3f} s)")
    print(f"target: peak < {TARGET_MB:.0f} MB: {'met' if scan['peak_mb'] < TARGET_MB else 'MISSED'} ({scan['peak_mb']:.1f} MB)")
    if len(rows) > 2:
        print(f"ratio: lynis median / hyperward median = {rows[2]['median'] / scan['median']:.0f}x")


if __name__ == "__main__":
    main()
