"""A release's place in its vendor's support calendar (HV-PATCH-071).

Debian and Ubuntu: Debian's distro-info-data (debian.csv, ubuntu.csv) as installed on the machine
running hyperward, never the guest's own copy: a guest's copy is as old as the guest's last
update, and the guests that matter here are the ones that stopped updating. The scanning host's
package is kept current by the host's own updates (scripts/install.sh installs it);
$HYPERWARD_DISTRO_INFO names another directory. Other distributions: the sourced table in
data/lifecycle.json. A release in neither is not judged.

The date judged is the last day of support that needs no contract: Debian LTS (eol-lts) after
regular security support (eol); Ubuntu's standard support (eol, eol-server). The paid or opt-in
programmes after it (Freexian's Debian ELTS, eol-elts; Ubuntu Pro ESM, eol-esm) count only when
the guest's apt sources name their archives: a guest that pays for them says so there.

data/lifecycle.json is a sourced table (hyperward.sourced): `hyperward db update` refreshes it
from `[vulndb] lifecycle_url` into lifecycle.json in hyperward's state directory
(HYPERWARD_LIFECYCLE names another path). A Lifecycle from it carries the table's compile date
and max age, so HV-PATCH-071 can tell a current "supported until" from a stale one.
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any

from .. import sourced
from ..facts import Lifecycle, Maybe, OsRelease
from ..model import Unavailable
from ..records import frozen
from ..sourced import About, TableError

DISTRO_INFO = "/usr/share/distro-info"
CSV_LIMIT = 1024 * 1024
#: apt source URIs that show the guest receives the extended programme
ELTS_ARCHIVES = ("deb.freexian.com/extended-lts", "deb.freexian.com/elts")
ESM_ARCHIVES = ("esm.ubuntu.com",)


def distro_info_dir() -> str:
    return os.environ.get("HYPERWARD_DISTRO_INFO") or DISTRO_INFO


def _read_csv(name: str) -> list[dict[str, str]] | Unavailable:
    path = os.path.join(distro_info_dir(), name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return Unavailable(path, "missing", "Debian's distro-info-data is not installed on the scanning host (apt install distro-info-data)")
    except OSError as exc:
        return Unavailable(path, "denied" if isinstance(exc, PermissionError) else "invalid", exc.strerror or str(exc))
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(CSV_LIMIT + 1)
    if len(data) > CSV_LIMIT:
        return Unavailable(path, "invalid", f"larger than {CSV_LIMIT} bytes; not read")
    try:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]
    except (UnicodeDecodeError, csv.Error) as exc:
        return Unavailable(path, "invalid", f"not distro-info CSV ({exc})")


def _uses(sources: list[str], archives: tuple[str, ...]) -> bool:
    return any(a in s for s in sources for a in archives)


def _debian(os_release: OsRelease, sources: list[str]) -> Maybe[Lifecycle]:
    rows = _read_csv("debian.csv")
    path = os.path.join(distro_info_dir(), "debian.csv")
    if isinstance(rows, Unavailable):
        return rows
    major = os_release.version_id.split(".")[0]
    row = next((r for r in rows if major and r.get("version") == major), None) or \
        next((r for r in rows if os_release.codename and r.get("series") == os_release.codename.lower()), None)
    if row is None:
        return Unavailable(path, "missing", f"Debian {os_release.version_id or os_release.codename or '?'} is not in the scanning host's "
                                            f"{path} (a newer release than its distro-info-data knows: update distro-info-data)")
    name = f"Debian {row.get('version') or row.get('codename', '')} ({row.get('series', '')})".replace("Debian  (", "Debian (")
    eol, lts, elts = row.get("eol") or None, row.get("eol-lts") or None, row.get("eol-elts") or None
    return Lifecycle("debian", row.get("version", ""), name, row.get("release") or None, lts or eol,
                     "Debian LTS" if lts else "regular security support", elts, "Freexian ELTS (paid)", _uses(sources, ELTS_ARCHIVES),
                     f"{path} (distro-info-data on the scanning host)" + (f"; regular security support ended {eol}" if lts and eol else ""))


def _ubuntu(os_release: OsRelease, sources: list[str]) -> Maybe[Lifecycle]:
    rows = _read_csv("ubuntu.csv")
    path = os.path.join(distro_info_dir(), "ubuntu.csv")
    if isinstance(rows, Unavailable):
        return rows
    row = next((r for r in rows if os_release.version_id and r.get("version", "").split()[:1] == [os_release.version_id]), None) or \
        next((r for r in rows if os_release.codename and r.get("series") == os_release.codename.lower()), None)
    if row is None:
        return Unavailable(path, "missing", f"Ubuntu {os_release.version_id or os_release.codename or '?'} is not in the scanning host's "
                                            f"{path} (a newer release than its distro-info-data knows: update distro-info-data)")
    ends = [d for d in (row.get("eol"), row.get("eol-server")) if d]
    return Lifecycle("ubuntu", row.get("version", ""), f"Ubuntu {row.get('version', '')} ({row.get('series', '')})", row.get("release") or None,
                     max(ends) if ends else None, "standard support", row.get("eol-esm") or None, "Ubuntu Pro ESM",
                     _uses(sources, ESM_ARCHIVES), f"{path} (distro-info-data on the scanning host)")


FORMAT = "hyperward-lifecycle"
SCHEMA = 1
ENV = "HYPERWARD_LIFECYCLE"
#: vendors announce end-of-life dates years ahead and seldom move them (CentOS 8 did, by eight
#: years): a calendar a year old still needs checking before it vouches for a release
MAX_AGE_DAYS = 365
_REQUIRED = ("distro", "release", "name", "eol", "eol_label", "source")
_OPTIONAL = ("found_via", "released", "product", "build")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,30}$")


@frozen
class Release:
    """One row: a release's end of support as its vendor states it (`source`), read where
    `found_via` says when the vendor page itself could not be read. Windows rows also name the
    registry's ProductName prefix and CurrentBuild that identify them."""

    distro: str
    release: str
    name: str
    eol: str
    eol_label: str
    source: str
    found_via: str | None = None
    released: str | None = None
    product: str | None = None
    build: str | None = None


@frozen
class LifecycleTable:
    about: About
    releases: list[Release]

    def find(self, distro: str, release: str) -> Release | None:
        return next((r for r in self.releases if (r.distro, r.release) == (distro, release)), None)

    @property
    def label(self) -> str:
        """How a Lifecycle's source names the table: the packaged file, or the refreshed copy's path."""
        return "data/lifecycle.json" if self.about.bundled else self.about.origin


def _release(index: int, raw: object) -> Release:
    where = f"releases[{index}]"
    if not isinstance(raw, dict):
        raise TableError(f"{where}: must be an object")
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise TableError(f"{where}: unknown key {unknown[0][:40]!r}")
    for key in ("distro", "release"):
        value = sourced.text(raw, key, where, limit=40)
        if not _TOKEN.match(value):
            raise TableError(f"{where}: {key!r} {value[:40]!r} is not a lower-case name")
    where = f"release {raw['distro']} {raw['release']}"
    source = sourced.text(raw, "source", where, limit=500)
    if not source.startswith("https://"):
        raise TableError(f"{where}: 'source' must be an https:// URL")
    optional = {k: sourced.text(raw, k, where) for k in _OPTIONAL if k in raw}
    if "released" in raw:
        optional["released"] = sourced.date(raw, "released", where)
    if raw["distro"] == "windows" and not ("product" in raw and "build" in raw and str(raw["build"]).isdigit()):
        raise TableError(f"{where}: a Windows row names its 'product' and its numeric 'build'")
    return Release(raw["distro"], raw["release"], sourced.text(raw, "name", where, limit=200), sourced.date(raw, "eol", where),
                   sourced.text(raw, "eol_label", where, limit=200), source, **optional)


def _build(raw: dict[str, Any], about: About) -> LifecycleTable:
    """The releases of a document whose envelope is valid; one row per distribution and release."""
    found = raw["releases"]
    if not isinstance(found, list) or not found:
        raise TableError("table: 'releases' must be a non-empty list")
    releases = [_release(i, r) for i, r in enumerate(found)]
    seen: set[tuple[str, str]] = set()
    for row in releases:
        if (row.distro, row.release) in seen:
            raise TableError(f"release {row.distro} {row.release}: given twice")
        seen.add((row.distro, row.release))
    return LifecycleTable(about, releases)


SPEC: sourced.Spec[LifecycleTable] = sourced.Spec(
    title="lifecycle table", format=FORMAT, schema=SCHEMA, packaged="data/lifecycle.json", file="lifecycle.json", env=ENV,
    config_key="lifecycle_url", rows=("releases",), max_age_days=MAX_AGE_DAYS, build=_build,
    count=lambda t: f"{len(t.releases)} releases", about=lambda t: t.about)


def load() -> LifecycleTable | Unavailable:
    """The table a guest scan looks releases up in (the refreshed copy when valid and newer)."""
    return sourced.load(SPEC)


def _from_table(table: LifecycleTable, row: Release, release: str) -> Lifecycle:
    source = row.source + (f" (date read from {row.found_via})" if row.found_via else "")
    return Lifecycle(row.distro, release, row.name, row.released or "released", row.eol, row.eol_label, None, "", False,
                     f"hyperward {table.label}: {source}", table_compiled=table.about.compiled, table_max_age_days=table.about.max_age_days)


def release_lifecycle(os_release: Maybe[OsRelease], sources: list[str] | None = None,
                      table: Maybe[LifecycleTable] | None = None) -> Maybe[Lifecycle]:
    """`sources`: the guest's apt sources as "URI suite" strings (AptState.sources); `table` the
    lifecycle table when the caller loaded it once for many guests (else it is loaded here)."""
    if isinstance(os_release, Unavailable):
        return os_release
    found = sources or []
    if os_release.id == "debian":
        return _debian(os_release, found)
    if os_release.id == "ubuntu":
        return _ubuntu(os_release, found)
    version = os_release.version_id
    release = ".".join(version.split(".")[:2]) if os_release.id == "alpine" else version.split(".")[0]
    loaded = load() if table is None else table
    if isinstance(loaded, Unavailable):
        return loaded
    row = loaded.find(os_release.id, release)
    if row is None:
        what = f"{os_release.id or 'an unnamed OS'} {version}".strip()
        return Unavailable(loaded.label, "missing", f"{what}: no end-of-life date known for this release (hyperward's table "
                                                           "covers Debian and Ubuntu through distro-info-data, RHEL 7-9, Rocky 8-9, "
                                                           "AlmaLinux 8, CentOS 7-8 and Alpine 3.10-3.23)")
    return _from_table(loaded, row, release)


def windows_lifecycle(product: str, build: str, where: str, table: Maybe[LifecycleTable] | None = None) -> Maybe[Lifecycle]:
    """A Windows guest by its registry's ProductName and CurrentBuild together: build 17763 alone
    is Windows Server 2019, Windows Server version 1809 (Semi-Annual, long ended) and Windows 10
    Enterprise LTSC 2019 alike, and Windows 11 still writes "Windows 10" into ProductName (its build
    tells it apart). LTSC/LTSB client editions have calendars of their own and are not judged."""
    base = build.split(".")[0]
    found = load() if table is None else table
    if isinstance(found, Unavailable):
        return found
    rows = [r for r in found.releases if r.distro == "windows" and r.product and r.build]
    lts = any(t in product for t in ("LTSC", "LTSB"))
    row = next((r for r in rows if r.build == base and not lts
                and (product == r.product or product.startswith(f"{r.product} "))), None)
    if row is None:
        known = ", ".join(f"{r.product} build {r.build}" for r in rows)
        return Unavailable(where, "missing", f"{product} build {base or '?'}: no end-of-life date known for this product and build "
                                             f"(hyperward's table covers {known})")
    return _from_table(found, row, row.build or base)
