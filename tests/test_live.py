"""The live scan of the machine the tests run on (a Debian 12 VM here and in CI)."""

from __future__ import annotations

import json
import os
import pathlib

from hyperward.model import Status

from conftest import hyperward, require, scan

VULN_DIR = pathlib.Path("/sys/devices/system/cpu/vulnerabilities")


def _live():
    require(os.geteuid() == 0, "the live scan test runs as root, as hyperward does on a hypervisor")
    return scan("/")


def test_live_scan_has_no_errors():
    report = _live()
    errors = [(f.check_id, f.result.resource, f.result.message) for f in report.findings if f.status is Status.ERROR]
    assert errors == []


def test_live_side_001_matches_the_kernels_own_words():
    """The oracle is the hand-listed table of the kernel's own strings in tests/test_kernel_strings.py
    (each with the verdict bugs.c and hw-vuln/ give it), not the rule HV-SIDE-001 implements: every
    file this kernel prints must be in that table, and the live verdicts must be the table's."""
    from test_kernel_strings import MITIGATED, UNKNOWN, VULNERABLE

    require(VULN_DIR.is_dir(), "this kernel exposes no CPU vulnerabilities directory")
    report = _live()
    words = {path.name: path.read_text().strip() for path in VULN_DIR.iterdir()}
    unlisted = {name: text for name, text in words.items() if text not in MITIGATED and text not in VULNERABLE and text not in UNKNOWN}
    assert not unlisted, f"add these strings, with the verdict the kernel's hw-vuln docs give, to tests/test_kernel_strings.py: {unlisted}"
    expected: set[tuple[str, Status]] = set()
    for name, text in words.items():
        if text in MITIGATED:
            expected.add((name, Status.PASS))
        elif text in UNKNOWN:
            expected.add((name, Status.FAIL))
        else:
            expected |= {(name if clause is None else f"{name} ({clause})", Status.FAIL) for clause in VULNERABLE[text]}
    got = {(f.result.resource, f.status) for f in report.findings if f.check_id == "HV-SIDE-001"}
    assert got == expected


def test_live_vuln_002_reports_this_hosts_cmdline():
    report = _live()
    tokens = pathlib.Path("/proc/cmdline").read_text().split(" -- ")[0].split()
    weakening = {
        t for t in tokens
        if (t.startswith("mitigations=") and ("off" in t or "no_" in t))
        or t in ("nopti", "nospectre_v2", "nospectre_v1", "pti=off", "intel_iommu=off", "amd_iommu=off", "iommu=off")
        or (t.endswith("=off") and t.split("=")[0] in ("spectre_v2", "l1tf", "mds", "retbleed", "kvm.nx_huge_pages"))
    }
    got = {f.result.resource for f in report.findings if f.check_id == "HV-VULN-002" and f.status is Status.FAIL and f.result.resource.startswith("/proc/cmdline")}
    assert got == {f"/proc/cmdline: {t}" for t in weakening}


def test_live_cli_scan_and_snapshot_round_trip(tmp_path):
    require(os.geteuid() == 0, "runs as root")
    snapshot = tmp_path / "host.json"
    assert hyperward("collect", "-o", str(snapshot)).returncode == 0
    direct = json.loads(hyperward("scan", "--format", "json").stdout)
    offline = json.loads(hyperward("scan", "--snapshot", str(snapshot), "--format", "json").stdout)

    def verdicts(report):
        return sorted((r["id"], r["resource"], r["status"], r["severity"]) for r in report["results"])

    assert verdicts(direct) == verdicts(offline)
    assert json.loads(snapshot.read_text())["version"] == 6


def test_live_scan_as_a_normal_user_runs_what_it_can(unprivileged_can_run):
    require(os.geteuid() == 0, "needs root to compare with an unprivileged run")
    as_root = json.loads(hyperward("scan", "--format", "json").stdout)
    done = hyperward("scan", "--format", "json", user="nobody")
    assert done.returncode == 0 and "Traceback" not in done.stderr
    as_user = json.loads(done.stdout)
    assert as_user["collected_as_root"] is False
    root_verdicts = {(r["id"], r["resource"]): r["status"] for r in as_root["results"]}
    for r in as_user["results"]:
        if r.get("needs_privilege"):
            assert r["status"] == "error" and r["id"] in as_user["summary"]["lacking_privilege"]
        else:
            assert root_verdicts.get((r["id"], r["resource"])) == r["status"], r
