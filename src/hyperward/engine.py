"""Check registry and runner. A check that raises becomes one `error` result and the run goes on."""

from __future__ import annotations

import datetime
import functools
import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .catalog import catalog
from .details import enrich
from .facts import HostFacts
from .platforms import registry as platform_registry
from .records import frozen

if TYPE_CHECKING:
    from .artifacts import Artifacts
from .model import Category, CheckMeta, Finding, Result, Severity, Status, Suppression

CheckFn = Callable[[HostFacts], Iterator[Result]]


@frozen
class RegisteredCheck:
    meta: CheckMeta
    fn: CheckFn


_REGISTRY: dict[str, RegisteredCheck] = {}


def check(
    check_id: str,
    category: Category | None = None,
    severity: Severity | None = None,
    title: str | None = None,
    *,
    fix: str | None = None,
    references: tuple[str, ...] = (),
    profile_severity: dict[str, Severity] | None = None,
) -> Callable[[CheckFn], CheckFn]:
    """Register a check under its catalog ID. Title, severity and category come from the catalog
    (data/catalog.json), which is where they are written; `fix` is the concrete one-line
    remediation shown with each failure (a result may give a more specific one), the catalog's
    remediation when not given; references default to the catalog row's primary sources."""

    def register(fn: CheckFn) -> CheckFn:
        if check_id in _REGISTRY:
            raise RuntimeError(f"check {check_id} registered twice")
        entry = catalog().get(check_id)
        if entry is None and (category is None or severity is None or title is None):
            raise RuntimeError(f"check {check_id} is not in the catalog")
        meta = CheckMeta(
            check_id,
            category or Category(check_id.split("-")[1]),
            severity or Severity.parse(entry.severity),  # type: ignore[union-attr]
            title or entry.title,  # type: ignore[union-attr]
            inspect.getdoc(inspect.unwrap(fn)) or "",
            fix if fix is not None else (entry.remediation if entry else ""),
            references or (tuple(s.strip() for s in entry.sources.split(";") if s.strip()) if entry else ()),
            profile_severity or {},
        )
        _REGISTRY[check_id] = RegisteredCheck(meta, fn)
        return fn

    return register


def registry(platforms: Iterable[str] | None = None) -> dict[str, RegisteredCheck]:
    """Every check: the host's and libvirt's (hyperward.checks), the neutral guest checks, and each
    platform's own module (imported for its registrations). With `platforms`, only those
    platforms' modules are imported: a scan asks for the platforms it found, so a libvirt host
    never imports the Proxmox checks (checks imported earlier in the process stay registered)."""
    import importlib

    from . import checks  # noqa: F401
    from .guests import checks as guest_checks  # noqa: F401
    from .guests import inside_checks  # noqa: F401

    wanted = None if platforms is None else set(platforms)
    for name, platform in platform_registry().items():
        if wanted is None or name in wanted:
            importlib.import_module(platform.checks_module)

    return dict(sorted(_REGISTRY.items()))


@dataclass
class ScanReport:
    facts: HostFacts
    profile: str
    findings: list[Finding]
    warnings: list[str] = field(default_factory=list)
    duration_s: float = 0.0  # running the checks
    collect_s: float | None = None  # collecting (or loading) the facts, when the caller timed it
    total_s: float | None = None  # the whole command, from the CLI's entry to the report
    artifacts: Artifacts | None = None
    #: report/common.py's per-report view (locations, fingerprints, check help), shared by every
    #: format rendered from this report; it checks itself against `findings` before each use
    render_cache: object | None = field(default=None, init=False, repr=False, compare=False)

    def derived(self) -> Artifacts:
        """The artifacts, computed on first use when the report was built without them."""
        if self.artifacts is None:
            from .artifacts import compute

            self.artifacts = compute(self.facts)
        return self.artifacts

    def counts_by_status(self) -> dict[str, int]:
        # list.count compares members by identity in C; Status.value per finding is a Python-level
        # property lookup, 20 ms at 16,000 results
        statuses = [f.status for f in self.findings]
        return {s.value: statuses.count(s) for s in Status}

    def counts_by_severity(self) -> dict[str, int]:
        """Failing findings only: what needs fixing, by how bad it is."""
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            if f.status is Status.FAIL:
                out[f.severity.label] += 1
        return out

    def lacking_privilege(self) -> list[str]:
        return sorted({f.check_id for f in self.findings if f.result.needs_privilege})

    def worst_failure(self) -> Severity | None:
        failing = [f.severity for f in self.findings if f.status is Status.FAIL]
        return max(failing) if failing else None


def source_lines(facts: HostFacts) -> dict[str, dict[str, int]]:
    """file -> key -> line for the configuration files whose parsers record lines."""
    out: dict[str, dict[str, int]] = {}
    for config in facts.libvirt.configs.values():
        if config.lines:
            out[config.path] = config.lines
    for path, keys in facts.access.lines.items():
        out.setdefault(path, {}).update(keys)
    for name, platform_facts in facts.platforms.items():
        recorded = getattr(platform_facts, "source_lines", None)
        if callable(recorded):
            for path, keys in recorded().items():
                out.setdefault(path, {}).update(keys)
    return out


def select(
    checks: dict[str, RegisteredCheck], only: Iterable[str] = (), skip: Iterable[str] = ()
) -> dict[str, RegisteredCheck]:
    """--only/--skip take check IDs or categories (SIDE, side, or the label "side channels")."""

    def matcher(spec: str) -> Callable[[RegisteredCheck], bool]:
        token = spec.strip()
        upper = token.upper()
        if upper in checks or upper in catalog():
            return lambda c: c.meta.check_id == upper
        category = parse_category(token)
        if category is not None:
            return functools.partial(_in_category, category)
        raise ValueError(f"unknown check ID or category {spec!r}")

    only_m = [matcher(s) for s in only]
    skip_m = [matcher(s) for s in skip]
    return {
        cid: c
        for cid, c in checks.items()
        if (not only_m or any(m(c) for m in only_m)) and not any(m(c) for m in skip_m)
    }


def parse_category(token: str) -> Category | None:
    """A category in any case, as its infix (bak), its ID prefix (HV-BAK) or its label (backups)."""
    upper = token.strip().upper()
    infix = upper.removeprefix("HV-").rstrip("-")
    for cat in Category:
        if infix == cat.value or token.strip().lower() == cat.label.lower():
            return cat
    return None


def _in_category(category: Category, registered: RegisteredCheck) -> bool:
    return registered.meta.category is category


def for_platforms(checks: dict[str, RegisteredCheck], facts: HostFacts) -> dict[str, RegisteredCheck]:
    """The checks that speak to this host: a platform's own rows only where that platform was
    found (a libvirt host's report has no Proxmox rows; host and guest checks always run)."""
    entries = catalog()
    letters = {p.letter: name for name, p in platform_registry().items()}

    def wanted(cid: str) -> bool:
        platform = letters.get(entries[cid].platform) if cid in entries else None
        return platform is None or platform in facts.platforms

    return {cid: c for cid, c in checks.items() if wanted(cid)}


def run_checks(
    facts: HostFacts,
    checks: dict[str, RegisteredCheck],
    profile: str = "multi-tenant",
    suppressions: Iterable[Suppression] = (),
    today: datetime.date | None = None,
) -> ScanReport:
    started = time.perf_counter()
    today = today or datetime.date.today()
    active: list[Suppression] = []
    warnings: list[str] = []
    for s in suppressions:
        if s.expires is not None and s.expires < today:
            warnings.append(
                f"suppression of {s.check_id} for {s.resource!r} expired on {s.expires.isoformat()} ({s.source}); no longer applied"
            )
        else:
            active.append(s)
    warnings.extend(facts.patching.warnings)
    known = platform_registry()
    for name, platform_facts in facts.platforms.items():
        if name in known:
            warnings.extend(known[name].warnings(platform_facts))
    entries = catalog()
    findings: list[Finding] = []
    lines = source_lines(facts)
    from .locations import guest_index, locate

    guests = guest_index(facts.guests)
    for cid, registered in for_platforms(checks, facts).items():
        meta = registered.meta
        default_fix = meta.fix or (entries[cid].remediation if cid in entries else "")
        try:
            results = list(registered.fn(facts))
            if not results:
                results = [Result.error("check produced no result (a bug in hyperward)")]
        except Exception as exc:  # one broken check must not stop the audit
            results = [Result.error(f"check failed: {type(exc).__name__}: {exc}")]
        for result in results:
            result = locate(cid, enrich(result, lines), guests)
            severity = result.severity or meta.severity_for(profile)
            status, reason = result.status, None
            if status is Status.FAIL:
                for s in active:
                    if s.matches(cid, result.resource):
                        status, reason = Status.SUPPRESSED, s.reason
                        break
            findings.append(Finding(meta, result, status, severity, result.remediation or default_fix, reason))
    findings.sort(key=sort_key)
    from .artifacts import compute

    return ScanReport(facts, profile, findings, warnings, time.perf_counter() - started, artifacts=compute(facts))


_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.SUPPRESSED: 2, Status.PASS: 3, Status.NOT_APPLICABLE: 4}


def sort_key(f: Finding) -> tuple[int, int, str, str]:
    return (_STATUS_ORDER[f.status], -f.severity, f.check_id, f.result.resource)
