"""Shared reading of libvirt facts for checks: effective settings with compiled defaults, and the
per-domain loop (one result per domain; unreadable domain XML is an error naming the file)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from ..facts import Domain, HostFacts, LibvirtConfig, Maybe, QemuProcess, SocketOwner
from ..model import Details, Result, Unavailable, is_missing
from ..parsers.libvirt_defaults import (
    LIBVIRTD_CONF_DEFAULTS,
    QEMU_CONF_DEFAULTS,
    QEMU_USER_FALLBACK,
    Setting,
    effective,
)
from .verdicts import Verdict, split_verdict

NOT_INSTALLED = "libvirt is not installed (no /etc/libvirt)"
DAEMON_CONFIGS = ("libvirtd.conf", "virtproxyd.conf", "virtqemud.conf")
REMOTE_CONFIGS = ("libvirtd.conf", "virtproxyd.conf")


def qemu_settings(host: HostFacts) -> dict[str, Any] | Result:
    """qemu.conf's settings; a missing file means every default (libvirt reads none then)."""
    if not host.libvirt.installed:
        return Result.not_applicable(NOT_INSTALLED)
    config = host.qemu_conf
    if is_missing(config.settings):
        return {}
    if isinstance(config.settings, Unavailable):
        return Result.unavailable(config.settings, config.path)
    return config.settings


def qemu_setting(settings: dict[str, Any], key: str) -> Setting:
    return effective(settings, "/etc/libvirt/qemu.conf", key, QEMU_CONF_DEFAULTS)


def qemu_user(host: HostFacts, settings: dict[str, Any]) -> Setting:
    if "user" in settings:
        return qemu_setting(settings, "user")
    default = host.libvirt.qemu_user_default or QEMU_USER_FALLBACK
    return Setting("user", default, "/etc/libvirt/qemu.conf", True)


def is_root_user(value: object) -> bool:
    return str(value).strip() in ("root", "+0", "0")


def daemon_configs(host: HostFacts, names: tuple[str, ...] = DAEMON_CONFIGS) -> Iterator[tuple[str, dict[str, Any] | Result]]:
    """(config file name, settings or the result to give) for each daemon config present."""
    for name in names:
        config: LibvirtConfig | None = host.libvirt.configs.get(name)
        if config is None:
            continue
        if isinstance(config.settings, Unavailable):
            yield name, Result.unavailable(config.settings, config.path)
        else:
            yield name, config.settings


def daemon_setting(name: str, settings: dict[str, Any], key: str) -> Setting:
    return effective(settings, f"/etc/libvirt/{name}", key, LIBVIRTD_CONF_DEFAULTS)


def no_daemon_config(host: HostFacts) -> Result:
    if not host.libvirt.installed:
        return Result.not_applicable(NOT_INSTALLED)
    return Result.not_applicable("no libvirtd.conf, virtproxyd.conf or virtqemud.conf under /etc/libvirt")


def as_int(value: object, default: int = 0) -> int:
    try:
        return int(str(value), 0) if not isinstance(value, int) else value
    except ValueError:
        return default


def as_mode(value: object) -> int | None:
    try:
        return int(str(value), 8)
    except ValueError:
        return None


def domains(host: HostFacts) -> tuple[list[Domain], list[Unavailable]]:
    good = [d for d in host.libvirt.domains if isinstance(d, Domain)]
    bad = [d for d in host.libvirt.domains if isinstance(d, Unavailable)]
    return good, bad


Judge = Callable[[Domain], Verdict | Result]


def _deciding(domain: Domain, elements: list[str]) -> Details:
    if not domain.origin.startswith("/"):
        return {}
    for element in elements:
        line = domain.lines.get(element)
        if line is not None:
            return {"file": domain.origin, "element": element, "line": line}
    return {}


def each_domain(host: HostFacts, judge: Judge, *, applies: Callable[[Domain], bool] | None = None,
                none_reason: str = "") -> Iterator[Result]:
    """One result per domain: fail with every problem the judge found, or pass; a judge that
    cannot decide returns its own result (not applicable, with the reason), given this domain's label."""
    good, bad = domains(host)
    if not good and not bad:
        yield Result.not_applicable(NOT_INSTALLED if not host.libvirt.installed else "no libvirt domains defined")
        return
    for problem in bad:
        yield Result.unavailable(problem, problem.path)
    judged = 0
    for domain in good:
        if applies is not None and not applies(domain):
            continue
        judged += 1
        verdict = judge(domain)
        about: Details = {"guest": domain.name, "guest_id": domain.uuid or domain.name, "guest_uuid": domain.uuid or None, "platform": "libvirt"}
        if isinstance(verdict, Result):
            yield dataclasses.replace(verdict, resource=domain.label).with_details(**about)
            continue
        problems, severity, deciding = split_verdict(verdict)
        if problems:
            yield Result.fail(domain.label, "; ".join(problems), severity=severity,
                              details={**about, **_deciding(domain, deciding), "problems": problems})
        else:
            yield Result.passed(domain.label, details=about)
    if not judged and not bad:
        yield Result.not_applicable(none_reason or "no domain uses this feature")


def qemu_processes(host: HostFacts, kinds: tuple[str, ...] = ("qemu",)) -> list[QemuProcess] | Result:
    procs = host.libvirt.processes
    if isinstance(procs, Unavailable):
        return Result.unavailable(procs, "/proc")
    procs = [p for p in procs if p.kind in kinds]
    if not procs:
        return Result.not_applicable("no QEMU process is running" if kinds == ("qemu",) else "no QEMU, libvirt or swtpm process is running")
    return procs


def process_label(proc: QemuProcess) -> str:
    if proc.kind != "qemu":
        return f"{proc.kind} (pid {proc.pid})"
    who = f"{proc.domain_name} " if proc.domain_name else ""
    return f"{who}(pid {proc.pid})"


def listening_sockets(host: HostFacts) -> Maybe[list[SocketOwner]]:
    """The host's listening sockets, collected once (NetworkFacts.sockets)."""
    network = host.network
    if network is None:
        return Unavailable("/proc/net", "missing", "no network facts")
    return network.sockets


def tcp_listening(host: HostFacts, port: int) -> bool:
    sockets = listening_sockets(host)
    return isinstance(sockets, list) and any(s.protocol.startswith("tcp") and s.port == port for s in sockets)


def unit_enabled(host: HostFacts, name: str) -> bool:
    return any(u.name == name and u.enabled for u in host.libvirt.socket_units)


def daemon_listens(host: HostFacts, name: str, settings: dict[str, Any], kind: str) -> tuple[bool, str]:
    """Whether the daemon of this config file accepts `kind` ("tcp" or "tls") connections, and why.
    Socket activation (libvirtd-tcp.socket) or `--listen` with listen_tcp/listen_tls turns it on."""
    daemon = name.removesuffix(".conf")
    port = 16509 if kind == "tcp" else 16514
    if unit_enabled(host, f"{daemon}-{kind}.socket"):
        return True, f"{daemon}-{kind}.socket is enabled"
    args = " ".join(v for k, v in host.libvirt.daemon_args.items() if f"/{daemon}:" in k)
    listen = daemon_setting(name, settings, f"listen_{kind}")
    if "--listen" in args.split() or "-l" in args.split():
        if as_int(listen.value):
            return True, f"{daemon} runs with --listen and {listen.describe()}"
    if tcp_listening(host, port):
        return True, f"a process listens on TCP port {port}"
    sockets = listening_sockets(host)
    seen = f"nothing on port {port}" if isinstance(sockets, list) else f"listening sockets unknown: {sockets.describe()}"
    return False, f"no {kind.upper()} listener ({daemon}-{kind}.socket not enabled, no --listen, {seen})"
