"""Intrusion detection, logging and time: variants on the hardened root with exact failing resources."""

from __future__ import annotations

import os
import time

from hyperward.collect.fs import RootFS
from hyperward.collect.monitoring import collect_aide, collect_services
from hyperward.parsers.aide import AideSelection, _hazard, aide_covers
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


HOSTILE = "!/etc/(x+x+)+y\n(a|a)*b\n/usr/(.*.*)*z$\n/var/(a+)+$\n"


def test_hostile_aide_rules_are_unknown_not_hung(hardened):
    """Rules from an image that backtrack catastrophically on the required paths (Python's re on
    /usr/(.*.*)*z$ against /usr/bin/qemu-system-x86_64 did not finish within 120 s): judged
    unknown before compiling, named, fast. A possible exclusion leaves /etc/libvirt undetermined; the paths the stock rules select
    stay selected (an unknown selection rule cannot unselect them)."""
    apply(hardened, {"etc/aide/aide.conf.d/99_hostile": HOSTILE})
    fs = RootFS(str(hardened))
    started = time.monotonic()
    aide = collect_aide(fs, collect_services(fs))
    assert time.monotonic() - started < 0.5
    assert aide is not None
    assert aide.coverage == {"/etc/libvirt": None, "/usr/bin/qemu-system-x86_64": True, "/usr/sbin/libvirtd": True, "/boot": True}
    assert aide.unknown_rules == ["!/etc/(x+x+)+y: nested quantifiers"]
    [result] = [f for f in scan(hardened, only=["HV-IDS-001"]).findings if f.result.resource == "aide:coverage"]
    assert result.status is Status.NOT_APPLICABLE
    assert result.result.message == ("/etc/aide/aide.conf: whether it selects /etc/libvirt could not be determined: "
                                     "rule !/etc/(x+x+)+y: nested quantifiers")
    # with nothing else selecting them, the hostile selection rules leave the paths undetermined
    selection = AideSelection([("/", "(a|a)*b"), ("/", "/usr/(.*.*)*z$"), ("/", "/var/(a+)+$")])
    started = time.monotonic()
    assert selection.covers("/usr/bin/qemu-system-x86_64") is None and selection.covers("/boot") is None
    assert time.monotonic() - started < 0.1
    assert selection.unknown == {"(a|a)*b": "alternation under a quantifier", "/usr/(.*.*)*z$": "nested quantifiers"}


def test_unknown_rules_decide_only_what_they_could_match(hardened):
    """An unknown selection rule beside a known exclusion: the exclusion still fails the path;
    an unknown exclusion of /etc only leaves /etc/libvirt undetermined."""
    apply(hardened, {"etc/aide/aide.conf.d/98_local": "!/etc/libvirt\n!/etc/(l+i+)+bvirt$\n/boot/(a|b)*$\n"})
    report = scan(hardened, only=["HV-IDS-001"])
    assert failing(report) == {("HV-IDS-001", "aide:coverage")}
    [result] = [f for f in report.findings if f.result.resource == "aide:coverage"]
    assert result.result.message == "/etc/aide/aide.conf does not select /etc/libvirt"
    apply(hardened, {"etc/aide/aide.conf.d/98_local": "!/etc/(l+i+)+bvirt$\n"})
    fs = RootFS(str(hardened))
    aide = collect_aide(fs, collect_services(fs))
    assert aide is not None and aide.coverage == {"/etc/libvirt": None, "/usr/bin/qemu-system-x86_64": True,
                                                  "/usr/sbin/libvirtd": True, "/boot": True}


def test_hostile_include_pattern_and_spent_budget_are_unknown(hardened):
    conf = (hardened / "etc/aide/aide.conf").read_text().replace("^[a-zA-Z0-9_-]+$", "^([a-z0-9_-]+)+$")
    apply(hardened, {"etc/aide/aide.conf": conf})
    fs = RootFS(str(hardened))
    started = time.monotonic()
    aide = collect_aide(fs, collect_services(fs))
    assert time.monotonic() - started < 0.5
    assert aide is not None and set(aide.coverage.values()) == {None}
    assert aide.unknown_rules == ["@@x_include /etc/aide/aide.conf.d ^([a-z0-9_-]+)+$: nested quantifiers"]
    selection = AideSelection([("/", "/")], budget_s=0)
    time.sleep(0.01)
    assert selection.covers("/boot") is None
    assert selection.unknown == {"/": "not evaluated: the 0 s budget for this image's AIDE rules was spent"}


def test_safe_rules_from_debian_are_not_judged_hazardous():
    for pattern in ("/dev/disk/by-uuid/[0-9A-Fa-f]{8}-([0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$", r"/var/log/apt/history\.log(\.[0-9]+)?(\.gz)?$",
                    "/etc/(hostname|mailname)$", "/usr/bin/qemu-system-[0-9A-Za-z_]+$", "/var/lib/(.*/)?x$"):
        assert _hazard(pattern) is None, pattern
    assert _hazard(r"/etc/(a)\1") == "backreference"
    assert _hazard("/" + "a*" * 7) == "more than 6 variable repeats"
