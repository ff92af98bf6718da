"""How `hyperward scan` grows with the number of defined domains: 10, 100, 1,000 (and more).

    .venv/bin/python bench/bench_domains.py [--runs 7] [--sizes 10,100,1000]

For each size it builds an offline root from the committed `hardened` fixture root and writes that
many domain definitions into /etc/libvirt/qemu: realistic and varied, drawn round-robin from the
fixture guests (hardened, weak, legacy) and from libvirt 9.0.0's own x86 test domains, each with a
unique name and UUID; a third of them also get a live status file in /run/libvirt/qemu (running).
Each run is a fresh `hyperward scan --root` process; peak memory is its maximum RSS (wait4).
Targets (issue #3): 1,000 domains in a median under 1.5 s and under 150 MB; growth linear.
"""

from __future__ import annotations

import argparse
import pathlib
import re
import shutil
import sys
import tarfile
import tempfile
import uuid

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests/fixtures"))
from bench_scan import HYPERWARD, series  # noqa: E402
from layout import apply_layout  # noqa: E402

TARGET_S, TARGET_MB = 1.5, 150.0
TESTDATA = REPO / "tests/fixtures/libvirt-testdata/libvirt-9.0.0-testdata.tar.xz"


def templates() -> list[str]:
    roots = REPO / "tests/fixtures/roots"
    out = [
        (roots / "hardened/etc/libvirt/qemu/hardened-vm.xml").read_text(),
        (roots / "weak/etc/libvirt/qemu/weak-vm.xml").read_text(),
        (roots / "weak/etc/libvirt/qemu/legacy-vm.xml").read_text(),
    ]
    with tarfile.open(TESTDATA) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.startswith("qemuxml2xmloutdata/") and "x86_64" in member.name:
                text = archive.extractfile(member).read().decode()  # type: ignore[union-attr]
                if "<name>" in text and "<uuid>" in text:
                    out.append(text)
    return out


def build_root(base: pathlib.Path, count: int, pool: list[str]) -> pathlib.Path:
    root = base / f"root-{count}"
    shutil.copytree(REPO / "tests/fixtures/roots/hardened", root, symlinks=True)
    apply_layout(root, "hardened")
    qemu = root / "etc/libvirt/qemu"
    for path in qemu.glob("*.xml"):
        path.unlink()
    for path in (root / "run/libvirt/qemu").glob("*.xml"):
        path.unlink()
    for i in range(count):
        name = f"guest-{i:05d}"
        ident = str(uuid.UUID(int=i + 1, version=4))
        text = pool[i % len(pool)]
        text = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", text, count=1)
        text = re.sub(r"<uuid>[^<]*</uuid>", f"<uuid>{ident}</uuid>", text, count=1)
        (qemu / f"{name}.xml").write_text(text)
        if i % 3 == 0:
            (root / f"run/libvirt/qemu/{name}.xml").write_text(f"<domstatus state='running' reason='booted' pid='{100000 + i}'>\n{text}</domstatus>\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="10,100,1000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pool = templates()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-") as tmp:
        for count in sizes:
            root = build_root(pathlib.Path(tmp), count, pool)
            for fmt in ("json", "text"):
                row = series(f"{count} domains, {fmt}", [HYPERWARD, "scan", "--root", str(root), "--format", fmt], args.runs, 120)
                row["count"], row["fmt"] = count, fmt
                rows.append(row)
    print(f"{len(pool)} distinct domain templates; {args.runs} runs per row")
    print(f"{'domains':>8} {'format':>6} {'median s':>9} {'min s':>7} {'max s':>7} {'peak MB':>8} {'ms/domain*':>11}")
    base = {r["fmt"]: r for r in rows if r["count"] == sizes[0]}
    for r in rows:
        extra = r["count"] - sizes[0]
        per = (r["median"] - base[r["fmt"]]["median"]) / extra * 1000 if extra else float("nan")
        print(f"{r['count']:>8} {r['fmt']:>6} {r['median']:>9.3f} {r['min']:>7.3f} {r['max']:>7.3f} {r['peak_mb']:>8.1f} {per:>11.3f}")
    print(f"* extra time per domain beyond the {sizes[0]}-domain run: constant when growth is linear")
    big = [r for r in rows if r["count"] == max(sizes)]
    for r in big:
        print(f"target ({r['count']} domains, {r['fmt']}): median < {TARGET_S} s: {'met' if r['median'] < TARGET_S else 'MISSED'}; "
              f"peak < {TARGET_MB:.0f} MB: {'met' if r['peak_mb'] < TARGET_MB else 'MISSED'}")


if __name__ == "__main__":
    main()
