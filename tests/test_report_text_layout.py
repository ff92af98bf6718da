"""Issue 14's text report: checks and resources counted apart, long resource lists folded, pending
updates grouped by archive and source package, and a layout that fits 80 and 160 columns."""

from __future__ import annotations

import pathlib
import re

import pytest

from hyperward.model import Status
from hyperward.report import RenderOptions
from hyperward.report.text import render

from conftest import copy_root, scan
from test_patching import _installed_mix, _root

RESULT_LINE = re.compile(r"^      (?!fix: |\u2026 )\S")
MEMBERS = [f"user{i:03d}" for i in range(90)]


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory):
    """The weak root with 90 members in group kvm: HV-AUTH-007 fails on 98 resources."""
    root = copy_root("weak", tmp_path_factory.mktemp("crowded"), kvm_mode=0o666)
    group = root / "etc/group"
    group.write_text(re.sub(r"^kvm:x:104:.*$", "kvm:x:104:" + ",".join(MEMBERS), group.read_text(), flags=re.M))
    passwd = root / "etc/passwd"
    passwd.write_text(passwd.read_text() + "".join(f"{m}:x:{2000 + i}:{2000 + i}::/home/{m}:/bin/bash\n" for i, m in enumerate(MEMBERS)))
    return scan(root)


def _block(out: str, check_id: str) -> list[str]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if f" {check_id} " in line and line.startswith("  ") and not line.startswith("      "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("      ") and not lines[i].startswith(" " * 20))
    return lines[start:end]


def test_a_long_list_folds_after_ten_and_verbose_shows_all(crowded):
    failing = sorted(f.result.resource for f in crowded.findings if f.check_id == "HV-AUTH-007" and f.status is Status.FAIL)
    assert len(failing) == 98  # 90 + ci (primary group kvm), the six libvirt members, a polkit rule
    block = _block(render(crowded, RenderOptions(width=100)), "HV-AUTH-007")
    listed = [line[6:] for line in block if RESULT_LINE.match(line)]
    assert len(listed) == 10 and all(line.startswith(f"{resource}: ") for line, resource in zip(listed, failing))
    assert "      \u2026 and 88 more (-v shows all)" in block
    assert block[-2].startswith("      fix: ")
    full = _block(render(crowded, RenderOptions(width=100, verbose=True)), "HV-AUTH-007")
    assert len([line for line in full if RESULT_LINE.match(line)]) == 98
    assert not any("more (-v shows all)" in line for line in full)


def test_eleven_resources_are_listed_not_folded_into_one_more(crowded):
    """Eleven lines show eleven resources: "and 1 more" would take the eleventh's line."""
    out = render(crowded, RenderOptions(width=100))
    assert "and 1 more" not in out


def test_summary_counts_checks_and_resources_apart(crowded):
    fails = [f for f in crowded.findings if f.status is Status.FAIL]
    checks, resources = len({f.check_id for f in fails}), len({f.result.resource for f in fails})
    out = render(crowded, RenderOptions(quiet=True, width=80))
    assert out.count("\n") == 1
    assert out.startswith(f"Summary: {checks} checks fail, on {resources} resources | {len(fails)} failing (")


@pytest.mark.parametrize("width", [80, 160])
@pytest.mark.parametrize("verbose", [False, True])
def test_every_line_fits_the_terminal(crowded, width, verbose):
    out = render(crowded, RenderOptions(width=width, verbose=verbose))
    assert all(len(line) <= width for line in out.splitlines()), [line for line in out.splitlines() if len(line) > width][:3]


@pytest.mark.parametrize("width", [80, 160])
def test_titles_never_break_inside_a_word(crowded, width):
    out = render(crowded, RenderOptions(width=width, verbose=True))
    titles = {f.check_id: f.meta.title for f in crowded.findings}
    lines = out.splitlines()
    checked = 0
    for i, line in enumerate(lines):
        m = re.match(r"^  (?:\S+\s+\S+\s+|\[ OK \]  |\[ -- \]  )(HV-[A-Z]+-\d{3})  (.*)$", line)
        if not m or m.group(1) not in titles or line.startswith("  [ "):
            continue
        shown, j = m.group(2), i + 1
        while j < len(lines) and lines[j].startswith(" " * 30) and not lines[j].strip().startswith(("fix:", "\u2026")):
            shown += " " + lines[j].strip()
            j += 1
        assert shown == titles[m.group(1)], (shown, titles[m.group(1)])
        assert all(word in titles[m.group(1)].split() for word in shown.split())
        checked += 1
    assert checked > 50


def test_pending_updates_group_by_archive_and_source(tmp_path: pathlib.Path):
    root = _root(tmp_path, _installed_mix())
    (root / "etc/libvirt").mkdir(parents=True)
    report = scan(root, only=["HV-PATCH-001"])
    pending = [f for f in report.findings if f.status is Status.FAIL]
    assert {f.result.details["archive"] for f in pending} == {"Debian bookworm-security (security)", "Debian bookworm"}
    assert {f.result.details["source_package"] for f in pending if f.result.resource in ("libssl3", "openssl")} == {"openssl"}
    for width in (80, 160):
        out = render(report, RenderOptions(width=width))
        lines = [line.strip() for line in out.splitlines()]
        security = lines.index("from Debian bookworm-security (security): 8 updates of 5 source packages")
        main = lines.index("from Debian bookworm: 3 updates of 3 source packages")
        assert security < main
        joined = " ".join(lines[security:main])
        # one line per source package, its binaries together; apt and openssl come from the security archive
        assert "medium: openssl: libssl3, openssl (3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2)" in joined
        assert "medium: apt: apt, apt-utils, libapt-pkg6.0" in joined
        assert "libvirt: libvirt0 (9.0.0-4 -> 9.0.0-4+deb12u2)" in " ".join(lines[main:])
        assert "low: bash: bash (" in " ".join(lines[main:])
        assert all(len(line) <= width for line in out.splitlines())
        # no result line of its own for a grouped package
        assert not any(line.startswith("libssl3: ") for line in lines)


def test_hostile_resource_names_stay_escaped_when_folded(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    group = root / "etc/group"
    names = [f"u{i}" for i in range(20)]
    group.write_text(re.sub(r"^kvm:x:104:.*$", "kvm:x:104:" + ",".join(names), group.read_text(), flags=re.M))
    passwd = root / "etc/passwd"
    passwd.write_text(passwd.read_text() + "".join(f"{n}:x:{3000 + i}:{3000 + i}:\x1b]0;pwned\x07:/home/{n}:/bin/bash\n" for i, n in enumerate(names)))
    out = render(scan(root), RenderOptions(width=80))
    assert "\x1b" not in out and "\x07" not in out


def test_many_source_packages_fold_per_archive(tmp_path: pathlib.Path):
    """Thirty source packages pending from one archive: ten shown, the rest counted; a source
    package with many binaries lists ten of them."""
    import dataclasses

    root = _root(tmp_path, _installed_mix())
    (root / "etc/libvirt").mkdir(parents=True)
    report = scan(root, only=["HV-PATCH-001"])
    model = next(f for f in report.findings if f.status is Status.FAIL and f.result.details.get("archive") == "Debian bookworm")
    made = []
    for i in range(30):
        for j in range(1 if i else 14):
            name = f"pkg{i:02d}-bin{j:02d}"
            details = {**model.result.details, "package": name, "source_package": f"src{i:02d}", "installed": "1.0", "candidate": "1.1"}
            made.append(dataclasses.replace(model, result=dataclasses.replace(model.result, resource=name, details=details)))
    many = dataclasses.replace(report, findings=made)
    out = render(many, RenderOptions(width=80))
    lines = [line.strip() for line in out.splitlines()]
    assert "from Debian bookworm: 43 updates of 30 source packages" in lines
    assert "\u2026 and 20 more source packages (-v shows all)" in lines
    assert sum(1 for line in lines if re.match(r"^(low: |high: )?src\d\d: ", line)) == 10
    joined = " ".join(lines)
    assert "pkg00-bin09, \u2026 and 4 more (1.0 -> 1.1)" in joined
    verbose = render(many, RenderOptions(width=80, verbose=True))
    assert "more source packages" not in verbose and "pkg00-bin13" in verbose and "pkg29-bin00" in verbose
    assert all(len(line) <= 80 for line in out.splitlines())
