"""Kernel command lines: /proc/cmdline, /etc/kernel/cmdline and GRUB's defaults file."""

from __future__ import annotations

import re
import shlex


def parse_cmdline(text: str) -> list[str]:
    """Split like the kernel's next_arg(): whitespace separates, double quotes group and are
    dropped. Everything after a bare `--` belongs to init, not to the kernel."""
    tokens: list[str] = []
    current: list[str] = []
    in_quote = False
    started = False
    for ch in text:
        if ch == '"':
            in_quote = not in_quote
            started = True
            continue
        if ch.isspace() and not in_quote:
            if started:
                tokens.append("".join(current))
                current, started = [], False
            continue
        current.append(ch)
        started = True
    if started:
        tokens.append("".join(current))
    if "--" in tokens:
        tokens = tokens[: tokens.index("--")]
    return tokens


def split_param(token: str) -> tuple[str, str | None]:
    """(name, value) with the name normalized as the kernel compares it: '-' equals '_'."""
    name, sep, value = token.partition("=")
    return name.replace("-", "_").lower(), (value if sep else None)


_GRUB_ASSIGN = re.compile(r"^\s*(?:export\s+)?(GRUB_CMDLINE_[A-Z_]+)=(.*)$")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
LINUX_VARIABLES = ("GRUB_CMDLINE_LINUX", "GRUB_CMDLINE_LINUX_DEFAULT")
#: what grub-mkconfig's 20_linux_xen hands Xen itself for a normal entry (the recovery entry
#: drops the _DEFAULT one)
XEN_VARIABLES = ("GRUB_CMDLINE_XEN", "GRUB_CMDLINE_XEN_DEFAULT")


def grub_variables(files: list[tuple[str, str]], names: tuple[str, ...]) -> dict[str, str]:
    """The values the named GRUB_CMDLINE_* variables end with after grub-mkconfig sources
    /etc/default/grub then /etc/default/grub.d/*.cfg (in that order, as `files` lists them): later
    assignments win and may extend earlier ones ("$GRUB_CMDLINE_LINUX spectre_v2=on")."""
    env: dict[str, str] = {name: "" for name in names}
    for _path, text in files:
        for line in text.splitlines():
            match = _GRUB_ASSIGN.match(line)
            if not match or match.group(1) not in env:
                continue
            name, raw = match.groups()
            expanded = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), raw)
            try:
                words = shlex.split(expanded, comments=True)
            except ValueError:
                words = expanded.strip("\"'").split()
            env[name] = " ".join(words)
    return env


_PLACEHOLDER = re.compile("\x00(\\w+)\x00")


def grub_token_lines(files: list[tuple[str, str]]) -> dict[str, tuple[str, int]]:
    """token -> (file, line) of the GRUB_CMDLINE_LINUX* assignment that wrote each parameter of a
    normal boot entry, following the same sourcing and $VAR expansion as grub_variables, so a
    parameter carried forward by "$GRUB_CMDLINE_LINUX ..." keeps the line that first wrote it. A
    token whose origin is ambiguous (a variable glued into a word, quotes that regroup words, the
    same token twice from different lines) gets no line rather than a guessed one."""
    env: dict[str, list[tuple[str, tuple[str, int] | None]]] = {name: [] for name in LINUX_VARIABLES}
    for path, text in files:
        for number, line in enumerate(text.splitlines(), 1):
            match = _GRUB_ASSIGN.match(line)
            if not match or match.group(1) not in env:
                continue
            name, raw = match.groups()
            marked = _VAR.sub(lambda m: f"\x00{m.group(1) or m.group(2)}\x00", raw)
            try:
                words = shlex.split(marked, comments=True)
            except ValueError:
                words = marked.strip("\"'").split()
            value: list[tuple[str, tuple[str, int] | None]] = []
            for piece in (p for word in words for p in word.split()):
                whole = _PLACEHOLDER.fullmatch(piece)
                if whole:
                    value.extend(env.get(whole.group(1), []))
                elif _PLACEHOLDER.search(piece):
                    expanded = _PLACEHOLDER.sub(lambda m: " ".join(w for w, _ in env.get(m.group(1), [])), piece)
                    value.extend((w, None) for w in expanded.split())
                else:
                    value.append((piece, (path, number)))
            env[name] = value
    joined = env["GRUB_CMDLINE_LINUX"] + env["GRUB_CMDLINE_LINUX_DEFAULT"]
    if parse_cmdline(" ".join(w for w, _ in joined)) != [w for w, _ in joined]:
        return {}
    out: dict[str, tuple[str, int]] = {}
    ambiguous: set[str] = set()
    for word, origin in joined:
        if origin is None or (word in out and out[word] != origin):
            ambiguous.add(word)
        else:
            out[word] = origin
    return {word: origin for word, origin in out.items() if word not in ambiguous}


def parse_grub_defaults(files: list[tuple[str, str]]) -> list[str]:
    """The kernel parameters GRUB's defaults produce for a normal boot entry.

    `files` are /etc/default/grub then /etc/default/grub.d/*.cfg in the order grub-mkconfig sources
    them; later assignments win and may extend earlier ones ("$GRUB_CMDLINE_LINUX spectre_v2=on")."""
    env = grub_variables(files, LINUX_VARIABLES)
    return parse_cmdline(env["GRUB_CMDLINE_LINUX"] + " " + env["GRUB_CMDLINE_LINUX_DEFAULT"])
