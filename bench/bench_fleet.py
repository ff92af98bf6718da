"""How long `hyperward fleet ingest` and `hyperward fleet report` take over N hosts' reports.

    .venv/bin/python bench/bench_fleet.py [--hosts 1000] [--guests 100] [--backends sqlite,postgresql]

One real report: `hyperward scan --root --format json` of an offline root built like
bench_domains.py's (the hardened fixture root with GUESTS varied domain definitions). It is then
written once per host with that host's name and its own collected_at (so each is a distinct
report to the database), into one directory, and ingested by one `hyperward fleet ingest DIR`
process per backend; then `hyperward fleet report --format json` runs over them. PostgreSQL is
Debian's, initdb'd into a temporary directory and run as the `postgres` user on a private socket
(no TCP), with fsync on (the server's default).
Targets (issue 19): 1,000 hosts with 100 guests each ingested in under 60 s, the report in under 5 s.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import pathlib
import shutil
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
    start = time.perf_counter()
    proc = subprocess.run([HYPERWARD, *args], capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args[:2])} failed: {proc.stderr.strip()}")
    return elapsed


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
            # each rescan fails a different slice of one check's passing results, so trends have changes to count
            passing = [k for k, r in enumerate(results) if r["status"] == "pass"]
            for k in passing[day * 10:(day + 1) * 10]:
                results[k] = dict(results[k], status="fail")
            for i in range(args.hosts):
                document["host"] = f"hv{i:05d}.example"
                document["collected_at"] = (now - datetime.timedelta(days=args.rescans - 1 - day, seconds=i)).isoformat()
                (inbox / f"hv{i:05d}-{day}.json").write_text(json.dumps(document))
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
                report = run("fleet", "report", "--db", url, "--format", "json")
            finally:
                if stop:
                    subprocess.run(stop, capture_output=True)
                    shutil.rmtree(pg_top, ignore_errors=True)
            print(f"{backend:<10} ingest {ingest:6.1f} s ({ingest / count * 1000:.1f} ms per report; "
                  f"1,000 reports extrapolated {ingest / count * 1000:.1f} s, target {TARGET_INGEST_S:.0f} s)  "
                  f"re-ingest (all unchanged) {again:5.1f} s  report {report:5.2f} s (target {TARGET_REPORT_S:.0f} s)")


if __name__ == "__main__":
    main()
