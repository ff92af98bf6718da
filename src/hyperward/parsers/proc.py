"""Text under /proc: process status, maps, cgroup, command lines, sockets, mounts, meminfo."""

from __future__ import annotations

import ipaddress
import re

from ..facts import Listener, Mount


def status_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def deleted_mappings(maps: str) -> list[str]:
    """Shared objects mapped from a file that was replaced or removed since (the package update
    case needrestart looks for). Memfd, SysV shm and anonymous mappings are not files on disk."""
    found: set[str] = set()
    for line in maps.splitlines():
        if not line.endswith(" (deleted)"):
            continue
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5][: -len(" (deleted)")]
        if not path.startswith("/") or path.startswith(("/memfd:", "/SYSV", "/dev/", "/[")) or "/memfd:" in path:
            continue
        if ".so" in path.rsplit("/", 1)[-1] or "/qemu" in path:
            found.add(path)
    return sorted(found)


def split_cmdline(raw: bytes) -> list[str]:
    return [arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg]


def option_value(args: list[str], option: str) -> str | None:
    """The value following `-option` (or `--option`, or `-option=value`)."""
    for i, arg in enumerate(args):
        if arg in (option, "-" + option):
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith(option + "=") or arg.startswith("-" + option + "="):
            return arg.split("=", 1)[1]
    return None


def qemu_guest_name(args: list[str]) -> str | None:
    """-name guest=NAME,debug-threads=on (libvirt) or -name NAME; ',,' escapes a comma."""
    value = option_value(args, "-name")
    if value is None:
        return None
    fields = re.split(r"(?<!,),(?!,)", value)
    for part in fields:
        if part.startswith("guest="):
            return part[len("guest="):].replace(",,", ",")
    first = fields[0]
    return None if "=" in first else first.replace(",,", ",")


def qemu_cpu_pm(args: list[str]) -> bool:
    """`-overcommit cpu-pm=on` (libvirt <features><kvm><hint-dedicated/>... or <pmu>), or the older
    `-realtime` style is not cpu-pm; only this option hands MWAIT/HLT to the guest."""
    for i, arg in enumerate(args):
        if arg in ("-overcommit", "--overcommit") and i + 1 < len(args) and "cpu-pm=on" in args[i + 1].split(","):
            return True
    return False


def machine_slice(cgroup_text: str) -> str | None:
    """The unit path of a process's cgroup: the v2 "0::" line, else (v1) systemd's own
    name=systemd hierarchy, else the cpu controller's, which libvirt places without systemd.
    The first v1 line may be a controller nobody manages, where every process sits at "/"."""
    ranked: list[tuple[int, str]] = []
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = parts[1].split(",")
        rank = 0 if parts[0] == "0" and parts[1] == "" else 1 if "name=systemd" in controllers else 2 if "cpu" in controllers else 3
        ranked.append((rank, parts[2]))
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


_STATE_LISTEN = "0A"


def _hex_address(text: str) -> str:
    if len(text) == 8:
        raw = bytes.fromhex(text)[::-1]
        return ".".join(str(b) for b in raw)
    words = [bytes.fromhex(text[i : i + 8])[::-1].hex() for i in range(0, 32, 8)]
    full = "".join(words)
    if full.startswith("00000000000000000000ffff"):
        return "::ffff:" + ".".join(str(b) for b in bytes.fromhex(full[24:]))
    return str(ipaddress.IPv6Address(int(full, 16)))


def net_listeners(text: str, protocol: str) -> list[Listener]:
    """/proc/net/{tcp,tcp6,udp,udp6}: TCP sockets in LISTEN, UDP sockets bound (state 07)."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 4 or ":" not in parts[1]:
            continue
        if protocol.startswith("tcp") and parts[3] != _STATE_LISTEN:
            continue
        addr, _, port = parts[1].rpartition(":")
        try:
            out.append(Listener(protocol.rstrip("6"), _hex_address(addr), int(port, 16)))
        except ValueError:
            continue
    return out


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out.append(Mount(_unescape_mount(parts[0]), _unescape_mount(parts[1]), parts[2]))
    return out


def meminfo_total_kib(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def cpu_count(online: str) -> int | None:
    """/sys/devices/system/cpu/online: "0-3,6,8-9"."""
    total = 0
    for part in online.strip().split(","):
        bounds = part.split("-")
        if not 1 <= len(bounds) <= 2 or not all(b.isdigit() for b in bounds):
            return None
        total += int(bounds[-1]) - int(bounds[0]) + 1
    return total or None


def sasl_mech_list(text: str) -> list[str] | None:
    """/etc/sasl2/libvirt.conf `mech_list: a b`; None when the file does not restrict mechanisms."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "mech_list":
            return value.replace(",", " ").split()
    return None


_POLKIT_SUBJECT = re.compile(r"""subject\.(isInGroup|user)\s*(?:\(\s*|==\s*)["']([^"']+)["']""")
_POLKIT_ACTION = re.compile(r"""action\.id\s*==\s*["']org\.libvirt\.unix\.manage["']""")


def polkit_manage_grants(text: str) -> list[str] | None:
    """Subjects a polkit JavaScript rule grants org.libvirt.unix.manage to ("group:x", "user:y",
    or "anyone" when the rule returns YES without testing the subject); None if it does not
    mention the action."""
    if not _POLKIT_ACTION.search(text):
        return None
    grants = []
    for match in _POLKIT_SUBJECT.finditer(text):
        grants.append(("group:" if match.group(1) == "isInGroup" else "user:") + match.group(2))
    if not grants and "polkit.Result.YES" in text:
        grants.append("anyone")
    return sorted(set(grants))
