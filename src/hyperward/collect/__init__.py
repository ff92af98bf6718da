"""Readers that turn a root (`/` or an offline tree) into an immutable HostFacts snapshot."""

from __future__ import annotations

import datetime
import os
import socket
import stat

from .. import __version__
from ..facts import HostFacts, Meta
from .fs import RootFS
from .kernel import collect_cpu, collect_kernel, collect_ksm, collect_modules
from .system import (
    collect_accounts,
    collect_firmware,
    collect_kvm_device,
    collect_libvirt_config,
    collect_patching,
)


class RootError(Exception):
    """The root to audit cannot be used at all."""


def collect_host(root: str = "/") -> HostFacts:
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
    accounts, uids = collect_accounts(fs)
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
        patching=collect_patching(fs),
        kvm_device=collect_kvm_device(fs, accounts, uids),
        accounts=accounts,
        firmware=collect_firmware(fs),
        qemu_conf=collect_libvirt_config(fs, "/etc/libvirt/qemu.conf"),
    )


def _offline_hostname(fs: RootFS) -> str:
    text = fs.read_line("/etc/hostname", 256)
    return text if isinstance(text, str) and text else os.path.basename(fs.root) or fs.root
