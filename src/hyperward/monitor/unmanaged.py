"""QEMU processes libvirt does not manage, watched between scans (the same rule as HV-IDS-005).

/proc is walked every interval, but a process's command line and cgroup are read once: only
new PIDs cost a read."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..collect.fs import RootFS
from ..collect.libvirt import QEMU_BINARY, managed_by, pidfiles
from ..model import Unavailable
from ..parsers.proc import machine_slice, option_value, qemu_guest_name, split_cmdline


@dataclass(frozen=True)
class QemuSeen:
    pid: int
    guest: str | None
    uuid: str | None
    managed_by: str | None
    cgroup: str | None
    exe: str


class QemuWatch:
    def __init__(self, root: str = "/") -> None:
        self.fs = RootFS(root)
        self.known: dict[int, QemuSeen | None] = {}

    def scan(self) -> list[QemuSeen]:
        """Every QEMU process now, managed or not."""
        listing = self.fs.listdir("/proc")
        if isinstance(listing, Unavailable):
            return []
        pids = {int(p) for p in listing if p.isdigit()}
        for gone in [p for p in self.known if p not in pids]:
            del self.known[gone]
        # A QEMU that looks unmanaged is looked at again next time: libvirt writes its pid file
        # only after QEMU is running.
        new = [p for p in pids if p not in self.known]
        found = [seen for seen in self.known.values() if seen is not None]
        by_pid = {pid: name for name, pid in pidfiles(self.fs).items()} if new else {}
        for pid in new:
            raw = self.fs.read_bytes(f"/proc/{pid}/cmdline", 1024 * 1024)
            if isinstance(raw, Unavailable) or not raw:
                self.known[pid] = None
                continue
            args = split_cmdline(raw)
            program = os.path.basename(args[0]) if args else ""
            if not QEMU_BINARY.match(program):
                self.known[pid] = None
                continue
            cgroup_text = self.fs.read_text(f"/proc/{pid}/cgroup")
            cgroup = machine_slice(cgroup_text) if isinstance(cgroup_text, str) else None
            seen = QemuSeen(pid, qemu_guest_name(args) or by_pid.get(pid), option_value(args, "-uuid"),
                            managed_by(pid, cgroup, by_pid), cgroup, args[0])
            found.append(seen)
            if seen.managed_by is not None:
                self.known[pid] = seen
        return found
