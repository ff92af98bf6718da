"""Intrusion detection, logging and time: variants on the hardened root with exact failing resources."""

from __future__ import annotations

import os
import time

from hyperward.collect.monitoring import aide_covers
from hyperward.model import Status

from conftest import apply, failing, scan

OLD = time.time() - 30 * 86400


def test_aide_rules_follow_selection_semantics():
    rules = [("/", "/"), ("!", "/boot/efi"), ("!", "/etc/libvirt/qemu/autostart$"), ("/", "/usr/bin/qemu-system-[[:alnum:]_]+$")]
    assert aide_covers(rules, "/etc/libvirt") and aide_covers(rules, "/boot")
    assert not aide_covers(rules, "/boot/efi/EFI") and aide_covers(rules, "/etc/libvirt/qemu")
    assert not aide_covers([("/", "/etc$")], "/etc/libvirt") and aide_covers([("=", "/etc/libvirt$")], "/etc/libvirt")


def test_aide_exclusion_of_libvirt_and_stale_check(hardened):
    apply(hardened, {"etc/aide/aide.conf.d/98_local": "!/etc/libvirt\n"})
    assert failing(scan(hardened, only=["HV-IDS-001"])) == {("HV-IDS-001", "aide:coverage")}
    os.utime(hardened / "var/log/aide/aide.log", (OLD, OLD))
    apply(hardened, {"etc/aide/aide.conf.d/98_local": None})
    assert failing(scan(hardened, only=["HV-IDS-001"])) == {("HV-IDS-001", "aide:schedule")}


def test_audit_watch_must_cover_writes(hardened):
    apply(hardened, {"etc/audit/rules.d/50-libvirt.rules": "-w /etc/libvirt/ -p r -k libvirt-read\n"})
    assert failing(scan(hardened, only=["HV-IDS-002"])) == {("HV-IDS-002", "/etc/libvirt")}
    apply(hardened, {"etc/audit/rules.d/50-libvirt.rules": "-a always,exit -F dir=/etc/libvirt -F perm=wa -k libvirt\n"})
    assert failing(scan(hardened, only=["HV-IDS-002"])) == set()


def test_suricata_must_see_guest_bridges_with_fresh_rules(hardened):
    yaml_path = hardened / "etc/suricata/suricata.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("interface: virbr0", "interface: eno2"))
    os.utime(hardened / "var/lib/suricata/rules/suricata.rules", (OLD, OLD))
    [f] = [f for f in scan(hardened, only=["HV-IDS-004"]).findings if f.status is Status.FAIL]
    assert f.result.resource == "suricata" and "guest bridge(s) virbr0" in f.result.message and "days ago" in f.result.message


def test_forwarding_legacy_syntax_and_time(hardened):
    apply(hardened, {"etc/rsyslog.d/60-forward.conf": "*.* @@loghost.example.net:514\n"})
    [f] = [f for f in scan(hardened, only=["HV-MON-001"]).findings if f.result.resource == "forwarding"]
    assert f.status is Status.PASS and "TCP to loghost.example.net:514" in f.result.message
    os.unlink(hardened / "etc/systemd/system/multi-user.target.wants/chrony.service")
    assert failing(scan(hardened, only=["HV-MON-003"])) == {("HV-MON-003", "time daemon")}
