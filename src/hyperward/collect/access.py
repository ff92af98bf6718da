"""SSH server configuration (with Include and Match, and `sshd -T` on a live host), PAM stacks
of sshd and sudo, password hash schemes (never the hashes), UID 0 accounts, sudoers rules, and the
password policy."""

from __future__ import annotations

import fnmatch
import os

from ..facts import AccessFacts, MatchOverride, Maybe, PamStack, SourceLine, SshFacts, SudoRule
from ..model import Unavailable, is_missing
from ..parsers.auth_files import (
    MFA_MODULES,
    key_values,
    entry_lines,
    pam_line_numbers,
    pam_lines,
    passwd_entries,
    shadow_schemes,
    sudoers_includes,
    sudoers_nopasswd_all,
)
from ..parsers.sshd import (
    Directive,
    effective,
    include_patterns,
    parse_sshd_t,
    split_line,
)
from . import commands
from .fs import RootFS

SSHD_CONFIG = "/etc/ssh/sshd_config"
MAX_DEPTH = 16
SSHD_T_TIMEOUT = 10


def _glob(fs: RootFS, pattern: str) -> list[str]:
    directory, _, name = pattern.rpartition("/")
    if not any(c in name for c in "*?["):
        return [pattern]
    listing = fs.listdir(directory or "/")
    return [f"{directory}/{n}" for n in sorted(listing) if fnmatch.fnmatchcase(n, name)] if isinstance(listing, list) else []


def _directives(fs: RootFS, path: str, match: str | None, depth: int, problems: list[Unavailable]) -> list[Directive]:
    text = fs.read_text(path, 1024 * 1024)
    if isinstance(text, Unavailable):
        if depth and text.kind != "missing":
            problems.append(text)
        return [] if depth else text  # type: ignore[return-value]
    out: list[Directive] = []
    for number, line in enumerate(text.splitlines(), 1):
        parsed = split_line(line)
        if parsed is None:
            continue
        keyword, value = parsed
        if keyword == "match":
            match = None if value.lower() == "all" else value
            continue
        if keyword == "include":
            if depth >= MAX_DEPTH:
                problems.append(Unavailable(path, "invalid", f"line {number}: Include nested more than {MAX_DEPTH} deep"))
                continue
            for pattern in include_patterns(value):
                for included in _glob(fs, pattern):
                    nested = _directives(fs, included, match, depth + 1, problems)
                    out.extend(nested if isinstance(nested, list) else [])
            continue
        out.append(Directive(keyword, value, path, number, match))
    return out


def sshd_t_command(fs: RootFS) -> list[str] | None:
    """Only on the live host, as root, with the host's own sshd: it reads the configuration and
    host keys and prints the result; it changes nothing."""
    binary = commands.find("sshd")
    if not fs.live or binary is None or os.geteuid() != 0:
        return None
    return [binary, "-T"]


def _sshd_t(fs: RootFS) -> Maybe[dict[str, str]] | None:
    cmd = sshd_t_command(fs)
    if cmd is None:
        return None
    out = commands.run(cmd, "sshd -T", timeout=SSHD_T_TIMEOUT)
    if isinstance(out, Unavailable):
        # sshd installed but not running (no /run/sshd): the files are all there is
        return None if "privilege separation directory" in out.reason else out
    return parse_sshd_t(out)


def collect_ssh(fs: RootFS) -> Maybe[SshFacts] | None:
    problems: list[Unavailable] = []
    directives = _directives(fs, SSHD_CONFIG, None, 0, problems)
    if isinstance(directives, Unavailable):
        return None if is_missing(directives) else directives
    result = effective(directives)
    overrides = [MatchOverride(criteria, d.keyword, d.value, f"{d.file}:{d.line}") for criteria, block in result.matches for d in block]
    return SshFacts(SSHD_CONFIG, result.values, result.sources, overrides, _sshd_t(fs), problems)


def collect_pam(fs: RootFS, service: str) -> Maybe[PamStack]:
    modules: list[str] = []
    seen: set[str] = set()

    def walk(name: str, depth: int) -> Unavailable | None:
        path = f"/etc/pam.d/{name}"
        if name in seen or depth > MAX_DEPTH:
            return None
        seen.add(name)
        text = fs.read_text(path, 256 * 1024)
        if isinstance(text, Unavailable):
            return text
        for kind, control, module, _ in pam_lines(text):
            if kind == "@include":
                problem = walk(module, depth + 1)
                if problem is not None and not is_missing(problem):
                    return problem
            elif kind == "auth" and control not in ("optional",):
                modules.append(module)
        return None

    problem = walk(service, 0)
    if problem is not None:
        return problem
    mfa = [m for m in modules if m in MFA_MODULES]
    return PamStack(service, modules, mfa)


def collect_password_stack(fs: RootFS, rule_lines: dict[str, SourceLine] | None = None) -> Maybe[dict[str, str]]:
    """The `password` rules every passwd change runs through: Debian's common-password (Red Hat's
    system-auth), includes followed; module name -> its arguments (the last rule of a module wins).
    RULE_LINES, when given, receives the file and line of each module's winning rule."""
    first: Unavailable | None = None
    for start in ("common-password", "system-auth"):
        modules: dict[str, str] = {}
        at: dict[str, SourceLine] = {}
        seen: set[str] = set()

        def walk(name: str, depth: int) -> Unavailable | None:
            if name in seen or depth > MAX_DEPTH:
                return None
            seen.add(name)
            text = fs.read_text(f"/etc/pam.d/{name}", 256 * 1024)
            if isinstance(text, Unavailable):
                return text
            for (kind, _control, module, args), number in zip(pam_lines(text), pam_line_numbers(text), strict=True):
                if kind == "@include":
                    walk(module, depth + 1)
                elif kind == "password":
                    modules[module] = args
                    at[module] = SourceLine(f"/etc/pam.d/{name}", number)
            return None

        problem = walk(start, 0)
        if problem is None:
            if rule_lines is not None:
                rule_lines.update(at)
            return modules
        if not is_missing(problem):
            return problem
        first = first or problem
    assert first is not None
    return first


def _sudo_rules(fs: RootFS) -> Maybe[list[SudoRule]]:
    rules: list[SudoRule] = []
    pending = ["/etc/sudoers"]
    seen: set[str] = set()
    while pending:
        path = pending.pop(0)
        if path in seen:
            continue
        seen.add(path)
        text = fs.read_text(path, 1024 * 1024)
        if isinstance(text, Unavailable):
            if path == "/etc/sudoers" and is_missing(text):
                return []
            if not is_missing(text):
                return text
            continue
        rules.extend(SudoRule(path, line, who) for line, who in sudoers_nopasswd_all(text))
        for kind, target in sudoers_includes(text):
            target = target if target.startswith("/") else f"/etc/{target}"
            if kind == "file":
                pending.append(target)
                continue
            listing = fs.listdir(target)
            if isinstance(listing, list):
                # sudoers(5): files in an includedir ending in '~' or containing '.' are skipped
                pending.extend(f"{target}/{n}" for n in listing if "." not in n and not n.endswith("~"))
    return rules


def collect_access(fs: RootFS) -> AccessFacts:
    shadow = fs.read_text("/etc/shadow", 16 * 1024 * 1024)
    passwd = fs.read_text("/etc/passwd", 16 * 1024 * 1024)
    entries = passwd_entries(passwd) if isinstance(passwd, str) else []
    pwquality = fs.read_text("/etc/security/pwquality.conf", 256 * 1024)
    quality_lines: dict[str, int] = {}
    quality: Maybe[dict[str, str]] = pwquality if isinstance(pwquality, Unavailable) else key_values(pwquality, "=", quality_lines)
    minlen_at = SourceLine("/etc/security/pwquality.conf", quality_lines["minlen"]) if "minlen" in quality_lines else None
    if isinstance(quality, dict):
        listing = fs.listdir("/etc/security/pwquality.conf.d")
        for name in listing if isinstance(listing, list) else []:
            if name.endswith(".conf"):
                text = fs.read_text(f"/etc/security/pwquality.conf.d/{name}", 256 * 1024)
                if isinstance(text, str):
                    dropin_lines: dict[str, int] = {}
                    quality.update(key_values(text, "=", dropin_lines))
                    if "minlen" in dropin_lines:
                        minlen_at = SourceLine(f"/etc/security/pwquality.conf.d/{name}", dropin_lines["minlen"])
    defs = fs.read_text("/etc/login.defs", 256 * 1024)
    defs_lines: dict[str, int] = {}
    rule_lines: dict[str, SourceLine] = {}
    lines = {"/etc/shadow": entry_lines(shadow) if isinstance(shadow, str) else {},
             "/etc/passwd": entry_lines(passwd, uid=0) if isinstance(passwd, str) else {},
             "/etc/login.defs": defs_lines}
    return AccessFacts(
        ssh=collect_ssh(fs),
        pam={service: collect_pam(fs, service) for service in ("sshd", "sudo")},
        password_schemes=shadow if isinstance(shadow, Unavailable) else shadow_schemes(shadow),
        login_shells={user: shell for user, _, shell in entries},
        uid0=[user for user, uid, _ in entries if uid == 0],
        nopasswd_all=_sudo_rules(fs),
        pwquality=quality,
        login_defs=defs if isinstance(defs, Unavailable) else key_values(defs, lines=defs_lines),
        password_modules=collect_password_stack(fs, rule_lines),
        lines={path: found for path, found in lines.items() if found},
        password_rules=rule_lines,
        pwquality_minlen_at=minlen_at,
    )

