"""Where hyperward keeps its own files: an environment override, /var/lib/hyperward as root, or the
user's XDG data directory."""

from __future__ import annotations

import os


def data_file(env_var: str, name: str) -> str:
    if os.environ.get(env_var):
        return os.environ[env_var]
    if os.geteuid() == 0:
        return f"/var/lib/hyperward/{name}"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "hyperward", name)
