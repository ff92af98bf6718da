"""The one place collectors run commands: an argument list (never a shell), a program from the
system path (never whatever the caller's PATH puts first: hyperward runs as root and a user's
PATH may name a directory that user writes), a fixed PATH and a minimal environment for the
child, a timeout, no terminal input, and the outcome as text or an Unavailable that names the
command."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess

from ..model import Unavailable

#: commands started ahead of the collector that reads them (start()), by argument list
_STARTED: dict[tuple[str, ...], subprocess.Popen[str]] = {}

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 10.0


def find(name: str) -> str | None:
    """A system tool by name, looked up on SYSTEM_PATH only."""
    return shutil.which(name, path=SYSTEM_PATH)


def executable(path: str) -> str | None:
    """Why an absolute program path from the config cannot be run as root, or None when it can:
    it must be a regular executable file owned by root (or by the user running hyperward) that
    nobody else can rewrite."""
    if not os.path.isabs(path):
        return "not an absolute path"
    try:
        st = os.stat(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111:
        return "not an executable file"
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        return "writable by a user other than root; refused"
    return None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a child sees: the system PATH, a UTF-8 C locale and the running user's own home
    (from the password database, not $HOME), plus the variables the caller names. Nothing else
    is inherited: RESTIC_PASSWORD_COMMAND, BORG_RSH, LD_PRELOAD and the like in the caller's
    environment would otherwise run code or change what the tool does."""
    try:
        home = pwd.getpwuid(os.geteuid()).pw_dir or "/"
    except KeyError:
        home = "/"
    return {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": home, **(extra or {})}


def start(cmd: list[str]) -> None:
    """Begin a read-only command now whose output a collector asks for later with run(cmd): sshd -T,
    nft and ip take more wall time on a live scan than the Python around them, so they work while
    the rest is collected. A command started and never asked for is ended by discard_started()."""
    key = tuple(cmd)
    if not os.path.isabs(cmd[0]) or key in _STARTED:
        return
    try:
        _STARTED[key] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                         text=True, env=child_env())
    except OSError:
        pass  # run() starts it again and names the error


def discard_started() -> None:
    for proc in _STARTED.values():
        proc.kill()
        proc.communicate()
    _STARTED.clear()


def run(cmd: list[str], what: str, *, timeout: float = DEFAULT_TIMEOUT, input: str | None = None,
        env: dict[str, str] | None = None) -> str | Unavailable:
    """stdout of a successful run; otherwise an `invalid` Unavailable with the command's last
    error line (stderr is never passed on whole: it may echo what the command was given).
    `env` is added to child_env(), never a replacement for it. The program must be an absolute
    path (from find() or a checked config path)."""
    if not os.path.isabs(cmd[0]):
        return Unavailable(what, "invalid", f"{cmd[0]}: not an absolute program path; not run")
    started = _STARTED.pop(tuple(cmd), None) if input is None and env is None else None
    try:
        if started is not None:
            try:
                stdout, stderr = started.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                started.kill()
                started.communicate()
                raise
            done = subprocess.CompletedProcess(cmd, started.returncode, stdout, stderr)
        else:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=child_env(env), input=input,
                                  stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Unavailable(what, "invalid", f"{os.path.basename(cmd[0])} did not answer within {timeout:.0f} s")
    except OSError as exc:
        return Unavailable(what, "invalid", f"cannot run {os.path.basename(cmd[0])} ({exc.strerror or exc})")
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return Unavailable(what, "invalid", f"{os.path.basename(cmd[0])} failed: {(lines[-1] if lines else 'exit ' + str(done.returncode))[:200]}")
    return done.stdout
