"""Match the installed packages against the offline advisory database (read-only)."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Literal

from ..facts import PatchingFacts
from ..model import Unavailable
from ..parsers.advisories import DEBIAN_RELEASES
from .. import vulndb


def collect_vulnerabilities(patching: PatchingFacts, path: str | None, max_age_days: int | None = None) -> PatchingFacts:
    path = path or vulndb.default_path()
    os_release, packages = patching.os, patching.packages
    if isinstance(packages, Unavailable):
        return dataclasses.replace(patching, vulnerabilities=packages)
    if isinstance(os_release, Unavailable):
        return dataclasses.replace(patching, vulnerabilities=os_release)
    if os_release.id not in ("debian", "ubuntu", "almalinux", "rocky", "alpine"):
        return dataclasses.replace(patching, vulnerabilities=Unavailable(
            "/etc/os-release", "missing", f"no advisory matching for {os_release.id or 'this OS'} (Debian, Ubuntu, AlmaLinux, Rocky Linux "
                                          "and Alpine are supported)"))
    release = os_release.version_id or DEBIAN_RELEASES.get(os_release.codename, os_release.codename)
    if os_release.id in ("almalinux", "rocky"):
        release = release.split(".")[0]
    if os_release.id == "alpine":  # OSV's "Alpine:v3.19" is the branch: 3.19.4 and 3.19.0 are both on it
        release = ".".join(release.split(".")[:2])
    try:
        conn = vulndb.open_read_only(path)
    except vulndb.DatabaseError as exc:
        kind: Literal["missing", "denied", "invalid"] = (
            "denied" if isinstance(exc, vulndb.DatabaseDenied) else "missing" if "no advisory database" in str(exc) else "invalid")
        return dataclasses.replace(patching, vulnerabilities=Unavailable(path, kind, str(exc).removeprefix(f"{path}: ")))
    try:
        state = patching.apt_state
        pending = state.pending if state is not None and not isinstance(state, Unavailable) else []
        facts = dataclasses.replace(vulndb.match(conn, path, os_release.id, release, packages, pending),
                                    max_age_days=max_age_days or vulndb.DEFAULT_MAX_AGE_DAYS)
    except vulndb.DatabaseError as exc:
        return dataclasses.replace(patching, vulnerabilities=Unavailable(path, "invalid", str(exc).removeprefix(f"{path}: ")))
    except sqlite3.DatabaseError as exc:
        return dataclasses.replace(patching, vulnerabilities=Unavailable(path, "invalid", f"advisory database unreadable ({exc})"))
    finally:
        conn.close()
    return dataclasses.replace(patching, vulnerabilities=facts)
