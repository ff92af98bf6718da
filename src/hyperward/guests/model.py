"""The neutral guest.

Most guest risks are the same whatever the hypervisor: a console open to the network, a host
directory shared in, a passed-through device, no vTPM, firmware without Secure Boot keys, nested
virtualization exposed, clipboard sharing, a NIC without anti-spoofing, no recent backup. Each
platform maps its definitions onto these types; a check written once over them judges every guest of
every platform.

Every field a platform cannot know is None ("unknown"), never a guessed default: a check turns None
into not-applicable with the reason, never into a pass. Where a field rests on the hypervisor's
compiled default rather than on what the definition says, `defaults` names it, so a result can say
"default assumed".
"""

from __future__ import annotations

from dataclasses import field

from ..records import frozen

#: console kinds: "vnc", "spice", "rdp" (Hyper-V/VirtualBox VRDE over RDP), "vrde", "serial-web"
#: (a web console proxied by the management service)


@frozen
class Console:
    """A remote display. `listen` holds the addresses it binds (None: unknown; [] with `socket` set:
    a UNIX socket only). `auth` lists what a client must present: "password", "sasl", "x509",
    "ticket" (a short-lived ticket from an authenticated management API, as Proxmox's VNC/SPICE
    proxies issue), "none". `tls` and `tls_verify` (client certificates checked) are None when the
    platform cannot say."""

    kind: str
    listen: list[str] | None
    socket: bool = False
    auth: list[str] = field(default_factory=list)
    tls: bool | None = None
    tls_verify: bool | None = None
    source: str = ""
    #: where in the guest's definition this item is, as a key of Guest.lines ("devices/graphics[2]",
    #: Proxmox's "net1"): a finding about it names that element's line
    where: str = ""


@frozen
class SharedDirectory:
    """A host directory visible inside the guest (9p, virtiofs, VirtualBox shared folders, bind
    mounts into containers). `writable` None: unknown. `mode` is the platform's access mode where
    it has one (libvirt: passthrough/mapped/squash), `as_root` whether host-side access runs with
    root's rights (passthrough with a root QEMU, a privileged container)."""

    host_path: str
    guest_tag: str | None
    writable: bool | None
    mode: str | None = None
    as_root: bool | None = None
    #: the transport where the platform names one (libvirt: "virtiofs", "path"/"handle" for 9p)
    driver: str | None = None
    #: where in the guest's definition this item is, as a key of Guest.lines ("devices/graphics[2]",
    #: Proxmox's "net1"): a finding about it names that element's line
    where: str = ""


@frozen
class PassedDevice:
    """A host device given to the guest: kind "pci", "usb", "scsi", "block" (raw host disk), "mdev",
    "hostdev-net" (an SR-IOV VF), "device-node" (a /dev node bound into a container). `host_id` is the
    host's identifier for it: PCI address, vendor:product or bus.device, /dev path."""

    kind: str
    host_id: str | None
    raw_io: bool = False
    #: the guest-side name (vdb, hostpci0) and the platform's words for each raw-access setting
    target: str | None = None
    notes: list[str] = field(default_factory=list)
    #: where in the guest's definition this item is, as a key of Guest.lines ("devices/graphics[2]",
    #: Proxmox's "net1"): a finding about it names that element's line
    where: str = ""


@frozen
class GuestDisk:
    """One disk: a file or volume path, or a network source (`network` = protocol). `shared` means
    the definition itself marks it shareable; two guests naming the same `source` writable is
    judged across guests."""

    source: str | None
    format: str | None
    readonly: bool
    shared: bool
    encrypted: bool | None
    network: str | None = None
    raw_device: bool = False
    target: str | None = None
    #: "disk", "cdrom", "floppy", "lun" (a SCSI LUN passed as such)
    device: str = "disk"
    #: the files of a differencing image's ancestors, nearest parent first, where the platform's
    #: registry rather than the image header names them (VirtualBox's MediaRegistry)
    parents: list[str] = field(default_factory=list)


@frozen
class GuestNic:
    """One NIC. `attachment`: "bridge", "network", "ethernet", "direct" (macvtap), "user", "hostdev",
    "nat" and so on, as the platform says. `anti_spoofing` True when the platform filters the
    guest's source MAC and IP (libvirt clean-traffic, Proxmox firewall with macfilter and ipfilter),
    False when it certainly does not, None when it cannot be known. `filter` names what provides it."""

    attachment: str | None
    source: str | None
    mac: str | None
    anti_spoofing: bool | None
    filter: str | None = None
    trusted: bool = False
    promiscuous: bool = False
    host_device: str | None = None
    #: the platform's name for the NIC (vnet3, net0) and, when anti_spoofing is not True, why
    name: str | None = None
    why: str | None = None
    #: where in the guest's definition this item is, as a key of Guest.lines ("devices/graphics[2]",
    #: Proxmox's "net1"): a finding about it names that element's line
    where: str = ""


@frozen
class NetworkChardev:
    """A serial port, console, channel or monitor reachable over TCP/UDP/telnet."""

    kind: str
    host: str | None
    port: str | None
    protocol: str | None
    tls: bool | None
    #: "tcp" or "udp"
    transport: str = "tcp"
    #: where in the guest's definition this item is, as a key of Guest.lines ("devices/graphics[2]",
    #: Proxmox's "net1"): a finding about it names that element's line
    where: str = ""


@frozen
class GuestTpm:
    """kind "emulator" (swtpm), "passthrough" (the host's TPM), "external"; `version` "1.2"/"2.0";
    `state_encrypted` None: unknown."""

    kind: str | None
    version: str | None
    state_encrypted: bool | None


def snapshot_label(name: str) -> str:
    """A snapshot's name as results show it after "@": cut at 80 characters, since the platforms
    take names of any length (Proxmox's parser, VirtualBox's settings, libvirt's metadata) and the
    whole name stays in the result's details."""
    return name if len(name) <= 80 else name[:80] + "..."


@frozen
class Guest:
    """One VM or container. `platform` is the platform's name ("libvirt", "proxmox", ...), `id` its
    own identifier (a libvirt UUID, a Proxmox VMID), `origin` the file or API it came from.

    firmware: "bios" | "uefi" | None. secure_boot: enforced by the firmware's variable store (None:
    unknown, e.g. UEFI whose NVRAM hyperward cannot read). keys_enrolled: the Microsoft/distribution
    keys are in that store. nested: hardware virtualization (VMX/SVM) exposed to the guest.
    clipboard/file_transfer/drag_drop: True when enabled on any console, False when off, None unknown.
    memory_sharing_opt_out: the guest opted out of KSM merging (None: the platform has no per-guest
    switch or it is unknown)."""

    platform: str
    kind: str
    name: str
    id: str
    uuid: str | None
    origin: str
    state: str | None
    firmware: str | None
    secure_boot: bool | None
    keys_enrolled: bool | None
    tpms: list[GuestTpm]
    consoles: list[Console]
    shared_directories: list[SharedDirectory]
    devices: list[PassedDevice]
    disks: list[GuestDisk]
    nics: list[GuestNic]
    nested: bool | None
    clipboard: bool | None
    file_transfer: bool | None
    drag_drop: bool | None
    memory_sharing_opt_out: bool | None
    network_chardevs: list[NetworkChardev]
    vcpus: int | None = None
    memory_kib: int | None = None
    defaults: list[str] = field(default_factory=list)
    arch: str | None = None
    #: why `nested` is True: "requested" (the definition asks for vmx/svm, whatever the host) or
    #: "cpu-passthrough" (the host CPU model is passed through: nested exactly when the host has
    #: nested on); with the platform's words for it
    nested_kind: str | None = None
    nested_detail: str | None = None
    #: USB redirection channels not closed by a deny-by-default filter
    usb_redirection: int = 0
    #: where in `origin` each part of the definition is: the platform's key ("devices/graphics" in a
    #: libvirt domain, "args" in a Proxmox qm.conf) -> line, for findings to name the deciding line
    lines: dict[str, int] = field(default_factory=dict)
    #: where this guest's disks may be, as the audited host names the directories, when its
    #: definition is written by someone the scanner must not lend its rights to (a VirtualBox
    #: user's .vbox, a .vmx on a datastore): a disk resolving outside them is not opened. Empty:
    #: the disk's own directory and the storage pools (libvirt's and Proxmox's root-owned definitions)
    disk_dirs: list[str] = field(default_factory=list)
    #: set when this is not the guest as it is but the settings one of its snapshots brings back on
    #: restore (`id` stays the guest's): the snapshot's name and the platform's id for it
    snapshot: str | None = None
    snapshot_id: str | None = None

    @property
    def label(self) -> str:
        """How results name the guest: `name (id)` and the platform, since names repeat across
        platforms on one host (a workstation's VirtualBox VM and its KVM guest); a snapshot's
        settings as `name (id)@snapshot`."""
        ident = f" ({self.id})" if self.id and self.id != self.name else ""
        return f"{self.name}{ident}@{snapshot_label(self.snapshot)}" if self.snapshot is not None else f"{self.name}{ident}"

    @property
    def running(self) -> bool:
        return self.state == "running"
