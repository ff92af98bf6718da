"""What an operator reads (issue 23): one heading per check, passes that say what was verified and
carry no severity label, and the privilege note said once, up front."""

from __future__ import annotations

import pathlib
import re

import pytest

from hyperward.model import Unavailable, Result
from hyperward.report import RenderOptions
from hyperward.report.text import render
from hyperward.verified import _sentences, verified
from hyperward.engine import registry

from conftest import copy_root, hyperward, scan


@pytest.fixture(scope="module")
def weak_report(tmp_path_factory: pytest.TempPathFactory):
    return scan(copy_root("weak", tmp_path_factory.mktemp("weak"), kvm_mode=0o666))


@pytest.fixture(scope="module")
def hardened_report(tmp_path_factory: pytest.TempPathFactory):
    return scan(copy_root("hardened", tmp_path_factory.mktemp("hardened")))


HEADING = re.compile(r"^  (?:(?:CRITICAL|HIGH|MEDIUM|LOW|INFO)\s+(?:FAIL|ERROR|SUPPRESSED)|\[ OK \]|\[ -- \])\s+(HV-[A-Z]+-\d{3})\b")


@pytest.mark.parametrize("width", [80, 160])
def test_each_check_has_one_heading(weak_report, width):
    out = render(weak_report, RenderOptions(verbose=True, width=width))
    headings = [m.group(1) for line in out.splitlines() if (m := HEADING.match(line))]
    assert headings, out
    assert len(headings) == len(set(headings)), sorted(h for h in headings if headings.count(h) > 1)
    assert set(headings) == {f.check_id for f in weak_report.findings}


def test_a_pass_says_what_was_verified_without_a_severity(hardened_report):
    out = render(hardened_report, RenderOptions(verbose=True, width=160))
    assert "  [ OK ]  HV-ISO-005  QEMU does not run as root\n" in out
    assert "CRITICAL PASS" not in out and " PASS " not in out
    assert "QEMU runs as root" not in out


def test_mixed_check_tags_the_results_that_differ_from_its_heading(weak_report):
    out = render(weak_report, RenderOptions(verbose=True, width=160))
    block = out[out.index("  CRITICAL FAIL       HV-AUTH-010"):]
    block = block[:block.index("\n  ", block.index("fix: "))]
    assert "      medium: legacy-vm (a1b2c3d4-e5f6-4789-8abc-def012345678): VNC on 192.168.1.20: password only, no TLS\n" in block
    sshd = out[out.index("HV-AUTH-013"):]
    assert "      ok: sshd:PermitEmptyPasswords: PermitEmptyPasswords no (OpenSSH default)\n" in sshd


def test_long_titles_wrap_under_themselves_at_80_columns(weak_report):
    out = render(weak_report, RenderOptions(verbose=True, width=80))
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith(("hyperward ", "Summary: "))), \
        [line for line in out.splitlines() if len(line) > 80][:3]
    assert "  CRITICAL FAIL       HV-AUTH-010  VNC/SPICE console reachable without strong\n                                   auth\n" in out


def test_every_implemented_check_has_a_pass_sentence():
    sentences = _sentences()
    assert sorted(set(registry()) - set(sentences)) == []
    assert all(not verified(cid).startswith("passes when:") for cid in registry())


def test_unavailable_names_its_file_in_details():
    denied = Unavailable("/etc/shadow", "denied", "permission denied")
    assert Result.unavailable(denied, "/etc/shadow").message == "/etc/shadow: permission denied (run as root)"
    assert Result.unavailable(denied).details == {"file": "/etc/shadow"}


def test_text_line_says_the_resource_once(hardened_report):
    import dataclasses
    f = hardened_report.findings[0]
    twice = dataclasses.replace(f, result=Result.unavailable(Unavailable("/etc/shadow", "denied", "permission denied"), "/etc/shadow"))
    from hyperward.report.text import _line
    assert _line(twice) == "/etc/shadow: permission denied (run as root)"


def test_normal_user_is_told_once_up_front(world_tmp: pathlib.Path):
    """As nobody: the note comes before the first category, names how many checks need root and the
    files root would read; no result line says a path twice."""
    root = copy_root("weak", world_tmp, kvm_mode=0o666)
    for dirpath in [p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()]:
        dirpath.chmod(0o755)
    root.chmod(0o755)
    done = hyperward("scan", "--root", str(root), user="nobody", env={"COLUMNS": "160"})
    out = done.stdout
    lines = out.splitlines()
    note = [i for i, line in enumerate(lines) if line.startswith("Not run as root: ")]
    assert len(note) == 1, out
    first_category = next(i for i, line in enumerate(lines) if line and not line.startswith((" ", "hyperward ", "Not run", "lacked")))
    assert note[0] < first_category
    end = next(i for i, line in enumerate(lines) if line.startswith("lacked privilege"))
    said = " ".join(line.strip() for line in lines[note[0]:end])
    assert said.startswith("Not run as root: 3 checks (4 results) could not read their input and are errors, not verdicts. "
                           "As root they also read "), said
    assert "/etc/shadow, /etc/sudoers" in said
    assert lines[end] == "lacked privilege (run as root for these): HV-AUTH-015, HV-IDS-006, HV-VULN-001"
    assert out.count("lacked privilege") == 1
    assert "/etc/shadow: /etc/shadow" not in out
    for line in lines:
        m = re.match(r"\s+(/\S+): (/\S+): ", line)
        assert not (m and m.group(1) == m.group(2)), line
