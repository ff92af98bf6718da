"""What hyperward knows about VirtualBox on a host: the installation (version, Extension Packs, the
web service's configuration), every VirtualBox home found (each user's VirtualBox.xml and the
machines its MachineRegistry names) and, on a live host, which machines run.

Only the settings that are judged are kept, already resolved against VirtualBox's own defaults
(src/VBox/Main/xml/Settings.cpp, include/VBox/settings.h): a value that rests on a default is
named in the machine's `defaults`. Secrets are never kept: the Teleporter password is reduced to
`password_set`, VBoxAuthSimple password hashes in ExtraData to a count, VBOXWEB_AUTH_PWHASH and
proxy URLs are dropped. Frozen dataclasses of plain types only, so a snapshot decodes
type-driven like the rest of HostFacts.
"""

from __future__ import annotations

from dataclasses import field

from ...facts import Maybe
from ...guests.model import snapshot_label
from ...model import Unavailable
from ...records import frozen
from .security import SecurityTable

TABLE_NOT_COLLECTED = Unavailable("data/virtualbox_security.json", "missing",
                                  "the VirtualBox security table is not in this snapshot (collected by an older hyperward)")


@frozen
class Vrde:
    """The remote display server (VRDE, RDP by default; VNC with the VNC Extension Pack).
    `address` "" means every host address (TCP/Address unset)."""

    enabled: bool
    auth_type: str
    auth_library: str | None
    ports: str
    address: str
    multi_connection: bool
    reuse_single_connection: bool
    #: the Security/Method property (Negotiate, RDP, TLS); None when unset (VRDP then negotiates)
    security_method: str | None
    ext_pack: str | None


@frozen
class SharedFolderConf:
    """A machine shared folder. `symlink_policy` is the symlinkPolicy attribute (settings 1.20+:
    forbidden, subtree, relative, any), None when unset; `symlinks_extradata` is the older
    ExtraData switch VBoxInternal2/SharedFoldersEnableSymlinksCreate/<name> set to 1."""

    name: str
    host_path: str
    writable: bool
    auto_mount: bool
    auto_mount_point: str | None
    symlink_policy: str | None
    symlinks_extradata: bool


@frozen
class NatRule:
    """A NAT port forward. `host_ip` "" means every host address."""

    name: str
    protocol: str
    host_ip: str
    host_port: int | None
    guest_ip: str
    guest_port: int | None


@frozen
class Nic:
    """A network adapter. `attachment` is its active mode ("null" when none: not connected):
    nat, bridged, internal, hostonly, hostonlynet, natnetwork, generic, cloud."""

    slot: int
    enabled: bool
    attachment: str
    network: str | None
    mac: str | None
    promiscuous: str
    nat_rules: list[NatRule]


@frozen
class Port:
    """A serial (UART) or parallel (LPT) port. `mode`: Disconnected, RawFile, HostPipe, HostDevice,
    TCP (serial); HostDevice when a parallel port names a path. `server`: TCP listens / the pipe is
    created by VirtualBox."""

    kind: str
    slot: int
    enabled: bool
    mode: str
    path: str | None
    server: bool


@frozen
class UsbFilter:
    """A machine USB device filter; `criteria` holds the non-empty match fields (vendorId,
    productId, revision, manufacturer, product, serialNumber, port, remote)."""

    name: str
    active: bool
    criteria: dict[str, str]


@frozen
class PciDevice:
    host: str
    guest: str
    name: str | None


@frozen
class Disk:
    """An attached medium. `location` is resolved against the machine folder where relative;
    `encrypted` None when the medium is in no registry hyperward read."""

    device: str
    uuid: str | None
    location: str | None
    format: str | None
    medium_type: str | None
    encrypted: bool | None
    host_drive: str | None
    passthrough: bool
    controller: str
    #: a differencing image's ancestors in the media registry (their locations resolved as
    #: `location` is), nearest parent first: its own header names the parent only by UUID
    parents: list[str] = field(default_factory=list)


@frozen
class Cpu:
    count: int
    nested_hw_virt: bool
    hw_virt: bool
    spec_ctrl: bool
    ibpb_vmexit: bool
    ibpb_vmentry: bool
    l1d_flush_sched: bool
    l1d_flush_vmentry: bool
    mds_clear_sched: bool
    mds_clear_vmentry: bool


@frozen
class Teleporter:
    """Live migration target. `address` "" means every host address. The password (stored in the
    .vbox, in clear or hashed) is never kept: only whether one is set."""

    enabled: bool
    port: int | None
    address: str
    password_set: bool


@frozen
class MachineConfig:
    """The settings of a machine's current state, or of one of its snapshots (VBoxSnapshot).
    `firmware` BIOS, EFI, EFI32, EFI64, EFIDUAL; `tpm` None, v1_2, v2_0, Host, Swtpm; clipboard and
    drag-and-drop modes Disabled, HostToGuest, GuestToHost, Bidirectional; `recording_screens` the
    screens recording is on for (empty when recording is off)."""

    settings_version: str
    #: Platform/@architecture (settings 1.20+): x86 or ARM; x86 before
    architecture: str
    os_type: str | None
    memory_mb: int | None
    firmware: str
    tpm: str
    cpu: Cpu
    vrde: Vrde
    shared_folders: list[SharedFolderConf]
    clipboard_mode: str
    file_transfers: bool
    dnd_mode: str
    nics: list[Nic]
    ports: list[Port]
    usb_controllers: list[str]
    usb_filters: list[UsbFilter]
    pci: list[PciDevice]
    teleporter: Teleporter
    recording: bool
    recording_screens: list[int]
    disks: list[Disk]
    #: VBoxAuthSimple users whose password hashes the machine's ExtraData holds (the hashes are not kept)
    auth_simple_users: int
    #: the guest property /VirtualBox/GuestAdd/Version as saved: what the guest last claimed
    guest_additions: str | None = None
    #: settings that rest on VirtualBox's defaults, with the value assumed
    defaults: list[str] = field(default_factory=list)


@frozen
class FileMode:
    path: str
    mode: int
    uid: int
    owner: str | None


@frozen
class VBoxSnapshot:
    """A snapshot and the settings restoring it brings back (its own Hardware, storage
    attachments and recording; machine-wide settings are the machine's). `parent` is the parent
    snapshot's UUID, None for the first."""

    uuid: str
    name: str
    parent: str | None
    config: MachineConfig

    @property
    def label(self) -> str:
        """How results name it after its machine's label and "@" (guests.model.snapshot_label)."""
        return snapshot_label(self.name)


@frozen
class VBoxMachine:
    """One machine settings file. `config` None: the file is a MachineEncrypted one (VirtualBox 7
    full VM encryption), whose settings cannot be read without its password."""

    path: str
    uuid: str
    name: str
    registered: bool
    config: MachineConfig | None
    file: FileMode | None
    #: the machine folder holding the file (whoever can write it can replace the file)
    folder: FileMode | None = None
    #: every snapshot of the machine, parents first
    snapshots: list[VBoxSnapshot] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.uuid})" if self.uuid and self.uuid != self.name else self.name


@frozen
class RegistryEntry:
    uuid: str
    src: str


@frozen
class Medium:
    uuid: str
    location: str
    format: str | None
    medium_type: str | None
    encrypted: bool
    #: the parent medium's UUID for a differencing image (a HardDisk nested in another)
    parent: str | None = None


@frozen
class GlobalSettings:
    """A VirtualBox.xml: its MachineRegistry, the media it registers (settings before 4.0 kept
    them here), and the auth libraries (SystemProperties; VirtualBox's default is VBoxAuth, the
    host's PAM accounts)."""

    path: str
    settings_version: str
    machines: list[RegistryEntry]
    media: list[Medium]
    vrde_auth_library: str | None
    websrv_auth_library: str | None
    auth_simple_users: int
    #: NetserviceRegistry NAT networks (the NAT service's own port forwards), enabled ones only
    nat_networks: dict[str, list[NatRule]] = field(default_factory=dict)


@frozen
class VBoxHome:
    """A VirtualBox home: `source` "home" (~/.config/VirtualBox), "legacy" (~/.VirtualBox) or
    "vbox-home" (a copy named with --vbox-home, read under its own directory). `user` and `uid`:
    the account whose home it is (None for a copy). `missing`: registry entries whose file does
    not exist."""

    path: str
    source: str
    user: str | None
    uid: int | None
    global_file: Maybe[GlobalSettings]
    global_mode: FileMode | None
    machines: list[Maybe[VBoxMachine]]
    missing: list[RegistryEntry]
    #: the VirtualBox home directory itself
    folder: FileMode | None = None


@frozen
class ExtPackInfo:
    path: str
    name: str
    version: str
    revision: str | None
    vrde_module: str | None


@frozen
class VirtualBoxFacts:
    """`installed`: VirtualBox's files are on this root (install_dir exists). `cfg_version` is
    INSTALL_VER from /etc/vbox/vbox.cfg (written by Oracle's installers); the package version is
    read from the host's package facts where the checks need it. `running`: UUIDs of running
    machines on a live host (None offline or when nothing could tell), from `running_source`."""

    installed: bool
    install_dir: str | None
    cfg_version: str | None
    ext_packs: Maybe[list[Maybe[ExtPackInfo]]]
    websrv: Maybe[dict[str, str]]
    homes: list[VBoxHome]
    running: list[str] | None
    running_source: str
    notes: list[str] = field(default_factory=list)
    #: the config's [virtualbox] sensitive: machine names or UUIDs (shell globs) whose disks must be encrypted
    sensitive: list[str] = field(default_factory=list)
    #: where that list was set (the config file and line)
    sensitive_source: str | None = None
    #: the sourced table HV-PATCH-032 judges the version against, loaded by the collector (a scan
    #: of a snapshot loads the scanning machine's, as a live scan would)
    security_table: Maybe[SecurityTable] = TABLE_NOT_COLLECTED

    def machines(self) -> list[tuple[VBoxHome, VBoxMachine]]:
        return [(h, m) for h in self.homes for m in h.machines if isinstance(m, VBoxMachine)]
