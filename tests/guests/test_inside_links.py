"""A hostile guest's symbolic links, against real disk images in one appliance: the guest owns its
filesystem, so a link where the scan fetches a file by name (dpkg's status, apk's database, a
file of /etc, a directory on the way) may point at anything in it. None is followed: the checks
that need the file are not applicable and name the guest's path, and what the link pointed at
(planted here with markers) appears nowhere in the snapshot or the report.

    lnkdeb  Debian; /var/lib/dpkg/status -> /srv/planted/status (absolute), /etc/sudoers.d/ops ->
            /srv/planted/sudoers and /etc/apt/sources.list.d/x.list -> ../../../srv/planted/list
            (out of /etc); /etc/os-release -> ../usr/lib/os-release (the distribution's own
            layout: read from /usr/lib/os-release itself); /etc/ssh/sshd_config ->
            ../ssh/sshd_config.real (a link inside /etc: read from the /etc stream)
    lnkalp  Alpine; /lib/apk/db/installed -> ../../../srv/planted/installed (relative)
    lnkdir  Debian; /var/lib/dpkg -> /srv/planted/dpkg, a directory on the way to the status file
    lnketc  Debian whose /etc is a link to /srv/planted/etc: not scanned inside, nothing judged
"""

from __future__ import annotations

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
from appliance_env import appliance_env  # noqa: F401
from conftest import hyperward

from hyperward.guests.inspect.appliance import LINK_REFUSED, LINKED_DIR_REFUSED

SCAN_TIMEOUT = 900
MARK = "PLANTED-LINK-TARGET"
PLANTED_STATUS = (f"Package: {MARK.lower()}-dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 6.6.6-{MARK}\n"
                  f"Source: openssl\nMaintainer: {MARK} <x@example.org>\nDescription: {MARK}\n\n")
PLANTED_APK = f"P:{MARK.lower()}-apk\nV:6.6.6-r0\nA:x86_64\no:openssl\nT:{MARK}\n\n"
PLANTED_SUDOERS = f"alice ALL=(ALL) NOPASSWD: ALL # {MARK}\n"
PLANTED_LIST = f"deb http://{MARK.lower()}.example.org/debian bookworm main\n"
INSIDE = ("HV-PATCH-070", "HV-PATCH-071", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-SCAN-070")


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{900 + n:012d}"


def _plant(tree: pathlib.Path, rel: str, text: str) -> None:
    path = tree / "srv/planted" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _link(tree: pathlib.Path, rel: str, target: str) -> None:
    path = tree / rel
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def _build(base: pathlib.Path) -> pathlib.Path:
    keys, trees, root = base / "keys", base / "trees", base / "root"
    images = root / "var/lib/libvirt/images"
    for d in (keys, trees, images, root / "etc/libvirt/qemu"):
        d.mkdir(parents=True, exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")

    deb = k.debian_tree(trees / "lnkdeb", hostname="lnkdeb", host_key=k.keypair(keys / "lnkdeb_hostkey"), weak=False)
    _plant(deb, "status", PLANTED_STATUS)
    _link(deb, "var/lib/dpkg/status", "/srv/planted/status")
    _plant(deb, "sudoers", PLANTED_SUDOERS)
    _link(deb, "etc/sudoers.d/ops", "/srv/planted/sudoers")
    _plant(deb, "list", PLANTED_LIST)
    _link(deb, "etc/apt/sources.list.d/x.list", "../../../srv/planted/list")
    (deb / "usr/lib").mkdir(parents=True, exist_ok=True)
    shutil.move(str(deb / "etc/os-release"), str(deb / "usr/lib/os-release"))
    _link(deb, "etc/os-release", "../usr/lib/os-release")
    shutil.move(str(deb / "etc/ssh/sshd_config"), str(deb / "etc/ssh/sshd_config.real"))
    _link(deb, "etc/ssh/sshd_config", "../ssh/sshd_config.real")

    alp = k.alpine_tree(trees / "lnkalp", hostname="lnkalp", host_key=k.keypair(keys / "lnkalp_hostkey"))
    _plant(alp, "installed", PLANTED_APK)
    _link(alp, "lib/apk/db/installed", "../../../srv/planted/installed")

    ddir = k.debian_tree(trees / "lnkdir", hostname="lnkdir", host_key=k.keypair(keys / "lnkdir_hostkey"), weak=False)
    _plant(ddir, "dpkg/status", PLANTED_STATUS)
    _link(ddir, "var/lib/dpkg", "/srv/planted/dpkg")

    detc = k.debian_tree(trees / "lnketc", hostname="lnketc", host_key=k.keypair(keys / "lnketc_hostkey"), weak=False)
    (detc / "srv/planted").mkdir(parents=True, exist_ok=True)
    shutil.move(str(detc / "etc"), str(detc / "srv/planted/etc"))
    (detc / "srv/planted/etc/sudoers.d/ops").write_text(PLANTED_SUDOERS)
    (detc / "srv/planted/etc/ssh/sshd_config").write_text(f"PermitRootLogin yes\n# {MARK}\n")
    _link(detc, "etc", "/srv/planted/etc")

    for n, (name, tree) in enumerate((("lnkdeb", deb), ("lnkalp", alp), ("lnkdir", ddir), ("lnketc", detc))):
        k.ext4_image(tree, images / f"{name}.raw", 32)
        xml = k.domain_xml(name, _uuid(n), [(f"/var/lib/libvirt/images/{name}.raw", "raw", "disk")])
        (root / f"etc/libvirt/qemu/{name}.xml").write_text(xml)
    return root


@pytest.fixture(scope="module")
def scanned(appliance_env: dict[str, str]) -> Iterator[dict[str, object]]:  # noqa: F811
    base = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-guestlinks-"))
    try:
        root = _build(base)
        out = base / "facts.json"
        done = hyperward("collect", "--root", str(root), "--guests", "-o", str(out), timeout=SCAN_TIMEOUT)
        assert done.returncode == 0, done.stderr
        report = hyperward("scan", "--snapshot", str(out), "--format", "json", "--only", ",".join(INSIDE))
        assert report.returncode == 0, report.stderr
        yield {"snapshot": out.read_text(), "report": json.loads(report.stdout), "text": report.stdout + done.stdout + done.stderr}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _rows(scanned: dict[str, object], check: str, guest: str) -> list[dict[str, object]]:
    report = scanned["report"]
    assert isinstance(report, dict)
    return [r for r in report["results"] if r["id"] == check and str(r["resource"]).startswith(f"{guest} (")]


def _inside(scanned: dict[str, object], guest: str) -> dict[str, object]:
    report = scanned["report"]
    assert isinstance(report, dict)
    (found,) = [g["inside"] for g in report["guests"] if g["name"] == guest]
    assert isinstance(found, dict)
    return found


def test_no_link_target_reaches_the_snapshot_or_the_report(scanned: dict[str, object]) -> None:
    for text in (scanned["snapshot"], scanned["text"]):
        assert MARK not in text and MARK.lower() not in text  # type: ignore[operator]


@pytest.mark.parametrize("guest, path, why", [("lnkdeb", "/var/lib/dpkg/status", LINK_REFUSED),
                                              ("lnkalp", "/lib/apk/db/installed", LINK_REFUSED),
                                              ("lnkdir", "/var/lib/dpkg/status", LINKED_DIR_REFUSED)])
def test_a_linked_package_database_makes_its_checks_not_applicable(scanned: dict[str, object], guest: str, path: str, why: str) -> None:
    for check in ("HV-PATCH-070", "HV-VULN-070"):
        rows = _rows(scanned, check, guest)
        assert rows, (check, guest)
        assert {r["status"] for r in rows} == {"not_applicable"}, rows
        assert all(str(r["message"]).startswith(f"{path}: {why}") for r in rows), rows


def test_the_distributions_own_links_still_read(scanned: dict[str, object]) -> None:
    """/etc/os-release -> ../usr/lib/os-release leads out of /etc: /usr/lib/os-release is read
    itself, so the release is known; the Alpine guest's release comes from its regular files."""
    deb, alp = _inside(scanned, "lnkdeb"), _inside(scanned, "lnkalp")
    assert deb["os"] == {"id": "debian", "version_id": "12", "codename": "bookworm"}, deb["os"]
    assert deb["os_product"] == "Debian GNU/Linux 12 (bookworm)"
    assert isinstance(alp["os"], dict) and alp["os"]["id"] == "alpine"
    assert {r["status"] for r in _rows(scanned, "HV-PATCH-071", "lnkdeb")} == {"pass"}


def test_a_linked_file_of_etc_is_an_error_naming_it_never_a_pass(scanned: dict[str, object]) -> None:
    """sudo would read /etc/sudoers.d/ops through its link; skipped as absent, the other rules
    would pass without it, so the accounts row that reads it is an error naming the guest's path."""
    rows = _rows(scanned, "HV-AUTH-071", "lnkdeb")
    named = [r for r in rows if str(r["message"]).startswith(f"/etc/sudoers.d/ops: {LINK_REFUSED}; it leads out of /etc")]
    assert named and {r["status"] for r in named} == {"error"}, rows


def test_a_link_inside_etc_is_read_from_the_etc_stream(scanned: dict[str, object]) -> None:
    """/etc/ssh/sshd_config -> ../ssh/sshd_config.real: the /etc stream holds the target, so sshd
    is judged on it (refused, every row would be an error naming /etc/ssh/sshd_config)."""
    rows = {str(r["resource"]).split(": ", 1)[1]: (r["status"], r["message"]) for r in _rows(scanned, "HV-AUTH-070", "lnkdeb")}
    assert rows["sshd:PermitRootLogin"] == ("pass", "PermitRootLogin no (/etc/ssh/sshd_config:2)"), rows


def test_a_linked_etc_leaves_the_guest_unscanned(scanned: dict[str, object]) -> None:
    """Every file the checks read is under /etc: judged without them, an absent sudoers would
    pass. The guest is not scanned inside, its rows not applicable with the reason."""
    inside = _inside(scanned, "lnketc")
    assert not inside["scanned"] and inside["reason"] == f"/etc: {LINK_REFUSED}", inside
    for check in ("HV-PATCH-070", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071"):
        rows = _rows(scanned, check, "lnketc")
        assert rows and {r["status"] for r in rows} == {"not_applicable"}, rows
        assert all(LINK_REFUSED in str(r["message"]) for r in rows), rows


# --- the pieces, without the appliance ----------------------------------------------------------------


def test_a_link_in_the_etc_stream_resolves_only_within_it() -> None:
    from hyperward.guests.inspect.collect import _in_stream

    files: dict[str, tuple[bytes | str, int]] = {
        "/etc/ssh/sshd_config.real": (b"PermitRootLogin no\n", 5), "/etc/ssh/sshd_config": ("sshd_config.real", 1),
        "/etc/a": ("/etc/b", 1), "/etc/b": ("ssh/../ssh/sshd_config", 1), "/etc/out": ("../usr/lib/os-release", 1),
        "/etc/abs-out": ("/srv/planted/x", 1), "/etc/loop1": ("loop2", 1), "/etc/loop2": ("/etc/loop1", 1),
        "/etc/passwd": ("shadow", 1), "/etc/shadow": (b"root:$6$secret:1::::::\n", 1), "/etc/dangling": ("nothere", 1)}
    assert _in_stream(files, "/etc/ssh/sshd_config") == (b"PermitRootLogin no\n", 5)
    assert _in_stream(files, "/etc/a") == (b"PermitRootLogin no\n", 5)  # two hops, absolute then relative
    for path in ("/etc/out", "/etc/abs-out", "/etc/loop1", "/etc/dangling"):
        assert _in_stream(files, path) is None, path
    assert _in_stream(files, "/etc/passwd") is None  # a secret is never copied into the public mirror


def test_the_mirror_answers_a_refused_file_with_its_reason(tmp_path: pathlib.Path) -> None:
    from hyperward.guests.inspect.collect import _Mirror, _refused

    (tmp_path / "etc/sudoers.d").mkdir(parents=True)
    (tmp_path / "etc/sudoers.d/real").write_text("root ALL=(ALL) ALL\n")
    status, entry = _refused("/var/lib/dpkg/status", LINK_REFUSED), _refused("/etc/sudoers.d/ops", LINK_REFUSED)
    assert (status.kind, entry.kind) == ("missing", "invalid")
    fs = _Mirror(str(tmp_path), {status.path: status, entry.path: entry})
    assert fs.read_text("/var/lib/dpkg/status") == status and fs.stat("/var/lib/dpkg/status") == status
    assert fs.exists("/var/lib/dpkg/status") and fs.read_bytes("/etc/sudoers.d/ops") == entry
    assert fs.listdir("/etc/sudoers.d") == ["ops", "real"]
    assert fs.read_text("/etc/sudoers.d/real") == "root ALL=(ALL) ALL\n"
