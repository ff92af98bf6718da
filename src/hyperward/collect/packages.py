"""Installed packages (dpkg status, rpm database), the OS release, and what apt would upgrade,
computed from apt's own lists and pins without network access and without running apt."""

from __future__ import annotations

import datetime
import lzma
import os
import sqlite3
import zlib
from collections import defaultdict
from typing import Protocol

from ..facts import ApkState, AptState, Maybe, OsRelease, Package, PendingUpdate
from ..model import Unavailable
from ..parsers.apk import INDEX_COMPRESSED_LIMIT, ApkIndexError, apk_compare, parse_apk_installed, parse_apk_repositories, parse_apkindex_archive
from ..parsers.apt_lists import Available, Offer, Pin, Release, candidate, is_security_source, list_prefix, parse_preferences, parse_release, scan_packages, source_entries
from ..parsers.rpm_header import ARCH, EPOCH, NAME, RELEASE, SOURCERPM, VERSION, HeaderError, parse_header, source_name
from .fs import RootFS

LISTS = "/var/lib/apt/lists"
LIST_LIMIT = 512 * 1024 * 1024
COMPRESSED = (".lz4", ".gz", ".xz", ".zst")


def collect_os_release(fs: RootFS) -> Maybe[OsRelease]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = fs.read_text(path, 64 * 1024)
        if isinstance(text, str):
            fields = {}
            for line in text.splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    fields[key.strip()] = value.strip().strip("\"'")
            return OsRelease(fields.get("ID", ""), fields.get("VERSION_ID", ""), fields.get("VERSION_CODENAME", ""))
        if text.kind != "missing":
            return text
    # Alpine before os-release was standard (3.0-3.3) names its release here alone
    alpine = fs.read_text("/etc/alpine-release", 4096)
    if isinstance(alpine, str) and alpine.strip():
        return OsRelease("alpine", alpine.strip().splitlines()[0][:40], "")
    return Unavailable("/etc/os-release", "missing", "not found")


CHUNK = 256 * 1024  # compressed bytes per step: the decompressed block (about 1 MB) stays in cache


class _Plain:
    def decompress(self, data: bytes) -> bytes:
        return data


class _Decompressor(Protocol):
    def decompress(self, data: bytes) -> bytes: ...


def _decompressor(path: str) -> _Decompressor:
    """An incremental decompressor for the index's compression: apt's lists are read in
    compressed chunks and never held whole (a Debian main index is 50 MB decompressed)."""
    if path.endswith(".lz4"):
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor()  # type: ignore[no-any-return]
    if path.endswith(".gz"):
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    if path.endswith(".xz"):
        return lzma.LZMADecompressor()
    if path.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj()  # type: ignore[no-any-return]
    return _Plain()


def _read_index(fs: RootFS, path: str, wanted: set[bytes]) -> list[Available] | Unavailable:
    st = fs.stat(path)
    if isinstance(st, Unavailable):
        return st
    if path.endswith(".zst"):
        try:
            import zstandard  # noqa: F401
        except ImportError:
            return Unavailable(path, "invalid", "zstd-compressed list and the zstandard module is not installed")
    found: list[Available] = []
    total = 0
    try:
        decompressor = _decompressor(path)
        with open(fs.local_path(path), "rb", buffering=0) as raw:
            carry = b""
            while True:
                chunk = raw.read(CHUNK)
                block = decompressor.decompress(chunk) if chunk else b""
                total += len(block)
                if total > LIST_LIMIT:
                    return Unavailable(path, "invalid", f"larger than {LIST_LIMIT} bytes decompressed; not read")
                if not chunk:
                    if getattr(decompressor, "eof", True) is False and total:
                        raise EOFError("compressed data ends before the end-of-stream marker")
                    found.extend(scan_packages(carry, wanted))
                    break
                data = carry + block if carry else block
                cut = data.rfind(b"\n\n")
                if cut < 0:
                    carry = data
                    continue
                found.extend(scan_packages(data[:cut], wanted))
                carry = data[cut + 2 :]
    except PermissionError:
        return Unavailable(path, "denied", "permission denied")
    except Exception as exc:  # a truncated or corrupt index: name it, go on with the others
        return Unavailable(path, "invalid", f"cannot decompress ({type(exc).__name__}: {exc})")
    return found


def _release_for(name: str, names: set[str]) -> str | None:
    """The InRelease/Release file whose prefix this index file name starts with (the longest)."""
    best = None
    for other in names:
        for suffix in ("_InRelease", "_Release"):
            if other.endswith(suffix):
                prefix = other[: -len(suffix)] + "_"
                if name.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                    best = (prefix, other)
    return best[1] if best else None


def _pins(fs: RootFS) -> list[Pin]:
    pins: list[Pin] = []
    paths = ["/etc/apt/preferences"]
    listing = fs.listdir("/etc/apt/preferences.d")
    for name in listing if isinstance(listing, list) else []:
        # apt_preferences(5): files without extension or ending in .pref; others are ignored
        if ("." not in name or name.endswith(".pref")) and all(c.isalnum() or c in "_-." for c in name):
            paths.append(f"/etc/apt/preferences.d/{name}")
    for path in paths:
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, str):
            pins.extend(parse_preferences(text, path))
    return pins


def _configured_sources(fs: RootFS) -> list[tuple[str, str]] | None:
    """(URI, suite) of the configured deb sources; None when no sources file exists at all (then
    every list file counts)."""
    entries: list[tuple[str, str]] = []
    found = False
    paths = [("/etc/apt/sources.list", False)]
    listing = fs.listdir("/etc/apt/sources.list.d")
    for name in listing if isinstance(listing, list) else []:
        if name.endswith(".list"):
            paths.append((f"/etc/apt/sources.list.d/{name}", False))
        elif name.endswith(".sources"):
            paths.append((f"/etc/apt/sources.list.d/{name}", True))
    for path, deb822 in paths:
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, str):
            found = True
            entries.extend(source_entries(text, deb822))
    return entries if found else None


def collect_apt_state(fs: RootFS, packages: list[Package], default_release: str | None) -> Maybe[AptState] | None:
    listing = fs.listdir(LISTS)
    if isinstance(listing, Unavailable):
        return None if listing.kind == "missing" else listing
    names = set(listing)
    sources = _configured_sources(fs)
    configured = None if sources is None else tuple(list_prefix(uri, suite) for uri, suite in sources)
    wanted = {p.name.encode() for p in packages if p.format == "deb"}
    releases: dict[str, Release] = {}
    offers: dict[tuple[str, str], list[Offer]] = defaultdict(list)
    problems: list[Unavailable] = []
    used, newest = [], 0.0
    for name in sorted(names):
        base = name
        for suffix in COMPRESSED:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        if not base.endswith("_Packages"):
            continue
        if configured is not None and not name.startswith(configured):
            continue  # a list of a source no longer configured: apt ignores it too
        release_name = _release_for(name, names)
        release = None
        if release_name is not None:
            if release_name not in releases:
                text = fs.read_text(f"{LISTS}/{release_name}", 64 * 1024 * 1024)
                if isinstance(text, Unavailable):
                    problems.append(text)
                    continue
                releases[release_name] = parse_release(text, site=name.split("_", 1)[0])
            release = releases[release_name]
        path = f"{LISTS}/{name}"
        items = _read_index(fs, path, wanted)
        if isinstance(items, Unavailable):
            problems.append(items)
            continue
        st = fs.stat(path)
        if not isinstance(st, Unavailable):
            newest = max(newest, st.st_mtime)
        used.append(path)
        for item in items:
            offers[(item.name, item.arch)].append(Offer(item.version, release))
    pins = _pins(fs)
    pending = []
    for pkg in packages:
        if pkg.format != "deb":
            continue
        available = offers.get((pkg.name, pkg.arch), [])
        if not available:
            continue
        chosen = candidate(pkg.name, pkg.version, available, pins, default_release)
        if chosen is None or chosen.version == pkg.version or chosen.release is None:
            continue
        same = [o.release for o in available if o.version == chosen.version and o.release is not None]
        security = any(r.security for r in same)
        origin = next((r for r in same if r.security), chosen.release)
        pending.append(PendingUpdate(pkg.name, pkg.arch, pkg.version, chosen.version, pkg.source, origin.describe(), security))
    updated = datetime.datetime.fromtimestamp(newest, datetime.UTC).isoformat(timespec="seconds") if newest else None
    security = any(is_security_source(uri, suite) for uri, suite in sources or ()) or any(r.security for r in releases.values())
    return AptState(lists=used, lists_updated=updated, pins=len(pins), pending=pending, problems=problems,
                    security_archive=security, sources=[f"{uri} {suite}" for uri, suite in sources or ()])



RPMDB_PATHS = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")


APK_INSTALLED = "/lib/apk/db/installed"


def collect_apk_packages(fs: RootFS) -> Maybe[list[Package]] | None:
    """Alpine's installed packages from apk's database; None when there is none."""
    if not fs.exists(APK_INSTALLED):
        return None
    text = fs.read_text(APK_INSTALLED, 256 * 1024 * 1024)
    if isinstance(text, Unavailable):
        return text
    return parse_apk_installed(text)


APK_CACHE = "/var/cache/apk"
APK_REPOSITORIES = "/etc/apk/repositories"
APK_REPOSITORIES_D = "/etc/apk/repositories.d"
MAX_APK_INDEXES = 64


def collect_apk_state(fs: RootFS, packages: list[Package]) -> Maybe[ApkState] | None:
    """Pending apk updates from the cached indexes (apk-repositories(5): apk stores each
    repository's index at /var/cache/apk); None when the host or guest has no apk packages.
    Every cached index counts, as apk reads them all: one left behind by a repository since
    removed from /etc/apk/repositories is not told apart (its file name is a hash of the URL)."""
    installed = [p for p in packages if p.format == "apk"]
    if not installed:
        return None
    repositories: list[str] = []
    for path in [APK_REPOSITORIES] + _apk_repository_lists(fs):
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, str):
            repositories.extend(parse_apk_repositories(text))
    listing = fs.listdir(APK_CACHE)
    if isinstance(listing, Unavailable):
        listing = []
    problems: list[Unavailable] = []
    newest: dict[str, tuple[str, str]] = {}
    used, updated = [], 0.0
    names = sorted(n for n in listing if n.startswith("APKINDEX.") and n.endswith(".tar.gz"))[:MAX_APK_INDEXES]
    for name in names:
        path = f"{APK_CACHE}/{name}"
        data = fs.read_bytes(path, INDEX_COMPRESSED_LIMIT)
        if isinstance(data, Unavailable):
            problems.append(data)
            continue
        try:
            offered, description = parse_apkindex_archive(data)
        except ApkIndexError as exc:
            problems.append(Unavailable(path, "invalid", str(exc)))
            continue
        used.append(path)
        st = fs.stat(path)
        if not isinstance(st, Unavailable):
            updated = max(updated, st.st_mtime)
        where = f"{name}{f' ({description})' if description else ''}"
        for offer in offered:
            known = newest.get(offer.name)
            if known is None or apk_compare(offer.version, known[0]) > 0:
                newest[offer.name] = (offer.version, where)
    pending = []
    for pkg in installed:
        found = newest.get(pkg.name)
        if found is not None and apk_compare(pkg.version, found[0]) < 0:
            pending.append(PendingUpdate(pkg.name, pkg.arch, pkg.version, found[0], pkg.source, found[1], False))
    stamp = datetime.datetime.fromtimestamp(updated, datetime.UTC).isoformat(timespec="seconds") if updated else None
    return ApkState(indexes=used, indexes_updated=stamp, repositories=repositories, pending=pending, problems=problems)


def _apk_repository_lists(fs: RootFS) -> list[str]:
    """apk-tools 3's /etc/apk/repositories.d/*.list (apk-repositories(5))."""
    listing = fs.listdir(APK_REPOSITORIES_D)
    return [f"{APK_REPOSITORIES_D}/{n}" for n in sorted(listing) if n.endswith(".list")][:100] if isinstance(listing, list) else []


def collect_rpm_packages(fs: RootFS) -> Maybe[list[Package]] | None:
    """Installed rpm packages from rpm's SQLite database (rpm >= 4.16: RHEL 9, Fedora 33+); None
    when the host has none. Read-only and without locking: the database is never written."""
    for path in RPMDB_PATHS:
        if not fs.exists(path):
            continue
        st = fs.stat(path)
        if isinstance(st, Unavailable):
            return st
        local = fs.local_path(path)
        rows = None
        # mode=ro sees what rpm left in the -wal file; a user who cannot open the -shm beside it
        # (or an offline copy without it) falls back to reading the main file as immutable.
        for options in ("mode=ro", "mode=ro&immutable=1"):
            try:
                conn = sqlite3.connect(f"file:{local}?{options}", uri=True, timeout=5)
                try:
                    rows = conn.execute("SELECT hnum, blob FROM Packages").fetchall()
                finally:
                    conn.close()
                break
            except sqlite3.DatabaseError as exc:
                error = exc
        if rows is None:
            if not os.access(local, os.R_OK):
                return Unavailable(path, "denied", "permission denied")
            return Unavailable(path, "invalid", f"not an rpm database ({error})")
        packages = []
        for hnum, blob in rows:
            try:
                header = parse_header(bytes(blob))
            except HeaderError:
                continue  # one damaged header must not hide the others
            name, version, release = header.get(NAME), header.get(VERSION), header.get(RELEASE)
            if not isinstance(name, str) or not isinstance(version, str) or not isinstance(release, str):
                continue
            epoch = header.get(EPOCH)
            evr = f"{epoch}:{version}-{release}" if isinstance(epoch, int) and epoch else f"{version}-{release}"
            source, source_version = source_name(str(header.get(SOURCERPM, ""))) if header.get(SOURCERPM) else (name, f"{version}-{release}")
            packages.append(Package(name, str(header.get(ARCH, "")), evr, source, source_version, "rpm"))
        return sorted(packages, key=lambda p: (p.name, p.arch))
    return None
