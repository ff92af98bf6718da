"""RPM hosts: installed packages read from a real rpmdb.sqlite (built here with Debian's rpm and
rpmbuild: packages built from specs, recorded with `rpm --justdb`), checked against `rpm -qa`, and
matched against an AlmaLinux advisory with rpm's version order."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

from hyperward import vulndb
from hyperward.collect import collect_host
from hyperward.model import Status

from conftest import require, scan

PACKAGES = [
    # name, epoch, version, release, source rpm
    ("qemu-kvm-core", 17, "8.2.0", "11.el9_4.4", "qemu-kvm"),
    ("libvirt-daemon", None, "10.0.0", "6.7.el9_4", "libvirt"),
    ("kernel-core", None, "5.14.0", "427.22.1.el9_4", "kernel"),
    ("edk2-ovmf", None, "20231122", "6.el9_4.3", "edk2"),
    ("swtpm", None, "0.8.0", "1.el9", "swtpm"),
]


def _spec(name: str, epoch: int | None, version: str, release: str, source: str) -> str:
    """A source package `source` building the binary `name` (as qemu-kvm builds qemu-kvm-core)."""
    head = (f"Name: {source}\nVersion: {version}\nRelease: {release}\n" + (f"Epoch: {epoch}\n" if epoch is not None else "")
            + "Summary: hyperward test package\nLicense: MIT\nBuildArch: x86_64\n%description\ntest package\n")
    if name == source:
        return head + "%files\n"
    return head + f"%package -n {name}\nSummary: {name}\n%description -n {name}\nbinary package\n%files -n {name}\n"


@pytest.fixture(scope="module")
def rpm_root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    require(shutil.which("rpmbuild") is not None and shutil.which("rpm") is not None, "rpm and rpmbuild (Debian package rpm)")
    work = tmp_path_factory.mktemp("rpm")
    root = work / "root"
    dbpath = root / "var/lib/rpm"
    dbpath.mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/os-release").write_text('NAME="AlmaLinux"\nVERSION="9.4 (Seafoam Ocelot)"\nID="almalinux"\nVERSION_ID="9.4"\n')
    rpms = []
    for name, epoch, version, release, source in PACKAGES:
        spec = work / f"{name}.spec"
        spec.write_text(_spec(name, epoch, version, release, source))
        subprocess.run(["rpmbuild", "-bb", "--define", f"_topdir {work}/top", str(spec)], check=True, capture_output=True, timeout=120)
    rpms = sorted(str(p) for p in (work / "top/RPMS/x86_64").glob("*.rpm"))
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--initdb"], check=True, capture_output=True, timeout=60)
    subprocess.run(["rpm", "--dbpath", str(dbpath), "-i", "--justdb", "--nodeps", "--ignorearch", *rpms], check=True, capture_output=True, timeout=120)
    return root


def test_installed_rpms_match_rpm_qa(rpm_root):
    facts = collect_host(str(rpm_root))
    ours = {(p.name, p.arch, p.version) for p in facts.patching.packages}
    done = subprocess.run(["rpm", "--dbpath", str(rpm_root / "var/lib/rpm"), "-qa", "--qf", "%{NAME} %{ARCH} %{EPOCH}:%{VERSION}-%{RELEASE}\n"],
                          capture_output=True, text=True, check=True, timeout=60)
    theirs = {(n, a, evr.removeprefix("(none):")) for n, a, evr in (line.split() for line in done.stdout.splitlines())}
    assert ours == theirs and len(ours) == len(PACKAGES)
    assert {p.name: p.source for p in facts.patching.packages}["qemu-kvm-core"] == "qemu-kvm"
    assert facts.patching.installed_packages["qemu-kvm-core"] == "17:8.2.0-11.el9_4.4"


def test_almalinux_advisory_matches_with_rpm_order(rpm_root, tmp_path):
    advisory = tmp_path / "ALSA-2024-4276.json"
    advisory.write_text(json.dumps({
        "id": "ALSA-2024:4276", "upstream": ["CVE-2024-4467"], "modified": "2024-07-03T00:00:00Z",
        "summary": "Important: qemu-kvm security update",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "AlmaLinux:9", "name": "qemu-kvm"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "17:8.2.0-11.el9_4.5"}]}]},
                     {"package": {"ecosystem": "AlmaLinux:9", "name": "swtpm"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.8.0-1.el9"}]}]}],
    }))
    db = tmp_path / "db.sqlite"
    conn = vulndb.open_for_writing(str(db))
    vulndb.import_path(conn, str(advisory))
    conn.close()
    facts = collect_host(str(rpm_root), vulndb=str(db))
    [match] = facts.patching.vulnerabilities.matches
    assert (match.cve, match.source, match.package, match.installed, match.fixed) == (
        "CVE-2024-4467", "qemu-kvm", "qemu-kvm-core", "17:8.2.0-11.el9_4.4", "17:8.2.0-11.el9_4.5")
    assert facts.patching.vulnerabilities.release == "almalinux:9"


def test_damaged_rpm_header_is_skipped_not_fatal(rpm_root, tmp_path):
    import sqlite3

    copy = tmp_path / "root"
    shutil.copytree(rpm_root, copy)
    conn = sqlite3.connect(copy / "var/lib/rpm/rpmdb.sqlite")
    conn.execute("UPDATE Packages SET blob = x'0000ffff00000001' WHERE hnum = 1")
    conn.commit()
    conn.close()
    packages = collect_host(str(copy)).patching.packages
    assert len(packages) == len(PACKAGES) - 1
    (copy / "var/lib/rpm/rpmdb.sqlite").write_text("not sqlite")
    for extra in (copy / "var/lib/rpm").glob("rpmdb.sqlite-*"):
        extra.unlink()
    broken = collect_host(str(copy)).patching.packages
    assert broken.kind == "invalid" and "not an rpm database" in broken.reason
    [f] = scan(copy, only=["HV-VULN-001"]).findings
    assert f.status is Status.ERROR and "/var/lib/rpm/rpmdb.sqlite" in f.result.message and "not an rpm database" in f.result.message
