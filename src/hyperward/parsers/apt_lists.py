"""apt's view of available versions, without apt: Release/InRelease files, Packages indexes,
and preferences (pins). Pure functions; collect/packages.py reads the files.

Candidate selection follows apt's pkgPolicy (apt_preferences(5)): every version gets a priority
(500 by default, 1 for NotAutomatic archives, 100 with ButAutomaticUpgrades, 100 for the installed
version, or the first matching pin), the candidate is the highest-priority version, the higher
version among equals, and a version below the installed one only at priority >= 1000.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from ..records import frozen
from .versions import deb_compare


def _fields(stanza: str) -> dict[str, str]:
    out: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if not line:
            continue
        if line[0] in " \t":
            if key is not None:
                out[key] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key = None
            continue
        out[key] = value.strip()
    return out


def strip_signature(text: str) -> str:
    """An InRelease file is clear-signed: the Release text sits between the PGP header and signature."""
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return text
    body = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    return body.split("\n-----BEGIN PGP SIGNATURE-----", 1)[0]


@frozen
class Release:
    origin: str
    label: str
    suite: str
    codename: str
    version: str
    components: str
    not_automatic: bool
    but_automatic_upgrades: bool
    site: str

    @property
    def security(self) -> bool:
        return self.label.endswith("-Security") or self.suite.endswith("-security") or self.codename.endswith("-security")

    def describe(self) -> str:
        return f"{self.origin or self.site} {self.codename or self.suite}".strip()


def parse_release(text: str, site: str = "") -> Release:
    fields = _fields(strip_signature(text).split("\n\n", 1)[0])
    return Release(
        origin=fields.get("Origin", ""),
        label=fields.get("Label", ""),
        suite=fields.get("Suite", ""),
        codename=fields.get("Codename", ""),
        version=fields.get("Version", ""),
        components=fields.get("Components", ""),
        not_automatic=fields.get("NotAutomatic", "").lower() == "yes",
        but_automatic_upgrades=fields.get("ButAutomaticUpgrades", "").lower() == "yes",
        site=site,
    )


@frozen
class Available:
    name: str
    arch: str
    version: str
    source: str


PACKAGE_LINE = re.compile(rb"\nPackage:[ \t]*(\S+)")


def iter_packages(data: bytes, wanted: set[str]) -> Iterator[Available]:
    return scan_packages(data, {w.encode() for w in wanted})


def scan_packages(data: bytes, names: set[bytes]) -> Iterator[Available]:
    """Only stanzas of wanted package names are decoded and parsed: a Debian main index holds
    60,000 stanzas (50 MB), so the Package: lines are found by the regex engine and the rest of
    a stanza is read only when its name is wanted."""
    first = PACKAGE_LINE.match(b"\n" + data[: data.find(b"\n") if b"\n" in data[:4096] else 4096])
    if first is not None and first.group(1) in names:
        yield from _stanza(data, 0)
    for match in PACKAGE_LINE.finditer(data):
        if match.group(1) in names:
            yield from _stanza(data, match.start() + 1)


def _stanza(data: bytes, at: int) -> Iterator[Available]:
    before = data.rfind(b"\n\n", 0, at)
    start = before + 2 if before >= 0 else 0
    end = data.find(b"\n\n", at)
    fields = _fields(data[start : end if end >= 0 else len(data)].decode("utf-8", "replace"))
    version = fields.get("Version")
    package = fields.get("Package")
    if version and package:
        yield Available(package, fields.get("Architecture", ""), version, fields.get("Source", package).split(" ", 1)[0])


@frozen
class Pin:
    packages: list[str]
    pin: str
    priority: int
    source: str

    @property
    def specific(self) -> bool:
        return self.packages != ["*"]

    def matches_package(self, name: str) -> bool:
        for pattern in self.packages:
            if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 1:
                try:
                    if re.search(pattern[1:-1], name):
                        return True
                except re.error:
                    continue
            elif fnmatch.fnmatchcase(name, pattern):
                return True
        return False

    def matches(self, name: str, version: str, release: Release | None) -> bool:
        if not self.matches_package(name):
            return False
        kind, _, value = self.pin.partition(" ")
        value = value.strip()
        if kind == "version":
            return any(fnmatch.fnmatchcase(version, v.strip()) for v in value.split(","))
        if release is None:
            return False
        if kind == "origin":
            return value.strip('"') == release.site
        if kind == "release":
            terms = {}
            for part in value.split(","):
                key, sep, val = part.strip().partition("=")
                if sep:
                    terms[key.strip()] = val.strip()
                elif part.strip():
                    terms["a"] = part.strip()
            attrs = {"a": release.suite, "n": release.codename, "o": release.origin, "l": release.label,
                     "c": release.components, "v": release.version}
            return bool(terms) and all(fnmatch.fnmatchcase(attrs.get(k, ""), v) or (k == "c" and v in attrs["c"].split()) for k, v in terms.items())
        return False


def parse_preferences(text: str, source: str) -> list[Pin]:
    pins = []
    for stanza in re.split(r"\n\s*\n", text):
        lines = [l for l in stanza.splitlines() if l.strip() and not l.lstrip().startswith("#")]
        fields = _fields("\n".join(lines))
        if not {"Package", "Pin", "Pin-Priority"} <= set(fields):
            continue
        try:
            priority = int(fields["Pin-Priority"])
        except ValueError:
            continue
        pins.append(Pin(fields["Package"].split(), fields["Pin"], priority, source))
    return pins


@frozen
class Offer:
    version: str
    release: Release | None


def default_priority(release: Release | None, default_release: str | None) -> int:
    if release is None:
        return 100
    if default_release and default_release in (release.suite, release.codename):
        return 990
    if release.not_automatic:
        return 100 if release.but_automatic_upgrades else 1
    return 500


def priority(name: str, offer: Offer, pins: list[Pin], default_release: str | None) -> int:
    for specific in (True, False):
        for pin in pins:
            if pin.specific == specific and pin.matches(name, offer.version, offer.release):
                return pin.priority
    return default_priority(offer.release, default_release)


def candidate(name: str, installed: str, offers: list[Offer], pins: list[Pin], default_release: str | None = None) -> Offer | None:
    """apt's candidate among the installed version (release None) and every offered one."""
    best: tuple[int, Offer] | None = None
    for offer in [Offer(installed, None), *offers]:
        prio = priority(name, offer, pins, default_release)
        if offer.version == installed and offer.release is not None:
            prio = max(prio, 100)
        if prio < 0:
            continue
        if deb_compare(offer.version, installed) < 0 and prio < 1000:
            continue
        if best is None or prio > best[0] or (prio == best[0] and deb_compare(offer.version, best[1].version) > 0):
            best = (prio, offer)
    return best[1] if best else None


def _uri_to_list_prefix(uri: str) -> str:
    """apt's URItoFileName: scheme and user info dropped, '_' escaped, '/' becomes '_'."""
    rest = uri.split("://", 1)[-1]
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return rest.rstrip("/").replace("_", "%5f").replace("/", "_")


def is_security_source(uri: str, suite: str) -> bool:
    """A source of security updates: Debian's and Ubuntu's `-security` suites, Debian's older
    `security.debian.org CODENAME/updates`, and mirrors that name themselves so."""
    return suite.rstrip("/").endswith("-security") or "security" in uri.lower()


def source_list_prefixes(text: str, deb822: bool) -> list[str]:
    """List-file name prefixes ("deb.debian.org_debian_dists_bookworm_") of the `deb` sources in
    one sources.list (one-line) or .sources (deb822) file. apt reads only these lists."""
    return [list_prefix(uri, suite) for uri, suite in source_entries(text, deb822)]


def list_prefix(uri: str, suite: str) -> str:
    base = _uri_to_list_prefix(uri)
    if suite.endswith("/"):
        return f"{base}_{suite.rstrip('/').replace('/', '_')}_" if suite != "/" else f"{base}_"
    return f"{base}_dists_{suite.replace('/', '_')}_"


def source_entries(text: str, deb822: bool) -> list[tuple[str, str]]:
    """(URI, suite) of every enabled `deb` source in one sources.list or .sources file."""
    entries: list[tuple[str, str]] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            lines = [l for l in stanza.splitlines() if not l.lstrip().startswith("#")]
            fields = {k.lower(): v for k, v in _fields("\n".join(lines)).items()}
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    entries.append((uri, suite))
    else:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) < 3 or words[0] != "deb":
                continue
            if words[1].startswith("["):
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = ["deb", *words[1:]]
                if len(words) < 3:
                    continue
            entries.append((words[1], words[2]))
    return entries
