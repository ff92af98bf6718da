"""`hyperward guests scan` on this live host against domains defined on a real libvirtd (started
here when none answers, through tests/fixtures/live_libvirt.py): a raw image and a qcow2 over a
backing file, built from the small Debian tree. The domains are defined, never started, so their
filesystems are at rest. Every image is hashed (content and mtime) before and after.

Starts libvirtd: run it alone, under `flock /tmp/hyperward-live.lock`.
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
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fixtures"))
import imagekit as k
from appliance_env import appliance_env  # noqa: F401
from conftest import hyperward
from live_libvirt import connect, running_libvirtd

PREFIX = "hwgscan-"
SCAN_TIMEOUT = 900


@pytest.fixture(scope="module")
def domains(appliance_env: dict[str, str]) -> Iterator[dict[str, object]]:  # noqa: F811
    base = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-livegs-"))
    try:
        images, keys = base / "images", base / "keys"
        images.mkdir()
        trusted = k.keypair(keys / "raw_root")
        raw_tree = k.debian_tree(base / "raw", hostname="liveraw", host_key=k.keypair(keys / "raw_host"), user_key=trusted)
        k.ext4_image(raw_tree, images / "liveraw.raw")
        template = k.debian_tree(base / "template", hostname="livetemplate", host_key=k.keypair(keys / "template_host"), weak=False)
        k.ext4_image(template, images / "template.raw")
        k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(images / "template.raw"), "-F", "raw", str(images / "liveqcow.qcow2"))
        with running_libvirtd(PREFIX):
            conn = connect()
            try:
                defined = {}
                for n, (name, path, fmt) in enumerate(((f"{PREFIX}raw", images / "liveraw.raw", "raw"),
                                                       (f"{PREFIX}qcow", images / "liveqcow.qcow2", "qcow2"))):
                    xml = k.domain_xml(name, f"00000000-0000-4000-a000-{n:012d}", [(str(path), fmt, "disk")]).replace(
                        "<domain type='kvm'>", "<domain type='qemu'>").replace("machine='pc-q35-7.2'", "machine='pc'")
                    dom = conn.defineXML(xml)
                    defined[name] = f"{name} ({dom.UUIDString()})"
                    assert not dom.isActive()
                yield {"images": images, "labels": defined}
            finally:
                conn.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_live_libvirt_domains_are_opened_read_only(domains: dict[str, object]) -> None:
    images = domains["images"]
    labels = domains["labels"]
    assert isinstance(images, pathlib.Path) and isinstance(labels, dict)
    before = k.hashes(images)
    done = hyperward("guests", "scan", "--connect", "qemu:///system", "--format", "json", *labels, timeout=SCAN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert k.hashes(images) == before
    report = json.loads(done.stdout)
    guests = {g["name"]: g for g in report["guests"] if g["name"].startswith(PREFIX)}
    assert set(guests) == set(labels)
    for name, guest in guests.items():
        inside = guest["inside"]
        assert inside["scanned"], (name, inside["reason"], inside["disks"])
        assert inside["running"] is False and not any("mid-write" in n for n in inside["notes"])
        assert inside["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm"}
        assert [d["status"] for d in inside["disks"]] == ["opened"]
    qcow = guests[f"{PREFIX}qcow"]["inside"]["disks"][0]
    assert qcow["format"] == "qcow2" and qcow["backing"] == [str(images / "template.raw")]
    assert guests[f"{PREFIX}raw"]["inside"]["disks"][0]["format"] == "raw"
    results = {(r["id"], r["resource"], r["status"]) for r in report["results"]}
    raw_label, qcow_label = labels[f"{PREFIX}raw"], labels[f"{PREFIX}qcow"]
    assert ("HV-SCAN-070", f"{raw_label}: inside", "pass") in results
    assert ("HV-SCAN-070", f"{qcow_label}: inside", "pass") in results
    # the weak tree's sshd and accounts, the hardened template's not
    assert ("HV-AUTH-070", f"{raw_label}: sshd:PermitRootLogin", "fail") in results
    assert ("HV-AUTH-070", f"{qcow_label}: sshd:PermitRootLogin", "pass") in results
    assert {r[1].split(":")[0] for r in results} == {raw_label, qcow_label}
