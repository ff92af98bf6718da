"""`hyperward fleet ingest|report|diff`: many hosts' JSON reports in one database (fleet.py)."""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import TYPE_CHECKING

import click

from .cli_common import EXIT_OK, EXIT_USAGE
from .cli_common import die as _die
from .textsafe import visible

if TYPE_CHECKING:
    from .config import Config
    from .fleet import Database

#: reports per transaction: a commit is an fsync; a failure mid-batch loses only that batch, which
#: the next (idempotent) ingest stores
BATCH = 50
_DB_HELP = ("Fleet database: a SQLite file or a postgresql:// URL (default: the config's [fleet] database, "
            "$HYPERWARD_FLEET_DB, or fleet.sqlite in hyperward's state directory).")


def _open(db_url: str | None, config_path: str | None, wait: float, create: bool = False) -> tuple[Database, Config]:
    """Only ingest creates the database: a report or diff of a mistyped path is an error, not an empty fleet."""
    from . import fleet
    from .config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    url = db_url or config.fleet_database or fleet.default_path()
    try:
        return fleet.open_database(url, config.ownership(), wait, create), config
    except fleet.FleetError as exc:
        _die(str(exc))


def _date(value: str | None, name: str, end_of_day: bool = False) -> str | None:
    """An ISO date or date-time, as the UTC timestamp text the reports carry."""
    if value is None:
        return None
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError:
        _die(f"{name} {value}: not a date (YYYY-MM-DD or an ISO date-time)")
    if len(value) == 10 and end_of_day:
        when += datetime.timedelta(days=1, seconds=-1)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.astimezone(datetime.UTC).isoformat(timespec="seconds")


@click.group()
def fleet() -> None:
    """Many hosts' reports in one database: ingest them, rank the hosts, compare dates."""


@fleet.command("ingest")
@click.argument("paths", nargs=-1, required=True, metavar="DIR|FILE...")
@click.option("--db", "db_url", metavar="FILE|URL", help=_DB_HELP)
@click.option("--site", default="", help="Site of the hosts these reports come from (else the sidecar's).")
@click.option("--group", "group", default="", help="Inventory group of these hosts (else the sidecar's).")
@click.option("--retention-days", type=click.FloatRange(min=0, min_open=True), help="Then drop reports older than this, except each host's newest (default: the config's [fleet] retention_days; none).")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True, help="Seconds to wait for a locked database or a server.")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
def ingest(paths: tuple[str, ...], db_url: str | None, site: str, group: str, retention_days: float | None, wait: float,
           config_path: str | None) -> None:
    """Store JSON reports (hyperward scan --format json), each file or each *.json in a DIR.
    A file already stored changes nothing; a bad file is named and recorded against its host.
    Exit 2 when a named path does not exist (the others are still stored) or the database fails."""
    from . import fleet as fl

    db, config = _open(db_url, config_path, wait, create=True)
    counts = {"stored": 0, "unchanged": 0, "bad_input": 0, "scan_failed": 0}
    # a mistyped argument is no host: named, not recorded, and the exit status says so
    missing = [p for p in paths if not os.path.lexists(p)]
    for path in missing:
        click.echo(f"skipped: {visible(path)}: no such file or directory", err=True)
    try:
        for index, (path, sidecar_only) in enumerate(fl.expand(p for p in paths if p not in missing), 1):
            outcome = fl.ingest_file(db, path, fl.Labels(site, group), sidecar_only, commit=index % BATCH == 0)
            counts[outcome.state] += 1
            if outcome.state in ("bad_input", "scan_failed"):
                click.echo(f"{outcome.state.replace('_', ' ')}: {visible(outcome.host)}: {visible(outcome.problem)}")
        fl.commit_counted(db)
        days = retention_days or config.fleet_retention_days
        dropped = fl.apply_retention(db, days) if days else 0
    except fl.FleetError as exc:
        _die(str(exc))
    finally:
        db.close()
    click.echo(f"ingested: {counts['stored']} stored, {counts['unchanged']} unchanged, {counts['bad_input']} bad input, "
               f"{counts['scan_failed']} failed scans" + (f"; {dropped} old reports dropped" if dropped else "")
               + (f"; {len(missing)} paths not found" if missing else ""))
    sys.exit(EXIT_USAGE if missing else EXIT_OK)


@fleet.command("report")
@click.option("--db", "db_url", metavar="FILE|URL", help=_DB_HELP)
@click.option("--format", "fmt", type=click.Choice(("text", "json", "html", "prometheus", "sarif")), default="text", show_default=True,
              help="sarif: one run per host (its newest usable report), for code-scanning dashboards.")
@click.option("--output", "-o", "output", metavar="FILE", help="Write to FILE (0600, atomically) instead of standard output.")
@click.option("--platform", help="Only hosts with guests of this platform (libvirt, proxmox, ...).")
@click.option("--site", help="Only hosts of this site.")
@click.option("--group", "group", help="Only hosts of this inventory group.")
@click.option("--stale-days", type=click.FloatRange(min=0, min_open=True), help="Hosts not scanned within this many days are listed (default: [fleet] stale_days, or 7).")
@click.option("--weeks", type=click.IntRange(min=1), default=12, show_default=True, help="Weeks of trends.")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True, help="Seconds to wait for a locked database or a server.")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
def report(db_url: str | None, fmt: str, output: str | None, platform: str | None, site: str | None, group: str | None,
           stale_days: float | None, weeks: int, wait: float, config_path: str | None) -> None:
    """Worst hosts, the most common findings, a host x category table, stale hosts, hosts whose
    last report was unusable, and new/fixed findings per week."""
    from . import fleet as fl
    from . import fleet_render as render
    from .cli import _write

    db, config = _open(db_url, config_path, wait)
    try:
        if fmt == "sarif":
            sarif = fl.build_sarif(db, fl.Filters(platform, site, group))
        else:
            doc = fl.build_report(db, fl.Filters(platform, site, group),
                                  stale_days or config.fleet_stale_days or 7.0, weeks)
    except fl.FleetError as exc:
        _die(str(exc))
    finally:
        db.close()
    if fmt == "sarif":
        _write(json.dumps(sarif) + "\n", output, config.ownership())
        return
    text = {"json": render.to_json, "html": render.to_html, "prometheus": render.to_prometheus, "text": render.to_text}[fmt](doc)
    _write(text, output, config.ownership())


@fleet.command("diff")
@click.option("--since", required=True, metavar="DATE", help="Each host's newest report at this date ...")
@click.option("--until", metavar="DATE", help="... against its newest at this date (default: now).")
@click.option("--db", "db_url", metavar="FILE|URL", help=_DB_HELP)
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--platform", help="Only hosts with guests of this platform.")
@click.option("--site", help="Only hosts of this site.")
@click.option("--group", "group", help="Only hosts of this inventory group.")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True)
@click.option("--config", "config_path", metavar="FILE")
def diff(since: str, until: str | None, db_url: str | None, fmt: str, platform: str | None, site: str | None,
         group: str | None, wait: float, config_path: str | None) -> None:
    """New and fixed findings per host between two dates (matched as hyperward diff matches)."""
    from . import fleet as fl
    from . import fleet_render as render
    from .cli import _write

    start, end = _date(since, "--since", end_of_day=True), _date(until, "--until", end_of_day=True)
    assert start is not None
    db, _config = _open(db_url, config_path, wait)
    try:
        doc = fl.fleet_diff(db, fl.Filters(platform, site, group), start, end)
    except fl.FleetError as exc:
        _die(str(exc))
    finally:
        db.close()
    _write(render.to_json(doc) if fmt == "json" else render.diff_text(doc), None)

