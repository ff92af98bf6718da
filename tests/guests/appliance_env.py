"""The libguestfs appliance for the inside-the-guest tests (imported by them as a fixture).

supermin builds the appliance from the host's packages and a kernel. A Debian host has one in
/boot; a container running the tests may not, so the kernel package the monitor's live test
already caches (scripts/install.sh --test) is unpacked once, its modules indexed with depmod,
and named through SUPERMIN_KERNEL/SUPERMIN_MODULES (supermin(1) ENVIRONMENT VARIABLES).
"""

from __future__ import annotations

import glob
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from conftest import require

CACHE = pathlib.Path(os.environ.get("HYPERWARD_TEST_CACHE", "/var/cache/hyperward-tests"))


def _kernel() -> tuple[str, str] | None:
    booted = sorted(glob.glob("/boot/vmlinuz-*"))
    if booted and os.path.isdir("/lib/modules") and os.listdir("/lib/modules"):
        return None
    unpacked = CACHE / "supermin-kernel"
    kernels = sorted(glob.glob(str(unpacked / "boot/vmlinuz-*")))
    if not kernels:
        debs = sorted(glob.glob(str(CACHE / "linux-image-*.deb")))
        if not debs:
            return ("", "")
        unpacked.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", debs[-1], str(unpacked)], check=True, timeout=300)
        kernels = sorted(glob.glob(str(unpacked / "boot/vmlinuz-*")))
    version = kernels[-1].rsplit("vmlinuz-", 1)[1]
    modules = unpacked / "lib/modules" / version
    if not (modules / "modules.dep").exists():
        subprocess.run(["depmod", "-b", str(unpacked), version], check=True, timeout=300)
    return kernels[-1], str(modules)


@pytest.fixture(scope="session")
def appliance_env() -> dict[str, str]:
    """The environment under which libguestfs can start here; skips (fails in CI) when it cannot."""
    try:
        import guestfs  # noqa: F401
    except ImportError:
        require(False, "python3-guestfs (libguestfs) with the venv seeing system site-packages")
    for tool in ("qemu-img", "mkfs.ext4", "ssh-keygen", "supermin"):
        require(shutil.which(tool) is not None, f"{tool} (scripts/install.sh --test)")
    require(os.path.isdir("/lib/modules"), "/lib/modules must exist for supermin (scripts/install.sh --test creates it)")
    kernel = _kernel()
    env: dict[str, str] = {"LIBGUESTFS_BACKEND": "direct"}
    if kernel is not None:
        require(bool(kernel[0]), f"a kernel for the libguestfs appliance: /boot/vmlinuz-* or {CACHE}/linux-image-*.deb")
        env.update(SUPERMIN_KERNEL=kernel[0], SUPERMIN_MODULES=kernel[1])
    os.environ.update(env)
    return env
