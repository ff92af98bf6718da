"""A VirtualBox home with 500 machines: median time of detect + collect + guests + every
VirtualBox judge in process, and of whole `hyperward scan --root` processes (interpreter start,
every check, the report).

    .venv/bin/python bench/bench_vbox.py [--runs 7] [--machines 500]

The machines are the test fixtures' settings files (settings 1.15 to 1.20, VirtualBox 5.0 to 7.1;
real file formats written by hand, VirtualBox cannot run here) with fresh UUIDs and names, so
every parser path is exercised. Target (issue 16): the home scans in under 1 s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_scan import scan_roots  # noqa: E402

from hyperward.collect.fs import RootFS  # noqa: E402
from hyperward.platforms.base import Source  # noqa: E402
from hyperward.platforms.virtualbox import PLATFORM  # noqa: E402
from hyperward.platforms.virtualbox.checks import JUDGES  # noqa: E402

FIXTURES = HERE / "tests" / "fixtures" / "virtualbox"
TEMPLATES = [
    FIXTURES / "weak/VirtualBox VMs/Win10-weak/Win10-weak.vbox",
    FIXTURES / "weak/VirtualBox VMs/old50/old50.vbox",
    FIXTURES / "weak/VirtualBox VMs/Ubuntu71/Ubuntu71.vbox",
    FIXTURES / "hardened/Machines/Safe70/Safe70.vbox",
    FIXTURES / "hardened/Machines/Safe52/Safe52.vbox",
]
TEMPLATE_UUIDS = ["0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01", "0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a02",
                  "0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a03", "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc01",
                  "5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc02"]
TEMPLATE_NAMES = ["Win10-weak", "old50", "Ubuntu71", "Safe70", "Safe52"]


def build(base: pathlib.Path, count: int) -> pathlib.Path:
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n")
    home = root / "home/alice/.config/VirtualBox"
    vms = root / "home/alice/VirtualBox VMs"
    home.mkdir(parents=True)
    texts = [t.read_text() for t in TEMPLATES]
    entries = []
    for i in range(count):
        k = i % len(texts)
        name = f"vm{i:04d}"
        ident = str(uuid.UUID(int=i + 1, version=4))
        text = texts[k].replace(TEMPLATE_UUIDS[k], ident).replace(f'name="{TEMPLATE_NAMES[k]}"', f'name="{name}"')
        folder = vms / name
        folder.mkdir(parents=True)
        (folder / f"{name}.vbox").write_text(text)
        (folder / f"{name}.vbox-prev").write_text(text)
        entries.append(f'      <MachineEntry uuid="{{{ident}}}" src="/home/alice/VirtualBox VMs/{name}/{name}.vbox"/>')
    (home / "VirtualBox.xml").write_text(
        '<?xml version="1.0"?>\n<VirtualBox xmlns="http://www.virtualbox.org/" version="1.12-linux">\n  <Global>\n'
        "    <MachineRegistry>\n" + "\n".join(entries) + "\n    </MachineRegistry>\n"
        '    <SystemProperties defaultMachineFolder="/home/alice/VirtualBox VMs" VRDEAuthLibrary="VBoxAuth"/>\n'
        "  </Global>\n</VirtualBox>\n")
    return root


def once(root: pathlib.Path) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    source = Source(RootFS(str(root)))
    assert PLATFORM.detect(source)
    facts = PLATFORM.collect(source)
    t1 = time.perf_counter()
    guests = PLATFORM.guests(facts)
    results = sum(len(list(judge(facts, None))) for judge in JUDGES.values())
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(guests), results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--machines", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = build(pathlib.Path(tmp), args.machines)
        runs = [once(root) for _ in range(args.runs)]
        collect = statistics.median(r[0] for r in runs)
        judge = statistics.median(r[1] for r in runs)
        total = statistics.median(r[0] + r[1] for r in runs)
        print(f"in process: machines={args.machines} guests={runs[0][2]} results={runs[0][3]}  detect+collect {collect * 1000:.0f} ms  "
              f"guests+judges {judge * 1000:.0f} ms  total {total * 1000:.0f} ms (median of {args.runs})")
        empty = pathlib.Path(tmp) / "empty"
        (empty / "etc").mkdir(parents=True)
        (empty / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        scan_roots([("500 machines", root), ("no VirtualBox (baseline)", empty)], args.runs, {**os.environ, "HYPERWARD_VULNDB": str(pathlib.Path(tmp) / "none.sqlite")}, 25)


if __name__ == "__main__":
    main()
