"""Every file hyperward writes goes through here.

hyperward runs as root and writes reports, snapshots, baselines, alert files and databases to paths
an operator names, often in shared directories. A plain ``open(path, "w")`` as root follows a symlink
a local user planted and truncates its target (a report written through a link to
/etc/ld.so.preload is root code execution), and a file created 0644 hands a snapshot to every user.
So a write here:

- opens the target's directory once and works relative to that descriptor, so renaming a parent
  directory half-way cannot redirect it;
- refuses a directory that another user could change under us: owned by someone other than us or
  root, or group/world-writable without the sticky bit (databases, whose journals SQLite creates by
  name beside them, refuse group/world-writable directories even with the sticky bit);
- refuses an existing target that is a symlink, not a regular file, or owned by neither us nor root;
- writes a fresh file created with O_EXCL|O_NOFOLLOW and an explicit mode (0600 unless a group is
  configured: then 0640 and that group) and renames it over the target, so a reader sees the old file
  or the whole new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import grp
import os
import secrets
import stat
from collections.abc import Iterator
from typing import IO

from .records import frozen

PRIVATE_FILE = 0o600
GROUP_FILE = 0o640
STATE_DIR = 0o750


class UnsafePath(OSError):
    """A path hyperward will not write to; the message is one line naming it and why."""


@frozen
class Ownership:
    """Who may read what hyperward writes: nobody but the owner, or also one configured group."""

    group: str | None = None

    def mode(self) -> int:
        return GROUP_FILE if self.group else PRIVATE_FILE

    def gid(self) -> int | None:
        if not self.group:
            return None
        try:
            return grp.getgrnam(self.group).gr_gid
        except KeyError:
            raise UnsafePath(f"group {self.group!r} (configured for hyperward's files) does not exist") from None


PRIVATE = Ownership()


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _check_directory(fd: int, path: str, strict: bool) -> None:
    st = os.fstat(fd)
    if not _trusted_owner(st.st_uid):
        raise UnsafePath(f"refusing to write in {path}: the directory belongs to uid {st.st_uid}, who could swap the file")
    shared = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if shared and (strict or not st.st_mode & stat.S_ISVTX):
        who = "world" if st.st_mode & stat.S_IWOTH else "group"
        sticky = "" if st.st_mode & stat.S_ISVTX else " without the sticky bit"
        raise UnsafePath(f"refusing to write in {path}: the directory is {who}-writable{sticky} "
                         f"(mode {stat.S_IMODE(st.st_mode):04o}), so another user could replace the file")


def _check_existing(dir_fd: int, name: str, path: str) -> os.stat_result | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"refusing to write {path}: it is a symbolic link")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"refusing to write {path}: not a regular file")
    if not _trusted_owner(st.st_uid):
        raise UnsafePath(f"refusing to write {path}: it belongs to uid {st.st_uid}, not to root or this user")
    return st


def _split(path: str) -> tuple[str, str]:
    directory, name = os.path.split(os.path.abspath(path))
    if not name or name in (".", ".."):
        raise UnsafePath(f"refusing to write {path}: not a file name")
    return directory, name


@contextlib.contextmanager
def _directory(directory: str, strict: bool) -> Iterator[int]:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise UnsafePath(f"cannot write in {directory}: no such directory") from None
    except NotADirectoryError:
        raise UnsafePath(f"cannot write in {directory}: not a directory") from None
    try:
        _check_directory(fd, directory, strict)
        yield fd
    finally:
        os.close(fd)


def _apply_ownership(fd: int, ownership: Ownership) -> None:
    gid = ownership.gid()
    if gid is not None:
        os.fchown(fd, -1, gid)
    os.fchmod(fd, ownership.mode())


def write_bytes(path: str, data: bytes, ownership: Ownership = PRIVATE) -> None:
    """Replace PATH atomically with DATA (see the module's docstring for what is refused)."""
    directory, name = _split(path)
    with _directory(directory, strict=False) as dir_fd:
        _check_existing(dir_fd, name, path)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE, dir_fd=dir_fd)
        try:
            try:
                _apply_ownership(fd, ownership)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dir_fd)
            raise


def write_text(path: str, text: str, ownership: Ownership = PRIVATE) -> None:
    write_bytes(path, text.encode("utf-8"), ownership)


def open_append(path: str, ownership: Ownership = PRIVATE) -> IO[str]:
    """A text file opened for appending (the monitor's JSON-lines alerts): created with the private
    mode when missing, never through a symlink, and only an existing regular file of ours or root's."""
    directory, name = _split(path)
    with _directory(directory, strict=False) as dir_fd:
        _check_existing(dir_fd, name, path)
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY,
                     PRIVATE_FILE, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not _trusted_owner(st.st_uid):
            raise UnsafePath(f"refusing to append to {path}: not a regular file of root or this user")
        if st.st_size == 0:
            _apply_ownership(fd, ownership)
        return os.fdopen(fd, "a", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _own_state_directory(path: str) -> bool:
    from .paths import state_directories

    return path in state_directories()


def ensure_directory(path: str, mode: int = STATE_DIR) -> None:
    """Create a directory hyperward writes in (and missing parents) with MODE; an existing one must be
    a directory that only we or root can change. hyperward's own state directory, made 0755 by
    earlier versions, is brought to MODE."""
    path = os.path.abspath(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent != path:
            ensure_directory(parent, mode)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            pass
        st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        # A symlinked directory an administrator made (/var/lib -> /srv/var/lib) is fine as long as
        # what it points to passes the same test; the descriptor below checks the real directory.
        pass
    elif not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{path} is not a directory")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        real = os.fstat(fd)
        if not _trusted_owner(real.st_uid):
            raise UnsafePath(f"refusing to use {path}: the directory belongs to uid {real.st_uid}")
        if real.st_mode & stat.S_IWOTH and not real.st_mode & stat.S_ISVTX:
            raise UnsafePath(f"refusing to use {path}: the directory is world-writable without the sticky bit")
        if real.st_uid == os.geteuid() and stat.S_IMODE(real.st_mode) & ~mode & 0o777 and _own_state_directory(path):
            os.fchmod(fd, stat.S_IMODE(real.st_mode) & mode)
    finally:
        os.close(fd)


def prepare_database(path: str, ownership: Ownership = PRIVATE) -> None:
    """Make PATH safe to hand to sqlite3.connect for writing: its directory exists and nobody else
    can write in it (SQLite creates -journal and -wal files by name beside it), and the file is either
    absent (then created here, O_EXCL, with the private mode) or a regular file of ours or root's."""
    directory, name = _split(path)
    ensure_directory(directory)
    with _directory(directory, strict=True) as dir_fd:
        existing = _check_existing(dir_fd, name, path)
        if existing is not None:
            if existing.st_uid == os.geteuid() and stat.S_IMODE(existing.st_mode) & ~ownership.mode():
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    os.fchmod(fd, stat.S_IMODE(existing.st_mode) & ownership.mode())
                finally:
                    os.close(fd)
            return
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE, dir_fd=dir_fd)
        except FileExistsError:
            _check_existing(dir_fd, name, path)
            return
        try:
            _apply_ownership(fd, ownership)
        finally:
            os.close(fd)


def temporary_beside(path: str, ownership: Ownership = PRIVATE) -> str:
    """A new empty private file in PATH's directory (for a database built whole, then renamed over
    PATH by replace_with)."""
    directory, name = _split(path)
    ensure_directory(directory)
    with _directory(directory, strict=True) as dir_fd:
        _check_existing(dir_fd, name, path)
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE, dir_fd=dir_fd)
        try:
            _apply_ownership(fd, ownership)
        finally:
            os.close(fd)
    return os.path.join(directory, tmp)


def replace_with(tmp: str, path: str) -> None:
    directory, name = _split(path)
    with _directory(directory, strict=True) as dir_fd:
        _check_existing(dir_fd, name, path)
        os.rename(os.path.basename(tmp), name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def discard(tmp: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp + suffix)


def read_state(path: str, limit: int) -> bytes:
    """One of hyperward's own state files (a baseline): a regular file only (a FIFO must not hang a
    scan, a device must not be read without end), at most LIMIT bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UnsafePath(f"{path}: not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafePath(f"{path}: larger than {limit // (1024 * 1024)} MiB")
    return data


def require_regular(path: str) -> None:
    """Before SQLite opens PATH by name: it must be a regular file (a FIFO would block the open
    for ever, a device would be read as a database). Raises FileNotFoundError, PermissionError or
    UnsafePath."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{path}: not a regular file")
    finally:
        os.close(fd)
