"""The sourced tables (hyperward.sourced): the ESXi build table, the VirtualBox security table and
the lifecycle table under one envelope. Each is validated whole (garbage, truncated, huge,
wrong-format, nested and duplicated input is one error naming what is wrong, never a traceback);
a refreshed copy is preferred only when valid and not older than the packaged one; a table that
cannot be loaded is an Unavailable fact the check reports with its path; the age rule turns a
pass into not applicable past the table's max age at fixed collection dates; and `hyperward db
update` refreshes each table from its own [vulndb] URL against a real HTTP server on 127.0.0.1,
writing atomically and privately and keeping the old copy on any error.

The newer tables served here are test data: the "January 2099" CPU, CVE-2099-* and the moved
Rocky Linux date are made up to show a refresh taking effect, and are never shipped."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import re
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import REPO, hyperward, scan, statuses
from vbox_roots import make_hardened_root, make_root

from hyperward import sourced
from hyperward.collect import collect_host
from hyperward.collect.lifecycle import SPEC as LIFECYCLE
from hyperward.collect.lifecycle import release_lifecycle
from hyperward.config import ConfigError, load_config
from hyperward.engine import registry, run_checks, select
from hyperward.facts import GuestInside, GuestScanFacts, HostTrust, Lifecycle, OsRelease, dump_snapshot, load_snapshot
from hyperward.guests.inside_checks import guest_end_of_life
from hyperward.model import Status, Unavailable
from hyperward.platforms.esxi import builds
from hyperward.platforms.esxi.builds import SPEC as ESXI
from hyperward.platforms.virtualbox import security
from hyperward.platforms.virtualbox.security import SPEC as VIRTUALBOX

DATA = REPO / "src/hyperward/data"
SPECS = {"esxi": ESXI, "virtualbox": VIRTUALBOX, "lifecycle": LIFECYCLE}
FILES = {"esxi": "esxi-builds.json", "virtualbox": "virtualbox_security.json", "lifecycle": "lifecycle.json"}
ESXI_HARDENED = REPO / "tests/fixtures/esxi/hardened"
DAY = datetime.timedelta(days=1)
#: the day the packaged tables were compiled
COMPILED = datetime.date(2026, 12, 2)
ADVISORY = REPO / "tests/fixtures/advisories/tracker.json"


def packaged_doc(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((DATA / FILES[name]).read_text())
    return doc


def encoded(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# --- the envelope -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_each_packaged_table_is_valid_with_the_common_envelope(name: str) -> None:
    spec = SPECS[name]
    table = sourced.packaged(spec)
    about = spec.about(table)
    assert (about.format, about.schema, about.compiled, about.origin, about.ignored) == (spec.format, 1, "2026-12-02", "bundled", None)
    assert about.covers and about.sources and all(u.startswith("https://") for u in about.sources)
    assert about.max_age_days == {"esxi": 120, "virtualbox": 120, "lifecycle": 365}[name]
    assert spec.packaged_path().endswith(f"hyperward/data/{FILES[name]}")


def _mutate(name: str, change: Callable[[dict[str, Any]], object]) -> bytes:
    doc = packaged_doc(name)
    change(doc)
    return encoded(doc)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


ENVELOPE_CASES: list[tuple[str, Callable[[str], bytes], str]] = [
    ("garbage", lambda n: b"\x00\x01garbage{", "not JSON"),
    ("truncated", lambda n: (DATA / FILES[n]).read_bytes()[:-200], "not JSON"),
    ("not utf-8", lambda n: b"\xff\xfe{}", "not JSON"),
    ("empty", lambda n: b"", "not JSON"),
    ("huge", lambda n: b" " * (sourced.MAX_SIZE + 1), f"larger than {sourced.MAX_SIZE} bytes"),
    ("deep", lambda n: _nested(100_000), "nested deeper than 16 levels"),
    ("deep but parseable", lambda n: _nested(40), "nested deeper than 16 levels"),
    ("a list", lambda n: b"[]", "not a hyperward"),
    ("another format", lambda n: _mutate(n, lambda d: d.update(format="hyperward-other")), "(\"format\" is not"),
    ("another table's format", lambda n: encoded({**packaged_doc(n), "format": "hyperward-esxi-builds" if n != "esxi" else "hyperward-lifecycle"}),
     "(\"format\" is not"),
    ("newer schema", lambda n: _mutate(n, lambda d: d.update(schema=2)), "schema 2 is not 1 (a newer hyperward may read it)"),
    ("schema as text", lambda n: _mutate(n, lambda d: d.update(schema="1")), "schema '1' is not 1"),
    ("no date", lambda n: _mutate(n, lambda d: d.update(compiled="2026-13-40")), "'compiled' must be a date (YYYY-MM-DD)"),
    ("compact date", lambda n: _mutate(n, lambda d: d.update(compiled="20261202")), "'compiled' must be a date (YYYY-MM-DD)"),
    ("no covers", lambda n: _mutate(n, lambda d: d.pop("covers")), "table: 'covers' must be a non-empty string"),
    ("terminal escape in covers", lambda n: _mutate(n, lambda d: d.update(covers="ok\x1b]8;;https://evil\x07")),
     "table: 'covers' holds a control or invisible formatting character"),
    ("plain http source", lambda n: _mutate(n, lambda d: d.update(sources=["http://example.invalid/"])),
     "table: 'sources' must be a non-empty list of https:// URLs"),
    ("no sources", lambda n: _mutate(n, lambda d: d.update(sources=[])), "table: 'sources' must be a non-empty list"),
    ("endless max age", lambda n: _mutate(n, lambda d: d.update(max_age_days=100_000)), "'max_age_days' must be a whole number of days from 1 to 730"),
    ("max age true", lambda n: _mutate(n, lambda d: d.update(max_age_days=True)), "'max_age_days' must be a whole number"),
    ("unknown key", lambda n: _mutate(n, lambda d: d.update(extra=1)), "table: unknown key 'extra'"),
    ("duplicate key", lambda n: (DATA / FILES[n]).read_bytes().replace(b'"schema": 1,', b'"schema": 1, "schema": 1,', 1),
     "key 'schema' given twice in one object"),
    ("NaN", lambda n: (DATA / FILES[n]).read_bytes().replace(b'"schema": 1,', b'"schema": NaN,', 1), "NaN is not a JSON number"),
]


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("case, data, message", ENVELOPE_CASES, ids=[c[0] for c in ENVELOPE_CASES])
def test_bad_envelopes_are_one_error_naming_the_problem(name: str, case: str, data: Callable[[str], bytes], message: str) -> None:
    with pytest.raises(sourced.TableError, match=re.escape(message)):
        sourced.parse(SPECS[name], data(name), "test")


ROW_CASES: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("esxi", lambda d: d.pop("lines"), "table: 'lines' is missing"),
    ("esxi", lambda d: d.update(lines={}), "'lines' must be a non-empty list"),
    ("virtualbox", lambda d: d.pop("end_of_life"), "table: 'end_of_life' is missing"),
    ("virtualbox", lambda d: d["branches"]["7.1"][0].update(affected_through="7.2.1"),
     "7.1: Oracle Critical Patch Update, January 2026: affected_through '7.2.1' is not a 7.1 release"),
    ("virtualbox", lambda d: d["branches"]["7.1"][0].update(cves=["CVE-2026-1; rm -rf /"]), "'cves' must be a non-empty list of CVE IDs"),
    ("virtualbox", lambda d: d["branches"]["7.1"][0].update(published="January"), "'published' must be a date"),
    ("virtualbox", lambda d: d["branches"]["7.1"][0].update(url="http://www.oracle.com/"), "'url' must be an https:// URL"),
    ("virtualbox", lambda d: d["branches"].update({"seven": []}), "branches: 'seven' is not a branch (major.minor)"),
    ("virtualbox", lambda d: d["end_of_life"]["branches"].update({"7.1": {"eol": "2020-01-01", "last": "7.1.0"}}),
     "end_of_life.branches.7.1: also in 'branches'"),
    ("virtualbox", lambda d: d["end_of_life"]["branches"]["6.1"].update(eol="soon"), "end_of_life.branches.6.1: 'eol' must be a date"),
    ("esxi", lambda d: d["lines"][0].update(name="ESX 9.1\x1b[2J"), "line 9.1: 'name' holds a control or invisible formatting character"),
    ("virtualbox", lambda d: d["branches"]["7.1"][0].update(advisory="CPU\u202e2026"), "'advisory' holds a control or invisible formatting"),
    ("lifecycle", lambda d: d["releases"][0].update(name="AlmaLinux\r\nFAKE"), "release almalinux 8: 'name' holds a control"),
    ("lifecycle", lambda d: d.update(releases=[]), "table: 'releases' must be a non-empty list"),
    ("lifecycle", lambda d: d["releases"].append(dict(d["releases"][0])), "release almalinux 8: given twice"),
    ("lifecycle", lambda d: d["releases"][0].update(eol="2029-02-30"), "release almalinux 8: 'eol' must be a date"),
    ("lifecycle", lambda d: d["releases"][0].update(source="ftp://x"), "release almalinux 8: 'source' must be an https:// URL"),
    ("lifecycle", lambda d: d["releases"][0].update(distro="Alma Linux"), "releases[0]: 'distro' 'Alma Linux' is not a lower-case name"),
    ("lifecycle", lambda d: d["releases"][0].update(colour="red"), "releases[0]: unknown key 'colour'"),
    ("lifecycle", lambda d: next(r for r in d["releases"] if r["distro"] == "windows").pop("build"),
     "a Windows row names its 'product' and its numeric 'build'"),
]


@pytest.mark.parametrize("name, change, message", ROW_CASES)
def test_bad_rows_are_one_error_naming_the_row(name: str, change: Callable[[dict[str, Any]], object], message: str) -> None:
    with pytest.raises(sourced.TableError, match=re.escape(message)):
        sourced.parse(SPECS[name], _mutate(name, change), "test")


# --- packaged and refreshed copies ------------------------------------------------------------


def _dated(name: str, compiled: str, change: Callable[[dict[str, Any]], object] | None = None) -> bytes:
    doc = packaged_doc(name)
    doc["compiled"] = compiled
    if change:
        change(doc)
    return encoded(doc)


@pytest.mark.parametrize("name", SPECS)
def test_a_refreshed_copy_is_used_only_when_valid_and_not_older(name: str, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS[name]
    copy = tmp_path / FILES[name]
    monkeypatch.setenv(spec.env, str(copy))
    assert spec.about(sourced.current(spec)).origin == "bundled"  # none there
    copy.write_bytes(_dated(name, "2099-01-01"))
    newer = spec.about(sourced.current(spec))
    assert (newer.origin, newer.compiled, newer.ignored) == (str(copy), "2099-01-01", None)
    copy.write_bytes(_dated(name, "2020-01-01"))
    assert spec.about(sourced.current(spec)) == spec.about(sourced.packaged(spec))  # an old download never hides the packaged table
    for data, why in ((b"{garbage", "not JSON"), (b" " * (sourced.MAX_SIZE + 5), "larger than"),
                      (_dated(name, "2099-01-01", lambda d: d.update(schema=7)), "schema 7 is not 1")):
        copy.write_bytes(data)
        about = spec.about(sourced.current(spec))
        assert about.origin == "bundled" and about.ignored is not None and about.ignored.startswith(f"{copy}: ") and why in about.ignored
    copy.unlink()
    os.mkfifo(copy)  # a FIFO planted where the copy goes must not hang the scan
    assert spec.about(sourced.current(spec)).ignored == f"{copy}: not a regular file"
    copy.unlink()
    target = tmp_path / "elsewhere.json"
    target.write_bytes(_dated(name, "2099-01-01"))
    copy.symlink_to(target)  # never read through a symlink
    ignored = spec.about(sourced.current(spec)).ignored
    assert ignored is not None and ignored.startswith(f"{copy}: ")


def _broken(spec: sourced.Spec[Any], tmp_path: pathlib.Path) -> sourced.Spec[Any]:
    """SPEC with a packaged copy that is not there, as a damaged installation would have it."""
    return dataclasses.replace(spec, packaged="data/no-such-table.json", env="HYPERWARD_TEST_NO_TABLE")


@pytest.mark.parametrize("name", SPECS)
def test_a_table_that_cannot_be_loaded_is_an_unavailable_fact_naming_the_path(name: str, tmp_path: pathlib.Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _broken(SPECS[name], tmp_path)
    copy = tmp_path / "refreshed.json"
    monkeypatch.setenv("HYPERWARD_TEST_NO_TABLE", str(copy))
    found = sourced.load(spec)
    assert isinstance(found, Unavailable) and found.kind == "invalid" and found.path == spec.packaged_path()
    assert found.reason.startswith(f"hyperward's {spec.title} cannot be used: ") and "No such file" in found.reason
    copy.write_text("{}")
    found = sourced.load(spec)
    assert isinstance(found, Unavailable) and f"the refreshed copy {copy}: not a hyperward {spec.title}" in found.reason
    # a valid refreshed copy stands in for a damaged packaged one, and says so
    copy.write_bytes(_dated(name, "2026-12-01"))
    about = spec.about(sourced.current(spec))
    assert about.origin == str(copy) and about.ignored is not None and about.ignored.startswith(f"the packaged copy {spec.packaged_path()}: ")


# --- the tables as facts ----------------------------------------------------------------------


def _unavailable_table(spec: sourced.Spec[Any], tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Unavailable:
    monkeypatch.setenv("HYPERWARD_TEST_NO_TABLE", str(tmp_path / "none.json"))
    found = sourced.load(_broken(spec, tmp_path))
    assert isinstance(found, Unavailable)
    return found


def _with_platform(facts: Any, name: str, **changes: Any) -> Any:
    platforms = type(facts.platforms)({**facts.platforms, name: dataclasses.replace(facts.platforms[name], **changes)})
    return dataclasses.replace(facts, platforms=platforms)


def _judge(facts: Any, check_id: str) -> list[tuple[str, str, str]]:
    report = run_checks(facts, select(registry(), [check_id]), "multi-tenant")
    return [(f.status.value, f.result.resource, f.result.message) for f in report.findings if f.check_id == check_id]


def test_the_esxi_table_is_a_fact_and_an_unloadable_one_is_an_error_naming_its_path(tmp_path: pathlib.Path,
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    facts = collect_host(str(ESXI_HARDENED))
    table = facts.platforms["esxi"].build_table
    assert isinstance(table, builds.Table) and table.line_for("8.0.3") is not None
    assert [r[0] for r in _judge(facts, "HV-PATCH-100")] == ["pass"]
    gone = _unavailable_table(ESXI, tmp_path, monkeypatch)
    broken = _with_platform(facts, "esxi", build_table=gone)
    [(status, resource, message)] = _judge(broken, "HV-PATCH-100")
    assert (status, resource) == ("error", "esx01.lab.example") and message == gone.describe()
    # the Unavailable fact survives a snapshot, and judges the same from it
    again = load_snapshot(dump_snapshot(broken))
    assert again == broken and _judge(again, "HV-PATCH-100") == [(status, resource, message)]


def test_the_virtualbox_table_is_a_fact_and_an_unloadable_one_is_an_error_naming_its_path(tmp_path: pathlib.Path,
                                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    facts = collect_host(str(make_root(tmp_path / "weak")))
    assert isinstance(facts.platforms["virtualbox"].security_table, security.SecurityTable)
    assert [r[:2] for r in _judge(facts, "HV-PATCH-032")] == [("fail", "VirtualBox 7.1.4")]
    gone = _unavailable_table(VIRTUALBOX, tmp_path, monkeypatch)
    broken = _with_platform(facts, "virtualbox", security_table=gone)
    assert _judge(broken, "HV-PATCH-032") == [("error", "VirtualBox 7.1.4", gone.describe())]
    again = load_snapshot(dump_snapshot(broken))
    assert again == broken and _judge(again, "HV-PATCH-032") == _judge(broken, "HV-PATCH-032")


def test_snapshots_round_trip_with_the_tables_in_them(tmp_path: pathlib.Path) -> None:
    for root in (ESXI_HARDENED, make_hardened_root(tmp_path / "vbox")):
        facts = collect_host(str(root))
        text = dump_snapshot(facts)
        assert load_snapshot(text) == facts
        doc = json.loads(text)
        platform = "esxi" if root == ESXI_HARDENED else "virtualbox"
        key = "build_table" if platform == "esxi" else "security_table"
        recorded = doc["facts"]["platforms"][platform][key]
        assert recorded["about"]["format"] == SPECS[platform].format
        # a snapshot written before the tables were facts still loads: the check says what is missing
        del doc["facts"]["platforms"][platform][key]
        old = load_snapshot(json.dumps(doc))
        check_id = "HV-PATCH-100" if platform == "esxi" else "HV-PATCH-032"
        [(status, _resource, message)] = _judge(old, check_id)
        assert status == "not_applicable" and "table is not in this snapshot (collected by an older hyperward)" in message


def test_a_scan_of_a_snapshot_judges_with_the_scanning_machines_table(tmp_path: pathlib.Path) -> None:
    """The snapshot records the table it was collected with; the scan loads this machine's, as
    a live scan here would (the ESXi tests rely on it to judge one snapshot with several tables)."""
    root = make_hardened_root(tmp_path / "vbox")
    snap = tmp_path / "snap.json"
    assert hyperward("collect", "--root", str(root), "-o", str(snap)).returncode == 0
    newer = tmp_path / "newer.json"
    newer.write_bytes(_newer_virtualbox())
    r = hyperward("scan", "--snapshot", str(snap), "--only", "HV-PATCH-032", "--format", "json",
                  env={VIRTUALBOX.env: str(newer)})
    [row] = [f for f in json.loads(r.stdout)["results"] if f["id"] == "HV-PATCH-032"]
    assert row["status"] == "fail" and row["message"].startswith("Oracle Critical Patch Update, January 2099 (affects 7.1 up to 7.1.16)")
    assert row["message"].endswith(f"[table {newer}]")


# --- the age rule -----------------------------------------------------------------------------


def _at(facts: Any, day: datetime.date) -> Any:
    return dataclasses.replace(facts, meta=dataclasses.replace(facts.meta, collected_at=f"{day.isoformat()}T12:00:00+00:00"))


def test_a_stale_virtualbox_table_vouches_for_no_release(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Judged with the packaged table (compiled 2026-12-02, 120 days) at fixed collection dates:
    a pass holds to the 120th day and is not applicable from the 121st; an affected release or a
    branch past its end of life fails at any age."""
    monkeypatch.setenv(VIRTUALBOX.env, str(tmp_path / "no-refreshed-copy.json"))
    hardened = collect_host(str(make_hardened_root(tmp_path / "hard")))
    assert _judge(_at(hardened, COMPILED + 120 * DAY), "HV-PATCH-032")[0][0] == "pass"
    [(status, resource, message)] = _judge(_at(hardened, COMPILED + 121 * DAY), "HV-PATCH-032")
    assert (status, resource) == ("not_applicable", "VirtualBox 7.1.16")
    assert message == ("newer than every 7.1 release the table names as affected, but the VirtualBox table is 121 days older than "
                       "the scan (compiled 2026-12-02, through the Oracle Critical Patch Update, January 2026): later CPUs are "
                       "unknown; run `hyperward db update`")
    weak = collect_host(str(make_root(tmp_path / "weak")))
    assert _judge(_at(weak, COMPILED + 900 * DAY), "HV-PATCH-032")[0][:2] == ("fail", "VirtualBox 7.1.4")
    eol = collect_host(str(make_root(tmp_path / "eol", vbox_version="6.1.50")))
    assert _judge(_at(eol, COMPILED + 900 * DAY), "HV-PATCH-032")[0][0] == "fail"


def _inside(name: str, lifecycle: Lifecycle | Unavailable) -> GuestInside:
    return GuestInside("libvirt", name, name, f"{name} (id-{name})", True, "", False, [], [], OsRelease("rocky", "9.3", ""),  # type: ignore[arg-type]
                       None, None, None, [], [], [], [], lifecycle)


def _eol_verdicts(guests: list[GuestInside], day: datetime.date) -> dict[str, tuple[str, str]]:
    scan_facts = GuestScanFacts("libguestfs", 0.0, 0.0, guests, HostTrust([], [], [], []), [])  # type: ignore[arg-type]
    host = types.SimpleNamespace(guest_insides=scan_facts, meta=types.SimpleNamespace(collected_at=f"{day.isoformat()}T03:00:00+00:00"))
    return {r.resource.split(" (")[0]: (r.status.value, r.message) for r in guest_end_of_life(host)}  # type: ignore[arg-type]


def test_a_stale_lifecycle_table_vouches_for_no_release(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The packaged lifecycle table (365 days): Rocky 9 supported until 2032 passes to the 365th
    day and is not applicable from the 366th; Alpine 3.18, past its date, fails at any age."""
    monkeypatch.setenv(LIFECYCLE.env, str(tmp_path / "no-refreshed-copy.json"))
    rocky = release_lifecycle(OsRelease("rocky", "9.3", ""))
    alpine = release_lifecycle(OsRelease("alpine", "3.18.4", ""))
    assert isinstance(rocky, Lifecycle) and (rocky.table_compiled, rocky.table_max_age_days) == ("2026-12-02", 365)
    assert isinstance(alpine, Lifecycle)
    guests = [_inside("rocky", rocky), _inside("alpine", alpine)]
    assert {k: v[0] for k, v in _eol_verdicts(guests, COMPILED + 365 * DAY).items()} == {"rocky": "pass", "alpine": "fail"}
    late = _eol_verdicts(guests, COMPILED + 366 * DAY)
    assert late["alpine"][0] == "fail"
    assert late["rocky"] == ("not_applicable", "Rocky Linux 9: supported until 2032-05-31 by hyperward's lifecycle table, but the table is "
                                               "366 days older than the scan (compiled 2026-12-02, trusted for 365 days): the vendor may "
                                               "have moved the date since; run `hyperward db update`")
    # a lifecycle from distro-info-data carries no table date: no age rule (the host's package keeps it current)
    assert dataclasses.replace(rocky, table_compiled=None).table_compiled is None
    undated = _eol_verdicts([_inside("rocky", dataclasses.replace(rocky, table_compiled=None))], COMPILED + 900 * DAY)
    assert undated["rocky"][0] == "pass"
    # an unloadable lifecycle table: not applicable naming its path, as every unknown end of life is here
    gone = _unavailable_table(LIFECYCLE, tmp_path, monkeypatch)
    assert release_lifecycle(OsRelease("rocky", "9.3", ""), table=gone) is gone
    [(status, message)] = _eol_verdicts([_inside("rocky", gone)], COMPILED).values()
    assert status == "not_applicable" and gone.path in message and "cannot be used" in message


# --- db update --------------------------------------------------------------------------------


def _newer_virtualbox() -> bytes:
    def change(doc: dict[str, Any]) -> None:
        doc["covers_through"] = "Oracle Critical Patch Update, January 2099"
        doc["branches"]["7.1"].insert(0, {"advisory": "Oracle Critical Patch Update, January 2099", "published": "2099-01-20",
                                          "url": "https://www.oracle.com/security-alerts/cpujan2099.html", "affected_through": "7.1.16",
                                          "cves": ["CVE-2099-0001"], "source": "https://example.invalid/test-data"})
    return _dated("virtualbox", "2099-01-02", change)


def _newer_lifecycle() -> bytes:
    return _dated("lifecycle", "2099-01-02", lambda d: next(r for r in d["releases"] if (r["distro"], r["release"]) == ("rocky", "9"))
                  .update(eol="2031-01-01", source="https://example.invalid/test-data"))


def _update(tmp_path: pathlib.Path, urls: dict[str, str], installed: dict[str, pathlib.Path]) -> Any:
    config = tmp_path / "config.toml"
    lines = [f'path = "{tmp_path / "db.sqlite"}"', f'sources = ["file://{ADVISORY}"]'] + [f'{key} = "{url}"' for key, url in urls.items()]
    config.write_text("[vulndb]\n" + "\n".join(lines) + "\n")
    return hyperward("db", "update", "--config", str(config), "--timeout", "10",
                     env={SPECS[name].env: str(path) for name, path in installed.items()})


@pytest.mark.parametrize("name, key, newer, summary", [
    ("virtualbox", "virtualbox_security_url", _newer_virtualbox, "3 branches with advisories, 9 past end of life"),
    ("lifecycle", "lifecycle_url", _newer_lifecycle, "26 releases"),
])
def test_db_update_refreshes_the_table_from_its_own_url_and_rejects_bad_ones(
        name: str, key: str, newer: Callable[[], bytes], summary: str, tmp_path: pathlib.Path,
        served: tuple[str, pathlib.Path], monkeypatch: pytest.MonkeyPatch) -> None:
    base, www = served
    spec = SPECS[name]
    installed = tmp_path / "state" / FILES[name]
    installed.parent.mkdir()
    (www / "table.json").write_bytes(newer())
    done = _update(tmp_path, {key: f"{base}/table.json"}, {name: installed})
    assert done.returncode == 0, done.stderr
    assert f"{base}/table.json: {spec.title} compiled 2099-01-02, {summary}, written to {installed}" in done.stdout
    assert os.stat(installed).st_mode & 0o777 == 0o600 and installed.read_bytes() == newer()
    assert [p.name for p in installed.parent.iterdir()] == [installed.name]  # no temporary file left behind
    # the refreshed table is the one judged
    monkeypatch.setenv(spec.env, str(installed))
    if name == "virtualbox":
        report = scan(make_hardened_root(tmp_path / "vbox"), only=["HV-PATCH-032"])
        assert statuses(report, "HV-PATCH-032") == {"VirtualBox 7.1.16": Status.FAIL}
        assert report.findings[0].result.message.startswith("Oracle Critical Patch Update, January 2099 (affects 7.1 up to 7.1.16): CVE-2099-0001")
    else:
        rocky = release_lifecycle(OsRelease("rocky", "9.3", ""))
        assert isinstance(rocky, Lifecycle) and rocky.eol == "2031-01-01" and rocky.source.startswith(f"hyperward {installed}: ")
    good = installed.read_bytes()
    # a garbled, invalid, wrong-format, oversized or older download, a 404: one error each, the copy untouched, exit 1
    (www / "garbled.json").write_bytes(good[: len(good) // 2])
    (www / "invalid.json").write_bytes(_dated(name, "2099-01-03", lambda d: d.update(sources=["http://plain.example"])))
    (www / "esxi.json").write_bytes((DATA / "esxi-builds.json").read_bytes())
    (www / "huge.json").write_bytes(b" " * (sourced.MAX_SIZE + 10))
    (www / "old.json").write_bytes(_dated(name, "2020-01-01"))
    for served_name, why in (("garbled.json", "not JSON"), ("invalid.json", "'sources' must be a non-empty list of https:// URLs"),
                             ("esxi.json", f"not a hyperward {spec.title}"), ("huge.json", "larger than"),
                             ("missing.json", "HTTP 404"), ("old.json", "older than the bundled one (2026-12-02)")):
        r = _update(tmp_path, {key: f"{base}/{served_name}"}, {name: installed})
        assert r.returncode == 1, (served_name, r.stderr)
        errors = [line for line in r.stderr.splitlines() if spec.title in line]
        assert len(errors) == 1 and why in errors[0] and f"{installed} is unchanged" in errors[0], (served_name, errors)
        assert installed.read_bytes() == good


def test_db_update_refreshes_every_configured_table_and_one_failure_spares_the_others(
        tmp_path: pathlib.Path, served: tuple[str, pathlib.Path]) -> None:
    base, www = served
    installed = {name: tmp_path / "state" / FILES[name] for name in SPECS}
    (tmp_path / "state").mkdir()
    esxi = packaged_doc("esxi")
    esxi["compiled"] = "2099-01-02"
    (www / "esxi.json").write_text(json.dumps(esxi))
    (www / "lifecycle.json").write_bytes(_newer_lifecycle())
    r = _update(tmp_path, {"esxi_builds_url": f"{base}/esxi.json", "virtualbox_security_url": f"{base}/nothing-here.json",
                           "lifecycle_url": f"{base}/lifecycle.json"}, installed)
    assert r.returncode == 1
    assert f"ESXi build table compiled 2099-01-02, 9 release lines, written to {installed['esxi']}" in r.stdout
    assert f"lifecycle table compiled 2099-01-02, 26 releases, written to {installed['lifecycle']}" in r.stdout
    assert "VirtualBox security table rejected (HTTP 404" in r.stderr and not installed["virtualbox"].exists()
    assert installed["esxi"].exists() and installed["lifecycle"].exists()


def test_a_refreshed_copy_is_never_written_through_a_symlink(tmp_path: pathlib.Path, served: tuple[str, pathlib.Path]) -> None:
    base, www = served
    (www / "table.json").write_bytes(_newer_virtualbox())
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    installed = tmp_path / "virtualbox_security.json"
    installed.symlink_to(victim)
    r = _update(tmp_path, {"virtualbox_security_url": f"{base}/table.json"}, {"virtualbox": installed})
    assert r.returncode == 1 and "the VirtualBox security table is unchanged" in r.stderr
    assert victim.read_text() == "keep me\n" and installed.is_symlink()


@pytest.mark.parametrize("key", ["virtualbox_security_url", "lifecycle_url"])
def test_a_table_url_that_is_not_a_url_is_a_config_error_naming_the_key(key: str, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[vulndb]\n{key} = "/etc/passwd"\n')
    with pytest.raises(ConfigError, match=re.escape(f"[vulndb] {key} must be an http(s):// or file:// URL")):
        load_config(str(config))
    config.write_text(f'[vulndb]\n{key} = "https://tables.example.invalid/t.json"\n')
    assert getattr(load_config(str(config)), key) == "https://tables.example.invalid/t.json"


def test_db_status_says_which_copy_of_each_table_a_scan_uses(tmp_path: pathlib.Path) -> None:
    db = tmp_path / "db.sqlite"
    assert hyperward("db", "import", "--db", str(db), str(ADVISORY)).returncode == 0
    esxi, vbox, life = tmp_path / "esxi.json", tmp_path / "vbox.json", tmp_path / "life.json"
    esxi.write_bytes(_dated("esxi", "2099-01-02"))
    vbox.write_text("{garbage")
    env = {ESXI.env: str(esxi), VIRTUALBOX.env: str(vbox), LIFECYCLE.env: str(life)}
    done = hyperward("db", "status", "--db", str(db), env=env)
    assert done.returncode == 0, done.stderr
    today = datetime.datetime.now(datetime.UTC).date()
    age = (today - COMPILED).days
    lines = done.stdout.splitlines()
    assert f"ESXi build table: compiled 2099-01-02 ({esxi}), {(today - datetime.date(2099, 1, 2)).days} days old (limit 120 days)" in lines
    assert (f"VirtualBox security table: compiled 2026-12-02 (packaged copy), {age} days old (limit 120 days)"
            f"{': STALE, passes that lean on it are not applicable; run hyperward db update' if age > 120 else ''}; ignored {vbox}: not JSON"
            in done.stdout)
    assert f"lifecycle table: compiled 2026-12-02 (packaged copy), {age} days old (limit 365 days)" in done.stdout
    status = json.loads(hyperward("db", "status", "--db", str(db), "--format", "json", env=env).stdout)
    assert [(t["format"], t["origin"], t["url_key"]) for t in status["tables"]] == [
        ("hyperward-esxi-builds", str(esxi), "esxi_builds_url"), ("hyperward-virtualbox-security", "bundled", "virtualbox_security_url"),
        ("hyperward-lifecycle", "bundled", "lifecycle_url")]
