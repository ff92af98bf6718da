"""Regenerate src/hyperward/data/catalog.json from the product spec (shared/spec/checks.md).

Usage: python scripts/gen_catalog.py [PATH_TO_checks.md]
The JSON is committed so the installed tool needs no spec file; tests/test_catalog.py fails when
the two disagree."""

from __future__ import annotations

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_SPEC = HERE.parent / "shared" / "spec" / "checks.md"
OUT = HERE / "src" / "hyperward" / "data" / "catalog.json"
FIELDS = ("id", "platform", "title", "severity_text", "detection", "passes_when", "remediation", "flags")
SEVERITY = {"C": "critical", "H": "high", "M": "medium", "L": "low", "I": "info"}


def parse_spec(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        if not line.startswith("| HV-"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != len(FIELDS):
            raise SystemExit(f"unexpected row shape: {line[:80]}")
        row = dict(zip(FIELDS, cells, strict=True))
        row["severity"] = SEVERITY[row["severity_text"][0]]
        rows.append(row)
    return rows


def main() -> None:
    spec = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SPEC
    rows = parse_spec(spec.read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} checks written to {OUT}")


if __name__ == "__main__":
    main()
