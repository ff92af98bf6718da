"""`hyperward fix --apply`: run the bash form, scan again, and say per block whether its finding is
fixed, still failing, or waiting for the restart/reboot the block names (never done here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from .. import safefile
from ..model import Status
from ..records import frozen
from .plan import Block

TIMEOUT_S = 900
#: the script's python3, virsh and coreutils come from the system, never from the caller's PATH
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_RESULT = re.compile(r"^result\[(\d+)\]: (done|refused|failed|manual)")


@frozen
class Outcome:
    block: Block
    script: str  # done, refused, failed, manual, not run
    verdict: str  # fixed, still failing, needs restart/reboot, refused, failed, by hand
    detail: str = ""


class ApplyError(Exception):
    pass


def run_script(script: str, root: str, backup_dir: str) -> tuple[dict[int, str], str]:
    """Run SCRIPT with bash from the system path; the per-block results and the whole output."""
    bash = shutil.which("bash", path=SYSTEM_PATH)
    if bash is None:
        raise ApplyError("bash is not installed: cannot apply the fix")
    try:
        workdir = tempfile.mkdtemp(prefix="hyperward-fix-")
    except OSError as exc:
        raise ApplyError(f"no writable temporary directory for the fix script ({exc.strerror or exc}); set TMPDIR") from None
    path = os.path.join(workdir, "fix.sh")
    try:
        safefile.write_text(path, script)
        env = {"PATH": SYSTEM_PATH, "HW_ROOT": "" if root in ("", "/") else root,
               "HW_BACKUP_DIR": backup_dir, "HW_DEFINE": "1", "LC_ALL": "C.UTF-8"}
        try:
            done = subprocess.run([bash, path], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  text=True, errors="replace", timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise ApplyError(f"the fix script did not finish within {TIMEOUT_S} s") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results: dict[int, str] = {}
    for line in done.stdout.splitlines():
        match = _RESULT.match(line)
        if match:
            results[int(match.group(1))] = match.group(2)
    return results, done.stdout


def _reason(output: str, n: int) -> str:
    """The refusal or failure message block N printed (stderr is merged into stdout in order)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"== [{n}] "):
            for following in lines[i + 1:]:
                if following.startswith(("refused:", "failed:")):
                    return following
                if following.startswith(f"result[{n}]"):
                    break
    return ""


def _needs_label(block: Block) -> str:
    kinds = {n.kind for n in block.needs}
    return "needs reboot" if "reboot" in kinds else "needs restart"


def judge(blocks: Sequence[Block], results: dict[int, str], output: str,
          rescan: dict[tuple[str, str], tuple[Status, str]]) -> list[Outcome]:
    """Per block: the script's verdict and the rescan's. A result still failing after a block that
    names a restart or reboot waits for it (with the rescan's reason when it changed: the change
    took, and something it cannot fix may remain); without one it is still failing."""
    out = []
    for n, block in enumerate(blocks, 1):
        script = results.get(n, "not run")
        status, message = rescan.get((block.check_id, block.resource), (None, ""))
        failing = status in (Status.FAIL, Status.ERROR)
        detail = ""
        if script == "manual":
            verdict = "by hand" if failing else "fixed"
        elif script in ("refused", "failed"):
            verdict, detail = script, _reason(output, n)
        elif not failing:
            verdict = "fixed"
        elif script == "done" and block.needs:
            verdict = _needs_label(block)
            detail = "; ".join(x.describe() for x in block.needs)
            if message != block.why:
                detail += f" (now: {message})"
        else:
            verdict, detail = "still failing", message
        out.append(Outcome(block, script, verdict, detail))
    return out
