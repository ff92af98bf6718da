"""The bash form: one commented block per failing result, run each in a subshell of its own so a
refused or failed block stops only itself. Every argument is shell-quoted and every comment passes
through textsafe.visible (a guest name with a newline must not end a comment and start a command).
The edits are helper.py's, embedded verbatim; nothing restarts, reboots, runs update-grub or
defines a domain unless HW_DEFINE=1 (set by `hyperward fix --apply`) for the last."""

from __future__ import annotations

import inspect
import os
import shlex
from collections.abc import Sequence

from ..textsafe import visible
from . import helper
from .plan import (
    Block,
    ChMod,
    DomainXmlEdit,
    GrubCmdline,
    Manual,
    ModprobeOption,
    Op,
    SetKey,
    Sysctl,
    WriteFile,
)

DELIMITER = "HYPERWARD_HELPER_EOF"


def q(value: str) -> str:
    return shlex.quote(value)


def comment(text: str) -> str:
    return visible(text)


def describe(edit: object) -> str:
    """One line saying what an edit changes, for the block's comment."""
    if isinstance(edit, SetKey):
        if edit.value is None:
            return f"comment out {edit.key} in {edit.file} (the built-in default applies)"
        return f"set {edit.key} {'=' if edit.syntax in ('libvirt', 'equals') else ''} {edit.value} in {edit.file}".replace("  ", " ")
    if isinstance(edit, ChMod):
        return f"chmod {edit.mode:04o} {edit.path} (scanned {edit.scanned:04o})"
    if isinstance(edit, WriteFile):
        return f"write {edit.path}: " + " | ".join(line for line in edit.content.splitlines() if not line.startswith("#"))
    if isinstance(edit, Sysctl):
        return f"sysctl {edit.key} = {edit.value} in /etc/sysctl.d/90-hyperward-{edit.key}.conf"
    if isinstance(edit, ModprobeOption):
        where = ", ".join(edit.files) or f"/etc/modprobe.d/hyperward-{edit.module}-{edit.param}.conf"
        return f"options {edit.module} {edit.param}={edit.value} in {where}"
    if isinstance(edit, GrubCmdline):
        return f"remove {edit.remove} from GRUB_CMDLINE_LINUX* in {', '.join(edit.files)}"
    if isinstance(edit, DomainXmlEdit):
        return f"edit the definition of {edit.domain}: " + "; ".join(e.replace("|", " ") for e in edit.edits)
    if isinstance(edit, Manual):
        return f"by hand: {edit.text}"
    return str(edit)


def _op_lines(op: Op, variables: dict[str, str]) -> list[str]:
    expect = f'--expect="${variables[op.path]}"' if op.path in variables else "--expect="
    if op.kind == "chmod":
        return [f"  hw chmod {q(op.path)} {' '.join(q(a) for a in op.args)}"]
    if op.kind in ("replace", "ensure-line", "write"):
        return [f"  hw {op.kind} {q(op.path)} {expect} {' '.join(q(a) for a in op.args)}"]
    assert op.kind == "xml" and op.domain is not None
    edits = " ".join(q(a) for a in op.args)
    copy = f'"$HW_BACKUP_DIR"/{q(op.domain + ".edited.xml")}'
    return [
        '  if [ -n "$HW_ROOT" ]; then',
        f"    hw xml {q(op.path)} {expect} {edits}",
        "  else",
        "    hw_need virsh",
        '    mkdir -p -m 0700 "$HW_BACKUP_DIR"',
        f"    virsh dumpxml --inactive --security-info --domain {q(op.domain)} > {copy}",
        f"    out=$(hw xml-copy {copy} {expect} {q('watch=' + op.path)} {edits})",
        '    echo "$out"',
        '    case $out in',
        f'      *changed:*) if [ "$HW_DEFINE" = 1 ]; then virsh define --file {copy}; '
        f'hw hash {q(op.path)} >> "$HW_BACKUP_DIR"/{q(os.path.basename(op.path) + ".defined")}; '
        f'else echo "  to apply: virsh define --file $HW_BACKUP_DIR/"{q(op.domain + ".edited.xml")}; fi ;;',
        "    esac",
        "  fi",
    ]


def render(blocks: Sequence[Block], *, root: str, source: str, stamp: str) -> str:
    live = root in ("", "/")
    variables: dict[str, str] = {}
    expects: dict[str, tuple[str, ...]] = {}
    for block in blocks:
        for op in block.ops:
            if op.expect and op.path not in variables:
                variables[op.path] = f"HW_SHA_{len(variables) + 1}"
                expects[op.path] = op.expect
    out = [
        "#!/bin/bash",
        f"# hyperward fix: {len(blocks)} block(s), planned {stamp} from {comment(source)}",
        f"# for {'this host' if live else 'the offline tree ' + comment(root)}. Review it, then run it as root: bash THIS-FILE",
        "#   HW_ROOT=DIR       apply to an offline tree (every path inside DIR; a symbolic link on the way is refused)",
        "#   HW_BACKUP_DIR=DIR where copies of the edited files go (default below)",
        "#   HW_DEFINE=1       live domains: virsh define the edited copies (otherwise the command is printed)",
        "# Each block checks the sha256 of the file it edits: a file changed since the scan makes that block",
        "# refuse and change nothing. Running this twice changes nothing the second time.",
        "# Nothing here restarts a service, reboots, runs update-grub or restarts a guest: each block says what",
        "# its change needs, and the summary at the end lists it again.",
        "set -euo pipefail",
        "umask 077",
        f'if [ -z "${{HW_ROOT+set}}" ]; then HW_ROOT={"" if live else q(root)}; fi',
        f'HW_BACKUP_DIR="${{HW_BACKUP_DIR:-/var/backups/hyperward-fix/{stamp}}}"',
        'HW_DEFINE="${HW_DEFINE:-0}"',
        "export HW_ROOT HW_BACKUP_DIR",
        'command -v python3 >/dev/null 2>&1 || { echo "hyperward fix: python3 is needed for the edits; nothing was changed" >&2; exit 2; }',
        'HW_HELPER="$(mktemp)"',
        "trap 'rm -f \"$HW_HELPER\"' EXIT",
        f"cat > \"$HW_HELPER\" <<'{DELIMITER}'",
        inspect.getsource(helper).rstrip("\n"),
        DELIMITER,
        'hw() { python3 "$HW_HELPER" "$@"; }',
        "# the sha256 each edited file may have: as scanned, then as each earlier block of this script leaves it",
        *(f"{var}={q(','.join(expects[path]))}  # {comment(path)}" for path, var in variables.items()),
        'hw_need() { command -v "$1" >/dev/null 2>&1 || { echo "refused: $1 is not installed (this block needs it); nothing changed" >&2; exit 3; }; }',
        "HW_DONE=0 HW_REFUSED=0 HW_FAILED=0 HW_MANUAL=0",
        "HW_NEEDS=()",
        "hw_block() {",
        '  local n=$1 label=$2 fn=$3 rc',
        '  echo "== [$n] $label"',
        "  set +e",
        '  ( set -euo pipefail; "$fn" )',
        "  rc=$?",
        "  set -e",
        '  case $rc in',
        '    0) HW_DONE=$((HW_DONE + 1)); echo "result[$n]: done" ;;',
        '    3) HW_REFUSED=$((HW_REFUSED + 1)); echo "result[$n]: refused" ;;',
        '    *) HW_FAILED=$((HW_FAILED + 1)); echo "result[$n]: failed (exit $rc)" ;;',
        "  esac",
        "  return 0",
        "}",
        'hw_manual() { HW_MANUAL=$((HW_MANUAL + 1)); echo "== [$1] $2"; echo "result[$1]: manual"; }',
        "",
    ]
    for n, block in enumerate(blocks, 1):
        label = q(comment(f"{block.check_id} {block.resource}"))
        out += [
            "# " + "-" * 98,
            f"# [{n}/{len(blocks)}] {block.check_id}  {comment(block.resource)}",
            f"# why: {comment(block.why)}",
            *(f"# change: {comment(describe(e))}" for e in block.edits if not isinstance(e, Manual)),
            *(f"# by hand: {comment(text)}" for text in block.manual),
            *(f"# needs: {comment(n_.describe())}" for n_ in block.needs),
        ]
        if block.refused:
            out.append(f"# not automatic: {comment(block.refused)}")
        if not block.automatic:
            out += [f"hw_manual {n} {label}", ""]
            continue
        out.append(f"hw_fix_{n}() {{")
        for op in block.ops:
            out += _op_lines(op, variables)
        for needs in block.needs:
            out.append(f"  echo {q('  needs: ' + comment(needs.describe()))}")
        out += ["}", f"hw_block {n} {label} hw_fix_{n}"]
        if block.needs:
            out.append("HW_NEEDS+=(" + " ".join(q(f"[{n}] " + comment(x.describe())) for x in block.needs) + ")")
        out.append("")
    out += [
        'echo "hyperward fix: $HW_DONE done, $HW_REFUSED refused, $HW_FAILED failed, $HW_MANUAL to do by hand"',
        'if [ ${#HW_NEEDS[@]} -gt 0 ]; then echo "to take effect (not done by this script):"; printf \'  %s\\n\' "${HW_NEEDS[@]}"; fi',
        '[ "$HW_REFUSED" -eq 0 ] && [ "$HW_FAILED" -eq 0 ]',
        "",
    ]
    return "\n".join(out)
