"""Guests whose disks are block-level copies of one LVM disk, and a guest whose volume group has
the same name as another's, scanned in one appliance (issue 18).

Clones carry the same PV and VG UUIDs and VG name: LVM in a shared appliance then sees one PV on
two devices and refuses to activate the VG ("Cannot activate LVs in VG guestvg while PVs appear on
duplicate devices"), so without care neither guest's root is found; two VGs of one name (every
Ubuntu server's ubuntu-vg) get one of them activated under that name for both. Each guest must get
its own result. Every image is hashed before and after.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import imagekit as k
from appliance_env import appliance_env  # noqa: F401
from conftest import hyperward

SCAN_TIMEOUT = 900
PRETTY = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"'
PRETTY_B = b'PRETTY_NAME="Debian GNU/Linux 12 (clone-bb)"'


def _build_lvm(jobs: list[tuple[pathlib.Path, pathlib.Path]]) -> None:
    """(image, tar of its tree): MBR, one PV, VG "guestvg", LV root with ext4, every image with the
    same VG name. One read-write appliance builds them; LVM is limited to the image being built,
    so the second VG of one name can be created."""
    import guestfs  # type: ignore[import-not-found]

    for image, _ in jobs:
        with open(image, "wb") as handle:
            handle.truncate(96 * 1024 * 1024)
    g = guestfs.GuestFS(python_return_dict=True)
    g.set_backend("direct")
    g.set_backend_settings(["force_tcg"])
    for image, _ in jobs:
        g.add_drive_opts(str(image), format="raw", readonly=False)
    g.launch()
    for index, (_, tar) in enumerate(jobs):
        dev = f"/dev/sd{chr(ord('a') + index)}"
        g.part_disk(dev, "mbr")
        g.vg_activate_all(False)
        g.lvm_set_filter([f"{dev}1"])
        g.pvcreate(f"{dev}1")
        g.vgcreate("guestvg", [f"{dev}1"])
        g.lvcreate_free("root", "guestvg", 100)
        g.mkfs("ext4", "/dev/guestvg/root")
        g.mount("/dev/guestvg/root", "/")
        g.tar_in(str(tar), "/")
        g.umount_all()
    g.vg_activate_all(False)
    g.shutdown()
    g.close()


@pytest.fixture(scope="module")
def lab(appliance_env: dict[str, str]) -> Iterator[pathlib.Path]:  # noqa: F811
    base = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-lvmclones-"))
    try:
        root, keys = base / "root", base / "keys"
        images = root / "var/lib/libvirt/images"
        images.mkdir(parents=True)
        (root / "etc").mkdir()
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
        tree_a = k.debian_tree(base / "a", hostname="lvm-a", host_key=k.keypair(keys / "a_host"), weak=False)
        tree_c = k.debian_tree(base / "c", hostname="lvm-c", host_key=k.keypair(keys / "c_host"), weak=True)
        _build_lvm([(images / "lvm-a.raw", k.tar_of(tree_a, base / "a.tar")), (images / "lvm-c.raw", k.tar_of(tree_c, base / "c.tar"))])
        # lvm-b: a block-level copy of lvm-a, then one file's bytes changed in place (same length,
        # ext4 does not checksum data blocks), so reading lvm-a's LV for lvm-b would show
        data = (images / "lvm-a.raw").read_bytes()
        assert data.count(PRETTY) == 1
        (images / "lvm-b.raw").write_bytes(data.replace(PRETTY, PRETTY_B))
        for n, name in enumerate(("lvm-a", "lvm-b", "lvm-c")):
            (root / "etc/libvirt/qemu").mkdir(parents=True, exist_ok=True)
            (root / f"etc/libvirt/qemu/{name}.xml").write_text(
                k.domain_xml(name, f"00000000-0000-4000-b000-{n:012d}", [(f"/var/lib/libvirt/images/{name}.raw", "raw", "disk")]))
        yield root
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_each_clone_gets_its_own_result(lab: pathlib.Path) -> None:
    before = k.hashes(lab)
    done = hyperward("scan", "--root", str(lab), "--guests", "--format", "json", "--only", "HV-SCAN-070,HV-AUTH-070,HV-AUTH-074",
                     timeout=SCAN_TIMEOUT)
    assert done.returncode in (0, 1), done.stderr
    assert k.hashes(lab) == before
    report = json.loads(done.stdout)
    inside = {g["name"]: g["inside"] for g in report["guests"]}
    for name in ("lvm-a", "lvm-b", "lvm-c"):
        assert inside[name]["scanned"], (name, inside[name]["reason"])
        assert "ext4 on /dev/guestvg/root" in inside[name]["filesystems"]
    assert inside["lvm-a"]["os_product"] == "Debian GNU/Linux 12 (bookworm)"
    assert inside["lvm-b"]["os_product"] == "Debian GNU/Linux 12 (clone-bb)"
    assert inside["lvm-c"]["os_product"] == "Debian GNU/Linux 12 (bookworm)"
    label = {g["name"]: f"{g['name']} ({g['id']})" for g in report["guests"]}
    results = {(r["id"], r["resource"], r["status"]) for r in report["results"]}
    # lvm-c is the weak tree, the clones the hardened one: each judged from its own disk
    assert ("HV-AUTH-070", f"{label['lvm-c']}: sshd:PermitRootLogin", "fail") in results
    assert ("HV-AUTH-070", f"{label['lvm-a']}: sshd:PermitRootLogin", "pass") in results
    assert ("HV-AUTH-070", f"{label['lvm-b']}: sshd:PermitRootLogin", "pass") in results
    # the clone relation: the clones' shared host key is the existing row's finding, the shared
    # PV UUID a note naming the other guest
    assert {r[1] for r in results if r[0] == "HV-AUTH-074" and r[2] == "fail"} == {
        f"{label['lvm-a']}: /etc/ssh/ssh_host_ed25519_key", f"{label['lvm-b']}: /etc/ssh/ssh_host_ed25519_key"}
    (note_a,) = [n for n in inside["lvm-a"]["notes"] if "physical volume" in n]
    assert f"also on the disks of {label['lvm-b']}" in note_a and "cloned images" in note_a
    assert any("volume groups of one name" in n for n in inside["lvm-c"]["notes"])
