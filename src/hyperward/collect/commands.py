"""The one place collectors run commands: an argument list (never a shell), a timeout, no
terminal input, and the outcome as text or an Unavailable that names the command."""

from __future__ import annotations

import os
import shutil
import subprocess

from ..model import Unavailable

SYSTEM_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
DEFAULT_TIMEOUT = 10.0


def find(name: str, path: str | None = SYSTEM_PATH) -> str | None:
    """A system tool (not whatever a user's PATH puts first), or on `path`=None the caller's PATH."""
    return shutil.which(name, path=path) if path is not None else shutil.which(name)


def run(cmd: list[str], what: str, *, timeout: float = DEFAULT_TIMEOUT, input: str | None = None,
        env: dict[str, str] | None = None) -> str | Unavailable:
    """stdout of a successful run; otherwise an `invalid` Unavailable with the command's last
    error line (stderr is never passed on whole: it may echo what the command was given)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Unavailable(what, "invalid", f"{os.path.basename(cmd[0])} did not answer within {timeout:.0f} s")
    except OSError as exc:
        return Unavailable(what, "invalid", f"cannot run {os.path.basename(cmd[0])} ({exc.strerror or exc})")
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return Unavailable(what, "invalid", f"{os.path.basename(cmd[0])} failed: {(lines[-1] if lines else 'exit ' + str(done.returncode))[:200]}")
    return done.stdout
