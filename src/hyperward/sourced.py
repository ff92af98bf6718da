"""Sourced tables: hyperward's hand-compiled, dated reference data, under one envelope and one
loader, so each is validated, refreshed and aged the same way (docs/sourced-tables.md).

The tables are the ESXi build table (HV-PATCH-100), VirtualBox's Critical Patch Update table
(HV-PATCH-032) and the guest OS end-of-life table (HV-PATCH-071). A table is one JSON object:

    format        which table it is ("hyperward-esxi-builds")
    schema        that format's schema version; another one is refused, never half read
    compiled      YYYY-MM-DD, the day its rows were last checked against their sources
    covers        what it covers and how far (the newest advisory it holds)
    sources       the https:// URLs its rows were compiled from
    max_age_days  how long after `compiled` a pass may lean on it (optional: the format's default)
    ...           the format's own row keys (ESXi "lines", VirtualBox "branches" and
                  "end_of_life", lifecycle "releases"), which its own module validates

A result that leans on a table is only as current as the table: the age rule counts the days from
`compiled` to the facts' collection, and past `max_age_days` a table vouches for nothing (a pass
becomes not applicable and says to run `hyperward db update`); what the table says is missing
stays missing whatever its age.

The copy packaged with hyperward (src/hyperward/data) is the default. `hyperward db update`
downloads a refreshed copy from the table's `[vulndb]` URL, validates it whole and writes it
atomically and privately into hyperward's state directory (or where the table's environment
variable points); a scan prefers it when it is valid and compiled no earlier than the packaged one,
so an old download never hides a newer packaged table, and a broken one is named, never used.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .model import Unavailable
from .paths import data_file
from .records import frozen
from .textsafe import visible

if TYPE_CHECKING:
    from .safefile import Ownership

#: a table is a few kilobytes; anything past this is not one (and is not parsed)
MAX_SIZE = 1024 * 1024
#: the longest max_age_days a table may claim: past two years no advisory table is current
MAX_AGE_LIMIT = 730
#: JSON nesting a table needs (ESXi: table > lines > line > fixes > fix > sources); deeper is garbage
MAX_DEPTH = 16
ENVELOPE = ("format", "schema", "compiled", "covers", "sources", "max_age_days")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

T = TypeVar("T")


class TableError(ValueError):
    """A table that cannot be used; the message names what is wrong and where in the table."""


class Unusable(TableError):
    """Neither the packaged nor a refreshed copy of a table can be used: `path` is the packaged
    copy, `reason` what is wrong with it (and with the refreshed copy, when there is one)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@frozen
class About:
    """A loaded table's envelope. `origin` is "bundled" (the packaged copy) or the refreshed
    copy's path (a URL while `db update` checks a download); `ignored` why a refreshed copy that
    is there was not used, for results to say."""

    format: str
    schema: int
    compiled: str
    covers: str
    sources: list[str]
    max_age_days: int
    origin: str
    ignored: str | None = None

    @property
    def compiled_date(self) -> datetime.date:
        return datetime.date.fromisoformat(self.compiled)

    def age_days(self, collected: datetime.date) -> int:
        """Days from compiling the table to collecting the facts (negative: the table is newer)."""
        return (collected - self.compiled_date).days

    def stale(self, collected: datetime.date) -> int | None:
        """The table's age when it is past max_age_days at `collected`, else None."""
        age = self.age_days(collected)
        return age if age > self.max_age_days else None

    @property
    def bundled(self) -> bool:
        return self.origin == "bundled"


@frozen
class Spec(Generic[T]):
    """One table format. `build` validates the format's own keys of a document whose envelope
    is already valid and returns the table (raising TableError naming the row); `count` says
    what a table holds ("9 release lines") for `db update`'s report."""

    title: str
    format: str
    schema: int
    packaged: str
    file: str
    env: str
    config_key: str
    rows: tuple[str, ...]
    max_age_days: int
    build: Callable[[dict[str, Any], About], T]
    count: Callable[[T], str]
    about: Callable[[T], About]

    def packaged_path(self) -> str:
        return str(resources.files("hyperward").joinpath(self.packaged))

    def installed_path(self) -> str:
        return data_file(self.env, self.file)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise TableError(f"key {key[:40]!r} given twice in one object")
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise TableError(f"{name} is not a JSON number")


def _depth(value: Any, limit: int) -> bool:
    """Whether `value` nests no deeper than `limit` (iteratively: a hostile table cannot recurse)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            if level > limit:
                return False
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return True


def document(data: bytes) -> Any:
    """DATA as JSON: bounded in size and depth, UTF-8, no duplicate keys, no NaN."""
    if len(data) > MAX_SIZE:
        raise TableError(f"larger than {MAX_SIZE} bytes")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_constant)
    except TableError:
        raise
    except RecursionError:
        raise TableError(f"not JSON (nested deeper than {MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise TableError(f"not JSON ({str(exc)[:120]})") from None
    if not _depth(doc, MAX_DEPTH):
        raise TableError(f"not JSON (nested deeper than {MAX_DEPTH} levels)")
    return doc


def text(obj: dict[str, Any], key: str, where: str, limit: int = 2000) -> str:
    """A non-empty string of at most LIMIT characters with no control or invisible formatting
    character: a table's text goes into results as it is, and a refreshed table is a download."""
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise TableError(f"{where}: {key!r} must be a non-empty string")
    printable(value, f"{where}: {key!r}")
    return value


def printable(value: str, where: str) -> None:
    if visible(value) != value:
        raise TableError(f"{where} holds a control or invisible formatting character ({visible(value)[:60]})")


def date(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _DATE.match(value):
        raise TableError(f"{where}: {key!r} must be a date (YYYY-MM-DD)")
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        raise TableError(f"{where}: {key!r} must be a date (YYYY-MM-DD)") from None
    return value


def urls(obj: dict[str, Any], where: str, key: str = "sources") -> list[str]:
    found = obj.get(key)
    if not (isinstance(found, list) and found and all(isinstance(u, str) and u.startswith("https://") and len(u) < 500 for u in found)):
        raise TableError(f"{where}: {key!r} must be a non-empty list of https:// URLs")
    return list(found)


def envelope(spec: Spec[Any], doc: Any, origin: str, ignored: str | None = None) -> About:
    """The envelope of DOC checked against SPEC; every top-level key must be the envelope's or the format's."""
    if not isinstance(doc, dict) or doc.get("format") != spec.format:
        raise TableError(f"not a hyperward {spec.title} (\"format\" is not {spec.format!r})")
    if doc.get("schema") != spec.schema:
        raise TableError(f"schema {repr(doc.get('schema'))[:20]} is not {spec.schema} (a newer hyperward may read it)")
    unknown = sorted(set(doc) - set(ENVELOPE) - set(spec.rows))
    if unknown:
        raise TableError(f"table: unknown key {unknown[0][:40]!r} (a {spec.format} schema {spec.schema} table has "
                         f"{', '.join((*ENVELOPE, *spec.rows))})")
    try:
        compiled = date(doc, "compiled", "table")
    except TableError:
        raise TableError("'compiled' must be a date (YYYY-MM-DD)") from None
    covers = text(doc, "covers", "table", limit=4000)
    sources = urls(doc, "table")
    max_age = doc.get("max_age_days", spec.max_age_days)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 < max_age <= MAX_AGE_LIMIT:
        raise TableError(f"table: 'max_age_days' must be a whole number of days from 1 to {MAX_AGE_LIMIT}")
    for key in spec.rows:
        if key not in doc:
            raise TableError(f"table: {key!r} is missing")
    return About(spec.format, spec.schema, compiled, covers, sources, max_age, origin, ignored)


def parse(spec: Spec[T], data: bytes, origin: str, ignored: str | None = None) -> T:
    """The table in DATA, validated whole; TableError names the first thing wrong."""
    doc = document(data)
    about = envelope(spec, doc, origin, ignored)
    return spec.build(doc, about)


def packaged(spec: Spec[T]) -> T:
    return parse(spec, resources.files("hyperward").joinpath(spec.packaged).read_bytes(), "bundled")


def read_installed(path: str) -> bytes | None:
    """A refreshed copy's bytes; None when there is none. Opened without following a symlink and
    only as a regular file (a FIFO planted there must not hang the scan), read up to the limit."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError("not a regular file")
        return handle.read(MAX_SIZE + 1)


def current(spec: Spec[T]) -> T:
    """The table a scan judges with: the refreshed copy when it is valid and compiled no earlier
    than the packaged one, else the packaged table (saying why a refreshed copy was ignored).
    TableError when neither can be used, naming both paths."""
    base: T | None = None
    base_error = ""
    packaged_path = spec.packaged_path()
    raw = b""
    try:
        raw = resources.files("hyperward").joinpath(spec.packaged).read_bytes()
        base = parse(spec, raw, "bundled")
    except (OSError, TableError) as exc:
        base_error = str(exc)
    path = spec.installed_path()
    try:
        data = read_installed(path)
        found = None if data is None else parse(spec, data, path,
                                                ignored=f"the packaged copy {packaged_path}: {base_error}" if base is None else None)
    except (OSError, TableError) as exc:
        if base is None:
            raise Unusable(packaged_path, f"{base_error}; the refreshed copy {path}: {exc}") from None
        return parse(spec, raw, "bundled", ignored=f"{path}: {exc}")
    if found is not None and (base is None or spec.about(found).compiled >= spec.about(base).compiled):
        return found
    if base is None:
        raise Unusable(packaged_path, base_error)
    return base


def load(spec: Spec[T]) -> T | Unavailable:
    """current() as a fact: a table that cannot be loaded is Unavailable naming the path and why."""
    try:
        return current(spec)
    except Unusable as exc:
        return Unavailable(exc.path, "invalid", f"hyperward's {spec.title} cannot be used: {exc.reason}")


def refresh(spec: Spec[Any], url: str, *, timeout: float, deadline: float, ownership: Ownership) -> tuple[bool, str]:
    """Download SPEC's table from URL, validate it whole and write it over the refreshed copy
    atomically and privately; (written, what happened). Anything wrong leaves the copy on disk
    as it was: a garbled or invalid download, a table older than the packaged one (it would hide
    newer rows), a target that is a symlink or in a directory others may write."""
    import tempfile

    from . import safefile
    from .download import DownloadError, download

    target = spec.installed_path()
    with tempfile.TemporaryDirectory(prefix="hyperward-table-") as tmp:
        local = os.path.join(tmp, spec.file)
        try:
            download(url, local, timeout=timeout, deadline=deadline, show_progress=False, limit=MAX_SIZE)
            with open(local, "rb") as handle:
                data = handle.read(MAX_SIZE + 1)
            table = parse(spec, data, url)
        except (DownloadError, TableError, OSError) as exc:
            return False, f"{url}: {spec.title} rejected ({exc}); {target} is unchanged"
    about = spec.about(table)
    try:
        base: str | None = spec.about(packaged(spec)).compiled
    except (OSError, TableError):
        base = None  # a broken packaged copy is no reason to refuse a valid table
    if base is not None and about.compiled < base:
        return False, f"{url}: {spec.title} compiled {about.compiled} is older than the bundled one ({base}); {target} is unchanged"
    try:
        safefile.ensure_directory(os.path.dirname(os.path.abspath(target)))
        safefile.write_bytes(target, data, ownership)
    except OSError as exc:
        return False, f"{target}: {exc}; the {spec.title} is unchanged"
    return True, f"{url}: {spec.title} compiled {about.compiled}, {spec.count(table)}, written to {target}"


def all_specs() -> list[Spec[Any]]:
    """Every sourced table, in the order `db update` refreshes them (imported here, lazily: only
    `db update` needs all three)."""
    from .collect.lifecycle import SPEC as LIFECYCLE
    from .platforms.esxi.builds import SPEC as ESXI
    from .platforms.virtualbox.security import SPEC as VIRTUALBOX

    return [ESXI, VIRTUALBOX, LIFECYCLE]
