"""What hyperward knows about a Xen dom0: its guests' xl.cfg(5) files, xl.conf, the init
defaults, Xen's command line from every place it is set, and on a live dom0 what `xl info`,
`xl list -l`, `xl getenforce`, xenhypfs and /sys/hypervisor say.

Frozen dataclasses of str/int/bool/None, lists, dict[str, X] and Maybe[X] only, so a snapshot
decodes type-driven like the rest of HostFacts. Secrets never enter them: vncpasswd, spicepasswd
(top level, inside vfb spec strings, and in `xl list -l`'s passwd fields) are replaced by
REDACTED when set, kept as "" when empty (empty means "no password" to xl), so whether one is set
stays a fact and its value is never held.
"""

from __future__ import annotations

from dataclasses import field

from ...facts import Maybe
from ...model import Unavailable
from ...records import frozen

XEN_DIR = "/etc/xen"
REDACTED = "<redacted>"
#: keys whose value is a secret, at top level and inside spec strings
SECRET_KEYS = ("vncpasswd", "spicepasswd")


@frozen
class XenGuestConfig:
    """One domain. `source` "file" (an xl.cfg under /etc/xen or /etc/xen/auto) or "running"
    (`xl list -l`, translated to xl.cfg keys so both are judged alike). `autostart`: linked or
    placed in the xendomains auto directory. `running`: the domain runs (by name in `xl list -l`;
    None where that was not asked). `also` names the other origin of the same domain (the file a
    running domain was created from, when one has its name)."""

    source: str
    path: str
    name: str
    scalars: dict[str, str]
    lists: dict[str, list[str]]
    autostart: bool = False
    running: bool | None = None
    domid: int | None = None
    also: str | None = None

    @property
    def label(self) -> str:
        return self.name

    def get(self, key: str) -> str | None:
        return self.scalars.get(key)

    def items(self, key: str) -> list[str]:
        """A list setting's items; a scalar where a list is expected counts as one item (xl
        accepts `serial="pty"` and `usbdevice="tablet"` for backwards compatibility)."""
        if key in self.lists:
            return list(self.lists[key])
        value = self.scalars.get(key)
        return [value] if value else []


@frozen
class XenCmdline:
    """Xen's command line from one place: `source` names it ("xl info", "/etc/default/grub (with
    grub.d)", an EFI xen.cfg path); `running` whether it is the line the hypervisor booted with."""

    source: str
    running: bool
    tokens: list[str]


@frozen
class XenFacts:
    """`configs`: every guest definition found, Unavailable for those that could not be read or
    parsed (each names its file). `running`: the live `xl list -l` domains (None offline or when xl
    is absent; an Unavailable when it failed). `cmdlines`: every Xen command line found, the running
    one first. `xl_info` and `sys_hypervisor` are None offline. `getenforce`: `xl getenforce` on a
    live dom0 (Enforcing, Permissive, Disabled), None where not asked."""

    installed: bool
    configs: list[Maybe[XenGuestConfig]]
    running: Maybe[list[XenGuestConfig]] | None
    cmdlines: list[Maybe[XenCmdline]]
    xl_conf: Maybe[dict[str, str]]
    default_xen: Maybe[dict[str, str]]
    xendomains: Maybe[dict[str, str]]
    xl_info: Maybe[dict[str, str]] | None
    sys_hypervisor: Maybe[dict[str, str]] | None
    getenforce: Maybe[str] | None = None
    notes: list[str] = field(default_factory=list)
    #: live hypervisor values from xenhypfs (path -> value, e.g. "/params/ept": "exec-sp=0"):
    #: what `xl set-parameters` changed since boot; None offline or without xenhypfs
    hypfs: Maybe[dict[str, str]] | None = None

    def guests(self) -> list[XenGuestConfig]:
        """The domains judged: each running domain as it runs (its file, if any, named in
        `also`), and each defined domain that is not running as its file says."""
        running = self.running if isinstance(self.running, list) else []
        names = {d.name for d in running}
        files = [c for c in self.configs if isinstance(c, XenGuestConfig)]
        return [*running, *(c for c in files if c.name not in names)]

    def unreadable(self) -> list[Unavailable]:
        out = [c for c in self.configs if isinstance(c, Unavailable)]
        if isinstance(self.running, Unavailable):
            out.append(self.running)
        return out
