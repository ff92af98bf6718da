"""VirtualBox and ESXi guests scanned from their disks (issue 18): the platforms' own definitions
(a .vbox MediaRegistry, a .vmx fileName) mapped onto real images under a fixture root, and disk
paths that lead out of where the platform keeps disks refused, naming the guest and the path.

Every file under the root and outside it is hashed (content and mtime) before and after the scan.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import imagekit as k
import platform_lab as plab
from appliance_env import appliance_env  # noqa: F401
from conftest import hyperward

SCAN_TIMEOUT = 900
INSIDE = ("HV-PATCH-070", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-AUTH-072", "HV-AUTH-073", "HV-AUTH-074",
          "HV-AUTH-075", "HV-AUTH-076", "HV-ISO-070", "HV-SCAN-070")


@pytest.fixture(scope="module")
def lab(appliance_env: dict[str, str]) -> Iterator[plab.PlatformLab]:  # noqa: F811
    base = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-platformlab-"))
    try:
        yield plab.build(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def scanned(lab: plab.PlatformLab) -> dict[str, object]:
    before = {**k.hashes(lab.root), **k.hashes(lab.outside)}
    done = hyperward("scan", "--root", str(lab.root), "--guests", "--format", "json", "--only", ",".join(INSIDE), timeout=SCAN_TIMEOUT)
    after = {**k.hashes(lab.root), **k.hashes(lab.outside)}
    assert done.returncode in (0, 1), done.stderr
    return {"before": before, "after": after, "report": json.loads(done.stdout), "stdout": done.stdout + done.stderr}


def _guest(scanned: dict[str, object], name: str) -> dict[str, object]:
    report = scanned["report"]
    assert isinstance(report, dict)
    (guest,) = [g for g in report["guests"] if g["name"] == name]
    assert isinstance(guest, dict)
    return guest


def _results(scanned: dict[str, object], check: str, status: str) -> dict[str, dict[str, object]]:
    report = scanned["report"]
    assert isinstance(report, dict)
    return {r["resource"]: r for r in report["results"] if r["id"] == check and r["status"] == status}


def test_nothing_written(scanned: dict[str, object]) -> None:
    assert scanned["before"] == scanned["after"]
    assert len(scanned["before"]) >= 12  # type: ignore[arg-type]


def test_no_secret_in_output(lab: plab.PlatformLab, scanned: dict[str, object]) -> None:
    for planted in lab.secrets:
        assert planted not in scanned["stdout"]  # type: ignore[operator]


def test_virtualbox_and_esxi_guests_are_opened(scanned: dict[str, object]) -> None:
    for name, platform, fmt in (("vbdeb", "virtualbox", "vdi"), ("vbsnap", "virtualbox", "vdi"), ("esxdeb", "esxi", "vmdk"),
                                ("esxnvme", "esxi", "vmdk")):
        guest = _guest(scanned, name)
        inside = guest["inside"]
        assert isinstance(inside, dict) and guest["platform"] == platform
        assert inside["scanned"], (name, inside["reason"], inside["disks"])
        assert inside["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm"}
        assert [d["format"] for d in inside["disks"]] == [fmt], name
    disks = _guest(scanned, "vbdeb")["inside"]["disks"]  # type: ignore[index]
    assert disks[0]["source"] == "/home/alice/VirtualBox VMs/vbdeb/vbdeb.vdi" and disks[0]["status"] == "opened"  # type: ignore[index]
    (esx,) = _guest(scanned, "esxdeb")["inside"]["disks"]  # type: ignore[index]
    assert esx["source"].endswith("/esxdeb/esxdeb.vmdk") and esx["source"].startswith("/vmfs/volumes/")
    (nvme,) = _guest(scanned, "esxnvme")["inside"]["disks"]  # type: ignore[index]
    assert nvme["source"] == "/vmfs/volumes/datastore1/esxnvme/esxnvme.vmdk"


def test_inside_results_name_the_right_guests(lab: plab.PlatformLab, scanned: dict[str, object]) -> None:
    trusted = _results(scanned, "HV-AUTH-072", "fail")
    assert [r.split(":")[0].split(" (")[0] for r in trusted] == ["vbdeb"]
    (hit,) = trusted.values()
    assert hit["platform"] == "virtualbox" and hit["details"]["fingerprint"] == lab.fingerprints["vbdeb_root"]  # type: ignore[index]
    # vbsnap holds the host's root hash; esxdeb and esxnvme are two copies of one image (clones)
    reused = {(r.split(" (")[0], r.rsplit(": ", 1)[1]) for r in _results(scanned, "HV-AUTH-075", "fail")}
    assert reused == {("vbsnap", "account root"), ("esxdeb", "account root"), ("esxnvme", "account root"),
                      ("esxdeb", "account alice"), ("esxnvme", "account alice")}
    assert {r.split(" (")[0] for r in _results(scanned, "HV-AUTH-074", "fail")} == {"esxdeb", "esxnvme"}
    passes = {r.split(" (")[0] for r in _results(scanned, "HV-SCAN-070", "pass")}
    assert passes == {"vbdeb", "vbsnap", "esxdeb", "esxnvme"}


def test_differencing_vdi_is_read_through_its_base(lab: plab.PlatformLab, scanned: dict[str, object]) -> None:
    child = next((lab.root / "home/alice/VirtualBox VMs/vbsnap/Snapshots").iterdir())
    refused = subprocess.run(["qemu-img", "info", "-f", "vdi", str(child)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "unsupported" in refused.stderr.lower()  # why the base is read
    inside = _guest(scanned, "vbsnap")["inside"]
    (disk,) = inside["disks"]  # type: ignore[index]
    assert disk["source"] == f"/home/alice/VirtualBox VMs/vbsnap/Snapshots/{child.name}" and disk["status"] == "opened"
    assert disk["resolved"] == str(lab.root / "home/alice/VirtualBox VMs/vbsnap/vbsnap.vdi")
    assert any("differencing image" in n and "vbsnap.vdi was read" in n for n in inside["notes"])  # type: ignore[union-attr]
    (scan_pass,) = [r for r in _results(scanned, "HV-SCAN-070", "pass").values() if r["resource"].startswith("vbsnap")]
    assert "since the snapshot is not seen" in scan_pass["message"]  # type: ignore[operator]


def test_disk_paths_leading_out_are_refused(lab: plab.PlatformLab, scanned: dict[str, object]) -> None:
    fails = _results(scanned, "HV-ISO-070", "fail")
    by_guest = {r.split(" (")[0]: (r, res["message"]) for r, res in fails.items()}
    assert set(by_guest) == {"vbdotdot", "vblink", "vbabs", "esxext", "esxabs"}
    vms = "/home/alice/VirtualBox VMs"
    assert by_guest["vbdotdot"][0].endswith(f": {vms}/vbdotdot/../../../../../../../srv/secret.vdi")
    assert "resolves to /srv/secret.vdi, outside the directories this guest's disks may be in" in by_guest["vbdotdot"][1]  # type: ignore[operator]
    assert f"({vms}/vbdotdot, /home/alice)" in by_guest["vbdotdot"][1]  # type: ignore[operator]
    assert by_guest["vbabs"][0].endswith(": /srv/secret.vdi") and "outside the directories" in by_guest["vbabs"][1]  # type: ignore[operator]
    assert by_guest["vblink"][0].endswith(f": {vms}/vblink/vblink.vdi") and "outside the directories" in by_guest["vblink"][1]  # type: ignore[operator]
    for name in ("esxext", "esxabs"):
        resource, message = by_guest[name]
        assert resource.endswith(f"/{name}/{name}.vmdk")
        assert "extent" in message and "lies outside the audited root; not opened" in message, message  # type: ignore[operator]
    for name in ("vbdotdot", "vblink", "vbabs", "esxext", "esxabs"):
        inside = _guest(scanned, name)["inside"]
        assert not inside["scanned"] and [d["status"] for d in inside["disks"]] == ["outside-pool"]  # type: ignore[index,union-attr]


def test_esxi_host_drive_is_not_read(tmp_path: pathlib.Path) -> None:
    """A CD-ROM passed from the host (cdrom-raw) is not a file to open; an ISO is."""
    from hyperward.collect.fs import RootFS
    from hyperward.guests.inspect.images import prepare
    from hyperward.platforms.esxi.guests import to_guest
    from hyperward.platforms.esxi.parsers import parse_dictionary_text
    from hyperward.platforms.esxi.vmx import vm_from_vmx

    text = plab.vmx("cd", {}) + ('sata0.present = "TRUE"\nsata0:0.present = "TRUE"\nsata0:0.deviceType = "cdrom-raw"\n'
                                 'sata0:0.fileName = "/vmfs/devices/cdrom/mpx.vmhba0:C0:T0:L0"\n'
                                 'sata0:1.present = "TRUE"\nsata0:1.deviceType = "cdrom-image"\nsata0:1.fileName = "debian.iso"\n')
    guest = to_guest(vm_from_vmx(parse_dictionary_text(text), "/vmfs/volumes/ds1/cd/cd.vmx"))
    drive, iso = guest.disks
    assert (drive.raw_device, iso.source, iso.format) == (True, "/vmfs/volumes/ds1/cd/debian.iso", "raw")
    assert guest.disk_dirs == ["/vmfs/volumes", "/vmfs/volumes/ds1/cd"]
    result = prepare(RootFS(str(tmp_path)), drive, [], within=guest.disk_dirs)
    assert result.scan.status == "not-applicable" and result.drive is None


def test_vmdk_extent_preflight(tmp_path: pathlib.Path) -> None:
    """Extents are checked from the descriptor before QEMU opens anything: a FIFO extent would
    block qemu-img until its timeout, a missing one is named."""
    import os
    import time

    from hyperward.collect.fs import RootFS
    from hyperward.guests.inspect.images import prepare
    from hyperward.guests.model import GuestDisk

    vm = tmp_path / "vmfs/volumes/ds1/vm"
    vm.mkdir(parents=True)
    os.mkfifo(vm / "fifo-flat.vmdk")
    (vm / "fifo.vmdk").write_text(plab.esxi_descriptor("fifo", 2048, "fifo-flat.vmdk"))
    (vm / "gone.vmdk").write_text(plab.esxi_descriptor("gone", 2048, "gone-flat.vmdk"))
    with open(vm / "ok-flat.vmdk", "wb") as handle:
        handle.truncate(2048 * 512)
    (vm / "ok.vmdk").write_text(plab.esxi_descriptor("ok", 2048, "ok-flat.vmdk"))
    fs, within = RootFS(str(tmp_path)), ["/vmfs/volumes", "/vmfs/volumes/ds1/vm"]

    def prep(name: str) -> object:
        return prepare(fs, GuestDisk(f"/vmfs/volumes/ds1/vm/{name}.vmdk", "vmdk", False, False, None), [], within=within).scan

    started = time.monotonic()
    fifo = prep("fifo")
    assert fifo.status == "error" and "fifo-flat.vmdk is not a regular file" in fifo.reason  # type: ignore[attr-defined]
    assert time.monotonic() - started < 10
    gone = prep("gone")
    assert gone.status == "error" and "extent gone-flat.vmdk" in gone.reason  # type: ignore[attr-defined]
    ok = prep("ok")
    assert ok.status == "opened" and ok.format == "vmdk" and ok.virtual_size == 2048 * 512  # type: ignore[attr-defined]


def test_virtualbox_differencing_chain_parsed() -> None:
    """Nested HardDisks give the attached child its ancestors, nearest first, resolved against the
    machine folder; a parent cycle across registries (global and machine) stays bounded."""
    from hyperward.platforms.virtualbox.facts import Medium
    from hyperward.platforms.virtualbox.parsers import MAX_CHAIN, _ancestors, parse_machine

    media = ('        <HardDisk uuid="{00000000-0000-0000-0000-000000000001}" location="base.vdi" format="VDI">\n'
             '          <HardDisk uuid="{00000000-0000-0000-0000-000000000002}" location="Snapshots/s1.vdi" format="VDI">\n'
             '            <HardDisk uuid="{00000000-0000-0000-0000-000000000003}" location="/abs/s2.vdi" format="VDI"/>\n'
             "          </HardDisk>\n        </HardDisk>")
    text = plab.vbox_machine("m", "00000000-0000-0000-0000-0000000000aa", media, ["00000000-0000-0000-0000-000000000003"])
    _, _, config = parse_machine(text, "/home/u/VMs/m/m.vbox", "/home/u/VMs/m")
    assert config is not None
    (disk,) = config.disks
    assert disk.location == "/abs/s2.vdi" and disk.format == "VDI"
    assert disk.parents == ["/home/u/VMs/m/Snapshots/s1.vdi", "/home/u/VMs/m/base.vdi"]
    # two registries can disagree on who is whose parent: the walk stays bounded
    a = Medium("a", "a.vdi", "VDI", None, False, "b")
    b = Medium("b", "b.vdi", "VDI", None, False, "a")
    assert len(_ancestors({"a": a, "b": b}, a)) == MAX_CHAIN
