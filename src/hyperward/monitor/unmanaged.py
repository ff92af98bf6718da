"""QEMU processes libvirt does not manage, watched between scans (the same rule as HV-IDS-005).

/proc is walked every interval, but a process's command line and cgroup are read once: only
new PIDs cost a read."""

from __future__ import annotations

from ..collect.fs import RootFS
from ..collect.libvirt import (
    managed_by,
    manager_records,
    process_exe,
    process_kind,
    program_name,
)
from ..model import Unavailable
from ..parsers.proc import machine_slice, option_value, qemu_guest_name, split_cmdline
from ..records import frozen


@frozen
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
        # by PID: the executable link it had when looked at, and what it was then
        self.known: dict[int, tuple[str | None, QemuSeen | None]] = {}

    def _link(self, pid: int) -> str | None:
        exe = process_exe(self.fs, pid)
        return exe if isinstance(exe, str) else None

    def scan(self) -> list[QemuSeen]:
        """Every QEMU process now, managed or not.

        Each PID's executable link is read every time (one readlink): a process that was not
        QEMU when first seen and then execs QEMU keeps its PID, and must be looked at again."""
        listing = self.fs.listdir("/proc")
        if isinstance(listing, Unavailable):
            return []
        pids = {int(p) for p in listing if p.isdigit()}
        for gone in [p for p in self.known if p not in pids]:
            del self.known[gone]
        links = {pid: self._link(pid) for pid in pids}
        # A QEMU that looks unmanaged is looked at again next time: libvirt writes its pid file
        # only after QEMU is running.
        new = [p for p in pids if p not in self.known or self.known[p][0] != links[p]]
        found = [seen for pid, (_, seen) in self.known.items() if seen is not None and pid not in new]
        if not new:
            return found
        records = manager_records(self.fs)
        for pid in new:
            self.known.pop(pid, None)
            raw = self.fs.read_bytes(f"/proc/{pid}/cmdline", 1024 * 1024)
            if isinstance(raw, Unavailable) or not raw:
                self.known[pid] = (links[pid], None)
                continue
            args = split_cmdline(raw)
            exe = links[pid]
            if process_kind(program_name(exe, args)) != "qemu":
                self.known[pid] = (exe, None)
                continue
            cgroup_text = self.fs.read_text(f"/proc/{pid}/cgroup")
            cgroup = machine_slice(cgroup_text) if isinstance(cgroup_text, str) else None
            by_pid = records.libvirt_pids or {}
            seen = QemuSeen(pid, qemu_guest_name(args) or by_pid.get(pid), option_value(args, "-uuid"),
                            managed_by(pid, cgroup, records), cgroup, exe or args[0])
            found.append(seen)
            if seen.managed_by is not None:
                self.known[pid] = (exe, seen)
        return found
