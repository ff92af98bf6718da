"""The snapshot of a host: what the collectors read, what the checks judge.

Every field that comes from one input is `Maybe[T]`: either the parsed value or an `Unavailable`
that says which path could not be read and why. Snapshots are JSON (see docs/snapshot.md);
`FORMAT_VERSION` changes whenever a field changes meaning or type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, TypeVar, Union

from .model import Unavailable
from .records import frozen

if typing.TYPE_CHECKING:
    from .guests.model import Guest
    from .reach import Reach

VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"
# Processes of the virtualization stack besides QEMU itself (QemuProcess.kind).
STACK_DAEMONS = ("libvirtd", "virtqemud", "virtproxyd", "virtlogd", "virtlockd", "virtnetworkd", "virtstoraged", "swtpm")

FORMAT_NAME = "hyperward-facts"
FORMAT_VERSION = 6

T = TypeVar("T")
Maybe = Union[T, Unavailable]


@frozen
class Meta:
    hostname: str
    root: str
    collected_at: str
    euid: int
    hyperward_version: str


@frozen
class SourceLine:
    """Where in a configuration file a value was written, for a finding's file:line."""

    file: str
    line: int


@frozen
class CmdlineSource:
    """A kernel command line: the running one (/proc/cmdline) or one configured for next boot."""

    path: str
    running: bool
    tokens: Maybe[list[str]]
    #: token -> the file and line that wrote it (GRUB defaults, /etc/kernel/cmdline), where certain
    lines: dict[str, SourceLine] = dataclasses.field(default_factory=dict)


@frozen
class RebootRequired:
    flagged: bool
    packages: list[str]


@frozen
class KernelFacts:
    release: Maybe[str]
    cmdlines: list[CmdlineSource]
    tainted: Maybe[int]
    installed: Maybe[list[str]]
    reboot_required: Maybe[RebootRequired]


@frozen
class CpuInfo:
    vendor: str | None
    family: int | None
    model: int | None
    microcode: str | None


@frozen
class SmtFacts:
    control: Maybe[str]
    active: Maybe[str]


@frozen
class CpuFacts:
    vulnerabilities: Maybe[dict[str, Maybe[str]]]
    smt: SmtFacts
    info: Maybe[CpuInfo]


@frozen
class ModprobeOption:
    module: str
    param: str
    value: str
    file: str


@frozen
class ModuleFacts:
    """Kernel modules and their parameters. `loaded` maps module -> parameter -> value for the
    modules hyperward judges that are loaded; `options` are the modprobe.d settings for next load."""

    loaded: Maybe[dict[str, dict[str, Maybe[str]]]]
    options: list[ModprobeOption]


@frozen
class KsmFacts:
    run: int
    pages_sharing: int | None


@frozen
class AptFacts:
    files: list[str]
    settings: dict[str, str]
    unattended_upgrades_installed: bool | None
    upgrade_timer_masked: bool


@frozen
class DnfAutomaticFacts:
    path: str
    apply_updates: str | None
    upgrade_type: str | None
    timers_enabled: list[str]


@frozen
class Package:
    """An installed package; `source` is the source package advisories name (qemu for qemu-system-x86)."""

    name: str
    arch: str
    version: str
    source: str
    source_version: str
    format: str


@frozen
class PendingUpdate:
    name: str
    arch: str
    installed: str
    candidate: str
    source: str
    origin: str
    security: bool


@frozen
class AptState:
    """What apt would upgrade, computed from the lists under /var/lib/apt/lists and the pins."""

    lists: list[str]
    lists_updated: str | None
    pins: int
    pending: list[PendingUpdate]
    problems: list[Unavailable]
    # Whether a configured source (or, with no sources files, a list) is a security archive: without
    # one, security updates never arrive. None in snapshots older than this field.
    security_archive: bool | None = None
    sources: list[str] = dataclasses.field(default_factory=list)  # "URI suite" of the configured deb sources


@frozen
class ApkState:
    """What `apk upgrade` would offer: the installed packages against the newest version of each in
    the repository indexes apk cached under /var/cache/apk (no index: nothing is known)."""

    indexes: list[str]
    indexes_updated: str | None
    repositories: list[str]
    pending: list[PendingUpdate]
    problems: list[Unavailable]


@frozen
class OsRelease:
    id: str
    version_id: str
    codename: str


@frozen
class VulnMatch:
    advisory: str
    cve: str
    package: str
    source: str
    installed: str
    fixed: str | None
    severity: str | None
    cvss: float | None
    fixed_by_pending: bool
    database: str


@frozen
class VulnFacts:
    database: str
    updated_at: str | None
    sources: list[str]
    advisories: int
    release: str
    matches: list[VulnMatch]
    max_age_days: int = 7


@frozen
class PatchingFacts:
    apt: AptFacts | None
    dnf_automatic: DnfAutomaticFacts | None
    installed_packages: Maybe[dict[str, str]]
    packages: Maybe[list[Package]] = dataclasses.field(default_factory=list)
    os: Maybe[OsRelease] = dataclasses.field(default_factory=lambda: Unavailable("/etc/os-release", "missing", "not collected"))
    apt_state: Maybe[AptState] | None = None
    vulnerabilities: Maybe[VulnFacts] | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)
    # None: no apk database (not Alpine), or a snapshot older than this field
    apk_state: Maybe[ApkState] | None = None


@frozen
class DeviceNode:
    path: str
    mode: int
    uid: int
    gid: int
    owner: str | None
    group: str | None
    is_char_device: bool


@frozen
class GroupEntry:
    gid: int
    members: list[str]


@frozen
class AccountFacts:
    groups: Maybe[dict[str, GroupEntry]]
    primary_gids: Maybe[dict[str, int]]


@frozen
class FirmwareFacts:
    """tpm_version_major is 0 when the host has no TPM device."""

    efi: Maybe[bool]
    secure_boot: Maybe[int]
    tpm_version_major: Maybe[int]
    tpm_event_log: Maybe[bool]


@frozen
class LibvirtConfig:
    path: str
    settings: Maybe[dict[str, Any]]
    #: the line each setting is on, so a finding names where it was decided
    lines: dict[str, int] = dataclasses.field(default_factory=dict)


# --- libvirt, QEMU and the hardware they hand to guests -------------------------------------


@frozen
class Seclabel:
    type: str | None
    model: str | None
    relabel: str | None
    label: str | None
    device: str | None = None


@frozen
class Disk:
    type: str | None
    device: str
    target: str | None
    driver_type: str | None
    source: str | None
    protocol: str | None
    hosts: list[str]
    tls: str | None
    has_auth: bool
    encryption: str | None
    readonly: bool
    shareable: bool
    rawio: str | None
    sgio: str | None
    backing: list[str]


@frozen
class Filesystem:
    type: str | None
    accessmode: str | None
    driver: str | None
    source: str | None
    target: str | None
    readonly: bool


@frozen
class HostDev:
    type: str | None
    address: str | None


@frozen
class Interface:
    type: str | None
    source: str | None
    model: str | None
    target_dev: str | None
    mac: str | None
    filterref: str | None
    vlan_tags: list[int]
    vlan_trunk: bool
    trust_guest_rx_filters: bool


@frozen
class Listen:
    type: str
    address: str | None
    network: str | None


@frozen
class Graphics:
    """has_password says whether a password is set; the password itself is never collected."""

    type: str
    listens: list[Listen]
    autoport: bool
    port: int | None
    tls_port: int | None
    has_password: bool
    default_mode: str | None
    clipboard: str | None
    filetransfer: str | None


@frozen
class CharDev:
    element: str
    type: str | None
    host: str | None
    service: str | None
    mode: str | None
    protocol: str | None
    tls: str | None


@frozen
class Tpm:
    model: str | None
    backend: str | None
    version: str | None
    encrypted: bool


@frozen
class Domain:
    """The security-relevant part of one domain definition. `origin` is the file it came from
    or "libvirt API"; `running` is true when a live definition was seen."""

    name: str
    uuid: str
    origin: str
    running: bool
    type: str | None
    arch: str | None
    machine: str | None
    firmware: str | None
    loader_type: str | None
    loader_readonly: str | None
    loader_secure: str | None
    firmware_features: dict[str, str]
    smm: str | None
    seclabels: list[Seclabel]
    memory_kib: int | None
    dump_core: str | None
    nosharepages: bool
    locked: bool
    hard_limit_kib: int | None
    vcpus: int | None
    cpu_mode: str | None
    cpu_features: dict[str, str]
    disks: list[Disk]
    filesystems: list[Filesystem]
    hostdevs: list[HostDev]
    interfaces: list[Interface]
    graphics: list[Graphics]
    chardevs: list[CharDev]
    tpms: list[Tpm]
    launch_security: str | None
    sev_policy: int | None
    qemu_passthrough: list[str]
    legacy_devices: list[str]
    redirdevs: int
    redirfilter_default_allow: bool | None
    #: element path under <domain> ("os", "devices/graphics") -> the line of its first occurrence in
    #: `origin`, so a finding names the element that decided it
    lines: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.uuid})" if self.uuid else self.name


@frozen
class DomainSnapshot:
    """One of libvirt's snapshot metadata files: the snapshot's name and the definition a revert
    restores (its `origin` the metadata file, so findings name its lines); `current`: libvirt's
    <active>1</active>, the snapshot the domain was last taken or reverted to."""

    name: str
    domain: Domain
    current: bool


@frozen
class Network:
    name: str
    uuid: str
    origin: str
    forward_mode: str | None
    bridge: str | None
    interfaces: list[str]


@frozen
class SocketUnit:
    """A systemd socket unit after its drop-ins; `enabled` means linked into a .wants directory."""

    name: str
    path: str
    listen: list[str]
    socket_mode: str | None
    socket_group: str | None
    enabled: bool
    masked: bool
    #: the unit file or drop-in and line that set the effective SocketMode
    socket_mode_at: SourceLine | None = None


@frozen
class FileNode:
    path: str
    mode: int
    uid: int
    gid: int
    owner: str | None
    group: str | None
    kind: str


@frozen
class PolkitRule:
    path: str
    grants: list[str]


@frozen
class TlsCertificate:
    path: str
    not_after: Maybe[str]


@frozen
class QemuProcess:
    """One running QEMU, or (kind libvirtd, virtqemud, virtlogd, swtpm ...) a daemon of the stack.
    The command line is reduced to the facts the checks judge; it is not stored, because it can
    carry secrets."""

    pid: int
    exe: Maybe[str]
    exe_deleted: bool
    deleted_libraries: list[str]
    uid: int | None
    seccomp: int | None
    lsm_label: Maybe[str]
    cgroup: str | None
    domain_name: str | None
    domain_uuid: str | None
    managed_by: str | None
    cpu_pm: bool
    sandbox: str | None
    kind: str = "qemu"


@frozen
class ApiFacts:
    uri: str
    connected: bool
    error: str | None
    secmodels: list[str]


@frozen
class LibvirtFacts:
    installed: bool
    configs: dict[str, LibvirtConfig]
    qemu_user_default: str | None
    daemon_args: dict[str, str]
    socket_units: list[SocketUnit]
    sockets: list[FileNode]
    domains: list[Maybe[Domain]]
    networks: list[Maybe[Network]]
    nwfilters: Maybe[dict[str, list[str]]]
    pools: list[str]
    host_lsms: Maybe[list[str]]
    sasl_mechs: Maybe[list[str]]
    polkit_rules: list[PolkitRule]
    tls_key: Maybe[FileNode]
    tls_cert: Maybe[TlsCertificate]
    paths: dict[str, Maybe[FileNode]]
    processes: Maybe[list[QemuProcess]]
    pidfiles: dict[str, int]
    api: ApiFacts | None
    #: the line of /etc/sasl2/libvirt.conf's mech_list (a finding names it)
    sasl_mech_line: int | None = None
    #: /var/lib/libvirt/qemu/snapshot/<domain>/*.xml; Unavailable for a file or directory that
    #: could not be read (denied: a scan without root's rights)
    snapshots: list[Maybe[DomainSnapshot]] = dataclasses.field(default_factory=list)

    def guest_bridges(self) -> list[str]:
        """Bridges guests attach to: libvirt networks' bridges and bridges named by guest NICs."""
        bridges = {n.bridge for n in self.networks if isinstance(n, Network) and n.bridge}
        by_network = {n.name: n.bridge for n in self.networks if isinstance(n, Network) and n.bridge}
        for d in self.domains:
            if isinstance(d, Domain):
                for i in d.interfaces:
                    if i.type == "bridge" and i.source:
                        bridges.add(i.source)
                    elif i.type == "network" and i.source in by_network:
                        bridges.add(by_network[i.source])
        return sorted(b for b in bridges if b)


@frozen
class Mount:
    source: str
    target: str
    fstype: str


@frozen
class Listener:
    protocol: str
    address: str
    port: int


@frozen
class HardwareFacts:
    mem_total_kib: Maybe[int]
    cpus: Maybe[int]
    iommu_groups: Maybe[dict[str, list[str]]]
    pci_classes: dict[str, str]
    vfio_noiommu: list[str]
    mounts: Maybe[list[Mount]]


# --- access: SSH, PAM, local accounts -------------------------------------------------------


@frozen
class MatchOverride:
    criteria: str
    keyword: str
    value: str
    source: str


@frozen
class SshFacts:
    """The effective sshd configuration for the judged keywords; `sources[k]` is file:line, or
    None for OpenSSH's default. `sshd_t` is what the installed sshd itself printed (`sshd -T`)."""

    config: str
    values: dict[str, str]
    sources: dict[str, str | None]
    overrides: list[MatchOverride]
    sshd_t: Maybe[dict[str, str]] | None
    problems: list[Unavailable]


@frozen
class PamStack:
    service: str
    auth_modules: list[str]
    mfa_modules: list[str]


@frozen
class SudoRule:
    file: str
    line: int
    who: str


@frozen
class AccessFacts:
    ssh: Maybe[SshFacts] | None
    pam: dict[str, Maybe[PamStack]]
    password_schemes: Maybe[dict[str, str]]
    login_shells: dict[str, str]
    uid0: list[str]
    nopasswd_all: Maybe[list[SudoRule]]
    pwquality: Maybe[dict[str, str]]
    login_defs: Maybe[dict[str, str]]
    #: the password-changing stack (/etc/pam.d/common-password, or system-auth): module -> its arguments
    password_modules: Maybe[dict[str, str]] = Unavailable("/etc/pam.d/common-password", "missing", "not collected")
    #: file -> user or key -> line (/etc/shadow, UID 0 entries of /etc/passwd, /etc/login.defs), for a finding's line
    lines: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    #: module -> the file and line of its winning `password` rule; where pwquality's minlen was set
    password_rules: dict[str, SourceLine] = dataclasses.field(default_factory=dict)
    pwquality_minlen_at: SourceLine | None = None


# --- intrusion detection, logging, time ------------------------------------------------------


@frozen
class ServiceFacts:
    """Process names running now (live hosts; /proc/PID/comm) and units enabled in *.wants."""

    running: Maybe[list[str]]
    enabled: list[str]


@frozen
class AideFacts:
    """coverage: per required path, None when a rule that could decide it was not evaluated
    (unknown_rules says which and why: a regex that could backtrack for seconds, or the time
    budget spent)."""

    config: str
    coverage: dict[str, bool | None]
    database: Maybe[str]
    periodic: bool
    last_check: str | None
    unknown_rules: list[str] = dataclasses.field(default_factory=list)


@frozen
class AuditWatch:
    path: str
    permissions: str
    file: str
    line: int = 0


@frozen
class IdsTool:
    name: str
    interfaces: list[str]
    rules_updated: str | None
    config: str | None


@frozen
class LogFacts:
    journald_storage: str
    journal_dir: bool
    forwarding: list[str]


@frozen
class GuestMonitorFacts:
    """hyperward monitor's heartbeat (from its database) and other guest-activity monitors seen.
    pid_running is None where processes cannot be seen (offline roots)."""

    database: str
    present: bool
    error: str | None
    pid: int | None
    pid_running: bool | None
    last_sample: str | None
    interval_s: float | None
    connected: bool | None
    unit_enabled: bool
    exporters: list[str]


@frozen
class MonitoringFacts:
    services: ServiceFacts
    aide: AideFacts | None
    audit_watches: Maybe[list[AuditWatch]]
    ids_tools: list[IdsTool]
    guest_bridges: list[str]
    logs: LogFacts
    time_sync: int | None
    guest_monitor: GuestMonitorFacts | None = None


# --- backups -----------------------------------------------------------------------------------


@frozen
class BackupRepository:
    """A repository the config names. The password comes from password_file or the environment
    variable password_env, never from the command line; it is not part of the facts."""

    kind: str
    location: str
    password_file: str | None = None
    password_env: str | None = None
    name: str | None = None
    binary: str | None = None


@frozen
class BackupSnapshot:
    time: str
    label: str
    paths: list[str]
    tags: list[str]


@frozen
class BackupRepoFacts:
    kind: str
    location: str
    encryption: str | None
    same_host: bool | None
    snapshots: Maybe[list[BackupSnapshot]]


@frozen
class BackupFacts:
    guest_max_age_hours: int
    host_max_age_days: int
    repositories: list[BackupRepoFacts]


# --- host networking ---------------------------------------------------------------------------


@frozen
class NetInterface:
    """One interface in /sys/class/net: its kind (bridge, vlan, ...), the bridge it is a port of,
    and for a VLAN its parent device."""

    name: str
    kind: str
    master: str | None
    vlan_parent: str | None


@frozen
class VirtualFunction:
    """An SR-IOV VF as `ip -d link` shows it under its PF: spoofchk and trust (None: not reported)."""

    pf: str
    vf: int
    mac: str | None
    spoofchk: bool | None
    trust: bool | None


@frozen
class SocketOwner:
    protocol: str
    address: str
    port: int
    process: str | None
    pid: int | None


@frozen
class NetworkFacts:
    interfaces: Maybe[dict[str, NetInterface]]
    default_route: Maybe[list[str]]
    # None: /proc/sys/net exists without net/bridge (br_netfilter not loaded); Unavailable: no /proc/sys to tell
    bridge_nf: Maybe[dict[str, int]] | None
    addresses: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    sockets: Maybe[list[SocketOwner]] = dataclasses.field(default_factory=list)
    nftables: Maybe[dict[str, Any]] | None = None
    vfs: Maybe[list[VirtualFunction]] | None = None
    iptables_legacy: Maybe[dict[str, Any]] | None = None


# --- drift and scan history -------------------------------------------------------------------


@frozen
class DriftFacts:
    """Normalized digests of the virtualization configuration now, and the accepted baseline."""

    current: dict[str, str]
    baseline: Maybe[dict[str, str]]
    baseline_path: str
    accepted_at: str | None


@frozen
class ScanRecord:
    source: str
    time: str
    targets: list[str]


@frozen
class ScanFacts:
    """Vulnerability scans of this host and its guests: hyperward's own recorded scans and report
    files of OpenVAS/Greenbone or Nessus. `host_names` and `guest_names` are what a report may call
    them (names, addresses from the libvirt DHCP leases)."""

    records: list[ScanRecord]
    problems: list[Unavailable]
    host_names: list[str]
    guest_names: dict[str, list[str]]


# --- inside the guests (guests/inspect) ---------------------------------------------------------


@frozen
class KeyRef:
    """An SSH key found in a file, by its fingerprint only (SHA256:..., as ssh-keygen -l prints it):
    the key itself, private or public, is never kept. `role`: "user" (an identity key), "host" (an
    sshd host key), "authorized" (a line of an authorized_keys file). `owner`: the account whose
    file it is, where known."""

    fingerprint: str
    kind: str
    path: str
    role: str
    owner: str | None = None


@frozen
class HashRef:
    """One account's password hash, as a token keyed with a secret drawn for this scan only: two
    equal tokens mean two equal hash strings (a cloned or reused password), and a token says nothing
    about the hash outside the scan that made it."""

    user: str
    scheme: str
    token: str
    path: str


@frozen
class SecretRef:
    """A credential left in a file: where (path and line) and what kind, never its value."""

    path: str
    line: int
    kind: str


@frozen
class GuestDiskScan:
    """One disk of a guest as the scan saw it. `status`: "opened", "encrypted" (not opened),
    "outside-pool" (the path resolves outside its storage directory: not opened), "not-applicable"
    (a network disk, an unresolvable volume), "error" (corrupt, truncated, a backing-file loop)."""

    source: str
    target: str | None
    device: str
    status: str
    reason: str = ""
    format: str | None = None
    virtual_size: int | None = None
    backing: list[str] = dataclasses.field(default_factory=list)
    resolved: str | None = None


@frozen
class Lifecycle:
    """Where a release stands in its vendor's support calendar, from the table named in `source`.
    `eol`: the last day of support that needs no contract (None: no end announced yet);
    `extended`: a later end that a paid or opt-in programme gives (Freexian ELTS, Ubuntu Pro ESM),
    which counts only when `extended_in_use` (the guest's package sources name that programme).
    `released`: the release date ("released" when the table gives none); None for a development
    release (testing, unstable), which has no support calendar."""

    distro: str
    release: str
    name: str
    released: str | None
    eol: str | None
    eol_label: str
    extended: str | None
    extended_label: str
    extended_in_use: bool
    source: str
    #: the compile date and max age of hyperward's sourced lifecycle table when the date came from
    #: it (None from distro-info-data, which the scanning host's package updates keep current)
    table_compiled: str | None = None
    table_max_age_days: int | None = None


@frozen
class GuestInside:
    """What a guest's disks hold, read from the host without an agent. `scanned` False: no
    filesystem of the guest could be read (`reason` says why); the other fields are then empty.
    `running`: the guest ran while its disks were read, so a file may have been caught mid-write."""

    platform: str
    guest_id: str
    name: str
    label: str
    scanned: bool
    reason: str
    running: bool
    disks: list[GuestDiskScan]
    filesystems: list[str]
    os: Maybe[OsRelease]
    os_product: str | None
    patching: PatchingFacts | None
    access: AccessFacts | None
    keys: list[KeyRef]
    hashes: list[HashRef]
    secrets: list[SecretRef]
    notes: list[str] = dataclasses.field(default_factory=list)
    #: None in snapshots older than this field and for guests not scanned
    lifecycle: Maybe[Lifecycle] | None = None


@frozen
class HostTrust:
    """What on the host a guest's credentials could lead to: the keys the host's sshd accepts
    (every account's authorized_keys, AuthorizedKeysFile targets, the Proxmox cluster's shared
    file), the host's own private and host keys, and its password hashes as scan-keyed tokens."""

    trusted: list[KeyRef]
    own_keys: list[KeyRef]
    hashes: list[HashRef]
    problems: list[Unavailable]


@frozen
class GuestScanFacts:
    engine: str
    launch_s: float
    scan_s: float
    guests: list[GuestInside]
    host: HostTrust
    problems: list[str]


@frozen
class HostFacts:
    meta: Meta
    kernel: KernelFacts
    cpu: CpuFacts
    modules: ModuleFacts
    ksm: Maybe[KsmFacts]
    patching: PatchingFacts
    accounts: AccountFacts
    firmware: FirmwareFacts
    hardware: HardwareFacts
    access: AccessFacts
    monitoring: MonitoringFacts
    backups: BackupFacts | None = None
    drift: DriftFacts | None = None
    scans: ScanFacts | None = None
    network: NetworkFacts | None = None
    kvm_device: Maybe[DeviceNode] | None = None
    #: each detected platform's own facts, by platform name (platforms/<name>: facts_type)
    platforms: PlatformFacts = dataclasses.field(default_factory=lambda: PlatformFacts())
    #: inside the guests' disks, when the scan was asked to look (`scan --guests`, `guests scan`)
    guest_insides: GuestScanFacts | None = None

    @property
    def libvirt(self) -> LibvirtFacts:
        """libvirt's facts; on a source without libvirt, an empty "not installed" set."""
        found = self.platforms.get("libvirt")
        return found if isinstance(found, LibvirtFacts) else EMPTY_LIBVIRT

    @property
    def qemu_conf(self) -> LibvirtConfig:
        return self.libvirt.configs["qemu.conf"]

    @functools.cached_property
    def guests(self) -> list[Guest]:
        """Every platform's VMs and containers on the neutral model, mapped once per scan."""
        from .platforms import registry

        known = registry()
        return [g for name, facts in self.platforms.items() if name in known for g in known[name].guests(facts)]

    @functools.cached_property
    def guest_snapshots(self) -> list[Guest]:
        """The settings the guests' snapshots bring back on restore, on the neutral model: the
        per-guest checks judge them too, since a restore is one click away."""
        from .platforms import registry

        known = registry()
        return [g for name, facts in self.platforms.items() if name in known for g in known[name].snapshots(facts)]

    @functools.cached_property
    def reachability(self) -> list[Reach]:
        """Every (guest-facing bridge, host service) pair through the host's firewall, evaluated once
        per scan for HV-FW-002, the reports and `hyperward reach` alike."""
        from .reach import reachability

        return reachability(self)

    @functools.cached_property
    def _guest_bridges(self) -> list[str]:
        from .platforms import registry

        known = registry()
        return sorted({b for name, facts in self.platforms.items() if name in known for b in known[name].guest_bridges(facts)})

    def guest_bridges(self) -> list[str]:
        """Host bridges any platform's guests attach to (computed once per scan)."""
        return self._guest_bridges


class PlatformFacts(dict[str, Any]):
    """Platform name -> that platform's facts. Snapshots decode each entry with the type its
    platform declares, so a new platform needs no change here."""


EMPTY_LIBVIRT = LibvirtFacts(installed=False, configs={"qemu.conf": LibvirtConfig("/etc/libvirt/qemu.conf", Unavailable("/etc/libvirt/qemu.conf", "missing", "not present"))},
                             qemu_user_default=None, daemon_args={}, socket_units=[], sockets=[], domains=[], networks=[],
                             nwfilters=Unavailable("/etc/libvirt/nwfilter", "missing", "not present"), pools=[],
                             host_lsms=[], sasl_mechs=Unavailable("/etc/sasl2/libvirt.conf", "missing", "not present"),
                             polkit_rules=[], tls_key=Unavailable("/etc/pki/libvirt/private/serverkey.pem", "missing", "not present"),
                             tls_cert=Unavailable("/etc/pki/libvirt/servercert.pem", "missing", "not present"), paths={},
                             processes=[], pidfiles={}, api=None)


class SnapshotError(Exception):
    """A snapshot that cannot be used: unreadable, not JSON, wrong format or version, wrong shape."""


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


#: exact types to_jsonable returns as they are, tested by type() before recursing: a guest's
#: inventory is ~110 values and most are these (a subclass of one still takes the full path)
_PLAIN = frozenset({str, int, float, bool, type(None)})


def to_jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    plain = _PLAIN
    if isinstance(value, Unavailable):
        return {"$unavailable": {"path": value.path, "kind": value.kind, "reason": value.reason}}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in plain else to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k if type(k) is str else str(k): v if type(v) in plain else to_jsonable(v) for k, v in value.items()}
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        out: dict[str, Any] = {}
        for name in names:
            v = getattr(value, name)
            out[name] = v if type(v) in plain else to_jsonable(v)
        return out
    return value


def dump_snapshot(facts: HostFacts) -> str:
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "facts": to_jsonable(facts)}
    return json.dumps(document, indent=1, sort_keys=False)


def load_snapshot(text: str, source: str = "snapshot") -> HostFacts:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SnapshotError(f"{source}: not a JSON document ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise SnapshotError(f"{source}: not a hyperward facts snapshot (missing \"format\": \"{FORMAT_NAME}\")")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"{source}: snapshot format version {version!r} is not supported (this hyperward reads version {FORMAT_VERSION}): "
            "collect it again with this hyperward ('hyperward collect -o FILE' on that host)"
        )
    try:
        facts: HostFacts = _from_jsonable(HostFacts, document.get("facts"), "facts")
        return facts
    except _ShapeError as exc:
        raise SnapshotError(f"{source}: {exc}") from None


class _ShapeError(Exception):
    pass


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _platforms_from_jsonable(value: Any, where: str) -> PlatformFacts:
    from .platforms import registry

    if not isinstance(value, dict):
        raise _ShapeError(f"{where}: expected an object, got {type(value).__name__}")
    known = registry()
    out = PlatformFacts()
    for name, facts in value.items():
        if name not in known:
            raise _ShapeError(f"{where}.{name}: unknown platform (this hyperward knows {', '.join(sorted(known))})")
        out[name] = _from_jsonable(known[name].facts_type, facts, f"{where}.{name}")
    return out


def _from_jsonable(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if tp is PlatformFacts:
        return _platforms_from_jsonable(value, where)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if isinstance(value, dict) and "$unavailable" in value and Unavailable in options:
            raw = value["$unavailable"]
            if not isinstance(raw, dict) or raw.get("kind") not in ("missing", "denied", "invalid"):
                raise _ShapeError(f"{where}: malformed $unavailable entry")
            return Unavailable(str(raw.get("path", "")), raw["kind"], str(raw.get("reason", "")))
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option in (Unavailable, type(None)):
                continue
            try:
                return _from_jsonable(option, value, where)
            except _ShapeError as exc:
                errors.append(str(exc))
        raise _ShapeError(errors[0] if errors else f"{where}: unexpected null")
    if origin is list:
        if not isinstance(value, list):
            raise _ShapeError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_from_jsonable(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _ShapeError(f"{where}: expected an object, got {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {str(k): _from_jsonable(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _ShapeError(f"{where}: expected an object, got {type(value).__name__}")
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name not in value:
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue
                raise _ShapeError(f"{where}.{f.name}: missing")
            kwargs[f.name] = _from_jsonable(_hints(tp)[f.name], value[f.name], f"{where}.{f.name}")
        return tp(**kwargs)
    if tp is bool:
        if not isinstance(value, bool):
            raise _ShapeError(f"{where}: expected true/false, got {type(value).__name__}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _ShapeError(f"{where}: expected an integer, got {type(value).__name__}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _ShapeError(f"{where}: expected a number, got {type(value).__name__}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _ShapeError(f"{where}: expected a string, got {type(value).__name__}")
        return value
    if tp is type(None):
        if value is not None:
            raise _ShapeError(f"{where}: expected null")
        return None
    raise _ShapeError(f"{where}: unsupported type {tp!r}")
