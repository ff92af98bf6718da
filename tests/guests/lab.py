"""A host root with libvirt guests whose disks are real images, and the stepping stones planted in
them, for tests/guests/test_inside.py and bench/bench_guests.py."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shutil
import subprocess
import time

import imagekit as k

HOST_ROOT_HASH = "$6$hostSALT$J8q2mZ0rVb7yT5wX1cN3kP9dL6fH4sG2aE0uR8iO7pM5qN3wX1cZ9vB7nM5kL3jH1gF9dS7aQ5wE3rT1yU0."
PVE_VOLUME = "local:100/vm-100-disk-0.qcow2"
HOSTILE_NAME = "id_\x1b]0;pwned\x07\x1b[2Jkey"


@dataclasses.dataclass
class Lab:
    root: pathlib.Path
    images: pathlib.Path
    outside: pathlib.Path
    fingerprints: dict[str, str]
    secrets: list[str]
    uuids: dict[str, str]


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _define(root: pathlib.Path, name: str, n: int, disks: list[tuple[str, str, str]], running: bool = False) -> str:
    uuid = _uuid(n)
    xml = k.domain_xml(name, uuid, disks)
    (root / "etc/libvirt/qemu").mkdir(parents=True, exist_ok=True)
    (root / f"etc/libvirt/qemu/{name}.xml").write_text(xml)
    if running:
        (root / "run/libvirt/qemu").mkdir(parents=True, exist_ok=True)
        (root / f"run/libvirt/qemu/{name}.xml").write_text(xml)
    return uuid


def _host(root: pathlib.Path, keys: pathlib.Path, trusted: str, trusted_pem: str, pve: bool = False) -> dict[str, str]:
    """The host's own files: accounts, sshd with an AuthorizedKeysFile beyond ~/.ssh, its keys."""
    host_key = k.keypair(keys / "host_hostkey")
    admin_id = k.keypair(keys / "host_admin_id")
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n",
        "etc/shadow": f"root:{HOST_ROOT_HASH}:19800:0:99999:7:::\nadmin:{k.OTHER_HASH.replace('Zk3', 'Hh9')}:19800:0:99999:7:::\n",
        "etc/group": "root:x:0:\nadmin:x:1000:\n",
        "etc/hostname": "pve1\n" if pve else "kvm1\n",
        "etc/ssh/sshd_config": "AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u\nPermitRootLogin prohibit-password\n",
        "etc/ssh/ssh_host_ed25519_key.pub": host_key[1] + "\n",
        "home/admin/.ssh/id_ed25519.pub": admin_id[1] + "\n",
        "home/admin/.ssh/authorized_keys": f'from="10.0.0.0/8",no-pty,command="echo a b" {trusted}\n',
        "etc/ssh/authorized_keys/admin": trusted_pem + "\n",
        "root/.ssh/authorized_keys": admin_id[1] + "\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "etc/ssh/ssh_host_ed25519_key").write_bytes(host_key[0])
    (root / "home/admin/.ssh/id_ed25519").write_bytes(admin_id[0])
    os.chmod(root / "etc/shadow", 0o640)
    return {"host_hostkey": k.fingerprint_of(host_key[1]), "host_admin_id": k.fingerprint_of(admin_id[1])}


def build(base: pathlib.Path) -> Lab:
    """Guests (all libvirt, defined in /etc/libvirt/qemu):
    web1     raw ext4, running; weak; root's key trusted by the host (admin's authorized_keys),
             plaintext cloud-init passwords, a libvirt auth.conf password, a Proxmox token, a
             NoCloud seed volume (VFAT, label cidata) with a plaintext password
    clone-a  qcow2 over a raw template (backing file); template host key and root hash
    clone-b  vdi converted from the same template: same host key and root hash as clone-a
    db1      vmdk; alice's PEM RSA key trusted through AuthorizedKeysFile /etc/ssh/authorized_keys/%u;
             a Windows tree (SOFTWARE hive) planted on its Linux root
    hostcopy xfs on an MBR partition; holds the host's SSH host key and root's password hash
    lvm1     ext4 on LVM on an MBR partition; clean (the passing guest)
    encq     qcow2 with LUKS encryption;  encluks  raw LUKS2 (cryptsetup)
    corrupt  random bytes declared qcow2;  trunc  a qcow2 cut to a third;  loop  a backing loop
    escape   a symlink in the pool to an image outside it
    alp1     Alpine 3.18 (past its end of life) on ext4: apk's database with openssl 3.1.2-r0, and an
             hour-old cached main index (APKINDEX.<hash>.tar.gz, its real layout) offering 3.1.4-r0
    old1     Debian 10 (buster, past Debian LTS) on ext4
    win1     Windows Server 2019 on an NTFS partition: a real SOFTWARE hive (written by hivex)
    """
    keys, trees, root = base / "keys", base / "trees", base / "root"
    images = root / "var/lib/libvirt/images"
    outside = base / "outside"
    for d in (keys, trees, images, outside):
        d.mkdir(parents=True, exist_ok=True)
    trusted = k.keypair(keys / "web1_root")
    pem = k.keypair(keys / "db1_alice", "rsa", pem=True)
    fps = _host(root, keys, trusted[1], pem[1])
    host_key = ((root / "etc/ssh/ssh_host_ed25519_key").read_bytes(), (root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip())
    template_key = k.keypair(keys / "template_hostkey")
    fps.update(web1_root=k.fingerprint_of(trusted[1]), db1_alice=k.fingerprint_of(pem[1]), template_hostkey=k.fingerprint_of(template_key[1]))
    uuids: dict[str, str] = {}

    web1 = k.debian_tree(trees / "web1", hostname="web1", host_key=k.keypair(keys / "web1_hostkey"), user_key=trusted,
                         cloud_password=True, libvirt_password=True, pve_token=True)
    k.ext4_image(web1, images / "web1.raw")
    seed = trees / "seed"
    seed.mkdir()
    (seed / "user-data").write_text(f"#cloud-config\npassword: {k.PLANTED_PASSWORD}-seed\nchpasswd: {{expire: false}}\n")
    (seed / "meta-data").write_text("instance-id: web1\n")
    k.run("mkfs.vfat", "-n", "cidata", "-C", str(images / "web1-seed.img"), "2048")
    k.run("mcopy", "-i", str(images / "web1-seed.img"), str(seed / "user-data"), str(seed / "meta-data"), "::")
    uuids["web1"] = _define(root, "web1", 1, [("/var/lib/libvirt/images/web1.raw", "raw", "disk"),
                                              ("/var/lib/libvirt/images/web1-seed.img", "raw", "disk")], running=True)

    template = k.debian_tree(trees / "template", hostname="template", host_key=template_key, root_hash=k.ROOT_HASH, weak=False)
    k.ext4_image(template, images / "template.raw")
    k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(images / "template.raw"), "-F", "raw", str(images / "clone-a.qcow2"))
    uuids["clone-a"] = _define(root, "clone-a", 2, [("/var/lib/libvirt/images/clone-a.qcow2", "qcow2", "disk")])
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vdi", str(images / "template.raw"), str(images / "clone-b.vdi"))
    uuids["clone-b"] = _define(root, "clone-b", 3, [("/var/lib/libvirt/images/clone-b.vdi", "vdi", "disk")])

    db1 = k.debian_tree(trees / "db1", hostname="db1", host_key=k.keypair(keys / "db1_hostkey"), weak=False, pem_key=pem)
    # a Windows tree planted on a Linux root must not take the guest out of the Linux checks
    hive = k.software_hive(trees / "SOFTWARE")
    k.windows_tree(db1, hive)
    # a guest-chosen file name that would retitle a terminal, holding a key the host trusts
    hostile = k.keypair(keys / "db1_hostile")
    (db1 / f"home/alice/.ssh/{HOSTILE_NAME}").write_bytes(hostile[0])
    with open(root / "root/.ssh/authorized_keys", "a") as handle:
        handle.write(hostile[1] + "\n")
    k.ext4_image(db1, trees / "db1.raw")
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "vmdk", str(trees / "db1.raw"), str(images / "db1.vmdk"))
    uuids["db1"] = _define(root, "db1", 4, [("/var/lib/libvirt/images/db1.vmdk", "vmdk", "disk")])

    hostcopy = k.debian_tree(trees / "hostcopy", hostname="hostcopy", host_key=host_key, root_hash=HOST_ROOT_HASH, weak=False)
    lvm1 = k.debian_tree(trees / "lvm1", hostname="lvm1", host_key=k.keypair(keys / "lvm1_hostkey"), weak=False)
    _fresh_apt(lvm1)
    win1 = k.windows_tree(trees / "win1", hive)
    k.build_with_guestfs([(images / "hostcopy.raw", "xfs-part", k.tar_of(hostcopy, trees / "hostcopy.tar"), 320),
                          (images / "lvm1.raw", "lvm", k.tar_of(lvm1, trees / "lvm1.tar"), 96),
                          (images / "win1.raw", "ntfs-part", k.tar_of(win1, trees / "win1.tar"), 32)])
    uuids["win1"] = _define(root, "win1", 15, [("/var/lib/libvirt/images/win1.raw", "raw", "disk")])
    uuids["hostcopy"] = _define(root, "hostcopy", 5, [("/var/lib/libvirt/images/hostcopy.raw", "raw", "disk")])
    uuids["lvm1"] = _define(root, "lvm1", 6, [("/var/lib/libvirt/images/lvm1.raw", "raw", "disk")])

    # QEMU times its PBKDF by CPU usage and gives up ("Unable to get accurate CPU usage") when a
    # loaded machine lends it too little: try again
    for attempt in range(5):
        done = subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=not-a-real-secret", "-o",
                               "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100", str(images / "encq.qcow2"), "32M"],
                              capture_output=True, timeout=120)
        if done.returncode == 0:
            break
    assert done.returncode == 0, done.stderr
    uuids["encq"] = _define(root, "encq", 7, [("/var/lib/libvirt/images/encq.qcow2", "qcow2", "disk")])
    with open(images / "encluks.raw", "wb") as handle:
        handle.truncate(32 * 1024 * 1024)
    if shutil.which("cryptsetup"):
        subprocess.run(["cryptsetup", "luksFormat", "-q", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
                        "--key-file", "-", str(images / "encluks.raw")], input=b"not-a-real-secret", check=True, timeout=120,
                       capture_output=True)
    uuids["encluks"] = _define(root, "encluks", 8, [("/var/lib/libvirt/images/encluks.raw", "raw", "disk")])

    (images / "corrupt.qcow2").write_bytes(os.urandom(256 * 1024))
    uuids["corrupt"] = _define(root, "corrupt", 9, [("/var/lib/libvirt/images/corrupt.qcow2", "qcow2", "disk")])
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(images / "web1.raw"), str(images / "trunc.qcow2"))
    size = (images / "trunc.qcow2").stat().st_size
    os.truncate(images / "trunc.qcow2", size // 3)
    uuids["trunc"] = _define(root, "trunc", 10, [("/var/lib/libvirt/images/trunc.qcow2", "qcow2", "disk")])
    k.qemu_img("create", "-q", "-f", "qcow2", str(images / "loop-b.qcow2"), "32M")
    k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(images / "loop-b.qcow2"), "-F", "qcow2", str(images / "loop-a.qcow2"))
    k.qemu_img("rebase", "-q", "-u", "-f", "qcow2", "-b", str(images / "loop-a.qcow2"), "-F", "qcow2", str(images / "loop-b.qcow2"))
    uuids["loop"] = _define(root, "loop", 11, [("/var/lib/libvirt/images/loop-a.qcow2", "qcow2", "disk")])
    secret_tree = k.debian_tree(trees / "outside", hostname="outside", host_key=k.keypair(keys / "outside_hostkey"), weak=False)
    k.ext4_image(secret_tree, outside / "host-secret.img")
    os.symlink(str(outside / "host-secret.img"), images / "escape.raw")
    uuids["escape"] = _define(root, "escape", 12, [("/var/lib/libvirt/images/escape.raw", "raw", "disk")])

    alp1 = k.alpine_tree(trees / "alp1", hostname="alp1", host_key=k.keypair(keys / "alp1_hostkey"))
    k.write_apk_index(alp1, "2c4ac24e", [("musl", "1.2.4-r2", "musl"), ("busybox", "1.36.1-r7", "busybox"),
                                         ("libcrypto3", "3.1.4-r0", "openssl"), ("libssl3", "3.1.4-r0", "openssl"),
                                         ("openssh-server", "9.3_p2-r0", "openssh")], time.time() - 3600)
    k.ext4_image(alp1, images / "alp1.raw", 32)
    uuids["alp1"] = _define(root, "alp1", 13, [("/var/lib/libvirt/images/alp1.raw", "raw", "disk")])
    old1 = k.debian_tree(trees / "old1", hostname="old1", host_key=k.keypair(keys / "old1_hostkey"), weak=False,
                         release=("10", "buster", "10.13"))
    k.ext4_image(old1, images / "old1.raw")
    uuids["old1"] = _define(root, "old1", 14, [("/var/lib/libvirt/images/old1.raw", "raw", "disk")])

    planted = [k.PLANTED_PASSWORD, k.PLANTED_LIBVIRT_PASSWORD, k.PLANTED_PVE_SECRET, k.ROOT_HASH, k.WEAK_MD5, HOST_ROOT_HASH]
    planted += [k.unique_hash(f"{name}-{user}") for name in ("web1", "db1", "lvm1", "hostcopy", "template", "alp1", "old1") for user in ("root", "alice")]
    for path in sorted(keys.iterdir()):
        text = path.read_text()
        if "PRIVATE KEY" in text:
            body = [ln for ln in text.splitlines() if ln and not ln.startswith("-----")]
            planted.extend(ln for ln in body if len(ln) > 20)
        elif path.suffix == ".pub":
            planted.append(text.split()[1])  # public blobs: hyperward reports fingerprints, not keys
    return Lab(root, images, outside, fps, planted, uuids)


def _fresh_apt(tree: pathlib.Path) -> None:
    """The clean guest: one locally built package apt has no candidate for (its lists are as fresh
    as the files copied into the tree)."""
    (tree / "var/lib/dpkg/status").write_text("Package: site-config\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n"
                                              "Maintainer: ops <ops@example.org>\nDescription: local settings\n\n")
