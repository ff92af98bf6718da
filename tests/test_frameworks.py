"""The framework mapping data holds together: every ID a check names is a requirement of its
framework, every check ID is a catalog row, and each mapped framework states the basis, so a
report never carries an ID the data cannot explain."""

from __future__ import annotations

import json
from importlib import resources

from hyperward.catalog import catalog
from hyperward.frameworks import checks_in, for_check, frameworks, tags


def _raw() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(
        resources.files("hyperward").joinpath("data/frameworks.json").read_text(encoding="utf-8"))
    return data


def test_every_mapped_id_is_a_declared_requirement_of_a_catalog_row() -> None:
    known = frameworks()
    rows = catalog()
    for cid, row in _raw()["checks"].items():
        assert cid in rows, cid
        assert isinstance(row, dict)
        for key, ids in row.items():
            if key in known and key != "stig":
                assert ids, (cid, key)
                missing = set(ids) - set(known[key].requirements)
                assert not missing, (cid, key, missing)
                basis = row.get("basis" if key == "nist-800-125a" else f"basis_{key}")
                assert isinstance(basis, str) and basis.strip(), (cid, key)


def test_cis_debian_maps_the_host_rows_whose_recommendation_matches() -> None:
    cis = frameworks()["cis-debian"]
    assert "ComplianceAsCode" in cis.numbering and "cis_debian12.yml" in cis.numbering
    assert cis.requirements["5.1.20"] == "Ensure sshd PermitRootLogin is disabled (Automated)"
    assert checks_in("cis-debian") == {"HV-PATCH-001", "HV-MON-003", "HV-FW-001", "HV-AUTH-016", "HV-AUTH-013",
                                       "HV-AUTH-015", "HV-MON-001", "HV-IDS-002", "HV-IDS-001"}
    assert for_check("HV-AUTH-016")["cis-debian"] == ("5.1.6", "5.1.12", "5.1.15")
    assert for_check("HV-IDS-001") == {"cis-debian": ("6.3.1", "6.3.2")}
    assert "cis-debian/6.3.2" in tags("HV-IDS-001")
    assert not for_check("HV-VULN-002")


def test_the_nist_ids_say_they_are_the_2014_draft_numbering() -> None:
    nist = frameworks()["nist-800-125a"]
    assert "2014 initial public draft" in nist.title and "not of Rev. 1" in nist.title
    assert "NOT the numbering of SP 800-125A Rev. 1" in nist.numbering
    assert len(nist.requirements) == 22
