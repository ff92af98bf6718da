"""Build a pmxcfs config.db from an /etc/pve tree, in the schema of pve-cluster's
src/pmxcfs/database.c (table `tree`, type 8 file / 4 directory, parent 0 the root, inode 0 the
__version__ row), the way an offline copy of a node holds its cluster configuration."""

from __future__ import annotations

import os
import pathlib
import sqlite3

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tree ("
    "  inode INTEGER PRIMARY KEY NOT NULL,"
    "  parent INTEGER NOT NULL CHECK(typeof(parent)=='integer'),"
    "  version INTEGER NOT NULL CHECK(typeof(version)=='integer'),"
    "  writer INTEGER NOT NULL CHECK(typeof(writer)=='integer'),"
    "  mtime INTEGER NOT NULL CHECK(typeof(mtime)=='integer'),"
    "  type INTEGER NOT NULL CHECK(typeof(type)=='integer'),"
    "  name TEXT NOT NULL,"
    "  data BLOB);"
)


def build_config_db(etc_pve: pathlib.Path, db: pathlib.Path, extra: list[tuple[int, int, int, str, bytes | None]] | None = None) -> int:
    """Insert every directory and file under etc_pve; returns the number of rows."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    inodes: dict[pathlib.Path, int] = {etc_pve: 0}
    next_inode = 1
    rows: list[tuple[int, int, int, int, int, int, str, bytes | None]] = []
    for dirpath, dirnames, filenames in os.walk(etc_pve):
        dirnames.sort()
        here = pathlib.Path(dirpath)
        for name in dirnames:
            inodes[here / name] = next_inode
            rows.append((next_inode, inodes[here], next_inode, 0, 1710000000, 4, name, None))
            next_inode += 1
        for name in sorted(filenames):
            rows.append((next_inode, inodes[here], next_inode, 0, 1710000000, 8, name, (here / name).read_bytes()))
            next_inode += 1
    rows.append((0, 0, next_inode, 0, 1710000000, 8, "__version__", None))
    for inode, parent, kind, name, data in extra or []:
        rows.append((inode, parent, inode, 0, 1710000000, kind, name, data))
    conn.executemany("INSERT INTO tree (inode, parent, version, writer, mtime, type, name, data) VALUES (?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return len(rows)
