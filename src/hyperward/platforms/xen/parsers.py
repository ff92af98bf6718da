"""Xen's own formats: xl.cfg(5) domain configurations (and xl.conf(5), which uses the same
syntax), the spec strings inside them, the hypervisor's command line, EFI xen.cfg, `xl info` and
`xl list -l`.

The xl.cfg tokenizer follows libxlu's flex lexer and bison grammar (tools/libxl/libxlu_cfg_l.l,
libxlu_cfg_y.y), never eval: identifiers `[a-z][._0-9a-z]*` (xl.conf has vif.default.script), numbers `[0-9][0-9a-fx]*`, strings in
single or double quotes on one line with backslash escapes, `#` comments, `,` `[` `]` `=` `;`
`+=`, spaces and tabs. Anything else is a lexical error, and xl refuses the whole file on one, so
the parse fails with the line number. The characters `+-.():` outside a string are what libxlu
takes for Python: a config written for xm that uses Python expressions is refused by xl with
"looks like it contains Python code", and so is it here. Lists may span lines, nest and end with
a comma; a later assignment of a key replaces an earlier one; `+=` appends to a list.

The hypervisor's command line follows xen/common/kernel.c parse_params(): options split on
spaces, names compared exactly (`spec_ctrl` is not `spec-ctrl`), a `no-` prefix inverts a boolean
and hands a custom option the value "no", booleans spelled 1/0, on/no, yes/off, true/false,
enable/disable (parse_bool), and a later option overrides an earlier one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ...parsers import shell
from ...records import frozen

MAX_NESTING = 32


class ParseError(ValueError):
    """Input xl (or Xen) itself would refuse; the message names the line where it can."""


# --- xl.cfg(5) ------------------------------------------------------------------------------------


@dataclass
class XlConfig:
    """Scalars and lists by key; nested lists (vnuma, vsnd) are kept as one string per inner
    list, its items joined by commas. `lines` gives the line each key was last set on."""

    scalars: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return sorted({*self.scalars, *self.lists})


_IDENT = re.compile(r"[a-z][._0-9a-z]*")
_NUMBER = re.compile(r"[0-9][0-9a-fx]*")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_PYTHONISH = set("+-.():")


@frozen
class _Token:
    kind: str  # IDENT NUMBER STRING NEWLINE , [ ] = ; += EOF
    text: str
    line: int


def _dequote(body: str, line: int) -> str:
    """libxlu's xlu__cfgl_dequote: the escapes it knows, an error for any other."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        i += 1
        if ch != "\\":
            out.append(ch)
            continue
        nc = body[i]
        i += 1
        if nc in _ESCAPES:
            out.append(_ESCAPES[nc])
        elif nc == "x":
            digits = body[i:i + 2]
            if len(digits) != 2 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise ParseError(f"line {line}: invalid digit after backslash hex numerical character escape in quoted string")
            out.append(chr(int(digits, 16)))
            i += 2
        elif "0" <= nc <= "7":
            digits = nc
            while len(digits) < 3 and i < len(body) and "0" <= body[i] <= "7":
                digits += body[i]
                i += 1
            out.append(chr(int(digits, 8)))
        else:
            raise ParseError(f"line {line}: invalid character after backslash in quoted string")
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    line = 1
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            i += 1
        elif ch == "\n":
            out.append(_Token("NEWLINE", "\n", line))
            line += 1
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end  # the newline itself ends the statement
        elif ch in ",[]=;":
            out.append(_Token(ch, ch, line))
            i += 1
        elif ch == "+" and text.startswith("+=", i):
            out.append(_Token("+=", "+=", line))
            i += 2
        elif ch in "'\"":
            j = i + 1
            while j < n and text[j] != ch:
                if text[j] == "\n":
                    raise ParseError(f"line {line}: unterminated string (a quoted string ends on its own line)")
                if text[j] == "\\":
                    if j + 1 >= n or text[j + 1] == "\n":
                        raise ParseError(f"line {line}: unterminated string (a quoted string ends on its own line)")
                    j += 1
                j += 1
            if j >= n:
                raise ParseError(f"line {line}: unterminated string")
            out.append(_Token("STRING", _dequote(text[i + 1:j], line), line))
            i = j + 1
        else:
            ident = _IDENT.match(text, i)
            if ident:
                out.append(_Token("IDENT", ident.group(), line))
                i = ident.end()
                continue
            number = _NUMBER.match(text, i)
            if number:
                out.append(_Token("NUMBER", number.group(), line))
                i = number.end()
                continue
            if ch in _PYTHONISH:
                raise ParseError(f"line {line}: lexical error at {ch!r}: the file looks like it contains Python code "
                                 "(xm syntax); xl no longer supports arbitrary Python")
            what = "a carriage return (CRLF line ends)" if ch == "\r" else repr(ch)
            raise ParseError(f"line {line}: lexical error at {what}")
    out.append(_Token("EOF", "", line))
    return out


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def skip_newlines(self) -> None:
        while self.peek().kind == "NEWLINE":
            self.pos += 1

    def value(self, depth: int = 0) -> str | list[Any]:
        token = self.take()
        if token.kind in ("STRING", "NUMBER"):
            return token.text
        if token.kind != "[":
            raise ParseError(f"line {token.line}: syntax error: expected a string, a number or a list, found {_shown(token)}")
        if depth >= MAX_NESTING:
            raise ParseError(f"line {token.line}: lists nested deeper than {MAX_NESTING}")
        items: list[Any] = []
        self.skip_newlines()
        while self.peek().kind != "]":
            items.append(self.value(depth + 1))
            self.skip_newlines()
            sep = self.peek()
            if sep.kind == ",":
                self.pos += 1
                self.skip_newlines()
            elif sep.kind != "]":
                raise ParseError(f"line {sep.line}: syntax error: expected ',' or ']' in a list, found {_shown(sep)}")
        self.pos += 1
        return items


def _shown(token: _Token) -> str:
    if token.kind == "EOF":
        return "the end of the file (unclosed list?)"
    if token.kind == "NEWLINE":
        return "the end of the line"
    return repr(token.text[:40])


def _flatten(item: str | list[Any]) -> str:
    if isinstance(item, str):
        return item
    return ",".join(_flatten(i) for i in item)


def parse_xl_cfg(text: str) -> XlConfig:
    """An xl.cfg(5) file as xl reads it; ParseError for what xl would refuse."""
    parser = _Parser(_tokens(text))
    cfg = XlConfig()
    while True:
        parser.skip_newlines()
        token = parser.take()
        if token.kind == "EOF":
            return cfg
        if token.kind == ";":
            continue
        if token.kind != "IDENT":
            raise ParseError(f"line {token.line}: syntax error: expected a setting name, found {_shown(token)}")
        op = parser.take()
        if op.kind not in ("=", "+="):
            raise ParseError(f"line {op.line}: syntax error: expected '=' after {token.text}, found {_shown(op)}")
        value = parser.value()
        end = parser.peek()
        if end.kind not in ("NEWLINE", ";", "EOF"):
            raise ParseError(f"line {end.line}: syntax error: expected the end of the setting, found {_shown(end)}")
        key = token.text
        if isinstance(value, list):
            items = [_flatten(v) for v in value]
            if op.kind == "+=" and key in cfg.lists:
                items = cfg.lists[key] + items
            cfg.lists[key] = items
            cfg.scalars.pop(key, None)
        else:
            if op.kind == "+=":
                raise ParseError(f"line {op.line}: '+=' appends to a list; {key} is given a single value")
            cfg.scalars[key] = value
            cfg.lists.pop(key, None)
        cfg.lines[key] = token.line


def c_long(value: str | None) -> int | None:
    """strtol(value, &end, 0) that must consume the whole value, as xlu_cfg_get_long requires:
    0x hex, a leading 0 octal, else decimal. None when it is not a number (xl refuses it)."""
    if value is None:
        return None
    text = value.strip()
    sign = 1
    if text[:1] in "+-" and text:
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    try:
        if text[:2].lower() == "0x":
            return sign * int(text[2:], 16)
        if len(text) > 1 and text[0] == "0":
            return sign * int(text[1:], 8)
        return sign * int(text, 10)
    except ValueError:
        return None


def spec_string(spec: str) -> tuple[list[str], dict[str, str]]:
    """A SPEC_STRING (vif, vfb, pci, vtpm, p9, usbdev, channel): comma-separated KEY=VALUE
    settings, whitespace around them ignored, plus the positional items without '='."""
    positional: list[str] = []
    keyed: dict[str, str] = {}
    for part in spec.split(","):
        item = part.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if sep:
            keyed[key.strip()] = value.strip()
        else:
            positional.append(item)
    return positional, keyed


_VDEV = re.compile(r"^(?:xvd|hd|sd|vd)[a-z]+[0-9]*(?::(?:cdrom|disk))?$|^d[0-9]+(?:p[0-9]+)?$")
DISK_FORMATS = ("raw", "qcow", "qcow2", "vhd", "qed", "empty")
DISK_ACCESS = ("r", "ro", "w", "rw", "w!", "rw!")
#: xl-disk-configuration(5)'s bare flags (never a target)
DISK_FLAGS = ("trusted", "untrusted", "discard", "no-discard", "direct-io-safe", "colo")
#: the xm-era prefixes xl still accepts on a disk target ("phy:/dev/vg/x", "tap:aio:/img")
DISK_PREFIXES = ("phy:", "file:", "tap2:tapdisk:", "tap:tapdisk:", "tap2:", "tap:", "aio:", "qcow2:", "qcow:", "vhd:", "raw:")


@frozen
class DiskSpec:
    target: str
    format: str | None
    vdev: str | None
    readonly: bool
    cdrom: bool
    script: str | None
    backendtype: str | None
    #: `backend=`: the domain serving the disk (None: the toolstack domain, dom0)
    backend: str | None = None
    #: the `trusted`/`untrusted` flag (trusted by default)
    trusted: bool = True


def parse_disk_spec(spec: str) -> DiskSpec:
    """xl-disk-configuration(5): positional target, format, vdev, access (in that order when all
    are given, recognised by their shape otherwise) or keyword settings; the target is last when
    it is given as target=, since it may contain commas."""
    target_kw = None
    if "target=" in spec:
        head, _, target_kw = spec.partition("target=")
        spec = head
    positional, keyed = spec_string(spec)
    target = target_kw if target_kw is not None else keyed.get("target", "")
    fmt = keyed.get("format")
    vdev = keyed.get("vdev")
    access = keyed.get("access")
    cdrom = keyed.get("devtype") == "cdrom"
    rest = []
    trusted = True
    for item in positional:
        if item == "cdrom":
            cdrom = True
        elif item in DISK_FLAGS:
            if item in ("trusted", "untrusted"):
                trusted = item == "trusted"
        elif item in DISK_FORMATS and fmt is None:
            fmt = item
        elif item in DISK_ACCESS and access is None:
            access = item
        elif vdev is None and _VDEV.match(item):
            vdev = item
        else:
            rest.append(item)
    if not target and rest:
        target = rest[0]
    if vdev and vdev.endswith(":cdrom"):
        cdrom = True
        vdev = vdev[:-6]
    for prefix in DISK_PREFIXES:
        if target.startswith(prefix):
            target = target[len(prefix):]
            if prefix.startswith("tap") and ":" in target and not target.startswith("/"):
                target = target.split(":", 1)[1]
            break
    readonly = (access or "w") in ("r", "ro") or cdrom
    return DiskSpec(target, fmt, vdev, readonly, cdrom, keyed.get("script"), keyed.get("backendtype"),
                    keyed.get("backend") or None, trusted)


def parse_pci_spec(spec: str) -> tuple[str, dict[str, str]]:
    """xl-pci-configuration(5): `[DDDD:]BB:DD.F[@VSLOT],KEY=VALUE,...` (or `bdf=` in newer xl)."""
    positional, keyed = spec_string(spec)
    bdf = keyed.pop("bdf", positional[0] if positional else "")
    return bdf.split("@", 1)[0], keyed


# --- shell-style defaults files -------------------------------------------------------------------


def parse_shell_assignments(text: str) -> dict[str, str]:
    """/etc/default/xen and /etc/default/xendomains, as the init scripts source them."""
    try:
        return shell.assignments(text)
    except shell.ShellQuoteError as exc:
        raise ParseError(str(exc)) from None


# --- the hypervisor command line ------------------------------------------------------------------


def parse_bool(text: str) -> bool | None:
    """xen/common/kernel.c parse_bool(): None for anything else (Xen then rejects the option)."""
    if text in ("1", "on", "yes", "true", "enable"):
        return True
    if text in ("0", "no", "off", "false", "disable"):
        return False
    return None


def parse_boolean(name: str, item: str) -> bool | None:
    """parse_boolean(): a sub-option `name`, `no-name` or `name=<bool>`; None when `item` is not
    about `name` (or its value is not a boolean)."""
    value = True
    if item.startswith("no-"):
        value = False
        item = item[3:]
    if item == name:
        return value
    if item.startswith(name + "="):
        parsed = parse_bool(item[len(name) + 1:])
        return parsed  # `no-name=...` is undefined in Xen's own words; the value is what counts
    return None


def split_xen_cmdline(text: str) -> list[str]:
    """Xen splits its command line on spaces only; quotes mean nothing to it."""
    return [t for t in text.replace("\t", " ").replace("\n", " ").split(" ") if t]


@frozen
class Setting:
    """One option as Xen's parser sees it: the token, the option name, and its value (a boolean
    option's resolved truth in `flag`, a custom option's string in `value`)."""

    token: str
    value: str
    flag: bool | None
    index: int


def settings(tokens: list[str], name: str, *, boolean: bool) -> list[Setting]:
    """Every occurrence of option `name`, in command-line order (the last one counts). For a
    boolean option: `name` true, `no-name` false, `name=<bool>`, `no-name=<bool>` inverted; an
    invalid value is skipped as Xen skips it. For a custom option: `no-name` hands it "no"."""
    out: list[Setting] = []
    for index, token in enumerate(tokens):
        key, sep, value = token.partition("=")
        negated = key.startswith("no-")
        if (key[3:] if negated else key) != name:
            continue
        if boolean:
            parsed = parse_bool(value) if sep else True
            if parsed is None:
                continue
            out.append(Setting(token, value, parsed if not negated else not parsed, index))
        else:
            if negated:
                if sep:
                    continue  # parse_params refuses `no-opt=value` for a custom option
                value = "no"
            out.append(Setting(token, value, None, index))
    return out


def last_boolean(tokens: list[str], name: str) -> Setting | None:
    found = settings(tokens, name, boolean=True)
    return found[-1] if found else None


def custom_items(tokens: list[str], name: str) -> list[tuple[Setting, list[str]]]:
    """A custom option's occurrences with their comma-separated items (each applied in turn)."""
    return [(s, [i for i in s.value.split(",") if i]) for s in settings(tokens, name, boolean=False)]


def parse_efi_cfg(text: str) -> tuple[str | None, dict[str, dict[str, str]]]:
    """docs/misc/efi.pandoc xen.cfg: [sections] of key=value; [global] `default=` names the
    section xen.efi boots (the first other section when absent)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current[key.strip()] = value.strip()
    default = sections.get("global", {}).get("default")
    if default is None:
        default = next((s for s in sections if s != "global"), None)
    return default, sections


# --- xl info / xl list -l -------------------------------------------------------------------------


def parse_xl_info(text: str) -> dict[str, str]:
    """`xl info`: one `key : value` per line (keys padded to a column)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            out[key.strip()] = value.strip()
    if "xen_version" not in out and "xen_major" not in out:
        raise ParseError("not `xl info` output (no xen_version line)")
    return out


def parse_xl_list_json(text: str) -> list[dict[str, Any]]:
    """`xl list -l` in xl.conf's default output_format="json": an array of {domid, config}."""
    stripped = text.lstrip()
    if stripped.startswith("("):
        raise ParseError('printed SXP (xl.conf output_format="sxp"); only the JSON format is read')
    try:
        doc = json.loads(text) if stripped else []
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ParseError(f"not JSON ({exc})") from None
    if not isinstance(doc, list) or not all(isinstance(d, dict) for d in doc):
        raise ParseError("expected a JSON array of domains")
    return doc
