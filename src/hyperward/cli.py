"""Command line. Exit codes: 0 nothing at or above --fail-on fails, 1 something does, 2 usage
error or a scan that could not run at all."""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from . import __version__
from .model import PROFILES, Category, Severity

if TYPE_CHECKING:
    from .facts import HostFacts

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
FORMAT_NAMES = ("text", "json")
SEVERITY_NAMES = tuple(s.label for s in sorted(Severity, reverse=True) if s is not Severity.INFO)


def _die(message: str) -> NoReturn:
    click.echo(f"hyperward: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _use_color(output: str | None) -> bool:
    if output or "NO_COLOR" in os.environ:
        return False
    return sys.stdout.isatty()


def _write(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            _die(f"cannot write {output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperward")
def main() -> None:
    """Audit the security of a KVM/libvirt virtualization host beyond its firewall.

    hyperward only reads: it never changes the host it audits."""


@main.command()
@click.option("--root", "root", metavar="DIR", help="Audit an offline tree (mounted image, copy of /etc /proc /sys /var) instead of this host.")
@click.option("--snapshot", metavar="FILE", help="Evaluate facts saved by 'hyperward collect' instead of collecting.")
@click.option("--connect", "-c", "connect", metavar="URI", help="libvirt URI to ask besides the files (default on a live host: qemu:///system when its socket exists; test:///FILE works too).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="text", show_default=True, help="Report format.")
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of standard output.")
@click.option("--fail-on", type=click.Choice(SEVERITY_NAMES), help="Exit 1 when a finding at or above this severity fails (default: never).")
@click.option("--only", multiple=True, metavar="ID|CATEGORY", help="Run only these checks (repeatable, comma-separated): HV-SIDE-001, SIDE, ...")
@click.option("--skip", multiple=True, metavar="ID|CATEGORY", help="Skip these checks (repeatable, comma-separated).")
@click.option("--profile", type=click.Choice(PROFILES), help="Tenancy profile; changes SMT, KSM and nested rows' severity (default multi-tenant).")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line (text format).")
@click.option("--verbose", "-v", is_flag=True, help="Also list passing and not-applicable results (text format).")
def scan(
    root: str | None,
    snapshot: str | None,
    fmt: str,
    output: str | None,
    fail_on: str | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    profile: str | None,
    config_path: str | None,
    quiet: bool,
    verbose: bool,
    connect: str | None,
) -> None:
    """Collect facts from this host (or --root, or --snapshot) and run every check."""
    from .catalog import catalog
    from .config import ConfigError, load_config
    from .engine import registry, run_checks, select
    from .report import RenderOptions, get_reporter

    if root and snapshot:
        _die("--root and --snapshot exclude each other")
    if connect and snapshot:
        _die("--connect and --snapshot exclude each other")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    only_ids, skip_ids = _split(only) or config.only, _split(skip) or config.skip
    try:
        checks = select(registry(), only_ids, skip_ids)
    except ValueError as exc:
        _die(str(exc))
    planned = sorted({s.upper() for s in [*only_ids, *skip_ids]} & (set(catalog()) - set(registry())))
    facts = _load_facts(root, snapshot, connect)
    profile = profile or config.profile or "multi-tenant"
    report = run_checks(facts, checks, profile, config.suppressions)
    report.warnings.extend(f"{cid} is in the catalog but not implemented in hyperward {__version__}: --only/--skip ignore it" for cid in planned)
    width = shutil.get_terminal_size((100, 24)).columns if not output else 100
    options = RenderOptions(color=_use_color(output), verbose=verbose, quiet=quiet, width=max(60, width))
    _write(get_reporter(fmt).render(report, options), output)
    threshold = Severity.parse(fail_on) if fail_on else config.fail_on
    worst = report.worst_failure()
    sys.exit(EXIT_FINDINGS if threshold is not None and worst is not None and worst >= threshold else EXIT_OK)


def _load_facts(root: str | None, snapshot: str | None, connect: str | None = None) -> HostFacts:
    from .collect import RootError, collect_host
    from .facts import SnapshotError, load_snapshot

    if snapshot:
        try:
            with open(snapshot, "rb") as handle:
                data = handle.read(512 * 1024 * 1024)
            return load_snapshot(data.decode("utf-8", errors="strict"), snapshot)
        except OSError as exc:
            _die(f"{snapshot}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            _die(f"{snapshot}: not a JSON document (not UTF-8 text)")
        except SnapshotError as exc:
            _die(str(exc))
    try:
        return collect_host(root or "/", connect)
    except RootError as exc:
        _die(str(exc))
    except Exception as exc:  # a collector bug must not end in a traceback on a production host
        if os.environ.get("HYPERWARD_DEBUG"):
            raise
        _die(f"internal error while collecting facts from {root or '/'}: {type(exc).__name__}: {exc} "
             "(a bug in hyperward; HYPERWARD_DEBUG=1 shows the traceback)")


@main.command()
@click.option("--root", "root", metavar="DIR", help="Collect from an offline tree instead of this host.")
@click.option("--output", "-o", metavar="FILE", required=True, help="Where to save the snapshot ('-' for standard output).")
@click.option("--connect", "-c", "connect", metavar="URI", help="libvirt URI to ask besides the files (default on a live host: qemu:///system when its socket exists; test:///FILE works too).")
def collect(root: str | None, output: str, connect: str | None) -> None:
    """Save this host's facts as a JSON snapshot for 'hyperward scan --snapshot' elsewhere."""
    from .facts import dump_snapshot

    facts = _load_facts(root, None, connect)
    _write(dump_snapshot(facts) + "\n", None if output == "-" else output)


@main.command("checks")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="text", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list catalog entries not implemented yet.")
def list_checks(fmt: str, show_all: bool) -> None:
    """List the checks: ID, category, severity, title."""
    from .catalog import catalog
    from .engine import registry

    implemented = registry()
    rows = []
    for cid, entry in catalog().items():
        if cid in implemented:
            meta = implemented[cid].meta
            rows.append((cid, meta.category.value, meta.severity.label, meta.title, True))
        elif show_all:
            rows.append((cid, Category.from_check_id(cid).value, entry.severity, entry.title, False))
    if fmt == "json":
        click.echo(json.dumps([{"id": r[0], "category": r[1], "severity": r[2], "title": r[3], "implemented": r[4]} for r in rows], indent=2))
        return
    for cid, category, severity, title, done in rows:
        click.echo(f"{cid:<13} {category:<6} {severity:<9} {title}{'' if done else '  (not implemented yet)'}")


@main.command()
@click.argument("check_id")
def explain(check_id: str) -> None:
    """Print a check's rationale, detection, pass condition, remediation and references."""
    from .catalog import catalog
    from .engine import registry

    cid = check_id.strip().upper()
    entry = catalog().get(cid)
    if entry is None:
        _die(f"unknown check ID {check_id!r} (see 'hyperward checks --all')")
    registered = registry().get(cid)
    lines = [f"{cid}: {entry.title}", ""]
    lines.append(f"Category:      {Category.from_check_id(cid).label}")
    lines.append(f"Severity:      {entry.severity} (catalog: {entry.severity_text})")
    if registered and registered.meta.profile_severity:
        lines.append("Profiles:      " + ", ".join(f"{p}: {s.label}" for p, s in registered.meta.profile_severity.items()))
    lines.append(f"Implemented:   {'yes' if registered else 'not yet'}")
    lines.append("")
    if registered and registered.meta.rationale:
        lines += ["Rationale:", *("  " + line for line in registered.meta.rationale.splitlines()), ""]
    fix = registered.meta.fix if registered and registered.meta.fix else entry.remediation
    lines += [f"Detection:     {entry.detection}", f"Passes when:   {entry.passes_when}", f"Remediation:   {fix}"]
    references = list(registered.meta.references) if registered else []
    references.append("hyperward check catalog, shared/spec/checks.md (primary sources listed there)")
    lines += ["", "References:", *(f"  - {ref}" for ref in references)]
    click.echo("\n".join(lines))


if __name__ == "__main__":
    main()
