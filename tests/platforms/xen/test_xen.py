"""The Xen platform (issue 17): xl.cfg(5) parsed as libxlu does, Xen's command line parsed as
xen/common/kernel.c does, every Xen-only check passing and failing on exact resources, the neutral
guest checks judging Xen guests, bad input named by path, passwords never kept.

Xen cannot run here (no hypervisor, no dom0): the live path is exercised with a fake `xl` (and a
fake `xenhypfs`), shell scripts written into the test's own directory and handed to the collector
by absolute path (the collector would otherwise look for them on the system path only). They print
tests/fixtures/xen/recorded, written by hand in the format Xen's tools print (read from Xen's
sources: xl_info.c, libxl_types.idl and gentypes.py as stored, newer than Debian 12's 4.17, whose
xl prints the same fields but for ones added since, such as the devices' `trusted`), not captured
from a live host (none is available to this project); the values are invented, the format is
Xen's own:

- xl-info.txt: tools/xl/xl_info.c print_info(): output_nodeinfo, output_physinfo, output_xeninfo,
  then xend_config_format, each `%-23s: value` in that order; virt_caps lists what Xen reports
  among pv hvm hvm_directio pv_directio hap shadow iommu_hap_pt_share vmtrace vpmu gnttab-v1
  gnttab-v2 (vmtrace and vpmu are off here, as by default). XL_INFO_FIELDS below is that order.
- xl-list-l.json: xl_info.c list_domains_details(): a JSON array of {"domid", "config"}, each
  config libxl_domain_config_gen_json's, through libxl's yajl generator (beautified, 4-space
  indent, so an empty map prints as "{", a blank line, "}"). Fields and their order are
  libxl_types.idl's; gentypes.py emits a number only when it is not 0, a string or defbool only
  when set ("True"/"False"), an array only when non-empty, and every struct, so PCI device
  0000:03:00.0 is {"bus": 3} and a dom0 backend has no backend_domid at all. Domain-0 has the stub
  config xen-init-dom0 stores (tools/helpers/init-dom-json.c) with the name and memory libxl
  fills in when it retrieves it.
- xenhypfs: tools/misc/xenhypfs.c `cat PATH` prints the value and a newline.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest

from conftest import REPO, hyperward, scan

from hyperward import vulndb
from hyperward.checks.patching import is_virt_stack
from hyperward.collect import collect_host
from hyperward.collect.fs import RootFS
from hyperward.engine import for_platforms, registry, run_checks
from hyperward.facts import Package, _from_jsonable, dump_snapshot, load_snapshot, to_jsonable
from hyperward.model import Status, Unavailable
from hyperward.platforms import registry as platform_registry
from hyperward.platforms.base import Source
from hyperward.platforms.xen import PLATFORM, parsers
from hyperward.platforms.xen.checks import JUDGES
from hyperward.platforms.xen.collect import collect
from hyperward.platforms.xen.facts import XenCmdline, XenFacts
from hyperward.platforms.xen.guests import to_guests

FIXTURES = REPO / "tests/fixtures/xen"
SECRETS = ("Hunter2xyz", "Secr3tVNC", "AppVncS3cret", "DeskSpiceS3cret", "RunningVncS3cret", "RunningSpiceS3cret")
GRUB = "/etc/default/grub (with grub.d)"


def tree(name: str, tmp: pathlib.Path) -> pathlib.Path:
    root = tmp / name
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


def judged(facts: XenFacts, check_id: str) -> dict[str, Status]:
    return {r.resource: r.status for r in JUDGES[check_id](facts)}


def failing(facts: XenFacts, check_id: str) -> set[str]:
    return {r.resource for r in JUDGES[check_id](facts) if r.status is Status.FAIL}


# --- xl.cfg(5) ------------------------------------------------------------------------------------


def test_xens_own_examples_parse_to_their_values():
    """tools/examples/xlexample.hvm and xlexample.pvlinux as Debian's xen-utils-common installs
    them (the text of Xen commit 737d28ae; newer releases add `type = "hvm"` to the HVM one)."""
    hvm = parsers.parse_xl_cfg((FIXTURES / "weak/etc/xen/xlexample.hvm").read_text())
    assert hvm.scalars == {"name": "example.hvm", "memory": "128", "vcpus": "2", "sdl": "1"}
    assert hvm.lists == {"vif": [""], "disk": ["/dev/vg/guest-volume,raw,xvda,rw"]}
    pv = parsers.parse_xl_cfg((FIXTURES / "weak/etc/xen/xlexample.pvlinux").read_text())
    assert pv.scalars["kernel"] == "/boot/vmlinuz" and pv.scalars["extra"] == "root=/dev/xvda1"
    disk = parsers.parse_disk_spec(pv.lists["disk"][0])
    assert (disk.target, disk.format, disk.vdev, disk.readonly) == ("/dev/vg/guest-volume", "raw", "xvda", False)


def test_xl_cfg_syntax_from_the_manual():
    """xl.cfg(5) SYNTAX: single/double quotes, numbers in decimal, octal and hex, `;` between
    settings, lists across lines, nested and with a trailing comma; libxlu's escapes; `+=`; the
    dotted keys of xl.conf(5); the last assignment wins."""
    cfg = parsers.parse_xl_cfg(
        'name="h0"; type="hvm"\n'
        "memory = 0x400\nvcpus = 010\n"
        "disk = [ 'a,raw,xvda,rw',\n  \"b,raw,xvdb,r\",\n]\n"
        'vnuma = [ ["pnode=0","size=512","vcpus=0-1"], ["pnode=1","size=512","vcpus=2-3"] ]\n'
        'extra = "console=hvc0 \\"quoted\\" tab\\there \\x41\\101"\n'
        "usbdevice = [ 'tablet' ]\nusbdevice += [ 'host:1234:5678' ]\n"
        'vif.default.script = "vif-bridge"\n'
        "memory = 2048 # a later assignment wins\n")
    assert cfg.scalars["name"] == "h0" and cfg.scalars["type"] == "hvm"
    assert parsers.c_long(cfg.scalars["vcpus"]) == 8 and cfg.scalars["memory"] == "2048"
    assert parsers.c_long("0x400") == 1024 and parsers.c_long("yes") is None
    assert cfg.lists["disk"] == ["a,raw,xvda,rw", "b,raw,xvdb,r"]
    assert cfg.lists["vnuma"] == ["pnode=0,size=512,vcpus=0-1", "pnode=1,size=512,vcpus=2-3"]
    assert cfg.scalars["extra"] == 'console=hvc0 "quoted" tab\there AA'
    assert cfg.lists["usbdevice"] == ["tablet", "host:1234:5678"]
    assert cfg.scalars["vif.default.script"] == "vif-bridge"


@pytest.mark.parametrize("text, message", [
    ('name = "web\nmemory = 512\n', "line 1: unterminated string"),
    ("name = 'web'\r\nmemory = 512\r\n", "line 1: lexical error at a carriage return"),
    ("name = 'old'\nmemory = 256 * 2\n", "line 2: lexical error at '*'"),
    ("name = 'old'\ndisk = ['phy:/dev/x,xvda,w'] + extra\n", "line 2: lexical error at '+': the file looks like it contains Python"),
    ("name = 'old'\nmemory = int(512)\n", "line 2: lexical error at '('"),
    ("name = 'old'\nmemory = 512 512\n", "line 2: syntax error: expected the end of the setting"),
    ("name = 'old'\nacpi = True\n", "line 2: lexical error at 'T'"),
    ("name = 'web'\ntype = hvm\n", "line 2: syntax error: expected a string, a number or a list"),
    ("name = 'web'\ndisk = [ 'a',\n", "unclosed list"),
    ("name = 'web'\nextra = 'a\\qb'\n", "line 2: invalid character after backslash"),
    ("name = 'web'\nextra += 'x'\n", "'+=' appends to a list"),
])
def test_what_xl_refuses_is_refused(text, message):
    with pytest.raises(parsers.ParseError) as caught:
        parsers.parse_xl_cfg(text)
    assert message in str(caught.value)


def test_python_from_xm_is_named_as_such():
    with pytest.raises(parsers.ParseError, match="looks like it contains Python code"):
        parsers.parse_xl_cfg("name = 'old'\nvcpus = (2)\n")


# --- Xen's command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("token, expected", [
    ("smt", True), ("no-smt", False), ("smt=0", False), ("smt=no", False), ("smt=off", False), ("smt=false", False),
    ("smt=disable", False), ("smt=1", True), ("smt=on", True), ("smt=yes", True), ("smt=true", True), ("smt=enable", True),
    ("no-smt=0", True), ("smt=maybe", None), ("smt_x=0", None),
])
def test_boolean_spellings_and_negation_follow_kernel_c(token, expected):
    found = parsers.last_boolean([token], "smt")
    assert (found.flag if found else None) is expected


def test_custom_options_and_exact_names():
    tokens = parsers.split_xen_cmdline("placeholder  no-xpti spec_ctrl=no no-iommu=1 iommu=force,no-intremap")
    assert [s.value for s in parsers.settings(tokens, "xpti", boolean=False)] == ["no"]
    assert parsers.settings(tokens, "spec-ctrl", boolean=False) == []  # '_' is not '-' to Xen
    assert [s.value for s in parsers.settings(tokens, "iommu", boolean=False)] == ["force,no-intremap"]  # no-iommu=1 is refused
    assert parsers.parse_boolean("intremap", "no-intremap") is False and parsers.parse_boolean("intremap", "intremap=1") is True


CMDLINE_ROWS = [
    # (GRUB_CMDLINE_XEN_DEFAULT, check, failing message fragment or None for a pass)
    ("", "HV-SIDE-050", None),
    ("spec-ctrl=no", "HV-SIDE-050", "every mitigation off"),
    ("no-spec-ctrl", "HV-SIDE-050", "every mitigation off"),
    ("spec-ctrl=md-clear=0", "HV-SIDE-050", "md-clear off"),
    ("spec-ctrl=no-ibpb", "HV-SIDE-050", "ibpb off"),
    ("spec-ctrl=bti-thunk=jmp", "HV-SIDE-050", "bti-thunk=jmp"),
    ("spec-ctrl=rsb=0 spec-ctrl=rsb=1", "HV-SIDE-050", None),
    ("spec-ctrl=ssbd=0", "HV-SIDE-050", None),
    ("xpti=false", "HV-SIDE-051", "XPTI off for guests"),
    ("no-xpti", "HV-SIDE-051", "XPTI off for guests"),
    ("xpti=dom0=0", "HV-SIDE-051", "XPTI off for dom0"),
    ("xpti=no xpti=default", "HV-SIDE-051", None),
    ("xpti=no,domu=1", "HV-SIDE-051", "XPTI off for dom0"),
    ("xpti=domu=0,true", "HV-SIDE-051", None),
    ("pv-l1tf=false,domu=true", "HV-SIDE-052", None),
    ("spec-ctrl=no", "HV-SIDE-051", "(spec-ctrl=no)"),
    ("xpti=true spec-ctrl=no", "HV-SIDE-051", None),
    ("pv-l1tf=false", "HV-SIDE-052", "shadowing off"),
    ("pv-l1tf=domu=0", "HV-SIDE-052", "shadowing off"),
    ("pv-l1tf=dom0=0", "HV-SIDE-052", None),
    ("spec-ctrl=no", "HV-SIDE-052", "(spec-ctrl=no)"),
    ("", "HV-SIDE-053", "smt on (default) with sched-gran=cpu (default)"),
    ("smt=0", "HV-SIDE-053", None),
    ("no-smt", "HV-SIDE-053", None),
    ("smt=0 smt=1", "HV-SIDE-053", "smt on (smt=1)"),
    ("sched-gran=core", "HV-SIDE-053", None),
    ("sched-gran=cpu", "HV-SIDE-053", "sched-gran=cpu"),
    ("ept=exec-sp", "HV-SIDE-054", "executable superpages"),
    ("ept=exec-sp=1,pml=0", "HV-SIDE-054", "executable superpages"),
    ("ept=no-exec-sp", "HV-SIDE-054", None),
    ("ept=ad=0", "HV-SIDE-054", None),
    ("iommu=no", "HV-ISO-050", "IOMMU disabled"),
    ("no-iommu", "HV-ISO-050", "IOMMU disabled"),
    ("iommu=0", "HV-ISO-050", "IOMMU disabled"),
    ("iommu=force", "HV-ISO-050", None),
    ("iommu=no-intremap", "HV-ISO-050", "interrupt remapping off"),
    ("iommu=amd-iommu-perdev-intremap=0", "HV-ISO-050", "global AMD"),
    ("iommu=dom0-passthrough", "HV-ISO-050", "dom0 devices untranslated"),
    ("dom0-iommu=passthrough", "HV-ISO-050", "dom0 devices untranslated"),
    ("dom0-iommu=passthrough=0,strict", "HV-ISO-050", None),
    ("dom0-iommu=none", "HV-ISO-050", "safety checks skipped"),
    ("xsm=flask flask=permissive", "HV-ISO-051", "flask=permissive"),
    ("xsm=flask flask=late", "HV-ISO-051", "until one is loaded"),
    ("xsm=flask", "HV-ISO-051", None),
    ("xsm=flask flask=disabled", "HV-ISO-051", "flask=disabled"),
]


@pytest.mark.parametrize("line, check_id, problem", CMDLINE_ROWS)
def test_each_hypervisor_option_row(tmp_path, line, check_id, problem):
    root = tree("hardened", tmp_path)
    (root / "etc/default/grub.d/xen.cfg").write_text(f'GRUB_CMDLINE_XEN_DEFAULT="{line}"\n')
    facts = collect(RootFS(str(root)))
    [result] = list(JUDGES[check_id](facts))
    assert result.resource == GRUB
    if problem is None:
        assert result.status is Status.PASS, result.message
    else:
        assert result.status is Status.FAIL and problem in result.message, result.message


def test_flask_not_selected_is_not_applicable(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/default/grub.d/xen.cfg").write_text('GRUB_CMDLINE_XEN_DEFAULT="xsm=dummy"\n')
    facts = collect(RootFS(str(root)))
    assert {r.status for r in JUDGES["HV-ISO-051"](facts)} == {Status.NOT_APPLICABLE}
    assert {r.status for r in JUDGES["HV-ISO-058"](facts)} == {Status.NOT_APPLICABLE}


def test_efi_xen_cfg_is_a_command_line_of_its_own(tmp_path):
    root = tree("hardened", tmp_path)
    efi = root / "boot/efi/EFI/debian"
    efi.mkdir(parents=True)
    (efi / "xen.cfg").write_text("[global]\ndefault=xen\n\n[xen]\noptions=console=vga smt=1 spec-ctrl=no\n"
                                 "kernel=vmlinuz root=/dev/sda1\nramdisk=initrd.img\n")
    facts = collect(RootFS(str(root)))
    assert failing(facts, "HV-SIDE-050") == {"/boot/efi/EFI/debian/xen.cfg [xen]"}
    assert failing(facts, "HV-SIDE-053") == {"/boot/efi/EFI/debian/xen.cfg [xen]"}
    assert judged(facts, "HV-SIDE-050")[GRUB] is Status.PASS


# --- per check on the weak and hardened roots ----------------------------------------------------

WEAK_FAILING = {
    "HV-SIDE-050": {GRUB}, "HV-SIDE-051": {GRUB}, "HV-SIDE-052": {GRUB}, "HV-SIDE-053": {GRUB}, "HV-SIDE-054": {GRUB},
    "HV-ISO-050": {GRUB}, "HV-ISO-051": {GRUB},
    "HV-ISO-052": {"web", "legacy", "netdd"}, "HV-ISO-053": {"gpu"}, "HV-ISO-054": {"web", "legacy", "gpu"},
    "HV-ISO-055": {"legacy"}, "HV-ISO-056": {"gpu"}, "HV-ISO-057": {"legacy"}, "HV-ISO-058": {"web", "legacy", "gpu", "netdd"},
    "HV-ISO-059": {"netdd"}, "HV-ISO-060": {"/etc/xen/xl.conf"}, "HV-ISO-061": {"netdd"},
    "HV-AUTH-050": {"web", "legacy"}, "HV-AUTH-051": {"web"},
}


def test_every_xen_check_fails_exactly_the_weak_resources_and_passes_the_hardened(tmp_path):
    weak = collect(RootFS(str(tree("weak", tmp_path))))
    hardened = collect(RootFS(str(tree("hardened", tmp_path))))
    assert set(WEAK_FAILING) == set(JUDGES)
    for check_id, expected in WEAK_FAILING.items():
        assert failing(weak, check_id) == expected, check_id
        results = list(JUDGES[check_id](hardened))
        assert results and not [r for r in results if r.status in (Status.FAIL, Status.ERROR)], (check_id, results)
    assert judged(hardened, "HV-ISO-054") == {"app": Status.PASS, "desk": Status.PASS, "stub": Status.PASS}  # db, router: no QEMU
    assert judged(hardened, "HV-AUTH-051") == {"desk": Status.PASS} and judged(hardened, "HV-ISO-055") == {"router": Status.PASS}
    assert judged(hardened, "HV-ISO-052") == {"desk": Status.PASS, "router": Status.PASS}
    assert judged(weak, "HV-ISO-052")["gpu"] is Status.PASS
    # router serves db's vif; the vTPM backends' domains are not defined here: unknown, not judged
    assert judged(hardened, "HV-ISO-059") == {"router": Status.PASS, **{f"vtpm-{n}": Status.NOT_APPLICABLE
                                                                         for n in ("app", "db", "desk", "router", "stub")}}
    assert judged(weak, "HV-ISO-055")["netdd"] is Status.PASS and judged(hardened, "HV-ISO-060") == {"/etc/xen/xl.conf": Status.PASS}


def test_weak_messages_name_the_setting(tmp_path):
    weak = collect(RootFS(str(tree("weak", tmp_path))))
    by = {(cid, r.resource): r.message for cid in JUDGES for r in JUDGES[cid](weak)}
    assert by[("HV-AUTH-050", "web")] == "VNC (vnc) on 0.0.0.0 without a password (no vncpasswd, or empty)"
    assert "vncpasswd set" in by[("HV-AUTH-050", "legacy")]
    assert by[("HV-ISO-052", "legacy")] == "04:00.0: permissive (all config-space writes allowed)"  # from pci_permissive=1
    assert by[("HV-ISO-054", "gpu")] == "dm_restrict=1 with device_model_user=root: QEMU keeps root"
    assert by[("HV-ISO-055", "legacy")] == "e820_host on by default (PCI passthrough configured)"
    assert by[("HV-ISO-057", "legacy")] == "iomem: fed40,1; ioports: 2f8-2ff; irqs: 3"
    assert "spicedisable_ticketing=1" in by[("HV-AUTH-051", "web")] and "any interface" in by[("HV-AUTH-051", "web")]


def test_a_shared_device_model_user_fails_both_guests(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/xen/app2.cfg").write_text((root / "etc/xen/app.cfg").read_text().replace('name = "app"', 'name = "app2"'))
    facts = collect(RootFS(str(root)))
    assert failing(facts, "HV-ISO-054") == {"app", "app2"}


# --- the neutral guest checks over Xen guests ---------------------------------------------------


def test_xen_guests_on_the_neutral_model(tmp_path):
    weak = collect(RootFS(str(tree("weak", tmp_path))))
    guests = {g.name: g for g in to_guests(weak)}
    assert set(guests) == {"web", "legacy", "gpu", "netdd"}  # xlexample.* are examples, not *.cfg guests
    web = guests["web"]
    assert [(c.kind, c.listen, c.auth) for c in web.consoles] == [("vnc", ["0.0.0.0"], ["none"]), ("spice", ["0.0.0.0"], ["none"])]
    assert web.clipboard is True and web.usb_redirection == 2 and web.nested is True and web.nested_kind == "requested"
    assert [(d.kind, d.host_id) for d in web.devices] == [("pci", "0000:03:00.0"), ("block", "/dev/vg/web")]
    assert [(c.host, c.port) for c in web.network_chardevs] == [("0.0.0.0", "4555")]
    assert [d.device for d in web.disks] == ["disk", "cdrom"] and web.disks[1].readonly
    assert web.firmware == "bios" and web.uuid == "5c2e1b0a-7d4f-4e8a-9b3c-2f1e0d9c8b7a"
    assert guests["gpu"].firmware == "uefi" and guests["gpu"].consoles[0].auth == ["password"]
    legacy = guests["legacy"]
    assert legacy.firmware is None and [c.source for c in legacy.consoles] == ["xl vfb[0]"]
    assert [d.source for d in legacy.disks] == ["/dev/vg/legacy-disk", "/dev/vg/legacy-swap"]
    hardened = {g.name: g for g in to_guests(collect(RootFS(str(tree("hardened", tmp_path)))))}
    assert [t.kind for t in hardened["app"].tpms] == ["external"] and hardened["app"].memory_kib == 4096 * 1024
    assert PLATFORM.guest_bridges(weak) == ["xenbr0"]  # legacy's vif joins xenbr0 inside netdd, web's dom0's


def test_neutral_checks_fail_the_exact_xen_guests(tmp_path):
    facts = collect_host(str(tree("weak", tmp_path)))
    assert "xen" in facts.platforms
    checks = {cid: c for cid, c in registry().items()
              if cid in ("HV-AUTH-010", "HV-AUTH-011", "HV-ISO-026", "HV-NEST-002", "HV-TPM-005", "HV-ISO-010")}
    report = run_checks(facts, checks)
    fails = {(f.check_id, f.result.resource) for f in report.findings if f.status is Status.FAIL and f.result.platform == "xen"}
    assert {r for c, r in fails if c == "HV-AUTH-010"} == {"web", "legacy"}
    assert {r for c, r in fails if c == "HV-AUTH-011"} == {"web"}
    assert {r for c, r in fails if c == "HV-ISO-026"} == {"web"}
    assert {r for c, r in fails if c == "HV-NEST-002"} == {"web"}
    assert {r for c, r in fails if c == "HV-TPM-005"} == {"web", "legacy", "gpu", "netdd"}
    # Xen owns the IOMMU: offline, dom0's empty iommu_groups prove nothing about it
    iommu = {f.result.resource: f.status for f in report.findings if f.check_id == "HV-ISO-010"}
    assert iommu == {"web": Status.NOT_APPLICABLE, "legacy": Status.NOT_APPLICABLE, "gpu": Status.NOT_APPLICABLE,
                     "netdd": Status.NOT_APPLICABLE}


def test_a_non_xen_host_runs_no_xen_rows(tmp_path):
    from conftest import copy_root

    root = copy_root("hardened", tmp_path)
    (root / "sys/hypervisor").mkdir(parents=True, exist_ok=True)
    (root / "sys/hypervisor/type").write_text("xen\n")  # a Xen guest (domU) says so too: not a dom0
    (root / "proc/xen").mkdir(parents=True, exist_ok=True)
    (root / "proc/xen/capabilities").write_text("\n")
    facts = collect_host(str(root))
    assert "xen" not in facts.platforms
    (root / "proc/xen/capabilities").write_text("control_d\n")
    assert PLATFORM.detect(Source(RootFS(str(root))))
    assert not [cid for cid in for_platforms(registry(), facts) if cid in JUDGES]
    assert "xen" in platform_registry() and platform_registry()["xen"].letter == "X"


# --- bad input ------------------------------------------------------------------------------------


def test_bad_files_are_errors_naming_the_path_and_the_rest_is_judged(tmp_path):
    root = tree("hardened", tmp_path)
    xen = root / "etc/xen"
    (xen / "broken.cfg").write_text('name = "broken"\nvncpasswd = "oops\n')
    (xen / "blob.cfg").write_bytes(b"\x7fELF\x02\x01\x01\x00" + os.urandom(64) + b"\x00\x00")
    (xen / "huge.cfg").write_text('name = "huge"\n' + "# padding\n" * 200_000)
    (xen / "noname.cfg").write_text("memory = 512\n")
    (xen / "newer.cfg").write_text('name = "newer"\ntype = "pvh"\nfuture_isolation_knob = [ "a", [ "b" ] ]\n')
    facts = collect(RootFS(str(root)))
    bad = {u.path: u.reason for u in facts.configs if isinstance(u, Unavailable)}
    assert set(bad) == {"/etc/xen/broken.cfg", "/etc/xen/blob.cfg", "/etc/xen/huge.cfg", "/etc/xen/noname.cfg"}
    assert "line 2: unterminated string" in bad["/etc/xen/broken.cfg"]
    assert "binary data" in bad["/etc/xen/blob.cfg"] and "larger than" in bad["/etc/xen/huge.cfg"]
    assert "no name=" in bad["/etc/xen/noname.cfg"]
    for check_id in JUDGES:
        if check_id.startswith(("HV-ISO-05", "HV-AUTH-05")) and check_id not in ("HV-ISO-050", "HV-ISO-051"):
            results = list(JUDGES[check_id](facts))
            errors = {r.resource for r in results if r.status is Status.ERROR}
            assert errors == set(bad), check_id
    assert judged(facts, "HV-ISO-056")["newer"] is Status.PASS  # a key from a newer Xen is carried, not an error
    report = hyperward("scan", "--root", str(root), "--only", "HV-ISO-054", "--format", "json")
    assert "Traceback" not in report.stderr
    results = json.loads(report.stdout)["results"]
    assert {r["resource"] for r in results if r["status"] == "error"} == set(bad)
    assert {r["resource"]: r["status"] for r in results if r["status"] != "error"} == {"app": "pass", "desk": "pass", "stub": "pass"}


def test_a_cfg_that_is_a_directory_or_fifo_is_not_read(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/xen/dir.cfg").mkdir()
    os.mkfifo(root / "etc/xen/pipe.cfg")
    facts = collect(RootFS(str(root)))
    bad = {u.path: u.reason for u in facts.configs if isinstance(u, Unavailable)}
    assert bad == {"/etc/xen/pipe.cfg": "not a regular file; not read"}


# --- secrets --------------------------------------------------------------------------------------


def test_passwords_never_reach_facts_snapshots_or_reports(tmp_path):
    root = tree("weak", tmp_path)
    facts = collect_host(str(root))
    snapshot = dump_snapshot(facts)
    assert not [s for s in SECRETS if s in snapshot]
    xen = facts.platforms["xen"]
    legacy = next(c for c in xen.configs if getattr(c, "name", "") == "legacy")
    assert legacy.lists["vfb"] == ["vnc=1,vnclisten=0.0.0.0,vncpasswd=<redacted>"]
    again = load_snapshot(snapshot)
    assert again.platforms["xen"] == xen
    out = tmp_path / "facts.json"
    other = tree("hardened", tmp_path)
    for args in (("scan", "--root", str(root), "--format", "json"), ("scan", "--root", str(root)),
                 ("collect", "--root", str(root), "-o", str(out)), ("scan", "--root", str(other), "--format", "json"),
                 ("scan", "--root", str(other), "--format", "sarif")):
        done = hyperward(*args)
        assert "Traceback" not in done.stderr
        text = done.stdout + done.stderr + (out.read_text() if out.exists() else "")
        assert not [s for s in SECRETS if s in text], args


# --- the live path, with a fake xl ----------------------------------------------------------------


#: tools/xl/xl_info.c: the fields `xl info` prints, in its order
XL_INFO_FIELDS = [
    "host", "release", "version", "machine",
    "nr_cpus", "max_cpu_id", "nr_nodes", "cores_per_socket", "threads_per_core", "cpu_mhz", "hw_caps", "virt_caps",
    "total_memory", "free_memory", "sharing_freed_memory", "sharing_used_memory", "outstanding_claims", "free_cpus",
    "xen_major", "xen_minor", "xen_extra", "xen_version", "xen_caps", "xen_scheduler", "xen_pagesize", "platform_params",
    "xen_changeset", "xen_commandline", "cc_compiler", "cc_compile_by", "cc_compile_domain", "cc_compile_date", "build_id",
    "xend_config_format",
]
VIRT_CAPS_ORDER = ["pv", "hvm", "hvm_directio", "pv_directio", "hap", "shadow", "iommu_hap_pt_share", "vmtrace", "vpmu",
                   "gnttab-v1", "gnttab-v2"]


def test_the_recorded_outputs_have_xens_own_format():
    lines = (FIXTURES / "recorded/xl-info.txt").read_text().splitlines()
    assert [line[:23].rstrip() for line in lines] == XL_INFO_FIELDS
    assert all(line[23:25] == ": " or line[23:] == ":" for line in lines)  # "%-23s: %s\n"
    caps = {line[:23].rstrip(): line[25:] for line in lines}["virt_caps"].split()
    assert caps == sorted(caps, key=VIRT_CAPS_ORDER.index)
    text = (FIXTURES / "recorded/xl-list-l.json").read_text()
    doc = json.loads(text)
    assert "{}" not in text and "{\n\n" in text  # yajl's beautified empty map
    web = doc[1]["config"]
    assert list(web) == ["c_info", "b_info", "disks", "nics", "pcidevs", "on_poweroff", "on_reboot", "on_watchdog",
                         "on_crash", "on_soft_reset"]  # libxl_domain_config's field order
    assert web["pcidevs"] == [{"bus": 3, "permissive": True}]  # 0000:03:00.0: the zeros are left out
    assert "backend_domid" not in json.dumps(doc)  # every backend here is dom0 (0) or named


def _fake_xenhypfs(tmp_path: pathlib.Path, values: dict[str, str]) -> str:
    script = tmp_path / "bin/xenhypfs"
    script.parent.mkdir(exist_ok=True)
    cases = "".join(f'  "{path}") echo "{value}" ;;\n' for path, value in values.items())
    script.write_text('#!/bin/sh\n[ "$1" = cat ] || exit 1\ncase "$2" in\n' + cases +
                      '  *) echo "could not read: No such file or directory" >&2; exit 3 ;;\nesac\n')
    script.chmod(0o755)
    return str(script)


def _fake_xl(tmp_path: pathlib.Path, enforce: str = "Permissive") -> str:
    recorded = FIXTURES / "recorded"
    script = tmp_path / "bin/xl"
    script.parent.mkdir(exist_ok=True)
    script.write_text("#!/bin/sh\n"
                      f'case "$1" in\n'
                      f'  info) cat "{recorded}/xl-info.txt" ;;\n'
                      f'  list) [ "$2" = "-l" ] && cat "{recorded}/xl-list-l.json" ;;\n'
                      f'  getenforce) echo "{enforce}" ;;\n'
                      '  *) echo "unknown command" >&2; exit 1 ;;\n'
                      "esac\n")
    script.chmod(0o755)
    return str(script)


def test_live_dom0_reads_xl_info_and_the_running_domains(tmp_path):
    root = tree("weak", tmp_path)
    (root / "sys/hypervisor").mkdir(parents=True)
    (root / "sys/hypervisor/type").write_text("xen\n")
    facts = collect(RootFS(str(root)), xl=_fake_xl(tmp_path), live=True)
    assert isinstance(facts.xl_info, dict) and facts.xl_info["xen_version"] == "4.17.3-pre"
    assert facts.sys_hypervisor == {"type": "xen"} and facts.getenforce == "Permissive"
    running = facts.cmdlines[0]
    assert isinstance(running, XenCmdline) and running.running and running.source == "xl info (xen_commandline)"
    assert running.tokens == ["placeholder", "dom0_mem=4096M,max:4096M", "no-xpti", "smt=1"]
    assert isinstance(facts.running, list) and [d.name for d in facts.running] == ["web", "scratch"]
    web = facts.running[0]
    assert web.also == "/etc/xen/web.cfg" and web.autostart and web.domid == 7
    assert [g.name for g in facts.guests()] == ["web", "scratch", "gpu", "legacy", "netdd"]
    assert web.lists["vif"] == ["mac=00:16:3e:10:00:01,bridge=xenbr0,script=vif-bridge,backend=netdd,untrusted"]
    assert web.lists["disk"] == ["vdev=xvda,access=rw,format=raw,target=/dev/vg/web"]
    # netdd (defined, not running) serves web's vif as it runs, marked untrusted, and legacy's, trusted
    [netdd] = [r for r in JUDGES["HV-ISO-059"](facts) if r.resource == "netdd"]
    assert netdd.status is Status.FAIL and "web vif[0], legacy vif[0]" in netdd.message
    assert "legacy vif[0] trusts it" in netdd.message and "web vif[0] trusts" not in netdd.message
    # web runs hardened (dm_restrict, loopback, passwords) though its file is weak: the running domain is judged
    assert judged(facts, "HV-ISO-054")["web"] is Status.PASS
    assert judged(facts, "HV-AUTH-050")["web"] is Status.PASS and judged(facts, "HV-AUTH-051")["web"] is Status.PASS
    assert failing(facts, "HV-ISO-052") == {"web", "legacy", "netdd"}  # permissive in the running pcidevs too
    assert failing(facts, "HV-AUTH-050") == {"scratch", "legacy"}
    assert failing(facts, "HV-ISO-057") == {"scratch", "legacy"} and failing(facts, "HV-ISO-055") == {"scratch", "legacy"}
    assert failing(facts, "HV-SIDE-051") == {"xl info (xen_commandline)", GRUB}
    assert judged(facts, "HV-SIDE-053")["xl info (xen_commandline)"] is Status.FAIL  # two threads per core, smt=1
    assert judged(facts, "HV-ISO-051")["xl info (xen_commandline)"] is Status.FAIL  # xl getenforce: Permissive
    assert PLATFORM.iommu_state(facts) == (True, "xl info virt_caps: directio")
    text = json.dumps(to_jsonable(facts))
    assert "vncpasswd" in text and not [s for s in SECRETS if s in text]  # set is a fact; the value is not kept
    assert _from_jsonable(XenFacts, json.loads(text), "xen") == facts


def test_live_xl_failures_are_named(tmp_path):
    root = tree("hardened", tmp_path)
    script = tmp_path / "xl"
    script.write_text('#!/bin/sh\nif [ "$1" = info ]; then echo "xc: error: Could not obtain handle on privileged command interface" >&2; exit 1; fi\n'
                      'if [ "$1" = list ]; then echo "(domain (domid 0))"; fi\n')
    script.chmod(0o755)
    facts = collect(RootFS(str(root)), xl=str(script), live=True)
    assert isinstance(facts.xl_info, Unavailable) and "privileged command interface" in facts.xl_info.reason
    assert isinstance(facts.running, Unavailable) and "SXP" in facts.running.reason
    assert {r.resource for r in JUDGES["HV-ISO-056"](facts) if r.status is Status.ERROR} == {"xl list -l"}


# --- packages feed the existing patching and advisory checks -------------------------------------


def test_xen_packages_are_virt_stack_and_matched_by_source(tmp_path):
    for name in ("xen-hypervisor-4.17-amd64", "xen-utils-4.17", "xen-utils-common", "libxenmisc4.17", "xenstore-utils"):
        assert is_virt_stack(name), name
    tracker = tmp_path / "tracker.json"
    tracker.write_text(json.dumps({"xen": {"CVE-2024-31142": {
        "description": "x86: Incorrect logic for BTC/SRSO mitigations (XSA-455)", "scope": "local",
        "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "4.17.3+36-g54dacb5c02-1"},
                                  "fixed_version": "4.17.3+36-g54dacb5c02-1", "urgency": "medium"}}}}}))
    db = tmp_path / "db.sqlite"
    conn = vulndb.open_for_writing(str(db))
    vulndb.import_path(conn, str(tracker))
    conn.close()
    packages = [Package("xen-hypervisor-4.17-amd64", "amd64", "4.17.3+10-g091466ba55-1~deb12u1", "xen", "4.17.3+10-g091466ba55-1~deb12u1", "deb"),
                Package("xen-utils-4.17", "amd64", "4.17.3+10-g091466ba55-1~deb12u1", "xen", "4.17.3+10-g091466ba55-1~deb12u1", "deb")]
    matched = vulndb.match(vulndb.open_read_only(str(db)), "db", "debian", "12", packages, [])
    [m] = matched.matches
    assert (m.cve, m.source, m.package) == ("CVE-2024-31142", "xen", "xen-hypervisor-4.17-amd64,xen-utils-4.17")
    fixed = [Package(p.name, p.arch, "4.17.3+36-g54dacb5c02-1", "xen", "4.17.3+36-g54dacb5c02-1", "deb") for p in packages]
    assert vulndb.match(vulndb.open_read_only(str(db)), "db", "debian", "12", fixed, []).matches == []


def test_dpkg_status_of_a_dom0_reaches_hv_vuln_001(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        "Package: xen-hypervisor-4.17-amd64\nStatus: install ok installed\nArchitecture: amd64\n"
        "Source: xen\nVersion: 4.17.3+10-g091466ba55-1~deb12u1\n\n"
        "Package: xen-utils-common\nStatus: install ok installed\nArchitecture: all\n"
        "Source: xen\nVersion: 4.17.3+10-g091466ba55-1~deb12u1\n\n")
    tracker = tmp_path / "tracker.json"
    tracker.write_text(json.dumps({"xen": {"CVE-2024-31142": {"description": "XSA-455", "scope": "local", "releases": {"bookworm": {
        "status": "resolved", "repositories": {"bookworm": "4.17.3+36-g54dacb5c02-1"}, "fixed_version": "4.17.3+36-g54dacb5c02-1",
        "urgency": "medium"}}}}}))
    db = tmp_path / "db.sqlite"
    conn = vulndb.open_for_writing(str(db))
    vulndb.import_path(conn, str(tracker))
    conn.close()
    os.environ["HYPERWARD_VULNDB"], saved = str(db), os.environ["HYPERWARD_VULNDB"]
    try:
        report = scan(root, only=["HV-VULN-001"])
    finally:
        os.environ["HYPERWARD_VULNDB"] = saved
    fails = {f.result.resource: f.result.message for f in report.findings if f.status is Status.FAIL}
    assert "CVE-2024-31142 xen" in fails and "xen-hypervisor-4.17-amd64" in fails["CVE-2024-31142 xen"]


# --- one change at a time on a hardened guest ----------------------------------------------------

GUEST_ROWS = [
    # (line added to the hardened app.cfg, the check that must fail it, a fragment of its message)
    ('vncpasswd = ""', "HV-AUTH-050", "without a password"),
    ('vnclisten = "0.0.0.0:3"', "HV-AUTH-050", "on 0.0.0.0"),
    ('vnclisten = "[::]:1"', "HV-AUTH-050", "on ::"),
    ("spice = 1\nspicepasswd = 'x'", "HV-AUTH-051", "SPICE on 0.0.0.0 (spicehost unset: any interface)"),
    ("spice = 1\nspicehost = '127.0.0.1'\nspicedisable_ticketing = 1", "HV-AUTH-051", "spicedisable_ticketing=1"),
    ("spice = 1\nspicehost = '127.0.0.1'", "HV-AUTH-051", "without spicepasswd"),
    ("pci = [ '0000:02:00.0,permissive=1' ]", "HV-ISO-052", "permissive"),
    ("pci_permissive = 1\npci = [ '02:00.0' ]", "HV-ISO-052", "02:00.0: permissive"),
    ("pci_seize = 1\npci = [ '02:00.0' ]", "HV-ISO-052", "seize"),
    ('gfx_passthru = "igd"', "HV-ISO-053", "gfx_passthru=igd"),
    ("dm_restrict = 0", "HV-ISO-054", "runs in dom0 as root"),
    ('device_model_user = "root"', "HV-ISO-054", "device_model_user=root"),
    ("msr_relaxed = 1", "HV-ISO-056", "msr_relaxed=1"),
    ("iomem = [ 'fed40,1@fed40' ]", "HV-ISO-057", "iomem: fed40,1@fed40"),
    ("ioports = [ '3f8-3ff' ]", "HV-ISO-057", "ioports: 3f8-3ff"),
    ("irqs = [ 4, 0x10 ]", "HV-ISO-057", "irqs: 4, 0x10"),
    ("seclabel = ''", "HV-ISO-058", "no seclabel"),
]


@pytest.mark.parametrize("line, check_id, fragment", GUEST_ROWS)
def test_one_guest_setting_fails_one_row(tmp_path, line, check_id, fragment):
    root = tree("hardened", tmp_path)
    app = root / "etc/xen/app.cfg"
    app.write_text(app.read_text() + line + "\n")
    facts = collect(RootFS(str(root)))
    results = {r.resource: r for r in JUDGES[check_id](facts)}
    assert results["app"].status is Status.FAIL and fragment in results["app"].message, results["app"].message
    assert {name for name, r in results.items() if r.status is Status.FAIL} == {"app"}


NEUTRAL_ROWS = [
    ("nestedhvm = 1", "HV-NEST-002"),
    ("serial = [ 'telnet:0.0.0.0:4444,server,nowait' ]", "HV-AUTH-011"),
    ("spice = 1\nspicehost = '127.0.0.1'\nspicepasswd = 'x'\nspicevdagent = 1\nspice_clipboard_sharing = 1", "HV-ISO-026"),
    ("spice = 1\nspicehost = '127.0.0.1'\nspicepasswd = 'x'\nspiceusbredirection = 1", "HV-ISO-026"),
    ("vtpm = [ ]", "HV-TPM-005"),
    ('vnclisten = "0.0.0.0"\nvncpasswd = ""', "HV-AUTH-010"),
]


@pytest.mark.parametrize("line, check_id", NEUTRAL_ROWS)
def test_one_guest_setting_fails_one_neutral_row(tmp_path, line, check_id):
    root = tree("hardened", tmp_path)
    before = {f.result.resource: f.status for f in scan(root, only=[check_id]).findings if f.result.platform == "xen"}
    assert before.get("app") is not Status.FAIL
    app = root / "etc/xen/app.cfg"
    app.write_text(app.read_text() + line + "\n")
    after = {f.result.resource: f.status for f in scan(root, only=[check_id]).findings if f.result.platform == "xen"}
    assert after["app"] is Status.FAIL
    assert {r for r, s in after.items() if s is Status.FAIL} - {r for r, s in before.items() if s is Status.FAIL} == {"app"}


def test_the_tokenizer_only_ever_raises_parse_errors():
    import random

    rng = random.Random(17)
    alphabet = "name=[]'\",;#\n\t +-.():\\x0aZ\r\x00\x1b"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        try:
            parsers.parse_xl_cfg(text)
        except parsers.ParseError:
            pass
    deep = "name = 'x'\nv = " + "[" * 100 + "]" * 100 + "\n"
    with pytest.raises(parsers.ParseError, match="nested deeper"):
        parsers.parse_xl_cfg(deep)


def test_hostile_guest_names_reach_the_terminal_escaped(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/xen/evil.cfg").write_text('name = "evil\x1b[2J\x1b]0;pwned\x07"\ntype = "hvm"\nmsr_relaxed = 1\n')
    done = hyperward("scan", "--root", str(root), "--only", "HV-ISO-056")
    assert "\x1b[2J" not in done.stdout and "\x1b]0;" not in done.stdout and "\x07" not in done.stdout
    assert "evil" in done.stdout and "Traceback" not in done.stderr


def test_the_auto_directory_marks_autostart_and_names_its_broken_links(tmp_path):
    root = tree("hardened", tmp_path)
    auto = root / "etc/xen/auto"
    (auto / "loop.cfg").symlink_to("loop.cfg")
    (auto / "gone.cfg").symlink_to("../gone.cfg")
    (auto / "outside").symlink_to("/etc/xen/stub.cfg")  # absolute: resolved inside the audited root
    facts = collect(RootFS(str(root)))
    good = {c.name: c.autostart for c in facts.configs if not isinstance(c, Unavailable)}
    assert good == {"app": True, "db": True, "desk": False, "router": False, "stub": True}
    bad = {u.path for u in facts.configs if isinstance(u, Unavailable)}
    assert bad == {"/etc/xen/auto/loop.cfg", "/etc/xen/auto/gone.cfg"}
    (root / "etc/default/xendomains").write_text('XENDOMAINS_AUTO="/srv/xen-auto"\n')
    (root / "srv/xen-auto").mkdir(parents=True)
    (root / "srv/xen-auto/desk.cfg").symlink_to("/etc/xen/desk.cfg")
    facts = collect(RootFS(str(root)))
    assert {c.name for c in facts.configs if not isinstance(c, Unavailable) and c.autostart} == {"desk"}


def test_a_dom0_whose_xen_found_no_iommu_fails_the_booted_line(tmp_path):
    root = tree("hardened", tmp_path)
    recorded = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recorded", recorded)
    info = recorded / "xl-info.txt"
    info.write_text(info.read_text().replace("hvm hvm_directio pv_directio hap", "hvm hap"))
    script = tmp_path / "xl"
    script.write_text(f'#!/bin/sh\n[ "$1" = info ] && cat "{info}"\n[ "$1" = list ] && echo "[]"\nexit 0\n')
    script.chmod(0o755)
    facts = collect(RootFS(str(root)), xl=str(script), live=True)
    results = {r.resource: r for r in JUDGES["HV-ISO-050"](facts)}
    assert results["xl info (xen_commandline)"].status is Status.FAIL
    assert "no IOMMU active" in results["xl info (xen_commandline)"].message
    assert results[GRUB].status is Status.PASS
    assert PLATFORM.iommu_state(facts)[0] is False


def test_xm_vfb_type_and_legacy_disk_prefixes(tmp_path):
    root = tree("hardened", tmp_path)
    (root / "etc/xen/oldpv.cfg").write_text(
        "name = 'oldpv'\nkernel = '/boot/vmlinuz'\n"
        "vfb = [ 'type=sdl', 'type=vnc,vnclisten=0.0.0.0,vncunused=1' ]\n"
        "disk = [ 'tap:aio:/srv/xen/oldpv.img,xvda,w', 'file:/srv/xen/swap.img,xvdb,w!', 'phy:/dev/sr0,hdc:cdrom,r' ]\n")
    facts = collect(RootFS(str(root)))
    assert failing(facts, "HV-AUTH-050") == {"oldpv"}
    assert "VNC (vfb[1]) on 0.0.0.0 without a password" in {r.resource: r for r in JUDGES["HV-AUTH-050"](facts)}["oldpv"].message
    [guest] = [g for g in to_guests(facts) if g.name == "oldpv"]
    assert [(d.source, d.readonly, d.device) for d in guest.disks] == [
        ("/srv/xen/oldpv.img", False, "disk"), ("/srv/xen/swap.img", False, "disk"), ("/dev/sr0", True, "cdrom")]


def test_a_snapshot_of_a_dom0_is_judged_like_its_root(tmp_path):
    root = tree("weak", tmp_path)
    snapshot = tmp_path / "facts.json"
    assert hyperward("collect", "--root", str(root), "-o", str(snapshot)).returncode == 0
    only = ",".join(JUDGES)
    from_root = json.loads(hyperward("scan", "--root", str(root), "--only", only, "--format", "json").stdout)["results"]
    from_snapshot = json.loads(hyperward("scan", "--snapshot", str(snapshot), "--only", only, "--format", "json").stdout)["results"]

    def rows(results: list[dict[str, str]]) -> set[tuple[str, str, str]]:
        return {(r["id"], r["resource"], r["status"]) for r in results}

    assert rows(from_root) == rows(from_snapshot) and ("HV-AUTH-050", "web", "fail") in rows(from_root)


def test_detect_markers_are_the_collectors_paths():
    """The package's detect() names its markers itself (so a scan need not import the collector):
    they must stay the collector's own paths."""
    from hyperward.platforms.xen import XEN_MARKERS
    from hyperward.platforms.xen.collect import AUTO_DIR, XL_PATHS
    from hyperward.platforms.xen.facts import XEN_DIR

    assert set(XEN_MARKERS) == {f"{XEN_DIR}/xl.conf", AUTO_DIR, "/etc/default/xendomains", *XL_PATHS}
