"""GRUB's defaults files, read once per scan.

/etc/default/grub and /etc/default/grub.d/*.cfg hold both the kernel's command line
(GRUB_CMDLINE_LINUX*) and, on a Xen host, the hypervisor's (GRUB_CMDLINE_XEN*): the kernel and
the Xen collectors each take their variables from the same texts (parsers.cmdline.grub_variables)
instead of reading the files twice.

The texts are remembered per RootFS (a RootFS is one scan's view of a root) and only while every
file still has the identity it had when read (inode, size, modification time, and the drop-in
directory's own), so a long-lived RootFS never sees stale text.
"""

from __future__ import annotations

import weakref

from ..model import Unavailable, is_missing
from ..records import frozen
from .fs import RootFS

GRUB = "/etc/default/grub"
GRUB_D = "/etc/default/grub.d"


@frozen
class GrubDefaults:
    """`files`: (path, text) in the order grub-mkconfig sources them (the main file, then the
    drop-ins by name); `main_error`: /etc/default/grub when it exists but cannot be read;
    `dropin_errors`: the drop-ins that could not be read."""

    files: list[tuple[str, str]]
    main_error: Unavailable | None
    dropin_errors: list[Unavailable]

    @property
    def label(self) -> str:
        return self.files[0][0] if len(self.files) == 1 else f"{GRUB} (with grub.d)"


_MEMO: weakref.WeakKeyDictionary[RootFS, tuple[tuple[object, ...], GrubDefaults]] = weakref.WeakKeyDictionary()


def _identity(fs: RootFS, paths: list[str]) -> tuple[object, ...]:
    out: list[object] = []
    for path in paths:
        st = fs.stat(path)
        out.append((path, None) if isinstance(st, Unavailable) else (path, st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def grub_defaults(fs: RootFS) -> GrubDefaults:
    dropins = fs.listdir(GRUB_D)
    names = [f"{GRUB_D}/{n}" for n in dropins if n.endswith(".cfg")] if isinstance(dropins, list) else []
    key = _identity(fs, [GRUB, GRUB_D, *names])
    held = _MEMO.get(fs)
    if held is not None and held[0] == key:
        return held[1]
    files: list[tuple[str, str]] = []
    main_error: Unavailable | None = None
    grub = fs.read_text(GRUB)
    if isinstance(grub, Unavailable):
        if not is_missing(grub):
            main_error = grub
    else:
        files.append((GRUB, grub))
    errors: list[Unavailable] = []
    for path in names:
        text = fs.read_text(path)
        if isinstance(text, Unavailable):
            errors.append(text)
        else:
            files.append((path, text))
    found = GrubDefaults(files, main_error, errors)
    _MEMO[fs] = (key, found)
    return found
