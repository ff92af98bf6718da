"""Collecting a Proxmox VE node: the cluster tree from /etc/pve (a live pmxcfs mount or a copy)
or, when that is empty, from /var/lib/pve-cluster/config.db; the node's own files beside it.

Every read goes through RootFS (bounded, resolved inside the root, non-blocking) or through the
tree rebuilt from config.db; every failure is an Unavailable naming the path, never an exception.
"""

from __future__ import annotations

import re
import time
from typing import Protocol

from ...collect.fs import RootFS
from ...model import Unavailable
from . import parsers
from .configdb import Tree, open_config_db
from .facts import (
    CONFIG_DB,
    PVE_DIR,
    BackupJob,
    CorosyncFacts,
    FirewallFile,
    JobState,
    ProxmoxFacts,
    PveAcl,
    PveGuestConfig,
    PveNode,
    PveRealm,
    PveSnapshotSection,
    PveStorage,
    PveToken,
    PveUser,
    TaskRecord,
    UserConfig,
)

GUEST_LIMIT = 1024 * 1024
CFG_LIMIT = 4 * 1024 * 1024
TASK_INDEX_LIMIT = 16 * 1024 * 1024
_VMID_CONF = re.compile(r"^([1-9][0-9]{2,8})\.conf$")
_VMID_FW = re.compile(r"^([1-9][0-9]{2,8})\.fw$")
_NODE_NAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?$")
_JOB_STATE = re.compile(r"^vzdump-(.+)\.json$")


class _Tree(Protocol):
    def text(self, rel: str, limit: int = CFG_LIMIT) -> str | Unavailable: ...
    def listdir(self, rel: str) -> list[str] | Unavailable: ...


class _FsTree:
    """/etc/pve as files under the audited root."""

    def __init__(self, fs: RootFS) -> None:
        self.fs = fs

    def text(self, rel: str, limit: int = CFG_LIMIT) -> str | Unavailable:
        return self.fs.read_text(f"{PVE_DIR}/{rel}", limit)

    def listdir(self, rel: str) -> list[str] | Unavailable:
        return self.fs.listdir(f"{PVE_DIR}/{rel}".rstrip("/"))


class _DbTree:
    """/etc/pve as rebuilt from config.db: the same paths, the same bounds and text rules."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    def text(self, rel: str, limit: int = CFG_LIMIT) -> str | Unavailable:
        path = f"{PVE_DIR}/{rel}"
        data = self.tree.files.get(rel)
        if data is None:
            if rel in self.tree.dirs:
                return Unavailable(path, "invalid", "is a directory, expected a file (in config.db)")
            return Unavailable(path, "missing", "not found (in config.db)")
        if len(data) > limit:
            return Unavailable(path, "invalid", f"larger than {limit} bytes; not read (in config.db)")
        if b"\0" in data:
            return Unavailable(path, "invalid", "contains binary data (NUL bytes), expected text (in config.db)")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Unavailable(path, "invalid", f"not UTF-8 text (byte {exc.start}) (in config.db)")

    def listdir(self, rel: str) -> list[str] | Unavailable:
        names = self.tree.listdir(rel)
        if names is None:
            return Unavailable(f"{PVE_DIR}/{rel}".rstrip("/"), "missing", "not found (in config.db)")
        return names


def collect(fs: RootFS | None, now: int | None = None) -> ProxmoxFacts:
    collected_at = int(time.time()) if now is None else now
    if fs is None:
        return _empty("none", Unavailable(PVE_DIR, "missing", "no root filesystem to read"), collected_at)
    tree: _Tree
    notes: list[str] = []
    entries = fs.listdir(PVE_DIR)
    if isinstance(entries, list) and entries:
        tree, source, store = _FsTree(fs), "pmxcfs", PVE_DIR
    elif fs.exists(CONFIG_DB):
        db = open_config_db(fs, CONFIG_DB)
        if isinstance(db, Unavailable):
            return _empty("config.db", db, collected_at)
        tree, source, store = _DbTree(db), "config.db", CONFIG_DB
        wal = fs.stat(CONFIG_DB + "-wal")
        if not isinstance(wal, Unavailable) and wal.st_size > 0:
            notes.append(f"{CONFIG_DB}-wal is not empty: changes not yet checkpointed are not seen (read-only, immutable)")
    else:
        reason = entries.describe() if isinstance(entries, Unavailable) else "empty"
        return _empty("none", Unavailable(PVE_DIR, "missing", f"{reason}, and no {CONFIG_DB}"), collected_at)

    local = _local_node(fs, tree)
    nodes = _nodes(fs, tree, local)
    users = _users(tree)
    datacenter_lines: dict[str, int] = {}
    datacenter = _colon_file(tree, "datacenter.cfg", datacenter_lines)
    pveproxy_lines: dict[str, int] = {}
    return ProxmoxFacts(
        source=source,
        store=store,
        collected_at=collected_at,
        local_node=local,
        nodes=nodes,
        cluster_fw=_firewall(tree, "firewall/cluster.fw"),
        guest_fw=_guest_firewalls(tree),
        datacenter=datacenter,
        users=users,
        realms=_realms(tree),
        tfa=_tfa(tree),
        storage=_storage(tree),
        jobs=_jobs(tree),
        cron_jobs=_cron_jobs(tree),
        job_states=_job_states(fs),
        tasks=_tasks(fs),
        corosync=_corosync(tree),
        pveproxy=_pveproxy(fs, pveproxy_lines),
        notes=notes,
        datacenter_lines=datacenter_lines,
        pveproxy_lines=pveproxy_lines,
    )


def _empty(source: str, problem: Unavailable, now: int) -> ProxmoxFacts:
    return ProxmoxFacts(
        source=source, store=problem, collected_at=now, local_node=None, nodes=[], cluster_fw=problem,
        guest_fw={}, datacenter=problem, users=problem, realms=problem, tfa=problem, storage=problem,
        jobs=problem, cron_jobs=problem, job_states={}, tasks=problem, corosync=problem, pveproxy=problem,
    )


def _local_node(fs: RootFS, tree: _Tree) -> str | None:
    """The node this root is: its hostname if a node directory has that name, else the only node."""
    names = tree.listdir("nodes")
    if isinstance(names, Unavailable):
        return None
    nodes = [n for n in names if _NODE_NAME.match(n)]
    hostname = fs.read_line("/etc/hostname", 256)
    if isinstance(hostname, str):
        short = hostname.split(".", 1)[0]
        if short in nodes:
            return short
    return nodes[0] if len(nodes) == 1 else None


def _nodes(fs: RootFS, tree: _Tree, local: str | None) -> list[PveNode]:
    names = tree.listdir("nodes")
    if isinstance(names, Unavailable):
        return []
    out = []
    for name in names:
        if not _NODE_NAME.match(name):
            continue
        guests: list[PveGuestConfig | Unavailable] = []
        for kind, folder in (("qemu", "qemu-server"), ("lxc", "lxc")):
            files = tree.listdir(f"nodes/{name}/{folder}")
            if isinstance(files, Unavailable):
                if files.kind != "missing":
                    guests.append(files)
                continue
            for file in files:
                match = _VMID_CONF.match(file)
                if match:
                    guests.append(_guest(fs, tree, kind, name, match.group(1), name == local))
        out.append(PveNode(name, name == local, _firewall(tree, f"nodes/{name}/host.fw"), guests))
    return out


def _guest(fs: RootFS, tree: _Tree, kind: str, node: str, vmid: str, local: bool) -> PveGuestConfig | Unavailable:
    folder = "qemu-server" if kind == "qemu" else "lxc"
    rel = f"nodes/{node}/{folder}/{vmid}.conf"
    path = f"{PVE_DIR}/{rel}"
    text = tree.text(rel, GUEST_LIMIT)
    if isinstance(text, Unavailable):
        return text
    try:
        parsed = parsers.parse_guest_config(text, kind)
    except parsers.ParseError as exc:
        return Unavailable(path, "invalid", str(exc))
    pid_file = fs.exists(f"/var/run/qemu-server/{vmid}.pid") if (local and kind == "qemu") else None
    running = _qemu_running(fs, vmid) if (local and kind == "qemu" and fs.live) else None
    return PveGuestConfig(kind, vmid, node, path, parsed.current, parsed.pending, parsed.snapshots,
                          parsed.ignored_lines, pid_file, running, parsed.lines,
                          [PveSnapshotSection(s.name, s.config, s.lines) for s in parsed.snapshot_sections])


def _qemu_running(fs: RootFS, vmid: str) -> bool:
    """qemu-server starts QEMU with `-id VMID` (an option of Proxmox's own QEMU build) and
    `-pidfile /var/run/qemu-server/VMID.pid`: the guest runs when the PID in that file is a QEMU (by
    its executable, not its name) carrying either."""
    from ...collect.libvirt import process_exe, process_kind, program_name

    text = fs.read_line(f"/var/run/qemu-server/{vmid}.pid", 64)
    if not isinstance(text, str) or not text.strip().isdigit():
        return False
    pid = int(text.strip())
    cmdline = fs.read_bytes(f"/proc/{pid}/cmdline", 1024 * 1024)
    if not isinstance(cmdline, bytes):
        return False
    args = [a.decode("utf-8", "replace") for a in cmdline.split(b"\0") if a]
    if process_kind(program_name(process_exe(fs, pid), args)) != "qemu":
        return False
    pidfiles = (f"/var/run/qemu-server/{vmid}.pid", f"/run/qemu-server/{vmid}.pid")
    return any((a == "-id" and b == vmid) or (a == "-pidfile" and b in pidfiles) for a, b in zip(args, args[1:]))


def _firewall(tree: _Tree, rel: str) -> FirewallFile | Unavailable:
    text = tree.text(rel)
    if isinstance(text, Unavailable):
        return text
    try:
        fw = parsers.parse_firewall(text)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/{rel}", "invalid", str(exc))
    return FirewallFile(f"{PVE_DIR}/{rel}", fw.options, fw.rules, fw.ipsets, fw.groups, fw.ignored_lines, fw.lines)


def _guest_firewalls(tree: _Tree) -> dict[str, FirewallFile | Unavailable]:
    names = tree.listdir("firewall")
    if isinstance(names, Unavailable):
        return {}
    out = {}
    for name in names:
        match = _VMID_FW.match(name)
        if match:
            out[match.group(1)] = _firewall(tree, f"firewall/{name}")
    return out


def _colon_file(tree: _Tree, rel: str, lines: dict[str, int] | None = None) -> dict[str, str] | Unavailable:
    text = tree.text(rel)
    if isinstance(text, Unavailable):
        return text
    try:
        return parsers.parse_colon_file(text, lines)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/{rel}", "invalid", str(exc))


def _users(tree: _Tree) -> UserConfig | Unavailable:
    text = tree.text("user.cfg")
    if isinstance(text, Unavailable):
        if text.kind != "missing":
            return text
        text = ""  # Proxmox itself runs with root@pam alone then
    parsed = parsers.parse_user_cfg(text)
    groups_of: dict[str, list[str]] = {}
    for group, members in parsed.groups.items():
        for member in members:
            groups_of.setdefault(member, []).append(group)
    users = {
        uid: PveUser(uid, u["enable"] == "1", int(u["expire"]), sorted(groups_of.get(uid, [])), u["keys"] == "set",
                     parsed.lines.get(f"user:{uid}", 0))
        for uid, u in parsed.users.items()
    }
    return UserConfig(
        users=users,
        tokens=[PveToken(u, t, privsep, expire, parsed.lines.get(f"token:{u}!{t}", 0)) for u, t, privsep, expire in parsed.tokens],
        groups=parsed.groups,
        roles=parsed.roles,
        acls=[PveAcl(path, propagate, members, roles, line)
              for (propagate, path, members, roles), line in zip(parsed.acls, parsed.acl_lines, strict=True)],
        pools=parsed.pools,
    )


def _realms(tree: _Tree) -> list[PveRealm] | Unavailable:
    text = tree.text("domains.cfg")
    if isinstance(text, Unavailable):
        if text.kind != "missing":
            return text
        text = ""
    try:
        sections = parsers.parse_section_config(text)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/domains.cfg", "invalid", str(exc))
    realms = {"pam": PveRealm("pam", "pam", None), "pve": PveRealm("pve", "pve", None)}
    for kind, realm, props in sections:
        tfa = parsers.parse_property_string(props["tfa"], "type").get("type") if props.get("tfa") else None
        realms[realm] = PveRealm(realm, kind, tfa)
    return sorted(realms.values(), key=lambda r: r.realm)


def _tfa(tree: _Tree) -> dict[str, list[str]] | Unavailable:
    text = tree.text("priv/tfa.cfg")
    if isinstance(text, Unavailable):
        if text.kind == "missing":
            return {}  # created with the first second factor: none registered
        return text
    try:
        return parsers.parse_tfa_cfg(text)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/priv/tfa.cfg", "invalid", str(exc))


def _storage(tree: _Tree) -> list[PveStorage] | Unavailable:
    text = tree.text("storage.cfg")
    if isinstance(text, Unavailable):
        return text
    section_lines: dict[str, int] = {}
    try:
        sections = parsers.parse_section_config(text, section_lines)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/storage.cfg", "invalid", str(exc))
    keys = tree.listdir("priv/storage")
    key_files: set[str] | None
    if isinstance(keys, Unavailable):
        key_files = set() if keys.kind == "missing" else None
    else:
        key_files = set(keys)
    out = []
    for kind, sid, props in sections:
        encryption = None
        if kind == "pbs":
            encryption = None if key_files is None else f"{sid}.enc" in key_files
        out.append(PveStorage(
            id=sid, type=kind, content=parsers.split_list(props.get("content", "")),
            disabled=parsers.as_bool(props.get("disable"), False),
            server=props.get("server"), datastore=props.get("datastore"),
            encryption_key=encryption, line=section_lines.get(sid, 0),
        ))
    return out


def _job(jid: str, source: str, props: dict[str, str]) -> BackupJob:
    return BackupJob(
        id=jid,
        source=source,
        enabled=parsers.as_bool(props.get("enabled"), True),
        schedule=props.get("schedule", props.get("starttime", "")),
        all=parsers.as_bool(props.get("all"), False),
        vmids=parsers.split_list(props.get("vmid", "")),
        pool=props.get("pool") or None,
        exclude=parsers.split_list(props.get("exclude", "")),
        storage=props.get("storage") or None,
        node=props.get("node") or None,
    )


def _jobs(tree: _Tree) -> list[BackupJob] | Unavailable:
    text = tree.text("jobs.cfg")
    if isinstance(text, Unavailable):
        return [] if text.kind == "missing" else text
    try:
        sections = parsers.parse_section_config(text)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/jobs.cfg", "invalid", str(exc))
    return [_job(jid, "jobs.cfg", props) for kind, jid, props in sections if kind == "vzdump"]


def _cron_jobs(tree: _Tree) -> list[BackupJob] | Unavailable:
    text = tree.text("vzdump.cron")
    if isinstance(text, Unavailable):
        return [] if text.kind == "missing" else text
    return [_job(f"cron-{i + 1}", "vzdump.cron", props) for i, props in enumerate(parsers.parse_vzdump_cron(text))]


def _job_states(fs: RootFS) -> dict[str, JobState | Unavailable]:
    base = "/var/lib/pve-manager/jobs"
    names = fs.listdir(base)
    if isinstance(names, Unavailable):
        return {}
    out: dict[str, JobState | Unavailable] = {}
    for name in names:
        match = _JOB_STATE.match(name)
        if not match:
            continue
        path = f"{base}/{name}"
        text = fs.read_text(path, 64 * 1024)
        if isinstance(text, Unavailable):
            out[match.group(1)] = text
            continue
        try:
            doc = parsers.parse_job_state(text)
        except parsers.ParseError as exc:
            out[match.group(1)] = Unavailable(path, "invalid", str(exc))
            continue
        raw_upid = doc.get("upid")
        upid = raw_upid if isinstance(raw_upid, str) else None
        decoded = parsers.parse_upid(upid) if upid else None
        start = decoded.starttime if decoded else None
        msg = doc.get("msg")
        out[match.group(1)] = JobState(match.group(1), str(doc.get("state", "")), start,
                                       str(msg)[:200] if msg is not None else None, upid)
    return out


def _tasks(fs: RootFS) -> list[TaskRecord] | Unavailable:
    records: list[TaskRecord] = []
    found = False
    problem: Unavailable | None = None
    for path in ("/var/log/pve/tasks/index", "/var/log/pve/tasks/active"):
        text = fs.read_text(path, TASK_INDEX_LIMIT)
        if isinstance(text, Unavailable):
            if text.kind != "missing":
                problem = problem or text
            continue
        found = True
        for upid, decoded, end, status in parsers.parse_task_index(text):
            records.append(TaskRecord(upid, decoded.node, decoded.id, decoded.starttime, end, status[:200]))
    if not found:
        return problem or Unavailable("/var/log/pve/tasks/index", "missing", "not found")
    return records


def _corosync(tree: _Tree) -> CorosyncFacts | Unavailable:
    text = tree.text("corosync.conf")
    if isinstance(text, Unavailable):
        return text
    lines: dict[str, int] = {}
    try:
        totem, nodes, interfaces = parsers.parse_corosync(text, lines)
    except parsers.ParseError as exc:
        return Unavailable(f"{PVE_DIR}/corosync.conf", "invalid", str(exc))
    return CorosyncFacts(f"{PVE_DIR}/corosync.conf", totem, nodes, interfaces, lines)


def _pveproxy(fs: RootFS, lines: dict[str, int]) -> dict[str, str] | Unavailable:
    text = fs.read_text("/etc/default/pveproxy", 256 * 1024)
    if isinstance(text, Unavailable):
        return text
    try:
        return parsers.parse_shell_defaults(text, lines)
    except parsers.ParseError as exc:
        return Unavailable("/etc/default/pveproxy", "invalid", str(exc))
