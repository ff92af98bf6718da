"""`hyperward fix`: the reviewable change for each failing result (bash or Ansible), and --apply."""

from __future__ import annotations

import datetime
import json
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from .cli_common import die
from .textsafe import visible

if TYPE_CHECKING:
    from .fix.plan import Block, Failing


def _from_report(path: str) -> list[Failing]:
    from .fix.plan import Failing

    try:
        with open(path, "rb") as handle:
            data = handle.read(256 * 1024 * 1024)
        doc = json.loads(data.decode("utf-8"))
    except OSError as exc:
        die(f"{path}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        die(f"{path}: not a hyperward JSON report ({exc})")
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("tool") != "hyperward" or not isinstance(results, list):
        die(f"{path}: not a hyperward JSON report (no tool 'hyperward' with a results list)")
    out = []
    for i, r in enumerate(results):
        if not isinstance(r, dict) or not all(isinstance(r.get(k), str) for k in ("id", "status", "resource")):
            die(f"{path}: results[{i}] is not a result (id, status, resource)")
        if r["status"] != "fail":
            continue
        details = r.get("details") if isinstance(r.get("details"), dict) else {}
        out.append(Failing(r["id"], r["resource"], str(r.get("message", "")), str(r.get("remediation", "")), dict(details or {})))
    return out


def _scan(root: str | None, snapshot: str | None, config_path: str | None) -> tuple[list[Failing], Any]:
    from .cli import _load_facts
    from .config import ConfigError, load_config
    from .engine import registry, run_checks
    from .fix.plan import Failing
    from .model import Status

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        die(str(exc))
    facts = _load_facts(root if not snapshot else None, snapshot, None, config.vulndb_path, config.vulndb_max_age_days, config.backups,
                        config.scan_reports, config.history_path, config.monitor.database)
    report = run_checks(facts, registry(), config.profile or "multi-tenant", config.suppressions)
    failing = [Failing(f.check_id, f.result.resource, f.result.message, f.remediation, dict(f.result.details))
               for f in report.findings if f.status is Status.FAIL]
    return failing, facts


def _statuses(root: str, config_path: str | None) -> dict[tuple[str, str], tuple[Any, str]]:
    from .cli import _load_facts
    from .config import load_config
    from .engine import registry, run_checks

    config = load_config(config_path)
    facts = _load_facts(None if root == "/" else root, None, None, config.vulndb_path, config.vulndb_max_age_days, config.backups,
                        config.scan_reports, config.history_path, config.monitor.database)
    report = run_checks(facts, registry(), config.profile or "multi-tenant", config.suppressions)
    return {(f.check_id, f.result.resource): (f.status, f.result.message) for f in report.findings}


def _default_backup_dir(stamp: str) -> str:
    if os.geteuid() == 0:
        return f"/var/backups/hyperward-fix/{stamp}"
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "hyperward", "fix-backups", stamp)


@click.command("fix")
@click.option("--root", "root", metavar="DIR", help="Plan (and with --apply, edit) an offline tree instead of this host.")
@click.option("--snapshot", metavar="FILE", help="Plan from the facts of 'hyperward collect' (the files edited are this host's or --root's).")
@click.option("--report", "report_path", metavar="FILE", help="Plan from a saved JSON report (hyperward scan --format json).")
@click.option("--only", multiple=True, metavar="ID", help="Only the results of these checks (repeatable, comma-separated).")
@click.option("--format", "fmt", type=click.Choice(("bash", "ansible")), default="bash", show_default=True)
@click.option("--output", "-o", metavar="FILE", help="Write the artifact to FILE (private mode, never through a symlink).")
@click.option("--apply", "apply_", is_flag=True, help="Apply the bash form now, then scan again and report per finding.")
@click.option("--yes", is_flag=True, help="With --apply: do not ask for confirmation.")
@click.option("--backup-dir", metavar="DIR", help="With --apply: where copies of edited files go (default /var/backups/hyperward-fix/TIME).")
@click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present).")
def fix(root: str | None, snapshot: str | None, report_path: str | None, only: tuple[str, ...], fmt: str, output: str | None,
        apply_: bool, yes: bool, backup_dir: str | None, config_path: str | None) -> None:
    """Write the change that fixes each failing result: a bash script or Ansible tasks to review.

    Writing the artifact changes nothing on the host; --apply (root) runs it after asking."""
    from .fix import ansible, bash
    from .fix.plan import Context, build

    if snapshot and report_path:
        die("--snapshot and --report exclude each other")
    if root is not None and not os.path.isdir(root):
        die(f"--root {root}: no such directory")
    if apply_ and fmt != "bash":
        die("--apply runs the bash form; leave out --format ansible")
    if apply_ and root is None and os.geteuid() != 0:
        die("--apply on this host needs root (or --root DIR for an offline tree)")
    ids = [v.strip().upper() for value in only for v in value.split(",") if v.strip()]
    from .catalog import catalog

    unknown = [i for i in ids if i not in catalog()]
    if unknown:
        die(f"unknown check ID {unknown[0]!r} (--only takes check IDs; see 'hyperward checks')")
    if report_path:
        failing, facts = _from_report(report_path), None
    else:
        failing, facts = _scan(root, snapshot, config_path)
    target = os.path.realpath(root) if root else "/"
    blocks = build(failing, Context(target, facts), ids)
    now = datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    source = report_path or snapshot or ("scan of " + (target if root else "this host"))
    if fmt == "ansible":
        text = ansible.render(blocks, root=target, source=source, stamp=stamp)
    else:
        text = bash.render(blocks, root=target, source=source, stamp=stamp)
    if not apply_:
        from .cli import _write

        _write(text, output)
        if output:
            automatic = sum(b.automatic for b in blocks)
            click.echo(f"wrote {visible(output)}: {len(blocks)} block(s), {automatic} automatic, {len(blocks) - automatic} by hand", err=True)
        return
    if output:
        from .cli import _write

        _write(text, output)
    _apply(blocks, text, target, backup_dir or _default_backup_dir(stamp), yes, config_path)


def _apply(blocks: list[Block], script: str, target: str, backup_dir: str, yes: bool, config_path: str | None) -> None:
    from .fix.apply import ApplyError, judge, run_script

    automatic = [b for b in blocks if b.automatic]
    where = "this host" if target == "/" else target
    click.echo(f"{len(automatic)} of {len(blocks)} failing result(s) have an automatic fix for {visible(where)}; "
               f"backups go to {visible(backup_dir)}. Nothing is restarted or rebooted.")
    if not automatic:
        return
    if not yes and not click.confirm("Apply them now?", default=False):
        die("nothing applied")
    try:
        results, output = run_script(script, target, backup_dir)
    except ApplyError as exc:
        die(str(exc))
    rescan = _statuses(target, config_path)
    outcomes = judge(blocks, results, output, rescan)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.verdict] = counts.get(outcome.verdict, 0) + 1
        if outcome.block.automatic or outcome.verdict != "by hand":
            b = outcome.block
            line = f"{outcome.verdict:<14} {b.check_id:<12} {visible(b.resource)}"
            if outcome.detail:
                line += f": {visible(outcome.detail)}"
            click.echo(line)
    click.echo("summary: " + ", ".join(f"{counts[k]} {k}" for k in
                                      ("fixed", "needs restart", "needs reboot", "still failing", "refused", "failed", "by hand") if k in counts))
    # A rescan reads the files, not what the daemons and guests loaded: a result can pass while the
    # change it judges waits for a restart. Each one the applied blocks need is named, once.
    pending = dict.fromkeys(need.describe() for outcome in outcomes if outcome.script == "done" for need in outcome.block.needs)
    if pending:
        click.echo("to take effect (not done here):")
        for text in pending:
            click.echo(f"  {visible(text)}")
    sys.exit(1 if counts.get("refused") or counts.get("failed") else 0)
