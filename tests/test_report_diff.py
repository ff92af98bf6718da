"""`hyperward diff`: findings matched by (check, resource) across two real scans' JSON reports or
the scan history; what is not a change (message text, order, a failure that could not be judged)
is not reported as one; --fail-on-new gates on regressions at or above a severity only; bad input
is one line naming the file."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from conftest import ROOTS, copy_root, hyperward


def _report(root: pathlib.Path, out: pathlib.Path, *args: str, env: dict[str, str] | None = None) -> pathlib.Path:
    done = hyperward("scan", "--root", str(root), "--format", "json", "-o", str(out), *args, env=env)
    assert done.returncode == 0, done.stderr
    return out


def _diff(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    done = hyperward("diff", *args, "--format", "json", env=env)
    return done.returncode, (json.loads(done.stdout) if done.stdout.startswith("{") else {}), done.stderr


def _pairs(doc: dict, kind: str) -> set[tuple[str, str]]:
    return {(c["id"], c["resource"]) for c in doc["changes"][kind]}


@pytest.fixture(scope="module")
def hardened_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """The hardened root, then the same root with one medium regression (qemu.conf namespaces
    emptied) and the weak root's guest definition added (a guest with failures of its own)."""
    tmp = tmp_path_factory.mktemp("diff")
    root = copy_root("hardened", tmp)
    old = _report(root, tmp / "old.json")
    with open(root / "etc/libvirt/qemu.conf", "a") as conf:
        conf.write("namespaces = [ ]\n")
    shutil.copy(ROOTS / "weak/etc/libvirt/qemu/weak-vm.xml", root / "etc/libvirt/qemu/weak-vm.xml")
    new = _report(root, tmp / "new.json")
    return old, new


def test_the_same_scan_twice_has_no_change(hardened_pair, tmp_path):
    old, _ = hardened_pair
    code, doc, _ = _diff(str(old), str(old), "--fail-on-new", "low")
    assert code == 0
    assert doc["summary"]["new"] == doc["summary"]["fixed"] == doc["summary"]["not_judged"] == 0
    assert doc["summary"]["still_failing"] == sum(1 for r in json.loads(old.read_text())["results"] if r["status"] == "fail")


def test_message_text_and_order_are_not_changes(hardened_pair, tmp_path):
    """Messages carry ages, timestamps and versions; a report lists results in any order."""
    old, _ = hardened_pair
    doc = json.loads(old.read_text())
    doc["results"] = [dict(r, message=r["message"] + " (checked 2031-01-01T00:00:00Z, 3 days ago)") for r in reversed(doc["results"])]
    doc["collected_at"] = "2031-01-01T00:00:00+00:00"
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(doc))
    code, diff, _ = _diff(str(old), str(moved), "--fail-on-new", "low")
    assert code == 0 and diff["summary"]["new"] == 0 and diff["summary"]["fixed"] == 0


def test_new_findings_per_host_and_per_guest(hardened_pair):
    old, new = hardened_pair
    code, doc, _ = _diff(str(old), str(new))
    assert code == 0
    new_pairs = _pairs(doc, "new")
    assert ("HV-ISO-007", "qemu.conf:namespaces") in new_pairs
    guest = [c for c in doc["changes"]["new"] if c.get("guest") == "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"]
    assert guest and {c["severity"] for c in guest} >= {"critical"}
    [namespaces] = [c for c in doc["changes"]["new"] if c["resource"] == "qemu.conf:namespaces"]
    assert namespaces["severity"] == "medium" and namespaces["before"]["status"] == "pass" and "guest" not in namespaces
    text = hyperward("diff", str(old), str(new)).stdout
    host_at, guest_at = text.index("\nhost kvm-hardened\n"), text.index("\nguest weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)\n")
    assert host_at < guest_at
    assert "    MEDIUM    HV-ISO-007  qemu.conf:namespaces: " in text[host_at:guest_at]
    assert text.rstrip().splitlines()[-1].startswith(f"Diff: {len(new_pairs)} new (")


@pytest.mark.parametrize("threshold,code", [("critical", 1), ("high", 1), ("medium", 1), ("low", 1)])
def test_fail_on_new_with_a_critical_regression(hardened_pair, threshold, code):
    old, new = hardened_pair
    assert hyperward("diff", str(old), str(new), "--fail-on-new", threshold).returncode == code


def test_fail_on_new_counts_only_what_is_new_at_or_above(tmp_path):
    root = copy_root("hardened", tmp_path)
    old = _report(root, tmp_path / "old.json")
    with open(root / "etc/libvirt/qemu.conf", "a") as conf:
        conf.write("namespaces = [ ]\n")  # one medium regression, nothing else
    new = _report(root, tmp_path / "new.json")
    code, doc, _ = _diff(str(old), str(new))
    assert _pairs(doc, "new") == {("HV-ISO-007", "qemu.conf:namespaces")}
    for threshold, expected in (("critical", 0), ("high", 0), ("medium", 1), ("low", 1)):
        assert hyperward("diff", str(old), str(new), "--fail-on-new", threshold).returncode == expected, threshold
    # the other way round the regression is fixed, and a fix trips no gate
    code, back, _ = _diff(str(new), str(old), "--fail-on-new", "low")
    assert code == 0 and _pairs(back, "fixed") == {("HV-ISO-007", "qemu.conf:namespaces")} and back["summary"]["new"] == 0


def test_old_debt_does_not_trip_the_gate(tmp_path):
    """The weak root fails at critical before and after; fixing one thing adds nothing new."""
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    old = _report(root, tmp_path / "old.json")
    conf = root / "etc/libvirt/libvirtd.conf"
    conf.write_text(conf.read_text().replace("tls_no_verify_certificate = 1", "tls_no_verify_certificate = 0"))
    new = _report(root, tmp_path / "new.json")
    code, doc, _ = _diff(str(old), str(new), "--fail-on-new", "low")
    assert code == 0 and doc["summary"]["new"] == 0
    assert ("HV-AUTH-002", "libvirtd.conf:tls_no_verify_certificate") in _pairs(doc, "fixed")
    assert doc["summary"]["still_failing"] > 100


def test_a_check_not_run_is_neither_fixed_nor_new(tmp_path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    side = _report(root, tmp_path / "side.json", "--only", "SIDE")
    full = _report(root, tmp_path / "full.json")
    code, doc, _ = _diff(str(side), str(full), "--fail-on-new", "low")
    assert code == 0 and doc["summary"]["new"] == 0 and doc["summary"]["first_checked"] > 100
    assert all(c["id"].startswith("HV-SIDE-") for c in doc["changes"]["still_failing"])
    code, back, _ = _diff(str(full), str(side))
    assert back["summary"]["fixed"] == 0 and back["summary"]["not_judged"] > 100
    assert {c["why"] for c in back["changes"]["not_judged"]} == {"the newer scan did not run this check"}


def test_a_failure_that_became_an_error_is_not_fixed(hardened_pair, tmp_path):
    _, new = hardened_pair
    doc = json.loads(new.read_text())
    failing = next(r for r in doc["results"] if r["status"] == "fail")
    doc["results"] = [dict(r, status="error", message="permission denied") if r is failing else r for r in doc["results"]]
    errored = tmp_path / "errored.json"
    errored.write_text(json.dumps(doc))
    code, diff, _ = _diff(str(new), str(errored))
    assert diff["summary"]["fixed"] == 0
    assert [(c["id"], c["resource"], c["why"]) for c in diff["changes"]["not_judged"]] == [(failing["id"], failing["resource"], "error")]


@pytest.mark.parametrize("content,expected", [
    ("truncated", "not valid JSON (truncated?)"),
    ('{"tool": "hyperward", "schema": 99, "version": "9.0", "results": []}', "report schema 99 is newer than this hyperward reads (2)"),
    ('{"name": "not a report"}', "not a hyperward JSON report"),
    ("[1, 2, 3]", "not a hyperward JSON report"),
    ('{"tool": "hyperward", "schema": 2, "results": [{"id": "HV-ISO-001"}]}', "result 0 is not a hyperward result"),
    (b"\xff\xfe{}", "not a JSON document (not UTF-8 text)"),
])
def test_bad_input_is_one_line_naming_the_file(hardened_pair, tmp_path, content, expected):
    old, _ = hardened_pair
    bad = tmp_path / "bad.json"
    if content == "truncated":
        text = old.read_text()
        bad.write_text(text[: len(text) // 2])
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    for args in ((str(old), str(bad)), (str(bad), str(old))):
        done = hyperward("diff", *args)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == f"hyperward: error: {bad}: {expected}" + done.stderr[len(f"hyperward: error: {bad}: {expected}"):]
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_missing_file_and_wrong_argument_count(tmp_path):
    done = hyperward("diff", str(tmp_path / "nope.json"), str(tmp_path / "nope.json"))
    assert done.returncode == 2 and f"{tmp_path / 'nope.json'}: No such file or directory" in done.stderr
    one = hyperward("diff", str(tmp_path / "a.json"))
    assert one.returncode == 2 and "give two JSON reports" in one.stderr


def test_last_two_recorded_scans(tmp_path):
    history = tmp_path / "history.sqlite"
    env = {"HYPERWARD_HISTORY": str(history)}
    root = copy_root("hardened", tmp_path)
    empty = hyperward("diff", env=env)
    assert empty.returncode == 2 and f"{history}: no scan history" in empty.stderr
    assert hyperward("scan", "--root", str(root), "--record", "-q", env=env).returncode == 0
    once = hyperward("diff", env=env)
    assert once.returncode == 2 and "only one recorded scan of kvm-hardened" in once.stderr
    # a scan of another host in between is not the one compared
    other = copy_root("weak", tmp_path, kvm_mode=0o666)
    assert hyperward("scan", "--root", str(other), "--record", "-q", env=env).returncode == 0
    with open(root / "etc/libvirt/qemu.conf", "a") as conf:
        conf.write("namespaces = [ ]\n")
    assert hyperward("scan", "--root", str(root), "--record", "-q", env=env).returncode == 0
    code, doc, err = _diff("--history", str(history))
    assert code == 0, err
    # the first recorded scan is itself seen by the second (HV-SCAN-001 then judges each guest: medium)
    assert ("HV-ISO-007", "qemu.conf:namespaces") in _pairs(doc, "new")
    assert {c for c, _ in _pairs(doc, "new")} == {"HV-ISO-007", "HV-SCAN-001"}
    assert {c["severity"] for c in doc["changes"]["new"]} == {"medium"}
    assert doc["old"]["host"] == doc["new"]["host"] == "kvm-hardened"
    assert doc["old"]["source"].endswith("(scan 1)") and doc["new"]["source"].endswith("(scan 3)")
    assert hyperward("diff", "--history", str(history), "--fail-on-new", "medium").returncode == 1
    assert hyperward("diff", "--history", str(history), "--fail-on-new", "high").returncode == 0
    # with the weak host scanned last, its two scans are compared
    assert hyperward("scan", "--root", str(other), "--record", "-q", env=env).returncode == 0
    code, doc, _ = _diff(env=env)
    assert doc["new"]["host"] == "kvm-weak" and doc["old"]["source"].endswith("(scan 2)") and doc["summary"]["still_failing"] > 100
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    bad = hyperward("diff", "--history", str(garbage))
    assert bad.returncode == 2 and f"{garbage}: not a hyperward scan history" in bad.stderr


def test_text_output_escapes_host_strings(hardened_pair, tmp_path):
    old, _ = hardened_pair
    doc = json.loads(old.read_text())
    doc["results"].append({"id": "HV-ISO-007", "resource": "evil\x1b]0;pwned\x07", "status": "fail", "severity": "high",
                           "message": "line\nforged: HV-FAKE-001"})
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(doc))
    out = hyperward("diff", str(old), str(hostile)).stdout
    assert "\x1b" not in out and "\x07" not in out and "evil\\x1b]0;pwned\\x07" in out
    assert "\nforged" not in out
