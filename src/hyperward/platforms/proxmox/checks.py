"""The Proxmox-only checks, as pure judges over ProxmoxFacts (the registry wiring and metadata
live with the engine; the catalog rows are data/catalog-proxmox.json).

Every judge yields at least one result: a verdict per resource, not-applicable with the reason
when the input does not exist, an error when it is garbage or unreadable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from ...model import Details, Result, Severity, Unavailable
from ..judges import register
from . import parsers
from .facts import BackupJob, FirewallFile, ProxmoxFacts, PveGuestConfig, UserConfig
from .guests import container_privileged

Judge = Callable[[ProxmoxFacts], Iterator[Result]]

CLUSTER_FW = "/etc/pve/firewall/cluster.fw"
#: qm.conf(5) flags that, removed ('-') or asserted ('+'), leave a guest without a mitigation
MITIGATION_FLAGS = {
    "-md-clear": "MDS buffer clearing (VERW) hidden",
    "-spec-ctrl": "IBRS/IBPB/STIBP (Spectre v2) hidden",
    "-ibpb": "IBPB (Spectre v2) hidden",
    "-ssbd": "SSBD (Speculative Store Bypass) hidden",
    "-virt-ssbd": "virtual SSBD (AMD) hidden",
    "-amd-ssbd": "AMD SSBD hidden",
    "+amd-no-ssb": "guest told the CPU is not vulnerable to Speculative Store Bypass",
    "-pcid": "PCID hidden (Meltdown's KPTI runs without it on affected Intel CPUs)",
}
BACKUP_MAX_AGE = 8 * 24 * 3600
ADMIN_PRIVS = {"Permissions.Modify", "Sys.Modify"}
_SAFE = re.compile(r"[^\x20-\x7e]")


def _clean(text: str, limit: int = 120) -> str:
    """Values from the audited files go into messages: printable ASCII only, bounded."""
    text = _SAFE.sub("?", text)
    return text if len(text) <= limit else text[:limit] + "..."


def _store(pve: ProxmoxFacts) -> Result | None:
    if isinstance(pve.store, Unavailable):
        return Result.unavailable(pve.store, pve.store.path)
    return None


def _each_guest(pve: ProxmoxFacts, judge: Callable[[PveGuestConfig], list[str] | None], kinds: tuple[str, ...],
                none_reason: str) -> Iterator[Result]:
    """One result per guest of `kinds`: fail with every problem, pass, or skip when the judge
    returns None (not applicable to that guest); unreadable configs are errors naming the file."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    good, bad = pve.guest_configs()
    for item in bad:
        yield Result.unavailable(item, item.path)
    judged = 0
    for guest in good:
        if guest.kind not in kinds:
            continue
        problems = judge(guest)
        if problems is None:
            continue
        judged += 1
        about: Details = {"guest": guest.name, "guest_id": guest.vmid, "platform": "proxmox"}
        if problems:
            yield Result.fail(guest.label, "; ".join(problems), details=about)
        else:
            yield Result.passed(guest.label, details=about)
    if not judged and not bad:
        yield Result.not_applicable(none_reason)


# --- firewall ----------------------------------------------------------------------------------


def _cluster_enabled(pve: ProxmoxFacts) -> bool | None:
    fw = pve.cluster_fw
    if isinstance(fw, Unavailable):
        return False if fw.kind == "missing" else None
    return parsers.as_bool(fw.options.get("enable"), False)


def cluster_firewall(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-FW-004: pve-firewall(8) is off unless cluster.fw says `enable: 1`; with it off no node
    and no guest is filtered, whatever their own files say. policy_in defaults to DROP."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    fw = pve.cluster_fw
    if isinstance(fw, Unavailable):
        if fw.kind == "missing":
            yield Result.fail(CLUSTER_FW, "no cluster.fw: the Proxmox firewall is disabled (enable defaults to 0)")
        else:
            yield Result.unavailable(fw, CLUSTER_FW)
        return
    problems, keys = [], []
    if not parsers.as_bool(fw.options.get("enable"), False):
        problems.append(f"enable: {_clean(fw.options.get('enable', '(unset, default 0)'))}")
        keys.append("enable")
    policy = fw.options.get("policy_in", "DROP").upper()
    if policy == "ACCEPT":
        problems.append("policy_in: ACCEPT (everything not denied by a rule is accepted)")
        keys.append("policy_in")
    if problems:
        # the first deciding option that is written in the file names the line
        key = next((k for k in keys if k in fw.lines), keys[0])
        yield Result.fail(CLUSTER_FW, "; ".join(problems), details={"file": fw.path, "key": key})
    else:
        yield Result.passed(CLUSTER_FW, f"enabled, policy_in {policy}")


def host_firewall(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-FW-005: a node's host.fw `enable: 0` switches its host rules off (default on), and a
    host firewall only runs when the cluster firewall does."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    nodes = pve.scoped_nodes()
    if not nodes:
        yield Result.not_applicable("no nodes/ directory in the cluster configuration")
        return
    cluster = _cluster_enabled(pve)
    for node in nodes:
        resource = f"node/{node.name}"
        fw = node.host_fw
        if isinstance(fw, Unavailable) and fw.kind != "missing":
            yield Result.unavailable(fw, resource)
            continue
        problems = []
        details: Details = {}
        if isinstance(fw, FirewallFile) and not parsers.as_bool(fw.options.get("enable"), True):
            problems.append(f"host.fw enable: {_clean(fw.options.get('enable', ''))}")
            details = {"file": fw.path, "key": "enable"}
        if cluster is False:
            problems.append("inactive: the cluster firewall is off (cluster.fw enable: 1)")
        elif cluster is None:
            yield Result.error("cluster.fw unreadable; whether the host firewall runs is unknown", resource)
            continue
        if problems:
            yield Result.fail(resource, "; ".join(problems), details=details)
        else:
            yield Result.passed(resource, "host firewall enabled" + ("" if isinstance(fw, FirewallFile) else " (default)"))


# --- isolation ---------------------------------------------------------------------------------


def raw_options(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-ISO-027: `args:` hands QEMU arbitrary options past every check Proxmox makes (only
    root@pam may set it); `hookscript:` runs a host script as root at each lifecycle step."""
    def judge(g: PveGuestConfig) -> list[str]:
        problems = []
        if g.config.get("args"):
            problems.append(f"args: {_clean(g.config['args'])}")
        if g.config.get("hookscript"):
            problems.append(f"hookscript: {_clean(g.config['hookscript'])}")
        for key in ("args", "hookscript"):
            if g.pending.get(key):
                problems.append(f"pending {key}: {_clean(g.pending[key])}")
        return problems
    yield from _each_guest(pve, judge, ("qemu", "lxc"), "no VMs or containers defined")


def host_serial(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-ISO-028: `serialN: /dev/...` and `parallelN:` give the guest a host character device
    (qm.conf(5): "direct access to host hardware"); `serialN: socket` is a host-local socket."""
    def judge(g: PveGuestConfig) -> list[str]:
        problems = []
        for key, value in sorted(g.config.items()):
            if (re.match(r"^serial\d+$", key) and value.startswith("/dev/")) or re.match(r"^parallel\d+$", key):
                problems.append(f"{key}: {_clean(value)}")
        return problems
    yield from _each_guest(pve, judge, ("qemu",), "no VMs defined")


def container_isolation(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-ISO-029: a privileged container's root is the host's root; nesting with keyctl, an
    unconfined AppArmor profile, raw device cgroup rules, host device nodes and kept capabilities
    each take away a layer pct normally puts between the container and the host."""
    def judge(g: PveGuestConfig) -> list[str]:
        c = g.config
        problems = []
        if container_privileged(c):
            problems.append("privileged (unprivileged: 1 not set)")
        features = parsers.parse_property_string(c.get("features", ""), None)
        nesting = parsers.as_bool(features.get("nesting"), False)
        keyctl = parsers.as_bool(features.get("keyctl"), False)
        if nesting and keyctl:
            problems.append("features nesting=1 with keyctl=1")
        elif nesting and container_privileged(c):
            problems.append("features nesting=1 in a privileged container")
        if features.get("mount"):
            problems.append(f"features mount={_clean(features['mount'])}")
        profile = c.get("lxc.apparmor.profile", "")
        if "unconfined" in profile.split("\n"):
            problems.append("lxc.apparmor.profile: unconfined")
        for key in ("lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow"):
            for entry in filter(None, c.get(key, "").split("\n")):
                problems.append(f"{key}: {_clean(entry)}")
        if "lxc.cap.drop" in c and not c["lxc.cap.drop"].strip():
            problems.append("lxc.cap.drop: (empty: every capability kept)")
        for entry in filter(None, c.get("lxc.mount.entry", "").split("\n")):
            if entry.startswith("/dev/"):
                problems.append(f"lxc.mount.entry: {_clean(entry)}")
        for key, value in sorted(c.items()):
            if re.match(r"^dev\d+$", key):
                problems.append(f"{key}: {_clean(parsers.parse_property_string(value, 'path').get('path', value))}")
            elif re.match(r"^mp\d+$", key) and parsers.parse_property_string(value, "volume").get("volume", "").startswith("/dev/"):
                problems.append(f"{key}: host block device {_clean(parsers.parse_property_string(value, 'volume')['volume'])}")
        return problems
    yield from _each_guest(pve, judge, ("lxc",), "no containers defined")


# --- side channels -----------------------------------------------------------------------------


def cpu_mitigation_flags(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-SIDE-008: the `cpu: flags=` list may remove the speculation-control features a guest
    kernel needs to protect itself (qm.conf(5) allows exactly: aes, amd-no-ssb, amd-ssbd,
    hv-evmcs, hv-tlbflush, ibpb, md-clear, nested-virt, pcid, pdpe1gb, spec-ctrl, ssbd, virt-ssbd)."""
    def judge(g: PveGuestConfig) -> list[str]:
        _cputype, flags = parsers.cpu_flags(g.config.get("cpu", ""))
        return [f"{flag}: {MITIGATION_FLAGS[flag]}" for flag in flags if flag in MITIGATION_FLAGS]
    yield from _each_guest(pve, judge, ("qemu",), "no VMs defined")


# --- authentication ----------------------------------------------------------------------------

_ANY = {"all", "0/0", "::/0", "0.0.0.0/0"}


def api_exposure(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-AUTH-017: pveproxy (8006) and spiceproxy (3128) bind every address and allow every
    client unless /etc/default/pveproxy restricts them: LISTEN_IP, or an allow-list (pveproxy(8):
    POLICY=deny with ALLOW_FROM, or DENY_FROM=all with ALLOW_FROM)."""
    resource = "/etc/default/pveproxy"
    settings = pve.pveproxy
    if isinstance(settings, Unavailable):
        if settings.kind != "missing":
            yield Result.unavailable(settings, resource)
            return
        settings = {}
    listen = settings.get("LISTEN_IP", "").strip()
    allow = set(parsers.split_list(settings.get("ALLOW_FROM", "")))
    deny = set(parsers.split_list(settings.get("DENY_FROM", "")))
    policy = settings.get("POLICY", "allow").strip().lower() or "allow"
    if listen and listen not in ("0.0.0.0", "::", "*"):
        yield Result.passed(resource, f"LISTEN_IP={_clean(listen)}")
        return
    allow_list = bool(allow) and not (allow & _ANY) and (policy == "deny" or bool(deny & _ANY))
    if allow_list:
        yield Result.passed(resource, f"clients limited to ALLOW_FROM={_clean(','.join(sorted(allow)))}")
        return
    why = "no /etc/default/pveproxy (defaults assumed)" if not settings else "no LISTEN_IP and no allow-list"
    extra = f"; DENY_FROM only blocks {_clean(','.join(sorted(deny)))}" if deny and not deny & _ANY else ""
    deciding = next((k for k in ("LISTEN_IP", "ALLOW_FROM", "POLICY", "DENY_FROM") if k in settings), None)
    where: Details = {"file": resource, "key": deciding} if deciding else {"file": resource}
    yield Result.fail(resource, f"pveproxy/spiceproxy listen on every address and accept every client: {why}{extra}", details=where)


def _user_roles_on_root(users: UserConfig) -> dict[str, list[str]]:
    """member (userid or token id) -> roles it holds on / (directly or through groups)."""
    out: dict[str, list[str]] = {}
    for acl in users.acls:
        if acl.path != "/":
            continue
        for member in acl.members:
            targets = users.groups.get(member[1:], []) if member.startswith("@") else [member]
            for target in targets:
                out.setdefault(target, [])
                out[target].extend(r for r in acl.roles if r not in out[target])
    return out


def _is_admin_role(users: UserConfig, role: str) -> bool:
    return role == "Administrator" or bool(ADMIN_PRIVS & set(users.roles.get(role, [])))


USER_CFG = "/etc/pve/user.cfg"


def _granting_acl(users: UserConfig, member: str) -> Details:
    """The first acl: line on / that gives MEMBER (directly or through a group) an administrative
    role: the line to change."""
    for acl in users.acls:
        if acl.path != "/" or not acl.line or not any(_is_admin_role(users, r) for r in acl.roles):
            continue
        for written in acl.members:
            if written == member or (written.startswith("@") and member in users.groups.get(written[1:], [])):
                return {"file": USER_CFG, "line": acl.line, "key": written}
    return {"file": USER_CFG}


def admin_accounts(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-AUTH-018: Administrator (or a role with Permissions.Modify/Sys.Modify) on / owns the
    cluster; root@pam always has it (the break-glass account, reported as info). A token without
    privilege separation (privsep 0) carries all of its user's rights in one bearer secret."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    users = pve.users
    if isinstance(users, Unavailable):
        yield Result.unavailable(users, "/etc/pve/user.cfg")
        return
    roles = _user_roles_on_root(users)
    yield Result.fail("user root@pam", "Administrator on / (built in; keep it for break-glass use with a second factor)",
                      severity=Severity.INFO)
    for userid in sorted(users.users):
        if userid == "root@pam":
            continue
        user = users.users[userid]
        admin = [r for r in roles.get(userid, []) if _is_admin_role(users, r)]
        if admin and user.enabled:
            yield Result.fail(f"user {userid}", f"{', '.join(admin)} on /", details=_granting_acl(users, userid))
        else:
            yield Result.passed(f"user {userid}", "disabled" if admin else "")
    for token in users.tokens:
        resource = f"token {token.full_id}"
        problems = []
        admin = [r for r in roles.get(token.full_id, []) if _is_admin_role(users, r)]
        if admin:
            problems.append(f"{', '.join(admin)} on /")
        if not token.privsep:
            owner_admin = token.userid == "root@pam" or any(_is_admin_role(users, r) for r in roles.get(token.userid, []))
            problems.append("privsep=0: the token has every right of " + token.userid
                            + (" (an administrator)" if owner_admin else ""))
        if problems:
            where: Details = _granting_acl(users, token.full_id) if admin else (
                {"file": USER_CFG, "line": token.line, "key": token.full_id} if token.line else {"file": USER_CFG})
            yield Result.fail(resource, "; ".join(problems), details=where)
        else:
            yield Result.passed(resource, "privilege-separated")


def second_factor(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-AUTH-019: a password alone guards the web UI and API of every enabled account without a
    TOTP, WebAuthn, U2F, Yubico or recovery factor (priv/tfa.cfg) or a realm that enforces one
    (domains.cfg `tfa type=...`). root@pam first: it can do anything."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    users, tfa, realms = pve.users, pve.tfa, pve.realms
    if isinstance(users, Unavailable):
        yield Result.unavailable(users, "/etc/pve/user.cfg")
        return
    if isinstance(tfa, Unavailable):
        yield Result.unavailable(tfa, "/etc/pve/priv/tfa.cfg")
        return
    realm_tfa = {r.realm: r for r in realms} if not isinstance(realms, Unavailable) else {}
    order = ["root@pam"] + sorted(u for u in users.users if u != "root@pam")
    for userid in order:
        user = users.users.get(userid)
        if user is None:
            continue
        resource = f"user {userid}"
        if not user.enabled:
            yield Result.passed(resource, "disabled")
            continue
        kinds = tfa.get(userid, [])
        realm = realm_tfa.get(userid.rsplit("@", 1)[-1])
        if kinds:
            yield Result.passed(resource, ", ".join(kinds))
        elif user.legacy_keys:
            yield Result.passed(resource, "legacy keys in user.cfg")
        elif realm is not None and realm.tfa:
            yield Result.passed(resource, f"realm {realm.realm} enforces tfa type={_clean(realm.tfa)}")
        elif realm is not None and realm.type == "openid":
            yield Result.not_applicable(f"OpenID realm {realm.realm}: a second factor at the identity provider cannot be seen", resource)
        else:
            severity = Severity.HIGH if userid == "root@pam" else None
            where: Details = {"file": USER_CFG, "line": user.line, "key": userid} if user.line else {"file": USER_CFG}
            yield Result.fail(resource, "no second factor (password only)", severity=severity, details=where)


# --- network -----------------------------------------------------------------------------------


def migration_type(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-NET-008: datacenter.cfg(5) `migration: type=insecure` sends guest memory (keys,
    passwords) over the migration network unencrypted; the default is secure (SSH tunnel)."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    resource = "/etc/pve/datacenter.cfg:migration"
    dc = pve.datacenter
    if isinstance(dc, Unavailable):
        if dc.kind == "missing":
            yield Result.passed(resource, "no datacenter.cfg: type=secure (default)")
        else:
            yield Result.unavailable(dc, resource)
        return
    props = parsers.parse_property_string(dc.get("migration", ""), "type")
    kind = props.get("type", "secure")
    if kind == "insecure":
        net = f" on {_clean(props['network'])}" if props.get("network") else ""
        yield Result.fail(resource, f"type=insecure: guest memory migrates unencrypted{net}")
    else:
        yield Result.passed(resource, f"type={_clean(kind)}" + ("" if "migration" in dc else " (default)"))


def corosync_crypto(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-NET-009: corosync(knet) without crypto_cipher/crypto_hash (or secauth) accepts and sends
    unauthenticated, unencrypted cluster messages: anyone on the link can join or forge the
    cluster state pmxcfs replicates, /etc/pve included."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    resource = "/etc/pve/corosync.conf:totem"
    cs = pve.corosync
    if isinstance(cs, Unavailable):
        if cs.kind == "missing":
            yield Result.not_applicable("no /etc/pve/corosync.conf: a standalone node, not a cluster")
        else:
            yield Result.unavailable(cs, resource)
        return
    cipher, hashing = parsers.corosync_crypto(cs.totem)
    problems = []
    if hashing == "none":
        problems.append("crypto_hash none (no authentication)")
    if cipher == "none":
        problems.append("crypto_cipher none (no encryption)")
    if problems:
        # the key that set the weak value; without one, the totem block that lacks it
        first = "crypto_hash" if hashing == "none" else "crypto_cipher"
        deciding = first if first in cs.totem else ("secauth" if "secauth" in cs.totem else "totem")
        yield Result.fail(resource, "; ".join(problems), details={"file": cs.path, "key": deciding})
    else:
        yield Result.passed(resource, f"crypto_cipher {_clean(cipher)}, crypto_hash {_clean(hashing)}")


# --- backups -----------------------------------------------------------------------------------


def _all_jobs(pve: ProxmoxFacts) -> tuple[list[BackupJob], list[Unavailable]]:
    jobs: list[BackupJob] = []
    bad: list[Unavailable] = []
    for source in (pve.jobs, pve.cron_jobs):
        if isinstance(source, Unavailable):
            if source.kind != "missing":
                bad.append(source)
        else:
            jobs.extend(source)
    return jobs, bad


def vzdump_jobs(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-BAK-006: a disabled vzdump job backs nothing up; an enabled one whose last run (the
    scheduler's job state, or the task index) is older than 8 days or failed is not protecting
    anything either. Without run records recency is not judged."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    jobs, bad = _all_jobs(pve)
    for item in bad:
        yield Result.unavailable(item, item.path)
    if not jobs:
        if not bad:
            yield Result.not_applicable("no vzdump jobs in jobs.cfg or vzdump.cron")
        return
    tasks = pve.tasks if not isinstance(pve.tasks, Unavailable) else None
    recent_ok = [t for t in tasks or [] if t.end is not None and t.status == "OK"]
    for job in jobs:
        resource = f"job {job.id}"
        if not job.enabled:
            yield Result.fail(resource, "disabled (enabled 0)")
            continue
        state = pve.job_states.get(job.id)
        if isinstance(state, Unavailable):
            yield Result.unavailable(state, resource)
            continue
        if state is not None and state.last_start is not None:
            age = pve.collected_at - state.last_start
            if state.state == "stopped" and state.result not in (None, "OK"):
                yield Result.fail(resource, f"last run failed: {_clean(state.result or '')}")
            elif age > BACKUP_MAX_AGE:
                yield Result.fail(resource, f"last run {age // 86400} days ago")
            else:
                yield Result.passed(resource, f"last run {age // 3600} hours ago ({state.state})")
            continue
        if tasks is not None:
            latest = max((t.end or 0 for t in recent_ok), default=None)
            if latest is None:
                yield Result.fail(resource, "the task index has no successful vzdump task")
            elif pve.collected_at - latest > BACKUP_MAX_AGE:
                yield Result.fail(resource, f"newest successful vzdump task ended {(pve.collected_at - latest) // 86400} days ago")
            else:
                yield Result.passed(resource, "a vzdump task succeeded within 8 days")
            continue
        yield Result.not_applicable("enabled; no run records (/var/lib/pve-manager/jobs, /var/log/pve/tasks/index) to judge recency", resource)


def pbs_encryption(pve: ProxmoxFacts) -> Iterator[Result]:
    """HV-BAK-007: a Proxmox Backup Server storage without a client-side key stores guest disks
    readable by whoever administers (or breaks into) the backup server; the key lives in
    /etc/pve/priv/storage/<id>.enc (pvesm set ID --encryption-key autogen)."""
    problem = _store(pve)
    if problem:
        yield problem
        return
    storage = pve.storage
    if isinstance(storage, Unavailable):
        yield Result.unavailable(storage, "/etc/pve/storage.cfg")
        return
    pbs = [s for s in storage if s.type == "pbs"]
    if not pbs:
        yield Result.not_applicable("no Proxmox Backup Server (pbs) storage in storage.cfg")
        return
    for s in pbs:
        resource = f"storage {s.id}"
        if s.encryption_key is None:
            yield Result.error("/etc/pve/priv/storage unreadable: whether a key exists is unknown (run as root)",
                               resource, needs_privilege=True)
        elif s.encryption_key:
            yield Result.passed(resource, "client-side encryption key present")
        else:
            where = f" ({_clean(s.server or '')}:{_clean(s.datastore or '')})" if s.server else ""
            at: Details = {"file": "/etc/pve/storage.cfg", "line": s.line, "key": s.id} if s.line else {"file": "/etc/pve/storage.cfg"}
            yield Result.fail(resource, f"no encryption key{where}: backups readable on the server", details=at)


def vzdump_coverage(pve: ProxmoxFacts) -> dict[str, list[str]]:
    """For the neutral HV-BAK-002: VMID -> the enabled vzdump jobs that include it (all=1 minus
    exclude, its VMID listed, or its pool selected; a job pinned to another node covers only
    that node's guests). An empty list: in no job."""
    good, _bad = pve.guest_configs()
    jobs, _ = _all_jobs(pve)
    pools: dict[str, list[str]] = {} if isinstance(pve.users, Unavailable) else pve.users.pools
    out: dict[str, list[str]] = {}
    for guest in good:
        covering = []
        for job in jobs:
            if not job.enabled or (job.node and job.node != guest.node):
                continue
            if guest.vmid in job.exclude:
                continue
            if job.all or guest.vmid in job.vmids or (job.pool and guest.vmid in pools.get(job.pool, [])):
                covering.append(job.id)
        out[guest.vmid] = covering
    return out


JUDGES: dict[str, Judge] = {
    "HV-FW-004": cluster_firewall,
    "HV-FW-005": host_firewall,
    "HV-ISO-027": raw_options,
    "HV-ISO-028": host_serial,
    "HV-ISO-029": container_isolation,
    "HV-SIDE-008": cpu_mitigation_flags,
    "HV-AUTH-017": api_exposure,
    "HV-AUTH-018": admin_accounts,
    "HV-AUTH-019": second_factor,
    "HV-NET-008": migration_type,
    "HV-NET-009": corosync_crypto,
    "HV-BAK-006": vzdump_jobs,
    "HV-BAK-007": pbs_encryption,
}


register("proxmox", JUDGES, "Proxmox VE is not installed (no /etc/pve, /var/lib/pve-cluster/config.db or pveversion)")
