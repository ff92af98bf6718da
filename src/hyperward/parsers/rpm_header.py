"""rpm package headers as rpmdb.sqlite stores them (the `Packages.blob` column): a big-endian
index count and data length, 16-byte index entries (tag, type, offset, count), then the data
store (rpm's lib/header.c, headerImport without the magic)."""

from __future__ import annotations

import struct

NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
STRING, INT32, STRING_ARRAY, I18NSTRING = 6, 4, 8, 9
MAX_ENTRIES = 65536


class HeaderError(ValueError):
    pass


def parse_header(blob: bytes, wanted: tuple[int, ...] = (NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM)) -> dict[int, str | int]:
    if len(blob) < 8:
        raise HeaderError("shorter than a header preamble")
    il, dl = struct.unpack(">II", blob[:8])
    if il > MAX_ENTRIES or 8 + 16 * il + dl > len(blob):
        raise HeaderError(f"index of {il} entries and {dl} data bytes do not fit in {len(blob)} bytes")
    data = blob[8 + 16 * il : 8 + 16 * il + dl]
    out: dict[int, str | int] = {}
    for i in range(il):
        tag, kind, offset, count = struct.unpack(">iiii", blob[8 + 16 * i : 24 + 16 * i])
        if tag not in wanted:
            continue
        if not 0 <= offset < dl:
            raise HeaderError(f"tag {tag}: offset {offset} outside the data store")
        if kind in (STRING, I18NSTRING, STRING_ARRAY):
            end = data.find(b"\0", offset)
            if end < 0:
                raise HeaderError(f"tag {tag}: unterminated string")
            out[tag] = data[offset:end].decode("utf-8", "replace")
        elif kind == INT32 and count >= 1 and offset + 4 <= dl:
            out[tag] = struct.unpack(">i", data[offset : offset + 4])[0]
    return out


def source_name(sourcerpm: str) -> tuple[str, str]:
    """"qemu-kvm-8.2.0-11.el9_4.src.rpm" -> ("qemu-kvm", "8.2.0-11.el9_4")."""
    stem = sourcerpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return stem, ""
    return parts[0], f"{parts[1]}-{parts[2]}"
