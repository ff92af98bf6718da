"""Authentication and access to libvirt and the guests: the daemon's TCP/TLS/UNIX sockets, SASL,
polkit and the groups that are root-equivalent, consoles, character devices and network storage.
Secrets (console passwords, keys) are judged as set / not set and never shown."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

from ..engine import check
from ..facts import Domain, FileNode, HostFacts, SocketUnit, TlsCertificate
from ..model import Details, Result, Severity, Unavailable
from ..addresses import is_loopback
from ._libvirt import (
    REMOTE_CONFIGS,
    as_int,
    as_mode,
    daemon_configs,
    daemon_listens,
    daemon_setting,
    each_domain,
    no_daemon_config,
    qemu_setting,
    qemu_settings,
    qemu_user,
)

CERT_MIN_DAYS = 30
STRONG_SASL = {"gssapi", "scram-sha-256", "scram-sha-512", "external"}
SERVICE_ACCOUNTS = {"libvirt-qemu", "qemu", "libvirt-dnsmasq", "tss", "swtpm"}
RW_SOCKETS = {"libvirtd.conf": "libvirt-sock", "virtqemud.conf": "virtqemud-sock", "virtproxyd.conf": "libvirt-sock"}


def _per_daemon(host: HostFacts, names: tuple[str, ...], judge: Any) -> Iterator[Result]:
    seen = False
    for name, settings in daemon_configs(host, names):
        seen = True
        if isinstance(settings, Result):
            yield settings
            continue
        yield from judge(name, settings)
    if not seen:
        yield no_daemon_config(host)


@check("HV-AUTH-001",
    fix="disable libvirtd-tcp.socket / listen_tcp, connect with qemu+tls:// (16514) or qemu+ssh://; if TCP must stay, auth_tcp = \"sasl\" with GSSAPI or SCRAM",
    references=("libvirt src/remote/libvirtd.conf.in listen_tcp, auth_tcp", "libvirt docs/remote.rst"),
)
def tcp_auth(host: HostFacts) -> Iterator[Result]:
    """Plain TCP on 16509 with auth_tcp = "none" gives anyone who reaches the port full control of every guest."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        listening, why = daemon_listens(host, name, settings, "tcp")
        auth = daemon_setting(name, settings, "auth_tcp")
        resource = f"{name}:auth_tcp"
        if not listening:
            yield Result.passed(resource, why)
        elif auth.value != "sasl":
            yield Result.fail(resource, f"{why}; {auth.describe()}: unauthenticated, unencrypted remote control")
        else:
            yield Result.passed(resource, f"{why}; {auth.describe()} (mechanisms: HV-AUTH-009)")

    yield from _per_daemon(host, REMOTE_CONFIGS, judge)


@check("HV-AUTH-002",
    fix="remove tls_no_verify_certificate = 1 from the daemon configuration",
    references=("libvirt src/remote/libvirtd.conf.in tls_no_verify_certificate",),
)
def tls_verify(host: HostFacts) -> Iterator[Result]:
    """Without client certificate verification any TLS client is accepted: TLS then only encrypts."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        setting = daemon_setting(name, settings, "tls_no_verify_certificate")
        if as_int(setting.value):
            yield Result.fail(f"{name}:tls_no_verify_certificate", f"{setting.describe()}: client certificates are not verified")
        else:
            yield Result.passed(f"{name}:tls_no_verify_certificate", setting.describe())

    yield from _per_daemon(host, REMOTE_CONFIGS, judge)


@check("HV-AUTH-003",
    fix="set tls_allowed_dn_list = [\"C=..,O=..,CN=admin-host\"] and remove tls_no_sanity_certificate",
    references=("libvirt src/remote/libvirtd.conf.in tls_allowed_dn_list",),
)
def tls_dn_list(host: HostFacts) -> Iterator[Result]:
    """Without a DN allowlist every certificate the CA ever issued (any host, any service) is an administrator."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        sanity = daemon_setting(name, settings, "tls_no_sanity_certificate")
        if as_int(sanity.value):
            yield Result.fail(f"{name}:tls_no_sanity_certificate", f"{sanity.describe()}: the server's own certificate is not checked")
        listening, why = daemon_listens(host, name, settings, "tls")
        resource = f"{name}:tls_allowed_dn_list"
        if not listening:
            yield Result.passed(resource, why)
        elif not settings.get("tls_allowed_dn_list"):
            yield Result.fail(resource, f"{why}; no tls_allowed_dn_list: any certificate signed by the CA is accepted")
        else:
            yield Result.passed(resource, f"{why}; {len(settings['tls_allowed_dn_list'])} allowed DN pattern(s)")

    yield from _per_daemon(host, REMOTE_CONFIGS, judge)


@check("HV-AUTH-004",
    fix="chmod 0600 (root) or 0640 root:libvirt the server key; renew the certificate before it expires",
    references=("libvirt docs/kbase/tlscerts.rst",),
)
def tls_files(host: HostFacts) -> Iterator[Result]:
    """A readable server key lets any local user impersonate the hypervisor; a key others may
    write lets them put their own key in its place (and then hold the private half of what the
    daemon serves), or break TLS for everyone; an expiring certificate leads admins to turn
    verification off. (Until issue 22's mutation run, only reading was judged: a world- or
    group-writable key passed.)"""
    key, cert = host.libvirt.tls_key, host.libvirt.tls_cert
    if isinstance(key, Unavailable) and key.kind == "missing" and isinstance(cert, Unavailable) and cert.kind == "missing":
        yield Result.not_applicable("no libvirt TLS key or certificate (/etc/pki/libvirt)")
        return
    if isinstance(key, FileNode):
        if key.mode & 0o004:
            yield Result.fail(key.path, f"mode {key.mode:04o}: world-readable private key")
        elif key.mode & 0o002:
            yield Result.fail(key.path, f"mode {key.mode:04o}: world-writable private key: any local user can replace it")
        elif key.mode & 0o060 and key.group not in ("root", "libvirt"):
            yield Result.fail(key.path, f"mode {key.mode:04o}, group {key.group or key.gid} can {'read' if key.mode & 0o040 else 'replace'} the private key")
        else:
            yield Result.passed(key.path, f"mode {key.mode:04o} {key.owner or key.uid}:{key.group or key.gid}")
    elif key.kind != "missing":
        yield Result.unavailable(key, key.path)
    if isinstance(cert, TlsCertificate):
        if isinstance(cert.not_after, Unavailable):
            yield Result.unavailable(cert.not_after, cert.path)
        else:
            expires = datetime.datetime.fromisoformat(cert.not_after)
            now = datetime.datetime.fromisoformat(host.meta.collected_at)
            days = (expires - now).days
            if days < CERT_MIN_DAYS:
                state = "expired" if days < 0 else f"expires in {days} days"
                yield Result.fail(cert.path, f"{state} ({cert.not_after})")
            else:
                yield Result.passed(cert.path, f"valid until {cert.not_after} ({days} days)")
    elif cert.kind != "missing":
        yield Result.unavailable(cert, cert.path)


def _socket_mode(host: HostFacts, daemon: str, socket_name: str, setting_mode: int | None) -> tuple[int | None, str]:
    for node in host.libvirt.sockets:
        if node.path == f"/run/libvirt/{socket_name}":
            return node.mode, f"{node.path} mode {node.mode:04o} {node.owner or node.uid}:{node.group or node.gid}"
    for unit in host.libvirt.socket_units:
        if unit.name.startswith(daemon) and any(l.endswith("/" + socket_name) for l in unit.listen) and unit.socket_mode:
            mode = as_mode(unit.socket_mode)
            return mode, f"{unit.name} SocketMode={unit.socket_mode}"
    return setting_mode, f"socket permissions {setting_mode:04o}" if setting_mode is not None else "socket permissions unknown"


@check("HV-AUTH-005",
    fix="keep auth_unix_rw = \"polkit\", or with \"none\" set SocketMode=0600 (or 0660 with a vetted SocketGroup) in a socket drop-in",
    references=("libvirt src/remote/libvirtd.conf.in auth_unix_rw, unix_sock_rw_perms",),
)
def unix_rw_auth(host: HostFacts) -> Iterator[Result]:
    """The read-write socket is root on the host (define a guest with the host's disk); with no
    authentication, its file mode is the only guard."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        auth = daemon_setting(name, settings, "auth_unix_rw")
        perms = daemon_setting(name, settings, "unix_sock_rw_perms")
        daemon = name.removesuffix(".conf")
        mode, where = _socket_mode(host, daemon, RW_SOCKETS[name], as_mode(perms.value))
        resource = f"{name}:auth_unix_rw"
        if auth.value != "none":
            yield Result.passed(resource, f"{auth.describe()}; {where}")
        elif mode is None or mode & 0o006:
            yield Result.fail(resource, f"{auth.describe()} and {where}: every local user controls libvirt")
        elif mode & 0o060:
            group = daemon_setting(name, settings, "unix_sock_group")
            yield Result.passed(resource, f"{auth.describe()}; {where}; members of {group.value} are root-equivalent (HV-AUTH-007)")
        else:
            yield Result.passed(resource, f"{auth.describe()}; {where}")

    yield from _per_daemon(host, ("libvirtd.conf", "virtqemud.conf", "virtproxyd.conf"), judge)


@check("HV-AUTH-006",
    fix="with socket activation (Debian's default) set SocketMode=0600 on *-admin.socket in a drop-in (systemctl edit libvirtd-admin.socket), "
        "otherwise unix_sock_admin_perms = \"0700\"; keep auth_unix_ro = \"polkit\", or restrict the -ro socket's SocketMode (unix_sock_ro_perms without activation)",
    references=("libvirt src/remote/libvirtd.conf.in unix_sock_admin_perms, auth_unix_ro",),
)
def admin_ro_sockets(host: HostFacts) -> Iterator[Result]:
    """The admin socket reconfigures the daemon itself (logging, clients); the read-only socket
    discloses every guest's definition. Under socket activation systemd creates the sockets, so
    the .socket unit's SocketMode (after drop-ins) is the mode, and the unix_sock_*_perms keys of
    the daemon's configuration are not used (libvirtd.conf says so): the unit is judged then."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        daemon = name.removesuffix(".conf")
        admin_unit = _activating_unit(host, daemon, "admin")
        if admin_unit is None:
            admin = daemon_setting(name, settings, "unix_sock_admin_perms")
            mode = as_mode(admin.value)
            if mode is None or mode & 0o077:
                yield Result.fail(f"{name}:unix_sock_admin_perms", f"{admin.describe()}: others can reach the admin interface")
            else:
                yield Result.passed(f"{name}:unix_sock_admin_perms", admin.describe())
        ro_auth = daemon_setting(name, settings, "auth_unix_ro")
        ro_unit = _activating_unit(host, daemon, "ro")
        if ro_unit is not None:
            ro_mode = as_mode(ro_unit.socket_mode or SYSTEMD_SOCKET_MODE)
            ro_where = _unit_mode(ro_unit) + " (socket activation: unix_sock_ro_perms is not used)"
        else:
            ro_perms = daemon_setting(name, settings, "unix_sock_ro_perms")
            ro_mode = as_mode(ro_perms.value)
            ro_where = ro_perms.describe()
        if ro_auth.value == "none" and (ro_mode is None or ro_mode & 0o006):
            yield Result.fail(f"{name}:auth_unix_ro", f"{ro_auth.describe()}, {ro_where}: any local user reads every guest definition",
                              severity=Severity.LOW)
        else:
            yield Result.passed(f"{name}:auth_unix_ro", f"{ro_auth.describe()}; {ro_where}")

    yield from _per_daemon(host, ("libvirtd.conf", "virtqemud.conf", "virtproxyd.conf"), judge)
    for unit in host.libvirt.socket_units:
        if not unit.name.endswith("-admin.socket") or unit.masked:
            continue
        daemon = unit.name.removesuffix("-admin.socket")
        if _activating_unit(host, daemon, "admin") is None:
            continue
        mode = as_mode(unit.socket_mode or SYSTEMD_SOCKET_MODE)
        if mode is None or mode & 0o077:
            yield Result.fail(unit.name, f"{_mode_text(unit)}: the admin socket is open beyond root", details=_unit_where(unit))
        else:
            yield Result.passed(unit.name, f"{_mode_text(unit)}: the admin socket is root's alone", details=_unit_where(unit))
    for node in host.libvirt.sockets:
        if "admin" in node.path and node.mode & 0o077:
            yield Result.fail(node.path, f"mode {node.mode:04o}: the admin socket is open beyond root")


#: systemd.socket(5): SocketMode= "Defaults to 0666"
SYSTEMD_SOCKET_MODE = "0666"


def _mode_text(unit: SocketUnit) -> str:
    return f"SocketMode={unit.socket_mode}" if unit.socket_mode else f"SocketMode unset (systemd's default {SYSTEMD_SOCKET_MODE})"


def _unit_where(unit: SocketUnit) -> Details:
    """The file and line that set SocketMode; an unset one (systemd's default) names the unit file."""
    at = unit.socket_mode_at
    return {"file": at.file, "line": at.line, "key": "SocketMode"} if at else {"file": unit.path}


def _unit_mode(unit: SocketUnit) -> str:
    return f"{unit.name} {_mode_text(unit)}"


def _activating_unit(host: HostFacts, daemon: str, kind: str) -> SocketUnit | None:
    """The {daemon}-{kind}.socket unit when systemd creates that socket: the unit is enabled, or the
    daemon's main socket is (its service then pulls the -ro and -admin sockets in); not when masked."""
    units = {u.name: u for u in host.libvirt.socket_units}
    unit = units.get(f"{daemon}-{kind}.socket")
    main = units.get(f"{daemon}.socket")
    if unit is None or unit.masked:
        return None
    return unit if unit.enabled or (main is not None and main.enabled) else None


@check("HV-AUTH-007",
    fix="remove users who do not administer the host from groups libvirt and kvm (gpasswd -d USER libvirt); approve the rest with a suppression naming the member",
    references=("libvirt docs/kbase/secureusage.rst", "polkit(8)"),
)
def virt_groups(host: HostFacts) -> Iterator[Result]:
    """Membership of libvirt (through polkit's org.libvirt.unix.manage) is root on the host; kvm
    opens /dev/kvm. Each member is one result: approve people by suppressing their resource."""
    groups, gids = host.accounts.groups, host.accounts.primary_gids
    if isinstance(groups, Unavailable):
        yield Result.unavailable(groups, "/etc/group")
        return
    settings = qemu_settings(host)
    qemu = str(qemu_user(host, settings).value) if isinstance(settings, dict) else None
    service = SERVICE_ACCOUNTS | ({qemu} if qemu else set())
    found = False
    for name in ("libvirt", "kvm"):
        entry = groups.get(name)
        if entry is None:
            continue
        found = True
        members = set(entry.members)
        if isinstance(gids, dict):
            members |= {user for user, gid in gids.items() if gid == entry.gid}
        people = sorted(members - service)
        for user in people:
            yield Result.fail(f"{name}:{user}", f"{user} is in group {name} (root-equivalent)")
        if not people:
            yield Result.passed(f"group {name}", f"no members besides service accounts ({', '.join(sorted(members & service)) or 'none'})")
    for rule in host.libvirt.polkit_rules:
        extra = [g for g in rule.grants if g != "group:libvirt"]
        if extra:
            yield Result.fail(f"polkit:{rule.path}", f"grants org.libvirt.unix.manage to {', '.join(extra)}")
            found = True
    if not found:
        yield Result.not_applicable("no libvirt or kvm group and no polkit rule for libvirt")


@check("HV-AUTH-008",
    fix="set access_drivers = [ \"polkit\" ] and write polkit rules per org.libvirt.api.* action (multi-admin hosts)",
    references=("libvirt docs/acl.rst", "libvirt src/remote/libvirtd.conf.in access_drivers"),
    profile_severity={"single-tenant": Severity.LOW},
)
def access_drivers(host: HostFacts) -> Iterator[Result]:
    """Without an access driver every authenticated client may do everything to every guest."""

    def judge(name: str, settings: dict[str, Any]) -> Iterator[Result]:
        setting = daemon_setting(name, settings, "access_drivers")
        value = setting.value if isinstance(setting.value, list) else [setting.value]
        if "polkit" in value:
            yield Result.passed(f"{name}:access_drivers", setting.describe())
        else:
            yield Result.fail(f"{name}:access_drivers", f"{setting.describe().replace('= []', '= [] (none)')}: every client may manage every guest")

    yield from _per_daemon(host, ("libvirtd.conf", "virtqemud.conf"), judge)


@check("HV-AUTH-009",
    fix="set mech_list: gssapi (or scram-sha-256) in /etc/sasl2/libvirt.conf; keep tcp_min_ssf >= 56",
    references=("libvirt docs/auth.rst (SASL)", "libvirt src/remote/libvirtd.conf.in tcp_min_ssf"),
)
def sasl_mechanisms(host: HostFacts) -> Iterator[Result]:
    """DIGEST-MD5 is broken and PLAIN sends the password over the wire; libvirt needs a mechanism with a security layer."""
    used = []
    for name, settings in daemon_configs(host, REMOTE_CONFIGS):
        if isinstance(settings, Result):
            yield settings
            continue
        if daemon_listens(host, name, settings, "tcp")[0] and daemon_setting(name, settings, "auth_tcp").value == "sasl":
            used.append(f"{name} TCP")
        if daemon_listens(host, name, settings, "tls")[0] and daemon_setting(name, settings, "auth_tls").value == "sasl":
            used.append(f"{name} TLS")
        ssf = daemon_setting(name, settings, "tcp_min_ssf")
        if as_int(ssf.value, 56) < 56:
            yield Result.fail(f"{name}:tcp_min_ssf", f"{ssf.describe()}: weaker than libvirt's minimum")
    mechs = host.libvirt.sasl_mechs
    resource = "/etc/sasl2/libvirt.conf"
    if isinstance(mechs, Unavailable):
        if mechs.kind == "missing" and not used:
            yield Result.not_applicable("SASL is not used and /etc/sasl2/libvirt.conf is absent")
        elif mechs.kind == "invalid":
            yield Result.fail(resource, mechs.reason)
        else:
            yield Result.unavailable(mechs, resource)
        return
    weak = sorted({m.lower() for m in mechs} - STRONG_SASL)
    scope = f" (SASL used by {', '.join(used)})" if used else " (SASL not in use now)"
    where: Details = {"file": resource, "key": "mech_list"}
    if host.libvirt.sasl_mech_line is not None:
        where["line"] = host.libvirt.sasl_mech_line
    if weak:
        yield Result.fail(resource, f"mech_list allows {', '.join(weak)}{scope}", details=where)
    else:
        yield Result.passed(resource, f"mech_list: {' '.join(mechs)}{scope}", details=where)


def _graphics_listen(host: HostFacts, settings: dict[str, Any], kind: str, addresses: list[str | None]) -> list[str]:
    default = str(qemu_setting(settings, f"{kind}_listen").value)
    return [a if a is not None else default for a in addresses]


def _host_name(host: str) -> str:
    """The address in a disk source's host entry: [v6]:port, name:port, or a bare name or v6 address."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@check("HV-AUTH-012",
    fix="add tls='yes' to NBD sources (or nbd_tls = 1), <auth> with a libvirt secret to iSCSI and RBD sources",
    references=("libvirt docs/formatdomain.rst (Hard drives: source protocol, auth, tls)",),
)
def network_storage_auth(host: HostFacts) -> Iterator[Result]:
    """Unauthenticated iSCSI/RBD lets any host on the storage network attach the guest's disk;
    plain NBD sends it in the clear."""
    settings = qemu_settings(host)
    nbd_tls = isinstance(settings, dict) and as_int(qemu_setting(settings, "nbd_tls").value) == 1

    def judge(d: Domain) -> tuple[list[str], Severity | None, list[str]]:
        problems: list[str] = []
        deciding = []
        for number, disk in enumerate(d.disks, 1):
            if disk.type != "network":
                continue
            before = len(problems)
            name = f"{disk.target or 'disk'} ({disk.protocol} {disk.source or ''})".replace(" )", ")")
            if disk.protocol == "nbd" and disk.tls != "yes" and not (nbd_tls and disk.tls != "no"):
                if not all(is_loopback(_host_name(h)) for h in disk.hosts if h):
                    problems.append(f"{name}: NBD without TLS")
            if disk.protocol in ("iscsi", "rbd") and not disk.has_auth:
                problems.append(f"{name}: no <auth>")
            if disk.protocol in ("http", "ftp", "tftp"):
                problems.append(f"{name}: unencrypted, unauthenticated protocol")
            if len(problems) > before:
                deciding += [f"devices/disk[{number}]/source", f"devices/disk[{number}]"]
        return problems, None, deciding

    yield from each_domain(host, judge, applies=lambda d: any(x.type == "network" for x in d.disks),
                           none_reason="no domain uses network storage")
