#!/usr/bin/env python3
"""Prove that a change to the sourced tables' envelope left their rows alone: compares every
table's rows (everything but the envelope keys) at a git revision with the working tree, as
parsed JSON, and exits 1 on any difference.

    python scripts/sourced_rows.py [REVISION]   (default HEAD)

A row-for-row comparison, not a text diff: re-indenting a file is no change, a changed date is.
The keys compared are the row keys each format names (hyperward.sourced: ESXi "lines",
VirtualBox "covers_through", "branches" and "end_of_life", lifecycle "releases"); "about" is
the name the VirtualBox and lifecycle tables gave their "covers" text before the envelope.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
TABLES = {"src/hyperward/data/esxi-builds.json": ("lines",),
          "src/hyperward/data/virtualbox_security.json": ("covers_through", "branches", "end_of_life"),
          "src/hyperward/data/lifecycle.json": ("releases",)}


def at(revision: str, path: str) -> dict[str, object]:
    shown = subprocess.run(["git", "-C", str(REPO), "show", f"{revision}:{path}"], capture_output=True, text=True, check=True, timeout=60)
    doc: dict[str, object] = json.loads(shown.stdout)
    return doc


def main(argv: list[str]) -> int:
    revision = argv[1] if len(argv) > 1 else "HEAD"
    changed = 0
    for path, keys in TABLES.items():
        old, new = at(revision, path), json.loads((REPO / path).read_text())
        for key in keys:
            same = old.get(key) == new.get(key)
            changed += not same
            count = len(new[key]) if isinstance(new.get(key), (list, dict)) else 1
            print(f"{path} {key}: {'identical' if same else 'CHANGED'} ({count} {'entries' if count != 1 else 'entry'})")
        covers_old = old.get("covers", old.get("about"))
        print(f"{path} covers: {'identical' if covers_old == new.get('covers') else 'CHANGED'}; "
              f"compiled {old.get('compiled')} -> {new.get('compiled')}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
