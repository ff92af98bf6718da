"""Advisory database: import of 100,000 OSV advisories, and matching 2,000 installed packages.

    .venv/bin/python bench/bench_vulndb.py [--advisories 100000] [--packages 2000] [--runs 7]

Generates an OSV export (a zip, as osv.dev publishes Debian/all.zip) of DEBIAN-CVE-style
advisories over 8,000 source packages with a long tail, as in Debian's data (a few sources such
as linux carry thousands of CVEs, most carry a handful), each with one to three affected ranges
(Debian:11, 12, 13), a quarter still open, some with CVSS vectors. 2,000 installed binaries come
from 800 of those sources (this machine's own source names first). Times `hyperward db import` as
a whole process, then matching once the database is open; `--worst-case` instead spreads every
advisory over the installed sources only (every package hit ~20 times).
Targets (issue #5): import under 30 s; matching under 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import sys
import tempfile
import time
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_scan import HYPERWARD, measure  # noqa: E402

from hyperward import vulndb  # noqa: E402
from hyperward.facts import Package  # noqa: E402
from hyperward.parsers.config_files import parse_dpkg_packages  # noqa: E402

IMPORT_TARGET_S, MATCH_TARGET_S = 30.0, 0.3
VECTORS = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
           "CVSS:3.1/AV:A/AC:H/PR:N/UI:R/S:C/C:L/I:L/A:N"]


def source_names(count: int) -> list[str]:
    try:
        own = sorted({p.source for p in parse_dpkg_packages(open("/var/lib/dpkg/status").read())})
    except OSError:
        own = []
    names = own[:count]
    names += [f"libexample{i}" for i in range(count - len(names))]
    return names


def make_export(path: pathlib.Path, advisories: int, sources: list[str], rng: random.Random, worst_case: bool) -> None:
    cumulative, total = [], 0.0
    for rank in range(len(sources)):
        total += 1.0 / (rank + 1) ** 0.9
        cumulative.append(total)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(advisories):
            package = sources[i % len(sources)] if worst_case else rng.choices(sources, cum_weights=cumulative)[0]
            affected = []
            for release in rng.sample(["11", "12", "13"], rng.randint(1, 3)):
                events: list[dict[str, str]] = [{"introduced": "0"}]
                if rng.random() > 0.25:
                    events.append({"fixed": f"{rng.randint(1, 9)}.{rng.randint(0, 30)}-{rng.randint(1, 5)}+deb{release}u{rng.randint(1, 9)}"})
                affected.append({"package": {"ecosystem": f"Debian:{release}", "name": package,
                                             "purl": f"pkg:deb/debian/{package}?arch=source"},
                                 "ranges": [{"type": "ECOSYSTEM", "events": events}],
                                 "ecosystem_specific": {"urgency": rng.choice(["low", "medium", "high", "not yet assigned"])}})
            doc = {"schema_version": "1.6.0", "id": f"DEBIAN-CVE-{2000 + i // 10000}-{i % 10000:05d}",
                   "modified": "2026-11-01T00:00:00Z", "upstream": [f"CVE-{2000 + i // 10000}-{i % 10000:05d}"],
                   "details": "Generated advisory for benchmarking hyperward's advisory database.", "affected": affected}
            if rng.random() < 0.3:
                doc["severity"] = [{"type": "CVSS_V3", "score": rng.choice(VECTORS)}]
            archive.writestr(f"{doc['id']}.json", json.dumps(doc))


def installed(sources: list[str], count: int, rng: random.Random) -> list[Package]:
    out = []
    for i in range(count):
        source = sources[i % len(sources)]
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}-{rng.randint(1, 5)}+deb12u{rng.randint(1, 9)}"
        out.append(Package(f"{source}-bin{i}", "amd64", version, source, version, "deb"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advisories", type=int, default=100_000)
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--worst-case", action="store_true")
    args = parser.parse_args()
    rng = random.Random(5)
    installed_sources = source_names(800 if not args.worst_case else args.packages)
    sources = installed_sources if args.worst_case else installed_sources + [f"libother{i}" for i in range(8000 - len(installed_sources))]
    if not args.worst_case:
        rng.shuffle(sources)
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-") as tmp:
        export = pathlib.Path(tmp) / "all.zip"
        started = time.perf_counter()
        make_export(export, args.advisories, sources, rng, args.worst_case)
        print(f"generated {args.advisories} advisories ({export.stat().st_size / 1e6:.1f} MB zip) in {time.perf_counter() - started:.1f} s")
        db = pathlib.Path(tmp) / "db.sqlite"
        wall, peak, code = measure([HYPERWARD, "db", "import", str(export), "--db", str(db)], 600)
        print(f"hyperward db import: {wall:.1f} s, peak {peak:.0f} MB, exit {code}, database {db.stat().st_size / 1e6:.0f} MB")
        packages = installed(installed_sources, args.packages, rng)
        conn = vulndb.open_read_only(str(db))
        times, matches = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            facts = vulndb.match(conn, str(db), "debian", "12", packages, [])
            times.append(time.perf_counter() - started)
            matches = len(facts.matches)
        conn.close()
    median = statistics.median(times)
    print(f"match {len(packages)} installed packages ({len(set(p.source for p in packages))} sources): median {median:.3f} s (min {min(times):.3f}, max {max(times):.3f}), {matches} matches")
    print(f"target: import < {IMPORT_TARGET_S:.0f} s: {'met' if wall < IMPORT_TARGET_S else 'MISSED'}; "
          f"match < {MATCH_TARGET_S} s: {'met' if median < MATCH_TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
