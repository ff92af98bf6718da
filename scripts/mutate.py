"""A small mutation tester: does the suite notice when a check's logic changes?

Each mutant is one small edit a real bug could make: a comparison flipped (< to <=, == to !=, in
to not in, is to is not), and/or swapped, a condition negated or its branch dropped, an integer
constant moved by one, an octal mode with one permission bit flipped, True/False swapped, one
element dropped from a list/tuple/set literal. Edits are made on the source text (the operator
token or the node's own span, newlines kept), so line numbers stay right for tests that name them.

The tree is never modified: the checkout (src/, tests/, docs/, scripts/, pyproject.toml; .venv as
a symlink) is copied to a temporary directory once; each mutant is written into the copy and the
tests that cover that module run there (PYTHONPATH points at the copy's src, bytecode is not
written), then the copy's file is restored. Edits to the checkout during a run do not reach it. The default selection is
src/hyperward/checks/, src/hyperward/guests/checks.py and src/hyperward/parsers/, the nft
reachability evaluator (parsers/nft.py) included: its mutants run against the tests that need no
root (the kernel's recorded listings and verdicts in tests/fixtures/reach-recorded/, the offline
trees, the golden roots), never the namespace tests.

  .venv/bin/python scripts/mutate.py --module checks/isolation.py --limit 20
  .venv/bin/python scripts/mutate.py --sample 100 --seed 22          # the README's measurement
  .venv/bin/python scripts/mutate.py --list --module parsers/versions.py
  .venv/bin/python scripts/mutate.py --sample 200 --reuse-log docs/mutation/LOG   # after new tests

A sample is stable: each mutant's place in it comes from a hash of the seed, its module, the text
of its line and the edit, not from its position in the module, so editing one function moves only
that function's mutants in or out of the sample, and a later run of the same sample can reuse an
earlier log's kills (--reuse-log: a mutant a log records as killed stays killed when tests are only
added; mutants on edited lines no longer match and run again).

A mutant is killed when its tests fail (or time out, or fail to import); it survives when they
pass. A survivor the suite cannot kill because the edit cannot change behaviour is recorded in
docs/mutation/equivalent.json (module, the line's text, the edit, why): the score is printed raw
and with those excluded, and an "equivalent" mutant that is killed is reported (the reason was
wrong). Exit status 0 when the score without equivalents reaches --target (default 0.9)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "hyperward"
DEFAULT_MODULES = ("checks/*.py", "guests/checks.py", "parsers/*.py")
EXCLUDED = {"checks/__init__.py", "parsers/__init__.py"}
EQUIVALENT = REPO / "docs" / "mutation" / "equivalent.json"

# The golden scans first: they judge every check in two seconds and kill most mutants.
GOLDEN = ["tests/test_fixture_roots.py", "tests/test_golden_results.py"]
CHECK_TESTS = ["tests/test_boundaries.py", "tests/test_checks.py", "tests/test_libvirt_checks.py"]
TESTS: dict[str, list[str]] = {
    "checks/_common.py": [*GOLDEN, *CHECK_TESTS],
    "checks/_libvirt.py": [*GOLDEN, "tests/test_libvirt_checks.py", "tests/test_boundaries.py"],
    "checks/access.py": [*GOLDEN, "tests/test_ssh.py", "tests/test_checks.py"],
    "checks/auth.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_libvirt_checks.py"],
    "checks/backups.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_libvirt_checks.py", "tests/test_backups.py"],
    "checks/firewall.py": [*GOLDEN, "tests/test_checks.py", "tests/test_segmentation.py"],
    "checks/ids.py": [*GOLDEN, "tests/test_ids_monitoring.py", "tests/test_checks.py", "tests/test_baseline.py"],
    "checks/isolation.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_libvirt_checks.py", "tests/test_checks.py"],
    "checks/monitoring.py": [*GOLDEN, "tests/test_ids_monitoring.py", "tests/test_checks.py", "tests/test_monitor.py::test_hv_mon_005_offline_root"],
    "checks/nested.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_checks.py", "tests/test_libvirt_checks.py"],
    "checks/network.py": [*GOLDEN, "tests/test_segmentation.py", "tests/test_checks.py", "tests/test_libvirt_checks.py"],
    "checks/patching.py": [*GOLDEN, "tests/test_patching.py", "tests/test_checks.py", "tests/test_rpm.py"],
    "checks/side_channels.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_checks.py", "tests/test_kernel_strings.py"],
    "checks/tpm.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_libvirt_checks.py", "tests/test_checks.py"],
    "checks/vulnerabilities.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_vulndb.py", "tests/test_checks.py", "tests/test_scans.py"],
    "guests/checks.py": [*GOLDEN, "tests/test_boundaries.py", "tests/test_libvirt_checks.py", "tests/platforms/proxmox/test_proxmox.py"],
    "parsers/advisories.py": ["tests/test_vulndb.py", "tests/test_parsers.py::test_tracker_severity_is_the_most_urgent_release", *GOLDEN],
    "parsers/apt_lists.py": ["tests/test_patching.py", *GOLDEN],
    "parsers/domain_xml.py": ["tests/test_domain_xml.py", *GOLDEN, "tests/test_libvirt_checks.py", "tests/test_boundaries.py"],
    "parsers/domstats.py": ["tests/test_parsers.py::test_domain_state_names_are_libvirts_own", "tests/test_monitor.py"],
    "parsers/rpm_header.py": ["tests/test_rpm.py"],
    "parsers/sshd.py": ["tests/test_ssh.py", *GOLDEN],
    "parsers/versions.py": ["tests/test_versions.py", "tests/test_boundaries.py", *GOLDEN],
    "parsers/cpu_vuln.py": ["tests/test_parsers.py", "tests/test_kernel_strings.py", *GOLDEN],
    "parsers/aide.py": ["tests/test_parsers.py", "tests/test_ids_monitoring.py", *GOLDEN, "tests/test_checks.py"],
    "parsers/libvirt_conf.py": ["tests/test_parsers.py", *GOLDEN, "tests/test_libvirt_checks.py"],
    "parsers/libvirt_defaults.py": [*GOLDEN, "tests/test_libvirt_checks.py"],
    # the evaluator without root: the kernel's recorded verdicts, hand-written rule tables, the
    # offline trees (nft -c parses them; no namespace, no ruleset loaded), the golden roots
    "parsers/nft.py": ["tests/test_reach_eval.py::test_recorded_kernel_verdicts_without_root", "tests/test_nft_eval.py",
                       *GOLDEN, "tests/test_reach_eval.py::test_nftables_conf_counts_only_when_its_unit_is_enabled",
                       "tests/test_reach_eval.py::test_reach_on_an_offline_tree_says_what_is_unknown",
                       "tests/test_reach.py::test_offline_iptables_rules_file"],
}
PARSER_DEFAULT = ["tests/test_parsers.py", *GOLDEN, "tests/test_checks.py"]

FLIP = {
    ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "==",
    ast.In: "not in", ast.NotIn: "in", ast.Is: "is not", ast.IsNot: "is",
}
TOKEN = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
         ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


@dataclasses.dataclass(frozen=True)
class Mutant:
    module: str        # relative to src/hyperward
    line: int
    kind: str
    start: int         # offsets into the module's text
    end: int
    replacement: str

    def apply(self, text: str) -> str:
        return text[:self.start] + self.replacement + text[self.end:]

    def describe(self, text: str) -> str:
        before = " ".join(text[self.start:self.end].split())
        after = " ".join(self.replacement.split())
        return f"{self.module}:{self.line} {self.kind}: {before[:70]!r} -> {after[:70]!r}"

    def edit(self, text: str) -> str:
        """The description without the place: what changed, as the equivalence list names it."""
        return self.describe(text).split(" ", 1)[1]

    def code(self, text: str) -> str:
        """The text of the mutant's line, blanks collapsed: finds it again after lines moved."""
        lines = text.splitlines()
        return " ".join(lines[self.line - 1].split()) if 0 < self.line <= len(lines) else ""

    def identity(self, text: str) -> tuple[str, str, str]:
        return (self.module, self.code(text), self.edit(text))

    def column(self, text: str) -> int:
        """Where on its line the edit starts (tells apart equal edits on one line)."""
        return self.start - (text.rfind("\n", 0, self.start) + 1)


class _Offsets:
    def __init__(self, text: str) -> None:
        self.starts = [0]
        for line in text.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.text = text

    def at(self, line: int, col: int) -> int:
        """ast columns are UTF-8 byte offsets; convert to a character offset."""
        start = self.starts[line - 1]
        raw = self.text[start:start + col + 200].encode("utf-8")[:col]
        return start + len(raw.decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        return self.at(node.lineno, node.col_offset), self.at(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


def _keep_newlines(segment: str) -> str:
    return "\n" * segment.count("\n")


def _skipped(tree: ast.Module) -> set[int]:
    """Nodes no mutant may touch: docstrings, annotations, f-strings (their inner positions are
    unreliable), decorator arguments (catalog IDs and fix texts), and `if TYPE_CHECKING` blocks."""
    skip: set[int] = set()

    def mark(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                mark(body[0])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                mark(dec)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            mark(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs, node.args.vararg, node.args.kwarg]:
                if arg is not None:
                    mark(arg.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.JoinedStr):
            mark(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            mark(node)
    return skip


def mutants_of(module: str) -> Iterator[Mutant]:
    text = (PACKAGE / module).read_text(encoding="utf-8")
    tree = ast.parse(text)
    off = _Offsets(text)
    skip = _skipped(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators, strict=True):
                a, b = off.span(left)[1], off.span(right)[0]
                between = text[a:b]
                token = TOKEN[type(op)]
                if " ".join(between.split()) == token:
                    yield Mutant(module, line, "compare", a, b, f" {FLIP[type(op)]} ")
                left = right
        elif isinstance(node, ast.BoolOp):
            other = "or" if isinstance(node.op, ast.And) else "and"
            for left, right in zip(node.values, node.values[1:]):
                a, b = off.span(left)[1], off.span(right)[0]
                between = text[a:b]
                word = "and" if isinstance(node.op, ast.And) else "or"
                if between.strip().strip("()").strip() == word or " ".join(between.split()) == word:
                    yield Mutant(module, line, "boolop", a, b, between.replace(word, other, 1))
        elif isinstance(node, (ast.If, ast.While, ast.IfExp)) or (isinstance(node, ast.comprehension) and node.ifs):
            tests = node.ifs if isinstance(node, ast.comprehension) else [node.test]
            for test in tests:
                a, b = off.span(test)
                yield Mutant(module, test.lineno, "negate", a, b, f"not ({text[a:b]})")
                if isinstance(node, ast.If):
                    yield Mutant(module, test.lineno, "drop-branch", a, b, f"(False and ({text[a:b]}))")
        if isinstance(node, ast.Constant) and id(node) not in skip:
            a, b = off.span(node)
            source = text[a:b]
            if isinstance(node.value, bool):
                yield Mutant(module, line, "bool", a, b, str(not node.value))
            elif isinstance(node.value, int):
                if source.lower().startswith("0o"):
                    digits = [d for d in range(3) if node.value >> (3 * d) & 7] or [0]
                    for bit in (3 * d + b for d in digits for b in range(3)):  # within the digits the mask speaks to
                        flipped = node.value ^ (1 << bit)
                        yield Mutant(module, line, "mode-bit", a, b, f"0o{flipped:03o}")
                else:
                    yield Mutant(module, line, "number", a, b, str(node.value + 1))
                    if node.value != 0:
                        yield Mutant(module, line, "number", a, b, str(node.value - 1))
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) >= 2 and isinstance(node.ctx if hasattr(node, "ctx") else ast.Load(), ast.Load):
            for i, elt in enumerate(node.elts):
                if isinstance(elt, ast.Starred):
                    continue
                if i + 1 < len(node.elts):
                    a, b = off.span(elt)[0], off.span(node.elts[i + 1])[0]
                else:
                    a, b = off.span(node.elts[i - 1])[1], off.span(elt)[1]
                segment = text[a:b]
                if "#" in segment:
                    continue
                yield Mutant(module, elt.lineno, "drop-element", a, b, _keep_newlines(segment))


def _rank(seed: int, mutant: Mutant, text: str, nth: int) -> str:
    """The mutant's place in a seeded sample: a hash of what it is, not where it sits (nth tells
    apart identical edits on identical lines)."""
    module, code, edit = mutant.identity(text)
    return hashlib.sha256(f"{seed}\0{module}\0{code}\0{edit}\0{nth}".encode()).hexdigest()


def stable_sample(pool: list[Mutant], originals: dict[str, str], seed: int, size: int) -> list[Mutant]:
    seen: dict[tuple[str, str, str], int] = {}
    ranked = []
    for m in pool:
        ident = m.identity(originals[m.module])
        seen[ident] = seen.get(ident, -1) + 1
        ranked.append((_rank(seed, m, originals[m.module], seen[ident]), m))
    ranked.sort(key=lambda pair: pair[0])
    return [m for _, m in ranked[:size]]


@dataclasses.dataclass(frozen=True)
class Equivalent:
    module: str
    code: str          # the line's text, blanks collapsed
    mutation: str      # the edit as this script describes it, e.g. "compare: '>' -> '>='"
    reason: str
    column: int | None = None  # only the edit starting there, when the line has equal edits

    def covers(self, mutant: Mutant, text: str) -> bool:
        return mutant.identity(text) == (self.module, self.code, self.mutation) and self.column in (None, mutant.column(text))


def load_equivalents(path: pathlib.Path) -> list[Equivalent]:
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Equivalent(**row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise SystemExit(f"mutate.py: {path}: not a list of {{module, code, mutation, reason}} rows ({exc})") from None


def mark_equivalent(path: pathlib.Path, where: str, reason: str | None, column: int | None = None) -> int:
    """Append the mutants `where` (module:line:text) names to the equivalence list, keyed by the
    line's text and the edit, so the row still applies when lines above it move."""
    module, line, needle = where.split(":", 2)
    if not reason:
        raise SystemExit("mutate.py: --mark-equivalent needs --reason (why the edit cannot change behaviour)")
    text = (PACKAGE / module).read_text(encoding="utf-8")
    found = [m for m in mutants_of(module) if m.line == int(line) and needle in m.describe(text) and _valid(m, text)
             and column in (None, m.column(text))]
    if not found:
        raise SystemExit(f"mutate.py: no mutant of {module}:{line} contains {needle!r}")
    rows: list[dict[str, object]] = [{k: v for k, v in dataclasses.asdict(e).items() if v is not None} for e in load_equivalents(path)]
    for m in found:
        module_, code, edit = m.identity(text)
        row: dict[str, object] = {"module": module_, "code": code, "mutation": edit, "reason": reason}
        if column is not None:
            row["column"] = column
        if not any(all(r.get(k) == row.get(k) for k in ("module", "code", "mutation", "column")) for r in rows):
            rows.append(row)
            print(f"equivalent: {m.describe(text)}")
    path.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def _logged(paths: list[str], outcome: str, base: str | None, originals: dict[str, str]) -> set[str]:
    """Descriptions a log reports with that outcome. LOG@COMMIT: the log of a run on that commit
    (its lines are found again in today's source); otherwise --rerun-base, or today's lines."""
    wanted: set[str] = set()
    for spec in paths:
        log, _, commit = spec.partition("@")
        for line in pathlib.Path(log).read_text(encoding="utf-8").splitlines():
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[0].startswith("[") and parts[1] in outcome.split("|"):
                wanted.add(_moved(parts[3], commit or base, originals))
    return wanted


def _moved(description: str, base: str | None, originals: dict[str, str]) -> str:
    """The description a logged mutant has in today's source: its line found again by content in
    the source it was made from (git commit `base`), when edits above it moved it."""
    module, _, rest = description.partition(":")
    line, tail = rest.split(" ", 1)
    if base is None or module not in originals:
        return description
    done = subprocess.run(["git", "-C", str(REPO), "show", f"{base}:src/hyperward/{module}"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return description
    old = done.stdout.splitlines()[int(line) - 1]
    new = originals[module].splitlines()
    if int(line) <= len(new) and new[int(line) - 1] == old:
        return description
    matches = [i + 1 for i, text in enumerate(new) if text == old]
    return f"{module}:{matches[0]} {tail}" if len(matches) == 1 else description


def modules(selected: list[str]) -> list[str]:
    patterns = selected or list(DEFAULT_MODULES)
    found: list[str] = []
    for pattern in patterns:
        for path in sorted(PACKAGE.glob(pattern)):
            rel = path.relative_to(PACKAGE).as_posix()
            if rel not in EXCLUDED and rel not in found:
                found.append(rel)
    if not found:
        raise SystemExit(f"mutate.py: no module matches {patterns} under {PACKAGE}")
    return found


def tests_for(module: str, checkout: pathlib.Path = REPO) -> list[str]:
    """The module's own tests first, then, for a check module, every table of check variants."""
    own = TESTS.get(module) or (PARSER_DEFAULT if module.startswith("parsers/") else [*GOLDEN, *CHECK_TESTS])
    if module.startswith(("checks/", "guests/")):
        own = [*own, *(t for t in CHECK_TESTS if t not in own)]
    return [t for t in own if (checkout / t.split("::")[0]).exists()]  # a test file not in the copy is no failure


def _valid(mutant: Mutant, text: str) -> bool:
    try:
        compile(mutant.apply(text), mutant.module, "exec")
    except SyntaxError:
        return False
    return True


def _environment_ok(env: dict[str, str]) -> bool:
    """Whether the interpreter and pytest still work, judged without the mutated package (a mutant
    that breaks importing hyperward is killed, not an unusable environment)."""
    clean = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    try:
        return subprocess.run([sys.executable, "-c", "import pytest"], env=clean, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run(mutant: Mutant, copy: pathlib.Path, originals: dict[str, str], timeout: float) -> tuple[str, float]:
    target = copy / "src" / "hyperward" / mutant.module
    target.write_text(mutant.apply(originals[mutant.module]), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
                               f"--basetemp={copy.parent / 'pytest'}", *tests_for(mutant.module, copy)],
                              cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
        outcome = {0: "survived", 1: "killed", 5: "no-tests"}.get(done.returncode, "killed")
        if done.returncode == 4 and f"hyperward/{mutant.module}" not in done.stdout + done.stderr:
            outcome = "error"  # pytest could not be called as asked; with the mutated module in the traceback, conftest failed to import it: killed
        if done.returncode not in (0, 1, 5) and not _environment_ok(env):
            outcome = "error"  # the interpreter or pytest itself went away (a venv being rebuilt): not the mutant's doing
    except subprocess.TimeoutExpired:
        outcome = "timeout"
    except OSError:
        outcome = "error"
    finally:
        target.write_text(originals[mutant.module], encoding="utf-8")
    return outcome, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", action="append", default=[], help="module (glob) under src/hyperward, e.g. checks/isolation.py; repeatable")
    parser.add_argument("--limit", type=int, help="at most this many mutants per module (sampled)")
    parser.add_argument("--sample", type=int, help="this many mutants in all, sampled across the modules")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per mutant (a timeout counts as killed)")
    parser.add_argument("--target", type=float, default=0.9)
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--shard", help="K/N: run every N-th mutant of the sample starting at K (0-based), to split a run over processes")
    parser.add_argument("--save", help="write the survivors (and errors) to this JSON file")
    parser.add_argument("--rerun", help="run only the mutants saved in this JSON file (after new tests)")
    parser.add_argument("--rerun-log", action="append", default=[], help="run only the mutants this script's output (a log) reports as survivors (or not judged)")
    parser.add_argument("--rerun-base", help="the git commit the logged run mutated (to find moved lines again)")
    parser.add_argument("--reuse-log", action="append", default=[],
                        help="count as killed, without running, the mutants this log (LOG or LOG@COMMIT it ran on) records as killed (tests only added since; timeouts run again); repeatable")
    parser.add_argument("--equivalents", default=str(EQUIVALENT), help="the equivalence list (JSON rows: module, code, mutation, reason)")
    parser.add_argument("--mark-equivalent", metavar="MODULE:LINE:TEXT",
                        help="record as equivalent the mutants on that line whose description contains TEXT (with --reason), then exit")
    parser.add_argument("--reason", help="why the mutants --mark-equivalent names cannot change behaviour")
    parser.add_argument("--column", type=int, help="with --mark-equivalent: only the edit starting at this column of the line")
    args = parser.parse_args(argv)
    if args.mark_equivalent:
        return mark_equivalent(pathlib.Path(args.equivalents), args.mark_equivalent, args.reason, args.column)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stopped: the temporary copy is still removed
    originals = {m: (PACKAGE / m).read_text(encoding="utf-8") for m in modules(args.module)}
    equivalents = load_equivalents(pathlib.Path(args.equivalents))

    def equivalent_row(m: Mutant) -> Equivalent | None:
        return next((e for e in equivalents if e.covers(m, originals[m.module])), None)

    pool: list[Mutant] = []
    total = 0
    for module, text in originals.items():
        found = [m for m in mutants_of(module) if _valid(m, text)]
        total += len(found)
        if args.limit is not None and len(found) > args.limit:
            found = stable_sample(found, originals, args.seed, args.limit)
        pool.extend(found)
    if args.sample is not None and len(pool) > args.sample:
        pool = stable_sample(pool, originals, args.seed, args.sample)
    pool.sort(key=lambda m: (m.module, m.start, m.kind, m.replacement))
    if args.rerun_log:
        wanted = _logged(args.rerun_log, "survived|error", args.rerun_base, originals)  # errors were never judged
        everything = [m for module, text in originals.items() for m in mutants_of(module) if _valid(m, text)]
        pool = [m for m in everything if m.describe(originals[m.module]) in wanted]
        print(f"{len(wanted)} survivor(s) in the log(s); {len(pool)} found in today's source")
    if args.rerun:
        saved = [Mutant(**row) for row in json.loads(pathlib.Path(args.rerun).read_text())]
        pool = [m for m in saved if m.module in originals]
    if args.shard:  # after --rerun-log/--rerun chose the pool: a rerun splits over processes too
        k, n = (int(x) for x in args.shard.split("/"))
        pool = pool[k::n]
    # a timeout may be the machine's load, not the mutant: only kills are reused
    reused = _logged(args.reuse_log, "killed", args.rerun_base, originals) if args.reuse_log else set()
    if reused:  # a description two mutants share (equal edits on one line) names neither for sure: run both
        counts: dict[str, int] = {}
        for module, text in originals.items():
            for m in mutants_of(module):
                counts[m.describe(text)] = counts.get(m.describe(text), 0) + 1
        reused = {d for d in reused if counts.get(d) == 1}
    print(f"{total} mutants in {len(originals)} module(s); {len(pool)} in the selection (seed {args.seed})", flush=True)
    if args.list:
        for m in pool:
            print(m.describe(originals[m.module]))
        return 0

    results: dict[str, list[Mutant]] = {"killed": [], "survived": [], "timeout": [], "no-tests": [], "error": []}
    with tempfile.TemporaryDirectory(prefix="hyperward-mutate-") as tmp:
        copy = pathlib.Path(tmp) / "checkout"
        copy.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for part in ("src", "tests", "docs", "scripts"):
            shutil.copytree(REPO / part, copy / part, symlinks=True, ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, copy / name)
        if (REPO / ".venv").exists():
            (copy / ".venv").symlink_to((REPO / ".venv").resolve())
        started = time.monotonic()
        for i, mutant in enumerate(pool, 1):
            if mutant.describe(originals[mutant.module]) in reused:
                results["killed"].append(mutant)
                print(f"[{i}/{len(pool)}] killed     (log) {mutant.describe(originals[mutant.module])}", flush=True)
                continue
            outcome, took = run(mutant, copy, originals, args.timeout)
            for _ in range(3):
                if outcome != "error":
                    break
                time.sleep(60)
                outcome, took = run(mutant, copy, originals, args.timeout)
            results[outcome].append(mutant)
            print(f"[{i}/{len(pool)}] {outcome:8} {took:5.1f}s {mutant.describe(originals[mutant.module])}", flush=True)
        elapsed = time.monotonic() - started
    killed = len(results["killed"]) + len(results["timeout"])
    judged = killed + len(results["survived"])
    score = killed / judged if judged else 0.0
    equivalent = [m for m in results["survived"] if equivalent_row(m) is not None]
    wrongly = [m for m in results["killed"] + results["timeout"] if equivalent_row(m) is not None]
    real = judged - len(equivalent)
    net = killed / real if real else 0.0
    print(f"\nscore: {killed}/{judged} killed = {score:.1%} ({len(results['timeout'])} by timeout; {elapsed / 60:.1f} min)")
    print(f"score without the {len(equivalent)} equivalent survivor(s) ({args.equivalents}): {killed}/{real} = {net:.1%}")
    if wrongly:
        print(f"{len(wrongly)} mutant(s) listed as equivalent were killed (the reason is wrong; remove the row):")
        for m in wrongly:
            print(f"  {m.describe(originals[m.module])}")
    if results["no-tests"]:
        print(f"{len(results['no-tests'])} mutant(s) had no tests to run (mapping in scripts/mutate.py)")
    if results["error"]:
        print(f"{len(results['error'])} mutant(s) not judged: the test environment was unusable")
    if args.save:
        rows = [dataclasses.asdict(m) for m in results["survived"] + results["error"]]
        pathlib.Path(args.save).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    if equivalent:
        print("equivalent survivors:")
        for m in equivalent:
            print(f"  {m.describe(originals[m.module])}  -- {equivalent_row(m).reason}")  # type: ignore[union-attr]
    others = [m for m in results["survived"] if m not in equivalent]
    if others:
        print("survivors:")
        for m in others:
            print(f"  {m.describe(originals[m.module])}")
    return 0 if net >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
