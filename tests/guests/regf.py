"""A minimal Windows registry hive file (regf), for the Windows guest test.

No Debian package ships an empty hive (hivex's own images/minimal is in its source tree only), so
this writes the smallest one real hivex accepts: the 4 KB base block (magic, sequence numbers,
version 1.3, root cell offset, hbin size, the XOR checksum of its first 508 bytes) and one 4 KB hbin
holding the root key's nk cell, the sk cell every key inherits its security from, and one free
cell for the rest. Layouts from hivex's lib/hivex-internal.h (ntreg_header, ntreg_hbin_page,
ntreg_nk_record, ntreg_sk_record). The keys and values are then written into it by real hivex
(hivexregedit --merge) and read back by real hivex: this file is only the empty starting point.
"""

from __future__ import annotations

import struct

PAGE = 0x1000
ROOT_CELL = 0x20  # hive-data offsets are counted from the first hbin


def _cell(body: bytes) -> bytes:
    size = (4 + len(body) + 7) // 8 * 8
    return struct.pack("<i", -size) + body + bytes(size - 4 - len(body))


def minimal_hive(root_name: str = "ROOT") -> bytes:
    name = root_name.encode("ascii")
    sk_cell_at = ROOT_CELL + (4 + 76 + len(name) + 7) // 8 * 8
    nk = struct.pack("<2sHqIIIIIIIIIIHHIIIIHH", b"nk", 0x2C,  # HiveEntry | NoDelete | CompressedName
                     0, 0, 0,                      # timestamp, access bits, parent
                     0, 0, 0xFFFFFFFF, 0xFFFFFFFF,  # subkeys, volatile subkeys, their lists
                     0, 0xFFFFFFFF,                 # values, value list
                     sk_cell_at, 0xFFFFFFFF,        # sk, class name
                     0, 0, 0, 0, 0, 0,              # max name/class/value lengths, work var
                     len(name), 0) + name
    # a self-relative security descriptor: revision 1, control SE_SELF_RELATIVE | SE_DACL_PRESENT,
    # no owner, group, SACL or DACL (a NULL DACL)
    descriptor = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
    sk = struct.pack("<2sHIIII", b"sk", 0, sk_cell_at, sk_cell_at, 1, len(descriptor)) + descriptor
    cells = _cell(nk[:0] + nk)
    assert len(cells) == sk_cell_at - ROOT_CELL
    cells += _cell(sk)
    free = PAGE - ROOT_CELL - len(cells)
    cells += struct.pack("<i", free) + bytes(free - 4)
    hbin = struct.pack("<4sII", b"hbin", 0, PAGE) + bytes(ROOT_CELL - 12) + cells
    assert len(hbin) == PAGE
    header = bytearray(PAGE)
    struct.pack_into("<4sIIqIIIIIII", header, 0, b"regf", 1, 1, 0, 1, 3, 0, 1, ROOT_CELL, PAGE, 1)
    label = "minimal".encode("utf-16-le")
    header[0x30:0x30 + len(label)] = label
    checksum = 0
    for (word,) in struct.iter_unpack("<I", bytes(header[:0x1FC])):
        checksum ^= word
    struct.pack_into("<I", header, 0x1FC, checksum)
    return bytes(header) + hbin
