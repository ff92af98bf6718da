"""AIDE's selection rule language (aide.conf(5)): which paths a set of `/`, `!` and `=` rules
selects, judged with a budget, since the rules come from the audited image and Python's regex
engine backtracks exponentially on nested quantifiers. Pure: rules in, verdicts out."""

from __future__ import annotations

import re
import re._constants as _sre  # type: ignore[import-not-found]
import re._parser as _sre_parser  # type: ignore[import-not-found]
import time
from collections.abc import Iterable

POSIX_CLASSES = {"[:digit:]": "0-9", "[:alnum:]": "0-9A-Za-z", "[:alpha:]": "A-Za-z", "[:xdigit:]": "0-9A-Fa-f",
                 "[:lower:]": "a-z", "[:upper:]": "A-Z", "[:space:]": r"\s"}
AIDE_BUDGET_S = 2.0
MAX_UNBOUNDED_REPEATS = 6
MAX_RULE_LENGTH = 4096


def _hazard(pattern: str) -> str | None:
    """Why a regex from the audited image might backtrack for seconds (Python's re has no
    time limit), or None: a group repeated a variable number of times holding another such
    repeat or an alternation (`(a+)+$`, `(a|a)*b`), a backreference, or many variable repeats. Such a rule is judged
    unknown, never run."""
    if len(pattern) > MAX_RULE_LENGTH:
        return f"longer than {MAX_RULE_LENGTH} characters"
    try:
        tree = _sre_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return None  # invalid: compiling fails too and the rule is ignored as before
    repeats = 0

    def walk(items: Iterable[tuple[object, object]], in_repeat: bool) -> str | None:
        nonlocal repeats
        for op, av in items:
            found: str | None = None
            if op in (_sre.GROUPREF, _sre.GROUPREF_EXISTS):
                return "backreference"
            if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT):
                # Only a variable count ({2,5}, +, *) can split a string many ways; an exact
                # one ({4}, as in UUID rules) cannot.
                lo: int
                hi: int
                body: Iterable[tuple[object, object]]
                lo, hi, body = av  # type: ignore[misc]
                variable = hi > 1 and hi != lo
                if variable:
                    if in_repeat:
                        return "nested quantifiers"
                    repeats += 1
                found = walk(body, in_repeat or variable)
            elif op is _sre.BRANCH:
                if in_repeat:
                    return "alternation under a quantifier"
                for alternative in av[1]:  # type: ignore[index]
                    found = found or walk(alternative, in_repeat)
            elif op is _sre.SUBPATTERN:
                found = walk(av[3], in_repeat)  # type: ignore[index]
            elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
                found = walk(av[1], in_repeat)  # type: ignore[index]
            elif op is _sre.ATOMIC_GROUP:
                found = walk(av, in_repeat)  # type: ignore[arg-type]
            if found:
                return found
        return None

    found = walk(tree, False)
    if found is None and repeats > MAX_UNBOUNDED_REPEATS:
        found = f"more than {MAX_UNBOUNDED_REPEATS} variable repeats"
    return found


def _posix(pattern: str) -> str:
    for cls, repl in POSIX_CLASSES.items():
        pattern = pattern.replace(cls, repl)
    return pattern


def _regex(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(_posix(pattern))
    except re.error:
        return None


_LITERAL = re.compile(r"[^\\.^$*+?()\[\]{}|@]*")


def _could_match(pattern: str, path: str) -> bool:
    literal = _LITERAL.match(pattern).group(0)  # type: ignore[union-attr]
    return path.startswith(literal) or literal.startswith(path)


class AideSelection:
    """AIDE's selection rules of one image, evaluated within a time budget. A rule that could
    backtrack catastrophically (see _hazard), or that the budget no longer covers, is unknown:
    the paths it could decide get None instead of a guess, and `unknown` names it and why."""

    def __init__(self, rules: list[tuple[str, str]], budget_s: float = AIDE_BUDGET_S) -> None:
        self.rules = rules
        self.deadline = time.monotonic() + budget_s
        self.budget_s = budget_s
        self.cache: dict[str, re.Pattern[str] | str | None] = {}
        self.unknown: dict[str, str] = {}

    def _rx(self, kind: str, pattern: str) -> re.Pattern[str] | str | None:
        """The compiled rule, None for an invalid one (ignored, as before), or why it is unknown."""
        if kind == "?":
            return pattern
        if pattern not in self.cache:
            problem = _hazard(_posix(pattern))
            self.cache[pattern] = problem if problem is not None else _regex(pattern)
        compiled = self.cache[pattern]
        if compiled is not None and not isinstance(compiled, str) and time.monotonic() > self.deadline:
            return f"not evaluated: the {self.budget_s} s budget for this image's AIDE rules was spent"
        return compiled

    def _unknown(self, kind: str, pattern: str, why: str) -> None:
        if kind == "?":
            pattern, why = pattern.split("\n", 1)
            self.unknown.setdefault(pattern, why)
        else:
            self.unknown.setdefault(f"{'' if kind == '/' else kind}{pattern[:200]}", why)

    def covers(self, path: str) -> bool | None:
        """A path is checked when a selection regex matches it from the start (or an equals rule
        names it) and no negative rule matches it or a parent directory."""
        ancestors = [path[: i] for i in range(len(path), 0, -1) if i == len(path) or path[i] == "/"]
        # A rule whose literal start diverges from the path cannot match it: skip compiling it.
        rules = [(k, p) for k, p in self.rules if k == "?" or _could_match(p, path)]
        excluded_maybe = False
        for kind, pattern in rules:
            if kind in "!?":
                r = self._rx(kind, pattern)
                if isinstance(r, str):
                    self._unknown(kind, pattern, r)
                    excluded_maybe = True
                elif r is not None and any(r.fullmatch(a) or (not pattern.endswith("$") and r.match(a)) for a in ancestors):
                    return False
        selected: bool | None = False
        for kind, pattern in rules:
            if kind not in "/=":
                continue
            r = self._rx(kind, pattern)
            if isinstance(r, str):
                self._unknown(kind, pattern, r)
                selected = None
                continue
            if r is None:
                continue
            if (kind == "=" and r.fullmatch(path)) or (kind == "/" and (r.fullmatch(path) or (not pattern.endswith("$") and r.match(path)))):
                selected = True
                break
        if selected is True:
            return None if excluded_maybe else True
        return None if selected is None or (excluded_maybe and any(k == "?" for k, _ in rules)) else False


def aide_covers(rules: list[tuple[str, str]], path: str, compiled: dict[str, re.Pattern[str] | None] | None = None) -> bool | None:
    """One path against the rules: True, False, or None when an unknown rule could decide it."""
    return AideSelection(rules).covers(path)


