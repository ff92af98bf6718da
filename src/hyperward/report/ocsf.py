"""OCSF 1.5 Compliance Findings (class 2003), one per result, for SIEMs and data lakes (Amazon Security
Lake, Splunk, OpenSearch) that ingest OCSF the way Prowler writes it: a JSON array of findings.

The findings are plain dicts in the shape py-ocsf-models' ComplianceFinding validates (the tests
validate every golden finding with it): building 16,000 pydantic models per scan would cost more
than the whole report budget, and a root tool on a hypervisor should not need pydantic to run."""

from __future__ import annotations

import datetime
import json
from typing import Any

from .. import __version__
from .. import frameworks
from ..engine import ScanReport
from ..model import Finding, Severity, Status
from . import RenderOptions
from .common import CheckHelp, check_help, fingerprint, location

OCSF_VERSION = "1.5.0"
CLASS_UID = 2003  # Compliance Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE

_SEVERITY_ID = {Severity.INFO: 1, Severity.LOW: 2, Severity.MEDIUM: 3, Severity.HIGH: 4, Severity.CRITICAL: 5}
#: compliance.status_id: Pass 1, Warning 2, Fail 3, Unknown 0 (not applicable, could not check)
_COMPLIANCE = {Status.PASS: (1, "Pass"), Status.FAIL: (3, "Fail"), Status.SUPPRESSED: (3, "Fail"),
               Status.ERROR: (0, "Unknown"), Status.NOT_APPLICABLE: (0, "Unknown")}
_EVENT_STATUS = {Status.SUPPRESSED: (3, "Suppressed")}
_NEW = (1, "New")


def _standards(cid: str) -> tuple[list[str], list[str]]:
    known = frameworks.frameworks()
    mapped = frameworks.for_check(cid)
    standards = [known[key].title for key in sorted(mapped)] or ["hyperward check catalog"]
    requirements = [rid for key in sorted(mapped) for rid in mapped[key]]
    return standards, requirements


def _finding(f: Finding, info: CheckHelp, host: str, time_ms: int, time_dt: str, product: dict[str, Any],
             standards: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    cid = f.check_id
    if cid not in standards:
        standards[cid] = _standards(cid)
    names, requirements = standards[cid]
    compliance_id, compliance_name = _COMPLIANCE[f.status]
    status_id, status_name = _EVENT_STATUS.get(f.status, _NEW)
    where = location(f)
    resource: dict[str, Any] = {
        "name": f.result.resource,
        "uid": where.logical,
        "type": "guest" if f.result.details.get("guest") else "host",
        "data": {"details": dict(f.result.details)},
        "labels": [f"platform:{f.result.platform or 'host'}"],
    }
    if where.file is not None:
        resource["data"]["file"] = where.file
        if where.line is not None:
            resource["data"]["line"] = where.line
    out: dict[str, Any] = {
        "message": f.result.message or info.title,
        "metadata": {"event_code": cid, "product": product, "version": OCSF_VERSION,
                     "profiles": ["host"], "log_name": "hyperward scan", "log_provider": "hyperward"},
        "severity_id": _SEVERITY_ID[f.severity],
        "severity": f.severity.label.capitalize() if f.severity is not Severity.INFO else "Informational",
        "status": status_name,
        "status_id": status_id,
        "status_code": f.status.value.upper(),
        "status_detail": f.result.message,
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": TYPE_UID,
        "type_name": "Compliance Finding: Create",
        "time": time_ms,
        "time_dt": time_dt,
        "finding_info": {
            "uid": f"hyperward-{cid}-{fingerprint(f, host)}",
            "title": info.title,
            "desc": info.rationale,
            "types": [f.meta.category.label],
            "created_time": time_ms,
            "created_time_dt": time_dt,
        },
        "compliance": {
            "control": cid,
            "standards": names,
            "requirements": requirements,
            "status_id": compliance_id,
            "status": compliance_name,
            "checks": [{"uid": cid, "name": info.title, "severity": f.severity.label, "status": compliance_name}],
        },
        "remediation": {"desc": f.remediation or info.fix, "references": info.urls},
        "resources": [resource],
        "unmapped": {"host": host, "frameworks": {k: list(v) for k, v in frameworks.for_check(cid).items()}},
    }
    if f.status is Status.SUPPRESSED and f.suppression_reason:
        out["comment"] = f"suppressed: {f.suppression_reason}"
    return out


def findings(report: ScanReport) -> list[dict[str, Any]]:
    meta = report.facts.meta
    helps = check_help(report)
    try:
        when = datetime.datetime.fromisoformat(meta.collected_at)
    except ValueError:
        when = datetime.datetime.now(datetime.UTC)
    time_ms = int(when.timestamp() * 1000)
    time_dt = when.isoformat()
    product = {"name": "hyperward", "uid": "hyperward", "vendor_name": "hyperward", "version": __version__}
    standards: dict[str, tuple[list[str], list[str]]] = {}
    return [_finding(f, helps[f.check_id], meta.hostname, time_ms, time_dt, product, standards) for f in report.findings]


def render(report: ScanReport, options: RenderOptions) -> str:
    return json.dumps(findings(report)) + "\n"
