"""Readers that turn a root (`/` or an offline tree) into an immutable HostFacts snapshot."""

from __future__ import annotations

import datetime
import os
import socket
import stat
from typing import TYPE_CHECKING

from .. import __version__
from ..background import Pending, patching_in_background
from ..facts import AccountFacts, HostFacts, Meta, PatchingFacts

if TYPE_CHECKING:
    from ..config import BackupConfig
from .fs import RootFS
from .kernel import collect_cpu, collect_kernel, collect_ksm, collect_modules
from .system import (
    collect_accounts,
    collect_firmware,
    collect_kvm_device,
    collect_patching,
)
from . import commands
from .access import collect_access, sshd_t_command
from .backups import collect_backups
from .drift import collect_drift
from .network import collect_network, live_commands
from .scans import collect_scans
from .hardware import collect_hardware
from .monitoring import collect_monitoring
from .vulns import collect_vulnerabilities
from ..facts import EMPTY_LIBVIRT, PlatformFacts
from ..platforms import registry
from ..platforms.base import Source


class RootError(Exception):
    """The root to audit cannot be used at all."""


def collect_host(root: str = "/", libvirt_uri: str | None = None, vulndb: str | None = None, vulndb_max_age_days: int | None = None,
                 backups: BackupConfig | None = None, baseline: str | None = None, scan_reports: list[str] | None = None,
                 history_path: str | None = None, monitor_db: str | None = None, vsphere: list[str] | None = None,
                 vsphere_settings: object = None, early_patching: Pending[PatchingFacts] | None = None,
                 vbox_home: str | None = None, virtualbox_settings: object = None) -> HostFacts:
    """libvirt_uri: a daemon to ask besides the files (default: qemu:///system on a live host).
    vbox_home: a copied VirtualBox home directory (any OS) to audit besides the root's homes;
    virtualbox_settings: the config's [virtualbox] section (which machines are sensitive).
    vulndb: the advisory database to match the installed packages against (default: the
    standard path; absent, the facts say so). early_patching: the package collection the CLI
    started for this root before it imported the rest (background.patching_in_background)."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise RootError(f"--root {root}: no such directory") from None
    except OSError as exc:
        raise RootError(f"--root {root}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise RootError(f"--root {root}: not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise RootError(f"--root {root}: permission denied")
    fs = RootFS(root)
    # apt's indexes are the scan's biggest read (tens of MB decompressed): read them on another
    # core, while the programs the other collectors ask (sshd -T, nft, ip) already run.
    patching = early_patching if early_patching is not None else patching_in_background(root)
    for cmd in [c for c in [sshd_t_command(fs)] if c] + live_commands(fs):
        commands.start(cmd)
    try:
        accounts, uids = collect_accounts(fs)
        endpoints = {name: value for name, value in (("libvirt", libvirt_uri), ("virtualbox", vbox_home)) if value}
        if vsphere:
            endpoints["esxi"] = "\n".join(vsphere)
        settings = {name: value for name, value in (("esxi", vsphere_settings), ("virtualbox", virtualbox_settings)) if value is not None}
        source = Source(fs, endpoints, _id_names(accounts, uids), settings)
        platforms = PlatformFacts({name: p.collect(source) for name, p in registry().items() if p.detect(source)})
        known = registry()
        bridges = sorted({b for name, facts in platforms.items() for b in known[name].guest_bridges(facts)})
        libvirt = platforms.get("libvirt", EMPTY_LIBVIRT)
        hardware = collect_hardware(fs)
        hostname = socket.gethostname() if fs.live else _offline_hostname(fs)
        return HostFacts(
            meta=Meta(
                hostname=hostname,
                root=fs.root,
                collected_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                euid=os.geteuid(),
                hyperward_version=__version__,
            ),
            kernel=collect_kernel(fs),
            cpu=collect_cpu(fs),
            modules=collect_modules(fs),
            ksm=collect_ksm(fs),
            kvm_device=collect_kvm_device(fs, accounts, uids),
            accounts=accounts,
            firmware=collect_firmware(fs),
            hardware=hardware,
            access=collect_access(fs),
            monitoring=collect_monitoring(fs, bridges, monitor_db),
            backups=collect_backups(backups.repositories, backups.guest_max_age_hours, backups.host_max_age_days, hardware.mounts)
            if backups is not None else None,
            drift=collect_drift(fs, baseline),
            scans=collect_scans(fs, hostname, libvirt, scan_reports or [], history_path),
            network=collect_network(fs),
            platforms=platforms,
            # last: the other collectors ran while the background read apt's indexes
            patching=collect_vulnerabilities(patching.result(), vulndb, vulndb_max_age_days),
        )
    finally:
        commands.discard_started()


def _id_names(accounts: AccountFacts, uids: dict[str, int] | None) -> tuple[dict[int, str], dict[int, str]]:
    users = {uid: name for name, uid in (uids or {}).items()}
    groups = {e.gid: name for name, e in accounts.groups.items()} if isinstance(accounts.groups, dict) else {}
    return users, groups


def _offline_hostname(fs: RootFS) -> str:
    text = fs.read_line("/etc/hostname", 256)
    return text if isinstance(text, str) and text else os.path.basename(fs.root) or fs.root
