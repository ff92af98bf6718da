"""`hyperward guests scan [NAME ...]`: look inside the guests' disks, read-only, without an agent,
and report what the inside-the-guest checks find."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from typing import TYPE_CHECKING

import click

from .cli_common import EXIT_FINDINGS, EXIT_OK
from .cli_common import die as _die
from .model import Severity
from .report import FORMATS
from .textsafe import visible

if TYPE_CHECKING:
    from .facts import HostFacts

#: the checks `guests scan` runs: everything judged from inside the guests
INSIDE_CHECKS = ("HV-PATCH-070", "HV-PATCH-071", "HV-VULN-070", "HV-AUTH-070", "HV-AUTH-071", "HV-AUTH-072", "HV-AUTH-073", "HV-AUTH-074",
                 "HV-AUTH-075", "HV-AUTH-076", "HV-ISO-070", "HV-SCAN-070")


def with_insides(facts: HostFacts, root: str | None, names: list[str], vulndb: str | None, max_age: int | None) -> HostFacts:
    """The facts with what the guests' disks hold; `names` (guest names or platform ids) narrows
    the guests, an unknown one is a usage error."""
    from .collect.fs import RootFS
    from .guests.inspect import scan_guests

    chosen = list(facts.guests)
    if names:
        wanted = set(names)
        known = {g.name for g in chosen} | {g.id for g in chosen}
        missing = sorted(wanted - known)
        if missing:
            _die(f"no guest named {', '.join(visible(m) for m in missing)} (guests here: {', '.join(visible(g.name) for g in chosen) or 'none'})")
        chosen = [g for g in chosen if g.name in wanted or g.id in wanted]
    pools = list(facts.libvirt.pools)
    try:
        insides = scan_guests(RootFS(root or "/"), chosen, facts.access.ssh, vulndb, max_age, pools)
    except OSError as exc:
        _die(f"cannot scan the guests' disks: {exc.strerror or exc}")
    return dataclasses.replace(facts, guest_insides=insides)


@click.group()
def guests() -> None:
    """The guests of every platform on this host, looked at from outside and inside."""


@guests.command("scan")
@click.argument("names", nargs=-1, metavar="[NAME ...]")
@click.option("--root", "root", metavar="DIR", help="Audit an offline tree (its guest definitions and images) instead of this host.")
@click.option("--connect", "-c", "connect", metavar="URI", help="libvirt URI to ask besides the files.")
@click.option("--format", "fmt", type=click.Choice(tuple(FORMATS)), default="text", show_default=True, help="Report format.")
@click.option("--output", "-o", metavar="FILE", help="Write the report to FILE instead of standard output.")
@click.option("--vulndb", metavar="FILE", help="Advisory database to match the guests' packages against.")
@click.option("--fail-on", type=click.Choice(tuple(s.label for s in sorted(Severity, reverse=True) if s is not Severity.INFO)),
              help="Exit 1 when a finding at or above this severity fails.")
@click.option("--verbose", "-v", is_flag=True, help="Also list passing and not-applicable results (text format).")
def guests_scan(names: tuple[str, ...], root: str | None, connect: str | None, fmt: str, output: str | None, vulndb: str | None,
                fail_on: str | None, verbose: bool) -> None:
    """Open every guest's disks read-only (or the named guests'), find its operating system, and
    report its pending updates, known CVEs, SSH and accounts, and any credential in it that leads
    to the host or to another guest. Nothing is written to any disk image."""
    from .cli import _gate_fails, _load_facts, _use_color, _write
    from .config import ConfigError, load_config
    from .engine import registry, run_checks, select
    from .report import RenderOptions, get_reporter

    try:
        config = load_config(None)
    except ConfigError as exc:
        _die(str(exc))
    facts = _load_facts(root, None, connect, vulndb or config.vulndb_path, config.vulndb_max_age_days)
    facts = with_insides(facts, root, list(names), vulndb or config.vulndb_path, config.vulndb_max_age_days)
    report = run_checks(facts, select(registry(), list(INSIDE_CHECKS), []), config.profile or "multi-tenant", config.suppressions)
    width = shutil.get_terminal_size((100, 24)).columns if not output else 100
    options = RenderOptions(color=_use_color(output), verbose=verbose, quiet=False, width=max(60, width))
    _write(get_reporter(fmt).render(report, options), output, config.ownership())
    threshold = Severity.parse(fail_on) if fail_on else None
    sys.exit(EXIT_FINDINGS if threshold is not None and _gate_fails(report, threshold, False) else EXIT_OK)
