"""HV-PATCH-001: pending updates computed from apt's lists and pins, held to the real apt.

Each scenario builds a root with a dpkg status file, excerpts of Debian 12's real apt lists
(tests/fixtures/apt) and sources/pins, then compares hyperward's pending updates with what
`apt -o Dir=ROOT list --upgradable` prints for the very same root. On the live host the same
comparison runs against plain `apt list --upgradable`.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks, select
from hyperward.model import Severity, Status
from hyperward.parsers.apt_lists import iter_packages, parse_preferences, parse_release, source_list_prefixes

from conftest import REPO, require, scan

APT = REPO / "tests/fixtures/apt"
MAIN = "deb.debian.org_debian_dists_bookworm"
SECURITY = "deb.debian.org_debian-security_dists_bookworm-security"
UPDATES = "deb.debian.org_debian_dists_bookworm-updates"
BACKPORTS = "deb.debian.org_debian_dists_bookworm-backports"
SOURCES = ("deb http://deb.debian.org/debian bookworm main\n"
           "deb http://deb.debian.org/debian bookworm-updates main\n"
           "deb http://deb.debian.org/debian-security bookworm-security main\n")


def _versions(prefix: str) -> dict[str, str]:
    data = (APT / f"{prefix}_main_binary-amd64_Packages").read_bytes()
    return {a.name: a.version for a in iter_packages(data, {m.decode() for m in re.findall(rb"^Package: (\S+)", data, re.M)})}


def _stanzas() -> dict[str, str]:
    out: dict[str, str] = {}
    for prefix in (MAIN, UPDATES, SECURITY):
        for stanza in (APT / f"{prefix}_main_binary-amd64_Packages").read_text().split("\n\n"):
            if stanza.startswith("Package: "):
                out.setdefault(stanza.split("\n", 1)[0][9:], stanza)
    return out


DROP = re.compile(r"^(Filename|Size|MD5sum|SHA256|Description-md5|Tag):.*\n?", re.M)


def _status(installed: dict[str, tuple[str, str]]) -> str:
    """dpkg status stanzas made from the packages' own index stanzas (apt tells versions apart by
    their dependency fields too, so a made-up stanza would look like a different build)."""
    stanzas = _stanzas()
    out = []
    for name, (version, arch) in installed.items():
        text = DROP.sub("", stanzas[name]).rstrip("\n")
        text = re.sub(r"^Version: .*$", f"Version: {version}", text, flags=re.M)
        text = re.sub(r"^Architecture: .*$", f"Architecture: {arch}", text, flags=re.M)
        text = text.replace(f"Package: {name}\n", f"Package: {name}\nStatus: install ok installed\n", 1)
        out.append(text + "\n\n")
    return "".join(out)


def _root(tmp: pathlib.Path, installed: dict[str, tuple[str, str]], *, sources: str = SOURCES, prefs: str | None = None,
          extra: dict[str, str] | None = None) -> pathlib.Path:
    root = tmp / "root"
    lists = root / "var/lib/apt/lists"
    (lists / "partial").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    (root / "etc/apt/preferences.d").mkdir(parents=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "etc/apt/apt.conf.d").mkdir(parents=True)
    for path in APT.iterdir():
        shutil.copy(path, lists / path.name)
    for name, text in (extra or {}).items():
        (lists / name).write_text(text)
    (root / "var/lib/dpkg/status").write_text(_status(installed))
    (root / "etc/apt/sources.list").write_text(sources)
    if prefs is not None:
        (root / "etc/apt/preferences.d/site").write_text(prefs)
    return root


def _apt_upgradable(root: pathlib.Path | None = None) -> set[tuple[str, str, str]]:
    require(shutil.which("apt") is not None, "apt (Debian's package manager)")
    cmd = ["apt"]
    if root is not None:
        cmd += ["-o", f"Dir={root}", "-o", f"Dir::State::status={root}/var/lib/dpkg/status", "-o", "Debug::NoLocking=1",
                "-o", f"Dir::Etc::Parts={root}/etc/apt/apt.conf.d"]
    done = subprocess.run([*cmd, "list", "--upgradable"], capture_output=True, text=True, timeout=120, env={**os.environ, "LC_ALL": "C"})
    assert done.returncode == 0, done.stderr
    out = set()
    for line in done.stdout.splitlines():
        if "[upgradable from:" in line:
            name_suite, version, arch = line.split()[:3]
            out.add((name_suite.split("/")[0], version, arch))
    return out


def _ours(root: pathlib.Path | str) -> set[tuple[str, str, str]]:
    state = collect_host(str(root)).patching.apt_state
    assert state is not None and not isinstance(state, type(None)) and not state.problems
    return {(p.name, p.candidate, p.arch) for p in state.pending}


def _reported(root: pathlib.Path | str) -> set[tuple[str, str, str]]:
    """What HV-PATCH-001 lists, in apt's terms (name, candidate, arch): every pending update, not
    only security ones, so this set must be `apt list --upgradable`'s."""
    facts = collect_host(str(root))
    native = next(p.arch for p in facts.patching.packages if p.name == "dpkg") if any(p.name == "dpkg" for p in facts.patching.packages) else "amd64"
    arch_of = {(p.name, p.arch) for p in facts.patching.packages}
    report = run_checks(facts, select(registry(), ["HV-PATCH-001"]))
    out = set()
    for f in report.findings:
        if f.status is not Status.FAIL or f.result.resource in ("apt lists", "apt sources"):
            continue
        name, _, arch = f.result.resource.partition(":")
        if not arch:
            arch = next(a for n, a in arch_of if n == name and a in ("all", "", native))
        candidate = re.search(r"candidate (\S+) from ", f.result.message)
        assert candidate, f.result.message
        out.add((name, candidate.group(1), arch))
    return out


MAIN_V, SECURITY_V, UPDATES_V = _versions(MAIN), _versions(SECURITY), _versions(UPDATES)


def _older(name: str) -> str:
    """An installed version older than any offered (a real-looking earlier Debian revision)."""
    offered = [v for table in (MAIN_V, SECURITY_V, UPDATES_V) if (v := table.get(name))]
    base = min(offered, key=lambda v: v)
    return base.rsplit("+deb12u", 1)[0] if "+deb12u" in base else base + "~old1"


def _installed_mix() -> dict[str, tuple[str, str]]:
    with_security = sorted(set(SECURITY_V) & set(MAIN_V))
    installed = {name: (MAIN_V[name], "all" if name in ("ca-certificates", "tzdata", "distro-info-data", "qemu-system-data") else "amd64")
                 for name in with_security}
    installed.update({"bash": (_older("bash"), "amd64"), "swtpm": (MAIN_V["swtpm"], "amd64"), "curl": (_older("curl"), "amd64"),
                      "apt": ("2.6.0", "amd64"), "libvirt0": (_older("libvirt0"), "amd64"), "ovmf": (MAIN_V["ovmf"], "all")})
    return installed


def test_fixture_lists_hold_security_updates_for_the_virt_stack():
    assert {"qemu-system-x86", "libvirt0", "openssl"} & set(SECURITY_V)
    assert len(MAIN_V) > 25


SCENARIOS = {
    "security-main-updates": {},
    "pin-hold-installed-version": {"prefs": "Package: qemu*\nPin: version {qemu}\nPin-Priority: 1001\n"},
    "pin-refuse-security-archive": {"prefs": "Package: openssl libssl3\nPin: release l=Debian-Security\nPin-Priority: -1\n"},
    "pin-origin-and-general": {"prefs": "Package: *\nPin: origin deb.debian.org\nPin-Priority: 400\n\nPackage: bash\nPin: release n=bookworm\nPin-Priority: 50\n"},
    "source-removed-lists-left": {"sources": "deb http://deb.debian.org/debian bookworm main\n"},
    "backports-not-automatic": {"backports": True},
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_pending_updates_agree_with_real_apt(tmp_path, name):
    spec = SCENARIOS[name]
    installed = _installed_mix()
    extra = {}
    if spec.get("backports"):
        extra[f"{BACKPORTS}_Release"] = ("Origin: Debian Backports\nLabel: Debian Backports\nSuite: oldstable-backports\nVersion: \n"
                                         "Codename: bookworm-backports\nDate: Wed, 25 Nov 2026 20:10:12 UTC\nNotAutomatic: yes\n"
                                         "ButAutomaticUpgrades: yes\nComponents: main contrib non-free non-free-firmware\n"
                                         "Description: Debian Backports\n")
        stanza = (APT / f"{MAIN}_main_binary-amd64_Packages").read_text().split("\n\n")
        qemu_utils = next(s for s in stanza if s.startswith("Package: qemu-utils\n"))
        swtpm = next(s for s in stanza if s.startswith("Package: swtpm\n"))
        extra[f"{BACKPORTS}_main_binary-amd64_Packages"] = (
            re.sub(r"\nVersion: .*", "\nVersion: 1:8.2.2+ds-1~bpo12+1", qemu_utils) + "\n\n"
            + re.sub(r"\nVersion: .*", "\nVersion: 0.8.0-1~bpo12+1", swtpm) + "\n"
        )
        installed["qemu-utils"] = ("1:8.2.1+ds-1~bpo12+1", "amd64")
        spec = {**spec, "sources": SOURCES + "deb http://deb.debian.org/debian bookworm-backports main\n"}
    prefs = spec.get("prefs")
    if prefs:
        prefs = prefs.replace("{qemu}", installed.get("qemu-system-x86", ("", ""))[0])
    root = _root(tmp_path, installed, sources=spec.get("sources", SOURCES), prefs=prefs, extra=extra)
    theirs = _apt_upgradable(root)
    assert _ours(root) == theirs
    assert _reported(root) == theirs
    assert theirs, "the scenario should leave something to upgrade"


def test_this_host_agrees_with_apt_list_upgradable():
    require(os.path.isdir("/var/lib/apt/lists") and any(n.endswith(("Packages", ".lz4")) for n in os.listdir("/var/lib/apt/lists")),
            "this host has apt lists (apt-get update has run)")
    theirs = _apt_upgradable()
    assert _ours("/") == theirs
    assert _reported("/") == theirs


def test_virt_stack_is_high_other_security_medium_the_rest_low(tmp_path):
    installed = _installed_mix()
    root = _root(tmp_path, installed)
    for rel in ("etc/libvirt", "proc", "sys"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    report = scan(root, only=["HV-PATCH-001"])
    fails = {f.result.resource: f for f in report.findings if f.status is Status.FAIL}
    virt = {n for n in fails if n.startswith(("qemu", "libvirt", "ovmf", "swtpm", "linux-image"))}
    assert virt and all(fails[n].severity is Severity.HIGH for n in virt)
    security = {n for n in set(fails) - virt if "(security)" in fails[n].result.message}
    assert security and all(fails[n].severity is Severity.MEDIUM and fails[n].result.message.startswith("security update: ") for n in security)
    rest = set(fails) - virt - security
    # pending from the point release (bookworm) or bookworm-updates: neither security nor the stack
    assert {"bash", "curl"} <= rest and all(fails[n].severity is Severity.LOW for n in rest)
    assert fails["bash"].result.message.startswith("pending update outside the security archive")
    assert f"installed {installed['bash'][0]}, candidate {MAIN_V['bash']} from Debian bookworm" in fails["bash"].result.message
    [libvirt] = [fails[n] for n in virt if n == "libvirt0"]
    assert f"installed {installed['libvirt0'][0]}, candidate" in libvirt.result.message


def test_parsers_for_release_pins_and_sources():
    release = parse_release((APT / f"{SECURITY}_Release").read_text(), site="deb.debian.org")
    assert release.security and release.codename == "bookworm-security" and release.label == "Debian-Security"
    [pin] = parse_preferences("# held\nPackage: qemu* /^libvirt/\nPin: release a=oldstable-security\nPin-Priority: 990\n", "x")
    assert pin.matches_package("qemu-utils") and pin.matches_package("libvirt0") and not pin.matches_package("bash")
    assert pin.matches("qemu-utils", "1", release)
    deb822 = "Types: deb deb-src\nURIs: http://deb.debian.org/debian https://mirror.example/deb_ian/\nSuites: bookworm bookworm-updates\nComponents: main\n"
    assert source_list_prefixes(deb822, True) == [
        "deb.debian.org_debian_dists_bookworm_", "deb.debian.org_debian_dists_bookworm-updates_",
        "mirror.example_deb%5fian_dists_bookworm_", "mirror.example_deb%5fian_dists_bookworm-updates_",
    ]
    assert source_list_prefixes("deb [arch=amd64 signed-by=/k.gpg] http://u:p@repo.example/x stable main\n# deb http://no/ x y\n", False) == [
        "repo.example_x_dists_stable_"]


def test_stale_lists_and_corrupt_index(tmp_path):
    root = _root(tmp_path, _installed_mix())
    lists = root / "var/lib/apt/lists"
    old = 1_700_000_000
    for path in lists.iterdir():
        os.utime(path, (old, old))
    (lists / f"{UPDATES}_main_binary-amd64_Packages.lz4").write_bytes(b"\x04\x22\x4d\x18garbage")
    (root / "etc/libvirt").mkdir(parents=True)
    report = scan(root, only=["HV-PATCH-001"])
    by = {f.result.resource: f for f in report.findings}
    assert by["apt lists"].status is Status.FAIL and "days ago" in by["apt lists"].result.message
    corrupt = by[f"/var/lib/apt/lists/{UPDATES}_main_binary-amd64_Packages.lz4"]
    assert corrupt.status is Status.ERROR and "cannot decompress" in corrupt.result.message


@pytest.mark.parametrize("sources", [SOURCES.replace("deb http://deb.debian.org/debian-security bookworm-security main\n", ""), None])
def test_sources_without_a_security_archive_fail(tmp_path, sources):
    """Without a security archive no security update can ever arrive, however current the rest:
    that fails, it is not "no pending security update". No sources file at all: the lists decide."""
    root = _root(tmp_path, _installed_mix(), sources=sources or "")
    lists = root / "var/lib/apt/lists"
    for path in lists.glob(f"{SECURITY}_*"):
        path.unlink()
    if sources is None:
        (root / "etc/apt/sources.list").unlink()
    report = scan(root, only=["HV-PATCH-001"])
    [finding] = [f for f in report.findings if f.result.resource == "apt sources"]
    assert finding.status is Status.FAIL and finding.severity is Severity.HIGH
    assert "security updates can never arrive" in finding.result.message
    if sources is not None:
        assert "http://deb.debian.org/debian bookworm-updates" in finding.result.message
    assert not any("(security)" in f.result.message for f in report.findings)


def test_sources_with_a_security_archive_do_not_fail_for_it(tmp_path):
    report = scan(_root(tmp_path, {"bash": (MAIN_V["bash"], "amd64")}), only=["HV-PATCH-001"])
    assert [(f.status, f.result.resource) for f in report.findings] == [(Status.PASS, "apt")]
    assert report.findings[0].result.message.startswith("no pending update")


LIST_AGES = [
    # hours since apt-get update last touched the lists, whether "apt lists" fails (7 days is the limit)
    (1, False), (7 * 24 - 1, False), (7 * 24 + 1, True), (8 * 24 + 1, True),
]


@pytest.mark.parametrize("hours,fails", LIST_AGES, ids=[f"{h}h" for h, _ in LIST_AGES])
def test_apt_list_age_boundary(tmp_path, hours, fails):
    """Seven days and an hour is past a seven-day limit: the age is the time elapsed, not whole days."""
    root = _root(tmp_path, _installed_mix())
    then = time.time() - hours * 3600
    for path in (root / "var/lib/apt/lists").iterdir():
        os.utime(path, (then, then))
    (root / "etc/libvirt").mkdir(parents=True)
    by = {f.result.resource: f for f in scan(root, only=["HV-PATCH-001"]).findings}
    if fails:
        assert by["apt lists"].status is Status.FAIL
        assert by["apt lists"].result.message.startswith(f"last updated {hours // 24} days ago (")
    else:
        assert "apt lists" not in by
