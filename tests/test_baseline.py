"""HV-IDS-006: `hyperward baseline accept`, then real edits to the configuration."""

from __future__ import annotations

import json
import os


from conftest import apply, hyperward


def _scan(root, env):
    done = hyperward("scan", "--root", str(root), "--only", "HV-IDS-006", "--format", "json", env=env)
    return {r["resource"]: (r["status"], r["message"]) for r in json.loads(done.stdout)["results"]}


def test_accept_then_detect_changes_per_file_and_vm(hardened, tmp_path):
    env = {"HYPERWARD_BASELINE": str(tmp_path / "baseline.json")}
    done = hyperward("baseline", "accept", "--root", str(hardened), env=env)
    assert done.returncode == 0 and "accepted" in done.stdout
    assert _scan(hardened, env) == {"baseline": ("pass", _scan(hardened, env)["baseline"][1])}
    # formatting and comments are not drift
    domain = hardened / "etc/libvirt/qemu/hardened-vm.xml"
    domain.write_text("<!-- edited with virsh edit -->\n" + domain.read_text().replace("  <", "    <"))
    conf = hardened / "etc/libvirt/qemu.conf"
    conf.write_text(conf.read_text() + "\n# reviewed 2026-11\n\n")
    assert _scan(hardened, env)["baseline"][0] == "pass"
    # real changes are
    domain.write_text(domain.read_text().replace("<nosharepages/>", ""))
    conf.write_text(conf.read_text() + 'vnc_listen = "0.0.0.0"\n')
    apply(hardened, {"etc/libvirt/qemu/networks/lab.xml": "<network><name>lab</name><forward mode='open'/></network>\n",
                     "etc/libvirt/nwfilter/allow-arp.xml": None})
    results = _scan(hardened, env)
    assert {k: v[0] for k, v in results.items()} == {"domain hardened-vm": "fail", "/etc/libvirt/qemu.conf": "fail",
                                                     "network lab": "fail", "nwfilter allow-arp": "fail"}
    assert results["network lab"][1].startswith("added") and results["nwfilter allow-arp"][1].startswith("removed")
    assert results["domain hardened-vm"][1].startswith("changed since the baseline of")


def test_missing_or_corrupt_baseline(hardened, tmp_path):
    env = {"HYPERWARD_BASELINE": str(tmp_path / "none.json")}
    [(status, message)] = _scan(hardened, env).values()
    assert status == "not_applicable" and "hyperward baseline accept" in message
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    [(status, message)] = _scan(hardened, {"HYPERWARD_BASELINE": str(bad)}).values()
    assert status == "error" and "not a hyperward baseline" in message


def test_accept_writes_only_the_baseline(hardened, tmp_path):
    before = sorted((p, p.stat().st_mtime_ns) for p in hardened.rglob("*") if p.is_file())
    hyperward("baseline", "accept", "--root", str(hardened), "--file", str(tmp_path / "b.json"))
    after = sorted((p, p.stat().st_mtime_ns) for p in hardened.rglob("*") if p.is_file())
    assert before == after and os.path.exists(tmp_path / "b.json")
