"""Scanning inside the guests (issue 18) against real disk images: ext4, xfs on a partition, ext4
on LVM, qcow2 over a backing file, vdi, vmdk, a NoCloud seed volume, qcow2/LUKS and LUKS2
encryption, a corrupt image, a truncated qcow2, a backing-file loop and a symlink out of the pool,
attached to libvirt domain definitions under a fixture root (and a Proxmox-style root).

Every image is hashed (content and mtime) before and after each scan: nothing may be written.
Every output and the snapshot are searched for the planted passwords, hashes and key material.
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import imagekit as k
import lab as labmod
from appliance_env import appliance_env  # noqa: F401
from conftest import hyperward

from hyperward.collect.fs import RootFS
from hyperward.guests.inside_checks import NOT_SCANNED
from hyperward.guests.inspect import images, keys, secrets
from hyperward.guests.inspect.collect import proxmox_path
from hyperward.guests.model import GuestDisk

SCAN_TIMEOUT = 900


@pytest.fixture(scope="module")
def lab(appliance_env: dict[str, str]) -> Iterator[labmod.Lab]:  # noqa: F811
    """Outside pytest's basetemp: concurrent pytest sessions of the same user prune each other's
    old basetemps, and this lab lives for the whole module."""
    base = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-guestlab-"))
    try:
        yield labmod.build(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def guest_vulndb(lab: labmod.Lab) -> str:
    """The suite's advisory fixtures and the Alpine one (tests/fixtures/advisories-alpine)."""
    from hyperward import vulndb

    path = str(lab.root.parent / "advisories.sqlite")
    conn = vulndb.open_for_writing(path)
    for name in ("advisories", "advisories-alpine"):
        report = vulndb.import_path(conn, str(k.FIXTURES / name), name=name)
        assert report.imported and not report.errors, report.errors
    conn.close()
    return path


@pytest.fixture(scope="module")
def scanned(lab: labmod.Lab, guest_vulndb: str) -> dict[str, object]:
    """One `collect --guests` of the whole lab (one appliance), then `scan --snapshot` of it."""
    out = lab.root.parent / "facts.json"
    before = _images(lab)
    mirrors_before = set(glob.glob(os.path.join(tempfile.gettempdir(), "hyperward-guest-*")))
    done = hyperward("collect", "--root", str(lab.root), "--guests", "-o", str(out), timeout=SCAN_TIMEOUT,
                     env={"HYPERWARD_VULNDB": guest_vulndb})
    assert done.returncode == 0, done.stderr
    after = _images(lab)
    mirrors = sorted(set(glob.glob(os.path.join(tempfile.gettempdir(), "hyperward-guest-*"))) - mirrors_before)
    report = hyperward("scan", "--snapshot", str(out), "--format", "json", "--only", ",".join(INSIDE))
    assert report.returncode == 0, report.stderr
    return {"before": before, "after": after, "mirrors": mirrors, "snapshot": out.read_text(), "report": json.loads(report.stdout),
            "stdout": report.stdout + done.stdout + done.stderr + report.stderr}


def _images(lab: labmod.Lab) -> dict[str, str]:
    """Every file of the host root (its images, and the definitions) and the image outside the pool."""
    return {**k.hashes(lab.root), **k.hashes(lab.outside)}


INSIDE = ("HV-PATCH-070", "HV-PATCH-071", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-AUTH-072", "HV-AUTH-073", "HV-AUTH-074",
          "HV-AUTH-075", "HV-AUTH-076", "HV-ISO-070", "HV-SCAN-070")


def _label(lab: labmod.Lab, name: str) -> str:
    return f"{name} ({lab.uuids[name]})"


def _results(scanned: dict[str, object], check: str, status: str | None = None) -> set[str]:
    report = scanned["report"]
    assert isinstance(report, dict)
    return {r["resource"] for r in report["results"] if r["id"] == check and (status is None or r["status"] == status)}


def _inventory(scanned: dict[str, object], name: str) -> dict[str, object]:
    report = scanned["report"]
    assert isinstance(report, dict)
    (guest,) = [g for g in report["guests"] if g["name"] == name]
    inside = guest["inside"]
    assert isinstance(inside, dict)
    return inside


def test_nothing_written_to_any_image(scanned: dict[str, object]) -> None:
    assert scanned["before"] == scanned["after"]
    assert scanned["mirrors"] == [], "a private copy of a guest's files was left behind"
    assert len(scanned["before"]) >= 15  # type: ignore[arg-type]


def test_no_secret_in_any_output_or_snapshot(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    texts = [scanned["snapshot"], scanned["stdout"]]
    for planted in lab.secrets:
        for text in texts:
            assert planted not in text  # type: ignore[operator]
    assert "PRIVATE KEY" not in scanned["snapshot"]  # type: ignore[operator]


def test_os_and_formats(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    for name in ("web1", "clone-a", "clone-b", "db1", "hostcopy", "lvm1"):
        inside = _inventory(scanned, name)
        assert inside["scanned"], (name, inside["reason"])
        assert inside["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm"}
        assert inside["os_product"] == "Debian GNU/Linux 12 (bookworm)"
    assert _inventory(scanned, "hostcopy")["filesystems"] == ["xfs on /var/lib/libvirt/images/hostcopy.raw partition 1"]
    assert "ext4 on /dev/guestvg1/root" in _inventory(scanned, "lvm1")["filesystems"]  # type: ignore[operator]
    assert _inventory(scanned, "clone-a")["disks"][0]["backing"] == ["/var/lib/libvirt/images/template.raw"]  # type: ignore[index]
    assert _inventory(scanned, "web1")["running"] is True
    assert _inventory(scanned, "web1")["pending_updates"] == 3
    assert _inventory(scanned, "lvm1")["pending_updates"] == 0


def test_unreadable_disks_are_reported_not_opened(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    for name in ("encq", "encluks"):
        inside = _inventory(scanned, name)
        assert not inside["scanned"] and inside["disks"][0]["status"] == "encrypted", inside  # type: ignore[index]
    for name in ("corrupt", "loop"):
        inside = _inventory(scanned, name)
        assert not inside["scanned"] and inside["disks"][0]["status"] == "error", inside  # type: ignore[index]
    assert "loop" in _inventory(scanned, "loop")["disks"][0]["reason"].lower()  # type: ignore[index]
    trunc = _inventory(scanned, "trunc")
    assert not trunc["scanned"] or trunc["notes"], trunc
    escape = _inventory(scanned, "escape")
    assert escape["disks"][0]["status"] == "outside-pool" and not escape["scanned"]  # type: ignore[index]
    scan_errors = _results(scanned, "HV-SCAN-070", "error")
    assert {f"{_label(lab, 'corrupt')}: /var/lib/libvirt/images/corrupt.qcow2",
            f"{_label(lab, 'loop')}: /var/lib/libvirt/images/loop-a.qcow2"} <= scan_errors
    assert {_label(lab, "encq"), _label(lab, "encluks")} <= _results(scanned, "HV-SCAN-070", "not_applicable")
    assert _results(scanned, "HV-ISO-070", "fail") == {f"{_label(lab, 'escape')}: /var/lib/libvirt/images/escape.raw"}
    assert f"{_label(lab, 'web1')}: disks" in _results(scanned, "HV-ISO-070", "pass")


def test_guest_key_trusted_by_host(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    assert _results(scanned, "HV-AUTH-072", "fail") == {f"{_label(lab, 'web1')}: /root/.ssh/id_ed25519",
                                                        f"{_label(lab, 'db1')}: /home/alice/.ssh/deploy_rsa",
                                                        f"{_label(lab, 'db1')}: /home/alice/.ssh/{labmod.HOSTILE_NAME}"}
    assert f"{_label(lab, 'lvm1')}: private keys" in _results(scanned, "HV-AUTH-072", "pass")
    keys_web1 = {(r["path"], r["fingerprint"]) for r in _inventory(scanned, "web1")["keys"]}  # type: ignore[union-attr,index]
    assert ("/root/.ssh/id_ed25519", lab.fingerprints["web1_root"]) in keys_web1
    report = scanned["report"]
    (hit,) = [r for r in report["results"] if r["id"] == "HV-AUTH-072" and r["resource"].endswith("deploy_rsa")]  # type: ignore[index]
    assert hit["details"]["host_file"] == "/etc/ssh/authorized_keys/admin" and hit["details"]["fingerprint"] == lab.fingerprints["db1_alice"]


def test_host_key_copied_into_guest(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    assert _results(scanned, "HV-AUTH-073", "fail") == {f"{_label(lab, 'hostcopy')}: /etc/ssh/ssh_host_ed25519_key"}
    assert f"{_label(lab, 'web1')}: host's keys" in _results(scanned, "HV-AUTH-073", "pass")


def test_clones_share_host_key_and_root_hash(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    assert _results(scanned, "HV-AUTH-074", "fail") == {f"{_label(lab, 'clone-a')}: /etc/ssh/ssh_host_ed25519_key",
                                                        f"{_label(lab, 'clone-b')}: /etc/ssh/ssh_host_ed25519_key"}
    fails = _results(scanned, "HV-AUTH-075", "fail")
    # the clones share every hash of their template (root and alice); hostcopy shares root's with the host
    assert fails == {f"{_label(lab, 'clone-a')}: account root", f"{_label(lab, 'clone-b')}: account root",
                     f"{_label(lab, 'clone-a')}: account alice", f"{_label(lab, 'clone-b')}: account alice",
                     f"{_label(lab, 'hostcopy')}: account root"}
    report = scanned["report"]
    (host_hit,) = [r for r in report["results"] if r["id"] == "HV-AUTH-075" and r["resource"].startswith("hostcopy")]  # type: ignore[index]
    assert host_hit["details"]["host_accounts"] == ["root"]
    assert f"{_label(lab, 'lvm1')}: accounts" in _results(scanned, "HV-AUTH-075", "pass")


def test_credentials_stored_in_guest(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    web1 = _label(lab, "web1")
    assert _results(scanned, "HV-AUTH-076", "fail") == {
        f"{web1}: /var/lib/cloud/instance/user-data.txt:4", f"{web1}: /var/lib/cloud/instance/user-data.txt:8",
        f"{web1}: /home/alice/.config/libvirt/auth.conf:3", f"{web1}: /home/alice/.bashrc:2",
        f"{web1}: /var/lib/libvirt/images/web1-seed.img:/user-data (seed volume):2"}
    assert f"{_label(lab, 'lvm1')}: files" in _results(scanned, "HV-AUTH-076", "pass")


def test_guest_ssh_accounts_patches_cves(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    web1, lvm1 = _label(lab, "web1"), _label(lab, "lvm1")
    assert _results(scanned, "HV-AUTH-070", "fail") == {f"{web1}: sshd:PermitRootLogin", f"{web1}: sshd:PasswordAuthentication"}
    assert f"{lvm1}: sshd:PermitRootLogin" in _results(scanned, "HV-AUTH-070", "pass")
    accounts = _results(scanned, "HV-AUTH-071", "fail")
    assert {f"{web1}: account bob", f"{web1}: account alice", f"{web1}: account toor", f"{web1}: sudo alice"} <= accounts
    assert not any(r.startswith(lvm1) for r in accounts)
    pending = _results(scanned, "HV-PATCH-070", "fail")
    assert f"{web1}: qemu-system-x86" in pending and not any(r.startswith(lvm1) for r in pending)
    assert f"{lvm1}: apt" in _results(scanned, "HV-PATCH-070", "pass")
    cves = _results(scanned, "HV-VULN-070", "fail")
    assert any(r.startswith(f"{web1}: CVE-") for r in cves) and not any(r.startswith(lvm1) for r in cves)
    assert f"{lvm1}: packages" in _results(scanned, "HV-VULN-070", "pass")
    running = [r for r in scanned["report"]["results"] if r["resource"].startswith(web1) and r["status"] == "fail"]  # type: ignore[index]
    assert running and all("mid-write" in r["message"] for r in running)
    assert not any("mid-write" in r["message"] for r in scanned["report"]["results"] if r["resource"].startswith(lvm1))  # type: ignore[index]


def test_end_of_life_per_guest(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    """Debian's dates from the scanning host's distro-info-data, Alpine's from hyperward's table;
    the guests' own copies are never read."""
    alp1, old1, web1 = _label(lab, "alp1"), _label(lab, "old1"), _label(lab, "web1")
    assert _results(scanned, "HV-PATCH-071", "fail") == {f"{alp1}: release Alpine Linux 3.18", f"{old1}: release Debian 10 (buster)"}
    report = scanned["report"]
    assert isinstance(report, dict)
    (old,) = [r for r in report["results"] if r["id"] == "HV-PATCH-071" and r["resource"].startswith(old1)]
    assert old["details"]["end_of_life"] == "2024-06-30" and old["details"]["support"] == "Debian LTS"
    assert "Freexian ELTS (paid) runs to 2029-06-30" in old["message"] and "/usr/share/distro-info/debian.csv" in old["message"]
    (alp,) = [r for r in report["results"] if r["id"] == "HV-PATCH-071" and r["resource"].startswith(alp1)]
    assert alp["details"]["end_of_life"] == "2025-05-09" and "alpinelinux.org/releases" in alp["message"]
    passing = _results(scanned, "HV-PATCH-071", "pass")
    assert f"{web1}: release Debian 12 (bookworm)" in passing and f"{_label(lab, 'lvm1')}: release Debian 12 (bookworm)" in passing
    assert _inventory(scanned, "web1")["lifecycle"]["eol"] == "2028-06-30"  # type: ignore[index]
    assert {_label(lab, "encq"), _label(lab, "corrupt")} <= _results(scanned, "HV-PATCH-071", "not_applicable")


def test_alpine_guest_packages_and_cves(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    """apk's database read from the disk; the openssl aport (libcrypto3, libssl3) matched against
    OSV's Alpine:v3.18 range in apk's version order."""
    inside = _inventory(scanned, "alp1")
    assert inside["scanned"], inside["reason"]
    assert inside["os"] == {"id": "alpine", "version_id": "3.18.4", "codename": ""}
    assert inside["os_product"] == "Alpine Linux v3.18" and inside["packages"] == 5
    alp1 = _label(lab, "alp1")
    assert {r for r in _results(scanned, "HV-VULN-070", "fail") if r.startswith(alp1)} == {f"{alp1}: CVE-2023-5363 openssl"}
    report = scanned["report"]
    assert isinstance(report, dict)
    (hit,) = [r for r in report["results"] if r["id"] == "HV-VULN-070" and r["resource"] == f"{alp1}: CVE-2023-5363 openssl"]
    assert hit["details"]["binaries"] == ["libcrypto3", "libssl3"] and hit["details"]["installed"] == "3.1.2-r0"
    assert hit["details"]["fixed"] == "3.1.4-r0" and hit["details"]["advisory"] == "ALPINE-CVE-2023-5363"
    assert f"{alp1}: sshd:PermitRootLogin" in _results(scanned, "HV-AUTH-070", "pass")
    # pending updates from the index apk cached in the guest, read from its disk
    assert {r for r in _results(scanned, "HV-PATCH-070", "fail") if r.startswith(alp1)} == {f"{alp1}: libcrypto3", f"{alp1}: libssl3"}
    (update,) = [r for r in report["results"] if r["id"] == "HV-PATCH-070" and r["resource"] == f"{alp1}: libssl3"]
    assert update["details"]["candidate"] == "3.1.4-r0" and "APKINDEX.2c4ac24e.tar.gz" in update["message"]


def test_windows_guest_release_from_its_registry(lab: labmod.Lab, scanned: dict[str, object]) -> None:
    """The SOFTWARE hive on the NTFS volume, read by hivex inside the appliance: product name,
    feature release and build; everything else about a Windows guest is not applicable."""
    inside = _inventory(scanned, "win1")
    assert inside["scanned"], inside["reason"]
    assert inside["os"] == {"id": "windows", "version_id": "17763.3372", "codename": "1809"}
    assert inside["os_product"] == "Windows Server 2019 Standard 1809 (build 17763.3372)"
    assert inside["filesystems"] == ["ntfs on /var/lib/libvirt/images/win1.raw partition 1"]
    win1 = _label(lab, "win1")
    assert f"{win1}: inside" in _results(scanned, "HV-SCAN-070", "pass")
    for check in ("HV-PATCH-070", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-AUTH-072", "HV-AUTH-076"):
        assert win1 in _results(scanned, check, "not_applicable"), check
        assert not any(r.startswith(win1) for r in _results(scanned, check, "fail")), check
    # its end of life by product and build (Microsoft's lifecycle data)
    assert f"{win1}: release Windows Server 2019 (build 17763)" in _results(scanned, "HV-PATCH-071", "pass")
    assert _inventory(scanned, "win1")["lifecycle"]["eol"] == "2029-01-09"  # type: ignore[index]
    # db1 carries the same Windows tree on its Linux root: it stays a Linux guest, fully judged
    assert _inventory(scanned, "db1")["os"]["id"] == "debian"  # type: ignore[index]
    assert f"{_label(lab, 'db1')}: /home/alice/.ssh/deploy_rsa" in _results(scanned, "HV-AUTH-072", "fail")


def test_guests_scan_cli_by_name(lab: labmod.Lab) -> None:
    before = _images(lab)
    done = hyperward("guests", "scan", "--root", str(lab.root), "db1", "--format", "json", timeout=SCAN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert _images(lab) == before
    report = json.loads(done.stdout)
    assert {r["id"] for r in report["results"]} == set(INSIDE)
    assert {r["resource"].split(":")[0] for r in report["results"]} == {_label(lab, "db1")}
    for planted in lab.secrets:
        assert planted not in done.stdout
    text = hyperward("guests", "scan", "--root", str(lab.root), "db1", timeout=SCAN_TIMEOUT)
    assert text.returncode == 0 and "HV-AUTH-072" in text.stdout and "pwned" in text.stdout
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout  # the guest's file name cannot drive the terminal
    bad = hyperward("guests", "scan", "--root", str(lab.root), "no-such-vm")
    assert bad.returncode == 2 and "no guest named no-such-vm" in bad.stderr and "Traceback" not in bad.stderr


def test_not_scanned_is_not_applicable(lab: labmod.Lab) -> None:
    done = hyperward("scan", "--root", str(lab.root), "--format", "json", "--only", "HV-AUTH-072")
    report = json.loads(done.stdout)
    assert [(r["status"], r["message"]) for r in report["results"]] == [("not_applicable", NOT_SCANNED)]


# --- Proxmox: volume IDs mapped through storage.cfg, the cluster's shared authorized_keys ---------


def test_proxmox_guest_through_scan_guests(tmp_path: pathlib.Path, appliance_env: dict[str, str]) -> None:  # noqa: F811
    root = tmp_path / "pve"
    keydir = tmp_path / "keys"
    guest_key = k.keypair(keydir / "pve_guest")
    host_key = k.keypair(keydir / "pve_host")
    files = {
        "etc/pve/.version": "{}\n", "etc/hostname": "pve1\n",
        "etc/pve/storage.cfg": "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,images\n\nrbd: ceph\n\tpool vms\n\tcontent images\n",
        "etc/pve/nodes/pve1/qemu-server/100.conf": f"name: pvevm\nscsi0: {labmod.PVE_VOLUME},size=64M\nvirtio1: ceph:vm-100-disk-1,size=8G\n",
        "etc/pve/priv/authorized_keys": guest_key[1] + "\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/bash\n", "etc/ssh/ssh_host_ed25519_key.pub": host_key[1] + "\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    tree = k.debian_tree(tmp_path / "tree", hostname="pvevm", host_key=k.keypair(keydir / "pvevm_host"), user_key=guest_key, weak=False)
    raw = k.ext4_image(tree, tmp_path / "pvevm.raw")
    target = root / "var/lib/vz/images/100/vm-100-disk-0.qcow2"
    target.parent.mkdir(parents=True)
    k.qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(target))
    before = k.hashes(root)
    done = hyperward("scan", "--root", str(root), "--guests", "--format", "json", "--only", ",".join(INSIDE), timeout=SCAN_TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert k.hashes(root) == before
    report = json.loads(done.stdout)
    fails = {(r["id"], r["resource"]) for r in report["results"] if r["status"] == "fail"}
    assert ("HV-AUTH-072", "pvevm (100): /root/.ssh/id_ed25519") in fails
    (hit,) = [r for r in report["results"] if r["id"] == "HV-AUTH-072" and r["status"] == "fail"]
    assert hit["details"]["host_file"] == "/etc/pve/priv/authorized_keys" and hit["platform"] == "proxmox"
    (guest,) = report["guests"]
    disks = {d["source"]: d for d in guest["inside"]["disks"]}
    assert disks[labmod.PVE_VOLUME]["status"] == "opened" and disks[labmod.PVE_VOLUME]["format"] == "qcow2"
    assert disks["ceph:vm-100-disk-1"]["status"] == "not-applicable"
    assert guest_key[1].split()[1] not in done.stdout


# --- without the appliance: the pieces ------------------------------------------------------------


def test_fingerprints_match_ssh_keygen(tmp_path: pathlib.Path) -> None:
    for kind, pem in (("ed25519", False), ("rsa", True), ("ecdsa", False), ("rsa", False)):
        private, public = k.keypair(tmp_path / f"{kind}{pem}", kind, pem=pem)
        blobs = keys.private_key_blobs(private)
        assert [keys.fingerprint(b) for b in blobs] == [k.fingerprint_of(public)], (kind, pem)
    k.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "a passphrase", "-f", str(tmp_path / "locked"))
    locked = (tmp_path / "locked").read_bytes()
    assert [keys.fingerprint(b) for b in keys.private_key_blobs(locked)] == [k.fingerprint_of((tmp_path / "locked.pub").read_text())]
    assert keys.private_key_blobs(b"-----BEGIN OPENSSH PRIVATE KEY-----\n!!!!\n-----END OPENSSH PRIVATE KEY-----\n") == []
    assert keys.private_key_blobs(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA/////w==\n-----END OPENSSH PRIVATE KEY-----\n") == []


def test_authorized_keys_options_and_comments(tmp_path: pathlib.Path) -> None:
    _, public = k.keypair(tmp_path / "a")
    text = f'# comment\n\ncommand="echo a b",no-pty {public}\nrestrict  {public} trailing comment\ngarbage line\nssh-ed25519 !!notbase64\n'
    found = keys.authorized_blobs(text)
    assert [n for n, _ in found] == [3, 4]
    assert {keys.fingerprint(b) for _, b in found} == {k.fingerprint_of(public)}


def test_cloud_init_and_credentials_parsers() -> None:
    user_data = ("#cloud-config\nusers:\n  - name: a\n    passwd: $6$hash\n    plain_text_passwd: s3cret\n  - name: b\n"
                 "    hashed_passwd: $6$x\npassword: $6$alreadyhashed\nchpasswd:\n  list: |\n    root:clear\n    bob:$6$h\n"
                 "    carol:RANDOM\n  expire: false\npassword: hunter2\n")
    found = secrets.cloud_init_passwords("/u", user_data)
    assert [(s.line, s.kind) for s in found] == [(5, "cloud-init plain_text_passwd in plain text"), (11, "cloud-init chpasswd plaintext password"),
                                                 (15, "cloud-init password in plain text")]
    creds = secrets.hypervisor_credentials("/home/a/.config/libvirt/auth.conf", "[credentials-x]\nauthname=a\npassword=p\n")
    assert [(c.line, c.kind) for c in creds] == [(3, "libvirt auth.conf password")]
    assert secrets.hypervisor_credentials("/home/a/.bashrc", "password=p\nexport GOVC_PASSWORD=x\n") == [
        secrets.SecretRef("/home/a/.bashrc", 2, "vSphere password")]
    tokens = secrets.hash_tokens("root:$6$a$b:1::\nx:!:1::\ny::1::\nz:$6$a$b:1::\n", b"k" * 32)
    assert [(t.user, t.scheme) for t in tokens] == [("root", "sha512"), ("z", "sha512")]
    assert tokens[0].token == tokens[1].token and "$6$" not in tokens[0].token
    assert secrets.hash_tokens("root:$6$a$b:1::\n", b"j" * 32)[0].token != tokens[0].token


def test_images_preflight(tmp_path: pathlib.Path) -> None:
    require_tools = shutil.which("qemu-img")
    assert require_tools
    root = tmp_path / "root"
    pool = root / "var/lib/libvirt/images"
    pool.mkdir(parents=True)
    fs = RootFS(str(root))

    def prep(name: str, fmt: str = "raw", **kw: object) -> images.Prepared:
        return images.prepare(fs, GuestDisk(f"/var/lib/libvirt/images/{name}", fmt, False, False, None, **kw), [])  # type: ignore[arg-type]

    with open(pool / "ok.raw", "wb") as handle:
        handle.truncate(1 << 20)
    assert prep("ok.raw").scan.status == "opened"
    (pool / "luks.raw").write_bytes(b"LUKS\xba\xbe" + bytes(4096))
    assert prep("luks.raw").scan.status == "encrypted"
    (tmp_path / "elsewhere.raw").write_bytes(bytes(4096))
    os.symlink(str(tmp_path / "elsewhere.raw"), pool / "link.raw")
    assert prep("link.raw").scan.status == "outside-pool" and prep("link.raw").drive is None
    os.symlink("ok.raw", pool / "inside-link.raw")
    assert prep("inside-link.raw").scan.status == "opened"
    (pool / "junk.qcow2").write_bytes(b"QFI\xfb" + os.urandom(1000))
    assert prep("junk.qcow2", "qcow2").scan.status == "error"
    assert prep("missing.raw").scan.status == "error"
    assert prep("ok.raw", "bochs-like").scan.status == "not-applicable"
    assert images.prepare(fs, GuestDisk("pool/vol", "raw", False, False, None, network="rbd"), []).scan.status == "not-applicable"
    os.mkfifo(pool / "fifo.raw")
    assert prep("fifo.raw").scan.status == "error"
    # a qcow2 whose header names a backing file outside the audited root (QEMU would open it here)
    k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(tmp_path / "elsewhere.raw"), "-F", "raw", str(pool / "escapes.qcow2"))
    escaped = prep("escapes.qcow2", "qcow2")
    assert escaped.scan.status == "outside-pool" and "outside the audited root" in escaped.scan.reason and escaped.drive is None
    k.qemu_img("create", "-q", "-f", "qcow2", "-b", str(pool / "ok.raw"), "-F", "raw", str(pool / "fine.qcow2"))
    assert prep("fine.qcow2", "qcow2").scan.status == "opened"


def test_proxmox_volume_paths() -> None:
    storages = {"local": ("dir", {"path": "/var/lib/vz"}), "nfs1": ("nfs", {}), "thin": ("lvmthin", {"vgname": "pve"}),
                "z": ("zfspool", {"pool": "rpool/data"}), "ceph": ("rbd", {"pool": "vms"})}
    assert proxmox_path("local:100/vm-100-disk-0.qcow2", storages) == ("/var/lib/vz/images/100/vm-100-disk-0.qcow2", "qcow2", "")
    assert proxmox_path("local:iso/seed.iso", storages) == ("/var/lib/vz/template/iso/seed.iso", "raw", "")
    assert proxmox_path("nfs1:vm-101-disk-1.raw", storages) == ("/mnt/pve/nfs1/images/101/vm-101-disk-1.raw", "raw", "")
    assert proxmox_path("thin:vm-100-disk-0", storages) == ("/dev/pve/vm-100-disk-0", "raw", "")
    assert proxmox_path("z:vm-100-disk-0", storages) == ("/dev/zvol/rpool/data/vm-100-disk-0", "raw", "")
    assert proxmox_path("ceph:vm-100-disk-0", storages)[0] is None
    assert proxmox_path("gone:vm-1-disk-0", storages) == (None, None, "storage 'gone' is not in /etc/pve/storage.cfg")


def test_secrets_never_reach_the_private_copy() -> None:
    """Only the whitelisted, non-secret files are written to the temporary tree the host collectors
    read; shadow, host keys, cloud-init and credential files stay in memory."""
    from hyperward.guests.inspect.collect import _is_mirrored, _is_secret

    for path in ("/etc/shadow", "/etc/gshadow", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key.pub", "/etc/cloud/cloud.cfg",
                 "/etc/libvirt/auth.conf", "/etc/environment", "/root/.ssh/id_ed25519"):
        assert not _is_mirrored(path), path
    for path in ("/etc/shadow", "/etc/ssh/ssh_host_ed25519_key", "/etc/cloud/cloud.cfg.d/99.cfg", "/etc/libvirt/auth.conf"):
        assert _is_secret(path), path
    for path in ("/etc/passwd", "/var/lib/dpkg/status", "/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/10.conf", "/etc/pam.d/sshd",
                 "/var/lib/apt/lists/x_Packages"):
        assert _is_mirrored(path) and not _is_secret(path), path
