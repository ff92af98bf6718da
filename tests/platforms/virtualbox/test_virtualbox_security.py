"""HV-PATCH-032: the installed VirtualBox against the table of releases Oracle's Critical Patch
Updates name as affected (src/hyperward/data/virtualbox_security.json).

VirtualBox cannot run here: the version is the one a real installation records (Oracle's
installers write INSTALL_VER to /etc/vbox/vbox.cfg; Debian/Ubuntu packages are in dpkg's status
file), in hosts built from tests/fixtures/virtualbox.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
from conftest import failing, scan, statuses, suite_table_compiled
from vbox_roots import make_hardened_root, make_root

from hyperward.model import Status
from hyperward.platforms.virtualbox.security import numbers, parse_table, standing, table

DATA = pathlib.Path(__file__).resolve().parents[3] / "src/hyperward/data/virtualbox_security.json"
VBOX_ENV = "HYPERWARD_VIRTUALBOX_SECURITY"
JAN_2026 = "Oracle Critical Patch Update, January 2026"
JAN_2025 = "Oracle Critical Patch Update, January 2025"


def judge(tmp_path: pathlib.Path, version: str) -> tuple[Status, str]:
    report = scan(make_root(tmp_path, vbox_version=version), only=["HV-PATCH-032"])
    [finding] = [f for f in report.findings if f.check_id == "HV-PATCH-032"]
    return finding.status, finding.result.message


def test_the_weak_host_of_virtualbox_7_1_4_fails_naming_the_newest_advisory_and_its_cves(tmp_path):
    report = scan(make_root(tmp_path), only=["HV-PATCH-032"])
    assert failing(report, "HV-PATCH-032") == {"VirtualBox 7.1.4"}
    [found] = report.findings
    assert found.result.message.startswith(f"{JAN_2026} (affects 7.1 up to 7.1.14): CVE-2026-21955, CVE-2026-21956")
    assert "2 older CPU(s) also name it" in found.result.message
    assert "/etc/vbox/vbox.cfg INSTALL_VER=7.1.4" in found.result.message
    details = found.result.details
    assert details["advisories"] == [JAN_2026, "Oracle Critical Patch Update, April 2025", JAN_2025]
    assert {"CVE-2025-21533", "CVE-2025-30712", "CVE-2026-21990"} <= set(details["cves"])
    assert details["table_compiled"] == suite_table_compiled(VBOX_ENV)  # the packaged table's rows, re-dated (conftest dated_tables)


def test_the_hardened_host_of_virtualbox_7_1_16_passes_and_says_how_far_the_table_reaches(tmp_path):
    report = scan(make_hardened_root(tmp_path), only=["HV-PATCH-032"])
    assert statuses(report, "HV-PATCH-032") == {"VirtualBox 7.1.16": Status.PASS}
    assert f"compiled {suite_table_compiled(VBOX_ENV)}, through the Oracle Critical Patch Update, January 2026; later CPUs are not in it" \
        in report.findings[0].result.message


@pytest.mark.parametrize("version, status, words", [
    ("7.1.14", Status.FAIL, f"{JAN_2026} (affects 7.1 up to 7.1.14)"),     # the last affected release is affected
    ("7.1.15", Status.PASS, "newer than every 7.1 release"),
    ("7.1.6", Status.FAIL, f"{JAN_2026} (affects 7.1 up to 7.1.14)"),
    ("7.2.4", Status.FAIL, f"{JAN_2026} (affects 7.2 up to 7.2.4)"),
    ("7.2.6", Status.PASS, "newer than every 7.2 release"),
    ("7.0.20", Status.FAIL, f"{JAN_2025} (fixed in 7.0.24): CVE-2025-21533"),
    ("7.0.24", Status.PASS, "newer than every 7.0 release"),                # "Prior to 7.0.24": 7.0.24 is fixed
    ("6.1.50", Status.FAIL, "branch 6.1 is unsupported: end of life since 2024-01-16 (last release 6.1.50)"),
    ("5.2.44", Status.FAIL, "branch 5.2 is unsupported: end of life since 2020-07-14"),
    ("7.3.0", Status.NOT_APPLICABLE, "branch 7.3 is not in hyperward's VirtualBox table"),
    ("3.2.28", Status.NOT_APPLICABLE, "branch 3.2 is not in hyperward's VirtualBox table"),
])
def test_each_branch_is_judged_against_its_own_advisories(tmp_path, version, status, words):
    got, message = judge(tmp_path, version)
    assert got is status and words in message, message


def test_a_distribution_package_version_is_what_is_judged(tmp_path):
    """Oracle's .deb names the branch in the package (virtualbox-7.0) and carries a build suffix."""
    root = make_root(tmp_path)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: virtualbox-7.0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.0.14-161095~Ubuntu~jammy\n\n")
    report = scan(root, only=["HV-PATCH-032"])
    [found] = report.findings
    assert found.status is Status.FAIL and found.result.resource == "VirtualBox 7.0.14"
    assert "package virtualbox-7.0 7.0.14-161095~Ubuntu~jammy" in found.result.message
    assert JAN_2025 in found.result.message


def test_an_unknown_version_is_not_judged(tmp_path):
    root = make_root(tmp_path)
    (root / "etc/vbox/vbox.cfg").write_text("INSTALL_DIR='/usr/lib/virtualbox'\n")
    report = scan(root, only=["HV-PATCH-032"])
    assert [(f.status, f.result.message) for f in report.findings] == [
        (Status.NOT_APPLICABLE, "VirtualBox's own version is unknown (no virtualbox package, no INSTALL_VER in /etc/vbox/vbox.cfg)")]


def test_a_hostile_version_string_is_only_taken_as_numbers(tmp_path):
    """vbox.cfg is root's, but a copied root may hold anything: the resource is the version's numbers only."""
    report = scan(make_root(tmp_path, vbox_version="7.1.4\u202e; rm -rf /"), only=["HV-PATCH-032"])
    assert failing(report, "HV-PATCH-032") == {"VirtualBox 7.1.4"}


def test_the_table_is_sourced_dated_and_well_formed():
    raw = json.loads(DATA.read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw["compiled"]) and "Compiled 2026-12-02" in raw["covers"]
    assert set(raw["branches"]) == {"7.0", "7.1", "7.2"} and "6.1" in raw["end_of_life"]["branches"]
    for branch, rows in raw["branches"].items():
        for row in rows:
            assert row["url"].startswith("https://www.oracle.com/security-alerts/cpu"), row
            assert row["source"].startswith("https://"), row
            assert ("fixed_in" in row) != ("affected_through" in row), row
            bound = row.get("fixed_in") or row["affected_through"]
            assert ".".join(bound.split(".")[:2]) == branch, row
            assert row["cves"] and all(re.fullmatch(r"CVE-\d{4}-\d{4,}", c) for c in row["cves"]), row
    assert raw["end_of_life"]["source"].startswith("https://")
    assert not set(raw["branches"]) & set(raw["end_of_life"]["branches"]), "a branch is either covered or end of life"


def test_standing_orders_advisories_newest_first():
    found = standing("7.1.0", table())
    assert found.status == "affected" and [a.published for a in found.advisories] == ["2026-01-20", "2025-04-15", "2025-01-21"]
    assert standing("7.1.16").status == "current" and numbers("7.1.16-dfsg-1") == (7, 1, 16)


def test_a_table_row_without_exactly_one_bound_is_refused():
    raw = json.loads(DATA.read_text())
    raw["branches"]["7.2"][0].pop("affected_through")
    with pytest.raises(ValueError, match="7.2: Oracle Critical Patch Update, January 2026"):
        parse_table(raw)
