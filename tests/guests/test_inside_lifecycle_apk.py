"""End of life (HV-PATCH-071) and Alpine's apk, without the appliance: the lookup against the real
distro-info-data installed on this machine, the sourced table, apk's version order against
apk-tools' own test vectors, apk's database, and Alpine advisories matched through the real
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

#: lines of apk-tools' test/version.data (github.com/alpinelinux/apk-tools, commit 50ab589e): "a op b"
APK_VECTORS = """
2.34 > 0.1.0_alpha
23_foo > 4_beta
1.0 < 1.0bc
0.1.0_alpha = 0.1.0_alpha
0.1.0_alpha < 0.1.3_alpha
0.1.0_alpha2 > 0.1.0_alpha
0.1.0_alpha < 2.2.39-r1
1.0.4-r3 < 1.0.4-r4
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.2 < 1.3_alpha
1.3_alpha2 < 1.3_alpha3
0.7.0 < 0.8_beta1
3.10.18-r1 > 2.3.0b-r1
2.3.0b-r1 < 2.3.0b-r2
0.12.3 > 0.12
0.12 < 0.13_beta1
1.2.11 < 1.2.12.1
0.2.0-r1 < 3.1_p16
3.1_p16 < 3.1_p17
1.06-r6 < 006
006 > 1.0.0
1.2.2-r1 > 1.2.2
2.59 < 20050718-r1
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
1.39 > 1.00_beta2
4.2.52_p2-r1 < 4.2.52_p4-r2
1.02.07 < 1.02.10-r1
2.11-r1 > 2.11
20060720 > 3.0.20060720
3.0.20060720 < 20060720
2.5.1-r8 < 2.5.1a-r1
1.3.5-r10 > 1.3.5-r8
20040401 > 2.0.0_rc3-r1
3.0.0-r2 < 021109-r3
021109-r3 < 20060512
0.9.16-r1 < 3.9_pre20060124
1.1.7 < 6b-r7
0.10.0 < 0.10.1_rc1
2.0.2 > 1.1a
0.15.1b-r2 > 0.15.1b
22.7-r1 < 22.7.3-r1
22.7.3-r1 > 22.7
2.10.1 > 02.08.01b
0.20070118 < 0.20070207_rc1
4.5_p1-r1 > 4.5_p1
0.9.8c-r1 < 0.9.8d
2.2.3-r2 < 013
1.7 < 1.7b
1.8.5 < 1.8.5_p2
2.9.11_pre20051101-r3 > 2.9.11_pre20051101
0.9.28-r2 < 0.9.28.1
0.9.28.1 < 087-r1
104-r11 > 104-r9
20040406-r1 > 2.12r-r4
2.12r-r4 < 2.12r-r5
7.0.17 < 7.0.174
0.3.4_pre20061029 < 0.4.0
1.3-r0 < 1.3.1-r0
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
"""


@pytest.mark.parametrize("line", [ln for ln in APK_VECTORS.strip().splitlines()])
def test_apk_version_order_matches_apk_tools_vectors(line: str) -> None:
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
