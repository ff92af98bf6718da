"""End of life (HV-PATCH-071) and Alpine's apk, without the appliance: the lookup against the real
distro-info-data installed on this machine, the sourced table, apk's version order against
vectors written from its documented order, apk's database, and Alpine advisories matched through the real
advisory database. The same pieces run against real disk images in test_inside.py."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
import os
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


#: Alpine 3.18's main index a few months on: openssl's aport moved to 3.1.4-r0; musl unchanged;
#: busybox at an older revision than installed (a mirror behind: not an update)
MAIN_INDEX = [("musl", "1.2.4-r2", "musl"), ("busybox", "1.36.1-r5", "busybox"), ("libcrypto3", "3.1.4-r0", "openssl"),
              ("libssl3", "3.1.4-r0", "openssl"), ("openssh-server", "9.3_p2-r0", "openssh")]
COMMUNITY_INDEX = [("openssh-server", "9.3_p2-r1", "openssh"), ("qemu-system-x86_64", "8.0.5-r0", "qemu")]


def test_cached_apkindex_in_its_real_layout_is_read_in_memory(tmp_path: pathlib.Path) -> None:
    """Two gzip streams (the signature segment without end blocks, then DESCRIPTION and APKINDEX),
    read without a byte written: a member named to climb out of the tree is only a name."""
    from hyperward.parsers.apk import ApkIndexError, parse_apkindex_archive

    data = k.apkindex_archive(MAIN_INDEX)
    assert data.count(b"\x1f\x8b\x08") >= 2
    packages, description = parse_apkindex_archive(data)
    assert [(p.name, p.version, p.source) for p in packages] == MAIN_INDEX
    assert description.startswith("v3.18.4-112-g3ef1c1e5ab1")
    import gzip

    evil = gzip.compress(k._tar_member("../../../tmp/APKINDEX", b"P:evil\nV:9\n", 0) + k._tar_member("APKINDEX", b"P:ok\nV:1\n", 0) + bytes(1024))
    before = set(pathlib.Path("/tmp").iterdir())
    assert [p.name for p in parse_apkindex_archive(evil)[0]] == ["ok"]
    assert not any(p.name == "APKINDEX" for p in set(pathlib.Path("/tmp").iterdir()) - before)
    from hyperward.parsers.apk import _gunzip_members

    big = os.urandom(300_000) + bytes(2_000_000)  # members larger than zlib's buffers, ending exactly at the limit
    assert _gunzip_members(gzip.compress(big[:1_000_000]) + gzip.compress(big[1_000_000:]), len(big)) == big
    with pytest.raises(ApkIndexError, match=f"expands beyond {len(big) - 1} bytes"):
        _gunzip_members(gzip.compress(big), len(big) - 1)
    with pytest.raises(ApkIndexError, match="expands beyond 4096 bytes"):
        parse_apkindex_archive(gzip.compress(bytes(1 << 20)), limit=4096)
    with pytest.raises(ApkIndexError, match="truncated gzip stream"):
        parse_apkindex_archive(data[: len(data) - 40])
    with pytest.raises(ApkIndexError, match="no APKINDEX member"):
        parse_apkindex_archive(gzip.compress(k._tar_member("DESCRIPTION", b"x", 0) + bytes(1024)))


def _alpine_inside(tree: pathlib.Path, name: str) -> object:
    from hyperward.collect.access import collect_access
    from hyperward.collect.fs import RootFS
    from hyperward.collect.system import collect_patching
    from hyperward.facts import GuestInside

    fs = RootFS(str(tree))
    patching = collect_patching(fs)
    return GuestInside("libvirt", name, name, f"{name} (id-{name})", True, "", False, [], [], patching.os, "Alpine Linux v3.18",
                       patching, collect_access(fs), [], [], [], [], None)


def _pending(guests: list[object], collected_at: str = "2023-11-20T12:00:00+00:00") -> dict[tuple[str, str], object]:
    import types

    from hyperward.facts import GuestScanFacts, HostTrust
    from hyperward.guests.inside_checks import guest_pending_updates

    @dataclasses.dataclass
    class Host:  # the fields the check reads, as a dataclass: the guest's view replaces patching and access
        guest_insides: GuestScanFacts
        meta: object
        patching: object = None
        access: object = None

    scan = GuestScanFacts("libguestfs", 0.0, 0.0, guests, HostTrust([], [], [], []), [])  # type: ignore[arg-type]
    host = Host(scan, types.SimpleNamespace(collected_at=collected_at))
    return {(r.resource, r.status.value): r for r in guest_pending_updates(host)}  # type: ignore[arg-type]


def test_alpine_pending_updates_from_the_cached_indexes(tmp_path: pathlib.Path) -> None:
    """HV-PATCH-070 on Alpine: the newest version of each package across every cached index, in
    apk's order; an older one in an index is no update; a package installed nowhere offered is
    not named. A guest without a cached index is not applicable, naming its repositories; indexes
    older than a week fail as apt's lists do; a corrupt index is named by path, not guessed past."""
    fresh = 1_700_000_000.0  # 2023-11-14
    old = k.alpine_tree(tmp_path / "old", hostname="old", host_key=k.keypair(tmp_path / "k1"))
    k.write_apk_index(old, "2c4ac24e", MAIN_INDEX, fresh)
    k.write_apk_index(old, "86de5faa", COMMUNITY_INDEX, fresh - 3600,
                      description="v3.18.4-112-g3ef1c1e5ab1 [/home/buildozer/aports/community]")
    same = k.alpine_tree(tmp_path / "same", hostname="same", host_key=k.keypair(tmp_path / "k2"))
    k.write_apk_index(same, "2c4ac24e", [(n, v, o) for n, v, o in MAIN_INDEX if n not in ("libcrypto3", "libssl3")]
                      + [("libcrypto3", "3.1.2-r0", "openssl"), ("libssl3", "3.1.2-r0", "openssl")], fresh)
    never = k.alpine_tree(tmp_path / "never", hostname="never", host_key=k.keypair(tmp_path / "k3"))
    broken = k.alpine_tree(tmp_path / "broken", hostname="broken", host_key=k.keypair(tmp_path / "k4"))
    (broken / "var/cache/apk").mkdir(parents=True)
    (broken / "var/cache/apk/APKINDEX.0badf00d.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    results = _pending([_alpine_inside(t, t.name) for t in (old, same, never, broken)])
    fails = {res for res, status in results if status == "fail"}
    assert fails == {"old (id-old): libcrypto3", "old (id-old): libssl3", "old (id-old): openssh-server"}
    crypto = results[("old (id-old): libcrypto3", "fail")]
    assert crypto.details["installed"] == "3.1.2-r0" and crypto.details["candidate"] == "3.1.4-r0"  # type: ignore[attr-defined]
    assert crypto.details["source_package"] == "openssl" and "APKINDEX.2c4ac24e.tar.gz (v3.18.4-112" in crypto.message  # type: ignore[attr-defined]
    assert "9.3_p2-r1 from APKINDEX.86de5faa.tar.gz" in results[("old (id-old): openssh-server", "fail")].message  # type: ignore[attr-defined]
    passed = results[("same (id-same): apk", "pass")]
    assert "1 cached indexes, updated 2023-11-14T22:13:20+00:00" in passed.message  # type: ignore[attr-defined]
    (never_na,) = [r for (res, status), r in results.items() if res.startswith("never") and status == "not_applicable"]
    assert "no cached apk index under /var/cache/apk" in never_na.message  # type: ignore[attr-defined]
    assert "https://dl-cdn.alpinelinux.org/alpine/v3.18/main" in never_na.message  # type: ignore[attr-defined]
    broken_rows = {(res, status) for res, status in results if res.startswith("broken")}
    assert broken_rows == {("broken (id-broken): /var/cache/apk/APKINDEX.0badf00d.tar.gz", "error"), ("broken (id-broken)", "not_applicable")}
    assert "not gzip data" in results[("broken (id-broken): /var/cache/apk/APKINDEX.0badf00d.tar.gz", "error")].message  # type: ignore[attr-defined]
    assert "(unreadable;" in results[("broken (id-broken)", "not_applicable")].message  # type: ignore[attr-defined]
    # ten days on, the same indexes are stale
    late = _pending([_alpine_inside(same, "same")], "2023-11-25T00:00:00+00:00")
    assert ("same (id-same): apk indexes", "fail") in late
    assert "last updated 10 days ago (2023-11-14T22:13:20+00:00)" in late[("same (id-same): apk indexes", "fail")].message  # type: ignore[attr-defined]


def test_windows_end_of_life_by_product_and_build() -> None:
    """Rows keyed by ProductName and build together, from Microsoft's lifecycle data: the same
    build under another product (Server's Semi-Annual twin, a client LTSC edition) or Windows 11's
    "Windows 10" ProductName with its own build is not applicable, never borrowed."""
    from hyperward.collect.lifecycle import windows_lifecycle

    hive = "/Windows/System32/config/SOFTWARE"
    server = windows_lifecycle("Windows Server 2019 Standard", "17763", hive)
    assert isinstance(server, Lifecycle) and (server.name, server.eol) == ("Windows Server 2019 (build 17763)", "2029-01-09")
    assert "learn.microsoft.com/lifecycle/products/windows-server-2019" in server.source and "extendedEnd 01/09/2029" in server.source
    assert isinstance(windows_lifecycle("Windows Server 2022 Datacenter", "20348", hive), Lifecycle)
    client = windows_lifecycle("Windows 10 Pro", "19045", hive)
    assert isinstance(client, Lifecycle) and client.eol == "2025-10-14"
    for product, build in (("Windows Server Datacenter", "17763"), ("Windows 10 Enterprise LTSC 2019", "17763"), ("Windows 10 Pro", "22631"),
                           ("Windows Server 2019 Standard", "14393"), ("Windows Server 20190", "17763")):
        found = windows_lifecycle(product, build, hive)
        assert isinstance(found, Unavailable) and found.path == hive, (product, build)
        assert found.reason.startswith(f"{product} build {build}: no end-of-life date known"), found.reason


def test_windows_guests_judged_by_their_build() -> None:
    import types

    from hyperward.collect.lifecycle import windows_lifecycle
    from hyperward.facts import GuestInside, GuestScanFacts, HostTrust
    from hyperward.guests.inside_checks import guest_end_of_life

    def win(name: str, product: str, build: str) -> GuestInside:
        return GuestInside("libvirt", name, name, f"{name} (id-{name})", True, "", False, [], [], OsRelease("windows", build, ""), product,
                           None, None, [], [], [], [], windows_lifecycle(product, build, "SOFTWARE"))

    guests = [win("srv", "Windows Server 2019 Standard", "17763.3372"), win("pc", "Windows 10 Pro", "19045.5011"),
              win("sac", "Windows Server Datacenter", "17763.3372")]
    scan = GuestScanFacts("libguestfs", 0.0, 0.0, guests, HostTrust([], [], [], []), [])  # type: ignore[arg-type]
    host = types.SimpleNamespace(guest_insides=scan, meta=types.SimpleNamespace(collected_at="2026-12-02T03:00:00+00:00"))
    results = {(r.resource, r.status.value) for r in guest_end_of_life(host)}  # type: ignore[arg-type]
    assert results == {("srv (id-srv): release Windows Server 2019 (build 17763)", "pass"),
                       ("pc (id-pc): release Windows 10 22H2 (build 19045)", "fail"), ("sac (id-sac)", "not_applicable")}
