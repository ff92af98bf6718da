"""Structured details derived once, by the producer, from the resource and message conventions the
checks share: `<config>.conf:<key>` resources are libvirt configuration keys, `sshd:<Keyword>` are
sshd keywords, `(FILE:LINE)` in a message is where a value was set, `mode NNNN` a file's mode.
A check's own details win over these."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .model import Details, Result

LIBVIRT_CONFIGS = ("qemu.conf", "libvirtd.conf", "virtqemud.conf", "virtproxyd.conf")
_CONFIG_KEY = re.compile(r"^(qemu|libvirtd|virtqemud|virtproxyd)\.conf:(\w+)$")
_SSHD_KEY = re.compile(r"^sshd:([A-Za-z]+)$")
_FILE_LINE = re.compile(r"\((/[^\s():]+):(\d+)\)")
_MODE = re.compile(r"(?:^|\s)mode (0[0-7]{3})\b")
_SOCKET_MODE = re.compile(r"SocketMode=(0[0-7]{3})\b")
_PROCESS = re.compile(r"^(?:(\S+) )?\(pid (\d+)\)$")


def derive(result: Result) -> Details:
    out: Details = {}
    resource, message = result.resource, result.message
    config = _CONFIG_KEY.match(resource)
    if config:
        out["file"] = f"/etc/libvirt/{config.group(1)}.conf"
        out["key"] = config.group(2)
        out["default"] = "default assumed" in message
    sshd = _SSHD_KEY.match(resource)
    if sshd:
        out["key"] = sshd.group(1)
        out["default"] = "(OpenSSH default)" in message
    process = _PROCESS.match(resource)
    if process:
        out["pid"] = int(process.group(2))
        if process.group(1) and process.group(1) not in ("qemu", "libvirt", "swtpm"):
            out["guest"] = process.group(1)
    where = _FILE_LINE.search(message)
    if where:
        out["file"] = where.group(1)
        out["line"] = int(where.group(2))
    elif resource.startswith("/") and " " not in resource and "file" not in out:
        out["file"] = resource
    mode = _MODE.search(message) or _SOCKET_MODE.search(message)
    if mode:
        out["mode"] = mode.group(1)
    return out


def enrich(result: Result, lines: Mapping[str, Mapping[str, int]] | None = None) -> Result:
    """LINES (file -> key -> line, from the parsers) adds the line of the key that decided a result."""
    derived = derive(result)
    if lines:
        file, key = result.details.get("file", derived.get("file")), result.details.get("key", derived.get("key"))
        if isinstance(file, str) and key is None and ":" in file:  # "/etc/pve/datacenter.cfg:migration"
            file, _, key = file.partition(":")
        if isinstance(file, str) and isinstance(key, str) and "line" not in result.details:
            line = lines.get(file, {}).get(key)
            if line is not None:
                derived["line"] = line
    return result.with_details(**derived) if derived else result
