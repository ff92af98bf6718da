"""GRUB's defaults files, read once per scan.

/etc/default/grub and /etc/default/grub.d/*.cfg hold both the kernel's command line
(GRUB_CMDLINE_LINUX*) and, on a Xen host, the hypervisor's (GRUB_CMDLINE_XEN*): the kernel and
the Xen collectors each take their variables from the same texts (parsers.cmdline.grub_variables)
instead of reading the files twice.

The texts are remembered per RootFS: collect_host makes one RootFS per collection, so GRUB is
read once per scan and a later scan (a new RootFS, of this root or another) reads it afresh.
Nothing is stat'ed to decide: a reader that keeps one RootFS across scans must make a new one
per scan to see edited files.
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


#: one scan's answer per RootFS; the entry goes when the scan drops its RootFS
_MEMO: weakref.WeakKeyDictionary[RootFS, GrubDefaults] = weakref.WeakKeyDictionary()


def grub_defaults(fs: RootFS) -> GrubDefaults:
    held = _MEMO.get(fs)
    if held is not None:
        return held
    dropins = fs.listdir(GRUB_D)
    names = [f"{GRUB_D}/{n}" for n in dropins if n.endswith(".cfg")] if isinstance(dropins, list) else []
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
    _MEMO[fs] = found
    return found
