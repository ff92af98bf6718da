"""The vocabulary shared by checks, the engine and the reporters."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import fnmatch
from dataclasses import field
from typing import Literal

from .records import frozen


class Severity(enum.IntEnum):
    INFO = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        return _SEVERITY_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r} (one of: {', '.join(s.label for s in cls)})") from None


# A report of 16,000 results asks for labels 20,000 times: enum's name property costs a descriptor
# call each time, a dict lookup by value does not.
_SEVERITY_LABELS = {member: member.name.lower() for member in Severity}


class Status(enum.Enum):
    #: members are singletons that compare by identity: Enum's own __hash__ hashes the name in
    #: Python code, ~100,000 calls when one report of 1,000 guests is rendered in every format
    __hash__ = object.__hash__

    FAIL = "fail"
    ERROR = "error"
    SUPPRESSED = "suppressed"
    PASS = "pass"
    NOT_APPLICABLE = "not_applicable"


class Category(enum.Enum):
    """Value = the ID infix in the catalog (HV-<value>-NNN)."""

    __hash__ = object.__hash__  # as Status's

    PATCH = "PATCH"
    VULN = "VULN"
    SIDE = "SIDE"
    ISO = "ISO"
    TPM = "TPM"
    NEST = "NEST"
    NET = "NET"
    AUTH = "AUTH"
    FW = "FW"
    IDS = "IDS"
    MON = "MON"
    BAK = "BAK"
    SCAN = "SCAN"

    @property
    def label(self) -> str:
        return _CATEGORY_LABELS[self]

    @classmethod
    def from_check_id(cls, check_id: str) -> Category:
        return cls(check_id.split("-")[1])


_CATEGORY_LABELS = {
    Category.PATCH: "Patching",
    Category.VULN: "Vulnerabilities",
    Category.SIDE: "Side channels",
    Category.ISO: "VM isolation",
    Category.TPM: "vTPM and Secure Boot",
    Category.NEST: "Nested virtualization",
    Category.NET: "Network segmentation",
    Category.AUTH: "Authentication and access",
    Category.FW: "Firewall",
    Category.IDS: "Intrusion detection",
    Category.MON: "Monitoring",
    Category.BAK: "Backups",
    Category.SCAN: "Vulnerability scanning",
}

Profile = Literal["multi-tenant", "single-tenant"]
PROFILES: tuple[Profile, ...] = ("multi-tenant", "single-tenant")


@frozen
class Unavailable:
    """A fact that could not be read, and why: the reason a check gives instead of a verdict.

    kind: "missing" (the input does not exist under the root: the check is not applicable),
    "denied" (permission: the check needs more privilege), "invalid" (exists but is garbage,
    oversized, a symlink loop, not a regular file: an error naming the path).
    """

    path: str
    kind: Literal["missing", "denied", "invalid"]
    reason: str

    def describe(self) -> str:
        return f"{self.path}: {self.reason}"


def is_missing(value: object) -> bool:
    """True for an input that does not exist under the root (as opposed to one that is unreadable)."""
    return isinstance(value, Unavailable) and value.kind == "missing"


HOST = "host"

#: a value in a result's structured details: what a SIEM or a script reads without parsing the message
Detail = str | int | float | bool | None | list[str]
Details = dict[str, Detail]


@frozen
class Result:
    """One verdict of one check on one resource (host, VM, network, socket, file, token)."""

    status: Status
    resource: str
    message: str = ""
    severity: Severity | None = None
    remediation: str | None = None
    needs_privilege: bool = False
    #: the hypervisor platform the resource belongs to ("libvirt", "proxmox"), for guest results
    platform: str | None = None
    #: the facts behind the verdict as fields (cve, package, installed, file, key, line, guest...)
    details: Details = field(default_factory=dict)

    def on(self, platform: str) -> Result:
        """The same result, naming the platform its resource belongs to."""
        return dataclasses.replace(self, platform=platform, details={"platform": platform, **self.details})

    def with_details(self, **details: Detail) -> Result:
        """The same result with more details; a key the result already has keeps its value."""
        return dataclasses.replace(self, details={**details, **self.details})

    @classmethod
    def passed(cls, resource: str = HOST, message: str = "", *, details: Details | None = None) -> Result:
        return cls(Status.PASS, resource, message, details=dict(details or {}))

    @classmethod
    def fail(
        cls,
        resource: str,
        message: str,
        *,
        severity: Severity | None = None,
        remediation: str | None = None,
        details: Details | None = None,
    ) -> Result:
        return cls(Status.FAIL, resource, message, severity, remediation, details=dict(details or {}))

    @classmethod
    def not_applicable(cls, reason: str, resource: str = HOST, *, details: Details | None = None) -> Result:
        return cls(Status.NOT_APPLICABLE, resource, reason, details=dict(details or {}))

    @classmethod
    def error(cls, message: str, resource: str = HOST, *, needs_privilege: bool = False, details: Details | None = None) -> Result:
        return cls(Status.ERROR, resource, message, needs_privilege=needs_privilege, details=dict(details or {}))

    @classmethod
    def unavailable(cls, fact: Unavailable, resource: str = HOST) -> Result:
        """Missing input is not applicable; unreadable or garbage input is an error, never a pass.
        The message names the path (it stands alone in JSON); the text report prints it once."""
        said = fact.describe()
        details: Details = {"file": fact.path}
        if fact.kind == "missing":
            return cls.not_applicable(said, resource, details=details)
        if fact.kind == "denied":
            return cls.error(f"{said} (run as root)", resource, needs_privilege=True, details=details)
        return cls.error(said, resource, details=details)


@frozen
class CheckMeta:
    check_id: str
    category: Category
    severity: Severity
    title: str
    rationale: str
    fix: str = ""
    references: tuple[str, ...] = ()
    profile_severity: dict[str, Severity] = field(default_factory=dict)

    def severity_for(self, profile: str) -> Severity:
        return self.profile_severity.get(profile, self.severity)


@frozen
class Finding:
    """A result placed in its check's context, after profile and suppressions were applied."""

    meta: CheckMeta
    result: Result
    status: Status
    severity: Severity
    remediation: str
    suppression_reason: str | None = None

    @property
    def check_id(self) -> str:
        return self.meta.check_id


@frozen
class Suppression:
    check_id: str
    resource: str
    reason: str
    expires: datetime.date | None
    source: str

    def matches(self, finding_id: str, resource: str) -> bool:
        return finding_id == self.check_id and fnmatch.fnmatchcase(resource, self.resource)
