"""Real guest disk images for the inside-the-guest tests, built from a small Debian-like tree.

The tree is written here (no debootstrap): Debian 12's os-release, the weak fixture root's dpkg
status (versions the advisory fixtures flag), excerpts of Debian 12's real apt lists, sshd_config,
passwd/shadow/sudoers, SSH keys made by ssh-keygen, cloud-init user-data. Filesystems are made by
the real tools: mkfs.ext4 -d (no mount needed), and for xfs, LVM and a partition table one
libguestfs appliance writes them (the image under construction is the only one opened read-write).
Formats come from qemu-img: qcow2 over a backing file, vmdk, vdi, qcow2 with LUKS encryption.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tarfile

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
PLANTED_PASSWORD = "Pl4nted-cloud-Passw0rd"
PLANTED_LIBVIRT_PASSWORD = "Pl4nted-libvirt-s3cret"
PLANTED_PVE_SECRET = "0f1e2d3c-4b5a-6978-8877-665544332211"
# crypt(3) strings (made once with openssl passwd -6; never printed by hyperward)
ROOT_HASH = "$6$Tq0v9xY1$GvQ9yC0mV3r1xW2zK8hP5nT7bL4dF6jS0aE9uR2iO1pM3qN5wX7cZ9vB1nM3kL5jH7gF9dS1aQ3wE5rT7yU9i."
OTHER_HASH = "$y$j9T$Zk3c0wz0oZ8YpJb1G0K3p/$9mA1d0p3QeG4xQv8m7uKp2b0cW9oF6sD1hJ5lN8rT3."
WEAK_MD5 = "$1$Yx7Qp2Lk$0cW9oF6sD1hJ5lN8rT3aB."

SSHD_WEAK = "PermitRootLogin yes\nPasswordAuthentication yes\nInclude /etc/ssh/sshd_config.d/*.conf\n"
SSHD_HARDENED = "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"


def run(*cmd: str, timeout: float = 120, input: bytes | None = None) -> str:
    done = subprocess.run(list(cmd), capture_output=True, timeout=timeout, input=input)
    assert done.returncode == 0, f"{cmd[0]}: {done.stderr.decode(errors='replace')[-500:]}"
    return done.stdout.decode(errors="replace")


def keypair(path: pathlib.Path, kind: str = "ed25519", pem: bool = False) -> tuple[bytes, str]:
    """(private file bytes, public line); ssh-keygen writes both."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "planted", "-f", str(path)]
    if kind == "rsa":
        args += ["-b", "2048"]
    if pem:
        args += ["-m", "PEM"]
    run(*args)
    return path.read_bytes(), (path.with_name(path.name + ".pub")).read_text().strip()


def fingerprint_of(pub_line: str) -> str:
    """What ssh-keygen -l prints, as the reference the tests compare hyperward's fingerprints to."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=pub_line.encode(), capture_output=True, check=True)
    return out.stdout.decode().split()[1]


def _w(root: pathlib.Path, rel: str, data: str | bytes, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    os.chmod(path, mode)


def unique_hash(seed: str) -> str:
    """A yescrypt-shaped string of its own per tree, so only the planted reuse is shared."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"$y$j9T${digest[:22]}${digest[22:64]}"


def debian_tree(root: pathlib.Path, *, hostname: str, host_key: tuple[bytes, str], root_hash: str | None = None,
                weak: bool = True, user_key: tuple[bytes, str] | None = None, cloud_password: bool = False,
                libvirt_password: bool = False, pve_token: bool = False, pem_key: tuple[bytes, str] | None = None,
                release: tuple[str, str, str] = ("12", "bookworm", "12.7")) -> pathlib.Path:
    """`release`: (VERSION_ID, codename, /etc/debian_version), as Debian's base-files writes them."""
    root.mkdir(parents=True, exist_ok=True)
    number, codename, point = release
    _w(root, "etc/os-release", f'PRETTY_NAME="Debian GNU/Linux {number} ({codename})"\nNAME="Debian GNU/Linux"\nVERSION_ID="{number}"\n'
                               f'VERSION="{number} ({codename})"\nVERSION_CODENAME={codename}\nID=debian\n')
    _w(root, "etc/debian_version", point + "\n")
    _w(root, "etc/hostname", hostname + "\n")
    users = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n"
    root_hash = root_hash or unique_hash(f"{hostname}-root")
    shadow = f"root:{root_hash}:19800:0:99999:7:::\nalice:{unique_hash(hostname + '-alice') if not weak else WEAK_MD5}:19900:0:99999:7:::\n"
    if weak:
        users += "toor:x:0:0::/root:/bin/bash\n"
        shadow += "bob::19900:0:99999:7:::\ntoor:!:19900:0:99999:7:::\n"
    else:
        shadow += "bob:!:19900:0:99999:7:::\n"
    _w(root, "etc/passwd", users)
    _w(root, "etc/shadow", shadow, 0o640)
    _w(root, "etc/group", "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\nbob:x:1001:\n")
    _w(root, "etc/sudoers", "root ALL=(ALL:ALL) ALL\n" + ("alice ALL=(ALL) NOPASSWD: ALL\n" if weak else "") + "@includedir /etc/sudoers.d\n", 0o440)
    (root / "etc/sudoers.d").mkdir(parents=True, exist_ok=True)
    _w(root, "etc/login.defs", "ENCRYPT_METHOD YESCRYPT\nPASS_MAX_DAYS 99999\n")
    _w(root, "etc/ssh/sshd_config", SSHD_WEAK if weak else SSHD_HARDENED)
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    _w(root, "etc/ssh/ssh_host_ed25519_key", host_key[0], 0o600)
    _w(root, "etc/ssh/ssh_host_ed25519_key.pub", host_key[1] + "\n")
    _w(root, "etc/fstab", "# static file system information\nUUID=0000 / ext4 errors=remount-ro 0 1\n")
    status = (FIXTURES / "roots/weak/var/lib/dpkg/status").read_text()
    _w(root, "var/lib/dpkg/status", status)
    lists = root / "var/lib/apt/lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    for path in sorted((FIXTURES / "apt").iterdir()):
        shutil.copy(path, lists / path.name)
    _w(root, "etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\n"
                                     "deb http://deb.debian.org/debian-security bookworm-security main\n")
    for d in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "root/.ssh", "home/alice/.ssh", "home/bob", "tmp", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    if user_key is not None:
        _w(root, "root/.ssh/id_ed25519", user_key[0], 0o600)
    if pem_key is not None:
        _w(root, "home/alice/.ssh/deploy_rsa", pem_key[0], 0o600)
    if cloud_password:
        _w(root, "var/lib/cloud/instance/user-data.txt",
           "#cloud-config\nusers:\n  - name: alice\n    plain_text_passwd: " + PLANTED_PASSWORD + "\n    lock_passwd: false\n"
           "chpasswd:\n  list: |\n    root:" + PLANTED_PASSWORD + "\n    bob:$6$abc$def\n  expire: false\n", 0o600)
    if libvirt_password:
        _w(root, "home/alice/.config/libvirt/auth.conf",
           "[credentials-host]\nauthname=admin\npassword=" + PLANTED_LIBVIRT_PASSWORD + "\n\n[auth-libvirt-hv1]\ncredentials=host\n", 0o600)
    if pve_token:
        _w(root, "home/alice/.bashrc", "export PS1='$ '\nexport PVE_AUTH='PVEAPIToken=automation@pve!ci=" + PLANTED_PVE_SECRET + "'\n")
    return root


#: /lib/apk/db/installed as apk 2.14 writes it (Alpine 3.18): a stanza per package (C checksum, P
#: name, V version, A arch, S size, I installed size, T description, U url, L licence, o origin,
#: m maintainer, t build time, c aport commit, D dependencies, then F directory / R file / Z file
#: checksum lines), blank-line separated (checksums and commits here are illustrative). libcrypto3 and libssl3 are subpackages of the openssl
#: aport at 3.1.2-r0, which ALPINE-CVE-2023-5363 (fixed in 3.1.4-r0 on v3.18) affects.
APK_INSTALLED = """C:Q1wTjvdr2MH3Nd1QxgxS3vHvOsgBM=
P:musl
V:1.2.4-r2
A:x86_64
S:407278
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1697731398
c:a3e7ad7b84ba2c1d4a4b2d8b69a5ef8a0f3e0c3a
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Xuw3V7OtSmpnX5v5R6MB0PPmh3k=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1Rp2kY3sSbmpYZu0uJcZMKy8Q1ew=
P:busybox
V:1.36.1-r7
A:x86_64
S:509591
I:962560
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1700158562
c:d3af1b0d9d9c7e5f2f3a18d7c7f47c3b5d0a1e43
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox
a:0:0:755
Z:Q1sP2UfVvUQmtlQoshbFvY9j6h4jQ=

C:Q1Hq7nY3mH0uTSAfhsZo8n2M1kqgA=
P:libcrypto3
V:3.1.2-r0
A:x86_64
S:1731066
I:4239360
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1690983030
c:77f5c4bd1b6a8ee50bb4e5b5c4c5a2bc1c8e3b6e
D:so:libc.musl-x86_64.so.1
F:lib
R:libcrypto.so.3
a:0:0:755
Z:Q1p0Qx6hL8r3mUFYt2yNHoxVxL3Wk=

C:Q1J4tJ3o0V6NSvQ8HzM1YkF6wS2hg=
P:libssl3
V:3.1.2-r0
A:x86_64
S:354396
I:606208
T:SSL shared libraries
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
m:Ariadne Conill <ariadne@dereferenced.org>
t:1690983030
c:77f5c4bd1b6a8ee50bb4e5b5c4c5a2bc1c8e3b6e
D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3
F:lib
R:libssl.so.3
a:0:0:755
Z:Q1Yt0uGdBJ4yN4q5E5dP8qXhVhnWk=

C:Q1yb0fM3rsZQhP1r3o8nnPT4e4Kxo=
P:openssh-server
V:9.3_p2-r0
A:x86_64
S:381005
I:905216
T:OpenSSH server
U:https://www.openssh.com/portable.html
L:SSH-OpenSSH
o:openssh
m:Natanael Copa <ncopa@alpinelinux.org>
t:1690470000
c:0e0a0e8d0f0e4b4f9e6c2b3a1d0c9b8a7f6e5d4c
D:openssh-keygen openssh-server-common so:libc.musl-x86_64.so.1 so:libcrypto.so.3
F:usr/sbin
R:sshd
a:0:0:755
Z:Q1W6DyyIh3O0v2B5yZ6C4zC3qWcMk=

"""


def alpine_tree(root: pathlib.Path, *, hostname: str, host_key: tuple[bytes, str], version: str = "3.18.4") -> pathlib.Path:
    """An Alpine system's files as its packages write them: alpine-base's /etc/os-release and
    /etc/alpine-release, apk's database, BusyBox-style accounts, a hardened sshd."""
    root.mkdir(parents=True, exist_ok=True)
    branch = ".".join(version.split(".")[:2])
    _w(root, "etc/os-release", f'NAME="Alpine Linux"\nID=alpine\nVERSION_ID={version}\nPRETTY_NAME="Alpine Linux v{branch}"\n'
                               'HOME_URL="https://alpinelinux.org/"\nBUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n')
    _w(root, "etc/alpine-release", version + "\n")
    _w(root, "etc/hostname", hostname + "\n")
    _w(root, "etc/apk/repositories", f"https://dl-cdn.alpinelinux.org/alpine/v{branch}/main\nhttps://dl-cdn.alpinelinux.org/alpine/v{branch}/community\n")
    _w(root, "etc/apk/world", "alpine-base\nopenssh-server\n")
    _w(root, "lib/apk/db/installed", APK_INSTALLED)
    _w(root, "etc/passwd", "root:x:0:0:root:/root:/bin/ash\nbin:x:1:1:bin:/bin:/sbin/nologin\nsshd:x:22:22:sshd:/dev/null:/sbin/nologin\n")
    _w(root, "etc/shadow", f"root:{unique_hash(hostname + '-root')}:19600:0:::::\nbin:!::0:::::\nsshd:!::0:::::\n", 0o640)
    _w(root, "etc/group", "root:x:0:root\nbin:x:1:root,bin\nsshd:x:22:\n")
    _w(root, "etc/ssh/sshd_config", SSHD_HARDENED)
    (root / "etc/ssh/sshd_config.d").mkdir(parents=True, exist_ok=True)
    _w(root, "etc/ssh/ssh_host_ed25519_key", host_key[0], 0o600)
    _w(root, "etc/ssh/ssh_host_ed25519_key.pub", host_key[1] + "\n")
    _w(root, "etc/fstab", "UUID=0000 / ext4 rw,relatime 0 1\n")
    for d in ("root/.ssh", "tmp", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return root


def _tar_member(name: str, data: bytes, mtime: int) -> bytes:
    """One ustar member (header and padded data) with no end-of-archive blocks: a tar segment."""
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o644, mtime, 0, 0
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()[: 512 + -(-len(data) // 512) * 512]


def apkindex_archive(packages: list[tuple[str, str, str]], description: str = "v3.18.4-112-g3ef1c1e5ab1 [/home/buildozer/aports/main]",
                     mtime: int = 1_700_000_000) -> bytes:
    """An APKINDEX.tar.gz as apk fetches it and caches it (the Apk spec, "Index v2 layout"): a
    gzip stream of the signature tar segment (.SIGN.RSA.<key>.pub, cut before the end-of-archive
    blocks by abuild-tar --cut), then a gzip stream of the index tar with DESCRIPTION and APKINDEX,
    whose stanzas are the installed database's. `packages`: (name, version, origin)."""
    import gzip

    stanzas = "".join(f"C:Q1{hashlib.sha1(f'{n}{v}'.encode()).hexdigest()[:27]}=\nP:{n}\nV:{v}\nA:x86_64\nS:1000\nI:4096\n"
                      f"T:{n}\nU:https://alpinelinux.org/\nL:MIT\no:{o}\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:{mtime}\n\n"
                      for n, v, o in packages)
    signature = _tar_member(".SIGN.RSA.alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub", os.urandom(512), mtime)
    body = _tar_member("DESCRIPTION", description.encode(), mtime) + _tar_member("APKINDEX", stanzas.encode(), mtime) + bytes(1024)
    return gzip.compress(signature, mtime=mtime) + gzip.compress(body, mtime=mtime)


def write_apk_index(root: pathlib.Path, tag: str, packages: list[tuple[str, str, str]], mtime: float | None = None,
                    description: str = "v3.18.4-112-g3ef1c1e5ab1 [/home/buildozer/aports/main]") -> pathlib.Path:
    """/var/cache/apk/APKINDEX.<tag>.tar.gz as apk update leaves it; `mtime` when apk last updated it."""
    path = root / "var/cache/apk" / f"APKINDEX.{tag}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(apkindex_archive(packages, description))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


#: what Windows Server 2019's setup writes to HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion
#: (the values hyperward reads; UBR 3372 = 0xd2c, a 2023 cumulative update)
WINDOWS_REG = """Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft]

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT]

[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]
"ProductName"="Windows Server 2019 Standard"
"EditionID"="ServerStandard"
"InstallationType"="Server"
"CurrentVersion"="6.3"
"CurrentBuild"="17763"
"CurrentBuildNumber"="17763"
"DisplayVersion"="1809"
"ReleaseId"="1809"
"UBR"=dword:00000d2c

"""


def software_hive(path: pathlib.Path, reg: str = WINDOWS_REG) -> pathlib.Path:
    """A real SOFTWARE hive: the minimal empty regf (regf.py), the keys merged in by real hivex
    (hivexregedit --merge), then read back by real hivex to prove the file is one it accepts."""
    import regf

    path.write_bytes(regf.minimal_hive())
    source = path.with_suffix(".reg")
    source.write_text(reg)
    run("hivexregedit", "--merge", str(path), "--prefix", "HKEY_LOCAL_MACHINE\\SOFTWARE", str(source))
    exported = run("hivexregedit", "--export", str(path), "\\Microsoft\\Windows NT\\CurrentVersion")
    assert '"UBR"=dword:00000d2c' in exported or "UBR" not in reg, exported
    return path


def windows_tree(root: pathlib.Path, hive: pathlib.Path) -> pathlib.Path:
    """The files libguestfs' own phony Windows guest has (test-data/phony-guests/make-windows-img.sh):
    the SOFTWARE hive under Windows/System32/config, a cmd.exe, Program Files."""
    (root / "Windows/System32/config").mkdir(parents=True, exist_ok=True)
    (root / "Windows/System32/drivers").mkdir(parents=True, exist_ok=True)
    (root / "Program Files").mkdir(parents=True, exist_ok=True)
    shutil.copy(hive, root / "Windows/System32/config/SOFTWARE")
    _w(root, "Windows/System32/cmd.exe", b"MZ" + bytes(62))
    _w(root, "autoexec.bat", "")
    return root


def ext4_image(tree: pathlib.Path, path: pathlib.Path, size_mb: int = 64) -> pathlib.Path:
    run("mkfs.ext4", "-q", "-F", "-L", "guestroot", "-d", str(tree), str(path), f"{size_mb}M")
    return path


def tar_of(tree: pathlib.Path, path: pathlib.Path) -> pathlib.Path:
    with tarfile.open(path, "w") as tar:
        for child in sorted(tree.iterdir()):
            tar.add(child, arcname=child.name)
    return path


def build_with_guestfs(jobs: list[tuple[pathlib.Path, str, pathlib.Path, int]]) -> None:
    """(image, layout, tar of the tree, size MB): layout "xfs-part" (MBR, one xfs partition),
    "ntfs-part" (MBR, one NTFS partition, made by the appliance's mkntfs) or "lvm" (MBR, an LVM PV,
    VG guestvg, LV root with ext4). One appliance writes them all."""
    import guestfs  # type: ignore[import-not-found]

    for image, _, _, size in jobs:
        with open(image, "wb") as handle:
            handle.truncate(size * 1024 * 1024)
    g = guestfs.GuestFS(python_return_dict=True)
    g.set_backend("direct")
    for image, _, _, _ in jobs:
        g.add_drive_opts(str(image), format="raw", readonly=False)
    try:
        g.launch()
    except RuntimeError:
        g.close()
        g = guestfs.GuestFS(python_return_dict=True)
        g.set_backend("direct")
        g.set_backend_settings(["force_tcg"])
        for image, _, _, _ in jobs:
            g.add_drive_opts(str(image), format="raw", readonly=False)
        g.launch()
    for index, (_, layout, tar, _) in enumerate(jobs):
        dev = f"/dev/sd{chr(ord('a') + index)}"
        g.part_disk(dev, "mbr")
        if layout in ("xfs-part", "ntfs-part"):
            g.mkfs(layout.split("-")[0], f"{dev}1")
            target = f"{dev}1"
        else:
            vg = f"guestvg{index}"
            g.pvcreate(f"{dev}1")
            g.vgcreate(vg, [f"{dev}1"])
            g.lvcreate_free("root", vg, 100)
            target = f"/dev/{vg}/root"
            g.mkfs("ext4", target)
        g.mount(target, "/")
        g.tar_in(str(tar), "/")
        g.umount_all()
    g.shutdown()
    g.close()


def qemu_img(*args: str) -> str:
    return run("qemu-img", *args)


def sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hashes(directory: pathlib.Path) -> dict[str, str]:
    """Every image file under `directory` (symlinks not followed), with its mtime, by content."""
    out = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_symlink():
            out[str(path)] = f"{sha256(path)} {path.stat().st_mtime_ns}"
    return out


def domain_xml(name: str, uuid: str, disks: list[tuple[str, str, str]]) -> str:
    """(path, format, device) per disk, as virsh dumpxml prints a minimal KVM guest."""
    parts = []
    for i, (path, fmt, device) in enumerate(disks):
        target = ("hd" if device == "cdrom" else "vd") + chr(ord("a") + i)
        bus = "sata" if device == "cdrom" else "virtio"
        parts.append(f"""    <disk type='file' device='{device}'>
      <driver name='qemu' type='{fmt}'/>
      <source file='{path}'/>
      <target dev='{target}' bus='{bus}'/>
      {'<readonly/>' if device == 'cdrom' else ''}
    </disk>""")
    return f"""<domain type='kvm'>
  <name>{name}</name>
  <uuid>{uuid}</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
{chr(10).join(parts)}
  </devices>
</domain>
"""
