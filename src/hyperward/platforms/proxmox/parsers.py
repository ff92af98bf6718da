"""Proxmox VE's own file formats, parsed the way Proxmox parses them.

Each grammar follows Proxmox's documentation and code: qm.conf(5) and pct.conf(5) for guest
configs (qemu-server/pve-container `parse_*_config`), pve-firewall(8) for .fw files,
datacenter.cfg(5), pve-access-control `parse_user_config` for user.cfg, proxmox-tfa for
priv/tfa.cfg, PVE::SectionConfig for storage.cfg/jobs.cfg/domains.cfg, PVE::Jobs for the job state
files, PVE::Tools `upid_decode` for task UPIDs, corosync.conf(5), pveproxy(8).

Everything here is pure: text in, values out. Bad input is a `ParseError` carrying the reason;
the collector turns it into an Unavailable naming the file.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from ...parsers import shell
from ...records import frozen

#: keys whose values are secrets or free text of the guest's owner: never kept in facts
SECRET_KEYS = frozenset({"cipassword", "description", "env"})
SECRET_PREFIXES = ("lxc.environment",)

NIC_MODELS = frozenset({
    "e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
    "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3",
})

# qemu-server: `^([a-z][a-z_]*\d*):\s*(.*\S)\s*$`; pve-container also takes raw `lxc.*` keys with
# ':' or '='. Newer releases add keys with '-' (allow-ksm, pre-enrolled-keys in values).
_KEY_LINE = re.compile(r"^([a-z][a-z0-9_\-]*)\s*:\s*(.*?)\s*$")
_LXC_LINE = re.compile(r"^(lxc\.[a-z0-9_\-.]+)\s*(?::|=)\s*(.*?)\s*$")
# Section headers, matched on the raw line as Proxmox matches them (no leading blank). qemu-server's
# parse_vm_config, in this order: [PENDING], [special:cloudinit] / [special:fleecing] (generated
# cloud-init values, backup fleecing images), a snapshot `[name]` (pve-configid: a letter, then at
# least one letter, digit, '_' or '-'; any case), and any other `[...]`, an unknown section whose
# lines are skipped. pve-container's parse_pct_config knows only [pve:pending] and the snapshot
# form: any other bracketed line is a line it cannot parse, and the lines after it stay in the
# section before. Both compare the section names case-insensitively; a repeated pending or
# snapshot section starts afresh (the later one is what applies, or what a rollback restores).
_QEMU_PENDING = re.compile(r"^\[PENDING\]\s*$", re.IGNORECASE)
_QEMU_SPECIAL = re.compile(r"^\[special:(?:cloudinit|fleecing)\]\s*$", re.IGNORECASE)
_LXC_PENDING = re.compile(r"^\[pve:pending\]\s*$", re.IGNORECASE)
_SNAPSHOT = re.compile(r"^\[([a-z][a-z0-9_\-]+)\]\s*$", re.IGNORECASE)
_QEMU_UNKNOWN = re.compile(r"^\[([^\]]*)\]\s*$")

#: Proxmox sets no count; every snapshot section is judged by every neutral guest check, so a
#: config of thousands of them would cost a scan minutes and bury the report
SNAPSHOT_SECTIONS_MAX = 1000


class ParseError(ValueError):
    """Input that is not the format at all (garbage, truncated beyond use)."""


@dataclass
class SnapshotSection:
    """One snapshot section: the full configuration `qm rollback` / `pct rollback` brings back,
    plus the snapshot's own keys (snaptime, vmstate, parent, ...), secrets and free text dropped
    as in `current`; `lines` has each key's line in the file."""

    name: str
    config: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


@dataclass
class GuestConfigText:
    """A qemu-server or lxc config split into its sections. `current` is the top section (what
    runs); `pending` the pending section (applied at next start); `snapshots` the names of the
    snapshot sections in file order and `snapshot_sections` their contents (what a rollback
    restores); special sections ([special:cloudinit]) are neither."""

    current: dict[str, str] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    snapshots: list[str] = field(default_factory=list)
    snapshot_sections: list[SnapshotSection] = field(default_factory=list)
    ignored_lines: int = 0
    #: the line of each key of `current` (a finding names it)
    lines: dict[str, int] = field(default_factory=dict)


def _keep(key: str) -> bool:
    return key not in SECRET_KEYS and not key.startswith(SECRET_PREFIXES)


def _section(line: str, kind: str) -> tuple[str, str] | None:
    """("pending" | "special" | "unknown" | "snapshot", name) for a section header of KIND's
    config ("qemu" or "lxc"), None for any other line."""
    if kind == "lxc":
        if _LXC_PENDING.match(line):
            return "pending", "pve:pending"
        match = _SNAPSHOT.match(line)
        return ("snapshot", match.group(1)) if match else None
    if _QEMU_PENDING.match(line):
        return "pending", "PENDING"
    if _QEMU_SPECIAL.match(line):
        return "special", line.strip()[1:-1]
    match = _SNAPSHOT.match(line)
    if match:
        return "snapshot", match.group(1)
    match = _QEMU_UNKNOWN.match(line)
    return ("unknown", match.group(1)) if match else None


def parse_guest_config(text: str, kind: str = "qemu") -> GuestConfigText:
    """A `<vmid>.conf` of KIND "qemu" (qm.conf(5)) or "lxc" (pct.conf(5)). Unknown keys are kept
    (the checks ignore what they do not know); lines Proxmox itself would skip are counted, not
    fatal; a file with no key line at all, or more garbage than configuration, is a ParseError,
    and so is one of more than SNAPSHOT_SECTIONS_MAX snapshot sections. Repeated raw `lxc.*` keys
    accumulate, one per line, separated by newlines (Proxmox keeps them as a list); `lines` has
    each key's line, and each `lxc.*` line also as `key[n]` (snapshot sections likewise)."""
    out = GuestConfigText()
    target: dict[str, str] | None = out.current
    target_lines: dict[str, int] | None = out.lines
    sections: dict[str, SnapshotSection] = {}
    good = bad = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        section = _section(raw, kind) if raw.startswith("[") else None
        if section is not None:
            what, name = section
            if what == "pending":
                out.pending.clear()
                target, target_lines = out.pending, None
            elif what == "snapshot":
                if name not in sections and len(sections) >= SNAPSHOT_SECTIONS_MAX:
                    raise ParseError(f"more than {SNAPSHOT_SECTIONS_MAX} snapshot sections: not audited "
                                     "(hyperward's bound; Proxmox sets none)")
                sections[name] = SnapshotSection(name)
                if name not in out.snapshots:
                    out.snapshots.append(name)
                target, target_lines = sections[name].config, sections[name].lines
            else:
                target = target_lines = None
            continue
        if line.startswith("#"):
            continue
        match = _LXC_LINE.match(line) or _KEY_LINE.match(line)
        if not match:
            bad += 1
            continue
        good += 1
        if target is None:
            continue
        key, value = match.group(1), match.group(2)
        if not _keep(key):
            continue
        if key.startswith("lxc.") and key in target:
            target[key] = target[key] + "\n" + value
        else:
            target[key] = value
        if target_lines is not None:
            if key.startswith("lxc."):
                # each accumulated line by its position, as the guest mapping names them ("lxc.mount.entry[2]")
                target_lines.setdefault(key, number)
                target_lines[f"{key}[{target[key].count(chr(10)) + 1}]"] = number
            else:
                target_lines[key] = number  # the value that wins is the last
    if good == 0:
        raise ParseError("no configuration lines (key: value) found; garbage or truncated file")
    if bad > good:
        raise ParseError(f"{bad} unparseable lines against {good} valid ones; garbage or truncated file")
    out.ignored_lines = bad
    out.snapshot_sections = [sections[name] for name in out.snapshots]
    return out


def split_list(value: str) -> list[str]:
    """PVE::Tools::split_list: separators are commas, semicolons, whitespace and NULs."""
    return [item for item in re.split(r"[\s,;\0]+", value) if item]


def parse_property_string(value: str, default_key: str | None = None) -> dict[str, str]:
    """`key=value,key=value` as PVE::JSONSchema::parse_property_string reads it: one item
    without '=' is the default key's value; double quotes protect commas."""
    out: dict[str, str] = {}
    for item in _split_commas(value):
        if not item:
            continue
        if "=" in item:
            key, _, val = item.partition("=")
            out[key.strip()] = _unquote(val.strip())
        elif default_key is not None and default_key not in out:
            out[default_key] = _unquote(item.strip())
        else:
            out[item.strip()] = "1"
    return out


def _split_commas(value: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return items


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def as_bool(value: str | None, default: bool) -> bool:
    """Proxmox booleans: 1/0, on/off, yes/no, true/false."""
    if value is None or value == "":
        return default
    text = value.strip().lower()
    if text in ("1", "on", "yes", "true"):
        return True
    if text in ("0", "off", "no", "false"):
        return False
    return default


def parse_qemu_nic(value: str) -> dict[str, str]:
    """`net0: virtio=BC:24:11:..,bridge=vmbr0,firewall=1`: the model's key carries the MAC."""
    props = parse_property_string(value, "model")
    for model in NIC_MODELS:
        if model in props and model != "model":
            props.setdefault("macaddr", props.pop(model))
            props["model"] = model
            break
    return props


def cpu_flags(value: str) -> tuple[str, list[str]]:
    """`cpu: host,flags=+md-clear;-pcid` -> ("host", ["+md-clear", "-pcid"])."""
    props = parse_property_string(value, "cputype")
    flags = [f for f in re.split(r"[;\s]+", props.get("flags", "")) if f]
    return props.get("cputype", "kvm64"), flags


# --- pve-firewall(8) -------------------------------------------------------------------------


@dataclass
class FirewallText:
    options: dict[str, str] = field(default_factory=dict)
    rules: int = 0
    ipsets: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    ignored_lines: int = 0
    #: the line of each [OPTIONS] key
    lines: dict[str, int] = field(default_factory=dict)


_FW_OPTION = re.compile(r"^([a-z][a-z0-9_\-]*)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_FW_SECTION = re.compile(r"^\[\s*([A-Za-z_]+)(?:\s+([^\]\s]+))?\s*\]\s*(?:#.*)?$")


def parse_firewall(text: str) -> FirewallText:
    """cluster.fw, host.fw, <vmid>.fw: [OPTIONS] `key: value`, [RULES] one rule a line, [IPSET
    name], [GROUP name], [ALIASES]. Content before any section header, or an options section that
    is mostly garbage, is a ParseError (pve-firewall would refuse the file too)."""
    out = FirewallText()
    section: str | None = None
    good = bad = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = _FW_SECTION.match(line)
        if header:
            section = header.group(1).upper()
            name = header.group(2) or ""
            if section == "IPSET":
                out.ipsets.append(name)
            elif section == "GROUP":
                out.groups.append(name)
            elif section not in ("OPTIONS", "RULES", "ALIASES"):
                bad += 1
            continue
        if section is None:
            raise ParseError(f"content before any [SECTION] header: {line[:40]!r}")
        if section == "OPTIONS":
            match = _FW_OPTION.match(line)
            if match:
                out.options[match.group(1).lower()] = match.group(2)
                out.lines[match.group(1).lower()] = number
                good += 1
            else:
                bad += 1
        elif section == "RULES":
            out.rules += 1
            good += 1
        else:
            good += 1
    if bad > good:
        raise ParseError(f"{bad} unparseable lines against {good} valid ones; garbage or truncated file")
    out.ignored_lines = bad
    return out


# --- key: value files (datacenter.cfg) ---------------------------------------------------------


def parse_colon_file(text: str, lines: dict[str, int] | None = None) -> dict[str, str]:
    """datacenter.cfg(5): `key: value` lines, '#' comments. LINES, when given, receives each key's line."""
    out: dict[str, str] = {}
    good = bad = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if match:
            out[match.group(1)] = match.group(2)
            if lines is not None:
                lines[match.group(1)] = number
            good += 1
        else:
            bad += 1
    if bad > good:
        raise ParseError(f"{bad} unparseable lines against {good} valid ones")
    return out


# --- user.cfg (pve-access-control parse_user_config) ---------------------------------------------


@dataclass
class UserCfgText:
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    tokens: list[tuple[str, str, bool, int]] = field(default_factory=list)
    groups: dict[str, list[str]] = field(default_factory=dict)
    roles: dict[str, list[str]] = field(default_factory=dict)
    acls: list[tuple[bool, str, list[str], list[str]]] = field(default_factory=list)
    pools: dict[str, list[str]] = field(default_factory=dict)
    #: "user:<userid>" / "token:<userid>!<tokenid>" -> line; acl_lines[i] is acls[i]'s line
    lines: dict[str, int] = field(default_factory=dict)
    acl_lines: list[int] = field(default_factory=list)


_USERID = re.compile(r"^[^\s:/!]+@[A-Za-z][A-Za-z0-9.\-_]+$")


def parse_user_cfg(text: str) -> UserCfgText:
    """Colon-separated lines, first field the entry type:
    user:<userid>:<enable>:<expire>:<first>:<last>:<email>:<comment>:<keys>:
    token:<userid>!<tokenid>:<expire>:<privsep>:<comment>:
    group:<groupid>:<users>:<comment>:   role:<roleid>:<privs>:
    acl:<propagate>:<path>:<users,@groups,tokens>:<roles>:   pool:<id>:<comment>:<vmids>:<storages>:
    The `keys` field holds legacy OTP secrets or yubico ids: only its presence is kept."""
    out = UserCfgText()
    out.users["root@pam"] = {"enable": "1", "expire": "0", "keys": ""}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        data = [d.strip() for d in line.split(":")]
        kind, data = data[0], data[1:]
        data += [""] * 9
        if kind == "user":
            userid = data[0]
            if not _USERID.match(userid):
                continue
            expire = data[2] or "0"
            if not expire.isdigit():
                continue
            out.users[userid] = {"enable": "1" if as_bool(data[1], False) else "0", "expire": expire,
                                 "keys": "x" if data[7] == "x" else ("set" if data[7] else "")}
            out.lines[f"user:{userid}"] = number
        elif kind == "token":
            userid, _, tokenid = data[0].partition("!")
            expire = data[1] or "0"
            if not tokenid or not expire.isdigit() or userid not in out.users:
                continue
            out.tokens.append((userid, tokenid, as_bool(data[2], False), int(expire)))
            out.lines[f"token:{userid}!{tokenid}"] = number
        elif kind == "group":
            out.groups[data[0]] = split_list(data[1])
        elif kind == "role":
            out.roles[data[0]] = split_list(data[1])
        elif kind == "acl":
            path = data[1]
            if not path.startswith("/"):
                continue
            path = "/" + "/".join(p for p in path.split("/") if p)
            out.acls.append((as_bool(data[0], False), path, split_list(data[2]), split_list(data[3])))
            out.acl_lines.append(number)
        elif kind == "pool":
            out.pools[data[0]] = [v for v in split_list(data[2]) if v.isdigit()]
    return out


# --- priv/tfa.cfg ---------------------------------------------------------------------------

TFA_KINDS = ("totp", "webauthn", "recovery", "yubico", "u2f")


def parse_tfa_cfg(text: str) -> dict[str, list[str]]:
    """userid -> kinds of second factor. Since PVE 7 the file is JSON (proxmox-tfa TfaConfig:
    {"users": {userid: {"totp": [...], "webauthn": [...], "recovery": {...}, "yubico": [...],
    "u2f": [...]}}}), each entry carrying `enable` (default true). Before, one line per user:
    `USER:TYPE:BASE64-JSON` with TYPE oath or u2f. Secrets are never read past their kind."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ParseError(f"not valid JSON ({exc.__class__.__name__})") from None
        if not isinstance(doc, dict):
            raise ParseError("not a TFA configuration object")
        users = doc.get("users", {})
        if not isinstance(users, dict):
            raise ParseError("'users' is not an object")
        out: dict[str, list[str]] = {}
        for userid, data in users.items():
            if not isinstance(data, dict):
                continue
            kinds = []
            for kind in TFA_KINDS:
                entries = data.get(kind)
                if kind == "recovery":
                    if isinstance(entries, dict):
                        kinds.append(kind)
                    continue
                if isinstance(entries, list) and any(
                    isinstance(e, dict) and e.get("enable", True) is not False for e in entries
                ):
                    kinds.append(kind)
            out[str(userid)] = kinds
        return out
    out = {}
    for raw in stripped.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) < 2 or not _USERID.match(parts[0]):
            raise ParseError("neither JSON nor USER:TYPE:DATA lines")
        kind = {"oath": "totp"}.get(parts[1], parts[1])
        out.setdefault(parts[0], []).append(kind)
    return out


# --- PVE::SectionConfig (storage.cfg, jobs.cfg, domains.cfg) --------------------------------------

_SECTION_HEAD = re.compile(r"^([a-z][a-z0-9_\-]*):\s*(\S+)\s*$")


def parse_section_config(text: str, lines: dict[str, int] | None = None) -> list[tuple[str, str, dict[str, str]]]:
    """`type: id` then indented `key value` lines until a blank line. A property line outside a
    section, or more garbage than sections, is a ParseError. LINES, when given, receives each
    section's `type: id` line, keyed by its id."""
    out: list[tuple[str, str, dict[str, str]]] = []
    current: dict[str, str] | None = None
    bad = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            current = None
            continue
        if raw.lstrip().startswith("#"):
            continue
        if raw[0] in " \t":
            if current is None:
                bad += 1
                continue
            key, _, value = raw.strip().partition(" ")
            current[key] = value.strip() if value else "1"
            continue
        head = _SECTION_HEAD.match(raw.strip())
        if not head:
            bad += 1
            current = None
            continue
        current = {}
        out.append((head.group(1), head.group(2), current))
        if lines is not None:
            lines[head.group(2)] = number
    if bad and bad >= len(out):
        raise ParseError(f"{bad} lines outside any `type: id` section")
    return out


# --- vzdump.cron (PVE < 7.1) ------------------------------------------------------------------

_CRON_LINE = re.compile(r"^(\S+\s+\S+\s+\S+\s+\S+\s+\S+)\s+(\S+)\s+vzdump(\s.*)?$")


def parse_vzdump_cron(text: str) -> list[dict[str, str]]:
    """`MIN HOUR DOM MON DOW USER vzdump [VMID...] [--all 1] [--exclude ids] [--pool p]
    [--storage s] ...` lines; environment assignments and comments are skipped."""
    jobs: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Za-z_]+=", line):
            continue
        match = _CRON_LINE.match(line)
        if not match:
            continue
        try:
            args = shlex.split(match.group(3) or "")
        except ValueError:
            continue
        job: dict[str, str] = {"schedule": match.group(1), "vmid": ""}
        vmids = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg.startswith("--"):
                key = arg[2:]
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    job[key] = args[i + 1]
                    i += 2
                else:
                    job[key] = "1"
                    i += 1
                continue
            if arg.isdigit():
                vmids.append(arg)
            i += 1
        job["vmid"] = ",".join(vmids)
        jobs.append(job)
    return jobs


# --- corosync.conf(5) ---------------------------------------------------------------------------


def parse_corosync(text: str, lines: dict[str, int] | None = None) -> tuple[dict[str, str], int, int]:
    """(totem's own keys, nodes in nodelist, totem interface blocks). Nested `name {` ... `}`
    blocks; `key: value` inside. LINES, when given, receives the line of each totem key (the last,
    which wins) and of the `totem {` block itself."""
    stack: list[str] = []
    totem: dict[str, str] = {}
    nodes = interfaces = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.endswith("{"):
            name = line[:-1].strip()
            stack.append(name)
            if stack == ["totem"] and lines is not None:
                lines.setdefault("totem", number)
            if stack == ["nodelist", "node"]:
                nodes += 1
            if stack == ["totem", "interface"]:
                interfaces += 1
            continue
        if line == "}":
            if not stack:
                raise ParseError("unbalanced '}'")
            stack.pop()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise ParseError(f"expected `key: value` or a block, found {line[:40]!r}")
        if stack == ["totem"]:
            totem[key.strip()] = value.strip()
            if lines is not None:
                lines[key.strip()] = number
    if stack:
        raise ParseError(f"unterminated block {stack[-1]!r} (truncated file)")
    return totem, nodes, interfaces


def corosync_crypto(totem: dict[str, str]) -> tuple[str, str]:
    """Effective (cipher, hash): explicit crypto_* win; else `secauth: on` means aes256 and
    sha256 (corosync 3 totemconfig), else none."""
    secauth = as_bool(totem.get("secauth"), False)
    cipher = totem.get("crypto_cipher") or ("aes256" if secauth else "none")
    hashing = totem.get("crypto_hash") or ("sha256" if secauth else "none")
    return cipher, hashing


# --- /etc/default/pveproxy ----------------------------------------------------------------------



def parse_shell_defaults(text: str, lines: dict[str, int] | None = None) -> dict[str, str]:
    try:
        return shell.assignments(text, lines=lines)
    except shell.ShellQuoteError as exc:
        raise ParseError(str(exc)) from None


# --- tasks: UPIDs, the task index, job state files ------------------------------------------------

_UPID = re.compile(
    r"^UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
    r"(?:[0-9A-Fa-f]{8}:)?([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$"
)


@frozen
class Upid:
    node: str
    starttime: int
    type: str
    id: str
    user: str


def parse_upid(text: str) -> Upid | None:
    """`UPID:node:PID:PSTART:STARTTIME:TYPE:ID:USER:` (PID, PSTART, STARTTIME in hex;
    PVE::Tools::upid_decode)."""
    match = _UPID.match(text)
    if not match:
        return None
    return Upid(match.group(1), int(match.group(5), 16), match.group(6), match.group(7), match.group(8))


def parse_task_index(text: str, types: tuple[str, ...] = ("vzdump",)) -> list[tuple[str, Upid, int | None, str]]:
    """/var/log/pve/tasks/index: `UPID ENDTIME-HEX STATUS...` per finished task (active ones in
    tasks/active have no end time). Only tasks of `types` are kept."""
    out = []
    for raw in text.splitlines():
        parts = raw.strip().split(None, 2)
        if not parts:
            continue
        upid = parse_upid(parts[0])
        if upid is None or upid.type not in types:
            continue
        end: int | None = None
        status = ""
        if len(parts) >= 2:
            try:
                end = int(parts[1], 16)
            except ValueError:
                end = None
            status = parts[2].strip() if len(parts) == 3 else ""
        out.append((parts[0], upid, end, status))
    return out


def parse_job_state(text: str) -> dict[str, object]:
    """/var/lib/pve-manager/jobs/<type>-<id>.json: {"state": created|starting|started|stopped,
    "time": epoch, "upid": ..., "msg": "OK"|error, "updated": epoch}; empty means created."""
    if not text.strip():
        return {"state": "created", "time": 0}
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ParseError("invalid JSON job state") from None
    if not isinstance(doc, dict):
        raise ParseError("job state is not an object")
    return doc
