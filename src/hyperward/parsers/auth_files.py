"""PAM stacks, shadow password fields, sudoers, pwquality and login.defs: pure text to data.
Password hashes are reduced to their scheme; they never leave this module."""

from __future__ import annotations

import re

MFA_MODULES = ("pam_u2f", "pam_google_authenticator", "pam_oath", "pam_duo", "pam_yubico", "pam_radius_auth", "pam_sss_otp")


def pam_lines(text: str) -> list[tuple[str, str, str, str]]:
    """(type, control, module, args) for each rule; "@include NAME" as ("@include", "", NAME, "")."""
    return [entry for entry, _ in _pam_entries(text)]


def pam_line_numbers(text: str) -> list[int]:
    """The line each of pam_lines' entries starts on (a continued rule: its first line)."""
    return [number for _, number in _pam_entries(text)]


def _pam_entries(text: str) -> list[tuple[tuple[str, str, str, str], int]]:
    out = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        line = pending + raw.split("#", 1)[0].rstrip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        line = line.strip()
        if not line:
            continue
        if line.startswith("@include"):
            parts = line.split()
            if len(parts) > 1:
                out.append((("@include", "", parts[1], ""), start))
            continue
        match = re.match(r"-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)", line)
        if match:
            kind, control, module, args = match.groups()
            out.append(((kind.lower(), control, module.rsplit("/", 1)[-1].removesuffix(".so"), args), start))
    return out


def hash_scheme(field: str) -> str:
    """The shadow field's scheme: empty, locked, des, md5, bcrypt, sha256, sha512, yescrypt, gost-yescrypt, scrypt, unknown."""
    if field == "":
        return "empty"
    if field[0] in "!*" or field in ("x", "NP"):
        return "locked"
    prefixes = {"$1$": "md5", "$2a$": "bcrypt", "$2b$": "bcrypt", "$2y$": "bcrypt", "$5$": "sha256", "$6$": "sha512",
                "$y$": "yescrypt", "$gy$": "gost-yescrypt", "$7$": "scrypt", "$sha1$": "sha1crypt", "_": "bsdi-des"}
    for prefix, name in prefixes.items():
        if field.startswith(prefix):
            return name
    if len(field) == 13 and re.fullmatch(r"[./0-9A-Za-z]{13}", field):
        return "des"
    return "unknown"


WEAK_SCHEMES = ("empty", "des", "bsdi-des", "md5", "sha1crypt", "unknown")


def shadow_schemes(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 2 and parts[0]:
            out[parts[0]] = hash_scheme(parts[1])
    return out


def entry_lines(text: str, uid: int | None = None) -> dict[str, int]:
    """name -> line of its entry in a colon file (/etc/shadow, /etc/passwd), the last entry winning
    as in shadow_schemes; with UID, only /etc/passwd entries with that UID."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split(":")
        if not parts[0] or len(parts) < 2:
            continue
        if uid is not None and not (len(parts) >= 7 and parts[2].lstrip("-").isdigit() and int(parts[2]) == uid):
            continue
        out[parts[0]] = number
    return out


def passwd_entries(text: str) -> list[tuple[str, int, str]]:
    """(user, uid, shell)."""
    out = []
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 7 and parts[2].lstrip("-").isdigit():
            out.append((parts[0], int(parts[2]), parts[6]))
    return out


_NOPASSWD_ALL = re.compile(r"NOPASSWD\s*:\s*(?:\w+\s*:\s*)*ALL\s*$")


def sudoers_nopasswd_all(text: str) -> list[tuple[int, str]]:
    """(line, who) for rules granting every command without a password: `who ... NOPASSWD: ALL`."""
    out = []
    logical, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0] if not raw.lstrip().startswith(("#include", "#includedir")) else ""
        if not logical:
            start = number
        if line.rstrip().endswith("\\"):
            logical += line.rstrip()[:-1] + " "
            continue
        logical += line
        rule = logical.strip()
        logical = ""
        if not rule or rule.startswith(("Defaults", "Cmnd_Alias", "User_Alias", "Host_Alias", "Runas_Alias", "@include")):
            continue
        if "=" in rule and _NOPASSWD_ALL.search(rule.split("=", 1)[1]):
            out.append((start, rule.split()[0]))
    return out


def sudoers_includes(text: str) -> list[tuple[str, str]]:
    """("dir" | "file", path) for #includedir/@includedir and #include/@include lines."""
    out = []
    for raw in text.splitlines():
        match = re.match(r"\s*[#@](includedir|include)\s+(\S+)", raw)
        if match:
            out.append(("dir" if match.group(1) == "includedir" else "file", match.group(2)))
    return out


def key_values(text: str, separator: str | None = None, lines: dict[str, int] | None = None) -> dict[str, str]:
    """pwquality.conf (`key = value`) and login.defs (`KEY value`). LINES, when given, receives
    each key's line (the last one, which wins)."""
    out = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if separator and separator in line:
            key, _, value = line.partition(separator)
        else:
            parts = line.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
        out[key.strip()] = value.strip()
        if lines is not None:
            lines[key.strip()] = number
    return out
