"""A Proxmox VE node with 1,000 VMs and 200 containers, as /etc/pve files and as config.db:
median time of detect + collect + guests + every Proxmox judge in process, and of whole
`hyperward scan --root` processes (interpreter start, every check, the JSON and text reports).

    .venv/bin/python bench/bench_proxmox.py [--runs 7]

Target (issue 13): the whole scan under 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "platforms" / "proxmox"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from bench_scan import scan_roots  # noqa: E402
from pvedb import build_config_db  # noqa: E402

from hyperward.collect.fs import RootFS  # noqa: E402
from hyperward.platforms.base import Source  # noqa: E402
from hyperward.platforms.proxmox import PLATFORM  # noqa: E402
from hyperward.platforms.proxmox.checks import JUDGES, vzdump_coverage  # noqa: E402

FIXTURE = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "proxmox" / "hardened"


def vm_conf(rng: random.Random, vmid: int) -> str:
    lines = [f"#VM {vmid}", "agent: 1", "boot: order=scsi0;net0", f"cores: {rng.choice([1, 2, 4, 8])}",
             f"memory: {rng.choice([1024, 2048, 4096, 8192])}", f"name: vm{vmid}", "ostype: l26",
             f"net0: virtio=BC:24:11:{vmid >> 8 & 255:02X}:{vmid & 255:02X}:01,bridge=vmbr0,firewall={rng.choice([0, 1])}",
             f"scsi0: local-lvm:vm-{vmid}-disk-0,iothread=1,size=32G", "scsihw: virtio-scsi-single", "sockets: 1",
             f"smbios1: uuid=00000000-0000-4000-8000-{vmid:012d}"]
    if rng.random() < 0.5:
        lines += ["bios: ovmf", f"efidisk0: local-lvm:vm-{vmid}-disk-1,efitype=4m,pre-enrolled-keys={rng.choice([0, 1])},size=4M",
                  f"tpmstate0: local-lvm:vm-{vmid}-disk-2,size=4M,version=v2.0"]
    lines.append(rng.choice(["cpu: host", "cpu: x86-64-v2-AES", "cpu: kvm64,flags=-pcid", "cpu: host,flags=+md-clear;+spec-ctrl"]))
    if rng.random() < 0.1:
        lines.append("args: -vnc 0.0.0.0:" + str(vmid % 100))
    if rng.random() < 0.05:
        lines.append("hostpci0: 0000:0%d:00.0,pcie=1" % (vmid % 9))
    if rng.random() < 0.2:
        lines.append("vga: qxl")
    if rng.random() < 0.3:
        lines += ["", "[snap1]", "cores: 1", "snaptime: 1700000000"]
    return "\n".join(lines) + "\n"


def ct_conf(rng: random.Random, vmid: int) -> str:
    lines = ["arch: amd64", "cores: 1", f"hostname: ct{vmid}", "memory: 512", "ostype: debian",
             f"net0: name=eth0,bridge=vmbr0,firewall=1,hwaddr=BC:24:11:CC:{vmid & 255:02X}:01,ip=dhcp,type=veth",
             f"rootfs: local-lvm:subvol-{vmid}-disk-0,size=8G", "swap: 512"]
    if rng.random() < 0.8:
        lines.append("unprivileged: 1")
    if rng.random() < 0.3:
        lines.append("features: nesting=1" + (",keyctl=1" if rng.random() < 0.5 else ""))
    if rng.random() < 0.1:
        lines.append(f"mp0: /srv/share{vmid},mp=/share")
    return "\n".join(lines) + "\n"


def build(base: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    rng = random.Random(13)
    files = base / "files"
    shutil.copytree(FIXTURE, files)
    node = files / "etc/pve/nodes/pve1"
    for p in list((node / "qemu-server").iterdir()) + list((node / "lxc").iterdir()):
        p.unlink()
    for vmid in range(1000, 2000):
        (node / "qemu-server" / f"{vmid}.conf").write_text(vm_conf(rng, vmid))
        if rng.random() < 0.7:
            (files / "etc/pve/firewall" / f"{vmid}.fw").write_text("[OPTIONS]\n\nenable: 1\nipfilter: 1\n\n[RULES]\n\nGROUP webserver\n")
    for vmid in range(3000, 3200):
        (node / "lxc" / f"{vmid}.conf").write_text(ct_conf(rng, vmid))
    db = base / "db"
    shutil.copytree(files, db)
    build_config_db(db / "etc/pve", db / "var/lib/pve-cluster/config.db")
    shutil.rmtree(db / "etc/pve")
    (db / "etc/pve").mkdir()
    return files, db


def once(root: pathlib.Path) -> tuple[float, float, int, int]:
    t0 = time.perf_counter()
    source = Source(RootFS(str(root)))
    assert PLATFORM.detect(source)
    facts = PLATFORM.collect(source)
    t1 = time.perf_counter()
    guests = PLATFORM.guests(facts)
    results = sum(len(list(judge(facts))) for judge in JUDGES.values())
    vzdump_coverage(facts)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(guests), results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files, db = build(pathlib.Path(tmp))
        scan_roots([("/etc/pve files", files), ("config.db", db)], args.runs, {**os.environ, "HYPERWARD_VULNDB": str(pathlib.Path(tmp) / "none.sqlite")}, 15)


if __name__ == "__main__":
    main()
