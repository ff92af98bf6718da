"""hyperward never writes to the host it audits."""

from __future__ import annotations

import hashlib
import os
import pathlib
import stat

from conftest import hyperward


def tree_digest(root: pathlib.Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = pathlib.Path(dirpath, name)
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("other", st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_rdev)
    return out


def test_scan_and_collect_leave_the_root_byte_for_byte_unchanged(weak, tmp_path):
    before = tree_digest(weak)
    assert hyperward("scan", "--root", str(weak), "-v").returncode == 0
    assert hyperward("scan", "--root", str(weak), "--format", "json", "-o", str(tmp_path / "r.json")).returncode == 0
    assert hyperward("collect", "--root", str(weak), "-o", str(tmp_path / "s.json")).returncode == 0
    assert tree_digest(weak) == before


def test_no_subprocess_with_shell_in_the_package():
    source = pathlib.Path(__file__).resolve().parent.parent / "src" / "hyperward"
    for path in source.rglob("*.py"):
        assert "shell=True" not in path.read_text(), path
