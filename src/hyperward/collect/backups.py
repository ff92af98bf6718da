"""Backup repositories named in the config: their snapshot lists (restic, borg, or a directory of
virtnbdbackup/vzdump output), encryption, and whether they live on this very host.

restic and borg come from the system path (or the absolute `binary` the config names), run with a
timeout, read-only (`restic --no-lock snapshots`, `borg list`/`info` with `--bypass-lock`), in a
minimal environment (commands.child_env), and get the repository password through their
environment only (RESTIC_PASSWORD / BORG_PASSPHRASE) from the file or variable the config names. Their output and
errors are reduced to facts; neither the password nor the command's environment is recorded.
"""

from __future__ import annotations

from typing import Literal

import datetime
import json
import os

from ..facts import BackupFacts, BackupRepoFacts, BackupRepository, BackupSnapshot, Maybe, Mount
from ..model import Unavailable
from . import commands
from .fs import read_local

TIMEOUT_S = 120
MAX_PASSWORD_FILE = 64 * 1024
REMOTE_PREFIXES = ("sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:", "ssh://")
NETWORK_FS = ("nfs", "nfs4", "cifs", "smb3", "sshfs", "fuse.sshfs", "glusterfs", "ceph", "fuse.rclone", "davfs", "9p")


def _password(repo: BackupRepository) -> str | Unavailable | None:
    if repo.password_file:
        data = read_local(repo.password_file, MAX_PASSWORD_FILE)
        if isinstance(data, Unavailable):
            return Unavailable(data.path, data.kind, f"password file {data.path} unreadable ({data.reason})")
        try:
            return data.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            return Unavailable(repo.password_file, "invalid", "password file is not UTF-8 text")
    if repo.password_env:
        value = os.environ.get(repo.password_env)
        if value is None:
            return Unavailable(f"${repo.password_env}", "missing", "password variable not set")
        return value
    return None


def _same_host(location: str, mounts: Maybe[list[Mount]]) -> bool | None:
    if location.startswith(REMOTE_PREFIXES) or ("@" in location and ":" in location.split("@", 1)[1]):
        return False
    path = location.removeprefix("local:").removeprefix("file://")
    if not path.startswith("/"):
        return None
    if isinstance(mounts, list):
        best = max((m for m in mounts if path == m.target or path.startswith(m.target.rstrip("/") + "/")), key=lambda m: len(m.target), default=None)
        if best is not None and best.fstype in NETWORK_FS:
            return False
    return True


def _run(cmd: list[str], env: dict[str, str], what: str) -> str | Unavailable:
    return commands.run(cmd, what, timeout=TIMEOUT_S, env=env)


def _binary(repo: BackupRepository, tool: str) -> str | Unavailable:
    """The config's absolute path for the tool, else the tool on the system path: never the
    caller's PATH, where a directory a user writes would hand that user root and the password."""
    if repo.binary:
        problem = commands.executable(repo.binary)
        if problem is not None:
            return Unavailable(repo.binary, "invalid", f"binary {repo.binary}: {problem}; {tool} is not installed")
        return repo.binary
    found = commands.find(tool)
    if found is None:
        return Unavailable(tool, "invalid", f"{tool} is not installed")
    return found


def _restic(repo: BackupRepository, mounts: Maybe[list[Mount]]) -> BackupRepoFacts:
    binary = _binary(repo, "restic")
    same = _same_host(repo.location, mounts)
    if isinstance(binary, Unavailable):
        return BackupRepoFacts("restic", repo.location, "restic (always encrypted)", same, binary)
    password = _password(repo)
    if isinstance(password, Unavailable):
        return BackupRepoFacts("restic", repo.location, "restic (always encrypted)", same, password)
    # The repository goes in RESTIC_REPOSITORY, never on the command line, so a location that
    # starts with "-" cannot become an option (restic takes no "--" before its global flags).
    env = {"RESTIC_REPOSITORY": repo.location, **({"RESTIC_PASSWORD": password} if password is not None else {})}
    out = _run([binary, "snapshots", "--json", "--no-lock", "--no-cache"], env, repo.location)
    if isinstance(out, Unavailable):
        return BackupRepoFacts("restic", repo.location, "restic (always encrypted)", same, out)
    try:
        items = json.loads(out) or []
        snapshots = [BackupSnapshot(str(s["time"]), str(s.get("short_id", s.get("id", ""))), list(s.get("paths") or []), list(s.get("tags") or []))
                     for s in items]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return BackupRepoFacts("restic", repo.location, "restic (always encrypted)", same, Unavailable(repo.location, "invalid", f"unexpected restic output ({exc})"))
    return BackupRepoFacts("restic", repo.location, "restic (always encrypted)", same, snapshots)


def _borg(repo: BackupRepository, mounts: Maybe[list[Mount]]) -> BackupRepoFacts:
    binary = _binary(repo, "borg")
    same = _same_host(repo.location, mounts)
    if isinstance(binary, Unavailable):
        return BackupRepoFacts("borg", repo.location, None, same, binary)
    password = _password(repo)
    if isinstance(password, Unavailable):
        return BackupRepoFacts("borg", repo.location, None, same, password)
    extra = {"BORG_PASSPHRASE": password} if password is not None else {}
    # Never prompt, never relocate or trust a repository silently: answers are "no".
    extra.update({"BORG_RELOCATED_REPO_ACCESS_IS_OK": "no", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes", "BORG_DISPLAY_PASSPHRASE": "no"})
    # "--": a location starting with "-" is a repository, never an option.
    info = _run([binary, "info", "--json", "--bypass-lock", "--", repo.location], extra, repo.location)
    encryption = None
    if isinstance(info, str):
        try:
            encryption = str(json.loads(info)["encryption"]["mode"])
        except (json.JSONDecodeError, KeyError, TypeError):
            encryption = None
    else:
        return BackupRepoFacts("borg", repo.location, None, same, info)
    out = _run([binary, "list", "--json", "--bypass-lock", "--", repo.location], extra, repo.location)
    if isinstance(out, Unavailable):
        return BackupRepoFacts("borg", repo.location, encryption, same, out)
    try:
        archives = json.loads(out)["archives"]
        snapshots = [BackupSnapshot(_utc(str(a["time"])), str(a["name"]), [], [str(a["name"])]) for a in archives]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        return BackupRepoFacts("borg", repo.location, encryption, same, Unavailable(repo.location, "invalid", f"unexpected borg output ({exc})"))
    return BackupRepoFacts("borg", repo.location, encryption, same, snapshots)


def _utc(value: str) -> str:
    """borg prints local time without a zone; restic prints RFC 3339 with one."""
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.astimezone(datetime.UTC).isoformat(timespec="seconds")


def _directory(repo: BackupRepository, mounts: Maybe[list[Mount]]) -> BackupRepoFacts:
    """virtnbdbackup writes one directory per guest, vzdump files named vzdump-qemu-<id>-<time>:
    every entry counts with its modification time and its name as the label."""
    same = _same_host(repo.location, mounts)
    try:
        entries = sorted(os.scandir(repo.location), key=lambda e: e.name)
    except OSError as exc:
        kind: Literal["missing", "denied", "invalid"] = (
            "missing" if isinstance(exc, FileNotFoundError) else "denied" if isinstance(exc, PermissionError) else "invalid")
        return BackupRepoFacts("directory", repo.location, "none (plain files)", same, Unavailable(repo.location, kind, exc.strerror or str(exc)))
    snapshots = []
    for entry in entries:
        try:
            mtime = entry.stat(follow_symlinks=False).st_mtime
            if entry.is_dir(follow_symlinks=False):
                mtime = max([mtime, *(e.stat(follow_symlinks=False).st_mtime for e in os.scandir(entry.path))])
        except OSError:
            continue
        snapshots.append(BackupSnapshot(datetime.datetime.fromtimestamp(mtime, datetime.UTC).isoformat(timespec="seconds"), entry.name,
                                        [entry.path], []))
    return BackupRepoFacts("directory", repo.location, "none (plain files)", same, snapshots)


def collect_backups(repositories: list[BackupRepository], guest_max_age_hours: int, host_max_age_days: int,
                    mounts: Maybe[list[Mount]]) -> BackupFacts:
    readers = {"restic": _restic, "borg": _borg, "directory": _directory}
    return BackupFacts(guest_max_age_hours, host_max_age_days, [readers[r.kind](r, mounts) for r in repositories])
