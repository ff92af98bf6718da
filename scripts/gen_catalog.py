"""Regenerate src/hyperward/data/catalog.json from the product spec and the rows the project adds
(docs/catalog-project.md).

Usage: python scripts/gen_catalog.py [PATH_TO_checks.md]
With a path (the shared spec, e.g. ../shared/spec/checks.md), the spec is first copied to
tests/fixtures/spec-checks.md, the repository's own copy; without one, that copy is used. The tests
read only the copy, so they never depend on where the checkout sits. The JSON is committed so the
installed tool needs no spec file; tests/test_engine_catalog.py fails when it and the two sources
disagree."""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent
VENDORED_SPEC = HERE / "tests" / "fixtures" / "spec-checks.md"
PROJECT = HERE / "docs" / "catalog-project.md"
OUT = HERE / "src" / "hyperward" / "data" / "catalog.json"
FIELDS = ("id", "platform", "title", "severity_text", "detection", "passes_when", "remediation", "flags")
PROJECT_FIELDS = (*FIELDS, "sources")
SEVERITY = {"C": "critical", "H": "high", "M": "medium", "L": "low", "I": "info"}


def parse_spec(text: str, fields: tuple[str, ...] = FIELDS) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("| HV-"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != len(fields):
            raise SystemExit(f"unexpected row shape: {line[:80]}")
        row = dict(zip(fields, cells, strict=True))
        row["severity"] = SEVERITY[row["severity_text"][0]]
        rows.append(row)
    return rows


def parse_project(text: str) -> list[dict[str, str]]:
    """The project's rows: the spec's columns plus their primary sources, which every row must name."""
    rows = parse_spec(text, PROJECT_FIELDS)
    for row in rows:
        if not row["sources"]:
            raise SystemExit(f"{row['id']}: a project row names its primary sources")
    return rows


def build(spec_text: str, project_text: str) -> list[dict[str, str]]:
    spec = parse_spec(spec_text)
    project = parse_project(project_text)
    taken = {row["id"] for row in spec}
    for row in project:
        if row["id"] in taken:
            raise SystemExit(f"{row['id']} is the spec's: a project row takes a new ID, never reuses one")
        taken.add(row["id"])
    return spec + project


def main() -> None:
    if len(sys.argv) > 1:
        spec_text = pathlib.Path(sys.argv[1]).read_text(encoding="utf-8")
        parse_spec(spec_text)
        VENDORED_SPEC.write_text(spec_text, encoding="utf-8")
        print(f"spec copied to {VENDORED_SPEC}")
    rows = build(VENDORED_SPEC.read_text(encoding="utf-8"), PROJECT.read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} checks written to {OUT}")


if __name__ == "__main__":
    main()
