"""`hyperward monitor`, `monitor status`, `top`, `history`: the long-running side of hyperward."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import click

from .cli_common import die as _die
from . import safefile
from .config import Config, ConfigError, MonitorConfig, load_config
from .paths import data_file
from .safefile import Ownership
from .textsafe import visible

DEFAULT_URI = "qemu:///system"


def _config(config_path: str | None) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        _die(str(exc))
        raise


def _monitor_config(config_path: str | None) -> MonitorConfig:
    return _config(config_path).monitor


def _ownership(config_path: str | None) -> Ownership:
    return _config(config_path).ownership()


def default_db(config: MonitorConfig, path: str | None) -> str:
    return path or config.database or data_file("HYPERWARD_MONITOR_DB", "monitor.sqlite")


def _parse_since(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) > 1 and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) * units[text[-1]]
    raise click.BadParameter(f"{text!r}: expected a duration such as 90s, 30m, 6h or 2d")


def _open_source(uri: str | None, replay: str | None, config: MonitorConfig):  # type: ignore[no-untyped-def]
    from .monitor.source import LibvirtSource, ReplaySource

    if replay:
        return ReplaySource(replay)
    try:
        return LibvirtSource(uri or config.connect or DEFAULT_URI)
    except ImportError:
        _die("libvirt-python is not installed (apt install python3-libvirt)")


def register(main: click.Group) -> None:
    @main.group(invoke_without_command=True)
    @click.option("--config", "config_path", metavar="FILE", help="Config file (default /etc/hyperward/config.toml when present); see [monitor] in the README.")
    @click.option("--connect", "-c", "uri", metavar="URI", help=f"libvirt URI (default {DEFAULT_URI}).")
    @click.option("--interval", type=click.FloatRange(min=0.2), help="Seconds between samples (default 10).")
    @click.option("--db", "db_path", metavar="FILE", help="Monitor database (default /var/lib/hyperward/monitor.sqlite as root; $HYPERWARD_MONITOR_DB).")
    @click.option("--retention-days", type=click.FloatRange(min=0.01), help="Keep samples and alerts this long (default 14).")
    @click.option("--jsonl", "jsonl", multiple=True, metavar="FILE|-", help="Append alerts as JSON lines to FILE ('-' = standard output; the default when no sink is given).")
    @click.option("--syslog", "syslog", metavar="ADDRESS", help="Send alerts to syslog at ADDRESS (/dev/log, or HOST:PORT over UDP).")
    @click.option("--webhook", multiple=True, metavar="URL", help="POST alerts as JSON to URL.")
    @click.option("--alertmanager", multiple=True, metavar="URL", help="Send alerts to Prometheus Alertmanager's v2 API at URL (http://127.0.0.1:9093).")
    @click.option("--metrics", "metrics_addr", metavar="[HOST:]PORT", help="Serve Prometheus metrics, e.g. 127.0.0.1:9177 (a bare port listens on loopback).")
    @click.option("--replay", metavar="FILE", help="Read recorded bulk stats (JSON lines) instead of libvirt: for demos, benchmarks and tests.")
    @click.pass_context
    def monitor(ctx: click.Context, config_path: str | None, uri: str | None, interval: float | None, db_path: str | None,
                retention_days: float | None, jsonl: tuple[str, ...], syslog: str | None, webhook: tuple[str, ...],
                alertmanager: tuple[str, ...], metrics_addr: str | None, replay: str | None) -> None:
        """Watch every running VM: sample libvirt's bulk stats each interval, store them, learn each
        VM's normal, and alert on CPU saturation, traffic, packet-rate and disk-write surges, memory
        growth, lifecycle and console events, definition changes and unmanaged QEMU processes.

        Runs in the foreground until SIGTERM or Ctrl-C. Writes only its database and the alert
        files you name; it never changes a VM."""
        ctx.ensure_object(dict)
        ctx.obj["config_path"] = config_path
        if ctx.invoked_subcommand is not None:
            return
        from .monitor.detect import DetectorConfig
        from .monitor.metrics import MetricsServer
        from .monitor.service import Monitor, MonitorOptions
        from .monitor.sinks import AlertmanagerSink, JsonLinesSink, Sink, SyslogSink, WebhookSink
        from .monitor.store import Store, StoreError

        full_config = _config(config_path)
        config, ownership = full_config.monitor, full_config.ownership()
        sinks: list[Sink] = []
        try:
            for entry in config.sinks:
                o = entry.options
                if entry.type == "jsonl":
                    sinks.append(JsonLinesSink(str(o["path"]), ownership))
                elif entry.type == "syslog":
                    sinks.append(SyslogSink(str(o.get("address", "/dev/log")), str(o.get("facility", "daemon"))))
                elif entry.type == "webhook":
                    sinks.append(WebhookSink(str(o["url"]), o.get("token_env")))  # type: ignore[arg-type]
                else:
                    sinks.append(AlertmanagerSink(str(o["url"]), o.get("token_env"), float(o.get("resend_seconds", 60))))  # type: ignore[arg-type]
            sinks += [JsonLinesSink(p, ownership) for p in jsonl]
            if syslog:
                sinks.append(SyslogSink(syslog))
            sinks += [WebhookSink(u) for u in webhook]
            sinks += [AlertmanagerSink(u) for u in alertmanager]
            if not sinks:
                sinks.append(JsonLinesSink("-"))
        except (OSError, ValueError) as exc:
            _die(f"cannot set up an alert sink: {exc}")
        path = default_db(config, db_path)
        try:
            store = Store(path, ownership)
        except StoreError as exc:
            _die(str(exc))
            return
        detector = DetectorConfig(**{k: v for k, v in config.detector.items()}, floors=dict(config.floors))  # type: ignore[arg-type]
        options = MonitorOptions(interval=interval or config.interval or 10.0,
                                 retention_days=retention_days or config.retention_days or 14.0,
                                 detector=detector, proc_root=None if replay else "/")
        server = None
        address = metrics_addr or config.metrics
        if address:
            try:
                server = MetricsServer(address)
            except (OSError, ValueError) as exc:
                _die(f"cannot serve metrics on {address}: {exc}")
        source = _open_source(uri, replay, config)
        if replay:
            from .monitor.source import SourceError

            try:
                source.connect()  # a recording that cannot be read will not get better: stop now
            except SourceError as exc:
                _die(str(exc))
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        print(f"hyperward monitor: watching {visible(source.uri)} every {options.interval:g} s; database {visible(path)}"
              + (f"; metrics on http://{server.address}/metrics" if server else ""), file=sys.stderr, flush=True)
        Monitor(options, source, store, sinks, server).run(stop)
        print("hyperward monitor: stopped", file=sys.stderr, flush=True)

    @monitor.command("status")
    @click.option("--db", "db_path", metavar="FILE", help="Monitor database (default as for 'hyperward monitor').")
    @click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True)
    @click.pass_context
    def monitor_status(ctx: click.Context, db_path: str | None, fmt: str) -> None:
        """What the monitor watches, its health and its last alerts. Exit 1 when no monitor is
        running or its last sample is older than three intervals."""
        from .monitor.store import StoreError, connect
        from .monitor.views import read_status, status_lines

        path = default_db(_monitor_config(ctx.obj.get("config_path")), db_path)
        if not os.path.exists(path):
            click.echo(f"hyperward monitor: no database at {visible(path)}: the monitor has never run here (start it: hyperward monitor)")
            sys.exit(1)
        try:
            conn = connect(path, readonly=True)
            status = read_status(conn)
        except (StoreError, Exception) as exc:  # noqa: BLE001 - any unreadable database is one message
            _die(f"{path}: cannot read: {exc}")
            return
        if fmt == "json":
            click.echo(json.dumps(status.to_json(), indent=2))
        else:
            from rich.console import Console

            # Colour only on a terminal, never with NO_COLOR (rich reads both); a pipe's lines are
            # not wrapped, a terminal's wrap at its width between words.
            from rich.padding import Padding

            console = Console(highlight=False)
            terminal = console.is_terminal
            if not terminal or os.environ.get("NO_COLOR"):  # NO_COLOR: not even bold (no-color.org)
                console = Console(highlight=False, soft_wrap=not terminal, color_system=None)
            for line in status_lines(status, path):
                indent = len(line.plain) - len(line.plain.lstrip(" "))
                # On a terminal a wrapped line continues under its own indentation.
                console.print(Padding(line[indent:], (0, 0, 0, indent), expand=False) if indent and terminal else line)
        sys.exit(0 if status.healthy else 1)

    @main.command()
    @click.option("--connect", "-c", "uri", metavar="URI", help=f"libvirt URI (default {DEFAULT_URI}).")
    @click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True, help="Seconds between refreshes.")
    @click.option("--sort", type=click.Choice(("cpu", "net", "disk")), default="cpu", show_default=True)
    @click.option("--limit", "-n", type=click.IntRange(min=1), help="Show at most N VMs.")
    @click.option("--once", is_flag=True, help="Print one table after one interval and exit (for scripts).")
    @click.option("--format", "fmt", type=click.Choice(("text", "json")), default="text", show_default=True, help="json implies --once.")
    def top(uri: str | None, interval: float, sort: str, limit: int | None, once: bool, fmt: str) -> None:
        """A live table of running VMs by CPU, network and disk rate, from libvirt's bulk stats."""
        from rich.console import Console
        from rich.live import Live
        from rich.table import Table

        from .monitor.rates import RateTracker
        from .monitor.source import SourceError
        from .monitor.views import top_table
        from .parsers.domstats import parse_domain_stats

        source = _open_source(uri, None, MonitorConfig())
        tracker = RateTracker()

        def sample() -> list:  # type: ignore[type-arg]
            records = source.sample()
            return tracker.update([parse_domain_stats(*r) for r in records], time.time(), time.monotonic())

        def table(rates: list, width: int) -> Table:  # type: ignore[type-arg]
            return top_table(rates, source.uri, sort, limit, width)

        try:
            source.connect()
            sample()
            time.sleep(interval)
            rates = sample()
            if once or fmt == "json":
                if fmt == "json":
                    click.echo(json.dumps([{k: getattr(r, k) for k in r.__slots__} for r in rates], indent=2))
                else:
                    console = Console()
                    # A terminal's own width (a table wider than it breaks every row); a pipe gets
                    # 120 columns so a script's lines are whole.
                    if not console.is_terminal:
                        console = Console(width=120)
                    console.print(table(rates, console.width))
                return
            with Live(table(rates, Console().width), refresh_per_second=4, screen=False) as live:
                while True:
                    time.sleep(interval)
                    live.update(table(sample(), live.console.width))
        except SourceError as exc:
            _die(str(exc))
        except KeyboardInterrupt:
            pass
        finally:
            source.close()

    @main.command()
    @click.argument("vm")
    @click.option("--since", "since", default="1h", show_default=True, help="How far back: 90s, 30m, 6h, 2d.")
    @click.option("--db", "db_path", metavar="FILE", help="Monitor database (default as for 'hyperward monitor').")
    @click.option("--png", "png", metavar="FILE", help="Also write a PNG chart (matplotlib).")
    @click.option("--html", "html_path", metavar="FILE", help="Also write a self-contained HTML page with SVG charts.")
    @click.option("--config", "config_path", metavar="FILE", help="Config file (for [monitor] database).")
    def history(vm: str, since: str, db_path: str | None, png: str | None, html_path: str | None, config_path: str | None) -> None:
        """A VM's recent rates from the monitor database (name or UUID): terminal sparklines,
        and a real chart with --png or --html."""
        from .monitor.store import StoreError, connect
        from .monitor.views import find_vm, history_html, history_png, read_history, render_history

        try:
            seconds = _parse_since(since)
        except click.BadParameter as exc:
            _die(str(exc.message))
            return
        path = default_db(_monitor_config(config_path), db_path)
        if not os.path.exists(path):
            _die(f"no monitor database at {path} (run hyperward monitor first, or give --db)")
        try:
            conn = connect(path, readonly=True)
            found = find_vm(conn, vm)
        except (StoreError, Exception) as exc:  # noqa: BLE001 - any unreadable database is one message
            _die(f"{path}: cannot read: {exc}")
            return
        if found is None:
            _die(f"no VM named {vm!r} in {path}")
            return
        from .monitor.detect import DetectorConfig

        mconfig = _monitor_config(config_path)
        detector = DetectorConfig(**{k: v for k, v in mconfig.detector.items()}, floors=dict(mconfig.floors))  # type: ignore[arg-type]
        # The baseline is replayed from the samples (monitor/baseline.py): only the charts draw it.
        data = read_history(conn, found[0], found[1], time.time() - seconds, detector, baseline=bool(png or html_path))
        click.echo(render_history(data), nl=False)
        ownership = _ownership(config_path)
        try:
            if html_path:
                safefile.write_text(html_path, history_html(data), ownership)
            if png:
                safefile.write_bytes(png, history_png(data), ownership)
        except safefile.UnsafePath as exc:
            _die(str(exc))
        except OSError as exc:
            _die(f"cannot write chart: {exc.strerror or exc}")
        except ImportError:
            _die("--png needs matplotlib (pip install matplotlib); --html needs nothing")
