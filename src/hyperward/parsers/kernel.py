"""Kernel version ordering and the taint mask."""

from __future__ import annotations

from .versions import verrevcmp


def compare_versions(a: str, b: str) -> int:
    """Kernel release names (6.1.0-21-amd64) in dpkg's order, as one version part: they have
    no epoch, and their '-' is not a Debian revision separator."""
    return verrevcmp(a, b)


# Documentation/admin-guide/tainted-kernels.rst
TAINT_FLAGS: dict[int, tuple[str, str]] = {
    0: ("P", "proprietary module was loaded"),
    1: ("F", "module was force loaded"),
    2: ("S", "kernel running on an out of specification system"),
    3: ("R", "module was force unloaded"),
    4: ("M", "processor reported a Machine Check Exception"),
    5: ("B", "bad page referenced or unexpected page flags"),
    6: ("U", "taint requested by userspace"),
    7: ("D", "kernel died recently (OOPS or BUG)"),
    8: ("A", "ACPI table overridden by user"),
    9: ("W", "kernel issued a warning"),
    10: ("C", "staging driver was loaded"),
    11: ("I", "workaround for a platform firmware bug applied"),
    12: ("O", "externally-built (out-of-tree) module was loaded"),
    13: ("E", "unsigned module was loaded"),
    14: ("L", "soft lockup occurred"),
    15: ("K", "kernel has been live patched"),
    16: ("X", "auxiliary taint (distribution-defined)"),
    17: ("T", "kernel was built with the struct randomization plugin"),
    18: ("N", "an in-kernel test has been run"),
    19: ("J", "userspace used a mutating debug operation in fwctl"),
}


def decode_taint(mask: int) -> list[tuple[int, str, str]]:
    out = []
    bit = 0
    while mask >> bit:
        if mask >> bit & 1:
            letter, meaning = TAINT_FLAGS.get(bit, ("?", "unknown taint bit"))
            out.append((bit, letter, meaning))
        bit += 1
    return out
