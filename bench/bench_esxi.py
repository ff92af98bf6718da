"""ESXi: 1,000 offline .vmx files (ESXi 7/8 syntax, from the weak and hardened fixtures with
random changes) through detect + collect + guest mapping + every ESXi judge, in process; and,
where govmomi's simulator can be built (tests/fixtures/vcsim_lab.py), a vCenter of 20 hosts and
500 VMs through the vSphere API collection (pyvmomi, batched property collector) and the judges.

    .venv/bin/python bench/bench_esxi.py [--runs 5] [--vms 1000] [--no-simulator]

Targets (issue 15): 1,000 .vmx files under 1 s; 20 hosts and 500 VMs in the simulator under 10 s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(HERE / "tests" / "fixtures"))
from hyperward.collect.fs import RootFS  # noqa: E402
from hyperward.platforms.base import Source  # noqa: E402
from hyperward.platforms.esxi import PLATFORM  # noqa: E402
from hyperward.platforms.esxi.checks import JUDGES  # noqa: E402
from hyperward.platforms.esxi.facts import EsxiFacts  # noqa: E402

FIXTURES = HERE / "tests" / "fixtures" / "esxi"
DS = "vmfs/volumes/650b3f2e-1c7d9a40-5b2e-0050569a1b2c"
TOGGLES = ["isolation.tools.copy.disable", "isolation.tools.paste.disable", "mks.enable3d", "tools.guestlib.enableHostInfo",
           "RemoteDisplay.vnc.enabled", "isolation.device.connectable.disable"]


def build_root(target: pathlib.Path, count: int, seed: int = 15) -> None:
    rng = random.Random(seed)
    shutil.copytree(FIXTURES / "hardened" / "etc", target / "etc")
    templates = [(FIXTURES / "hardened" / DS / "app01/app01.vmx").read_text(), (FIXTURES / "weak" / DS / "web01/web01.vmx").read_text()]
    for i in range(count):
        text = rng.choice(templates).replace('displayName = "app01"', f'displayName = "vm{i:04d}"') \
                                    .replace('displayName = "web01"', f'displayName = "vm{i:04d}"')
        extra = "".join(f'{key} = "{rng.choice(["TRUE", "FALSE"])}"\n' for key in rng.sample(TOGGLES, 2))
        folder = target / DS / f"vm{i:04d}"
        folder.mkdir(parents=True)
        (folder / f"vm{i:04d}.vmx").write_text(text + extra)


def judge_all(facts: EsxiFacts) -> int:
    return sum(1 for judge in JUDGES.values() for _ in judge(facts))


def offline(runs: int, count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-esxi-") as tmp:
        root = pathlib.Path(tmp) / "root"
        build_root(root, count)
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            source = Source(RootFS(str(root)))
            assert PLATFORM.detect(source)
            facts = PLATFORM.collect(source)
            guests = PLATFORM.guests(facts)
            results = judge_all(facts)
            times.append(time.perf_counter() - start)
        assert len(guests) == count, len(guests)
        print(f"offline: {count} .vmx files, {results} results: median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, max {max(times):.3f}) over {runs} runs; target < 1 s")


def simulator(runs: int) -> None:
    import vcsim_lab

    why = vcsim_lab.available()
    if why:
        print(f"simulator: skipped ({why})")
        return
    binary = vcsim_lab.build()
    from hyperward.platforms.esxi.api import collect_endpoint
    from hyperward.platforms.esxi.collect import collect
    from hyperward.platforms.esxi.settings import VsphereSettings

    with tempfile.TemporaryDirectory(prefix="hyperward-bench-vcsim-") as tmp:
        ca, cert, key = vcsim_lab.make_certs(pathlib.Path(tmp))
        os.environ["HYPERWARD_VSPHERE_USER"], os.environ["HYPERWARD_VSPHERE_PASSWORD"] = "bench", "bench-pw"
        with vcsim_lab.simulator(binary, cert, key, "bench", "bench-pw", "-clusters", "2", "-cluster-hosts", "10", "-vms", "250") as endpoint:
            settings = VsphereSettings(ca_file=str(ca), timeout=60)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                facts = collect(None, [endpoint], settings)
                results = judge_all(facts)
                times.append(time.perf_counter() - start)
            assert not facts.errors, facts.errors
            assert collect_endpoint  # the path collect() takes for each endpoint
            print(f"simulator: {len(facts.hosts)} hosts, {len(facts.vms)} VMs, {results} results: median {statistics.median(times):.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f}) over {runs} runs; target < 10 s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--no-simulator", action="store_true")
    args = parser.parse_args()
    offline(args.runs, args.vms)
    if not args.no_simulator:
        simulator(max(1, args.runs // 2))


if __name__ == "__main__":
    main()
