"""Scanning inside guests: cost per guest and per GB of disk (issue 18; target 20 guests < 60 s).

    .venv/bin/python bench/bench_guests.py [--guests 20] [--size-mb 256] [--formats raw,qcow2] [--appliances N]

Builds N libvirt guests under a temporary root, each a real ext4 image of --size-mb holding the
small Debian tree the tests use (dpkg status, Debian 12 apt list excerpts, sshd_config, accounts,
keys), alternating raw and qcow2-over-a-backing-file, then runs the scan hyperward runs
(`scan_guests`, one appliance for all) and prints the appliance start, the time per guest and
per GB of virtual disk. Every image is hashed before and after: a scan that writes fails the run.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "guests"))
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

import imagekit as k
from appliance_env import _kernel

from hyperward.collect import collect_host
from hyperward.collect.fs import RootFS
from hyperward.guests.inspect import scan_guests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--guests", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--formats", default="raw,qcow2")
    parser.add_argument("--appliances", type=int, default=None, help="appliances side by side (default: hyperward's choice)")
    args = parser.parse_args()
    import os

    kernel = _kernel()
    if kernel and kernel[0]:
        os.environ.update(SUPERMIN_KERNEL=kernel[0], SUPERMIN_MODULES=kernel[1])
    formats = args.formats.split(",")
    with tempfile.TemporaryDirectory(prefix="hyperward-bench-guests-") as tmp:
        base = pathlib.Path(tmp)
        root, images = base / "root", base / "root/var/lib/libvirt/images"
        images.mkdir(parents=True)
        (root / "etc").mkdir(exist_ok=True)
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        started = time.perf_counter()
        template = k.debian_tree(base / "tree", hostname="t", host_key=k.keypair(base / "hk"), user_key=k.keypair(base / "uk"))
        k.ext4_image(template, images / "template.raw", args.size_mb)
        total_bytes = 0
        for i in range(args.guests):
            fmt = formats[i % len(formats)]
            name = f"vm{i:02d}"
            if fmt == "qcow2":
                path = images / f"{name}.qcow2"
                k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(images / "template.raw"), "-F", "raw", str(path))
            else:
                path = images / f"{name}.raw"
                k.run("cp", "--sparse=always", str(images / "template.raw"), str(path))
            total_bytes += args.size_mb * 1024 * 1024
            (root / "etc/libvirt/qemu").mkdir(parents=True, exist_ok=True)
            (root / f"etc/libvirt/qemu/{name}.xml").write_text(
                k.domain_xml(name, f"00000000-0000-4000-9000-{i:012d}", [(f"/var/lib/libvirt/images/{path.name}", fmt, "disk")]))
        build_s = time.perf_counter() - started
        before = k.hashes(images)
        facts = collect_host(str(root))
        started = time.perf_counter()
        result = scan_guests(RootFS(str(root)), facts.guests, facts.access.ssh, appliances=args.appliances)
        wall = time.perf_counter() - started
        assert k.hashes(images) == before, "an image changed during the scan"
        scanned = sum(1 for g in result.guests if g.scanned)
        per_guest = (wall - result.launch_s) / max(1, len(result.guests))
        gb = total_bytes / 1024 ** 3
        print(f"engine: {result.engine}; images built in {build_s:.1f} s")
        print(f"{len(result.guests)} guests ({scanned} scanned, {', '.join(formats)}), {gb:.1f} GB of virtual disk: "
              f"{wall:.1f} s in all (target < 60 s for 20)")
        print(f"  appliance start {result.launch_s:.1f} s; per guest {per_guest:.2f} s after it; "
              f"per GB {wall / gb:.1f} s ({(wall - result.launch_s) / gb:.1f} s without the start)")
        if result.problems:
            print("problems:", "; ".join(result.problems))


if __name__ == "__main__":
    main()
