"""libvirt's compiled defaults for the settings hyperward judges.

From src/qemu/qemu.conf.in and src/remote/libvirtd.conf.in (libvirt 9.x, as Debian 12 builds it:
with polkit, QEMU user and group libvirt-qemu). A commented `#key = value` line in those files is
an *example*, not the default; the defaults below come from the prose around each key and from
the code that reads it (src/qemu/qemu_conf.c, src/remote/remote_daemon_config.c).
"""

from __future__ import annotations

from typing import Any

from ..records import frozen

QEMU_CONF_DEFAULTS: dict[str, Any] = {
    "vnc_listen": "127.0.0.1",
    "vnc_tls": 0,
    "vnc_tls_x509_verify": 0,
    "vnc_sasl": 0,
    "vnc_auto_unix_socket": 0,
    "spice_listen": "127.0.0.1",
    "spice_tls": 0,
    "spice_sasl": 0,
    "spice_auto_unix_socket": 0,
    "chardev_tls": 0,
    "nbd_tls": 0,
    "migrate_tls_force": 0,
    "migration_address": "0.0.0.0",
    "security_default_confined": 1,
    "security_require_confined": 0,
    "dynamic_ownership": 1,
    "remember_owner": 1,
    "seccomp_sandbox": 1,
    "namespaces": ["mount"],
    # libvirt 9.0's list (its qemu.conf, as Debian 12's libvirt-daemon-system 9.0.0 installs it);
    # later releases add /dev/userfaultfd: see LATER_DEFAULT_DEVICES
    "cgroup_device_acl": [
        "/dev/null", "/dev/full", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/ptmx", "/dev/kvm",
    ],
    "dump_guest_core": 0,
    "auto_dump_path": "/var/lib/libvirt/qemu/dump",
    "stdio_handler": "logd",
    "relaxed_acs_check": 0,
    "swtpm_user": "tss",
    "swtpm_group": "tss",
    "sched_core": "none",
}

# Devices newer libvirt releases put in the default cgroup_device_acl (upstream qemu.conf.in lists
# /dev/userfaultfd, for post-copy migration); naming them does not widen QEMU's confinement.
LATER_DEFAULT_DEVICES = frozenset({"/dev/userfaultfd"})

# qemu.conf.in: "#user = \"@QEMU_USER@\"" is substituted at build time, so the commented line
# in the shipped file names the compiled default; upstream's fallback is root.
QEMU_USER_FALLBACK = "root"

LIBVIRTD_CONF_DEFAULTS: dict[str, Any] = {
    "listen_tls": 1,
    "listen_tcp": 0,
    "listen_addr": "0.0.0.0",
    "auth_tcp": "sasl",
    "auth_tls": "none",
    "auth_unix_ro": "polkit",
    "auth_unix_rw": "polkit",
    "unix_sock_group": "root",
    "unix_sock_ro_perms": "0777",
    "unix_sock_rw_perms": "0777",
    "unix_sock_admin_perms": "0700",
    "tls_no_verify_certificate": 0,
    "tls_no_sanity_certificate": 0,
    "access_drivers": [],
    "tcp_min_ssf": 56,
    "audit_level": 1,
    "audit_logging": 0,
    "log_level": 3,
    "key_file": "/etc/pki/libvirt/private/serverkey.pem",
    "cert_file": "/etc/pki/libvirt/servercert.pem",
}


@frozen
class Setting:
    """An effective value and where it came from: a file, or libvirt's compiled default."""

    key: str
    value: Any
    source: str
    default: bool

    def describe(self) -> str:
        shown = f'"{self.value}"' if isinstance(self.value, str) else self.value
        where = f"default assumed, {self.source} does not set it" if self.default else self.source
        return f"{self.key} = {shown} ({where})"


def effective(settings: dict[str, Any], path: str, key: str, defaults: dict[str, Any]) -> Setting:
    if key in settings:
        return Setting(key, settings[key], path, False)
    return Setting(key, defaults.get(key), path, True)
