"""What backups and saved state expose: memory images on disk, unencrypted guest disks on the network."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator

from ..engine import check
from ..facts import BackupFacts, BackupSnapshot, Domain, HostFacts
from ..model import Result, Unavailable
from ._libvirt import NOT_INSTALLED, each_domain, qemu_setting, qemu_settings

STATE_DIRS = ("/var/lib/libvirt/qemu/save", "/var/lib/libvirt/qemu/snapshot")


@check("HV-BAK-004",
    fix="chmod 0600 the files and 0700 the directories under /var/lib/libvirt/qemu/save, snapshot and the auto_dump_path",
    references=("libvirt src/qemu/qemu.conf.in auto_dump_path",),
)
def saved_state(host: HostFacts) -> Iterator[Result]:
    """A managed-save image, memory snapshot or dump is the guest's whole RAM: keys, passwords, data."""
    if not host.libvirt.installed:
        yield Result.not_applicable(NOT_INSTALLED)
        return
    settings = qemu_settings(host)
    dump = str(qemu_setting(settings, "auto_dump_path").value) if isinstance(settings, dict) else "/var/lib/libvirt/qemu/dump"
    judged = False
    for path, node in sorted(host.libvirt.paths.items()):
        if not any(path == d or path.startswith(d + "/") for d in (*STATE_DIRS, dump)):
            continue
        judged = True
        if isinstance(node, Unavailable):
            yield Result.unavailable(node, path)
            continue
        if node.kind == "directory":
            bad = node.mode & 0o007
            expected = "0700 or 0711"
            bad = bad and node.mode & 0o007 != 0o001
        else:
            bad = node.mode & 0o077
            expected = "0600"
        if bad:
            yield Result.fail(path, f"mode {node.mode:04o} {node.owner or node.uid}:{node.group or node.gid} ({expected} expected)")
        else:
            yield Result.passed(path, f"mode {node.mode:04o}")
    if not judged:
        yield Result.not_applicable("no saved-state or dump directory under /var/lib/libvirt/qemu")


@check("HV-BAK-005",
    fix="encrypt the volume with LUKS through libvirt: <source ...><encryption format='luks'><secret type='passphrase' uuid='...'/></encryption></source>",
    references=("libvirt docs/formatstorageencryption.rst",),
)
def network_disk_encryption(host: HostFacts) -> Iterator[Result]:
    """On shared storage (iSCSI, RBD, NBD, Gluster) the disk's blocks are readable by the storage
    cluster and its admins, and by anyone who attaches the LUN."""

    def judge(d: Domain) -> list[str]:
        return [f"{disk.target or 'disk'} ({disk.protocol} {disk.source or ''}): not LUKS-encrypted".replace(" )", ")")
                for disk in d.disks if disk.type == "network" and disk.encryption not in ("luks", "luks2", "luks-any")]

    yield from each_domain(host, judge, applies=lambda d: any(x.type == "network" for x in d.disks),
                           none_reason="no domain uses network storage")


def _tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[-_./\s:]+", text.lower()) if t}


def covers_guest(snapshot: BackupSnapshot, name: str, uuid: str) -> bool:
    """A snapshot holds a guest when a tag, its label (borg archive or directory entry name) or a
    path names the guest (web01, web01.qcow2, /backup/web01/, or the UUID)."""
    wanted = {name.lower(), uuid.lower()} - {""}
    if any(t.lower() in wanted for t in snapshot.tags):
        return True
    label = snapshot.label.lower()
    if any(re.search(rf"(^|[-_./\s:]){re.escape(w)}([-_./\s:]|$)", label) for w in wanted):
        return True
    for path in snapshot.paths:
        parts = [p.lower() for p in path.strip("/").split("/")]
        if any(p in wanted or p.split(".", 1)[0] in wanted for p in parts):
            return True
    return False


HOST_CONFIG_TAGS = {"libvirt", "etc", "host-config", "hostconfig", "config"}


def covers_host_config(snapshot: BackupSnapshot, hostname: str) -> bool:
    """/etc/libvirt (or /etc, or /) among the paths, a path ending in /etc/libvirt (a staging copy),
    or a tag or archive name saying so (host-config, libvirt, etc)."""
    if any(p.rstrip("/") in ("", "/etc") or p.rstrip("/").endswith("/etc/libvirt") or p.rstrip("/") == "/etc/libvirt" for p in snapshot.paths):
        return True
    if {t.lower() for t in snapshot.tags} & HOST_CONFIG_TAGS:
        return True
    return bool(_tokens(snapshot.label) & HOST_CONFIG_TAGS) and not snapshot.paths


def _newest(backups: BackupFacts, predicate: Callable[[BackupSnapshot], bool]) -> tuple[str, str] | None:
    best = None
    for repo in backups.repositories:
        if isinstance(repo.snapshots, Unavailable):
            continue
        for snap in repo.snapshots:
            when = _normal(snap.time)
            if predicate(snap) and (best is None or when > best[0]):
                best = (when, f"{repo.kind} {repo.location}")
    return best


def _normal(value: str) -> str:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(datetime.UTC).isoformat(timespec="seconds")


def _repo_results(backups: BackupFacts) -> Iterator[Result]:
    for repo in backups.repositories:
        if isinstance(repo.snapshots, Unavailable):
            yield Result.error(f"{repo.kind} repository {repo.location}: {repo.snapshots.reason}", repo.location)


def _age(host: HostFacts, when: str) -> datetime.timedelta:
    return datetime.datetime.fromisoformat(host.meta.collected_at) - datetime.datetime.fromisoformat(when)


def _human(delta: datetime.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


NO_BACKUPS = ("no backup repositories configured: name them in /etc/hyperward/config.toml or --config "
              "([[backups.repository]] with kind restic, borg or directory)")
NO_BACKUP_SEEN = "no backup hyperward can see: " + NO_BACKUPS.removeprefix("no backup repositories configured: ")


@check("HV-BAK-001",
    fix="back up /etc/libvirt (and `virsh dumpxml` exports) daily to an off-host, encrypted repository, e.g. restic backup /etc --tag host-config",
    references=("restic(1)", "borg(1)"),
)
def host_config_backup(host: HostFacts) -> Iterator[Result]:
    """Without the host's libvirt configuration a rebuilt hypervisor cannot bring its guests back.
    A backup hyperward cannot see is no evidence: no repository configured is a failure that says
    how to name one."""
    backups = host.backups
    if backups is None or not backups.repositories:
        yield Result.fail("host configuration", NO_BACKUP_SEEN)
        return
    yield from _repo_results(backups)
    newest = _newest(backups, lambda s: covers_host_config(s, host.meta.hostname))
    limit = datetime.timedelta(days=backups.host_max_age_days)
    if newest is None:
        yield Result.fail("host configuration", "no snapshot holds /etc/libvirt (or /etc) in any configured repository")
    elif _age(host, newest[0]) > limit:
        yield Result.fail("host configuration", f"newest backup {newest[0]} ({_human(_age(host, newest[0]))} old, policy {backups.host_max_age_days} days) in {newest[1]}")
    else:
        yield Result.passed("host configuration", f"newest backup {newest[0]} ({_human(_age(host, newest[0]))} old) in {newest[1]}")


@check("HV-BAK-003",
    fix="use an encrypted repository (restic, borg repokey/keyfile) on another machine or storage (sftp:, rest:, s3:, or an NFS/SMB mount)",
    references=("borg init --encryption", "restic(1)"),
)
def backup_repositories(host: HostFacts) -> Iterator[Result]:
    """A backup on the hypervisor's own disks dies with it (or with the attacker who encrypts it);
    an unencrypted one hands every guest's data to whoever reads the backup storage."""
    backups = host.backups
    if backups is None or not backups.repositories:
        yield Result.not_applicable(NO_BACKUPS)
        return
    for repo in backups.repositories:
        problems = []
        if repo.encryption in ("none", "none (plain files)", "authenticated", "authenticated-blake2"):
            problems.append(f"not encrypted ({repo.encryption})")
        elif repo.encryption is None:
            problems.append("encryption unknown (repository unreadable)")
        if repo.same_host is True:
            problems.append("on this host's own storage")
        if problems:
            yield Result.fail(repo.location, f"{repo.kind}: " + "; ".join(problems))
        else:
            yield Result.passed(repo.location, f"{repo.kind}: {repo.encryption}; off-host")
