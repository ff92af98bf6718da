"""Small system configuration formats: apt.conf, modprobe.d, /etc/group, /etc/passwd,
/proc/cpuinfo, dpkg status, INI-style files."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..facts import CpuInfo, GroupEntry, ModprobeOption, Package

_APT_TOKEN = re.compile(
    r'\s+|//[^\n]*|/\*.*?\*/|#[^\n]*|"((?:[^"\\]|\\.)*)"|([{};])|([^\s{};"]+)', re.DOTALL
)


def parse_apt_conf(text: str) -> dict[str, str]:
    """apt.conf(5) scalar settings as lower-cased "a::b::c" -> value.

    Handles nested scopes (`APT { Periodic { X "1"; }; };`), `::`-joined names, comments
    (//, /* */, #) and `#clear`. List items (values without a name) are ignored."""
    out: dict[str, str] = {}
    scope: list[str] = []
    pending: list[str] = []  # words since the last ';' '{' or '}'
    for match in _APT_TOKEN.finditer(text):
        chunk = match.group(0)
        if chunk.startswith("#clear"):
            name = chunk[len("#clear"):].strip().rstrip(";").strip().lower()
            prefix = "::".join(scope + [name]) if name else ""
            for key in [k for k in out if k == prefix or k.startswith(prefix + "::")]:
                del out[key]
            continue
        if chunk.isspace() or chunk.startswith(("//", "/*", "#")):
            continue
        quoted, punct, word = match.group(1), match.group(2), match.group(3)
        if punct == "{":
            if pending:
                scope.append(pending[0].lower().strip(":"))
            else:
                scope.append("")
            pending = []
        elif punct == "}":
            if scope:
                scope.pop()
            pending = []
        elif punct == ";":
            if len(pending) >= 2:
                key = "::".join([s for s in scope if s] + [pending[0].lower()])
                out[key] = pending[1]
            pending = []
        elif quoted is not None:
            pending.append(quoted)
        elif word is not None:
            pending.append(word)
    return out


def apt_conf_part_ok(name: str) -> bool:
    """apt.conf(5): parts are read if the name has only [A-Za-z0-9_.-] and no extension or .conf."""
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        return False
    if "." in name:
        return name.endswith(".conf")
    return True


def parse_modprobe(text: str, path: str) -> list[ModprobeOption]:
    """`options MODULE param=value ...` lines of modprobe.d(5), continuation lines joined."""
    out: list[ModprobeOption] = []
    logical = text.replace("\\\n", " ")
    for line in logical.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "options":
            continue
        module = words[1].replace("-", "_")
        for word in words[2:]:
            name, _, value = word.partition("=")
            out.append(ModprobeOption(module, name.replace("-", "_"), value.strip('"'), path))
    return out


def _colon_records(text: str) -> Iterator[list[str]]:
    """Lines of /etc/group or /etc/passwd with at least four fields; NIS (+/-) and comments skipped."""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and fields[0] and not fields[0].startswith(("#", "+", "-")):
            yield fields


def parse_group(text: str) -> dict[str, GroupEntry]:
    out: dict[str, GroupEntry] = {}
    for fields in _colon_records(text):
        if fields[2].isdigit():
            out[fields[0]] = GroupEntry(int(fields[2]), [m for m in fields[3].strip().split(",") if m])
    return out


def parse_passwd_gids(text: str) -> dict[str, int]:
    """user -> primary gid. Hash fields are never kept."""
    return {fields[0]: int(fields[3]) for fields in _colon_records(text) if fields[3].isdigit()}


def parse_passwd_uids(text: str) -> dict[str, int]:
    return {fields[0]: int(fields[2]) for fields in _colon_records(text) if fields[2].isdigit()}


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor's vendor, family, model and microcode revision."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if values:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            values.setdefault(key.strip(), value.strip())

    def as_int(key: str) -> int | None:
        try:
            return int(values[key], 0)
        except (KeyError, ValueError):
            return None

    return CpuInfo(
        vendor=values.get("vendor_id"),
        family=as_int("cpu family"),
        model=as_int("model"),
        microcode=values.get("microcode"),
    )


def parse_dpkg_status(text: str) -> dict[str, str]:
    """name (":arch" for foreign-architecture duplicates) -> version, for installed packages only.

    A malformed stanza (no Package or no Version) is skipped, not fatal."""
    out: dict[str, str] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if not line or line[0] in " \t":
                continue
            key, sep, value = line.partition(":")
            if sep:
                fields[key] = value.strip()
        name, version, status = fields.get("Package"), fields.get("Version"), fields.get("Status", "")
        if not name or not version:
            continue
        if status.split()[-1:] != ["installed"]:
            continue
        key = name if name not in out else f"{name}:{fields.get('Architecture', '')}"
        out[key] = version
    return out


def parse_dpkg_packages(text: str, skipped: list[int] | None = None) -> list[Package]:
    """Installed packages with architecture and source: "Source: linux-signed-amd64 (6.1.119+1)"
    names the source package and, in parentheses, its version when it differs from the binary's.
    A malformed stanza (no Package or no Version) is skipped; its first line number goes to `skipped`."""
    out = []
    line_no = 1
    for stanza in re.split(r"(\n\s*\n)", text):
        start = line_no
        line_no += stanza.count("\n")
        if not stanza.strip():
            continue
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if not line or line[0] in " \t":
                continue
            key, sep, value = line.partition(":")
            if sep:
                fields[key] = value.strip()
        name, version, status = fields.get("Package"), fields.get("Version"), fields.get("Status", "")
        if not name or not version:
            if skipped is not None:
                skipped.append(start + len(stanza) - len(stanza.lstrip("\n")))
            continue
        if status.split()[-1:] != ["installed"]:
            continue
        source, _, source_version = fields.get("Source", name).partition(" ")
        out.append(Package(name, fields.get("Architecture", ""), version, source, source_version.strip("() ") or version, "deb"))
    return out


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """Python-configparser-like sections, tolerant: lower-cased keys, '#'/';' comments."""
    out: dict[str, dict[str, str]] = {}
    section = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
            out.setdefault(section, {})
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            out.setdefault(section, {})[key.strip().lower()] = value.strip()
    return out
