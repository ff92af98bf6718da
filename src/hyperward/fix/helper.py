"""The edits a fix artifact makes, as one stdlib-only program.

The bash artifact embeds this file verbatim and runs it as `python3 HELPER OP ARGS`; the planner
imports the same functions to compute, before anything runs, what each edit turns a file into (the
hashes a later block accepts as "this artifact's own earlier state"). One implementation means the
script cannot drift from the plan, and the Ansible form uses the same regular expressions with the
`replace` and `lineinfile` modules, whose semantics `replace_text` and `ensure_line_text` copy.

Every path is taken relative to HW_ROOT ('' or unset: the live host) and walked one component at a
time with O_NOFOLLOW: a symlink anywhere on the way (an attacker's link in an offline tree pointing
at the machine running the fix) is refused, so nothing outside the root is ever opened for writing.
A file is changed only when the edit changes it; then only when its sha256 is one the plan expects
(the file as scanned, or as an earlier block of the same artifact left it), else the op exits 3
("refused") naming the file and both hashes. Before the first change to a file in a run, a copy
goes to HW_BACKUP_DIR. Writes are a new file in the same directory renamed over the old one, with
the old one's mode and owner.

Exit codes: 0 done or already in place, 3 refused (precondition), 4 could not write (read-only,
permission), 2 usage.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import stat
import sys

ABSENT = "absent"
REFUSED = 3
CANNOT = 4


class Refused(Exception):
    """The plan's precondition does not hold: the block must not change anything."""


class Cannot(Exception):
    """The change was allowed but the system would not take it (read-only file system, EPERM)."""


# --- pure text edits (shared with the planner and mirrored by the Ansible form) -------------------

def replace_text(text: str, pattern: str, replacement: str) -> str:
    """ansible.builtin.replace: every match of PATTERN (multi-line mode) becomes REPLACEMENT."""
    return re.compile(pattern, re.MULTILINE).sub(replacement, text)


def ensure_line_text(text: str, line: str) -> str:
    """ansible.builtin.lineinfile with only `line`: appended at the end unless a line equals it."""
    lines = text.splitlines()
    if line in (raw.rstrip("\r\n") for raw in lines):
        return text
    if text and not text.endswith("\n"):
        text += "\n"
    return text + line + "\n"


def sha256(data: bytes | None) -> str:
    return ABSENT if data is None else hashlib.sha256(data).hexdigest()


# --- paths inside the root, never through a symlink ---------------------------------------------

#: the planner sets this to read the tree it plans for; the script leaves it None (HW_ROOT decides)
ROOT: str | None = None


def _root() -> str:
    return ROOT or os.environ.get("HW_ROOT", "") or "/"


def _parts(path: str) -> list[str]:
    if not path.startswith("/"):
        raise Refused(f"{path}: not an absolute path")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts or not parts:
        raise Refused(f"{path}: not a plain path")
    return parts


def open_parent(path: str, create: bool = False) -> tuple[int, str]:
    """A descriptor of PATH's directory inside the root, and the last component; every directory on
    the way is opened with O_NOFOLLOW (a symlink is refused). CREATE makes missing directories 0755."""
    parts = _parts(path)
    fd = os.open(_root(), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except OSError as exc:
                    raise Cannot(f"cannot create directory {part} on the way to {path}: {exc.strerror}") from None
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.fchmod(nxt, 0o755)  # the script runs under umask 077; a config directory is 0755
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Refused(f"{path}: {part} is a symbolic link or not a directory; not followed") from None
                raise
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def read_file(path: str) -> bytes | None:
    """The file's bytes, None when it does not exist; a symlink or a non-regular file is refused."""
    try:
        dir_fd, name = open_parent(path)
    except FileNotFoundError:
        return None
    try:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused(f"{path} is a symbolic link; not followed") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise Refused(f"{path} is not a regular file")
            return handle.read(64 * 1024 * 1024)
    finally:
        os.close(dir_fd)


def _backup(path: str, data: bytes, st: os.stat_result | None) -> None:
    where = os.environ.get("HW_BACKUP_DIR")
    if not where:
        raise Refused("HW_BACKUP_DIR is not set: no change without a backup")
    os.makedirs(where, 0o700, exist_ok=True)
    target = os.path.join(where, path.strip("/").replace("/", "%"))
    if os.path.lexists(target):
        return
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    if st is not None:
        with open(target + ".mode", "w", encoding="ascii") as handle:
            handle.write(f"{stat.S_IMODE(st.st_mode):04o} {st.st_uid}:{st.st_gid}\n")


def write_file(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace (or create) PATH inside the root with DATA: a new file beside it, the old one's mode
    and owner (MODE for a new file), renamed over it (a rename replaces a symlink, never follows it)."""
    try:
        dir_fd, name = open_parent(path, create=True)
    except PermissionError as exc:
        raise Cannot(f"cannot write {path}: {exc.strerror}") from None
    try:
        try:
            st: os.stat_result | None = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise Refused(f"{path} is not a regular file (or is a symbolic link); not replaced")
        old = read_file(path)
        if old is not None:
            _backup(path, old, st)
        tmp = f".{name}.hyperward-{secrets.token_hex(4)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise Cannot(f"cannot write {path}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if st is not None:
                    os.fchown(handle.fileno(), st.st_uid, st.st_gid)
                os.fchmod(handle.fileno(), stat.S_IMODE(st.st_mode) if st is not None else mode)
                handle.flush()
                os.fsync(handle.fileno())
            if st is not None and _immutable_or_readonly(dir_fd, name):
                raise Cannot(f"cannot write {path}: the file is read-only (immutable)")
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
    except OSError as exc:
        if isinstance(exc, (Refused, Cannot)):
            raise
        raise Cannot(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(dir_fd)


def _immutable_or_readonly(dir_fd: int, name: str) -> bool:
    """A rename would replace a file that cannot be written in place (chattr +i, a read-only file
    for a non-root user): opening it for writing is the honest test of "read-only"."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EPERM, errno.EACCES, errno.ETXTBSY):
            return True
        raise
    os.close(fd)
    return False


def _changed(path: str, old: bytes | None, new: bytes, expect: list[str], mode: int = 0o644) -> str:
    if old == new:
        return f"already in place: {path}"
    now = sha256(old)
    if now not in expect:
        raise Refused(f"{path} changed since the scan (sha256 now {now[:16]}..., the plan expects "
                      f"{' or '.join(e[:16] + ('...' if e != ABSENT else '') for e in expect)}); this block changes nothing")
    write_file(path, new, mode)
    return f"changed: {path}"


# --- operations ---------------------------------------------------------------------------------

def op_replace(path: str, pattern: str, replacement: str, expect: list[str]) -> str:
    old = read_file(path)
    if old is None:
        return f"nothing to change: {path} does not exist"
    new = replace_text(old.decode("utf-8", "surrogateescape"), pattern, replacement).encode("utf-8", "surrogateescape")
    return _changed(path, old, new, expect)


def op_ensure_line(path: str, line: str, expect: list[str]) -> str:
    old = read_file(path)
    text = "" if old is None else old.decode("utf-8", "surrogateescape")
    return _changed(path, old, ensure_line_text(text, line).encode("utf-8", "surrogateescape"), expect)


def op_write(path: str, mode: str, content: str, expect: list[str]) -> str:
    return _changed(path, read_file(path), content.encode("utf-8"), expect + [ABSENT], int(mode, 8))


def op_chmod(path: str, mode: str, scanned: str, kind: str) -> str:
    """MODE unless the file's mode is no longer the one scanned (then refused); a symlink, or a
    directory where a file was scanned, is refused."""
    target, before = int(mode, 8), int(scanned, 8)
    dir_fd, name = open_parent(path)
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        want = stat.S_ISDIR if kind == "dir" else stat.S_ISREG
        if stat.S_ISLNK(st.st_mode) or not want(st.st_mode):
            raise Refused(f"{path} is no longer a {'directory' if kind == 'dir' else 'regular file'} (or is a symbolic link)")
        now = stat.S_IMODE(st.st_mode)
        if now == target:
            return f"already in place: {path} mode {target:04o}"
        if now != before:
            raise Refused(f"{path} changed since the scan (mode now {now:04o}, scanned {before:04o}); not changed")
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_DIRECTORY if kind == "dir" else 0)
        fd = os.open(name, flags, dir_fd=dir_fd)
        try:
            if not os.path.samestat(os.fstat(fd), st):
                raise Refused(f"{path} was replaced while being changed")
            try:
                os.fchmod(fd, target)
            except OSError as exc:
                raise Cannot(f"cannot chmod {path}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return f"changed: {path} mode {now:04o} -> {target:04o}"
    finally:
        os.close(dir_fd)


def op_xml(path: str, expect: list[str], edits: list[str], absolute: bool = False) -> str:
    """Domain XML edits (EDIT = ACTION|XPATH[|ARG|VALUE]): set/del an attribute, add a child
    element, remove elements. ABSOLUTE: a copy the script itself made (virsh dumpxml) outside
    HW_ROOT; its first edit may be watch=FILE, the definition whose hash is the precondition."""
    watch = None
    if edits and edits[0].startswith("watch="):
        watch = edits.pop(0).removeprefix("watch=")
    if absolute:
        with open(path, "rb") as handle:
            old: bytes | None = handle.read()
    else:
        old = read_file(path)
    if old is None:
        raise Refused(f"{path} does not exist")
    new = edit_xml(old, edits)
    if absolute:
        if new == old:
            return f"already in place: {path}"
        if watch is not None and expect and sha256(read_file(watch)) not in expect + _defined(watch):
            raise Refused(f"{watch} changed since the scan (sha256 now {sha256(read_file(watch))[:16]}...); this block changes nothing")
        with open(path, "wb") as handle:
            handle.write(new)
        return f"changed: {path}"
    return _changed(path, old, new, expect)


def _defined(watch: str) -> list[str]:
    """The hashes the definition file had right after this run's own `virsh define`s (libvirt
    rewrites the file in its own format, which the plan cannot foresee): an earlier block of the
    same run, not someone else, changed it."""
    where = os.environ.get("HW_BACKUP_DIR")
    if not where:
        return []
    try:
        with open(os.path.join(where, os.path.basename(watch) + ".defined"), encoding="ascii") as handle:
            return [line.strip() for line in handle if line.strip()]
    except OSError:
        return []


def edit_xml(data: bytes, edits: list[str]) -> bytes:
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        # libvirt never writes a DTD; one here is someone's entity trick, not a definition
        raise Refused("the domain XML has a DOCTYPE or ENTITY declaration; not edited")
    ET.register_namespace("qemu", "http://libvirt.org/schemas/domain/qemu/1.0")
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.fromstring(data, parser=parser)
    changed = False
    for edit in edits:
        action, xpath, *rest = edit.split("|")
        found = [root] if xpath == "." else root.findall(xpath)
        for element in found:
            if action == "set" and element.get(rest[0]) != rest[1]:
                element.set(rest[0], rest[1])
                changed = True
            elif action == "del" and rest[0] in element.attrib:
                del element.attrib[rest[0]]
                changed = True
            elif action == "add" and element.find(rest[0]) is None:
                ET.SubElement(element, rest[0])
                changed = True
            elif action == "remove":
                for parent in root.iter():
                    if element in list(parent):
                        parent.remove(element)
                        changed = True
    if not changed:
        return data
    return ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: helper OP PATH ...", file=sys.stderr)
        return 2
    op, path, *args = argv
    expect: list[str] = []
    if args and args[0].startswith("--expect="):
        expect = [e for e in args.pop(0).removeprefix("--expect=").split(",") if e]
    try:
        if op == "replace":
            said = op_replace(path, args[0], args[1], expect)
        elif op == "ensure-line":
            said = op_ensure_line(path, args[0], expect)
        elif op == "write":
            said = op_write(path, args[0], args[1], expect)
        elif op == "chmod":
            said = op_chmod(path, args[0], args[1], args[2])
        elif op in ("xml", "xml-copy"):
            said = op_xml(path, expect, args, absolute=op == "xml-copy")
        elif op == "hash":
            said = sha256(read_file(path))
        else:
            print(f"unknown op {op}", file=sys.stderr)
            return 2
    except Refused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return REFUSED
    except Cannot as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return CANNOT
    except OSError as exc:
        print(f"failed: {path}: {exc.strerror or exc}", file=sys.stderr)
        return CANNOT
    print(f"  {said}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
