"""Reading the audited host's files, live (`/`) or under an offline root.

An offline root is a mounted image or a copy of a host: its absolute symlinks point at the
*audited* host's paths, so they are resolved inside the root, never on the machine running
hyperward. Nothing here writes; nothing here blocks on a FIFO or reads an unbounded file.
"""

from __future__ import annotations

import errno
import os
import stat

from ..model import Unavailable

MAX_SYMLINKS = 40
DEFAULT_LIMIT = 4 * 1024 * 1024


class _Loop(Exception):
    pass


def _error(path: str, exc: BaseException) -> Unavailable:
    if isinstance(exc, _Loop):
        return Unavailable(path, "invalid", "too many levels of symbolic links (symlink loop)")
    if isinstance(exc, PermissionError):
        return Unavailable(path, "denied", "permission denied")
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return Unavailable(path, "missing", "not found")
    if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        return Unavailable(path, "invalid", "too many levels of symbolic links (symlink loop)")
    if isinstance(exc, OSError):
        return Unavailable(path, "invalid", exc.strerror or str(exc))
    return Unavailable(path, "invalid", str(exc))


def read_fd(fd: int, path: str, limit: int, sized: bool = False) -> bytes | Unavailable:
    """Reads and closes fd: a regular file only (a FIFO would block, a device never end), at
    most `limit` bytes. `sized`: the file's size is believed (not so for /proc and /sys, which
    report 0 or 4096), so a larger (perhaps sparse) file is refused before any of it is read."""
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return Unavailable(path, "invalid", "is a directory, expected a file")
        if not stat.S_ISREG(st.st_mode):
            return Unavailable(path, "invalid", "not a regular file (a FIFO, socket or device); not read")
        if sized and st.st_size > limit:
            return Unavailable(path, "invalid", f"larger than {limit} bytes; not read")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        return _error(path, exc)
    finally:
        os.close(fd)
    if len(data) > limit:
        return Unavailable(path, "invalid", f"larger than {limit} bytes; not read")
    return data


def read_local(path: str, limit: int = DEFAULT_LIMIT) -> bytes | Unavailable:
    """A file on this machine that the config or a glob names (a password file, a scan report,
    an advisory export), read as root without trusting whoever could write its directory: the
    last component is never followed if it is a symbolic link, and only a regular file of at
    most `limit` bytes is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            return Unavailable(path, "invalid", "is a symbolic link; not followed (name the file itself)")
        return _error(path, exc)
    return read_fd(fd, path, limit, sized=True)


class RootFS:
    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self.live = self.root == "/"

    def local_path(self, path: str) -> str:
        """Where `path` (absolute, as the audited host sees it) lives on this machine."""
        if self.live:
            return path
        return self._resolve(path)

    def _resolve(self, path: str) -> str:
        pending = [p for p in path.split("/") if p not in ("", ".")]
        pending.reverse()
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop()
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            try:
                target = os.readlink(candidate)
            except OSError:
                resolved.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise _Loop(path)
            if target.startswith("/"):
                resolved = []
            pending.extend(reversed([p for p in target.split("/") if p not in ("", ".")]))
        return os.path.join(self.root, *resolved)

    _unavailable = staticmethod(_error)

    def read_bytes(self, path: str, limit: int = DEFAULT_LIMIT) -> bytes | Unavailable:
        try:
            local = self.local_path(path)
            fd = os.open(local, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
        except (OSError, _Loop) as exc:
            return self._unavailable(path, exc)
        return read_fd(fd, path, limit)

    def read_text(self, path: str, limit: int = DEFAULT_LIMIT) -> str | Unavailable:
        data = self.read_bytes(path, limit)
        if isinstance(data, Unavailable):
            return data
        if b"\0" in data:
            return Unavailable(path, "invalid", "contains binary data (NUL bytes), expected text")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Unavailable(path, "invalid", f"not UTF-8 text (byte {exc.start})")

    def read_line(self, path: str, limit: int = 64 * 1024) -> str | Unavailable:
        """A one-value file such as a sysfs attribute: its text without surrounding whitespace."""
        text = self.read_text(path, limit)
        if isinstance(text, Unavailable):
            return text
        return text.strip()

    def read_int(self, path: str, limit: int = 256) -> int | Unavailable:
        text = self.read_line(path, limit)
        if isinstance(text, Unavailable):
            return text
        try:
            return int(text)
        except ValueError:
            return Unavailable(path, "invalid", f"expected an integer, found {text[:40]!r}")

    def listdir(self, path: str) -> list[str] | Unavailable:
        try:
            return sorted(os.listdir(self.local_path(path)))
        except (OSError, _Loop) as exc:
            return self._unavailable(path, exc)

    def stat(self, path: str) -> os.stat_result | Unavailable:
        try:
            return os.stat(self.local_path(path))
        except (OSError, _Loop) as exc:
            return self._unavailable(path, exc)

    def exists(self, path: str) -> bool:
        try:
            return os.path.lexists(self.local_path(path))
        except _Loop:
            return True

    def is_masked_unit(self, path: str) -> bool:
        """A systemd unit linked to /dev/null is masked."""
        try:
            local = os.path.join(self.root, path.lstrip("/")) if not self.live else path
            return os.readlink(local) == "/dev/null"
        except OSError:
            return False
