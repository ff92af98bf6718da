"""How long `hyperward fleet ingest` and `hyperward fleet report` take over N hosts' reports.

    .venv/bin/python bench/bench_fleet.py [--hosts 1000] [--guests 100] [--backends sqlite,postgresql]
                                          [--rescans 7] [--report-runs 5]

One real report: `hyperward scan --root --format json` of an offline root built like
bench_domains.py's (the hardened fixture root with GUESTS varied domain definitions). It is then
written once per host with that host's name and its own collected_at (so each is a distinct
report to the database), into one directory, and ingested by one `hyperward fleet ingest DIR`
process per backend; then `hyperward fleet report --format json` runs over them. PostgreSQL is
Debian's, initdb'd into a temporary directory and run as the `postgres` user on a private socket
(no TCP), with fsync on (the server's default).
`--rescans 7` writes a week of daily reports per host (each day ten more results fail and three
that failed pass), so the report's trends compare 6 consecutive pairs per host.
Targets (issue 19): 1,000 hosts with 100 guests each ingested in under 60 s, the report in under 5 s
(the median of --report-runs runs).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_domains import build_root, templates  # noqa: E402
from bench_scan import HYPERWARD  # noqa: E402

TARGET_INGEST_S, TARGET_REPORT_S = 60.0, 5.0
RUN_AS_PG = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]


def run(*args: str) -> float:
    return run_cpu(*args)[0]


def run_cpu(*args: str) -> tuple[float, float]:
    """Wall seconds and the process's own CPU seconds (user + sys): on a machine shared with other
    work the two differ by how long the process waited for a core."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([HYPERWARD, *args], capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def start_postgres(top: str) -> tuple[str, list[str]]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bins:
        raise SystemExit("no /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    os.chown(top, *_pg_ids())
    data, sock = os.path.join(top, "data"), os.path.join(top, "sock")
    subprocess.run([*RUN_AS_PG, "mkdir", "-m", "0700", data, sock], check=True)
    subprocess.run([*RUN_AS_PG, f"{bins[-1]}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run([*RUN_AS_PG, f"{bins[-1]}/pg_ctl", "-D", data, "-o", f"-c listen_addresses='' -c unix_socket_directories={sock}",
                    "-l", os.path.join(top, "log"), "-w", "start"], check=True, capture_output=True)
    stop = [*RUN_AS_PG, f"{bins[-1]}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]
    return f"postgresql://postgres@/postgres?host={sock}", stop


def _pg_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rescans", type=int, default=1, help="reports per host, a day apart (trends compare consecutive ones)")
    parser.add_argument("--report-runs", type=int, default=5, help="fleet report runs per backend (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hw-bench-fleet-", dir="/tmp") as tmp:
        base = pathlib.Path(tmp)
        root = build_root(base, args.guests, templates())
        proc = subprocess.run([HYPERWARD, "scan", "--root", str(root), "--format", "json"], capture_output=True, text=True, timeout=600)
        document = json.loads(proc.stdout)
        inbox = base / "reports"
        inbox.mkdir()
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        results = document["results"]
        for day in range(args.rescans):
            # each rescan fails ten more passing results and passes three failing ones, so trends
            # have new and fixed findings to count
            if day:
                passing = [k for k, r in enumerate(results) if r["status"] == "pass"]
                failing = [k for k, r in enumerate(results) if r["status"] == "fail"]
                for k in passing[:10]:
                    results[k] = dict(results[k], status="fail")
                for k in failing[-3:]:
                    results[k] = dict(results[k], status="pass")
            # one serialisation a day, the host and time put in by text (json.dumps of 1.2 MB per
            # file would take minutes for 7,000 files)
            document["host"], document["collected_at"] = "@@HOST@@", "@@WHEN@@"
            text = json.dumps(document)
            for i in range(args.hosts):
                when = (now - datetime.timedelta(days=args.rescans - 1 - day, seconds=i)).isoformat()
                (inbox / f"hv{i:05d}-{day}.json").write_text(text.replace("@@HOST@@", f"hv{i:05d}.example", 1)
                                                              .replace("@@WHEN@@", when, 1))
        count = args.hosts * args.rescans
        size = sum(p.stat().st_size for p in inbox.iterdir()) / count
        print(f"{count} reports ({args.hosts} hosts x {args.rescans}), {len(document['results'])} results and "
              f"{len(document['guests'])} guests each, {size / 1024:.0f} KiB each")
        for backend in args.backends.split(","):
            stop: list[str] | None = None
            if backend == "sqlite":
                url = str(base / "state" / "fleet.sqlite")
            else:
                pg_top = tempfile.mkdtemp(prefix="hw-pg-", dir="/tmp")
                url, stop = start_postgres(pg_top)
                name = "bench_" + uuid.uuid4().hex[:8]
                subprocess.run([*RUN_AS_PG, os.path.join(os.path.dirname(stop[4]), "createdb"), "-h", url.split("host=")[1], name],
                               check=True)
                url = url.replace("/postgres?", f"/{name}?")
            try:
                ingest = run("fleet", "ingest", "--db", url, str(inbox))
                again = run("fleet", "ingest", "--db", url, str(inbox))
                timed = [run_cpu("fleet", "report", "--db", url, "--format", "json") for _ in range(args.report_runs)]
                times, cpu = [t for t, _ in timed], [c for _, c in timed]
                doc = json.loads(subprocess.run([HYPERWARD, "fleet", "report", "--db", url, "--format", "json"],
                                                capture_output=True, text=True, timeout=3600).stdout)
            finally:
                if stop:
                    subprocess.run(stop, capture_output=True)
                    shutil.rmtree(pg_top, ignore_errors=True)
            report = statistics.median(times)
            pairs = sum(t["reports"] for t in doc["trends"])
            print(f"{backend:<10} ingest {ingest:6.1f} s ({ingest / count * 1000:.1f} ms per report; "
                  f"1,000 reports extrapolated {ingest / count * 1000:.1f} s, target {TARGET_INGEST_S:.0f} s)  "
                  f"re-ingest (all unchanged) {again:5.1f} s")
            print(f"{'':<10} fleet report median {report:5.2f} s over {len(times)} runs (min {min(times):.2f}, max {max(times):.2f}; "
                  f"target {TARGET_REPORT_S:.0f} s), its own CPU median {statistics.median(cpu):.2f} s; load {os.getloadavg()[0]:.1f}; "
                  f"trends: {pairs} pairs, "
                  f"{sum(t['new'] for t in doc['trends'])} new, {sum(t['fixed'] for t in doc['trends'])} fixed")


if __name__ == "__main__":
    main()
