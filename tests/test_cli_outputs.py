"""Several reports from one scan (-o FILE repeated, the format from each suffix), --format to standard
output, and --framework, through the real console script."""

from __future__ import annotations

import importlib.util
import json

from conftest import hyperward


def test_single_output_takes_its_format_from_the_suffix(tmp_path, weak):
    target = tmp_path / "scan.sarif"
    assert hyperward("scan", "--root", str(weak), "--only", "ISO", "-o", str(target)).returncode == 0
    assert json.loads(target.read_text())["version"] == "2.1.0"
    plain = tmp_path / "scan.report"
    assert hyperward("scan", "--root", str(weak), "--only", "ISO", "-o", str(plain)).returncode == 0
    assert "HV-ISO-001" in plain.read_text() and not plain.read_text().startswith("{")  # no known suffix: text, as before
    forced = tmp_path / "forced.txt"
    assert hyperward("scan", "--root", str(weak), "--only", "ISO", "--format", "json", "-o", str(forced)).returncode == 0
    assert json.loads(forced.read_text())["host"] == "kvm-weak"


def test_ocsf_suffix_wins_over_json(tmp_path, weak):
    ocsf, plain = tmp_path / "r.ocsf.json", tmp_path / "r.json"
    done = hyperward("scan", "--root", str(weak), "--only", "FW", "-o", str(ocsf), "-o", str(plain))
    assert done.returncode == 0, done.stderr
    assert json.loads(ocsf.read_text())[0]["class_uid"] == 2003
    assert json.loads(plain.read_text())["tool"] == "hyperward"


def test_format_to_standard_output(weak):
    for fmt, check in (("sarif", lambda t: json.loads(t)["runs"][0]["tool"]["driver"]["name"] == "hyperward"),
                       ("junit", lambda t: t.startswith('<?xml version="1.0"')),
                       ("prometheus", lambda t: "hyperward_check_failing" in t),
                       ("ocsf", lambda t: json.loads(t)[0]["class_uid"] == 2003)):
        done = hyperward("scan", "--root", str(weak), "--only", "FW", "--format", fmt)
        assert done.returncode == 0 and check(done.stdout), (fmt, done.stderr)


def test_bad_output_lists_fail_before_scanning_and_write_nothing(tmp_path, weak):
    good, odd = tmp_path / "r.json", tmp_path / "r.pdf"
    done = hyperward("scan", "--root", str(weak), "-o", str(good), "-o", str(odd))
    assert done.returncode == 2 and f"-o {odd}: no known suffix" in done.stderr
    assert not good.exists()
    done = hyperward("scan", "--root", str(weak), "--format", "json", "-o", str(good), "-o", str(tmp_path / "r.sarif"))
    assert done.returncode == 2 and "--format applies to a single -o FILE" in done.stderr and not good.exists()
    done = hyperward("scan", "--root", str(weak), "-o", str(good), "-o", str(good))
    assert done.returncode == 2 and "given twice" in done.stderr


def test_html_output_needs_the_html_reporter(tmp_path, weak):
    """reports-b writes hyperward.report.html; until it is there the CLI says so instead of a traceback."""
    target = tmp_path / "r.html"
    done = hyperward("scan", "--root", str(weak), "--only", "FW", "-o", str(target))
    if importlib.util.find_spec("hyperward.report.html") is None:
        assert done.returncode == 2 and "the html report is not available" in done.stderr and "Traceback" not in done.stderr
        assert not target.exists()
    else:
        assert done.returncode == 0 and target.read_text().lstrip().lower().startswith("<!doctype html")


def test_framework_limits_the_scan(weak):
    from hyperward.frameworks import checks_in

    done = hyperward("scan", "--root", str(weak), "--framework", "nist", "--format", "json")
    assert done.returncode == 0, done.stderr
    ids = {r["id"] for r in json.loads(done.stdout)["results"]}
    assert "HV-FW-001" in ids and "HV-PATCH-001" in ids
    assert "HV-SIDE-001" not in ids and "HV-AUTH-001" not in ids
    checks = json.loads(done.stdout)["checks"]
    assert checks["HV-FW-001"]["frameworks"] == {"nist-800-125a": ["HY-SR-19"], "cis-debian": ["4.3.8"]}
    unknown = hyperward("scan", "--root", str(weak), "--framework", "iso27001")
    assert unknown.returncode == 2 and "unknown framework 'iso27001'" in unknown.stderr
    cis = hyperward("scan", "--root", str(weak), "--framework", "cis", "--format", "json")
    assert cis.returncode == 0, cis.stderr
    report = json.loads(cis.stdout)
    assert {r["id"] for r in report["results"]} <= checks_in("cis-debian")
    assert report["checks"]["HV-AUTH-013"]["frameworks"]["cis-debian"] == ["5.1.19", "5.1.20"]


def test_stig_ids_are_read_from_primary_sources():
    from hyperward.frameworks import checks_in, frameworks, stig_ids

    assert stig_ids("VMware vSphere 8 ESXi STIG; STIG ESXI-80-000005, stig vmch-80-000203; ESXI-80-000006") == [
        "ESXI-80-000005", "VMCH-80-000203"]
    assert stig_ids("DISA STIG overview") == []
    assert set(frameworks()) == {"nist-800-125a", "stig", "cis-debian"}
    assert "HV-FW-001" in checks_in("nist-800-125a") and "HV-FW-001" in checks_in("cis-debian")


def test_each_output_refuses_a_symlink(tmp_path, weak):
    """Every -o goes through safefile: a symlinked target among several is refused, its target kept."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "r.sarif"
    link.symlink_to(victim)
    done = hyperward("scan", "--root", str(weak), "--only", "FW", "-o", str(tmp_path / "r.json"), "-o", str(link))
    assert done.returncode == 2 and "r.sarif" in done.stderr and "Traceback" not in done.stderr
    assert victim.read_text() == "precious\n" and link.is_symlink()
