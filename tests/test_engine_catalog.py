"""The engine's contract and the catalog's agreement with the product spec."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from hyperward.catalog import catalog
from hyperward.engine import RegisteredCheck, for_platforms, registry, run_checks
from hyperward.facts import dump_snapshot, load_snapshot
from hyperward.model import Category, CheckMeta, Result, Severity, Status

from conftest import REPO, copy_root
from hyperward.collect import collect_host

SPEC = REPO / "tests" / "fixtures" / "spec-checks.md"  # the repository's copy: scripts/gen_catalog.py PATH refreshes it
PROJECT = REPO / "docs" / "catalog-project.md"

# Shared rows whose project catalog entry deliberately differs from the spec: ID -> why. Empty: none
# does today (a primary source that disagrees with the spec would be named here).
DIVERGENCES: dict[str, str] = {}


def _generator():
    spec = importlib.util.spec_from_file_location("gen_catalog", REPO / "scripts" / "gen_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed() -> list[dict[str, str]]:
    return json.loads((REPO / "src/hyperward/data/catalog.json").read_text(encoding="utf-8"))


def test_catalog_json_is_the_generators_output():
    rows = _generator().build(SPEC.read_text(encoding="utf-8"), PROJECT.read_text(encoding="utf-8"))
    assert rows == _committed(), "run: python scripts/gen_catalog.py"


def test_shared_rows_stay_in_step_with_the_spec():
    """Every spec row is in the catalog under its ID, title and severity, unless named in DIVERGENCES."""
    shared = {row["id"]: row for row in _generator().parse_spec(SPEC.read_text(encoding="utf-8"))}
    committed = {row["id"]: row for row in _committed()}
    assert set(shared) <= set(committed)
    drifted = {cid for cid, row in shared.items()
               if (row["title"], row["severity"], row["severity_text"]) != (committed[cid]["title"], committed[cid]["severity"], committed[cid]["severity_text"])}
    assert drifted == set(DIVERGENCES)


def test_project_rows_take_new_ids_and_name_primary_sources():
    project = _generator().parse_project(PROJECT.read_text(encoding="utf-8"))
    committed = {row["id"]: row for row in _committed()}
    assert project and all(committed[row["id"]] == row for row in project)
    for row in project:
        assert re.fullmatch(r"HV-[A-Z]+-\d{3}", row["id"]) and row["sources"], row["id"]
        Category.from_check_id(row["id"])
    assert not {row["id"] for row in project} & {row["id"] for row in _generator().parse_spec(SPEC.read_text(encoding="utf-8"))}


def test_generator_refuses_a_project_row_that_reuses_a_spec_id():
    gen = _generator()
    row = "| HV-AUTH-013 | L | t | M | d | p | r | S | sshd_config(5) |\n"
    spec = "| HV-AUTH-013 | L | t | H | d | p | r | S |\n"
    with pytest.raises(SystemExit, match="HV-AUTH-013 is the spec's"):
        gen.build(spec, row)
    with pytest.raises(SystemExit, match="names its primary sources"):
        gen.parse_project(row.replace("sshd_config(5) |", " |"))


def test_registered_checks_agree_with_the_catalog():
    entries = catalog()
    for cid, registered in registry().items():
        meta = registered.meta
        assert cid in entries, cid
        assert meta.category is Category.from_check_id(cid)
        assert meta.severity.label == entries[cid].severity, cid
        assert meta.title == entries[cid].title, cid
        assert meta.rationale and meta.fix and meta.references, cid


def _fake(check_id: str, fn) -> dict[str, RegisteredCheck]:
    return {check_id: RegisteredCheck(CheckMeta(check_id, Category.SIDE, Severity.HIGH, "t", "r"), fn)}


def test_a_check_that_raises_becomes_an_error_and_the_run_goes_on(tmp_path):
    facts = collect_host(str(copy_root("hardened", tmp_path)))

    def broken(host):
        yield Result.passed("first")
        raise KeyError("boom")

    checks = {**_fake("HV-SIDE-001", broken), **{k: v for k, v in registry().items() if k != "HV-SIDE-001"}}
    report = run_checks(facts, checks)
    [error] = [f for f in report.findings if f.check_id == "HV-SIDE-001"]
    assert error.status is Status.ERROR and "KeyError" in error.result.message and "boom" in error.result.message
    assert len({f.check_id for f in report.findings}) == len(for_platforms(registry(), facts)) > 80


def test_a_check_without_results_is_an_error(tmp_path):
    facts = collect_host(str(copy_root("hardened", tmp_path)))
    report = run_checks(facts, _fake("HV-SIDE-002", lambda host: iter(())))
    assert [f.status for f in report.findings] == [Status.ERROR]


def test_snapshot_round_trip_is_exact(tmp_path):
    facts = collect_host(str(copy_root("weak", tmp_path, kvm_mode=0o666)))
    assert load_snapshot(dump_snapshot(facts)) == facts
