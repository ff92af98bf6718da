"""The platforms redesign (issue 13) must not change what a libvirt user sees: the (check, resource,
status) sets of both golden roots were captured from the code before it (tests/fixtures/
golden-results.json) and are compared here. A change made on purpose (an accuracy fix) is listed in
DIVERGENCES with its reason, so every difference from the capture is named."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, copy_root

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks

CAPTURE = json.loads((REPO / "tests/fixtures/golden-results.json").read_text())

#: (root, check, resource) -> (status before, status now or None when the row is gone, why)
DIVERGENCES: dict[tuple[str, str, str], tuple[str | None, str | None, str]] = {}


@pytest.mark.parametrize("name,kvm_mode", [("hardened", 0o660), ("weak", 0o666)])
def test_golden_roots_give_the_captured_results(tmp_path, name, kvm_mode, advisory_db):
    root = copy_root(name, tmp_path, kvm_mode=kvm_mode)
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(tmp_path / "no-baseline.json"),
                         history_path=str(tmp_path / "no-history.sqlite"))
    report = run_checks(facts, registry(), "multi-tenant")
    now = {(f.check_id, f.result.resource.replace(str(root), "ROOT")): f.status.value for f in report.findings}
    before = {(c, r): s for c, r, s in CAPTURE["results"][name]}
    expected = dict(before)
    for (root_name, check, resource), (old, new, _why) in DIVERGENCES.items():
        if root_name != name:
            continue
        assert before.get((check, resource)) == old, f"divergence {check} {resource}: capture says {before.get((check, resource))}"
        if new is None:
            expected.pop((check, resource), None)
        else:
            expected[(check, resource)] = new
    changed = {k: (expected.get(k), now.get(k)) for k in expected.keys() | now.keys() if expected.get(k) != now.get(k)}
    assert not changed, "results differ from the capture and no divergence names them: " + json.dumps(
        sorted([list(k), *v] for k, v in changed.items()), indent=0)
