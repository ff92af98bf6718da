"""How hyperward reaches vSphere: the user, where the password comes from, how TLS is verified.

The password is read when a connection is made and kept nowhere else: not in the facts, the
snapshot, the report or an error message (api.py scrubs it from every message it builds).
It comes from HYPERWARD_VSPHERE_PASSWORD or from the file the config's `[vsphere]
password_file` names, which must be a regular file (not a symlink) that neither group nor
others can read or write: a root scan must not hand the vCenter password to whoever could read
or plant that file.
"""

from __future__ import annotations

import os
import stat

from ...collect.fs import read_local
from ...model import Unavailable
from ...records import frozen

USER_ENV = "HYPERWARD_VSPHERE_USER"
PASSWORD_ENV = "HYPERWARD_VSPHERE_PASSWORD"
DEFAULT_TIMEOUT = 30.0
FRAMEWORKS = ("stig", "scg")


class CredentialError(Exception):
    """No usable credentials; the message says what to set and never holds a secret."""


@frozen
class VsphereSettings:
    user: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    framework: str = "stig"

    def resolved_user(self) -> str:
        user = os.environ.get(USER_ENV) or self.user
        if not user:
            raise CredentialError(f"no vSphere user: set {USER_ENV} or `user` in the config's [vsphere] section")
        return user

    def password(self) -> str:
        env = os.environ.get(PASSWORD_ENV)
        if env:
            return env
        if not self.password_file:
            raise CredentialError(f"no vSphere password: set {PASSWORD_ENV} or `password_file` in the config's [vsphere] section")
        return read_password_file(self.password_file)


def read_password_file(path: str) -> str:
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise CredentialError(f"vSphere password file {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise CredentialError(f"vSphere password file {path}: is a symbolic link; name the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise CredentialError(f"vSphere password file {path}: not a regular file")
    if st.st_mode & 0o077:
        raise CredentialError(f"vSphere password file {path}: mode {stat.S_IMODE(st.st_mode):04o} lets group or others "
                              "read or change it; chmod 600 it (owner only)")
    if st.st_uid not in (0, os.geteuid()):
        raise CredentialError(f"vSphere password file {path}: owned by uid {st.st_uid}, not by root or the user scanning")
    data = read_local(path, 64 * 1024)
    if isinstance(data, Unavailable):
        raise CredentialError(f"vSphere password file {data.describe()}")
    text = data.decode("utf-8", "replace").strip("\r\n")
    if not text:
        raise CredentialError(f"vSphere password file {path}: empty")
    return text
