"""Package version ordering: dpkg's (epoch:upstream-revision) and rpm's (epoch:version-release).

Debian's own libapt (python3-apt's apt_pkg.version_compare) is used when it is importable: it is
the implementation apt itself runs. The pure-Python fallbacks follow dpkg's lib/dpkg/version.c
(verrevcmp) and rpm's rpmio/rpmvercmp.c, and the tests hold them to the real `dpkg
--compare-versions` and to apt_pkg on thousands of version pairs from the apt lists.
"""

from __future__ import annotations

from collections.abc import Callable

try:
    import apt_pkg

    apt_pkg.init_system()
    _APT_COMPARE: Callable[[str, str], int] | None = apt_pkg.version_compare
except Exception:  # python3-apt missing or unusable: the fallback is exact too
    _APT_COMPARE = None


def _order_char(c: str) -> int:
    if c == "~":
        return -1
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def verrevcmp(a: str, b: str) -> int:
    """dpkg's comparison of one version part: digits numerically, letters before other symbols,
    '~' before everything including the end."""
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order_char(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order_char(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = (a[i] > b[j]) - (a[i] < b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_deb(version: str) -> tuple[int, str, str]:
    version = version.strip()
    epoch = 0
    if ":" in version:
        head, _, rest = version.partition(":")
        if head.isdigit():
            epoch, version = int(head), rest
    upstream, sep, revision = version.rpartition("-")
    if not sep:
        upstream, revision = version, ""
    return epoch, upstream, revision


def deb_compare_py(a: str, b: str) -> int:
    ea, ua, ra = _split_deb(a)
    eb, ub, rb = _split_deb(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return verrevcmp(ua, ub) or verrevcmp(ra, rb)


def deb_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg orders two Debian versions."""
    if _APT_COMPARE is not None:
        result = int(_APT_COMPARE(a, b))
        return (result > 0) - (result < 0)
    return deb_compare_py(a, b)


def rpmvercmp(a: str, b: str) -> int:
    """rpm's rpmio/rpmvercmp.c, line for line: alphanumeric segments, numbers beat letters, '~'
    sorts before anything (even the end), '^' after the base version but before anything longer."""
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)

    def skip(s: str, k: int) -> int:
        while k < len(s) and not (s[k].isascii() and s[k].isalnum()) and s[k] not in "~^":
            k += 1
        return k

    while i < la or j < lb:
        i, j = skip(a, i), skip(b, j)
        ca, cb = a[i] if i < la else "", b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        numeric = ca.isdigit()
        test = str.isdigit if numeric else (lambda c: c.isascii() and c.isalpha())
        si, sj = i, j
        while i < la and test(a[i]):
            i += 1
        while j < lb and test(b[j]):
            j += 1
        seg_a, seg_b = a[si:i], b[sj:j]
        if not seg_b:
            return 1 if numeric else -1
        if numeric:
            seg_a, seg_b = seg_a.lstrip("0"), seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def rpm_compare(a: str, b: str) -> int:
    """epoch:version-release as rpm orders them (a missing epoch is 0)."""

    def split(v: str) -> tuple[int, str, str]:
        epoch = 0
        if ":" in v:
            head, _, v = v.partition(":")
            epoch = int(head) if head.isdigit() else 0
        version, _, release = v.partition("-")
        return epoch, version, release

    ea, va, ra = split(a)
    eb, vb, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return rpmvercmp(va, vb) or (rpmvercmp(ra, rb) if ra and rb else 0)
