"""What a vulnerability scan report may call this host and its guests, and the scans on record."""

from __future__ import annotations

from typing import Any

import json
import re

from ..facts import Domain, LibvirtFacts, ScanFacts
from ..model import Unavailable
from ..paths import data_file
from .scan_reports import read_history, read_reports
from .fs import RootFS


def _local_addresses(fs: RootFS) -> list[str]:
    """IPv4 addresses of this host's interfaces: /proc/net/fib_trie's "/32 host LOCAL" entries."""
    text = fs.read_text("/proc/net/fib_trie", 4 * 1024 * 1024)
    if not isinstance(text, str):
        return []
    out, last = set(), None
    for line in text.splitlines():
        match = re.search(r"\|--\s+([\d.]+)", line)
        if match:
            last = match.group(1)
        elif "/32 host LOCAL" in line and last and not last.startswith("127."):
            out.add(last)
    return sorted(out)


def _leases(fs: RootFS) -> list[dict[str, Any]]:
    listing = fs.listdir("/var/lib/libvirt/dnsmasq")
    out: list[dict[str, Any]] = []
    for name in listing if isinstance(listing, list) else []:
        if name.endswith(".status"):
            text = fs.read_text(f"/var/lib/libvirt/dnsmasq/{name}", 4 * 1024 * 1024)
            try:
                data = json.loads(text) if isinstance(text, str) and text.strip() else []
            except json.JSONDecodeError:
                continue
            out.extend(d for d in data if isinstance(d, dict))
    return out


def collect_scans(fs: RootFS, hostname: str, libvirt: LibvirtFacts, reports: list[str], history_path: str | None) -> ScanFacts | None:
    path = history_path or data_file("HYPERWARD_HISTORY", "history.sqlite")
    recorded = read_history(path, hostname)
    if recorded is None and not reports:
        return None
    records, problems = read_reports(reports)
    if isinstance(recorded, Unavailable):
        problems.append(recorded)
    elif recorded:
        records.extend(recorded)
    leases = _leases(fs)
    guests: dict[str, list[str]] = {}
    for d in libvirt.domains:
        if isinstance(d, Domain):
            macs = {i.mac.lower() for i in d.interfaces if i.mac}
            names = [d.name]
            for lease in leases:
                if str(lease.get("mac-address", "")).lower() in macs:
                    names += [str(v) for v in (lease.get("ip-address"), lease.get("hostname")) if v]
            guests[d.label] = names
    return ScanFacts(records, problems, [hostname, *_local_addresses(fs)], guests)
