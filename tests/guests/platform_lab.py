"""A host root holding a VirtualBox home and an ESXi datastore whose guests' disks are real images
(vdi, a differencing vdi over its base, descriptor + flat vmdk, sparse vmdk), and disks whose paths
lead out of where the platform keeps them, for tests/guests/test_platform_disks.py.

Formats as the platforms write them: VirtualBox's MediaRegistry (HardDisk `location` relative to
the machine folder, a differencing image nested in its parent, attached through
StorageControllers/AttachedDevice/Image); ESXi's .vmx `scsiX:Y.fileName` naming a descriptor .vmdk
beside it (createType "vmfs", a VMFS extent "<name>-flat.vmdk"), `nvmeX:Y.fileName` absolute under
/vmfs/volumes/<datastore>.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import struct

import imagekit as k

VDI_TYPE_DIFF = 4
#: VDI header offsets (VirtualBox src/VBox/Storage/VDICore.h VDIHEADER1PLUS, after the 72-byte pre-header)
VDI_TYPE_AT, VDI_CREATE_AT, VDI_MODIFY_AT, VDI_LINKAGE_AT, VDI_PARENT_MODIFY_AT = 0x4C, 0x188, 0x198, 0x1A8, 0x1B8


@dataclasses.dataclass
class PlatformLab:
    root: pathlib.Path
    outside: pathlib.Path
    fingerprints: dict[str, str]
    secrets: list[str]


def vbox_machine(name: str, uuid: str, media: str, attached: list[str]) -> str:
    devices = "\n".join(f"""          <AttachedDevice type="HardDisk" hotpluggable="false" port="{i}" device="0">
            <Image uuid="{{{u}}}"/>
          </AttachedDevice>""" for i, u in enumerate(attached))
    return f"""<?xml version="1.0"?>
<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">
  <Machine uuid="{{{uuid}}}" name="{name}" OSType="Debian_64" snapshotFolder="Snapshots">
    <MediaRegistry>
      <HardDisks>
{media}
      </HardDisks>
    </MediaRegistry>
    <Hardware>
      <Memory RAMSize="1024"/>
      <StorageControllers>
        <StorageController name="SATA" type="AHCI" PortCount="{max(1, len(attached))}" useHostIOCache="false" Bootable="true">
{devices}
        </StorageController>
      </StorageControllers>
    </Hardware>
  </Machine>
</VirtualBox>
"""


def differencing_vdi(base: pathlib.Path, child: pathlib.Path) -> None:
    """A VDI differencing image over `base` with nothing written yet (every block unallocated, so
    every read goes to the parent), as VirtualBox makes one when a snapshot is taken: qemu-img
    makes a dynamic VDI of the same size, whose header then names the type and the parent."""
    head = base.read_bytes()[:512]
    size = struct.unpack_from("<Q", head, 0x170)[0]
    k.qemu_img("create", "-q", "-f", "vdi", str(child), str(size))
    data = bytearray(child.read_bytes())
    struct.pack_into("<I", data, VDI_TYPE_AT, VDI_TYPE_DIFF)
    data[VDI_LINKAGE_AT:VDI_LINKAGE_AT + 16] = head[VDI_CREATE_AT:VDI_CREATE_AT + 16]
    data[VDI_PARENT_MODIFY_AT:VDI_PARENT_MODIFY_AT + 16] = head[VDI_MODIFY_AT:VDI_MODIFY_AT + 16]
    child.write_bytes(bytes(data))


def esxi_descriptor(name: str, sectors: int, extent: str) -> str:
    """A descriptor as ESXi writes one for a thick disk on VMFS."""
    return (f'# Disk DescriptorFile\nversion=1\nencoding="UTF-8"\nCID=fffffffe\nparentCID=ffffffff\ncreateType="vmfs"\n\n'
            f'# Extent description\nRW {sectors} VMFS "{extent}"\n\n# The Disk Data Base\n#DDB\n\n'
            f'ddb.adapterType = "pvscsi"\nddb.geometry.cylinders = "{max(1, sectors // 16065)}"\nddb.geometry.heads = "255"\n'
            f'ddb.geometry.sectors = "63"\nddb.longContentID = "0123456789abcdef0123456789abcdef"\nddb.virtualHWVersion = "19"\n')


def vmx(name: str, disks: dict[str, str]) -> str:
    lines = ['.encoding = "UTF-8"', 'config.version = "8"', 'virtualHW.version = "19"', f'displayName = "{name}"',
             'guestOS = "debian12-64"', 'numvcpus = "1"', 'memSize = "1024"']
    for prefix, filename in disks.items():
        controller = prefix.split(":")[0]
        lines += [f'{controller}.present = "TRUE"', f'{prefix}.present = "TRUE"', f'{prefix}.fileName = "{filename}"']
        if controller.startswith("scsi"):
            lines += [f'{controller}.virtualDev = "pvscsi"', f'{prefix}.deviceType = "scsi-hardDisk"']
    return "\n".join(lines) + "\n"


VBOX_UUIDS = {n: f"6a1f0c3a-77aa-4c2b-9d10-aa00bb11cc{i:02d}" for i, n in enumerate(
    ("vbdeb", "vbsnap", "vbdotdot", "vblink", "vbabs"), start=1)}


def build(base: pathlib.Path) -> PlatformLab:
    """Guests:
    VirtualBox (alice's ~/.config/VirtualBox, machines in ~/VirtualBox VMs):
      vbdeb     vbdeb.vdi relative to the machine folder; its root key is trusted by the host
      vbsnap    a differencing vdi in Snapshots/ over vbsnap.vdi (nested HardDisk); holds the
                host's root password hash (in the base, which is what is read)
      vbdotdot  location ../../../../../../../srv/secret.vdi (clamped into the root: outside alice's home)
      vblink    vblink.vdi, a symlink to an image outside the root
      vbabs     location /srv/secret.vdi, absolute, outside the machine folder and alice's home
    ESXi (/vmfs/volumes/<uuid>, datastore1 a symlink to it):
      esxdeb    scsi0:0 esxdeb.vmdk, a vmfs descriptor with its -flat extent beside it
      esxnvme   nvme0:0 /vmfs/volumes/datastore1/esxnvme/esxnvme.vmdk, a sparse vmdk
      esxext    sata0:0 a descriptor whose extent is ../../../../../<outside>/flat.vmdk
      esxabs    scsi0:0 a descriptor whose extent names the outside image by its absolute path
    """
    keys, trees, root, outside = base / "keys", base / "trees", base / "root", base / "outside"
    for d in (keys, trees, root, outside):
        d.mkdir(parents=True, exist_ok=True)
    trusted = k.keypair(keys / "vbdeb_root")
    host_hash = "$6$vbHOSTsalt$Q8q2mZ0rVb7yT5wX1cN3kP9dL6fH4sG2aE0uR8iO7pM5qN3wX1cZ9vB7nM5kL3jH1gF9dS7aQ5wE3rT1yU0."
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
        "etc/shadow": f"root:{host_hash}:19800:0:99999:7:::\nalice:!:19800:0:99999:7:::\n",
        "etc/group": "root:x:0:\nalice:x:1000:\n", "etc/hostname": "ws1\n",
        "root/.ssh/authorized_keys": trusted[1] + "\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    deb = k.debian_tree(trees / "vbdeb", hostname="vbdeb", host_key=k.keypair(keys / "vbdeb_host"), user_key=trusted, weak=False)
    raw = k.ext4_image(deb, trees / "vbdeb.raw")
    snap = k.debian_tree(trees / "vbsnap", hostname="vbsnap", host_key=k.keypair(keys / "vbsnap_host"), root_hash=host_hash, weak=False)
    snap_raw = k.ext4_image(snap, trees / "vbsnap.raw")
    esx = k.debian_tree(trees / "esx", hostname="esxdeb", host_key=k.keypair(keys / "esx_host"), weak=False)
    esx_raw = k.ext4_image(esx, trees / "esx.raw")
    secret = k.debian_tree(trees / "secret", hostname="secret", host_key=k.keypair(keys / "secret_host"), weak=False)
    secret_raw = k.ext4_image(secret, trees / "secret.raw")

    # --- VirtualBox -------------------------------------------------------------------------------
    vms = root / "home/alice/VirtualBox VMs"
    vbox_home = root / "home/alice/.config/VirtualBox"
    vbox_home.mkdir(parents=True)
    media_uuid = {n: f"7d0c4e55-2a6b-4f11-8c3d-5e6f70819c{i:02d}" for i, n in enumerate(VBOX_UUIDS, start=1)}
    child_uuid = "7d0c4e55-2a6b-4f11-8c3d-5e6f70819cff"
    for name in VBOX_UUIDS:
        (vms / name).mkdir(parents=True)
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vdi", str(raw), str(vms / "vbdeb/vbdeb.vdi"))
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vdi", str(snap_raw), str(vms / "vbsnap/vbsnap.vdi"))
    (vms / "vbsnap/Snapshots").mkdir()
    differencing_vdi(vms / "vbsnap/vbsnap.vdi", vms / f"vbsnap/Snapshots/{{{child_uuid}}}.vdi")
    (root / "srv").mkdir()
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vdi", str(secret_raw), str(root / "srv/secret.vdi"))
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vdi", str(secret_raw), str(outside / "secret.vdi"))
    os.symlink(str(outside / "secret.vdi"), vms / "vblink/vblink.vdi")
    locations = {"vbdeb": "vbdeb.vdi", "vbsnap": "vbsnap.vdi", "vbdotdot": "../../../../../../../srv/secret.vdi",
                 "vblink": "vblink.vdi", "vbabs": "/srv/secret.vdi"}
    entries = []
    for name, uuid in VBOX_UUIDS.items():
        disk = f'        <HardDisk uuid="{{{media_uuid[name]}}}" location="{locations[name]}" format="VDI" type="Normal"'
        attached = media_uuid[name]
        if name == "vbsnap":
            disk += f'>\n          <HardDisk uuid="{{{child_uuid}}}" location="Snapshots/{{{child_uuid}}}.vdi" format="VDI"/>\n        </HardDisk>'
            attached = child_uuid
        else:
            disk += "/>"
        (vms / name / f"{name}.vbox").write_text(vbox_machine(name, uuid, disk, [attached]))
        entries.append(f'      <MachineEntry uuid="{{{uuid}}}" src="/home/alice/VirtualBox VMs/{name}/{name}.vbox"/>')
    (vbox_home / "VirtualBox.xml").write_text(
        '<?xml version="1.0"?>\n<VirtualBox xmlns="http://www.virtualbox.org/" version="1.19-linux">\n  <Global>\n'
        "    <MachineRegistry>\n" + "\n".join(entries) + "\n    </MachineRegistry>\n  </Global>\n</VirtualBox>\n")

    # --- ESXi -------------------------------------------------------------------------------------
    volume = root / "vmfs/volumes/650b3f2e-1c7d9a40-5b2e-0050569a1b2c"
    volume.mkdir(parents=True)
    os.symlink("650b3f2e-1c7d9a40-5b2e-0050569a1b2c", root / "vmfs/volumes/datastore1")
    sectors = esx_raw.stat().st_size // 512
    (volume / "esxdeb").mkdir()
    k.run("cp", "--sparse=always", str(esx_raw), str(volume / "esxdeb/esxdeb-flat.vmdk"))
    (volume / "esxdeb/esxdeb.vmdk").write_text(esxi_descriptor("esxdeb", sectors, "esxdeb-flat.vmdk"))
    (volume / "esxdeb/esxdeb.vmx").write_text(vmx("esxdeb", {"scsi0:0": "esxdeb.vmdk"}))
    (volume / "esxnvme").mkdir()
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vmdk", str(esx_raw), str(volume / "esxnvme/esxnvme.vmdk"))
    (volume / "esxnvme/esxnvme.vmx").write_text(vmx("esxnvme", {"nvme0:0": "/vmfs/volumes/datastore1/esxnvme/esxnvme.vmdk"}))
    k.run("cp", "--sparse=always", str(secret_raw), str(outside / "flat.vmdk"))
    secret_sectors = secret_raw.stat().st_size // 512
    (volume / "esxext").mkdir()
    dotdot = "../" * (len(volume.parts) + 2) + str(outside / "flat.vmdk").lstrip("/")
    (volume / "esxext/esxext.vmdk").write_text(esxi_descriptor("esxext", secret_sectors, dotdot))
    (volume / "esxext/esxext.vmx").write_text(vmx("esxext", {"sata0:0": "esxext.vmdk"}))
    (volume / "esxabs").mkdir()
    (volume / "esxabs/esxabs.vmdk").write_text(esxi_descriptor("esxabs", secret_sectors, str(outside / "flat.vmdk")))
    (volume / "esxabs/esxabs.vmx").write_text(vmx("esxabs", {"scsi0:0": "esxabs.vmdk"}))

    fps = {"vbdeb_root": k.fingerprint_of(trusted[1])}
    planted = [host_hash]
    for path in sorted(keys.iterdir()):
        text = path.read_text()
        if "PRIVATE KEY" in text:
            planted.extend(ln for ln in text.splitlines() if ln and not ln.startswith("-----") and len(ln) > 20)
    return PlatformLab(root, outside, fps, planted)
