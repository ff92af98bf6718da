"""Keys of qemu.conf, libvirtd.conf and the modular daemons' virtqemud.conf / virtproxyd.conf.

Each (check, key) has the value the check's remediation names; REMOVE comments the assignment out
so libvirt's built-in default (the safe one for these keys) applies. Keys whose safe value depends
on the site (tls_allowed_dn_list, migration_address, access_drivers, SASL mechanisms) are manual."""

from __future__ import annotations

from ..plan import REMOVE, Context, Failing, Fix, Manual, Needs, SetKey, fixer

#: (check, key) -> value (None: comment the assignment out)
VALUES: dict[tuple[str, str], str | None] = {
    ("HV-ISO-001", "security_driver"): REMOVE,
    ("HV-ISO-002", "security_default_confined"): "1",
    ("HV-ISO-006", "seccomp_sandbox"): "1",
    ("HV-ISO-007", "namespaces"): '[ "mount" ]',
    ("HV-ISO-007", "cgroup_device_acl"): REMOVE,
    ("HV-ISO-008", "dynamic_ownership"): REMOVE,
    ("HV-ISO-008", "remember_owner"): REMOVE,
    ("HV-ISO-013", "relaxed_acs_check"): REMOVE,
    ("HV-ISO-019", "dump_guest_core"): "0",
    ("HV-ISO-020", "stdio_handler"): '"logd"',
    ("HV-AUTH-010", "vnc_listen"): '"127.0.0.1"',
    ("HV-AUTH-010", "spice_listen"): '"127.0.0.1"',
    ("HV-NET-007", "migrate_tls_force"): "1",
    ("HV-AUTH-001", "auth_tcp"): '"sasl"',
    ("HV-AUTH-002", "tls_no_verify_certificate"): REMOVE,
    ("HV-AUTH-003", "tls_no_sanity_certificate"): REMOVE,
    ("HV-AUTH-005", "auth_unix_rw"): '"polkit"',
    ("HV-AUTH-005", "auth_unix_ro"): '"polkit"',
    ("HV-AUTH-006", "unix_sock_admin_perms"): '"0700"',
    ("HV-AUTH-009", "tcp_min_ssf"): "56",
    ("HV-IDS-003", "audit_level"): REMOVE,
    ("HV-MON-002", "log_level"): REMOVE,
}

MANUAL: dict[tuple[str, str], str] = {
    ("HV-AUTH-003", "tls_allowed_dn_list"): "set tls_allowed_dn_list to the distinguished names of your management hosts "
                                            '(tls_allowed_dn_list = ["C=..,O=..,CN=admin-host"]): hyperward cannot know them',
    ("HV-NET-007", "migration_address"): "set migration_address to this host's address on the migration network: hyperward cannot know it",
    ("HV-AUTH-008", "access_drivers"): 'set access_drivers = [ "polkit" ] only together with polkit rules per org.libvirt.api.* '
                                       "action, or every non-root client loses access",
}

#: settings QEMU reads when it starts: running guests keep the old value until they restart
AT_GUEST_START = {"security_driver", "security_default_confined", "user", "group", "seccomp_sandbox", "namespaces",
                  "cgroup_device_acl", "dump_guest_core", "stdio_handler", "vnc_listen", "spice_listen",
                  "dynamic_ownership", "remember_owner"}

DAEMON_OF = {"libvirtd.conf": "libvirtd", "virtqemud.conf": "virtqemud", "virtproxyd.conf": "virtproxyd"}


def qemu_daemon(context: Context) -> str:
    """The daemon that reads qemu.conf: virtqemud when the modular daemons are enabled."""
    if "virtqemud.socket" in context.listdir("/etc/systemd/system/sockets.target.wants") or \
            "virtqemud.service" in context.listdir("/etc/systemd/system/multi-user.target.wants"):
        return "virtqemud"
    return "libvirtd"


def _qemu_user(context: Context) -> str | None:
    passwd = context.read("/etc/passwd") or ""
    names = {line.split(":", 1)[0] for line in passwd.splitlines() if ":" in line}
    for candidate in ("libvirt-qemu", "qemu"):
        if candidate in names:
            return candidate
    return None


@fixer("HV-ISO-001", "HV-ISO-002", "HV-ISO-005", "HV-ISO-006", "HV-ISO-007", "HV-ISO-008", "HV-ISO-013",
       "HV-ISO-019", "HV-ISO-020", "HV-AUTH-001", "HV-AUTH-002", "HV-AUTH-003", "HV-AUTH-005", "HV-AUTH-006",
       "HV-AUTH-008", "HV-AUTH-009", "HV-AUTH-010", "HV-NET-007", "HV-IDS-003", "HV-MON-002")
def libvirt_key(finding: Failing, context: Context) -> Fix | None:
    from . import domain, kernel, system

    path, key = finding.details.get("file"), finding.details.get("key")
    if not isinstance(path, str) or not isinstance(key, str) or not path.startswith("/etc/libvirt/"):
        # the same checks judge guests, the kernel command line and socket units
        return domain.for_guest(finding, context) or kernel.for_cmdline(finding, context) or system.for_socket(finding, context)
    name = path.rsplit("/", 1)[-1]
    if (finding.check_id, key) in MANUAL:
        return Fix((Manual(MANUAL[finding.check_id, key]),))
    if finding.check_id == "HV-ISO-005" and key in ("user", "group"):
        user = _qemu_user(context)
        if user is None:
            return Fix((Manual(f"set {key} in {path} to the unprivileged QEMU account (no libvirt-qemu or qemu user in /etc/passwd)"),))
        value: str | None = f'"{user}"'
    elif (finding.check_id, key) in VALUES:
        value = VALUES[finding.check_id, key]
    else:
        return None
    daemon = qemu_daemon(context) if name == "qemu.conf" else DAEMON_OF.get(name, "libvirtd")
    needs = [Needs("restart", daemon)]
    if name == "qemu.conf" and key in AT_GUEST_START:
        needs.append(Needs("guest-restart", ""))
    edits: list[SetKey | Manual] = [SetKey(path, key, value, "libvirt")]
    if finding.check_id == "HV-ISO-005":
        edits.append(Manual(f"chown -R {str(value).strip(chr(34))}: /var/lib/libvirt/qemu after the guests are stopped"))
    if finding.check_id == "HV-NET-007":
        edits.append(Manual("migrate_tls_force = 1 needs the QEMU TLS certificates in /etc/pki/qemu (migrations fail without them)"))
    return Fix(tuple(edits), tuple(needs))
