"""/etc/pve as pmxcfs stores it: the SQLite database /var/lib/pve-cluster/config.db.

An offline copy of a node (a backup, an image) usually has an empty /etc/pve, since that is a
FUSE mount of this database. pve-cluster's src/pmxcfs/database.c defines one table:

    CREATE TABLE tree (inode INTEGER PRIMARY KEY NOT NULL, parent INTEGER NOT NULL,
        version INTEGER NOT NULL, writer INTEGER NOT NULL, mtime INTEGER NOT NULL,
        type INTEGER NOT NULL, name TEXT NOT NULL, data BLOB);

type 8 (DT_REG) is a file, 4 (DT_DIR) a directory; entries whose parent is 0 sit at the root;
the row with inode 0 is the `__version__` record, not a file. The database is opened read-only
and immutable (no locks, no WAL or journal files created, nothing written); a WAL file beside it
holds changes not yet checkpointed, which immutable mode cannot see, so its presence is noted.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import urllib.parse

from ...collect.fs import RootFS
from ...model import Unavailable

DT_REG = 8
DT_DIR = 4
MAX_DB_BYTES = 512 * 1024 * 1024
MAX_FILE_BYTES = 4 * 1024 * 1024


class Tree:
    """The /etc/pve tree, path (relative, no leading slash) -> bytes, plus its directories."""

    def __init__(self, files: dict[str, bytes], dirs: set[str], origin: str) -> None:
        self.files = files
        self.dirs = dirs
        self.origin = origin
        self._children: dict[str, list[str]] = {}
        for path in list(files) + list(dirs):
            parent, _, name = path.rpartition("/")
            self._children.setdefault(parent, []).append(name)
        for names in self._children.values():
            names.sort()

    def listdir(self, rel: str) -> list[str] | None:
        rel = rel.strip("/")
        if rel and rel not in self.dirs:
            return None
        return list(self._children.get(rel, []))


def open_config_db(fs: RootFS, path: str) -> Tree | Unavailable:
    """The tree rebuilt from config.db, or one Unavailable naming it."""
    st = fs.stat(path)
    if isinstance(st, Unavailable):
        return st
    if not stat.S_ISREG(st.st_mode):
        return Unavailable(path, "invalid", "not a regular file")
    if st.st_size > MAX_DB_BYTES:
        return Unavailable(path, "invalid", f"larger than {MAX_DB_BYTES} bytes; not read")
    try:
        local = fs.local_path(path)
    except Exception:  # noqa: BLE001 - a symlink loop in the root
        return Unavailable(path, "invalid", "too many levels of symbolic links")
    if not os.access(local, os.R_OK):
        return Unavailable(path, "denied", "permission denied")
    uri = "file:" + urllib.parse.quote(local) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=0)
    except sqlite3.Error as exc:
        return Unavailable(path, "invalid", f"cannot open as SQLite: {exc}")
    try:
        conn.execute("PRAGMA query_only = ON")
        rows = conn.execute("SELECT inode, parent, type, name, data FROM tree").fetchall()
    except sqlite3.DatabaseError as exc:
        return Unavailable(path, "invalid", f"not a pmxcfs database ({exc})")
    finally:
        conn.close()
    return build_tree(rows, path)


def build_tree(rows: list[tuple[object, ...]], origin: str) -> Tree | Unavailable:
    """Paths from parent links, as bdb_backend_load_index does: a non-directory parent, a
    duplicate name or an unknown type makes pmxcfs refuse the database, and so do we; entries
    whose parents are missing or form a loop are dropped from the view."""
    entries: dict[int, tuple[int, int, str, bytes | None]] = {}
    for row in rows:
        inode, parent, kind, name, data = row
        if not isinstance(inode, int) or not isinstance(parent, int) or not isinstance(kind, int):
            return Unavailable(origin, "invalid", "tree row with non-integer inode/parent/type")
        if inode == 0:
            continue
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            return Unavailable(origin, "invalid", f"inode {inode} has an invalid name")
        if kind not in (DT_REG, DT_DIR):
            return Unavailable(origin, "invalid", f"inode {inode} has unknown type {kind}")
        if data is not None and not isinstance(data, bytes):
            data = str(data).encode("utf-8", "replace")
        entries[inode] = (parent, kind, name, data)
    paths: dict[int, str | None] = {}

    def path_of(inode: int) -> str | None:
        chain: list[int] = []
        seen: set[int] = set()
        node = inode
        while node != 0 and node not in paths:
            if node in seen or node not in entries:
                for n in chain:
                    paths[n] = None
                return None
            seen.add(node)
            chain.append(node)
            node = entries[node][0]
        base = "" if node == 0 else paths[node]
        if base is None:
            for n in chain:
                paths[n] = None
            return None
        for n in reversed(chain):
            name = entries[n][2]
            base = f"{base}/{name}" if base else name
            paths[n] = base
        return paths[inode]

    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for inode, (parent, kind, _name, data) in entries.items():
        if parent != 0 and parent in entries and entries[parent][1] != DT_DIR:
            return Unavailable(origin, "invalid", f"inode {inode}'s parent is not a directory")
        path = path_of(inode)
        if path is None:
            continue
        if path in files or path in dirs:
            return Unavailable(origin, "invalid", f"duplicate entry {path!r}")
        if kind == DT_DIR:
            dirs.add(path)
        else:
            files[path] = data or b""
    return Tree(files, dirs, origin)
