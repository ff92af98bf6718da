"""A host root with VirtualBox homes built from tests/fixtures/virtualbox (real settings-file
formats written by hand: VirtualBox cannot run here). alice's home is the weak one
(~/.config/VirtualBox), bob's the hardened one (legacy ~/.VirtualBox)."""

from __future__ import annotations

import os
import pathlib
import shutil

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "virtualbox"
TELEPORTER_PASSWORD = "Tele-Secret-4242"
PWHASH = "6b3a55e0261b0304143f805a24924d0c1c44524821305f31d9277843b8a10f4e"
EXTPACK = """<?xml version="1.0"?>
<VirtualBoxExtensionPack xmlns="http://www.virtualbox.org/VirtualBoxExtensionPack" version="1.0">
    <Name>Oracle VirtualBox Extension Pack</Name>
    <Description>Oracle Cloud Infrastructure integration, Host Webcam, VirtualBox RDP, PXE ROM, Disk Encryption, NVMe, full VM encryption.</Description>
    <Version revision="{rev}">{version}</Version>
    <MainModule>VBoxPuelMain</MainModule>
    <MainVMModule>VBoxPuelMainVM</MainVMModule>
    <VRDEModule>VBoxVRDP</VRDEModule>
    <CryptoModule>VBoxPuelCrypto</CryptoModule>
    <ShowLicense/>
</VirtualBoxExtensionPack>
"""


def _copy(src: pathlib.Path, dst: pathlib.Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(dst):
        os.chmod(dirpath, 0o700)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o600)


def make_root(tmp: pathlib.Path, *, extpack_version: str = "7.0.20", websrv: str | None = None) -> pathlib.Path:
    root = tmp / "vboxroot"
    (root / "etc/vbox").mkdir(parents=True)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
        "bob:x:1001:1001:Bob:/home/bob:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\nalice:x:1000:\nbob:x:1001:\nvboxusers:x:998:alice,bob\n")
    (root / "etc/vbox/vbox.cfg").write_text("# VirtualBox installation directory\nINSTALL_DIR='/usr/lib/virtualbox'\n"
                                            "# VirtualBox version\nINSTALL_VER='7.1.4'\nINSTALL_REV='165100'\n")
    packs = root / "usr/lib/virtualbox/ExtensionPacks/Oracle_VirtualBox_Extension_Pack"
    packs.mkdir(parents=True)
    (packs / "ExtPack.xml").write_text(EXTPACK.format(version=extpack_version, rev="165100"))
    (root / "etc/default/virtualbox").write_text(websrv if websrv is not None else (
        "# /etc/default/virtualbox\nVBOXWEB_USER=alice\nVBOXWEB_HOST=0.0.0.0\nVBOXWEB_PORT=18083\n"
        f"VBOXWEB_AUTH_LIBRARY=null\nVBOXWEB_AUTH_PWHASH={PWHASH}\n"))
    alice = root / "home/alice"
    _copy(FIXTURES / "weak", alice / "tmp-weak")
    (alice / ".config").mkdir(parents=True)
    shutil.move(str(alice / "tmp-weak/VirtualBox VMs"), str(alice / "VirtualBox VMs"))
    shutil.move(str(alice / "tmp-weak"), str(alice / ".config/VirtualBox"))
    _copy(FIXTURES / "hardened", root / "home/bob/.VirtualBox")
    vms = alice / "VirtualBox VMs"
    os.chmod(vms / "Win10-weak/Win10-weak.vbox", 0o644)
    os.chmod(vms / "Ubuntu71/Ubuntu71.vbox", 0o666)
    return root


WEAK = {
    "win10": "Win10-weak (0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a01)",
    "old50": "old50 (0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a02)",
    "ubuntu71": "Ubuntu71 (0b6a3f2e-5d1c-4a8e-9b7f-1c2d3e4f5a03)",
}
HARDENED = {
    "safe70": "Safe70 (5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc01)",
    "safe52": "Safe52 (5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc02)",
    "enc70": "Enc70 (5e1f0c3a-77aa-4c2b-9d10-aa00bb11cc03)",
}
