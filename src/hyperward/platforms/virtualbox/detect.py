"""Whether VirtualBox is on a root: asked on every scan, so it imports nothing heavy (the
collector, parsers and checks load only once VirtualBox was found). The collector reads its
install paths and users' homes from here too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...model import Unavailable

if TYPE_CHECKING:
    from ...collect.fs import RootFS
    from ..base import Source

INSTALL_DIRS = ("/usr/lib/virtualbox", "/usr/lib64/virtualbox", "/opt/VirtualBox")
VBOX_CFG = "/etc/vbox/vbox.cfg"
HOME_DIRS = ((".config/VirtualBox", "home"), (".VirtualBox", "legacy"))


def _homes(fs: RootFS) -> list[tuple[str, str | None, int | None]]:
    """(home, user, uid) for every passwd entry with a home directory, and /root."""
    out: dict[str, tuple[str, str | None, int | None]] = {}
    text = fs.read_text("/etc/passwd", 16 * 1024 * 1024)
    if isinstance(text, str):
        for line in text.splitlines():
            fields = line.split(":")
            if len(fields) < 7 or not fields[5].startswith("/") or fields[5] in ("/", "/nonexistent"):
                continue
            home = fields[5].rstrip("/")
            if home not in out:
                uid = int(fields[2]) if fields[2].isdigit() else None
                out[home] = (home, fields[0], uid)
    out.setdefault("/root", ("/root", "root", 0))
    return list(out.values())


def _vbox_dirs(fs: RootFS, denied: list[str] | None = None) -> list[tuple[str, str, str | None, int | None]]:
    """VirtualBox homes with a VirtualBox.xml; homes that could not be searched go to `denied`."""
    found = []
    for home, user, uid in _homes(fs):
        for rel, kind in HOME_DIRS:
            path = f"{home}/{rel}"
            st = fs.stat(f"{path}/VirtualBox.xml")
            if not isinstance(st, Unavailable):
                found.append((path, kind, user, uid))
            elif st.kind == "denied" and denied is not None and home not in denied:
                denied.append(home)
    return found


def detect(source: Source) -> bool:
    fs = source.fs
    if source.endpoints.get("virtualbox"):
        return True
    if fs is None:
        return False
    if fs.exists(VBOX_CFG) or any(fs.exists(p) for p in INSTALL_DIRS):
        return True
    return bool(_vbox_dirs(fs))
