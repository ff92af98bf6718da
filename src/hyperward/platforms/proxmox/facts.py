"""What hyperward knows about a Proxmox VE node: its cluster configuration (/etc/pve, or the
config.db it is built from), its guests' configs, and the node-local state of backup jobs.

Frozen dataclasses of str/int/bool/None, lists, dict[str, X] and Maybe[X] only, so a snapshot
decodes type-driven like the rest of HostFacts. A guest's `config` keeps the current section's
raw values (minus secrets and owner free text: cipassword, description, env); property strings
are parsed where they are judged (parsers.parse_property_string), so a key a newer Proxmox adds
is carried, never an error.
"""

from __future__ import annotations

from dataclasses import field

from ...facts import Maybe
from ...model import Unavailable
from ...records import frozen

PVE_DIR = "/etc/pve"
CONFIG_DB = "/var/lib/pve-cluster/config.db"


@frozen
class PveSnapshotSection:
    """A `[name]` snapshot section of a guest config: the full configuration `qm rollback` /
    `pct rollback` restores (raw values, secrets and free text dropped as in the current section),
    with the snapshot's own keys (snaptime, vmstate, parent); `lines` has each key's line."""

    name: str
    config: dict[str, str]
    lines: dict[str, int] = field(default_factory=dict)


@frozen
class PveGuestConfig:
    """One VM (`kind` "qemu") or container ("lxc") from nodes/<node>/{qemu-server,lxc}/<vmid>.conf.
    `pending` is the [PENDING] ([pve:pending]) section, `snapshots` the snapshot section names in
    file order and `snapshot_sections` what each restores (facts written before they were kept
    load with none). `pid_file`: /var/run/qemu-server/<vmid>.pid exists (a QEMU process may run; the /proc
    machinery decides), None where not looked at (other nodes, containers)."""

    kind: str
    vmid: str
    node: str
    path: str
    config: dict[str, str]
    pending: dict[str, str]
    snapshots: list[str]
    ignored_lines: int
    pid_file: bool | None = None
    #: on a live node: whether the pid file names a running QEMU (its /proc/PID/exe is QEMU and its
    #: command line carries `-id VMID`, as qemu-server starts it); None offline or not looked at
    running: bool | None = None
    #: the line of each key of `config` in `path`
    lines: dict[str, int] = field(default_factory=dict)
    snapshot_sections: list[PveSnapshotSection] = field(default_factory=list)

    @property
    def name(self) -> str:
        key = "name" if self.kind == "qemu" else "hostname"
        return self.config.get(key) or self.vmid

    @property
    def label(self) -> str:
        """How results name it: `VM 100 (web)` / `CT 200 (dns)`."""
        prefix = "VM" if self.kind == "qemu" else "CT"
        return f"{prefix} {self.vmid} ({self.name})"


@frozen
class FirewallFile:
    """cluster.fw, host.fw or <vmid>.fw: the [OPTIONS] (lower-cased keys), how many rules, which
    IP sets and security groups it defines."""

    path: str
    options: dict[str, str]
    rules: int
    ipsets: list[str]
    groups: list[str]
    ignored_lines: int = 0
    #: the line of each option in `path`
    lines: dict[str, int] = field(default_factory=dict)


@frozen
class PveNode:
    name: str
    local: bool
    host_fw: Maybe[FirewallFile]
    guests: list[Maybe[PveGuestConfig]]


@frozen
class PveUser:
    """A user.cfg user. `legacy_keys`: the keys field holds OTP secrets or yubico ids (old-style
    TFA, the values never kept); "x" (see tfa.cfg) is not counted."""

    userid: str
    enabled: bool
    expire: int
    groups: list[str]
    legacy_keys: bool
    #: its user: line in user.cfg (0: none, the built-in root@pam)
    line: int = 0


@frozen
class PveToken:
    userid: str
    tokenid: str
    privsep: bool
    expire: int
    line: int = 0

    @property
    def full_id(self) -> str:
        return f"{self.userid}!{self.tokenid}"


@frozen
class PveAcl:
    """One acl: line. `members` are userids, `@group`s and `user!token` ids."""

    path: str
    propagate: bool
    members: list[str]
    roles: list[str]
    line: int = 0


@frozen
class PveRealm:
    """A domains.cfg realm: its type (pam, pve, ldap, ad, openid) and the TFA it enforces
    (`tfa type=oath|yubico`), or None."""

    realm: str
    type: str
    tfa: str | None


@frozen
class UserConfig:
    users: dict[str, PveUser]
    tokens: list[PveToken]
    groups: dict[str, list[str]]
    roles: dict[str, list[str]]
    acls: list[PveAcl]
    pools: dict[str, list[str]]


@frozen
class PveStorage:
    """A storage.cfg entry. `encryption_key` (pbs only): /etc/pve/priv/storage/<id>.enc exists;
    None when that directory could not be read."""

    id: str
    type: str
    content: list[str]
    disabled: bool
    server: str | None = None
    datastore: str | None = None
    encryption_key: bool | None = None
    #: its `type: id` line in storage.cfg
    line: int = 0


@frozen
class BackupJob:
    """A vzdump job from jobs.cfg (`source` "jobs.cfg") or a vzdump.cron line ("vzdump.cron",
    id `cron-<line number>`)."""

    id: str
    source: str
    enabled: bool
    schedule: str
    all: bool
    vmids: list[str]
    pool: str | None
    exclude: list[str]
    storage: str | None
    node: str | None


@frozen
class JobState:
    """/var/lib/pve-manager/jobs/vzdump-<id>.json on this node: the scheduler's last run."""

    id: str
    state: str
    last_start: int | None
    result: str | None
    upid: str | None


@frozen
class TaskRecord:
    """One vzdump task from /var/log/pve/tasks/index (end None: still running)."""

    upid: str
    node: str
    id: str
    start: int
    end: int | None
    status: str


@frozen
class CorosyncFacts:
    path: str
    totem: dict[str, str]
    nodes: int
    interfaces: int
    #: totem key (and "totem", the block) -> line
    lines: dict[str, int] = field(default_factory=dict)


@frozen
class ProxmoxFacts:
    """`source`: "pmxcfs" (the /etc/pve tree), "config.db" (rebuilt from the SQLite database,
    offline copies), or "none". `store` is the path the tree came from, or the Unavailable that
    made it unusable (a corrupt config.db): then every other field is empty and every check
    reports that one problem. `collected_at` (epoch seconds) is the reference time for recency."""

    source: str
    store: Maybe[str]
    collected_at: int
    local_node: str | None
    nodes: list[PveNode]
    cluster_fw: Maybe[FirewallFile]
    guest_fw: dict[str, Maybe[FirewallFile]]
    datacenter: Maybe[dict[str, str]]
    users: Maybe[UserConfig]
    realms: Maybe[list[PveRealm]]
    tfa: Maybe[dict[str, list[str]]]
    storage: Maybe[list[PveStorage]]
    jobs: Maybe[list[BackupJob]]
    cron_jobs: Maybe[list[BackupJob]]
    job_states: dict[str, Maybe[JobState]]
    tasks: Maybe[list[TaskRecord]]
    corosync: Maybe[CorosyncFacts]
    pveproxy: Maybe[dict[str, str]]
    notes: list[str] = field(default_factory=list)
    #: the line of each datacenter.cfg key
    datacenter_lines: dict[str, int] = field(default_factory=dict)
    #: the line of each /etc/default/pveproxy variable
    pveproxy_lines: dict[str, int] = field(default_factory=dict)

    def source_lines(self) -> dict[str, dict[str, int]]:
        """file -> option -> line for the firewall files, datacenter.cfg, /etc/default/pveproxy and
        corosync.conf's totem keys, so a finding names its line."""
        files = [self.cluster_fw, *(n.host_fw for n in self.nodes), *self.guest_fw.values()]
        out = {fw.path: fw.lines for fw in files if isinstance(fw, FirewallFile) and fw.lines}
        if self.datacenter_lines:
            out["/etc/pve/datacenter.cfg"] = self.datacenter_lines
        if self.pveproxy_lines:
            out["/etc/default/pveproxy"] = self.pveproxy_lines
        if isinstance(self.corosync, CorosyncFacts) and self.corosync.lines:
            out[self.corosync.path] = self.corosync.lines
        return out

    def scoped_nodes(self) -> list[PveNode]:
        """The nodes whose guests and host firewall this scan judges: the local node when known
        (every node of a cluster sees all nodes' configs; each VM is judged on the node it runs
        on), else every node found."""
        local = [n for n in self.nodes if n.local]
        return local or list(self.nodes)

    def guest_configs(self) -> tuple[list[PveGuestConfig], list[Unavailable]]:
        good: list[PveGuestConfig] = []
        bad: list[Unavailable] = []
        for node in self.scoped_nodes():
            for guest in node.guests:
                if isinstance(guest, Unavailable):
                    bad.append(guest)
                else:
                    good.append(guest)
        return good, bad
