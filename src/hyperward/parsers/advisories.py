"""Advisory formats to records: OSV JSON (https://ossf.github.io/osv-schema/; Debian, Ubuntu,
AlmaLinux, Rocky Linux and Alpine ecosystems) and the Debian security tracker's JSON (security-tracker.debian.org/tracker/data/json).
Pure functions; malformed entries raise AdvisoryError naming the entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..records import frozen

# Debian codenames to the release numbers OSV's "Debian:12" ecosystems use.
DEBIAN_RELEASES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14", "duke": "15", "sid": "sid"}


class AdvisoryError(ValueError):
    pass


@frozen
class Affected:
    ecosystem: str
    release: str
    package: str
    introduced: str | None
    fixed: str | None
    last_affected: str | None


@frozen
class Record:
    advisory: str
    cve: str
    severity: str | None
    cvss: float | None
    summary: str
    affected: list[Affected]


RPM_ECOSYSTEMS = {"almalinux": "almalinux", "rocky linux": "rocky"}


def split_ecosystem(value: str) -> tuple[str, str] | None:
    """"Debian:12" -> ("debian", "12"); "Ubuntu:22.04:LTS" -> ("ubuntu", "22.04");
    "AlmaLinux:9" -> ("almalinux", "9"); "Rocky Linux:9" -> ("rocky", "9"); "Alpine:v3.19" ->
    ("alpine", "3.19"); others None."""
    parts = value.split(":")
    name = parts[0].strip().lower()
    if name == "alpine" and len(parts) >= 2 and parts[1].strip():
        return "alpine", parts[1].strip().removeprefix("v")
    if name in RPM_ECOSYSTEMS and len(parts) >= 2 and parts[1].strip():
        return RPM_ECOSYSTEMS[name], parts[1].strip().split(".")[0]
    if name not in ("debian", "ubuntu") or len(parts) < 2 or not parts[1].strip():
        return None
    release = parts[1].strip()
    if name == "ubuntu" and release.lower() == "pro" and len(parts) > 2:
        release = parts[2].strip()
    return name, DEBIAN_RELEASES.get(release.lower(), release)


def cvss_score(vector: str) -> float | None:
    try:
        if vector.startswith("CVSS:4"):
            from cvss import CVSS4

            return float(CVSS4(vector).base_score)
        if vector.startswith("CVSS:3"):
            from cvss import CVSS3

            return float(CVSS3(vector).scores()[0])
        from cvss import CVSS2

        return float(CVSS2(vector).scores()[0])
    except Exception:  # an unparseable vector: no score, never a crash
        return None


def label_for(score: float | None) -> str | None:
    if score is None:
        return None
    return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else "low" if score > 0 else "none"


def _cve_of(advisory: str, doc: dict[str, Any]) -> str:
    if advisory.startswith("CVE-"):
        return advisory
    for key in ("aliases", "upstream", "related"):
        for alias in doc.get(key) or []:
            if isinstance(alias, str) and alias.startswith("CVE-"):
                return alias
    return advisory


def parse_osv(doc: Any) -> Record:
    if not isinstance(doc, dict):
        raise AdvisoryError("not a JSON object")
    advisory = doc.get("id")
    if not isinstance(advisory, str) or not advisory:
        raise AdvisoryError("no \"id\"")
    affected_in = doc.get("affected") or []
    if not isinstance(affected_in, list):
        raise AdvisoryError(f"{advisory}: \"affected\" is not a list")
    score = None
    for severity in doc.get("severity") or []:
        if isinstance(severity, dict) and isinstance(severity.get("score"), str):
            value = cvss_score(severity["score"])
            if value is not None:
                score = max(score or 0.0, value)
    label = label_for(score)
    specific: dict[str, Any] = doc["database_specific"] if isinstance(doc.get("database_specific"), dict) else {}
    if label is None and isinstance(specific.get("severity"), str):
        label = specific["severity"].lower()
    affected: list[Affected] = []
    if doc.get("withdrawn"):
        affected_in = []  # withdrawn advisories stay known but match nothing
    for item in affected_in:
        if not isinstance(item, dict) or not isinstance(item.get("package"), dict):
            raise AdvisoryError(f"{advisory}: an \"affected\" entry has no package")
        package = item["package"]
        eco = split_ecosystem(str(package.get("ecosystem", "")))
        name = package.get("name")
        if eco is None or not isinstance(name, str):
            continue
        specific_eco: dict[str, Any] = item["ecosystem_specific"] if isinstance(item.get("ecosystem_specific"), dict) else {}
        if label is None and isinstance(specific_eco.get("urgency"), str) and specific_eco["urgency"] in URGENCY:
            label = URGENCY[specific_eco["urgency"]]
        ranges = item.get("ranges") or []
        found = False
        for rng in ranges if isinstance(ranges, list) else []:
            if not isinstance(rng, dict) or rng.get("type") != "ECOSYSTEM":
                continue
            introduced: str | None = None
            for event in rng.get("events") or []:
                if not isinstance(event, dict):
                    raise AdvisoryError(f"{advisory}: malformed range event")
                if "introduced" in event:
                    introduced = str(event["introduced"])
                elif "fixed" in event or "last_affected" in event:
                    affected.append(Affected(eco[0], eco[1], name, introduced, str(event.get("fixed")) if "fixed" in event else None,
                                             str(event.get("last_affected")) if "last_affected" in event else None))
                    introduced, found = None, True
            if introduced is not None:
                affected.append(Affected(eco[0], eco[1], name, introduced, None, None))
                found = True
        if not found and item.get("versions"):
            affected.append(Affected(eco[0], eco[1], name, "0", None, None))
    summary = doc.get("summary") or doc.get("details") or ""
    return Record(advisory, _cve_of(advisory, doc), label, score, str(summary)[:300], affected)


URGENCY = {"unimportant": "unimportant", "low": "low", "low*": "low", "low**": "low", "medium": "medium", "medium*": "medium",
           "medium**": "medium", "high": "high", "high*": "high", "high**": "high"}


def parse_debian_tracker(doc: Any) -> Iterator[Record | AdvisoryError]:
    """The tracker's JSON: {source package: {CVE or TEMP id: {"releases": {codename: {"status",
    "fixed_version", "urgency"}}}}}. fixed_version "0" means the release was never affected."""
    if not isinstance(doc, dict):
        yield AdvisoryError("not a Debian security tracker document (expected an object of source packages)")
        return
    for package, issues in doc.items():
        if not isinstance(issues, dict):
            yield AdvisoryError(f"{package}: expected an object of issues")
            continue
        for issue, data in issues.items():
            if not isinstance(data, dict) or not isinstance(data.get("releases", {}), dict):
                yield AdvisoryError(f"{package} {issue}: malformed issue")
                continue
            affected = []
            urgencies = []
            for codename, info in data.get("releases", {}).items():
                if not isinstance(info, dict):
                    continue
                fixed = info.get("fixed_version")
                status = info.get("status")
                if fixed == "0" or status == "not-affected":
                    continue
                urgencies.append(URGENCY.get(str(info.get("urgency", "")), None))
                release = DEBIAN_RELEASES.get(str(codename), str(codename))
                affected.append(Affected("debian", release, str(package), "0", str(fixed) if fixed and status == "resolved" else None, None))
            if not affected:
                continue
            severity = next((u for u in ("high", "medium", "low", "unimportant") if u in urgencies), None)
            yield Record(str(issue), str(issue) if str(issue).startswith("CVE-") else str(issue), severity, None,
                         str(data.get("description") or "")[:300], affected)


def looks_like_osv(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("id"), str) and ("affected" in doc or "modified" in doc)
