"""Kernel version ordering and the taint mask."""

from __future__ import annotations

import re

_PIECE = re.compile(r"(\d+|[A-Za-z]+|~|[^\dA-Za-z~]+)")


def _order_char(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def compare_versions(a: str, b: str) -> int:
    """dpkg's ordering of version strings (without epoch/revision splitting, which kernel release
    names such as 6.1.0-21-amd64 do not use): digits numerically, letters before other symbols,
    '~' before everything including the end."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order_char(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order_char(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = (a[i] > b[j]) - (a[i] < b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


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
