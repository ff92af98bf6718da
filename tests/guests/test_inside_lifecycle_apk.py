"""End of life (HV-PATCH-071) and Alpine's apk, without the appliance: the lookup against the real
distro-info-data installed on this machine, the sourced table, apk's version order against
vectors written from its documented order, apk's database, and Alpine advisories matched through the real
advisory database. The same pieces run against real disk images in test_inside.py."""

from __future__ import annotations

import csv
import datetime
import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import imagekit as k

from hyperward import vulndb
from hyperward.collect.lifecycle import release_lifecycle
from hyperward.facts import Lifecycle, OsRelease
from hyperward.model import Unavailable
from hyperward.parsers.advisories import split_ecosystem
from hyperward.parsers.apk import apk_compare, parse_apk_installed

DISTRO_INFO = pathlib.Path("/usr/share/distro-info")
TABLE = pathlib.Path(__file__).resolve().parents[2] / "src/hyperward/data/lifecycle.json"

#: "a op b", written for these tests from apk's documented order (apk-package(5), "Package
#: versions"): dot-separated numbers compared as numbers, then an optional letter, then suffixes with
#: an optional number in the order _alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg
#: < _p, then the -rN package revision. (apk-tools' own test/version.data is GPL-2.0 and stays out.)
APK_VECTORS = """
1.2 < 1.10
0.9 < 0.10
10.0 > 9.99.99
1.2.1 > 1.2
3.1.2-r0 < 3.1.4-r0
1.36.1-r7 = 1.36.1-r7
5.0-r1 < 5.0-r10
5.0-r9 < 5.0.1-r0
2.0_alpha1 < 2.0_beta1
2.0_beta1 < 2.0_pre1
2.0_pre1 < 2.0_rc1
2.1_rc1 < 2.1
2.0_rc9 < 2.0_rc10
2.0_alpha < 2.0_alpha1
2.0 < 2.0_cvs1
2.0_cvs1 < 2.0_svn1
2.0_svn1 < 2.0_git20240101
2.0_git20240101 < 2.0_hg1
2.0_hg1 < 2.0_p1
2.0_p1 < 2.0.1_alpha1
9.3_p2-r0 > 9.3_p1-r5
9.3_p2-r0 < 9.4_p1-r0
3.1 < 3.1a
3.1a < 3.1b
3.1b-r3 < 3.1c-r0
3.1z < 3.2
4.4.0_rc3-r1 < 4.4.0-r0
1.0_pre20240101 < 1.0_pre20250101
"""


@pytest.mark.parametrize("line", [ln for ln in APK_VECTORS.strip().splitlines()])
def test_apk_version_order_follows_the_documented_order(line: str) -> None:
    a, op, b = line.split()
    want = {"<": -1, "=": 0, ">": 1}[op]
    assert (apk_compare(a, b) > 0) - (apk_compare(a, b) < 0) == want
    assert (apk_compare(b, a) > 0) - (apk_compare(b, a) < 0) == -want  # and the order is antisymmetric


def test_apk_installed_database() -> None:
    packages = parse_apk_installed(k.APK_INSTALLED)
    assert [(p.name, p.version, p.source, p.arch, p.format) for p in packages] == [
        ("musl", "1.2.4-r2", "musl", "x86_64", "apk"), ("busybox", "1.36.1-r7", "busybox", "x86_64", "apk"),
        ("libcrypto3", "3.1.2-r0", "openssl", "x86_64", "apk"), ("libssl3", "3.1.2-r0", "openssl", "x86_64", "apk"),
        ("openssh-server", "9.3_p2-r0", "openssh", "x86_64", "apk")]
    # a stanza without a version is skipped; without an origin the package is its own aport; a
    # file line that happens to start with P: after the header does not rename the package
    odd = parse_apk_installed("P:nover\nA:x86_64\n\nP:solo\nV:1.0-r0\nF:usr\nR:P:x\n\n\n")
    assert [(p.name, p.source) for p in odd] == [("solo", "solo")]


def test_alpine_advisories_match_through_the_database(tmp_path: pathlib.Path) -> None:
    assert split_ecosystem("Alpine:v3.18") == ("alpine", "3.18")
    path = str(tmp_path / "db.sqlite")
    conn = vulndb.open_for_writing(path)
    report = vulndb.import_path(conn, str(k.FIXTURES / "advisories-alpine"), name="alpine")
    assert report.imported == 1 and not report.errors
    packages = parse_apk_installed(k.APK_INSTALLED)
    facts = vulndb.match(conn, path, "alpine", "3.18", packages, [])
    assert [(m.cve, m.source, m.package, m.installed, m.fixed) for m in facts.matches] == [
        ("CVE-2023-5363", "openssl", "libcrypto3,libssl3", "3.1.2-r0", "3.1.4-r0")]
    fixed = [p if p.source != "openssl" else type(p)(p.name, p.arch, "3.1.4-r0", p.source, "3.1.4-r0", "apk") for p in packages]
    assert vulndb.match(conn, path, "alpine", "3.18", fixed, []).matches == []
    # a 3.1.4_pre1 build sorts before the fix in apk's order (dpkg's would not know _pre)
    pre = [type(p)(p.name, p.arch, "3.1.4_pre1-r0", p.source, "3.1.4_pre1-r0", "apk") for p in packages if p.source == "openssl"]
    assert len(vulndb.match(conn, path, "alpine", "3.18", pre, []).matches) == 1
    with pytest.raises(vulndb.DatabaseError, match="no advisory for alpine:3.23"):
        vulndb.match(conn, path, "alpine", "3.23", packages, [])
    conn.close()


def _csv_row(name: str, series: str) -> dict[str, str]:
    with open(DISTRO_INFO / name, newline="") as handle:
        return next(r for r in csv.DictReader(handle) if r["series"] == series)


@pytest.fixture
def distro_info() -> None:
    if not (DISTRO_INFO / "debian.csv").is_file():
        pytest.fail("distro-info-data is not installed (scripts/install.sh installs it)")


def test_debian_dates_come_from_the_hosts_distro_info(distro_info: None) -> None:
    buster, bookworm = _csv_row("debian.csv", "buster"), _csv_row("debian.csv", "bookworm")
    found = release_lifecycle(OsRelease("debian", "10", "buster"))
    assert isinstance(found, Lifecycle)
    assert (found.name, found.eol, found.eol_label, found.extended, found.extended_in_use) == (
        "Debian 10 (buster)", buster["eol-lts"], "Debian LTS", buster["eol-elts"], False)
    assert str(DISTRO_INFO / "debian.csv") in found.source and buster["eol"] in found.source
    # by codename when VERSION_ID is absent; Freexian's archive in the sources extends the date
    elts = release_lifecycle(OsRelease("debian", "", "bookworm"), ["http://deb.freexian.com/extended-lts bookworm-lts"])
    assert isinstance(elts, Lifecycle) and elts.eol == bookworm["eol-lts"] and elts.extended_in_use
    sid = release_lifecycle(OsRelease("debian", "", "sid"))
    assert isinstance(sid, Lifecycle) and sid.released is None
    future = release_lifecycle(OsRelease("debian", "99", "zzz"))
    assert isinstance(future, Unavailable) and "update distro-info-data" in future.reason and future.path.endswith("debian.csv")


def test_ubuntu_dates_and_esm(distro_info: None) -> None:
    bionic = _csv_row("ubuntu.csv", "bionic")
    plain = release_lifecycle(OsRelease("ubuntu", "18.04", "bionic"))
    assert isinstance(plain, Lifecycle) and plain.eol == max(bionic["eol"], bionic["eol-server"]) and plain.extended == bionic["eol-esm"]
    assert not plain.extended_in_use
    pro = release_lifecycle(OsRelease("ubuntu", "18.04", "bionic"), ["https://esm.ubuntu.com/infra/ubuntu bionic-infra-security"])
    assert isinstance(pro, Lifecycle) and pro.extended_in_use


def test_missing_distro_info_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    monkeypatch.setenv("HYPERWARD_DISTRO_INFO", str(tmp_path / "none"))
    found = release_lifecycle(OsRelease("debian", "12", "bookworm"))
    assert isinstance(found, Unavailable) and "apt install distro-info-data" in found.reason
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/debian.csv").write_bytes(b"\xff\xfe not csv")
    monkeypatch.setenv("HYPERWARD_DISTRO_INFO", str(tmp_path / "bad"))
    bad = release_lifecycle(OsRelease("debian", "12", "bookworm"))
    assert isinstance(bad, Unavailable) and bad.kind == "invalid"


def test_the_table_is_sourced_and_dated() -> None:
    doc = json.loads(TABLE.read_text())
    datetime.date.fromisoformat(doc["compiled"])
    assert doc["releases"]
    for row in doc["releases"]:
        datetime.date.fromisoformat(row["eol"])
        assert row["source"].startswith("https://"), row
    alpine = release_lifecycle(OsRelease("alpine", "3.18.4", ""))
    assert isinstance(alpine, Lifecycle) and (alpine.release, alpine.eol) == ("3.18", "2025-05-09")
    rocky = release_lifecycle(OsRelease("rocky", "9.3", ""))
    assert isinstance(rocky, Lifecycle) and rocky.eol == "2032-05-31" and "wiki.rockylinux.org" in rocky.source
    unknown = release_lifecycle(OsRelease("fedora", "40", ""))
    assert isinstance(unknown, Unavailable) and unknown.reason.startswith("fedora 40: no end-of-life date known")


def test_alpine_tree_through_the_host_collectors(tmp_path: pathlib.Path) -> None:
    """The collectors the guest scan runs over its private copy: apk's database when there is
    neither dpkg status nor an rpm database, and /etc/alpine-release when os-release is gone."""
    from hyperward.collect.fs import RootFS
    from hyperward.collect.system import collect_patching

    tree = k.alpine_tree(tmp_path / "alp", hostname="alp", host_key=k.keypair(tmp_path / "key"))
    patching = collect_patching(RootFS(str(tree)))
    assert patching.os == OsRelease("alpine", "3.18.4", "") and patching.apt is None
    assert isinstance(patching.packages, list) and [p.format for p in patching.packages] == ["apk"] * 5
    assert patching.installed_packages == {"musl": "1.2.4-r2", "busybox": "1.36.1-r7", "libcrypto3": "3.1.2-r0",
                                           "libssl3": "3.1.2-r0", "openssh-server": "9.3_p2-r0"}
    (tree / "etc/os-release").unlink()
    assert collect_patching(RootFS(str(tree))).os == OsRelease("alpine", "3.18.4", "")


def _inside(name: str, lifecycle: object, scanned: bool = True) -> object:
    from hyperward.facts import GuestInside

    return GuestInside("libvirt", name, name, f"{name} (id-{name})", scanned, "" if scanned else "encrypted", False, [], [],
                       OsRelease("debian", "10", "buster"), None, None, None, [], [], [], [], lifecycle)  # type: ignore[arg-type]


def test_end_of_life_judgement(distro_info: None) -> None:
    """HV-PATCH-071's verdicts on the scan date: past the free date fails naming guest and release;
    an extended programme the sources use passes until its own end; a development release and an
    unknown one are not applicable with the reason; a guest not scanned is not applicable."""
    import types

    from hyperward.facts import GuestScanFacts, HostTrust
    from hyperward.guests.inside_checks import guest_end_of_life

    buster = release_lifecycle(OsRelease("debian", "10", "buster"))
    elts = release_lifecycle(OsRelease("debian", "10", "buster"), ["http://deb.freexian.com/extended-lts buster-lts"])
    sid = release_lifecycle(OsRelease("debian", "", "sid"))
    unknown = release_lifecycle(OsRelease("fedora", "40", ""))
    guests = [_inside("old", buster), _inside("paid", elts), _inside("dev", sid), _inside("odd", unknown), _inside("enc", None, False)]
    scan = GuestScanFacts("libguestfs", 0.0, 0.0, guests, HostTrust([], [], [], []), [])  # type: ignore[arg-type]
    host = types.SimpleNamespace(guest_insides=scan, meta=types.SimpleNamespace(collected_at="2026-12-02T03:00:00+00:00"))
    results = {(r.resource, r.status.value): r for r in guest_end_of_life(host)}  # type: ignore[arg-type]
    assert set(results) == {("old (id-old): release Debian 10 (buster)", "fail"), ("paid (id-paid): release Debian 10 (buster)", "pass"),
                            ("dev (id-dev)", "not_applicable"), ("odd (id-odd)", "not_applicable"), ("enc (id-enc)", "not_applicable")}
    old = results[("old (id-old): release Debian 10 (buster)", "fail")]
    assert "Debian LTS ended 2024-06-30" in old.message and "Freexian ELTS (paid) runs to 2029-06-30" in old.message
    assert results[("paid (id-paid): release Debian 10 (buster)", "pass")].details["end_of_life"] == "2029-06-30"
    assert "development release" in results[("dev (id-dev)", "not_applicable")].message
    assert "fedora 40: no end-of-life date known" in results[("odd (id-odd)", "not_applicable")].message
    # the day after the extended programme ends, it fails too
    host.meta.collected_at = "2029-07-01T00:00:00+00:00"
    late = {(r.resource, r.status.value) for r in guest_end_of_life(host)}  # type: ignore[arg-type]
    assert ("paid (id-paid): release Debian 10 (buster)", "fail") in late
