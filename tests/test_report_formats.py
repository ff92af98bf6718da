"""The machine formats (SARIF, JUnit, OCSF, Prometheus) from the golden roots: exact golden outputs,
validation against the real schemas (OASIS SARIF 2.1.0, pytest/Jenkins junit-10.xsd, py-ocsf-models),
a suppression, findings with and without a file location, fingerprints that survive a re-run, and the
Prometheus file read by Debian's real node exporter and scraped by a real Prometheus.

HYPERWARD_REGEN_GOLDEN=1 rewrites tests/fixtures/report-golden/ (review the diff before committing)."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from conftest import REPO, copy_root, hyperward, require

from hyperward.collect import collect_host
from hyperward.engine import ScanReport, registry, run_checks
from hyperward.model import Status, Suppression
from hyperward.report import RenderOptions, get_reporter
from hyperward.report.common import fingerprint, location

GOLDEN = REPO / "tests/fixtures/report-golden"
SCHEMAS = REPO / "tests/fixtures/schemas"
#: the libvirt golden roots and the Proxmox fixture roots
ROOTS = ("weak", "hardened", "pve-weak", "pve-hardened")
FORMATS = {"sarif": "sarif", "junit": "xml", "ocsf": "ocsf.json", "prometheus": "prom"}
COLLECTED = "2026-01-02T03:04:05+00:00"
PVE_NOW = int(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp())
SUPPRESSED = ("HV-AUTH-001", "libvirtd.conf:auth_tcp", "ticket OPS-1234: TCP listener firewalled to the jump host")


def _scan(tmp: pathlib.Path, name: str, advisory_db: pathlib.Path, suppress: bool = True) -> tuple[ScanReport, pathlib.Path]:
    if name.startswith("pve-"):
        root = tmp / name
        shutil.copytree(REPO / "tests/fixtures/proxmox" / name.removeprefix("pve-"), root, symlinks=True)
    else:
        root = copy_root(name, tmp, kvm_mode=0o660 if name == "hardened" else 0o666)
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(tmp / "no-baseline.json"),
                         history_path=str(tmp / "no-history.sqlite"))
    meta = dataclasses.replace(facts.meta, collected_at=COLLECTED, root="/ROOT")
    platforms = type(facts.platforms)(facts.platforms)
    if "proxmox" in platforms:  # backup recency is judged against the collection time
        platforms["proxmox"] = dataclasses.replace(platforms["proxmox"], collected_at=PVE_NOW)
    facts = dataclasses.replace(facts, meta=meta, platforms=platforms)
    suppressions = [Suppression(SUPPRESSED[0], SUPPRESSED[1], SUPPRESSED[2], None, "test")] if suppress else []
    report = run_checks(facts, registry(), "multi-tenant", suppressions)
    report.duration_s, report.collect_s, report.total_s = 0.25, 0.5, 0.75
    return report, root


#: the advisory database's import time, which the vulnerability check's message names
_IMPORTED = re.compile(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")


def _render(report: ScanReport, root: pathlib.Path, fmt: str) -> str:
    text = get_reporter(fmt).render(report, RenderOptions()).replace(str(root), "/ROOT").replace(str(root.parent), "/TMP")
    return _IMPORTED.sub(lambda m: m.group(0) if m.group(0) == COLLECTED else "IMPORTED", text)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory, advisory_db: pathlib.Path) -> dict[str, tuple[ScanReport, pathlib.Path]]:
    return {name: _scan(tmp_path_factory.mktemp(name), name, advisory_db) for name in ROOTS}


@pytest.mark.parametrize("name", ROOTS)
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden_outputs(reports, name, fmt):
    report, root = reports[name]
    text = _render(report, root, fmt)
    golden = GOLDEN / f"{name}.{FORMATS[fmt]}"
    if os.environ.get("HYPERWARD_REGEN_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text(), f"{golden} differs (HYPERWARD_REGEN_GOLDEN=1 rewrites it; review the diff)"


def _sarif_validator():  # type: ignore[no-untyped-def]
    import jsonschema

    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", ROOTS)
def test_sarif_golden_is_valid_against_the_oasis_schema(name):
    errors = list(_sarif_validator().iter_errors(json.loads((GOLDEN / f"{name}.sarif").read_text())))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]


def test_the_schema_rejects_what_sarif_forbids():
    """The validator is not a rubber stamp: a result kind SARIF does not define, a rule without an id and
    a region starting at line 0 are each refused."""
    validator = _sarif_validator()
    good = json.loads((GOLDEN / "weak.sarif").read_text())
    for mutate in (lambda d: d["runs"][0]["results"][0].__setitem__("kind", "failed"),
                   lambda d: d["runs"][0]["tool"]["driver"]["rules"][0].pop("id"),
                   lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].__setitem__("startLine", 0)):
        bad = json.loads(json.dumps(good))
        mutate(bad)
        assert list(validator.iter_errors(bad))


def test_sarif_rules_results_and_locations(reports):
    report, root = reports["weak"]
    doc = json.loads(_render(report, root, "sarif"))
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {f.check_id for f in report.findings}
    fw = rules["HV-FW-001"]
    assert fw["shortDescription"]["text"] == "Host firewall not default-deny for inbound traffic"
    assert fw["properties"]["security-severity"] == "8.0"
    assert "nist-800-125a/HY-SR-19" in fw["properties"]["tags"]
    assert "Fix:" in fw["help"]["text"] and "**Fix:**" in fw["help"]["markdown"]
    assert run["automationDetails"]["id"] == "hyperward/kvm-weak/2026-01-02T03:04:05+00:00"
    assert run["originalUriBaseIds"]["HOSTROOT"]["uri"] == "file:///ROOT/"
    by_key = {(r["ruleId"], r["properties"]["resource"]): r for r in run["results"]}
    failing = {(f.check_id, f.result.resource) for f in report.findings if f.status in (Status.FAIL, Status.SUPPRESSED)}
    assert set(by_key) == failing
    # a finding decided by a key in a file: the file relative to HOSTROOT and the key's line
    iso = by_key[("HV-ISO-001", "qemu.conf:security_driver")]["locations"][0]["physicalLocation"]
    assert iso == {"artifactLocation": {"uri": "etc/libvirt/qemu.conf", "uriBaseId": "HOSTROOT"}, "region": {"startLine": 973}}
    assert (root / "etc/libvirt/qemu.conf").read_text().splitlines()[972] == 'security_driver = "none"'
    sshd = by_key[("HV-AUTH-013", "sshd:PermitRootLogin")]["locations"][0]["physicalLocation"]
    assert sshd["artifactLocation"]["uri"] == "etc/ssh/sshd_config.d/10-legacy.conf" and sshd["region"] == {"startLine": 2}
    # a finding without a file: a logical location only, named after the resource
    no_file = [r for r in run["results"] if "physicalLocation" not in r["locations"][0]]
    assert no_file and all(r["locations"][0]["logicalLocations"][0]["name"] == r["properties"]["resource"] for r in no_file)
    backups = by_key[("HV-BAK-001", "host configuration")]["locations"]
    assert backups == [{"logicalLocations": [{"name": "host configuration", "fullyQualifiedName": "host:host configuration", "kind": "resource"}]}]
    # the suppression, with its justification
    suppressed = by_key[SUPPRESSED[:2]]
    assert suppressed["suppressions"] == [{"kind": "external", "status": "accepted", "justification": SUPPRESSED[2]}]
    assert sum(1 for r in run["results"] if "suppressions" in r) == 1


def test_sarif_proxmox_locations(reports):
    report, root = reports["pve-weak"]
    run = json.loads(_render(report, root, "sarif"))["runs"][0]
    by_key = {(r["ruleId"], r["properties"]["resource"]): r for r in run["results"]}
    args = by_key[("HV-ISO-027", "VM 100 (web)")]["locations"][0]["physicalLocation"]
    assert args == {"artifactLocation": {"uri": "etc/pve/nodes/pve1/qemu-server/100.conf", "uriBaseId": "HOSTROOT"}, "region": {"startLine": 4}}
    fw = by_key[("HV-FW-004", "/etc/pve/firewall/cluster.fw")]["locations"][0]["physicalLocation"]
    assert fw["region"] == {"startLine": 3}
    # checks that could not run are notifications, not results
    errors = [f for f in report.findings if f.status is Status.ERROR]
    assert len(run["invocations"][0]["toolExecutionNotifications"]) == len(errors)


def test_fingerprints_are_stable_across_runs_and_ignore_the_message(tmp_path, advisory_db):
    first, root = _scan(tmp_path, "weak", advisory_db)
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(tmp_path / "no-baseline.json"),
                         history_path=str(tmp_path / "no-history.sqlite"))
    second = run_checks(facts, registry(), "multi-tenant")
    assert facts.meta.collected_at != first.facts.meta.collected_at
    prints = [{(f.check_id, f.result.resource): fingerprint(f, "kvm-weak") for f in r.findings} for r in (first, second)]
    assert prints[0] == prints[1]
    assert len(set(prints[0].values())) == len(prints[0])
    f = first.findings[0]
    changed = dataclasses.replace(f, result=dataclasses.replace(f.result, message="another wording, same finding"))
    assert fingerprint(changed, "kvm-weak") == fingerprint(f, "kvm-weak")
    assert fingerprint(f, "kvm-other") != fingerprint(f, "kvm-weak")
    sarif = [json.loads(get_reporter("sarif").render(r, RenderOptions())) for r in (first, second)]
    got = [{(x["ruleId"], x["properties"]["resource"]): x["partialFingerprints"] for x in s["runs"][0]["results"]} for s in sarif]
    assert {k: v for k, v in got[0].items() if k != SUPPRESSED[:2]} == {k: v for k, v in got[1].items() if k != SUPPRESSED[:2]}


def test_location_of_kernel_interfaces_is_logical(reports):
    report, _ = reports["weak"]
    cmdline = next(f for f in report.findings if f.result.details.get("file") == "/proc/cmdline:pcie_acs_override")
    where = location(cmdline)
    assert where.file is None and where.key == "pcie_acs_override" and where.logical.endswith("@/proc/cmdline")


@pytest.mark.parametrize("name", ROOTS)
def test_junit_golden_is_valid_against_junit_10_xsd(name):
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / "junit-10.xsd")))
    doc = etree.parse(str(GOLDEN / f"{name}.xml"))
    assert schema.validate(doc), schema.error_log
    bad = etree.fromstring(b'<testsuites><testsuite name="x" tests="1"><testcase name="y"><failed/></testcase></testsuite></testsuites>')
    assert not schema.validate(bad)


def test_junit_cases(reports):
    from lxml import etree

    report, root = reports["weak"]
    doc = etree.fromstring(_render(report, root, "junit").encode())
    cases = {(c.get("classname"), c.get("name")): c for c in doc.iter("testcase")}
    assert len(cases) == len(report.findings)
    failure = cases[("HV-ISO-001", "qemu.conf:security_driver")].find("failure")
    assert failure.get("type") == "critical"
    assert "severity: critical" in failure.text and "where: /etc/libvirt/qemu.conf:973 (security_driver)" in failure.text
    assert "fix: " in failure.text
    for f in report.findings:
        case = cases[(f.check_id, f.result.resource)]
        children = [child.tag for child in case]
        expected = {Status.FAIL: ["failure"], Status.ERROR: ["error"], Status.NOT_APPLICABLE: ["skipped"],
                    Status.SUPPRESSED: ["skipped"], Status.PASS: []}[f.status]
        assert children == expected, (f.check_id, f.result.resource)
    assert SUPPRESSED[2] in cases[SUPPRESSED[:2]].find("skipped").get("message")
    assert int(doc.get("failures")) == sum(f.status is Status.FAIL for f in report.findings)


def test_junit_carries_hostile_strings_as_valid_xml(reports):
    """A guest name with control characters and markup stays one valid, inert XML text."""
    from lxml import etree

    report, root = reports["weak"]
    f = next(f for f in report.findings if f.status is Status.FAIL)
    hostile = dataclasses.replace(f, result=dataclasses.replace(f.result, resource="vm\x1b[31m<x>&\x00", message="a\x07b]]>"))
    text = get_reporter("junit").render(dataclasses.replace(report, findings=[hostile]), RenderOptions())
    doc = etree.fromstring(text.encode())
    case = next(doc.iter("testcase"))
    assert case.get("name") == "vm\\x1b[31m<x>&\\x00"
    assert "a\\x07b]]>" in case.find("failure").text


@pytest.mark.parametrize("name", ROOTS)
def test_ocsf_golden_validates_with_py_ocsf_models(name):
    from py_ocsf_models.events.findings.compliance_finding import ComplianceFinding

    findings = json.loads((GOLDEN / f"{name}.ocsf.json").read_text())
    assert findings
    for raw in findings:
        model = ComplianceFinding.model_validate(raw)
        assert model.class_uid == 2003 and model.type_uid == 200301
    with pytest.raises(Exception):
        ComplianceFinding.model_validate({**findings[0], "severity_id": "very bad"})


@pytest.mark.parametrize("name", ROOTS)
def test_ocsf_fast_render_is_the_dict_encoding(reports, name):
    from hyperward.report import ocsf
    from hyperward.report.common import encode_json

    report, _ = reports[name]
    assert ocsf.render(report, RenderOptions()) == encode_json(ocsf.findings(report)) + "\n"


def test_ocsf_compliance_standards_come_from_the_framework_mappings(reports):
    report, root = reports["weak"]
    findings = json.loads(_render(report, root, "ocsf"))
    fw = next(x for x in findings if x["metadata"]["event_code"] == "HV-FW-001")
    assert fw["compliance"]["standards"] == ["cis-debian", "nist-800-125a"]
    assert fw["compliance"]["requirements"] == ["4.3.8", "HY-SR-19"]
    assert fw["compliance"]["status"] == "Fail" and fw["status_code"] == "FAIL"
    suppressed = next(x for x in findings if x["metadata"]["event_code"] == SUPPRESSED[0] and x["resources"][0]["name"] == SUPPRESSED[1])
    assert suppressed["status"] == "Suppressed" and suppressed["comment"] == f"suppressed: {SUPPRESSED[2]}"
    iso = next(x for x in findings if x["metadata"]["event_code"] == "HV-ISO-001")
    assert iso["resources"][0]["data"]["details"]["file"] == "/etc/libvirt/qemu.conf" and iso["resources"][0]["data"]["details"]["line"] == 973
    assert len(findings) == len(report.findings)
    passing = next(x for x in findings if x["status_code"] == "PASS")
    assert "remediation" not in passing and fw["remediation"]["desc"]
    assert next(x for x in findings if x["metadata"]["event_code"] == "HV-NEST-001")["compliance"]["standards"] == ["hyperward"]


def test_prometheus_textfile_counts(reports):
    report, root = reports["weak"]
    text = _render(report, root, "prometheus")
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert samples['hyperward_check_failing{check="HV-ISO-001"}'] == "1"
    fails = sum(f.status is Status.FAIL for f in report.findings)
    assert sum(int(v) for k, v in samples.items() if k.startswith("hyperward_findings_failing")) == fails
    assert samples['hyperward_results{status="suppressed"}'] == "1"
    assert samples["hyperward_scan_timestamp_seconds"] == str(int(datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC).timestamp()))
    assert samples["hyperward_scan_duration_seconds"] == "0.750000"


def test_prometheus_labels_cannot_add_lines(reports):
    report, root = reports["weak"]
    meta = dataclasses.replace(report.facts.meta, hostname='evil"}\nhyperward_check_failing{check="X"} 0\x1b[2J\\')
    hostile = dataclasses.replace(report, facts=dataclasses.replace(report.facts, meta=meta))
    text = get_reporter("prometheus").render(hostile, RenderOptions())
    info = next(line for line in text.splitlines() if line.startswith("hyperward_info"))
    assert info == ('hyperward_info{version="0.1.0",host="evil\\"}\\nhyperward_check_failing{check=\\"X\\"} 0[2J\\\\",'
                    'profile="multi-tenant"} 1')
    assert 'check="X"' not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_one_scan_writes_every_format_and_real_node_exporter_and_prometheus_read_it(tmp_path, weak):
    exporter, prometheus = shutil.which("prometheus-node-exporter"), shutil.which("prometheus")
    require(bool(exporter and prometheus), "Debian's prometheus-node-exporter and prometheus (scripts/install.sh --test)")
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    out = {fmt: tmp_path / f"report.{suffix}" for fmt, suffix in FORMATS.items()}
    out["prometheus"] = textfiles / "hyperward.prom"
    out["json"] = tmp_path / "report.json"
    args = [a for path in out.values() for a in ("-o", str(path))]
    done = hyperward("scan", "--root", str(weak), *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(out["json"].read_text())["host"] == "kvm-weak"
    assert json.loads(out["sarif"].read_text())["version"] == "2.1.0"
    assert out["junit"].read_text().startswith("<?xml")
    assert json.loads(out["ocsf"].read_text())[0]["class_uid"] == 2003
    for path in out.values():
        assert path.stat().st_mode & 0o777 == 0o600, path
    exporter_port, prom_port = _free_port(), _free_port()
    (tmp_path / "prom.yml").write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        f"  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{exporter_port}']\n")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([exporter, "--collector.disable-defaults", "--collector.textfile",
                                       f"--collector.textfile.directory={textfiles}", f"--web.listen-address=127.0.0.1:{exporter_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(tmp_path / "exporter.log", "wb")))
        procs.append(subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prom.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb")))
        metrics = _wait(lambda: _get(f"http://127.0.0.1:{exporter_port}/metrics"), 30, "the node exporter")
        assert "node_textfile_scrape_error 0" in metrics, metrics[-2000:]
        assert 'hyperward_check_failing{check="HV-ISO-001"} 1' in metrics
        assert 'hyperward_findings_failing{check="HV-AUTH-001",platform="host",severity="critical"} 1' in metrics
        query = urllib.parse.quote('hyperward_check_failing{check="HV-ISO-001"}')

        def scraped() -> list[dict[str, object]] | None:
            body = _get(f"http://127.0.0.1:{prom_port}/api/v1/query?query={query}")
            result = json.loads(body)["data"]["result"] if body else []
            return result or None

        result = _wait(scraped, 60, "Prometheus to scrape the node exporter")
        assert result[0]["value"][1] == "1"
        assert result[0]["metric"]["job"] == "node"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_every_format_from_one_report_is_each_format_rendered_alone(reports):
    """`-o a.sarif -o a.xml -o a.ocsf.json ...` renders all from one report and its shared view
    (report/common.py); each must be what a report of its own gives."""
    from hyperward.report import FORMATS as ALL

    report, _root = reports["weak"]
    together = {name: get_reporter(name).render(report, RenderOptions()) for name in ALL}
    assert report.render_cache is not None
    for name in ALL:
        alone = dataclasses.replace(report)  # a new report: no view yet
        assert alone.render_cache is None
        assert get_reporter(name).render(alone, RenderOptions()) == together[name], name


def test_the_shared_view_follows_findings_that_changed(reports):
    """A report whose findings were replaced, added or removed after a render is never rendered
    from the old view: the location, fingerprint and counts are the new findings'."""
    from hyperward.report import sarif

    base, _root = reports["weak"]
    report = dataclasses.replace(base, findings=list(base.findings))
    first = sarif.document(report)
    i, old = next((i, f) for i, f in enumerate(report.findings) if f.status is Status.FAIL)
    moved = dataclasses.replace(old, result=dataclasses.replace(
        old.result, resource="moved-resource", details={**old.result.details, "file": "/etc/moved.conf", "line": 7}))
    report.findings[i] = moved
    second = sarif.document(report)["runs"][0]
    result = next(r for r in second["results"] if r["properties"]["resource"] == "moved-resource")
    assert result["partialFingerprints"]["hyperward/v1"] == fingerprint(moved, report.facts.meta.hostname)
    assert result["partialFingerprints"]["hyperward/v1"] != fingerprint(old, report.facts.meta.hostname)
    assert result["locations"][0]["physicalLocation"] == {"artifactLocation": {"uri": "etc/moved.conf", "uriBaseId": "HOSTROOT"},
                                                          "region": {"startLine": 7}}
    assert location(moved).file == "/etc/moved.conf"
    before = first["runs"][0]["properties"]["summary"]
    report.findings.append(moved)
    assert sarif.document(report)["runs"][0]["properties"]["summary"]["fail"] == before["fail"] + 1
    report.findings.pop()
    del report.findings[i]
    assert sarif.document(report)["runs"][0]["properties"]["summary"]["fail"] == before["fail"] - 1
