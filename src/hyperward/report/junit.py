"""JUnit XML (the junit-10.xsd that Jenkins and pytest use) so a CI system shows a scan as tests: one
test suite per check, one test case per (check, resource). GitLab shows only an element's text, so
a failure's text carries the severity, the message, the fix and where it was decided."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..engine import ScanReport
from ..model import Finding, Status
from . import RenderOptions
from .common import location

#: characters XML 1.0 cannot carry at all (a guest's name may hold them): shown as \\xNN instead
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def _where(f: Finding) -> str:
    where = location(f)
    if where.file is None:
        return where.logical
    return where.file + (f":{where.line}" if where.line else "") + (f" ({where.key})" if where.key else "")


def _case(suite: ET.Element, f: Finding) -> None:
    case = ET.SubElement(suite, "testcase", classname=_clean(f.check_id), name=_clean(f.result.resource), time="0")
    message = _clean(f.result.message or f.meta.title)
    if f.status is Status.FAIL:
        failure = ET.SubElement(case, "failure", type=f.severity.label, message=message)
        failure.text = _clean(f"severity: {f.severity.label}\n{f.check_id} {f.meta.title}\n{f.result.message}\n"
                              f"where: {_where(f)}\nfix: {f.remediation}\n")
    elif f.status is Status.ERROR:
        error = ET.SubElement(case, "error", type="could not check", message=message)
        error.text = _clean(f"{f.check_id} could not run on {f.result.resource}: {f.result.message}\nwhere: {_where(f)}\n")
    elif f.status is Status.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", type="not applicable", message=message)
    elif f.status is Status.SUPPRESSED:
        skipped = ET.SubElement(case, "skipped", type="suppressed",
                                message=_clean(f"suppressed: {f.suppression_reason or ''}"))
        skipped.text = _clean(f"severity: {f.severity.label}\n{f.result.message}\nwhere: {_where(f)}\n")


def render(report: ScanReport, options: RenderOptions) -> str:
    meta = report.facts.meta
    by_check: dict[str, list[Finding]] = {}
    for f in report.findings:
        by_check.setdefault(f.check_id, []).append(f)
    counts = report.counts_by_status()
    total_s = report.total_s if report.total_s is not None else report.duration_s
    top = ET.Element("testsuites", name="hyperward", time=f"{total_s:.3f}", tests=str(len(report.findings)),
                     failures=str(counts["fail"]), errors=str(counts["error"]))
    for cid in sorted(by_check):
        findings = by_check[cid]
        status = [f.status for f in findings]
        suite = ET.SubElement(
            top, "testsuite", name=_clean(f"{cid} {findings[0].meta.title}"), tests=str(len(findings)),
            failures=str(status.count(Status.FAIL)), errors=str(status.count(Status.ERROR)),
            skipped=str(status.count(Status.NOT_APPLICABLE) + status.count(Status.SUPPRESSED)),
            time="0", timestamp=meta.collected_at, hostname=_clean(meta.hostname), package="hyperward")
        for f in findings:
            _case(suite, f)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n"
