"""Alpine's apk: the installed-package database and apk's version order.

/lib/apk/db/installed is apk's own text database: one stanza per package, blank-line separated,
each line a one-letter field, a colon and the value (P name, V version, A architecture, o origin:
the aport, i.e. the source package advisories name; the Apk spec on wiki.alpinelinux.org lists
the letters). File lines (F, R, Z, a, M) follow a package's header and are skipped.

Versions follow apk-tools' src/version.c: {digits}{.digits}...{letter}{_suffix{digits}}...{-r
digits}. Written here from its rules (GPL code is not copied): a number after a dot with leading
zeros sorts below any plain number there; pre-release suffixes (alpha, beta, pre, rc) sort below
the bare version, post-release ones (cvs, svn, git, hg, p) above it; when one version ends where
the other goes on, the longer one is newer unless what follows is a pre-release suffix.
"""

from __future__ import annotations

from ..facts import Package

MAX_STANZAS = 200_000

# token kinds, in apk's order: a later kind may only follow an earlier one (with the three
# exceptions next_kind allows), and when two versions part, the one at the earlier kind is newer
_INVALID, _DIGIT_OR_ZERO, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _REVISION_NO, _END = -1, 0, 1, 2, 3, 4, 5, 6
_PRE = ("alpha", "beta", "pre", "rc")
_POST = ("cvs", "svn", "git", "hg", "p")


def parse_apk_installed(text: str) -> list[Package]:
    """Every package stanza with a name and a version; the others are skipped."""
    packages: list[Package] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        name, version = fields.get("P", ""), fields.get("V", "")
        if name and version and len(packages) < MAX_STANZAS:
            origin = fields.get("o") or name
            packages.append(Package(name, fields.get("A", ""), version, origin, version, "apk"))
        fields.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1 and key in "PVAo" and key not in fields:
            fields[key] = value.strip()
    flush()
    return packages


def _next_kind(kind: int, text: str, i: int) -> tuple[int, int]:
    """The kind of the token starting at text[i] after a token of `kind`, and where it starts."""
    if i >= len(text):
        return _END, i
    ch = text[i]
    if kind in (_DIGIT, _DIGIT_OR_ZERO) and "a" <= ch <= "z":
        new = _LETTER
    elif kind == _LETTER and ch.isdigit():
        new = _DIGIT
    elif kind == _SUFFIX and ch.isdigit():
        new = _SUFFIX_NO
    else:
        new = _INVALID
        if ch == ".":
            new = _DIGIT_OR_ZERO
        elif ch == "_":
            new = _SUFFIX
        elif ch == "-" and i + 1 < len(text) and text[i + 1] == "r":
            new = _REVISION_NO
            i += 1
        i += 1
    if new < kind and not ((new == _DIGIT_OR_ZERO and kind == _DIGIT) or (new == _SUFFIX and kind == _SUFFIX_NO)
                           or (new == _DIGIT and kind == _LETTER)):
        new = _INVALID
    return new, i


def _token(kind: int, text: str, i: int) -> tuple[int, int, int]:
    """(value, kind of the next token, where it starts) for the token of `kind` at text[i]."""
    if i >= len(text):
        return 0, _END, i
    value, j, then = 0, i, _INVALID
    if kind == _DIGIT_OR_ZERO and text[i] == "0":
        while j < len(text) and text[j] == "0":
            j += 1
        value, then = -(j - i), _DIGIT
    elif kind in (_DIGIT_OR_ZERO, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        while j < len(text) and text[j].isdigit():
            j += 1
        value = int(text[i:j]) if j > i else 0
    elif kind == _LETTER:
        value, j = ord(text[i]), i + 1
    elif kind == _SUFFIX:
        pre = next((n for n, s in enumerate(_PRE) if text.startswith(s, i)), None)
        post = next((n for n, s in enumerate(_POST) if text.startswith(s, i)), None) if pre is None else None
        if pre is not None:
            value, j = pre - len(_PRE), i + len(_PRE[pre])
        elif post is not None:
            value, j = post, i + len(_POST[post])
        else:
            return -1, _INVALID, i
    else:
        return -1, _INVALID, i
    if j >= len(text):
        return value, _END, j
    if then != _INVALID:
        return value, then, j
    new, start = _next_kind(kind, text, j)
    return value, new, start


def apk_compare(a: str, b: str) -> int:
    """<0, 0 or >0 as apk orders versions a and b."""
    kind_a = kind_b = _DIGIT
    value_a = value_b = 0
    i = j = 0
    while kind_a == kind_b and kind_a not in (_END, _INVALID) and value_a == value_b:
        value_a, kind_a, i = _token(kind_a, a, i)
        value_b, kind_b, j = _token(kind_b, b, j)
    if value_a != value_b:
        return -1 if value_a < value_b else 1
    if kind_a == kind_b:
        return 0
    if kind_a == _SUFFIX and _token(_SUFFIX, a, i)[0] < 0:
        return -1
    if kind_b == _SUFFIX and _token(_SUFFIX, b, j)[0] < 0:
        return 1
    if kind_a > kind_b:
        return -1
    if kind_b > kind_a:
        return 1
    return 0


# A repository index as apk caches it (/var/cache/apk/APKINDEX.<hash>.tar.gz, apk-repositories(5)):
# two gzip streams, a signature tar segment cut before its end-of-archive blocks and the index tar
# holding DESCRIPTION and APKINDEX, whose stanzas are the installed database's (the Apk spec).
INDEX_COMPRESSED_LIMIT = 64 * 1024 * 1024
INDEX_LIMIT = 256 * 1024 * 1024


class ApkIndexError(ValueError):
    pass


def _gunzip_members(data: bytes, limit: int) -> bytes:
    """Every concatenated gzip member, refusing more than `limit` bytes out (a gzip bomb stops here)."""
    import zlib

    out: list[bytes] = []
    total = 0
    rest = data
    while rest:
        decomp = zlib.decompressobj(wbits=31)
        try:
            while not decomp.eof:
                # output still held by zlib once the input is all taken is asked for with b""
                chunk = decomp.decompress(rest, limit - total + 1)
                total += len(chunk)
                out.append(chunk)
                if total > limit:
                    raise ApkIndexError(f"expands beyond {limit} bytes")
                if not chunk and not decomp.unconsumed_tail:
                    break
                rest = decomp.unconsumed_tail
        except zlib.error as exc:
            raise ApkIndexError(f"not gzip data ({exc})") from None
        if not decomp.eof:
            raise ApkIndexError("truncated gzip stream")
        rest = decomp.unused_data
        if rest and not rest.startswith(b"\x1f\x8b"):
            break  # trailing padding after the last member, as gzip(1) tolerates
    return b"".join(out)


def parse_apkindex_archive(data: bytes, limit: int = INDEX_LIMIT) -> tuple[list[Package], str]:
    """(the index's packages, its DESCRIPTION) from a cached APKINDEX.tar.gz, read in memory:
    members are only read, never extracted, so no path inside the archive reaches a filesystem."""
    import io
    import tarfile

    if len(data) > INDEX_COMPRESSED_LIMIT:
        raise ApkIndexError(f"larger than {INDEX_COMPRESSED_LIMIT} bytes")
    raw = _gunzip_members(data, limit)
    index: bytes | None = None
    description = ""
    try:
        # ignore_zeros: a signature segment that kept its end-of-archive blocks still reads on
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:", ignore_zeros=True) as archive:
            for member in archive:
                if not member.isreg() or member.name not in ("APKINDEX", "DESCRIPTION"):
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                body = handle.read(limit)
                if member.name == "APKINDEX" and index is None:
                    index = body
                elif member.name == "DESCRIPTION":
                    description = body[:200].decode("utf-8", "replace").strip()
    except (tarfile.TarError, EOFError) as exc:
        raise ApkIndexError(f"not a tar archive ({exc})") from None
    if index is None:
        raise ApkIndexError("no APKINDEX member")
    return parse_apk_installed(index.decode("utf-8", "replace")), description


def parse_apk_repositories(text: str) -> list[str]:
    """The repository lines of /etc/apk/repositories (apk-repositories(5)): "[@tag ]location";
    comments and blank lines skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line[:300])
    return out
