"""The Ansible form: a task file (include_tasks / import_tasks, or the play `hyperward fix` tests
wrap it in) with one tagged block per failing result, using only ansible.builtin modules, since
community.general.xml and ansible.posix.sysctl are not there offline: replace and lineinfile with
the same regular expressions as the bash form (so the sha256 chain of the plan holds for both),
copy for drop-ins, file for modes, and for domain XML the same helper program the bash form runs
(command with stdin, changed_when on its output).

Every path is "{{ hw_root }}" + the host path (hw_root '' for the host itself). Before a change,
stat + assert check the precondition (the file's sha256 as scanned or as an earlier block leaves
it; not a symbolic link); a probe in check mode first, so an edit already in place never refuses.

Ansible templates every string of a task, names included: a guest name with "{{" would run code
on the controller. Names lose their braces; an op whose own strings contain a template marker is
not rendered (the block becomes a comment)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Sequence

from ..textsafe import visible
from . import helper
from .bash import describe
from .plan import Block, Manual, Op

TEMPLATE = re.compile(r"\{\{|\{%|\{#|\}\}|%\}|#\}")


def s(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of YAML's)."""
    return json.dumps(value)


def name(text: str) -> str:
    return s(visible(text).replace("{", "(").replace("}", ")"))


def _path(op_path: str) -> str:
    return s("{{ hw_root }}" + op_path)


def _text_op(n: int, i: int, op: Op) -> list[str]:
    reg = f"hw_{n}_{i}"
    expect = "[" + ", ".join(s(e) for e in op.expect) + "]"
    stat = [
        f"    - name: {name(f'[{n}.{i}] {op.path}: precondition')}",
        "      ansible.builtin.stat:",
        f"        path: {_path(op.path)}",
        "        checksum_algorithm: sha256",
        "        follow: false",
        f"      register: {reg}_stat",
    ]
    if op.kind == "replace":
        module = ["      ansible.builtin.replace:", f"        path: {_path(op.path)}",
                  f"        regexp: {s(op.args[0])}", f"        replace: {s(op.args[1])}", "        backup: true"]
        when = f"      when: {reg}_stat.stat.exists"
    elif op.kind == "ensure-line":
        module = ["      ansible.builtin.lineinfile:", f"        path: {_path(op.path)}", f"        line: {s(op.args[0])}",
                  "        create: true", "        backup: true"]
        when = ""
    else:
        module = ["      ansible.builtin.copy:", f"        dest: {_path(op.path)}", f"        content: {s(op.args[1])}",
                  f"        mode: {s(op.args[0])}", "        backup: true"]
        when = ""
        stat += [
            f"    - name: {name(f'[{n}.{i}] directory of {op.path}')}",
            "      ansible.builtin.file:",
            f"        path: {s('{{ hw_root }}' + op.path.rsplit('/', 1)[0])}",
            "        state: directory",
        ]
    return [
        *stat,
        f"    - name: {name(f'[{n}.{i}] {op.path}: would it change?')}",
        *module,
        "      check_mode: true",
        f"      register: {reg}_probe",
        *([when] if when else []),
        f"    - name: {name(f'[{n}.{i}] {op.path}: unchanged since the scan')}",
        "      ansible.builtin.assert:",
        "        that:",
        f"          - not ({reg}_stat.stat.islnk | default(false))",
        f"          - not {reg}_probe.changed or ({reg}_stat.stat.checksum | default('absent')) in {reg}_expect",
        f"        fail_msg: {s(f'refused: {op.path} changed since the scan (or is a symbolic link); this block changes nothing')}",
        "      vars:",
        f"        {reg}_expect: {expect}",
        *([when] if when else []),
        f"    - name: {name(f'[{n}.{i}] {op.path}')}",
        *module,
        *([when] if when else []),
    ]


def _chmod_op(n: int, i: int, op: Op) -> list[str]:
    reg = f"hw_{n}_{i}"
    mode, scanned, kind = op.args
    is_kind = "isdir" if kind == "dir" else "isreg"
    return [
        f"    - name: {name(f'[{n}.{i}] {op.path}: precondition')}",
        "      ansible.builtin.stat:",
        f"        path: {_path(op.path)}",
        "        follow: false",
        "        get_checksum: false",
        f"      register: {reg}_stat",
        f"    - name: {name(f'[{n}.{i}] {op.path}: mode as scanned')}",
        "      ansible.builtin.assert:",
        "        that:",
        f"          - {reg}_stat.stat.exists and not {reg}_stat.stat.islnk and {reg}_stat.stat.{is_kind}",
        f"          - {reg}_stat.stat.mode in [{s(mode)}, {s(scanned)}]",
        f"        fail_msg: {s(f'refused: {op.path} changed since the scan (mode {scanned} expected); not changed')}",
        f"    - name: {name(f'[{n}.{i}] chmod {mode} {op.path}')}",
        "      ansible.builtin.file:",
        f"        path: {_path(op.path)}",
        f"        mode: {s(mode)}",
        "        follow: false",
    ]


def _xml_op(n: int, i: int, op: Op) -> list[str]:
    argv = ["python3", "-", "xml", op.path, "--expect=" + ",".join(op.expect), *op.args]
    return [
        f"    - name: {name(f'[{n}.{i}] edit the definition of {op.domain} (offline tree only)')}",
        "      ansible.builtin.command:",
        "        argv: [" + ", ".join(s(a) for a in argv) + "]",
        "        stdin: \"{{ hw_helper }}\"",
        "      environment:",
        "        HW_ROOT: \"{{ hw_root }}\"",
        "        HW_BACKUP_DIR: \"{{ hw_backup_dir }}\"",
        f"      register: hw_{n}_{i}_xml",
        f"      changed_when: \"'changed:' in hw_{n}_{i}_xml.stdout\"",
        "      when: hw_root | length > 0",
        f"    - name: {name(f'[{n}.{i}] {op.domain}: on a live host use the bash form (virsh define of an edited copy)')}",
        "      ansible.builtin.debug:",
        f"        msg: {s('live domain definitions change through virsh define: run hyperward fix --format bash for this block')}",
        "      when: hw_root | length == 0",
    ]


def render(blocks: Sequence[Block], *, root: str, source: str, stamp: str) -> str:
    live = root in ("", "/")
    out = [
        "---",
        f"# hyperward fix: {len(blocks)} block(s), planned {stamp} from {visible(source)}",
        f"# for {'this host' if live else 'the offline tree ' + visible(root)}: a task file; run it in a play with",
        "#   vars: hw_root ('' for the host itself, else the offline tree), hw_backup_dir (domain XML backups)",
        "# Only ansible.builtin modules. Tags: hyperward-fix and the check ID (--tags hv-iso-001).",
        "# Nothing here restarts, reboots or runs update-grub: each block says what its change needs.",
    ]
    helper_needed = any(op.kind == "xml" for b in blocks for op in b.ops)
    if helper_needed:
        out += [
            "- name: hyperward fix helper (domain XML edits)",
            "  ansible.builtin.set_fact:",
            "    hw_helper: |",
            "      {% raw %}",
            *("      " + line if line else "" for line in inspect.getsource(helper).splitlines()),
            "      {% endraw %}",
            "  tags: [always]",
        ]
    for n, block in enumerate(blocks, 1):
        out.append("")
        out.append(f"# [{n}/{len(blocks)}] {block.check_id}  {visible(block.resource)}")
        out.append(f"# why: {visible(block.why)}")
        out += [f"# change: {visible(describe(e))}" for e in block.edits if not isinstance(e, Manual)]
        out += [f"# by hand: {visible(t)}" for t in block.manual]
        out += [f"# needs: {visible(x.describe())}" for x in block.needs]
        ops = block.ops if block.automatic else []
        if any(TEMPLATE.search(a) for op in ops for a in (op.path, *op.args)):
            out.append("# not rendered: a string of this change looks like a Jinja template")
            ops = []
        if not ops:
            continue
        tasks: list[str] = []
        for i, op in enumerate(ops, 1):
            if op.kind == "chmod":
                tasks += _chmod_op(n, i, op)
            elif op.kind == "xml":
                tasks += _xml_op(n, i, op)
            else:
                tasks += _text_op(n, i, op)
        if block.needs:
            tasks += [
                f"    - name: {name(f'[{n}] needs (not done here)')}",
                "      ansible.builtin.debug:",
                "        msg: " + s("; ".join(visible(x.describe()) for x in block.needs)),
            ]
        out += [
            f"- name: {name(f'[{n}] {block.check_id} {block.resource}')}",
            f"  tags: [hyperward-fix, {block.check_id.lower()}]",
            "  block:",
            *tasks,
        ]
    return "\n".join(out) + "\n"
