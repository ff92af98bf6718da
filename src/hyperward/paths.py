"""Where hyperward keeps its own files: an environment override, /var/lib/hyperward as root, or the
user's XDG data directory."""

from __future__ import annotations

import os


ROOT_STATE = "/var/lib/hyperward"


def _user_state() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "hyperward")


def data_file(env_var: str, name: str) -> str:
    if os.environ.get(env_var):
        return os.environ[env_var]
    return os.path.join(ROOT_STATE if os.geteuid() == 0 else _user_state(), name)


def state_directories() -> set[str]:
    """The directories hyperward itself owns (created 0750): never a directory an operator named."""
    return {ROOT_STATE, os.path.abspath(_user_state())}
