"""The ESXi build table HV-PATCH-100 judges with: its validation, and `hyperward db update`
refreshing it from a real HTTP server on 127.0.0.1 (a newer table is written atomically and
privately and changes the verdicts; a garbled or invalid one is one error and the old copy stays).

The newer table served here is test data: its VMSA-2099-0001 and build 26000001 are made up to
show a refresh taking effect, and are never shipped.

HV-PATCH-100 lets a table vouch for a build only 120 days after it was compiled, counted at the
facts' collection time, so every verdict here is judged from a snapshot of the hardened root whose
collection time is fixed (the bundled table's own date, or a given number of days after it): the
tests hold whatever the calendar says, and they are the ones that run the bundled table itself
(the rest of the suite judges with a copy dated today, tests/conftest.py esxi_build_table)."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REPO, hyperward
from hyperward.platforms.esxi import builds

BUNDLED = REPO / "src/hyperward/data/esxi-builds.json"
HARDENED = REPO / "tests/fixtures/esxi/hardened"
ADVISORY = REPO / "tests/fixtures/advisories/tracker.json"
HOST = "esx01.lab.example"
#: 2026-12-02T00:00:00Z, the day the bundled table was compiled
BUNDLED_DAY = 1796169600


def newer_table() -> dict[str, Any]:
    doc = json.loads(BUNDLED.read_text())
    doc["compiled"] = "2099-01-02"
    line = next(entry for entry in doc["lines"] if entry["version"] == "8.0.3")
    line["fixes"].insert(0, {"build": 26000001, "release": "ESXi80U3z-26000001", "advisory": "VMSA-2099-0001", "published": "2099-01-01",
                             "cves": ["CVE-2099-0001"], "sources": ["https://example.invalid/test-data"]})
    return doc


def test_bundled_table_is_valid_and_keys_lines_by_version() -> None:
    table = builds.bundled()
    assert table.compiled.isoformat() == "2026-12-02"
    assert table.line_for("8.0.3").name == "ESXi 8.0 Update 3"  # type: ignore[union-attr]
    assert table.line_for("9.0.2.0").version == "9.0"  # type: ignore[union-attr]
    assert table.line_for("7.0.3").status == "end_of_support"  # type: ignore[union-attr]
    assert table.line_for("8.1.0") is None and table.line_for("10.0") is None
    assert table.line_for("8.0.3").latest.build == 25926933  # type: ignore[union-attr]


def _mutated(change: Any) -> bytes:
    doc = json.loads(BUNDLED.read_text())
    change(doc)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("data, message", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", "not a hyperward ESXi build table"),
    (_mutated(lambda d: d.update(schema=2)), "schema 2 is not 1"),
    (_mutated(lambda d: d.update(compiled="yesterday")), "'compiled' must be a date"),
    (_mutated(lambda d: d["lines"][2]["fixes"][0].update(build="25926933")), "line 8.0.3 fixes[0]: 'build' must be a positive build number"),
    (_mutated(lambda d: d["lines"][2]["fixes"][0].update(cves=["not-a-cve"])), "line 8.0.3 fixes[0]: 'cves' must be a non-empty list of CVE IDs"),
    (_mutated(lambda d: d["lines"][2].update(fixes=[])), "line 8.0.3: a patched line needs at least one fix"),
    (_mutated(lambda d: d["lines"].append(copy.deepcopy(d["lines"][0]))), "line 9.1: given twice"),
    (_mutated(lambda d: d["lines"][3].update(status="fine")), "line 8.0.2: status 'fine' is not one of patched, no_fix, end_of_support"),
    (_mutated(lambda d: d["lines"][3].pop("reason")), "line 8.0.2: 'reason' must be a non-empty string"),
    (_mutated(lambda d: d["lines"][0]["fixes"][0].update(sources=["http://plain.example"])), "'sources' must be a non-empty list of https:// URLs"),
    (b" " * (builds.MAX_SIZE + 1), "larger than"),
])
def test_bad_tables_are_rejected_naming_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(builds.TableError, match=re.escape(message)):
        builds.parse(data, "test")


def _update(tmp_path: pathlib.Path, url: str, installed: pathlib.Path) -> Any:
    config = tmp_path / "config.toml"
    config.write_text(f'[vulndb]\npath = "{tmp_path / "db.sqlite"}"\nsources = ["file://{ADVISORY}"]\nesxi_builds_url = "{url}"\n')
    return hyperward("db", "update", "--config", str(config), "--timeout", "10", env={builds.ENV: str(installed)})


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hardened root collected once; its ESXi facts' collected_at is set per verdict."""
    path = tmp_path_factory.mktemp("snapshot") / "snap.json"
    r = hyperward("collect", "--root", str(HARDENED), "-o", str(path))
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(path.read_text())
    assert _esxi_facts(doc) is not None
    return doc


def _esxi_facts(node: Any) -> Any:
    if isinstance(node, dict):
        if "collected_at" in node and "hosts" in node and "endpoints" in node:
            return node
        for value in node.values():
            if (found := _esxi_facts(value)) is not None:
                return found
    return None


def _patch_verdict(installed: pathlib.Path, snapshot: dict[str, Any], scratch: pathlib.Path,
                   collected: int = BUNDLED_DAY) -> tuple[str, str]:
    """HV-PATCH-100 on the hardened host (8.0 U3m) as if collected at COLLECTED, with the installed
    table at INSTALLED (absent, garbled, older or newer than the bundled one)."""
    doc = copy.deepcopy(snapshot)
    _esxi_facts(doc)["collected_at"] = collected
    snap = scratch / f"snap-{collected}.json"
    snap.write_text(json.dumps(doc))
    r = hyperward("scan", "--snapshot", str(snap), "--only", "HV-PATCH-100", "--format", "json", env={builds.ENV: str(installed)})
    assert r.returncode == 0, r.stderr
    [row] = [(f["status"], f["message"]) for f in json.loads(r.stdout)["results"] if f["resource"] == HOST]
    return row


def test_db_update_refreshes_the_table_and_rejects_bad_ones(tmp_path: pathlib.Path, served: tuple[str, pathlib.Path],
                                                           snapshot: dict[str, Any]) -> None:
    base, www = served
    installed = tmp_path / "state" / "esxi-builds.json"
    installed.parent.mkdir()
    # before any refresh the bundled table judges: the hardened host is at 8.0 U3m
    assert _patch_verdict(installed, snapshot, tmp_path)[0] == "pass"
    (www / "esxi-builds.json").write_text(json.dumps(newer_table()))
    done = _update(tmp_path, f"{base}/esxi-builds.json", installed)
    assert done.returncode == 0, done.stderr
    assert f"{base}/esxi-builds.json: ESXi build table compiled 2099-01-02, 9 release lines, written to {installed}" in done.stdout
    assert os.stat(installed).st_mode & 0o777 == 0o600
    assert not [p for p in installed.parent.iterdir() if p.name != installed.name]  # no temporary file left behind
    assert _patch_verdict(installed, snapshot, tmp_path) == (
        "fail", "ESXi 8.0.3 build 25926933 is below 26000001 (ESXi80U3z-26000001), the latest security patch of ESXi 8.0 Update 3: "
        f"missing VMSA-2099-0001 (CVE-2099-0001) [build table compiled 2099-01-02 ({installed})]")
    good = installed.read_bytes()
    # a garbled download, an invalid table, a 404: one error each, the installed copy untouched, exit 1
    (www / "garbled.json").write_bytes(good[: len(good) // 2])
    bad = newer_table()
    bad["lines"][2]["fixes"][0]["build"] = -1
    (www / "invalid.json").write_text(json.dumps(bad))
    for name, why in (("garbled.json", "not JSON"), ("invalid.json", "line 8.0.3 fixes[0]: 'build' must be a positive build number"),
                      ("missing.json", "HTTP 404")):
        r = _update(tmp_path, f"{base}/{name}", installed)
        assert r.returncode == 1, (name, r.stderr)
        errors = [line for line in r.stderr.splitlines() if "ESXi build table" in line]
        assert len(errors) == 1 and why in errors[0] and f"{installed} is unchanged" in errors[0], errors
        assert installed.read_bytes() == good
    # a table older than the bundled one is refused too (it would hide newer fixes)
    old = newer_table()
    old["compiled"] = "2020-01-01"
    (www / "old.json").write_text(json.dumps(old))
    r = _update(tmp_path, f"{base}/old.json", installed)
    assert r.returncode == 1 and "older than the bundled one" in r.stderr and installed.read_bytes() == good


def test_a_bad_or_old_installed_table_falls_back_to_the_bundled_one(tmp_path: pathlib.Path, snapshot: dict[str, Any]) -> None:
    installed = tmp_path / "esxi-builds.json"
    installed.write_text("{garbage")
    status, message = _patch_verdict(installed, snapshot, tmp_path)
    assert status == "pass" and f"ignored {installed}: not JSON" in message
    old = newer_table()
    old["compiled"] = "2020-01-01"
    installed.write_text(json.dumps(old))
    assert _patch_verdict(installed, snapshot, tmp_path) == ("pass", "ESXi 8.0.3 build 25926933 is at or above ESXi80U3m-25926933, the latest security patch "
                                                 "of ESXi 8.0 Update 3 [build table compiled 2026-12-02]")
    installed.unlink()
    os.mkfifo(installed)  # a FIFO planted where the table goes must not hang the scan
    status, message = _patch_verdict(installed, snapshot, tmp_path)
    assert status == "pass" and f"ignored {installed}: not a regular file" in message


def test_the_written_table_is_never_reached_through_a_symlink(tmp_path: pathlib.Path, served: tuple[str, pathlib.Path]) -> None:
    base, www = served
    (www / "esxi-builds.json").write_text(json.dumps(newer_table()))
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    installed = tmp_path / "esxi-builds.json"
    installed.symlink_to(victim)
    r = _update(tmp_path, f"{base}/esxi-builds.json", installed)
    assert r.returncode == 1 and "the ESXi build table is unchanged" in r.stderr
    assert victim.read_text() == "keep me\n" and installed.is_symlink()
    shutil.rmtree(www)


def test_a_world_writable_state_directory_is_refused(tmp_path: pathlib.Path, served: tuple[str, pathlib.Path]) -> None:
    """Another user who can write the directory could swap the table between write and rename:
    safefile refuses a world-writable directory without the sticky bit, and nothing is written."""
    base, www = served
    (www / "esxi-builds.json").write_text(json.dumps(newer_table()))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    installed = shared / "esxi-builds.json"
    r = _update(tmp_path, f"{base}/esxi-builds.json", installed)
    assert r.returncode == 1 and "world-writable without the sticky bit" in r.stderr and "the ESXi build table is unchanged" in r.stderr
    assert list(shared.iterdir()) == []


def test_an_outdated_table_vouches_for_no_build(tmp_path: pathlib.Path, snapshot: dict[str, Any]) -> None:
    """A build at the table's latest fix passes only while the table is recent at the time the facts
    were collected (120 days): a snapshot collected long after the table was compiled is not a pass.
    Judged with the bundled table itself (no installed copy) at fixed collection times, so the
    verdicts are the same whatever day the suite runs; after 120 days a real scan of a host at
    the bundled latest fix turns not applicable, which is the reminder to compile a new table."""
    none = tmp_path / "no-installed-table.json"
    day = 86400
    for collected, expected in ((BUNDLED_DAY, "pass"), (BUNDLED_DAY + 120 * day, "pass"),
                                (BUNDLED_DAY + 121 * day, "not_applicable"), (BUNDLED_DAY + 200 * day, "not_applicable")):
        assert _patch_verdict(none, snapshot, tmp_path, collected)[0] == expected, collected
    assert _patch_verdict(none, snapshot, tmp_path, BUNDLED_DAY) == (
        "pass", "ESXi 8.0.3 build 25926933 is at or above ESXi80U3m-25926933, the latest security patch of ESXi 8.0 Update 3 "
                "[build table compiled 2026-12-02]")
    assert _patch_verdict(none, snapshot, tmp_path, BUNDLED_DAY + 200 * day) == (
        "not_applicable", "ESXi 8.0.3 build 25926933 is at or above ESXi80U3m-25926933, but the build table is 200 days older than "
                          "the scan (compiled 2026-12-02): later advisories are unknown; run `hyperward db update`")
    # a build below the latest fix fails whatever the table's age: a missing patch stays missing
    below = copy.deepcopy(snapshot)
    for host in _esxi_facts(below)["hosts"]:
        host["build"] = "25595708"
    status, message = _patch_verdict(none, below, tmp_path, BUNDLED_DAY + 400 * day)
    assert status == "fail" and message.startswith("ESXi 8.0.3 build 25595708 is below 25926933 (ESXi80U3m-25926933)")
    assert "missing VMSA-2026-0011 (CVE-2026-123911) [build table compiled 2026-12-02]" in message
