"""What hyperward knows about ESXi hosts and their VMs, from offline files or the vSphere API.

Frozen dataclasses of str/int/bool/None, lists, dict[str, X] and Maybe[X] only, so a snapshot
decodes type-driven like the rest of HostFacts (and `hyperward collect --vsphere` scans anywhere).
A VM's `config` holds its .vmx keys (or the API's extraConfig), lower-cased, as VMware compares
them; what the API reports structurally (devices, firmware, encryption) has its own fields, which
the offline path derives from the same .vmx keys. Credentials are never part of these facts.
"""

from __future__ import annotations

from dataclasses import field

from ...facts import Maybe
from ...model import Unavailable
from ...records import frozen
from .builds import Table as BuildTable

NOT_COLLECTED = Unavailable("esxi", "missing", "not in this snapshot (collected by an older hyperward)")
TABLE_NOT_COLLECTED = Unavailable("data/esxi-builds.json", "missing", "the ESXi build table is not in this snapshot (collected by an "
                                                                     "older hyperward)")


@frozen
class VmDevice:
    """A virtual device. kind: "floppy", "cdrom", "serial", "parallel", "usb-controller", "usb",
    "pci-passthrough", "disk", "vtpm". `name` is the .vmx prefix (serial0, scsi0:1) or the API's
    label; `connected` whether it is (or starts) connected, None when not said; `backing` the
    file, host device or network URI behind it; `mode` the disk mode or the serial fileType."""

    kind: str
    name: str
    connected: bool | None
    backing: str | None = None
    mode: str | None = None


@frozen
class VmNic:
    name: str
    network: str | None
    mac: str | None
    adapter: str | None


@frozen
class EsxiVm:
    """One VM. `origin` is the .vmx path or `vsphere://<endpoint>/<moref>`; `location` how
    results name it (`vCenter/cluster/host/VM`, or the .vmx path offline); `conflicts` the keys
    its .vmx gives twice with different values."""

    name: str
    location: str
    origin: str
    source: str
    vcenter: str | None
    cluster: str | None
    host: str | None
    uuid: str | None
    config: dict[str, str]
    hardware_version: int | None
    firmware: str | None
    secure_boot: bool | None
    vtpm: bool | None
    encrypted: bool | None
    migrate_encryption: str | None
    ft_encryption: str | None
    logging: bool | None
    power_state: str | None
    devices: list[VmDevice]
    nics: list[VmNic]
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    ignored_lines: int = 0
    template: bool = False
    #: config.guestId (`windows2019srv_64Guest`) or the .vmx's guestOS (`windows2019srv-64`)
    guest_id: str | None = None
    #: config.flags.vbsEnabled (Virtualization-Based Security); None where not told
    vbs: bool | None = None
    #: guest.toolsVersionStatus2 as the API names it (guestToolsCurrent, guestToolsTooOld, ...)
    tools_status: str | None = None
    #: lower-cased .vmx key -> its line (offline .vmx files only)
    lines: dict[str, int] = field(default_factory=dict)


@frozen
class EsxiService:
    """hostd's service list: key (TSM-SSH, TSM, slpd, sfcbd-watchdog, snmpd, ntpd), the startup
    policy ("on", "off", "automatic") and whether it runs now."""

    key: str
    label: str
    policy: str
    running: bool


@frozen
class FirewallRuleset:
    key: str
    enabled: bool
    all_ip: bool
    allowed: list[str]


@frozen
class SecurityPolicy:
    """A vSwitch or port group's effective security policy; None where not set (a port group
    inherits its switch's)."""

    promiscuous: bool | None
    mac_changes: bool | None
    forged_transmits: bool | None


@frozen
class PortGroup:
    name: str
    switch: str
    vlan: int | None
    policy: SecurityPolicy
    distributed: bool = False
    #: the port group carries a VMkernel adapter (management, vMotion, storage), not VMs only
    vmkernel: bool = False


@frozen
class VSwitch:
    name: str
    policy: SecurityPolicy
    distributed: bool = False


@frozen
class SnmpAgent:
    """HostSnmpSystem.configuration. Community strings are passwords: only how many there are is
    kept, never their text. `v3` whether SNMPv3 users or targets are configured (the agent's
    options); communities with the agent enabled mean v1/v2c answer with them."""

    enabled: bool
    communities: int
    trap_communities: int
    port: int | None
    v3: bool


@frozen
class EsxiHost:
    """One ESXi host. `source` "files" (an offline copy of its /etc/vmware) or "api". Every fact
    the source cannot give is an Unavailable of kind "missing" naming why (service state is not
    in any file; esx.conf does not hold ConfigStore settings), so its checks are not applicable
    with the reason, never a pass."""

    name: str
    origin: str
    source: str
    vcenter: str | None
    cluster: str | None
    version: str | None
    build: str | None
    advanced: Maybe[dict[str, str]]
    services: Maybe[list[EsxiService]]
    lockdown: Maybe[str]
    lockdown_exceptions: Maybe[list[str]]
    firewall_enabled: Maybe[bool]
    firewall_default_allow: Maybe[bool]
    rulesets: Maybe[list[FirewallRuleset]]
    vswitches: Maybe[list[VSwitch]]
    portgroups: Maybe[list[PortGroup]]
    acceptance: Maybe[str]
    secure_boot: Maybe[bool]
    #: /etc/vmware/settings (VM settings the host forces on every VM, read before each .vmx):
    #: its entries; `vm_overrides_size` its size in bytes (the STIG asks for 0)
    vm_overrides: Maybe[dict[str, str]]
    vm_overrides_size: int | None = None
    #: /etc/vmware/config, the host-wide vmx defaults (`vmx.log.*` overrides every VM's logger)
    host_config: Maybe[dict[str, str]] = field(default_factory=dict)
    ntp_servers: Maybe[list[str]] = field(default_factory=list)
    domain_joined: bool | None = None
    #: why `version`/`build` are unknown offline (no boot.cfg, no build= line)
    build_note: str | None = None
    snmp: Maybe[SnmpAgent] = NOT_COLLECTED

    @property
    def location(self) -> str:
        """How results name the host: `vCenter/cluster/host`, the parts that are known."""
        return "/".join(p for p in (self.vcenter, self.cluster, self.name) if p)


@frozen
class EsxiFacts:
    """`source` "files", "api" or "files+api". `endpoints` the vSphere endpoints asked;
    `errors` one per endpoint that failed (refused login, timeout, dropped session), each
    naming the endpoint; the rest of the scan runs without it. `framework` which guide judges
    where the two differ ("stig", the default, or "scg"). `build_table` the sourced table
    HV-PATCH-100 judges builds against, loaded by the collector (a scan of a snapshot loads the
    scanning machine's, as a live scan would)."""

    source: str
    collected_at: int
    endpoints: list[str]
    hosts: list[EsxiHost]
    vms: list[Maybe[EsxiVm]]
    errors: list[Maybe[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    framework: str = "stig"
    build_table: Maybe[BuildTable] = TABLE_NOT_COLLECTED
