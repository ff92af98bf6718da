"""A fix is data: per failing result, a neutral edit plan that renderers turn into bash or Ansible.

A fixer (one per check ID, registered like the checks) turns (finding, context) into edits:
SetKey, ChMod, WriteFile, Sysctl, ModprobeOption, GrubCmdline, DomainXmlEdit, Manual, and says what
the change needs to take effect (a restart, a reboot, a guest restart) without ever doing it.
Each edit is lowered to a few text-level ops (replace, ensure-line, write, chmod, xml) whose exact
effect helper.py computes here, at planning time, from the file as read now: every op carries the
sha256 values it accepts (the file as scanned, or as an earlier block of the same artifact leaves
it), so a file changed between scan and fix makes that block refuse instead of editing blind.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..records import frozen
from . import helper

Syntax = Literal["libvirt", "sshd", "keyword", "equals", "colon", "apt"]


@frozen
class Failing:
    """A failing result as a fixer sees it: from a scan just run or a saved JSON report."""

    check_id: str
    resource: str
    message: str
    remediation: str
    details: dict[str, Any]


# --- the neutral plan ---------------------------------------------------------------------------

REMOVE = None


@frozen
class SetKey:
    """KEY = VALUE in a configuration file (VALUE None: every assignment of KEY commented out)."""

    file: str
    key: str
    value: str | None
    syntax: Syntax
    append: bool = True  # add the line at the end when no assignment exists (not inside sshd Match blocks)


@frozen
class ChMod:
    path: str
    mode: int
    scanned: int
    kind: Literal["file", "dir"]


@frozen
class WriteFile:
    """A whole file hyperward owns (a drop-in): created, or left alone when it already says this."""

    path: str
    content: str
    mode: int = 0o644


@frozen
class Sysctl:
    key: str
    value: str


@frozen
class ModprobeOption:
    """options MODULE PARAM=VALUE for the next load: rewritten where modprobe.d already sets it,
    else in a file of its own."""

    module: str
    param: str
    value: str
    files: tuple[str, ...]


@frozen
class GrubCmdline:
    """A token removed from GRUB_CMDLINE_LINUX* in these files (/etc/default/grub, grub.d/*.cfg)."""

    files: tuple[str, ...]
    remove: str


@frozen
class DomainXmlEdit:
    """Edits of one domain's definition: offline the file under /etc/libvirt/qemu, live an edited
    copy of `virsh dumpxml --inactive` that `virsh define` takes only when the user applies."""

    domain: str
    file: str
    edits: tuple[str, ...]  # helper.edit_xml's ACTION|XPATH|ARG|VALUE


@frozen
class Manual:
    text: str


Edit = SetKey | ChMod | WriteFile | Sysctl | ModprobeOption | GrubCmdline | DomainXmlEdit | Manual


@frozen
class Needs:
    """What makes a change take effect; written as an instruction, never run by the artifact."""

    kind: Literal["restart", "reload", "reboot", "guest-restart", "command"]
    what: str

    def describe(self) -> str:
        return {
            "restart": f"restart {self.what} (systemctl restart {self.what})",
            "reload": f"reload {self.what} (systemctl reload {self.what})",
            "reboot": f"reboot ({self.what})" if self.what else "reboot",
            "guest-restart": f"restart {self.what or 'each running guest'} (shut down and start; a reboot inside the guest is not enough)",
            "command": f"run: {self.what}",
        }[self.kind]


@frozen
class Fix:
    edits: tuple[Edit, ...]
    needs: tuple[Needs, ...] = ()


# --- ops: what edits mean for files --------------------------------------------------------------

@dataclass
class Op:
    kind: Literal["replace", "ensure-line", "write", "chmod", "xml"]
    path: str
    args: tuple[str, ...]
    expect: tuple[str, ...] = ()
    domain: str | None = None  # xml ops: the live domain to dumpxml/define


@dataclass
class Block:
    """One failing result and what the artifact does about it."""

    check_id: str
    resource: str
    why: str
    edits: tuple[Edit, ...]
    needs: tuple[Needs, ...]
    ops: list[Op] = field(default_factory=list)
    #: why the planner itself will not write this block (a path through a symlink, unreadable file)
    refused: str | None = None

    @property
    def manual(self) -> list[str]:
        return [e.text for e in self.edits if isinstance(e, Manual)]

    @property
    def automatic(self) -> bool:
        return bool(self.ops) and self.refused is None


FixerFn = Callable[[Failing, "Context"], Fix | None]
_FIXERS: dict[str, FixerFn] = {}


def fixer(*check_ids: str) -> Callable[[FixerFn], FixerFn]:
    """Register FN as the fixer of these checks (one fixer per check, found from the ID)."""

    def register(fn: FixerFn) -> FixerFn:
        for cid in check_ids:
            if cid in _FIXERS:
                raise RuntimeError(f"fixer for {cid} registered twice")
            _FIXERS[cid] = fn
        return fn

    return register


def fixers() -> dict[str, FixerFn]:
    import importlib
    import pkgutil

    from . import families

    for info in pkgutil.iter_modules(families.__path__):
        importlib.import_module(f"{families.__name__}.{info.name}")
    return dict(sorted(_FIXERS.items()))


class Context:
    """What fixers may read: the tree the plan is for (never through a symlink) and the facts when
    the plan comes from a scan (None from a saved report)."""

    def __init__(self, root: str, facts: Any = None) -> None:
        self.root = root
        self.facts = facts

    def read(self, path: str) -> str | None:
        helper.ROOT = self.root
        try:
            data = helper.read_file(path)
        except (helper.Refused, OSError):
            return None
        finally:
            helper.ROOT = None
        return None if data is None else data.decode("utf-8", "surrogateescape")

    def listdir(self, path: str) -> list[str]:
        from ..collect.fs import RootFS

        names = RootFS(self.root).listdir(path)
        return sorted(names) if isinstance(names, list) else []

    def exists(self, path: str) -> bool:
        from ..collect.fs import RootFS

        return RootFS(self.root).exists(path)

    def kind(self, path: str) -> Literal["file", "dir"] | None:
        """What PATH is, reached without following a symlink (a link is neither)."""
        import os
        import stat

        helper.ROOT = self.root
        try:
            dir_fd, name = helper.open_parent(path)
        except (helper.Refused, OSError):
            return None
        finally:
            helper.ROOT = None
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return None
        finally:
            os.close(dir_fd)
        if stat.S_ISDIR(st.st_mode):
            return "dir"
        return "file" if stat.S_ISREG(st.st_mode) else None


# --- lowering ------------------------------------------------------------------------------------

SAFE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*$")
SAFE_VALUE = re.compile(r'^[A-Za-z0-9_.,:@/+="\[\] -]*$')


def key_pattern(key: str, syntax: Syntax) -> str:
    k = re.escape(key)
    if syntax == "libvirt":
        # a list value may span lines up to its closing bracket
        return rf"^[ \t]*{k}[ \t]*=[ \t]*(?:\[[^\]]*\][^\n]*|[^\n]*)$"
    if syntax == "equals":
        return rf"^[ \t]*{k}[ \t]*=[^\n]*$"
    if syntax == "sshd":
        return rf"(?i)^([ \t]*){k}(?:[ \t]+|[ \t]*=[ \t]*)[^\n]*$"
    if syntax == "colon":
        return rf"^[ \t]*{k}:[ \t]*[^\n]*$"
    if syntax == "apt":
        return rf"^[ \t]*{k}[ \t]+\"[^\"\n]*\"[ \t]*;[^\n]*$"
    return rf"^[ \t]*{k}[ \t]+[^\n]*$"


def key_line(key: str, value: str, syntax: Syntax) -> str:
    if syntax == "colon":
        return f"{key}: {value}"
    if syntax == "apt":
        return f'{key} "{value}";'
    return f"{key} = {value}" if syntax in ("libvirt", "equals") else f"{key} {value}"


def lower(edit: Edit, check_id: str) -> list[Op]:
    if isinstance(edit, SetKey):
        if not SAFE_KEY.match(edit.key) or (edit.value is not None and not SAFE_VALUE.match(edit.value)):
            raise ValueError(f"unsafe key or value for {edit.file}: {edit.key!r}")
        pattern = key_pattern(edit.key, edit.syntax)
        if edit.value is None:
            return [Op("replace", edit.file, (pattern, f"# {edit.key}: removed by hyperward fix ({check_id})"))]
        line = key_line(edit.key, edit.value, edit.syntax)
        ops = [Op("replace", edit.file, (pattern, (r"\1" if edit.syntax == "sshd" else "") + line))]
        if edit.append:
            ops.append(Op("ensure-line", edit.file, (line,)))
        return ops
    if isinstance(edit, ChMod):
        return [Op("chmod", edit.path, (f"{edit.mode:04o}", f"{edit.scanned:04o}", edit.kind))]
    if isinstance(edit, WriteFile):
        return [Op("write", edit.path, (f"{edit.mode:04o}", edit.content))]
    if isinstance(edit, Sysctl):
        name = edit.key.replace("/", ".")
        return [Op("write", f"/etc/sysctl.d/90-hyperward-{name}.conf", ("0644", f"{name} = {edit.value}\n"))]
    if isinstance(edit, ModprobeOption):
        module = re.escape(edit.module).replace("_", "[_-]")
        param = re.escape(edit.param)
        if edit.files:
            pattern = rf"^([ \t]*options[ \t]+{module}[ \t](?:[^\n]*[ \t])?){param}=[^ \t\n]*"
            return [Op("replace", f, (pattern, rf"\g<1>{edit.param}={edit.value}")) for f in edit.files]
        return [Op("write", f"/etc/modprobe.d/hyperward-{edit.module}-{edit.param}.conf",
                   ("0644", f"options {edit.module} {edit.param}={edit.value}\n"))]
    if isinstance(edit, GrubCmdline):
        token = re.escape(edit.remove)
        pattern = rf"^((?:export[ \t]+)?GRUB_CMDLINE_LINUX(?:_DEFAULT)?=[^\n]*?)[ \t]*(?<![^ \t\"'$]){token}(?![^ \t\"'\n])"
        return [Op("replace", f, (pattern, r"\g<1>")) for f in edit.files]
    if isinstance(edit, DomainXmlEdit):
        return [Op("xml", edit.file, edit.edits, domain=edit.domain)]
    return []


def _apply(op: Op, data: bytes | None) -> bytes | None:
    """What OP turns DATA into (the same code the script runs)."""
    text = None if data is None else data.decode("utf-8", "surrogateescape")
    if op.kind == "replace":
        return None if text is None else helper.replace_text(text, op.args[0], op.args[1]).encode("utf-8", "surrogateescape")
    if op.kind == "ensure-line":
        return helper.ensure_line_text(text or "", op.args[0]).encode("utf-8", "surrogateescape")
    if op.kind == "write":
        return op.args[1].encode("utf-8")
    if op.kind == "xml":
        return None if data is None else helper.edit_xml(data, list(op.args))  # may raise Refused: the block is refused
    return data


def build(failing: Iterable[Failing], context: Context, only: Sequence[str] = ()) -> list[Block]:
    """One block per failing result (of the --only checks); then the hash chain of every file the
    artifact edits, so each op accepts the file as scanned or as this artifact left it."""
    registered = fixers()
    wanted = {o.upper() for o in only}
    blocks: list[Block] = []
    for f in failing:
        if wanted and f.check_id not in wanted:
            continue
        fn = registered.get(f.check_id)
        fix = fn(f, context) if fn is not None else None
        if fix is None:
            fix = Fix((Manual(f.remediation or "no automatic fix: see hyperward explain " + f.check_id),))
        block = Block(f.check_id, f.resource, f.message, fix.edits, fix.needs)
        try:
            for edit in fix.edits:
                block.ops.extend(lower(edit, f.check_id))
        except ValueError as exc:
            block.refused, block.ops = str(exc), []
        blocks.append(block)
    _chain(blocks, context)
    return blocks


def _chain(blocks: list[Block], context: Context) -> None:
    states: dict[str, list[bytes | None]] = {}
    current: dict[str, bytes | None] = {}
    ops_of: dict[str, list[Op]] = {}
    helper.ROOT = context.root
    try:
        for block in blocks:
            for op in block.ops:
                if op.kind == "chmod":
                    continue
                if op.path not in current:
                    try:
                        current[op.path] = helper.read_file(op.path)
                    except (helper.Refused, OSError) as exc:
                        block.refused = f"{op.path}: {exc}"
                        continue
                    states[op.path] = [current[op.path]]
                try:
                    new = _apply(op, current[op.path])
                except (helper.Refused, ValueError, SyntaxError) as exc:
                    block.refused = f"{op.path}: {exc}"
                    continue
                if new != current[op.path]:
                    current[op.path] = new
                    states[op.path].append(new)
                ops_of.setdefault(op.path, []).append(op)
    finally:
        helper.ROOT = None
    for path, ops in ops_of.items():
        hashes = tuple(dict.fromkeys(helper.sha256(s) for s in states[path]))
        for op in ops:
            op.expect = hashes
    for block in blocks:
        if block.refused:
            block.ops = []
