"""The engine's contract and the catalog's agreement with the product spec."""

from __future__ import annotations

import importlib.util
import json

from hyperward.catalog import catalog
from hyperward.engine import RegisteredCheck, registry, run_checks
from hyperward.facts import dump_snapshot, load_snapshot
from hyperward.model import Category, CheckMeta, Result, Severity, Status

from conftest import REPO, copy_root, require
from hyperward.collect import collect_host

SPEC = REPO.parent / "shared" / "spec" / "checks.md"


def test_catalog_json_matches_the_spec():
    require(SPEC.is_file(), f"the product spec at {SPEC}")
    spec = importlib.util.spec_from_file_location("gen_catalog", REPO / "scripts" / "gen_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.parse_spec(SPEC.read_text(encoding="utf-8"))
    committed = json.loads((REPO / "src/hyperward/data/catalog.json").read_text(encoding="utf-8"))
    assert rows == committed, "run: python scripts/gen_catalog.py"


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
    assert len({f.check_id for f in report.findings}) == len(registry())


def test_a_check_without_results_is_an_error(tmp_path):
    facts = collect_host(str(copy_root("hardened", tmp_path)))
    report = run_checks(facts, _fake("HV-SIDE-002", lambda host: iter(())))
    assert [f.status for f in report.findings] == [Status.ERROR]


def test_snapshot_round_trip_is_exact(tmp_path):
    facts = collect_host(str(copy_root("weak", tmp_path, kvm_mode=0o666)))
    assert load_snapshot(dump_snapshot(facts)) == facts
