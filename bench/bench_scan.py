"""Wall time and peak memory of `hyperward scan` on this live host, against Lynis on the same machine.

    .venv/bin/python bench/bench_scan.py [--runs 21] [--lynis-runs 3] [--no-lynis]

Each run is a fresh process (interpreter start included), its output thrown away; peak memory is
the child's maximum resident set size (wait4 rusage). Targets: median <= 0.25 s and at least 150
times faster than Lynis in the same run (issue #12), peak < 60 MB (issue #2). Lynis (`lynis audit
system --quick`, Debian package lynis) is the anchor users compare against.

hyperward's bytecode is compiled first (`--no-compile` skips it): pip compiles it at install, but an
editable checkout run with PYTHONDONTWRITEBYTECODE=1 would recompile every module on every run.
Whether a libvirt daemon was running is printed: with one, the scan also asks its API.
"""

from __future__ import annotations

import argparse
import compileall
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
HYPERWARD = shutil.which("hyperward", path=str(pathlib.Path(sys.executable).parent)) or "hyperward"
HYPERWARD_PYTHON = sys.executable
TARGET_S, TARGET_MB, TARGET_RATIO = 0.25, 60.0, 150.0


def measure(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run."""
    with open(os.devnull, "wb") as null:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=null, stderr=null, stdin=subprocess.DEVNULL, env=env)
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


def series(name: str, cmd: list[str], runs: int, timeout: float, env: dict[str, str] | None = None) -> dict:
    return interleaved([(name, cmd, env)], runs, timeout)[0]


def interleaved(commands: list[tuple[str, list[str], dict[str, str] | None]], runs: int, timeout: float) -> list[dict]:
    """Each command once per round, `runs` rounds: a machine that gets busier halfway through
    slows every command alike instead of the one that happened to run then."""
    walls: list[list[float]] = [[] for _ in commands]
    peaks: list[list[float]] = [[] for _ in commands]
    codes: list[set[int]] = [set() for _ in commands]
    for _ in range(runs):
        for i, (_name, cmd, env) in enumerate(commands):
            wall, peak, code = measure(cmd, timeout, env)
            walls[i].append(wall)
            peaks[i].append(peak)
            codes[i].add(code)
    return [{"name": name, "runs": runs, "median": statistics.median(walls[i]), "min": min(walls[i]), "max": max(walls[i]),
             "peak_mb": max(peaks[i]), "exit": sorted(codes[i])} for i, (name, _cmd, _env) in enumerate(commands)]


def scan_roots(roots: list[tuple[str, pathlib.Path]], runs: int, env: dict[str, str], width: int = 15) -> None:
    """Whole `hyperward scan --root` processes per root and format (the platform benches' view of
    what a user waits for), one line each with median, min and max."""
    for label, root in roots:
        for fmt in ("json", "text"):
            row = series(label, [HYPERWARD, "scan", "--root", str(root), "--format", fmt], runs, 120, env)
            assert set(row["exit"]) <= {0, 1}, f"hyperward scan --root {root} exited {row['exit']}"
            print(f"{label:{width}s} hyperward scan --root --format {fmt:4s}: median {row['median']:.3f} s "
                  f"(min {row['min']:.3f}, max {row['max']:.3f}, {runs} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--lynis-runs", type=int, default=3)
    parser.add_argument("--no-lynis", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="do not compile hyperward's bytecode first")
    parser.add_argument("--against", metavar="CHECKOUT", help="also time another checkout's code (PYTHONPATH=CHECKOUT/src), interleaved")
    args = parser.parse_args()
    if not args.no_compile:
        found = subprocess.run([HYPERWARD_PYTHON, "-c", "import hyperward, os; print(os.path.dirname(hyperward.__file__))"],
                               capture_output=True, text=True, timeout=60).stdout.strip()
        if found:
            compileall.compile_dir(found, quiet=1)
    daemons = [d for d in ("libvirtd", "virtqemud") if subprocess.run(["pgrep", "-x", d], capture_output=True, timeout=10).returncode == 0]
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), kernel {platform.release()}, load {os.getloadavg()[0]:.2f}; "
          f"libvirt daemon: {', '.join(daemons) + ' running' if daemons else 'not running'}")

    commands: list[tuple[str, list[str], dict[str, str] | None]] = [
        ("hyperward scan (text)", [HYPERWARD, "scan"], None),
        ("hyperward scan --format json", [HYPERWARD, "scan", "--format", "json"], None),
    ]
    if args.against:
        other = {**os.environ, "PYTHONPATH": os.path.join(os.path.abspath(args.against), "src")}
        if not args.no_compile:
            compileall.compile_dir(other["PYTHONPATH"], quiet=1)
        commands.append((f"  the same, {os.path.basename(os.path.abspath(args.against))}", [HYPERWARD, "scan"], other))
    rows = interleaved(commands, args.runs, 60)
    lynis = shutil.which("lynis")
    if not args.no_lynis and lynis and args.lynis_runs > 0:
        rows.append(series("lynis audit system --quick", [lynis, "audit", "system", "--quick", "--no-colors"], args.lynis_runs, 600))
    elif not args.no_lynis and not lynis:
        print("lynis not installed (apt-get install lynis): no comparison", file=sys.stderr)

    print(f"{'command':<32} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MB':>8}  exit")
    for r in rows:
        print(f"{r['name']:<32} {r['runs']:>4} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f} {r['peak_mb']:>8.1f}  {r['exit']}")
    scan = rows[0]
    print()
    print(f"target: median <= {TARGET_S} s: {'met' if scan['median'] <= TARGET_S else 'MISSED'} ({scan['median']:.3f} s)")
    print(f"target: peak < {TARGET_MB:.0f} MB: {'met' if scan['peak_mb'] < TARGET_MB else 'MISSED'} ({scan['peak_mb']:.1f} MB)")
    if args.against:
        print(f"against {args.against}: {rows[2]['median']:.3f} s -> {scan['median']:.3f} s ({rows[2]['median'] / scan['median']:.2f}x)")
    if rows[-1]["name"].startswith("lynis"):
        ratio = rows[-1]["median"] / scan["median"]
        print(f"ratio: lynis median / hyperward median = {ratio:.0f}x (target >= {TARGET_RATIO:.0f}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'})")


if __name__ == "__main__":
    main()
