"""The snapshot of a host: what the collectors read, what the checks judge.

Every field that comes from one input is `Maybe[T]`: either the parsed value or an `Unavailable`
that says which path could not be read and why. Snapshots are JSON (see docs/snapshot.md);
`FORMAT_VERSION` changes whenever a field changes meaning or type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from .model import Unavailable

VULN_DIR = "/sys/devices/system/cpu/vulnerabilities"

FORMAT_NAME = "hyperward-facts"
FORMAT_VERSION = 1

T = TypeVar("T")
Maybe = Union[T, Unavailable]


@dataclass(frozen=True)
class Meta:
    hostname: str
    root: str
    collected_at: str
    euid: int
    hyperward_version: str


@dataclass(frozen=True)
class CmdlineSource:
    """A kernel command line: the running one (/proc/cmdline) or one configured for next boot."""

    path: str
    running: bool
    tokens: Maybe[list[str]]


@dataclass(frozen=True)
class RebootRequired:
    flagged: bool
    packages: list[str]


@dataclass(frozen=True)
class KernelFacts:
    release: Maybe[str]
    cmdlines: list[CmdlineSource]
    tainted: Maybe[int]
    installed: Maybe[list[str]]
    reboot_required: Maybe[RebootRequired]


@dataclass(frozen=True)
class CpuInfo:
    vendor: str | None
    family: int | None
    model: int | None
    microcode: str | None


@dataclass(frozen=True)
class SmtFacts:
    control: Maybe[str]
    active: Maybe[str]


@dataclass(frozen=True)
class CpuFacts:
    vulnerabilities: Maybe[dict[str, Maybe[str]]]
    smt: SmtFacts
    info: Maybe[CpuInfo]


@dataclass(frozen=True)
class ModprobeOption:
    module: str
    param: str
    value: str
    file: str


@dataclass(frozen=True)
class ModuleFacts:
    """Kernel modules and their parameters. `loaded` maps module -> parameter -> value for the
    modules hyperward judges that are loaded; `options` are the modprobe.d settings for next load."""

    loaded: Maybe[dict[str, dict[str, Maybe[str]]]]
    options: list[ModprobeOption]


@dataclass(frozen=True)
class KsmFacts:
    run: int
    pages_sharing: int | None


@dataclass(frozen=True)
class AptFacts:
    files: list[str]
    settings: dict[str, str]
    unattended_upgrades_installed: bool | None
    upgrade_timer_masked: bool


@dataclass(frozen=True)
class DnfAutomaticFacts:
    path: str
    apply_updates: str | None
    upgrade_type: str | None
    timers_enabled: list[str]


@dataclass(frozen=True)
class PatchingFacts:
    apt: AptFacts | None
    dnf_automatic: DnfAutomaticFacts | None
    installed_packages: Maybe[dict[str, str]]


@dataclass(frozen=True)
class DeviceNode:
    path: str
    mode: int
    uid: int
    gid: int
    owner: str | None
    group: str | None
    is_char_device: bool


@dataclass(frozen=True)
class GroupEntry:
    gid: int
    members: list[str]


@dataclass(frozen=True)
class AccountFacts:
    groups: Maybe[dict[str, GroupEntry]]
    primary_gids: Maybe[dict[str, int]]


@dataclass(frozen=True)
class FirmwareFacts:
    """tpm_version_major is 0 when the host has no TPM device."""

    efi: Maybe[bool]
    secure_boot: Maybe[int]
    tpm_version_major: Maybe[int]
    tpm_event_log: Maybe[bool]


@dataclass(frozen=True)
class LibvirtConfig:
    path: str
    settings: Maybe[dict[str, Any]]


@dataclass(frozen=True)
class HostFacts:
    meta: Meta
    kernel: KernelFacts
    cpu: CpuFacts
    modules: ModuleFacts
    ksm: Maybe[KsmFacts]
    patching: PatchingFacts
    kvm_device: Maybe[DeviceNode]
    accounts: AccountFacts
    firmware: FirmwareFacts
    qemu_conf: LibvirtConfig


class SnapshotError(Exception):
    """A snapshot that cannot be used: unreadable, not JSON, wrong format or version, wrong shape."""


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Unavailable):
        return {"$unavailable": {"path": value.path, "kind": value.kind, "reason": value.reason}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def dump_snapshot(facts: HostFacts) -> str:
    document = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "facts": to_jsonable(facts)}
    return json.dumps(document, indent=1, sort_keys=False)


def load_snapshot(text: str, source: str = "snapshot") -> HostFacts:
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise SnapshotError(f"{source}: not a JSON document ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise SnapshotError(f"{source}: not a hyperward facts snapshot (missing \"format\": \"{FORMAT_NAME}\")")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"{source}: snapshot format version {version!r} is not supported (this hyperward reads version {FORMAT_VERSION})"
        )
    try:
        return _from_jsonable(HostFacts, document.get("facts"), "facts")
    except _ShapeError as exc:
        raise SnapshotError(f"{source}: {exc}") from None


class _ShapeError(Exception):
    pass


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _from_jsonable(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if isinstance(value, dict) and "$unavailable" in value and Unavailable in options:
            raw = value["$unavailable"]
            if not isinstance(raw, dict) or raw.get("kind") not in ("missing", "denied", "invalid"):
                raise _ShapeError(f"{where}: malformed $unavailable entry")
            return Unavailable(str(raw.get("path", "")), raw["kind"], str(raw.get("reason", "")))
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option in (Unavailable, type(None)):
                continue
            try:
                return _from_jsonable(option, value, where)
            except _ShapeError as exc:
                errors.append(str(exc))
        raise _ShapeError(errors[0] if errors else f"{where}: unexpected null")
    if origin is list:
        if not isinstance(value, list):
            raise _ShapeError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_from_jsonable(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _ShapeError(f"{where}: expected an object, got {type(value).__name__}")
        _, item = typing.get_args(tp)
        return {str(k): _from_jsonable(item, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise _ShapeError(f"{where}: expected an object, got {type(value).__name__}")
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name not in value:
                if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                    continue
                raise _ShapeError(f"{where}.{f.name}: missing")
            kwargs[f.name] = _from_jsonable(_hints(tp)[f.name], value[f.name], f"{where}.{f.name}")
        return tp(**kwargs)
    if tp is bool:
        if not isinstance(value, bool):
            raise _ShapeError(f"{where}: expected true/false, got {type(value).__name__}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _ShapeError(f"{where}: expected an integer, got {type(value).__name__}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _ShapeError(f"{where}: expected a string, got {type(value).__name__}")
        return value
    if tp is type(None):
        if value is not None:
            raise _ShapeError(f"{where}: expected null")
        return None
    raise _ShapeError(f"{where}: unsupported type {tp!r}")
