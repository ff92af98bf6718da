"""Machine-readable report for CI and SIEMs. Schema documented in docs/report-json.md."""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..engine import ScanReport
from ..facts import GuestInside, to_jsonable
from ..guests.model import Guest
from ..model import Category, Status, Unavailable
from . import RenderOptions
from .common import encode_json, view

#: 2: each result has "details" (and "platform" for guest results); a top-level "checks" map gives
#: each check's title, severity and reference URLs
SCHEMA_VERSION = 2


_STATUS = {s: s.value for s in Status}
_CATEGORY = {c: c.value for c in Category}


def finding_to_dict(f: Any) -> dict[str, Any]:
    """Enum values through plain dicts: at 16,000 results, enum's value property is a third of the time."""
    out: dict[str, Any] = {
        "id": f.meta.check_id,
        "title": f.meta.title,
        "category": _CATEGORY[f.meta.category],
        "severity": f.severity.label,
        "status": _STATUS[f.status],
        "resource": f.result.resource,
        "message": f.result.message,
        "remediation": f.remediation,
        "details": dict(f.result.details),
    }
    if f.result.platform is not None:
        out["platform"] = f.result.platform
    if f.suppression_reason is not None:
        out["suppression_reason"] = f.suppression_reason
    if f.result.needs_privilege:
        out["needs_privilege"] = True
    return out


def checks_map(report: ScanReport) -> dict[str, dict[str, Any]]:
    """Each check in the report once: what it is and where to read about it."""
    from .. import frameworks
    from ..catalog import catalog
    from ..references import check_urls

    entries = catalog()
    out: dict[str, dict[str, Any]] = {}
    for f in report.findings:
        if f.check_id in out:
            continue
        entry = entries.get(f.check_id)
        out[f.check_id] = {
            "title": f.meta.title,
            "category": f.meta.category.value,
            "severity": f.meta.severity.label,
            "references": list(f.meta.references),
            "urls": check_urls(f.meta, entry.sources if entry else ""),
            "frameworks": {k: list(v) for k, v in sorted(frameworks.for_check(f.check_id).items())},
        }
    return dict(sorted(out.items()))


def render(report: ScanReport, options: RenderOptions) -> str:
    meta = report.facts.meta
    document = {
        "tool": "hyperward",
        "version": __version__,
        "schema": SCHEMA_VERSION,
        "host": meta.hostname,
        "root": meta.root,
        "collected_at": meta.collected_at,
        "collected_as_root": meta.euid == 0,
        "profile": report.profile,
        "duration_s": round(report.total_s if report.total_s is not None else report.duration_s, 4),
        "collect_s": None if report.collect_s is None else round(report.collect_s, 4),
        "checks_s": round(report.duration_s, 4),
        "summary": {
            "by_status": view(report).counts_by_status(report),
            "failing_by_severity": report.counts_by_severity(),
            "lacking_privilege": report.lacking_privilege(),
        },
        "warnings": report.warnings,
        "results": [finding_to_dict(f) for f in report.findings],
        "checks": checks_map(report),
        "reachability": [row.as_dict() for row in report.derived().reachability],
        "guests": [_guest(g, report.derived().insides) for g in report.derived().guests],
    }
    # one line, compact (jq . for people)
    return encode_json(document) + "\n"


def _guest(guest: Guest, insides: dict[tuple[str, str], GuestInside]) -> dict[str, Any]:
    """The guest's definition, and what its disks hold when the scan looked inside ("inside"):
    fingerprints, paths and counts, never a key, hash or password (the hash tokens are left out
    too: they mean nothing outside the scan)."""
    out: dict[str, Any] = to_jsonable(guest)
    inside = insides.get((guest.platform, guest.id))
    if inside is None:
        return out
    patching = inside.patching
    packages = patching.packages if patching is not None and isinstance(patching.packages, list) else None
    state = patching.apt_state if patching is not None and not isinstance(patching.apt_state, Unavailable) else None
    vulns = patching.vulnerabilities if patching is not None and not isinstance(patching.vulnerabilities, Unavailable) else None
    out["inside"] = {
        "scanned": inside.scanned, "reason": inside.reason, "running": inside.running,
        "os": to_jsonable(inside.os), "os_product": inside.os_product, "lifecycle": to_jsonable(inside.lifecycle),
        "disks": to_jsonable(inside.disks), "filesystems": inside.filesystems,
        "packages": len(packages) if packages is not None else None,
        "pending_updates": len(state.pending) if state is not None else None,
        "cves": len(vulns.matches) if vulns is not None else None,
        "keys": to_jsonable(inside.keys),
        "accounts_with_password": [{"user": h.user, "scheme": h.scheme} for h in inside.hashes],
        "credentials": to_jsonable(inside.secrets),
        "notes": inside.notes,
    }
    return out
