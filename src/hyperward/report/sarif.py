"""SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps): one rule per check,
failing and suppressed findings as results, checks that could not run as tool notifications.

Files are relative to the HOSTROOT base (the audited root), so the same finding on two hosts has
the same location and a different runAutomationDetails category: one upload per host stays apart."""

from __future__ import annotations

import urllib.parse
from typing import Any

from .. import __version__, frameworks
from ..engine import ScanReport
from ..model import Finding, Severity, Status
from . import RenderOptions
from .common import SECURITY_SEVERITY, CheckHelp, ReportView, encode_json, view

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
          Severity.INFO: "note"}


def _markdown(text: str) -> str:
    """Catalog text is plain: only the characters Markdown would act on are escaped."""
    return "".join("\\" + c if c in "\\`*_[]<>#|" else c for c in text)


def _rule(cid: str, f: Finding, info: CheckHelp) -> dict[str, Any]:
    tags = ["security", f.meta.category.label, *frameworks.tags(cid)]
    references_text = "\n".join(f"- {r}" for r in info.references)
    text = f"{info.rationale}\n\nFix: {info.fix}" + (f"\n\nReferences:\n{references_text}" if info.references else "")
    markdown_refs = "\n".join(f"- {_markdown(r)}" for r in info.references)
    markdown_urls = "\n".join(f"- <{u}>" for u in info.urls)
    markdown = (f"**{_markdown(info.title)}**\n\n{_markdown(info.rationale)}\n\n**Fix:** {_markdown(info.fix)}"
                + (f"\n\n**References:**\n{markdown_refs}" if info.references else "")
                + (f"\n{markdown_urls}" if info.urls else ""))
    rule: dict[str, Any] = {
        "id": cid,
        "name": cid.replace("-", ""),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.rationale},
        "help": {"text": text, "markdown": markdown},
        "defaultConfiguration": {"level": _LEVEL[f.meta.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[f.meta.severity],
            "tags": tags,
            "category": f.meta.category.value,
            "frameworks": {k: list(v) for k, v in sorted(frameworks.for_check(cid).items())},
        },
    }
    if info.urls:
        rule["helpUri"] = info.urls[0]
    return rule


def _locations(f: Finding, shared: ReportView, uris: dict[str, str]) -> list[dict[str, Any]]:
    where = shared.location(f)
    logical: dict[str, Any] = {"name": f.result.resource, "fullyQualifiedName": where.logical, "kind": "resource"}
    if where.file is None:
        return [{"logicalLocations": [logical]}]
    uri = uris.get(where.file)
    if uri is None:  # a guest's definition file decides several of its findings
        uri = uris[where.file] = urllib.parse.quote(where.file.lstrip("/"))
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": "HOSTROOT"}}
    if where.line is not None:
        physical["region"] = {"startLine": where.line}
    return [{"physicalLocation": physical, "logicalLocations": [logical]}]


def _result(f: Finding, rule_index: int, shared: ReportView, uris: dict[str, str]) -> dict[str, Any]:
    severity = f.severity
    out: dict[str, Any] = {
        "ruleId": f.check_id,
        "ruleIndex": rule_index,
        "kind": "fail",
        "level": _LEVEL[severity],
        "message": {"text": f.result.message or f.meta.title},
        "locations": _locations(f, shared, uris),
        "partialFingerprints": {"hyperward/v1": shared.fingerprint(f)},
        "properties": {
            "resource": f.result.resource,
            "severity": severity.label,
            "security-severity": SECURITY_SEVERITY[severity],
            "fix": f.remediation,
            "details": dict(f.result.details),
        },
    }
    if f.status is Status.SUPPRESSED:
        out["suppressions"] = [{"kind": "external", "status": "accepted",
                                "justification": f.suppression_reason or "suppressed in hyperward's configuration"}]
    return out


def _notification(f: Finding, rule_index: int, shared: ReportView, uris: dict[str, str]) -> dict[str, Any]:
    """A check that could not run is no finding: SARIF's place for it is the invocation."""
    return {
        "level": "error",
        "message": {"text": f"{f.check_id} on {f.result.resource}: {f.result.message}"},
        "associatedRule": {"id": f.check_id, "index": rule_index},
        "locations": _locations(f, shared, uris),
        "properties": {"needs_privilege": f.result.needs_privilege},
    }


def document(report: ScanReport) -> dict[str, Any]:
    meta = report.facts.meta
    shared = view(report)
    helps = shared.helps(report)
    uris: dict[str, str] = {}
    first: dict[str, Finding] = {}
    for f in report.findings:
        first.setdefault(f.check_id, f)
    rule_ids = sorted(first)
    index = {cid: i for i, cid in enumerate(rule_ids)}
    host = meta.hostname
    results = [_result(f, index[f.check_id], shared, uris) for f in report.findings if f.status in (Status.FAIL, Status.SUPPRESSED)]
    notifications = [_notification(f, index[f.check_id], shared, uris) for f in report.findings if f.status is Status.ERROR]
    root = meta.root if meta.root.endswith("/") else meta.root + "/"
    run: dict[str, Any] = {
        "tool": {"driver": {
            "name": "hyperward",
            "version": __version__,
            "semanticVersion": __version__,
            "rules": [_rule(cid, first[cid], helps[cid]) for cid in rule_ids],
        }},
        "automationDetails": {"id": f"hyperward/{host}/{meta.collected_at}",
                              "description": {"text": f"hyperward scan of {host}"}},
        "originalUriBaseIds": {"HOSTROOT": {"uri": "file://" + urllib.parse.quote(root),
                                            "description": {"text": f"the root of the audited host {host}"}}},
        "invocations": [{
            "executionSuccessful": True,
            "startTimeUtc": meta.collected_at,
            "machine": host,
            "toolExecutionNotifications": notifications,
        }],
        "results": results,
        "properties": {"host": host, "profile": report.profile, "warnings": list(report.warnings),
                       "summary": shared.counts_by_status(report)},
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(report: ScanReport, options: RenderOptions) -> str:
    # one line, compact (jq . for people)
    return encode_json(document(report)) + "\n"
