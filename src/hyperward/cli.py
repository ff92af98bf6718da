"""Command line. Exit codes: 0 nothing at or above --fail-on fails, 1 something does, 2 usage
error or a scan that could not run at all."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

import click

from . import __version__
from .cli_common import EXIT_FINDINGS, EXIT_OK
from .cli_common import die as _die
from .model import PROFILES, Category, Severity, Status
from .report import FORMATS
from .textsafe import rich_text, visible

if TYPE_CHECKING:
    import datetime
    from collections.abc import Iterator
    from typing import Any

    from .background import Pending
    from .config import BackupConfig, Config, VirtualBoxConfig
    from .engine import RegisteredCheck, ScanReport
    from .facts import HostFacts, PatchingFacts
    from .report import Reporter
    from .safefile import Ownership
    from .sourced import Spec
    from .vulndb import Build, ImportReport

FORMAT_NAMES = tuple(FORMATS)
#: the commands that list things (checks, db status, reach) print text or JSON; the report formats are the scan's
LISTING_FORMATS = ("text", "json")
SEVERITY_NAMES = tuple(s.label for s in sorted(Severity, reverse=True) if s is not Severity.INFO)


#: the longest suffix first: report.ocsf.json is OCSF, not JSON
SUFFIXES: tuple[tuple[str, str], ...] = ((".ocsf.json", "ocsf"), (".json", "json"), (".sarif", "sarif"), (".xml", "junit"),
                                         (".html", "html"), (".prom", "prometheus"), (".txt", "text"))


def _split(values: tuple[str, ...]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _use_color(output: str | None) -> bool:
    if output or "NO_COLOR" in os.environ:
        return False
    return sys.stdout.isatty()


def _write(text: str, output: str | None, ownership: Ownership | None = None) -> None:
    """To a file: atomically, never through a symlink, 0600 (0640 for the config's [files] group)."""
    if output:
        from . import safefile

        try:
            safefile.write_text(output, text, ownership or safefile.PRIVATE)
        except safefile.UnsafePath as exc:
            _die(str(exc))
        except OSError as exc:
            _die(f"cannot write {output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


class _Main(click.Group):
    """The monitor's commands (cli_monitor.py) are attached when one of them is asked for, or when
    help lists them: a scan then never imports the monitor."""

    MONITOR = ("history", "monitor", "top")
    monitor_attached = False

    def _attach_monitor(self) -> None:
        if not self.monitor_attached:
            self.monitor_attached = True
            from .cli_monitor import register

            register(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.MONITOR:
            self._attach_monitor()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._attach_monitor()
        return super().list_commands(ctx)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hyperward")
def main() -> None:
    """Audit the security of a KVM/libvirt virtualization host beyond its firewall.

    hyperward only reads: it never changes the host it audits, except 'hyperward fix --apply' when asked."""


@main.command()
@click.option("--root", "root", metavar="DIR", help="Audit an offline tree (mounted image, copy of /etc /proc /sys /var) instead of this host.")
@click.option("--snapshot", metavar="FILE", help="Evaluate facts saved by 'hyperward collect' instead of collecting.")
@click.option("--connect", "-c", "connect", metavar="URI", help="libvirt URI to ask besides the files (default on a live host: qemu:///system when its socket exists; test:///FILE works too).")
@click.option("--vsphere", "vsphere", multiple=True, metavar="HOST[:PORT]", help="Also audit this vCenter or ESXi host over the vSphere API (repeatable; credentials from $HYPERWARD_VSPHERE_USER/$HYPERWARD_VSPHERE_PASSWORD or the config's [vsphere] section). Given without --root, only the vSphere inventory is audited (the config's [vsphere] hosts join a normal scan instead).")
@click.option("--vsphere-ca", "vsphere_ca", metavar="FILE", help="Verify the vSphere endpoints' TLS certificates against this CA bundle instead of the system store.")
@click.option("--vsphere-insecure", "vsphere_insecure", is_flag=True, help="Do not verify the vSphere endpoints' TLS certificates (a test lab only).")
@click.option("--vbox-home", "vbox_home", metavar="DIR", help="Also audit a copied VirtualBox home (VirtualBox.xml and machine folders) from any OS.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), help="Report format (default: text, or from the suffix of a single -o FILE).")
@click.option("--output", "-o", "outputs", metavar="FILE", multiple=True,
              help="Write the report to FILE instead of standard output; repeatable, each file's format from its suffix "
                   "(" + ", ".join(f"{s} {f}" for s, f in SUFFIXES) + ").")
@click.option("--framework", metavar="NAME", help="Run only the checks mapped to this framework (nist-800-125a, stig, cis-debian).")
@click.option("--fail-on", type=click.Choice(SEVERITY_NAMES), help="Exit 1 when a finding at or above this severity fails, or a check at or above it could not run (default: never).")
@click.option("--allow-errors", is_flag=True, help="With --fail-on: do not fail the gate for checks that could not run (error results).")
@click.option("--only", multiple=True, metavar="ID|CATEGORY", help="Run only these checks (repeatable, comma-separated): HV-SIDE-001, SIDE, ...")
@click.option("--skip", multiple=True, metavar="ID|CATEGORY", help="Skip these checks (repeatable, comma-separated).")
@click.option("--profile", type=click.Choice(PROFILES), help="Tenancy profile; changes SMT, KSM and nested rows' severity (default multi-tenant).")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
@click.option("--vulndb", metavar="FILE", help="Advisory database to match packages against (default: the config's [vulndb] path, $HYPERWARD_VULNDB, or /var/lib/hyperward/advisories.sqlite).")
@click.option("--record", is_flag=True, help="Store this scan's results in hyperward's scan history (HV-SCAN-001); the only write a scan makes, and only when asked.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line (text format).")
@click.option("--verbose", "-v", is_flag=True, help="Also list passing and not-applicable results (text format).")
@click.option("--guests", "guests", is_flag=True, help="Also look inside every guest's disks (read-only, no agent; needs libguestfs): their patches, SSH, accounts and the credentials that lead to the host.")
def scan(
    root: str | None,
    snapshot: str | None,
    fmt: str | None,
    outputs: tuple[str, ...],
    framework: str | None,
    fail_on: str | None,
    only: tuple[str, ...],
    skip: tuple[str, ...],
    profile: str | None,
    config_path: str | None,
    quiet: bool,
    verbose: bool,
    connect: str | None,
    vulndb: str | None,
    record: bool,
    allow_errors: bool,
    vsphere: tuple[str, ...] = (),
    vsphere_ca: str | None = None,
    vsphere_insecure: bool = False,
    vbox_home: str | None = None,
    guests: bool = False,
) -> None:
    """Collect facts from this host (or --root, or --snapshot) and run every check."""
    started = time.perf_counter()
    early = None
    if not snapshot and not (vsphere and not root):  # an API-only scan reads no root
        from .background import patching_in_background

        early = patching_in_background(root or "/")  # on another core while the rest is imported
    from .catalog import catalog
    from .config import ConfigError, load_config
    from .engine import registry, run_checks, select
    from .report import RenderOptions

    if root and snapshot:
        _die("--root and --snapshot exclude each other")
    if connect and snapshot:
        _die("--connect and --snapshot exclude each other")
    if (vsphere or vsphere_ca or vsphere_insecure) and snapshot:
        _die("--vsphere and --snapshot exclude each other (the snapshot holds what was collected)")
    if vbox_home and snapshot:
        _die("--vbox-home and --snapshot exclude each other")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    endpoints, vsettings = _vsphere_options(config, vsphere, vsphere_ca, vsphere_insecure)
    only_ids, skip_ids = _split(only) or config.only, _split(skip) or config.skip
    try:
        select(registry(platforms=()), only_ids, skip_ids)  # names are checked before anything is collected
    except ValueError as exc:
        _die(str(exc))
    targets = _targets(fmt, outputs)  # before collecting: a typo in a file name never costs a whole scan
    collecting = time.perf_counter()
    facts = _load_facts(root, snapshot, connect, vulndb or config.vulndb_path, config.vulndb_max_age_days, config.backups,
                        config.scan_reports, config.history_path, config.monitor.database, endpoints, vsettings,
                        api_only=bool(vsphere) and not root, early=early, vbox_home=vbox_home, virtualbox=config.virtualbox)
    if guests:
        if snapshot:
            _die("--guests reads the guests' disks: it cannot be combined with --snapshot")
        from .cli_guests import with_insides

        facts = with_insides(facts, root, [], vulndb or config.vulndb_path, config.vulndb_max_age_days)
    collect_s = time.perf_counter() - collecting
    checks = select(registry(platforms=facts.platforms), only_ids, skip_ids)
    if (vsphere and not root) or facts.meta.root.startswith("vsphere://"):
        checks = _vsphere_only(checks)
    if framework:
        checks = _framework_checks(checks, framework)
    requested = {s.upper() for s in [*only_ids, *skip_ids]}
    planned = sorted(requested & (set(catalog()) - set(registry()))) if requested else []
    profile = profile or config.profile or "multi-tenant"
    report = run_checks(facts, checks, profile, config.suppressions)
    report.collect_s = collect_s
    report.total_s = time.perf_counter() - started
    report.warnings.extend(f"{cid} is in the catalog but not implemented in hyperward {__version__}: --only/--skip ignore it" for cid in planned)
    # The facts and findings outlive the rendering: frozen, the collector stops walking them. Rendering
    # allocates enough containers for a 1,000-guest host to set off a full collection that otherwise
    # traverses every fact and finding (0.08-0.14 s of the rendering; frozen 0.005-0.012 s). Unfrozen
    # after, so a caller that scans in a loop still gets its cycles collected.
    gc.freeze()
    try:
        from .report.outputs import write_all

        jobs = []
        for name, output in targets:
            _reporter(name)  # a format missing from this build ends the scan before anything is written
            width = shutil.get_terminal_size((100, 24)).columns if not output else 100
            jobs.append((name, RenderOptions(color=_use_color(output), verbose=verbose, quiet=quiet, width=max(60, width)), output))
        ownership = config.ownership()
        write_all(report, jobs, lambda text, output: _write(text, output, ownership))
    finally:
        gc.unfreeze()
    if record or config.history_record:
        from . import history

        target = config.history_path or history.default_path()
        try:
            history.record(target, report, config.ownership())
        except (OSError, sqlite3.DatabaseError) as exc:
            click.echo(f"hyperward: could not record the scan in {visible(target)}: {visible(exc)}", err=True)
    threshold = Severity.parse(fail_on) if fail_on else config.fail_on
    sys.exit(EXIT_FINDINGS if threshold is not None and _gate_fails(report, threshold, allow_errors) else EXIT_OK)


def _collect_api_only(vsphere: list[str], settings: object, vulndb: str | None, vulndb_max_age_days: int | None) -> HostFacts:
    """No --root: the facts of an empty tree (nothing of the machine running hyperward) plus the
    vSphere inventory, named after the endpoints."""
    import dataclasses
    import shutil
    import tempfile

    from .collect import collect_host

    empty = tempfile.mkdtemp(prefix="hyperward-vsphere-")
    try:
        facts = collect_host(empty, None, vulndb, vulndb_max_age_days, vsphere=vsphere, vsphere_settings=settings)
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    where = ", ".join(f"vsphere://{e}" for e in vsphere)
    return dataclasses.replace(facts, meta=dataclasses.replace(facts.meta, hostname=", ".join(vsphere), root=where))


def _format_of(path: str) -> str | None:
    lowered = path.lower()
    return next((name for suffix, name in SUFFIXES if lowered.endswith(suffix)), None)


def _targets(fmt: str | None, outputs: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(format, file or None for standard output) per report to write. Checked before collecting, so a
    typo in a file name never costs a whole scan."""
    if not outputs:
        return [(fmt or "text", None)]
    if len(outputs) == 1:
        return [(fmt or _format_of(outputs[0]) or "text", outputs[0])]
    if fmt:
        _die("--format applies to a single -o FILE; with several, each file's suffix names its format")
    if len(set(outputs)) != len(outputs):
        _die("the same -o FILE is given twice")
    targets: list[tuple[str, str | None]] = []
    for path in outputs:
        name = _format_of(path)
        if name is None:
            _die(f"-o {path}: no known suffix to tell its format (" + ", ".join(s for s, _ in SUFFIXES) + ")")
        targets.append((name, path))
    return targets


def _reporter(name: str) -> Reporter:
    from .report import get_reporter

    try:
        return get_reporter(name)
    except ModuleNotFoundError as exc:
        _die(f"the {name} report is not available in this build of hyperward ({exc.name} is missing)")


def _framework_checks(checks: dict[str, RegisteredCheck], name: str) -> dict[str, RegisteredCheck]:
    from . import frameworks

    try:
        key = frameworks.parse_name(name)
    except ValueError as exc:
        _die(str(exc))
    wanted = frameworks.checks_in(key)
    if not wanted:
        _die(f"framework {key} has no check mapped to it yet (see docs/frameworks.md)")
    return {cid: c for cid, c in checks.items() if cid in wanted}


def _gate_fails(report: ScanReport, threshold: Severity, allow_errors: bool) -> bool:
    """A gate that passes when a check did not run is no gate: an error at or above the threshold
    fails it like a failure, unless the caller explicitly allows errors."""
    worst = report.worst_failure()
    if worst is not None and worst >= threshold:
        return True
    return not allow_errors and any(f.status is Status.ERROR and f.severity >= threshold for f in report.findings)


def _vsphere_options(config: Config, hosts: tuple[str, ...], ca: str | None, insecure: bool) -> tuple[list[str], object]:
    """The endpoints (--vsphere, else the config's [vsphere] hosts) and how to reach them; none
    (and ESXi's defaults) where neither the command line nor the config speaks of vSphere."""
    table = config.vsphere
    if not hosts and not table and not ca and not insecure:
        return [], None
    from .platforms.esxi.settings import DEFAULT_TIMEOUT, VsphereSettings

    endpoints = list(hosts) or [str(h) for h in table.get("hosts", []) or []]  # type: ignore[attr-defined]
    if ca and insecure:
        _die("--vsphere-ca and --vsphere-insecure exclude each other")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    settings = VsphereSettings(
        user=str(table["user"]) if "user" in table else None,
        password_file=str(table["password_file"]) if "password_file" in table else None,
        ca_file=ca or (str(table["ca_file"]) if "ca_file" in table else None),
        insecure=insecure or bool(table.get("insecure", False)),
        timeout=float(timeout) if isinstance(timeout, (int, float)) else DEFAULT_TIMEOUT,
        framework=str(table.get("framework", "stig")),
    )
    return endpoints, settings


def _vsphere_only(checks: dict[str, RegisteredCheck]) -> dict[str, RegisteredCheck]:
    """An API-only scan judges the vSphere inventory: ESXi's rows and the checks written once
    over every guest, not the Linux host hyperward happens to run on."""
    from .catalog import catalog

    entries = catalog()
    return {cid: c for cid, c in checks.items()
            if (cid in entries and entries[cid].platform == "E") or getattr(c.fn, "__module__", "") == "hyperward.guests.checks"}


def _load_facts(root: str | None, snapshot: str | None, connect: str | None = None, vulndb: str | None = None,
                vulndb_max_age_days: int | None = None, backups: BackupConfig | None = None, scan_reports: list[str] | None = None,
                history_path: str | None = None, monitor_db: str | None = None, vsphere: list[str] | None = None,
                vsphere_settings: object = None, api_only: bool = False,
                early: Pending[PatchingFacts] | None = None, vbox_home: str | None = None,
                virtualbox: VirtualBoxConfig | None = None) -> HostFacts:
    """api_only: --vsphere named on the command line without --root, so the machine running
    hyperward is not audited (endpoints from the config's [vsphere] hosts join a normal scan).
    early: the package collection started for this root before the rest was imported."""
    from .collect import RootError, collect_host
    from .facts import SnapshotError, load_snapshot

    if snapshot:
        try:
            with open(snapshot, "rb") as handle:
                data = handle.read(512 * 1024 * 1024)
            return _with_tables(_with_virtualbox(load_snapshot(data.decode("utf-8", errors="strict"), snapshot), virtualbox))
        except OSError as exc:
            _die(f"{snapshot}: {exc.strerror or exc}")
        except UnicodeDecodeError:
            _die(f"{snapshot}: not a JSON document (not UTF-8 text)")
        except SnapshotError as exc:
            _die(str(exc))
    try:
        if vbox_home is not None and not os.path.isdir(vbox_home):
            _die(f"--vbox-home {visible(vbox_home)}: no such directory")
        if vsphere and api_only:
            return _collect_api_only(vsphere, vsphere_settings, vulndb, vulndb_max_age_days)
        return collect_host(root or "/", connect, vulndb, vulndb_max_age_days, backups, scan_reports=scan_reports,
                            history_path=history_path, monitor_db=monitor_db, vsphere=vsphere, vsphere_settings=vsphere_settings,
                            early_patching=early, vbox_home=vbox_home, virtualbox_settings=virtualbox)
    except RootError as exc:
        _die(str(exc))
    except Exception as exc:  # a collector bug must not end in a traceback on a production host
        if os.environ.get("HYPERWARD_DEBUG"):
            raise
        _die(f"internal error while collecting facts from {root or '/'}: {type(exc).__name__}: {exc} "
             "(a bug in hyperward; HYPERWARD_DEBUG=1 shows the traceback)")


def _with_virtualbox(facts: HostFacts, virtualbox: VirtualBoxConfig | None) -> HostFacts:
    """A snapshot keeps the [virtualbox] sensitive list it was collected with; the scanning
    config's own list, where it names one, is what the scan judges instead."""
    found = facts.platforms.get("virtualbox")
    if virtualbox is None or not virtualbox.sensitive or found is None:
        return facts
    import dataclasses

    platforms = type(facts.platforms)({**facts.platforms, "virtualbox": dataclasses.replace(
        found, sensitive=list(virtualbox.sensitive), sensitive_source=virtualbox.source)})
    return dataclasses.replace(facts, platforms=platforms)


def _with_tables(facts: HostFacts) -> HostFacts:
    """A snapshot records the sourced tables it was collected with; a scan of it judges with the
    scanning machine's (packaged or refreshed by `db update`), as a live scan here would, so a
    refreshed table takes effect on old snapshots too. The age rule still counts from the facts'
    own collection time."""
    import dataclasses

    if "esxi" not in facts.platforms and "virtualbox" not in facts.platforms:
        return facts
    platforms = dict(facts.platforms)
    if "esxi" in platforms:
        from .platforms.esxi import builds

        platforms["esxi"] = dataclasses.replace(platforms["esxi"], build_table=builds.load())
    if "virtualbox" in platforms:
        from .platforms.virtualbox import security

        platforms["virtualbox"] = dataclasses.replace(platforms["virtualbox"], security_table=security.load())
    return dataclasses.replace(facts, platforms=type(facts.platforms)(platforms))


@main.command()
@click.option("--root", "root", metavar="DIR", help="Collect from an offline tree instead of this host.")
@click.option("--output", "-o", metavar="FILE", required=True, help="Where to save the snapshot ('-' for standard output).")
@click.option("--connect", "-c", "connect", metavar="URI", help="libvirt URI to ask besides the files (default on a live host: qemu:///system when its socket exists; test:///FILE works too).")
@click.option("--vsphere", "vsphere", multiple=True, metavar="HOST[:PORT]", help="Also audit this vCenter or ESXi host over the vSphere API (repeatable; credentials from $HYPERWARD_VSPHERE_USER/$HYPERWARD_VSPHERE_PASSWORD or the config's [vsphere] section). Given without --root, only the vSphere inventory is audited (the config's [vsphere] hosts join a normal scan instead).")
@click.option("--vsphere-ca", "vsphere_ca", metavar="FILE", help="Verify the vSphere endpoints' TLS certificates against this CA bundle instead of the system store.")
@click.option("--vsphere-insecure", "vsphere_insecure", is_flag=True, help="Do not verify the vSphere endpoints' TLS certificates (a test lab only).")
@click.option("--vulndb", metavar="FILE", help="Advisory database to match packages against (default: the config's [vulndb] path, $HYPERWARD_VULNDB, or /var/lib/hyperward/advisories.sqlite).")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
@click.option("--vbox-home", "vbox_home", metavar="DIR", help="Also audit a copied VirtualBox home (VirtualBox.xml and machine folders) from any OS.")
@click.option("--guests", "guests", is_flag=True, help="Also look inside every guest's disks (read-only; needs libguestfs). The snapshot holds fingerprints, paths and per-scan tokens, never a key, hash or password.")
def collect(root: str | None, output: str, connect: str | None, vulndb: str | None, config_path: str | None,
            vsphere: tuple[str, ...] = (), vsphere_ca: str | None = None, vsphere_insecure: bool = False,
            vbox_home: str | None = None, guests: bool = False) -> None:
    """Save this host's facts as a JSON snapshot for 'hyperward scan --snapshot' elsewhere."""
    from .config import ConfigError, load_config
    from .facts import dump_snapshot

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    endpoints, vsettings = _vsphere_options(config, vsphere, vsphere_ca, vsphere_insecure)
    facts = _load_facts(root, None, connect, vulndb or config.vulndb_path, config.vulndb_max_age_days, config.backups,
                        config.scan_reports, config.history_path, config.monitor.database, endpoints, vsettings,
                        api_only=bool(vsphere) and not root, vbox_home=vbox_home, virtualbox=config.virtualbox)
    if guests:
        from .cli_guests import with_insides

        facts = with_insides(facts, root, [], vulndb or config.vulndb_path, config.vulndb_max_age_days)
    _write(dump_snapshot(facts) + "\n", None if output == "-" else output, config.ownership())


@main.command("checks")
@click.option("--format", "fmt", type=click.Choice(LISTING_FORMATS), default="text", show_default=True)
@click.option("--all", "show_all", is_flag=True, help="Also list catalog entries not implemented yet.")
@click.option("--platform", "platforms", multiple=True, metavar="NAME",
              help="Only the rows of this platform (libvirt, proxmox, xen, esxi, virtualbox, or linux for any Linux host); repeatable.")
def list_checks(fmt: str, show_all: bool, platforms: tuple[str, ...]) -> None:
    """List the checks: ID, platform, category, severity, title."""
    from .catalog import catalog
    from .engine import registry
    from .platforms import registry as platform_registry

    known = {name: p.letter for name, p in platform_registry().items()} | {"linux": "L"}
    letters = set()
    for name in platforms:
        key = name.strip().lower()
        if key not in known:
            _die(f"unknown platform {name!r} (one of: {', '.join(sorted(known))})")
        letters.add(known[key])
    names = {letter: name for name, letter in known.items()}
    implemented = registry()
    rows = []
    for cid, entry in catalog().items():
        if letters and entry.platform not in letters:
            continue
        platform = names.get(entry.platform, entry.platform)
        if cid in implemented:
            meta = implemented[cid].meta
            rows.append((cid, platform, meta.category.value, meta.severity.label, meta.title, True))
        elif show_all:
            rows.append((cid, platform, Category.from_check_id(cid).value, entry.severity, entry.title, False))
    if fmt == "json":
        click.echo(json.dumps([{"id": r[0], "platform": r[1], "category": r[2], "severity": r[3], "title": r[4], "implemented": r[5]}
                               for r in rows], indent=2))
        return
    for cid, platform, category, severity, title, done in rows:
        click.echo(f"{cid:<13} {platform:<8} {category:<5} {severity:<9} {title}{'' if done else '  (not implemented yet)'}")


@main.command()
@click.argument("check_id")
def explain(check_id: str) -> None:
    """Print a check's rationale, detection, pass condition, remediation and references (or every
    check of a category: SIDE, hv-side, HV-SIDE, "side channels")."""
    from .catalog import catalog
    from .engine import parse_category, registry

    cid = check_id.strip().upper()
    entries = catalog()
    if cid in entries:
        click.echo(_explanation(cid))
        return
    category = parse_category(check_id)
    if category is None:
        _die(f"unknown check ID or category {check_id!r} (see 'hyperward checks --all')")
    implemented = registry()
    ids = [c for c in entries if Category.from_check_id(c) is category and c in implemented]
    click.echo("\n\n".join(_explanation(c) for c in ids))


def _explanation(cid: str) -> str:
    from .catalog import catalog
    from .engine import registry

    entry = catalog()[cid]
    registered = registry().get(cid)
    lines = [f"{cid}: {entry.title}", ""]
    lines.append(f"Category:      {Category.from_check_id(cid).label}")
    lines.append(f"Severity:      {entry.severity} (catalog: {entry.severity_text})")
    if registered and registered.meta.profile_severity:
        lines.append("Profiles:      " + ", ".join(f"{p}: {s.label}" for p, s in registered.meta.profile_severity.items()))
    if registered:
        import inspect

        fn = inspect.unwrap(registered.fn)
        module = fn.__module__
        where = inspect.getsourcefile(fn) or module
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        shown = os.path.relpath(where, package_root) if where.startswith(package_root) else where
        lines.append(f"Implemented:   {shown}:{inspect.getsourcelines(fn)[1]} {fn.__qualname__}() ({module})")
    else:
        lines.append("Implemented:   not yet")
    lines.append("")
    if registered and registered.meta.rationale:
        lines += ["Rationale:", *("  " + line for line in registered.meta.rationale.splitlines()), ""]
    fix = registered.meta.fix if registered and registered.meta.fix else entry.remediation
    from .shorthand import DOMAIN_XML, DOMAIN_XML_SOURCES, expand

    detection, passes = expand(entry.detection), expand(entry.passes_when)
    lines.append(f"Detection:     {detection}")
    if DOMAIN_XML in detection + passes:
        lines.append(f"               ({DOMAIN_XML_SOURCES})")
    lines += [f"Passes when:   {passes}", f"Remediation:   {fix}"]
    references = list(registered.meta.references) if registered else []
    if entry.sources:
        references.append(f"primary sources: {entry.sources}")
    lines += ["", "References:", *(f"  - {ref}" for ref in references)] if references else []
    return "\n".join(lines)


@main.group()
def db() -> None:
    """The offline advisory database HV-VULN-001 matches installed packages against."""


def _db_config(config_path: str | None, path: str | None) -> tuple[str, int, list[str], Ownership]:
    from . import vulndb
    from .config import ConfigError, load_config

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    return (path or config.vulndb_path or vulndb.default_path(),
            config.vulndb_max_age_days or vulndb.DEFAULT_MAX_AGE_DAYS, config.vulndb_sources or list(vulndb.DEFAULT_SOURCES),
            config.ownership())


_db_path = click.option("--db", "path", metavar="FILE", help="Database file (default: the config's [vulndb] path, $HYPERWARD_VULNDB, or /var/lib/hyperward/advisories.sqlite).")
_db_conf = click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")


def _report_import(report: ImportReport) -> None:
    shown = report.errors[:20]
    for error in shown:
        click.echo(f"hyperward: skipped: {visible(error)}", err=True)
    if len(report.errors) > len(shown):
        click.echo(f"hyperward: ... and {len(report.errors) - len(shown)} more skipped entries", err=True)
    click.echo(f"{visible(report.source)}: {report.imported} advisories imported ({report.kind}), {len(report.errors)} skipped")


@contextlib.contextmanager
def _building(db_file: str, ownership: Ownership) -> Iterator[Build]:
    """A new advisory database beside DB_FILE, renamed over it only when the block ends normally;
    any error or exit leaves the old one (or none) untouched."""
    from . import vulndb

    try:
        build = vulndb.Build(db_file, ownership)
    except (vulndb.DatabaseError, OSError) as exc:
        _die(str(exc))
    try:
        yield build
    except (vulndb.DatabaseError, OSError, sqlite3.DatabaseError) as exc:
        build.abort()
        _die(f"{db_file} is unchanged: {exc}")
    except BaseException:
        build.abort()
        raise
    try:
        build.commit()
    except (vulndb.DatabaseError, OSError, sqlite3.DatabaseError) as exc:
        _die(f"{db_file} is unchanged: {exc}")


@db.command("import")
@click.argument("sources", nargs=-1, required=True, metavar="FILE|DIR...")
@_db_path
@_db_conf
def db_import(sources: tuple[str, ...], path: str | None, config_path: str | None) -> None:
    """Import OSV JSON (files, directories, OSV zip exports) or the Debian security tracker's JSON.

    Re-importing a source replaces what it imported before. Bad entries are named and skipped."""
    from . import vulndb

    db_file, _, _, ownership = _db_config(config_path, path)
    for source in sources:
        if not os.path.exists(source):
            _die(f"{source}: no such file or directory")
    imported = 0
    with _building(db_file, ownership) as build:
        for source in sources:
            report = vulndb.import_path(build.conn, source)
            _report_import(report)
            imported += report.imported
        if not imported:
            _die(f"nothing was imported; {db_file} is unchanged")


@db.command("update")
@click.option("--url", "urls", multiple=True, metavar="URL", help="Download from these URLs instead of the configured sources (repeatable).")
@click.option("--timeout", default=60.0, show_default=True,
              help="Seconds without data before a download is abandoned; also the window over which it must average 1 KiB/s.")
@click.option("--deadline", default=1800.0, show_default=True, help="Seconds a whole download may take, however it trickles.")
@_db_path
@_db_conf
def db_update(urls: tuple[str, ...], timeout: float, deadline: float, path: str | None, config_path: str | None) -> None:
    """Download the advisory sources (OSV Debian export, Debian security tracker) and import them."""
    import tempfile

    from . import vulndb
    from .download import DownloadError, download

    db_file, _, configured, ownership = _db_config(config_path, path)
    targets = list(urls) or configured
    failed = imported = 0
    for spec, table_url in _table_urls(config_path):
        failed += not _refresh_table(spec, table_url, timeout, deadline, ownership)
    with _building(db_file, ownership) as build, tempfile.TemporaryDirectory(prefix="hyperward-db-") as tmp:
        for url in targets:
            name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
            local = os.path.join(tmp, name if name.endswith((".zip", ".json")) else name + ".json")
            try:
                download(url, local, timeout=timeout, deadline=deadline, show_progress=sys.stderr.isatty())
            except DownloadError as exc:
                click.echo(f"hyperward: {visible(url)}: {visible(exc)}", err=True)
                failed += 1
                continue
            report = vulndb.import_path(build.conn, local, name=url)
            _report_import(report)
            imported += report.imported
        if not imported:
            _die(f"{'no source could be downloaded' if failed == len(targets) else 'nothing was imported'}; {db_file} is unchanged")
    sys.exit(EXIT_FINDINGS if failed else EXIT_OK)


def _table_urls(config_path: str | None) -> list[tuple[Spec[Any], str]]:
    """The sourced tables the config's [vulndb] names a URL for (esxi_builds_url,
    virtualbox_security_url, lifecycle_url), in sourced.all_specs() order."""
    from .config import ConfigError, load_config
    from .sourced import all_specs

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
    return [(spec, url) for spec in all_specs() if (url := getattr(config, spec.config_key, None))]


def _refresh_table(spec: Spec[Any], url: str, timeout: float, deadline: float, ownership: Ownership) -> bool:
    """One sourced table from URL, validated whole, then written over the refreshed copy
    atomically; anything wrong is one error and the copy on disk stays as it was."""
    from .sourced import refresh

    written, said = refresh(spec, url, timeout=timeout, deadline=deadline, ownership=ownership)
    if written:
        click.echo(visible(said))
    else:
        click.echo(f"hyperward: {visible(said)}", err=True)
    return written


@db.command("status")
@click.option("--format", "fmt", type=click.Choice(LISTING_FORMATS), default="text", show_default=True)
@_db_path
@_db_conf
def db_status(fmt: str, path: str | None, config_path: str | None) -> None:
    """Sources, advisory counts and age of the database; exit 1 when it is older than the limit."""
    import datetime

    from . import vulndb

    db_file, max_age, _, _ = _db_config(config_path, path)
    try:
        conn = vulndb.open_read_only(db_file)
    except vulndb.DatabaseError as exc:
        _die(str(exc))
    rows = vulndb.sources(conn)
    total = conn.execute("SELECT COUNT(*) FROM advisories").fetchone()[0]
    conn.close()
    now = datetime.datetime.now(datetime.UTC)
    newest = max((r.imported_at for r in rows), default=None)
    age = (now - datetime.datetime.fromisoformat(newest)).total_seconds() / 86400 if newest else None
    stale = age is None or age > max_age
    tables = _table_status(now.date())
    if fmt == "json":
        click.echo(json.dumps({"database": db_file, "advisories": total, "updated_at": newest, "age_days": age, "max_age_days": max_age,
                               "stale": stale, "sources": [r.__dict__ for r in rows], "tables": tables}, indent=2))
    else:
        click.echo(f"{visible(db_file)}: {total} advisories from {len(rows)} source(s)")
        for r in rows:
            click.echo(f"  {visible(r.name)}  [{visible(r.kind)}]  {r.advisories} advisories, {r.errors} skipped, imported {r.imported_at}")
        state = "no sources imported" if age is None else f"updated {age:.1f} days ago"
        click.echo(f"{state} (limit {max_age} days){': STALE, run hyperward db update' if stale else ''}")
        for t in tables:
            if t["error"]:
                click.echo(f"{t['title']}: cannot be used: {visible(t['error'])}")
                continue
            where = "packaged copy" if t["origin"] == "bundled" else visible(t["origin"])
            note = f"; ignored {visible(t['ignored'])}" if t["ignored"] else ""
            click.echo(f"{t['title']}: compiled {t['compiled']} ({where}), {t['age_days']} days old (limit {t['max_age_days']} days)"
                       f"{': STALE, passes that lean on it are not applicable; run hyperward db update' if t['stale'] else ''}{note}")
    sys.exit(EXIT_FINDINGS if stale else EXIT_OK)


def _table_status(today: datetime.date) -> list[dict[str, Any]]:
    """Each sourced table a scan would judge with today: which copy, how old, whether it is past its
    max age (shown, but the exit status stays the advisory database's: a scan still runs)."""
    from .model import Unavailable
    from .sourced import all_specs, load

    out: list[dict[str, Any]] = []
    for spec in all_specs():
        found = load(spec)
        row: dict[str, Any] = {"title": spec.title, "format": spec.format, "url_key": spec.config_key, "error": None}
        if isinstance(found, Unavailable):
            row["error"] = found.describe()
        else:
            about = spec.about(found)
            age = about.age_days(today)
            row.update(compiled=about.compiled, origin=about.origin, ignored=about.ignored, age_days=age,
                       max_age_days=about.max_age_days, stale=age > about.max_age_days)
        out.append(row)
    return out


@main.command()
@click.option("--root", "root", metavar="DIR", help="An offline tree (without a live ruleset every answer is unknown).")
@click.option("--format", "fmt", type=click.Choice(LISTING_FORMATS), default="text", show_default=True)
def reach(root: str | None, fmt: str) -> None:
    """Which host services each guest network can reach through the host's nftables rules."""
    from rich.console import Console
    from rich.table import Table

    from .reach import guest_sources, offline, port_label

    facts = _load_facts(root, None)
    rows = facts.reachability
    blind = offline(facts)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    if not rows:
        if not guest_sources(facts):
            click.echo("no guest-facing bridge (no libvirt network or guest interface, no bridge with guest tap ports)")
        elif facts.network is not None and not (isinstance(facts.network.sockets, list) and facts.network.sockets):
            click.echo("no listening socket seen in /proc/net: nothing on this host for guests to reach")
        else:
            click.echo("no guest-facing bridge is up (defined networks are inactive): no guest sends through one now")
        return
    console = Console(no_color="NO_COLOR" in os.environ or not sys.stdout.isatty(), width=max(100, shutil.get_terminal_size((120, 24)).columns),
                      highlight=False)
    if blind:
        console.print("Offline tree: listening sockets cannot be seen (no /proc/net), so whether anything listens is unknown and "
                      "reachability of real services needs a live host. Below, per guest bridge and well-known port, what the "
                      "firewall rules would do with a guest's connection (host and guest addresses are not known either).")
    table = Table(show_lines=False)
    for column in ("guest network", "service", "process", "reachable", "because"):
        table.add_column(column, overflow="fold")
    for r in rows:
        label = port_label(r.port)
        state = {True: "YES", False: "no", None: "unknown"}[r.reachable]
        if r.listening is None:
            state = {True: "by rules: yes", False: "by rules: no", None: "unknown"}[r.reachable]
        where = f"[{r.address}]" if r.family == "ipv6" and r.address != "*" else r.address
        table.add_row(rich_text(r.source), rich_text(f"{where}:{r.port}/{r.protocol}" + (" ipv6" if r.family == "ipv6" else "") + (f" ({label})" if label else "")),
                      rich_text("unknown (offline)" if r.listening is None else f"{r.process or '?'}{f' [{r.pid}]' if r.pid else ''}"),
                      state, rich_text(r.because))
    console.print(table)


@main.command("diff")
@click.argument("reports", nargs=-1, metavar="[OLD NEW]")
@click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
@click.option("--fail-on-new", type=click.Choice(SEVERITY_NAMES), help="Exit 1 when a finding new since OLD fails at or above this severity (old debt does not count).")
@click.option("--history", "history_path", metavar="FILE", help="Scan history to read without OLD NEW (default: the config's [history] path, $HYPERWARD_HISTORY, or /var/lib/hyperward/history.sqlite).")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
@click.option("--verbose", "-v", is_flag=True, help="Also list the findings that still fail (text format).")
def diff_reports(reports: tuple[str, ...], fmt: str, fail_on_new: str | None, history_path: str | None, config_path: str | None,
                 verbose: bool) -> None:
    """New, fixed and still-failing findings between two JSON reports (hyperward scan --format json),
    or, without arguments, between the last two scans recorded with hyperward scan --record.

    Findings are matched by check ID and resource; message text and order are not compared."""
    from . import diff as differ

    if len(reports) not in (0, 2):
        _die("give two JSON reports (OLD NEW), or none to compare the last two recorded scans")
    try:
        if reports:
            old, new = differ.load_report(reports[0]), differ.load_report(reports[1])
        else:
            from . import history
            from .config import ConfigError, load_config

            try:
                config = load_config(config_path)
            except ConfigError as exc:
                _die(str(exc))
            old, new = differ.load_history(history_path or config.history_path or history.default_path())
    except differ.DiffError as exc:
        _die(str(exc))
    result = differ.compare(old, new)
    if fmt == "json":
        _write(json.dumps(differ.to_dict(result), indent=1) + "\n", None)
    else:
        _write(differ.to_text(result, verbose), None)
    threshold = Severity.parse(fail_on_new) if fail_on_new else None
    sys.exit(EXIT_FINDINGS if threshold is not None and differ.gate(result, threshold) else EXIT_OK)


@main.group()
def baseline() -> None:
    """The accepted state of the virtualization configuration that HV-IDS-006 compares against."""


@baseline.command("accept")
@click.option("--root", "root", metavar="DIR", help="Accept the configuration of an offline tree instead of this host.")
@click.option("--file", "path", metavar="FILE", help="Where to store the baseline (default: $HYPERWARD_BASELINE or /var/lib/hyperward/baseline.json).")
def baseline_accept(root: str | None, path: str | None) -> None:
    """Record normalized digests of qemu.conf, libvirtd.conf, and every domain, network and nwfilter
    definition as the accepted state. This writes only the baseline file."""
    import datetime
    import socket

    from .collect.drift import config_digests, default_baseline_path, write_baseline
    from .collect.fs import RootFS

    target = path or default_baseline_path()
    directory = root or "/"
    if not os.path.isdir(directory):
        _die(f"--root {directory}: no such directory")
    fs = RootFS(directory)
    if not fs.exists("/etc/libvirt"):
        _die(f"{directory}: no /etc/libvirt: nothing to accept")
    digests = config_digests(fs)
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    try:
        write_baseline(target, digests, socket.gethostname() if fs.live else directory, fs.root, now)
    except OSError as exc:
        _die(f"cannot write {target}: {exc.strerror or exc}")
    click.echo(f"accepted {len(digests)} files and definitions into {visible(target)}")


from .cli_fix import fix as _fix  # noqa: E402  (a light module: the fix machinery is imported when it runs)

main.add_command(_fix)

from .cli_guests import guests as _guests_group  # noqa: E402

main.add_command(_guests_group)

from .cli_fleet import fleet as _fleet  # noqa: E402  (light: the database code is imported when a fleet command runs)

main.add_command(_fleet)


if __name__ == "__main__":
    main()
