"""VMware's dictionary files: .vmx, /etc/vmware/config, /etc/vmware/settings and esx.conf.

The grammar is VMware's own low-level dictionary format, as open-vm-tools publishes it
(lib/dict/dictll.c, DictLL_UnmarshalLine): one `name = value` or `name = "quoted value"` per line,
optional spaces and tabs, `#` starts a comment, a name holds no whitespace, `=` or `#`. A line
that does not fit is kept by VMware as it is and ignored here (counted, never an error). Values
are unescaped with `|` followed by two hex digits (Escape_Undo('|'): `|22` is `"`, `|7C` is `|`);
a `|` not followed by two hex digits stays as it is.

Names are case-insensitive (libvirt's VMX reader compares them with STRCASEEQ; ESXi accepts
`isolation.tools.copy.disable` in any case), so they are keyed lower-cased here. A name given
twice is ambiguous: VMware's dictionary loader stores each line in turn, so the last one wins,
while libvirt's reader returns the first. The last value is used and every name whose copies
disagree is reported, so a check can say the file is ambiguous instead of trusting either.

A .vmx declares its encoding on a `.encoding = "..."` line (ESXi 7/8 and Workstation write
"UTF-8"; older files "windows-1252" or a CJK code page); the bytes are decoded with it, as
libvirt does (virVMXConvertToUTF8). Without the line UTF-8 is assumed.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import field

from ...records import frozen

UTF8_BOM = b"\xef\xbb\xbf"
_WS = " \t"
_HEX = "0123456789abcdefABCDEF"
_ENCODING_LINE = re.compile(rb'^[ \t]*\.encoding[ \t]*=[ \t]*"?([A-Za-z0-9_.:\-]{1,40})"?', re.MULTILINE | re.IGNORECASE)


class ParseError(Exception):
    """A file that cannot be read as a VMware dictionary at all (undecodable bytes)."""


@frozen
class Dictionary:
    """`values` by lower-cased name (last occurrence), `names` the spelling the file used,
    `conflicts` the names given more than once with different values (all values, in order)."""

    values: dict[str, str]
    names: dict[str, str]
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    ignored_lines: int = 0
    encoding: str = "UTF-8"
    #: lower-cased name -> line of its last occurrence (the one VMware uses)
    lines: dict[str, int] = field(default_factory=dict)


def unescape(value: str) -> str:
    """Escape_Undo('|') as a state machine: `|XY` with two hex digits becomes that byte (taken as
    a code point: VMware escapes only ASCII control characters, `"`, `|` and DEL); otherwise every
    character stays, and a character that broke an escape is not looked at again (`|4|22` stays
    as it is, as in VMware's own code)."""
    if "|" not in value:
        return value
    out: list[str] = []
    state = 0
    start = 0
    high = 0
    for index, ch in enumerate(value):
        if state == 0:
            if ch == "|":
                state = 1
        elif state == 1:
            if ch in _HEX:
                high = int(ch, 16)
                state = 2
            else:
                state = 0
        else:
            if ch in _HEX:
                out.append(value[start:index - 2])
                out.append(chr(high << 4 | int(ch, 16)))
                start = index + 1
            state = 0
    out.append(value[start:])
    return "".join(out)


#: DictLL_UnmarshalLine's grammar: name (no space, tab, '#' or '='), '=', then a quoted value (no
#: '"' inside) or a bare one (no space, tab or '#', not starting with '"'), then only a comment
_LINE = re.compile(r'[ \t]*([^ \t#=]+)[ \t]*=[ \t]*(?:"([^"]*)"|(?!")([^ \t#]*))[ \t]*(?:#.*)?')


def parse_line(line: str) -> tuple[str, str] | None:
    """(name, raw value) of a well-formed line, None for a comment, blank or malformed line."""
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    quoted = match.group(2)
    return match.group(1), quoted if quoted is not None else match.group(3)


#: the same grammar over a whole text, one match per well-formed line
_LINES = re.compile(r'^[ \t]*([^ \t#=\r\n]+)[ \t]*=[ \t]*(?:"([^"\n]*)"|(?!")([^ \t#\r\n]*))[ \t]*(?:#[^\n]*)?\r?$', re.MULTILINE)
#: lines that are neither blank nor a comment
_CONTENT = re.compile(r'^[ \t]*[^ \t#\r\n]', re.MULTILINE)


def parse_dictionary_text(text: str, encoding: str = "UTF-8") -> Dictionary:
    values: dict[str, str] = {}
    names: dict[str, str] = {}
    seen: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    matched = 0
    line, counted = 1, 0
    for match in _LINES.finditer(text):
        matched += 1
        line += text.count("\n", counted, match.start())
        counted = match.start()
        name, quoted, bare = match.groups()
        raw = quoted if quoted is not None else bare
        key = name.lower()
        value = unescape(raw) if "|" in raw else raw
        if key in values:
            seen.setdefault(key, [values[key]]).append(value)
        values[key] = value
        names[key] = name
        lines[key] = line
    ignored = len(_CONTENT.findall(text)) - matched
    conflicts = {k: v for k, v in seen.items() if len(set(v)) > 1}
    return Dictionary(values, names, conflicts, ignored, encoding, lines)


def declared_encoding(data: bytes) -> str | None:
    match = _ENCODING_LINE.search(data[:64 * 1024])
    return match.group(1).decode("ascii") if match else None


def decode(data: bytes) -> tuple[str, str]:
    """The text of a dictionary file and the encoding it was decoded with; ParseError when the
    declared encoding is unknown or the bytes do not fit it."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if b"\0" in data:
        raise ParseError("contains binary data (NUL bytes), expected a VMware dictionary file")
    declared = declared_encoding(data)
    encoding = declared or "UTF-8"
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise ParseError(f".encoding {encoding!r} is not an encoding this system knows") from None
    try:
        return data.decode(codec.name), encoding
    except UnicodeDecodeError as exc:
        how = f"declared .encoding {declared!r}" if declared else "UTF-8 (no .encoding line)"
        raise ParseError(f"byte {exc.start} is not valid in {how}") from None


def parse_dictionary(data: bytes) -> Dictionary:
    text, encoding = decode(data)
    return parse_dictionary_text(text, encoding)


def is_true(value: str | None) -> bool | None:
    """VMware's booleans: TRUE/FALSE in any case (also 1/0, yes/no as the vmx accepts them);
    None for anything else."""
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("true", "1", "yes", "on"):
        return True
    if v in ("false", "0", "no", "off"):
        return False
    return None


def adv_settings(esx_conf: Dictionary) -> dict[str, str]:
    """VMkernel and UserVars advanced options from esx.conf's `/adv/<Group>/<Name>` paths, as the
    API names them (`Mem.ShareForceSalting`, `UserVars.ESXiShellTimeOut`): esxcli's option path
    `/Mem/ShareForceSalting` under /adv. Keys keep the file's spelling."""
    out: dict[str, str] = {}
    for key, value in esx_conf.values.items():
        if not key.startswith("/adv/"):
            continue
        spelled = esx_conf.names[key][len("/adv/"):]
        parts = [p for p in spelled.split("/") if p]
        if len(parts) >= 2:
            out[".".join(parts)] = value
    return out


def parse_hostd_config(text: str) -> dict[str, str]:
    """hostd's /etc/vmware/hostd/config.xml flattened to the advanced-option names hostd
    exposes for it: `<config><plugins><solo><enableMob>false` is
    `Config.HostAgent.plugins.solo.enableMob`. Parsed through defusedxml (no entities, no DTD)."""
    import xml.etree.ElementTree as ET

    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException

    try:
        root = DET.fromstring(text)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ParseError(f"not well-formed XML ({exc})") from None
    if root.tag != "config":
        raise ParseError(f"root element <{root.tag[:40]}>, expected <config>")
    out: dict[str, str] = {}

    def walk(node: ET.Element, path: list[str], depth: int) -> None:
        if depth > 16:
            return
        children = list(node)
        if not children:
            out[".".join(["Config.HostAgent", *path])] = (node.text or "").strip()
            return
        for child in children:
            if isinstance(child.tag, str):
                walk(child, [*path, child.tag], depth + 1)

    for child in root:
        if isinstance(child.tag, str):
            walk(child, [child.tag], 1)
    return out
