"""Whether an address a config or a URL names is this host's loopback: one answer for the checks
(console and chardev listens), the monitor's metrics bind and its alert sinks."""

from __future__ import annotations

import ipaddress


def is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address in ("localhost", "localhost.localdomain")
