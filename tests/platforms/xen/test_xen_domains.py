"""Xen (issue 17), second round: driver domains (HV-ISO-059), xl.conf's defaults as the guests'
effective values and its autoballoon (HV-ISO-060), live hypervisor values that `xl set-parameters`
changes (read with xenhypfs), and GRUB's defaults read once for the kernel and Xen command lines.

Each case changes one setting of the committed hardened tree (tests/fixtures/xen) and asserts the
exact domains that fail. Xen cannot run here: the live path uses fake `xl` and `xenhypfs` scripts
(see test_xen.py's docstring for the recorded formats they print, and xenhypfs.c's `cat`).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest
from conftest import REPO

from hyperward.collect import collect_host
from hyperward.collect.fs import DEFAULT_LIMIT, RootFS
from hyperward.facts import _from_jsonable, to_jsonable
from hyperward.model import Status, Unavailable
from hyperward.platforms.xen import PLATFORM
from hyperward.platforms.xen.checks import JUDGES
from hyperward.platforms.xen.collect import collect, running_domain
from hyperward.platforms.xen.facts import XenFacts
from hyperward.platforms.xen.guests import to_guests

FIXTURES = REPO / "tests/fixtures/xen"
GRUB = "/etc/default/grub (with grub.d)"
BOOTED = "xl info (xen_commandline)"


def tree(name: str, tmp: pathlib.Path) -> pathlib.Path:
    root = tmp / name
    shutil.copytree(FIXTURES / name, root, symlinks=True)
    return root


def results(facts: XenFacts, check_id: str) -> dict[str, tuple[Status, str]]:
    return {r.resource: (r.status, r.message) for r in JUDGES[check_id](facts)}


def failing(facts: XenFacts, check_id: str) -> set[str]:
    return {r.resource for r in JUDGES[check_id](facts) if r.status is Status.FAIL}


def edit(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


# --- driver domains -------------------------------------------------------------------------------

ROUTER = "etc/xen/router.cfg"
DB_VIF = "vif = [ 'mac=00:16:3e:20:00:02,bridge=xenbr1,backend=router,untrusted' ]"

DRIVER_ROWS = [
    # (file, old text, new text, the driver domain that must fail, a fragment of its message)
    (ROUTER, "pci = [ '0000:07:00.0' ]", "pci = [ '0000:07:00.0,permissive=1' ]", "router",
     "0000:07:00.0 passed through permissive"),
    (ROUTER, "pci = [ '0000:07:00.0' ]", "pci_permissive = 1\npci = [ '0000:07:00.0' ]", "router",
     "0000:07:00.0 passed through permissive"),
    ("etc/default/grub.d/xen.cfg", "iommu=force", "iommu=no", "router",
     "PCI devices passed through while Xen runs without an IOMMU"),
    (ROUTER, 'type = "pv"', 'type = "hvm"', "router", "its QEMU (HVM device model) runs in dom0 as root"),
    (ROUTER, "seclabel = 'system_u:system_r:domU_t'", "", "router", "no seclabel under FLASK"),
    ("etc/xen/db.cfg", DB_VIF, DB_VIF.replace(",untrusted", ""), "router", "db vif[0] trusts it (not marked untrusted)"),
    ("etc/xen/desk.cfg", "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=/var/lib/xen/images/desk.qcow2' ]",
     "disk = [ 'format=qcow2,vdev=xvda,access=rw,backend=router,target=/var/lib/xen/images/desk.qcow2' ]", "router",
     "desk disk[0] trusts it"),
    ("etc/xen/xl.conf", '#vif.default.backend="0"', 'vif.default.backend="router"', "router",
     "app vif[0] trusts it"),  # every vif naming no backend is now served by router, none marked untrusted
]


@pytest.mark.parametrize("rel, old, new, domain, fragment", DRIVER_ROWS)
def test_one_change_makes_the_driver_domain_fail(tmp_path, rel, old, new, domain, fragment):
    root = tree("hardened", tmp_path)
    before = results(collect(RootFS(str(root))), "HV-ISO-059")
    assert before["router"][0] is Status.PASS, before["router"]
    edit(root / rel, old, new)
    after = results(collect(RootFS(str(root))), "HV-ISO-059")
    assert {name for name, (status, _m) in after.items() if status is Status.FAIL} == {domain}
    assert fragment in after[domain][1], after[domain][1]


def test_the_driver_domain_result_names_what_it_serves(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", '#vif.default.backend="0"', 'vif.default.backend="router"')
    status, message = results(collect(RootFS(str(root))), "HV-ISO-059")["router"]
    assert status is Status.FAIL  # app's and desk's vifs trust it
    # router's own vif names no backend either: it would serve itself, which is not a frontend of its own
    assert message.startswith("driver domain for app vif[0], db vif[0], desk vif[0]: "), message  # stub has no vif
    assert "router vif[0]" not in message and "db vif[0] trusts" not in message


def test_untrusted_disks_and_flags_before_the_target(tmp_path):
    """xl-disk-configuration(5)'s bare flags (`untrusted`, `discard`...) are never the target."""
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/desk.cfg", "disk = [ 'format=qcow2,vdev=xvda,access=rw,target=/var/lib/xen/images/desk.qcow2' ]",
         "disk = [ 'untrusted,discard,/var/lib/xen/images/desk.qcow2,qcow2,xvda,rw,backend=router' ]")
    facts = collect(RootFS(str(root)))
    assert results(facts, "HV-ISO-059")["router"][0] is Status.PASS
    [desk] = [g for g in to_guests(facts) if g.name == "desk"]
    assert [(d.source, d.format, d.target) for d in desk.disks] == [("/var/lib/xen/images/desk.qcow2", "qcow2", "xvda")]


@pytest.mark.parametrize("backend", ["0", "Domain-0", ""])
def test_dom0_by_any_name_is_no_driver_domain(tmp_path, backend):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/db.cfg", DB_VIF, DB_VIF.replace("backend=router", f"backend={backend}"))
    edit(root / ROUTER, "driver_domain = 1\n", "")
    assert "router" not in results(collect(RootFS(str(root))), "HV-ISO-059")


def test_a_backend_that_is_no_known_domain_is_not_applicable_by_its_name(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/db.cfg", DB_VIF, DB_VIF.replace("backend=router", "backend=storage-dd"))
    got = results(collect(RootFS(str(root))), "HV-ISO-059")
    status, message = got["storage-dd"]
    assert status is Status.NOT_APPLICABLE and "db vif[0]" in message and "isolation is unknown" in message
    assert got["router"] == (Status.PASS, ("driver domain for no device found yet (driver_domain=1): held like an untrusted "
                                           "guest, its frontends mark it untrusted"))


def test_no_driver_domain_at_all(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/db.cfg", DB_VIF, DB_VIF.replace(",backend=router,untrusted", ""))
    edit(root / ROUTER, "driver_domain = 1\n", "")
    for name in ("app", "db", "desk", "router", "stub"):
        cfg = root / f"etc/xen/{name}.cfg"
        cfg.write_text("\n".join(line for line in cfg.read_text().splitlines() if not line.startswith("vtpm")) + "\n")
    [only] = list(JUDGES["HV-ISO-059"](collect(RootFS(str(root)))))
    assert only.status is Status.NOT_APPLICABLE and "dom0 serves every device" in only.message


def test_running_domains_name_their_backend_by_domid():
    """libxl's JSON gives backend_domid when no name was given (and nothing for dom0)."""
    doc = {"domid": 12, "config": {
        "c_info": {"type": "pv", "name": "tenant"},
        "b_info": {"sched_params": {}, "type.pv": {}, "arch_arm": {}, "arch_x86": {}},
        "disks": [{"backend_domid": 3, "pdev_path": "/dev/xvdb", "vdev": "xvda", "backend": "phy", "format": "raw", "readwrite": 1},
                  {"pdev_path": "/srv/cd.iso", "vdev": "xvdc", "backend": "qdisk", "format": "raw", "is_cdrom": 1}],
        "nics": [{"backend_domid": 3, "devid": 0, "mac": "00:16:3e:00:00:0c", "bridge": "br-dd", "trusted": "False"}],
        "p9s": [{"backend_domname": "fsdd", "tag": "share", "path": "/srv/share", "security_model": "none", "devid": 0}]}}
    tenant = running_domain(doc)
    assert tenant is not None
    assert tenant.lists["disk"] == ["vdev=xvda,access=rw,format=raw,backend=3,target=/dev/xvdb",
                                    "vdev=xvdc,access=r,devtype=cdrom,format=raw,target=/srv/cd.iso"]
    assert tenant.lists["vif"] == ["mac=00:16:3e:00:00:0c,bridge=br-dd,backend=3,untrusted"]
    assert tenant.lists["p9"] == ["tag=share,path=/srv/share,security_model=none,backend=fsdd"]
    dd = running_domain({"domid": 3, "config": {"c_info": {"type": "pv", "name": "storedd", "driver_domain": "True"},
                                                "b_info": {}, "pcidevs": [{"bus": 5, "func": 1, "permissive": True}]}})
    assert dd is not None and dd.lists["pci"] == ["0000:05:00.1,permissive=1"] and dd.get("driver_domain") == "1"
    facts = XenFacts(True, [], [tenant, dd], [], {}, {}, {}, None, None)
    got = results(facts, "HV-ISO-059")
    assert set(got) == {"storedd", "fsdd"} and got["fsdd"][0] is Status.NOT_APPLICABLE
    status, message = got["storedd"]
    assert status is Status.FAIL and message.startswith("driver domain for tenant disk[0], tenant vif[0]: ")
    assert "0000:05:00.1 passed through permissive" in message and "tenant disk[0] trusts it" in message
    assert "tenant vif[0] trusts" not in message


# --- xl.conf --------------------------------------------------------------------------------------


def test_xl_conf_vif_defaults_are_the_guests_effective_values(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", 'vif.default.bridge="xenbr0"', 'defaultbridge="xenbr7"\nvif.default.bridge="xenbr9"')
    (root / "etc/xen/plain.cfg").write_text("name = 'plain'\ntype = 'pvh'\nkernel = '/boot/k'\nvif = [ 'mac=00:16:3e:30:00:01' ]\n"
                                            "seclabel = 'system_u:system_r:domU_t'\n")
    facts = collect(RootFS(str(root)))
    [plain] = [g for g in to_guests(facts) if g.name == "plain"]
    assert [(n.attachment, n.source) for n in plain.nics] == [("bridge", "xenbr9")]  # vif.default.bridge wins over defaultbridge
    assert PLATFORM.guest_bridges(facts) == ["xenbr1", "xenbr9"]  # db's vif joins xenbr1 inside router, the others dom0's
    edit(root / "etc/xen/xl.conf", 'vif.default.bridge="xenbr9"', 'vif.default.script="/etc/xen/scripts/vif-route"')
    facts = collect(RootFS(str(root)))
    [plain] = [g for g in to_guests(facts) if g.name == "plain"]
    assert [(n.attachment, n.source) for n in plain.nics] == [("vif-route", None)]  # routed: no bridge at all
    assert "xenbr7" not in PLATFORM.guest_bridges(facts)  # defaultbridge applies to vif-bridge only


def test_xl_conf_is_not_applied_again_to_a_running_domain(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", 'vif.default.bridge="xenbr0"', 'vif.default.bridge="xenbr9"\nvif.default.backend="router"')
    running = running_domain({"domid": 4, "config": {"c_info": {"type": "pvh", "name": "live1"}, "b_info": {},
                                                     "nics": [{"devid": 0, "mac": "00:16:3e:30:00:09", "bridge": "xenbr0"}]}})
    assert running is not None
    files = collect(RootFS(str(root)))
    facts = XenFacts(True, files.configs, [running], files.cmdlines, files.xl_conf, files.default_xen, files.xendomains, None, None)
    [live1] = [g for g in to_guests(facts) if g.name == "live1"]
    assert [n.source for n in live1.nics] == ["xenbr0"]
    assert "live1 vif[0]" not in results(facts, "HV-ISO-059")["router"][1]


AUTOBALLOON = [
    # (xl.conf autoballoon line, GRUB_CMDLINE_XEN, status)
    ('autoballoon="on"', "dom0_mem=4096M,max:4096M", Status.FAIL),
    ("autoballoon=1", "dom0_mem=max:8G", Status.FAIL),
    ('autoballoon="1"', "console=vga dom0_mem=2048M", Status.FAIL),
    ('autoballoon="on"', "console=vga", Status.PASS),
    ('autoballoon="on"', "dom0_mem=-512M", Status.PASS),  # not what xl.c's pattern calls dom0_mem
    ('autoballoon="off"', "dom0_mem=4096M", Status.PASS),
    ('autoballoon="auto"', "dom0_mem=4096M", Status.PASS),
    ("", "dom0_mem=4096M", Status.PASS),
    ('autoballoon="yes"', "dom0_mem=4096M", Status.PASS),  # xl: "invalid autoballoon option", stays auto
]


@pytest.mark.parametrize("line, cmdline, status", AUTOBALLOON)
def test_autoballoon_against_dom0_mem(tmp_path, line, cmdline, status):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", 'autoballoon="auto"', line)
    edit(root / "etc/default/grub", 'GRUB_CMDLINE_XEN="dom0_mem=4096M,max:4096M"', f'GRUB_CMDLINE_XEN="{cmdline}"')
    [result] = list(JUDGES["HV-ISO-060"](collect(RootFS(str(root)))))
    assert (result.resource, result.status) == ("/etc/xen/xl.conf", status), result.message
    if status is Status.FAIL:
        assert f"while dom0_mem is set ({GRUB})" in result.message


def test_autoballoon_without_a_command_line_or_xl_conf(tmp_path):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", 'autoballoon="auto"', 'autoballoon="on"')
    (root / "etc/default/grub").unlink()
    shutil.rmtree(root / "etc/default/grub.d")
    [result] = list(JUDGES["HV-ISO-060"](collect(RootFS(str(root)))))
    assert result.status is Status.NOT_APPLICABLE and "no Xen command line" in result.message
    (root / "etc/xen/xl.conf").unlink()
    [result] = list(JUDGES["HV-ISO-060"](collect(RootFS(str(root)))))
    assert result.status is Status.PASS and "autoballoon=auto" in result.message  # xl's own default
    (root / "etc/xen/xl.conf").write_text('autoballoon = "on\n')
    [result] = list(JUDGES["HV-ISO-060"](collect(RootFS(str(root)))))
    assert result.status is Status.ERROR and result.resource == "/etc/xen/xl.conf" and "unterminated string" in result.message


# --- pygrub in dom0 ----------------------------------------------------------------------------------

BOOTLOADER = [
    # (xl.conf bootloader_restrict line, line added to router.cfg, status, fragment)
    ("bootloader_restrict=1", "", Status.PASS, "pygrub restricted (xl.conf bootloader_restrict=1)"),
    ("", "", Status.FAIL, "pygrub runs as root in dom0 on the guest's own disk (no bootloader_restrict in the guest or xl.conf)"),
    ("bootloader_restrict=0", "", Status.FAIL, "(xl.conf bootloader_restrict=0)"),
    ("bootloader_restrict=1", "bootloader_restrict = 0", Status.FAIL, "(bootloader_restrict=0)"),  # the guest's own wins
    ("", "bootloader_restrict = 1", Status.PASS, "pygrub restricted (bootloader_restrict=1)"),
    ("", 'bootloader_user = "xen-bl-router"', Status.PASS, "bootloader_user set (implies bootloader_restrict)"),
    ("", 'bootloader = "/usr/lib/xen-4.17/bin/pygrub"', Status.FAIL, "pygrub runs as root"),  # Debian's path
    ("", 'type = "hvm"', None, ""),  # HVM firmware boots itself: nothing runs in dom0
    ("", 'bootloader = "/usr/local/bin/my-loader"', Status.NOT_APPLICABLE, "is not pygrub"),
]


@pytest.mark.parametrize("conf, line, status, fragment", BOOTLOADER)
def test_pygrub_restriction(tmp_path, conf, line, status, fragment):
    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/xl.conf", "bootloader_restrict=1", conf)
    router = root / ROUTER
    router.write_text(router.read_text() + line + "\n")
    got = results(collect(RootFS(str(root))), "HV-ISO-061")
    if status is None:
        assert got == {"host": (Status.NOT_APPLICABLE, "no PV or PVH guest boots through a bootloader in dom0")}
        return
    assert set(got) == {"router"} and got["router"][0] is status and fragment in got["router"][1], got


def test_a_bootloader_user_shared_by_two_guests_fails_both(tmp_path):
    root = tree("hardened", tmp_path)
    router = root / ROUTER
    router.write_text(router.read_text() + 'bootloader_user = "xen-bl"\n')
    (root / "etc/xen/router2.cfg").write_text(router.read_text().replace('name = "router"', 'name = "router2"'))
    got = results(collect(RootFS(str(root))), "HV-ISO-061")
    assert {n for n, (st, _m) in got.items() if st is Status.FAIL} == {"router", "router2"}
    assert got["router"][1] == "bootloader_user=xen-bl shared with router2 (each domain needs its own user)"


def test_a_running_domain_is_judged_by_its_stored_bootloader_settings():
    def domain(name: str, **b_info: str) -> dict[str, object]:
        return {"domid": 5, "config": {"c_info": {"type": "pv", "name": name}, "b_info": {"bootloader": "pygrub", **b_info}}}

    plain, tight = running_domain(domain("plain")), running_domain(domain("tight", bootloader_restrict="True"))
    assert plain is not None and tight is not None and tight.get("bootloader_restrict") == "1"
    facts = XenFacts(True, [], [plain, tight], [], {"bootloader_restrict": "1"}, {}, {}, None, None)
    got = results(facts, "HV-ISO-061")  # xl.conf's default is never applied again to a running domain
    assert got["plain"][0] is Status.FAIL and got["tight"][0] is Status.PASS


# --- live values xl set-parameters changes ---------------------------------------------------------


def _fakes(tmp_path: pathlib.Path, cmdline: str, hypfs: dict[str, str] | None) -> tuple[str, str | None]:
    recorded = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recorded", recorded)
    info = recorded / "xl-info.txt"
    edit(info, "placeholder dom0_mem=4096M,max:4096M no-xpti smt=1", cmdline)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    xl = bindir / "xl"
    xl.write_text(f'#!/bin/sh\ncase "$1" in\n  info) cat "{info}" ;;\n  list) echo "[]" ;;\n  getenforce) echo Enforcing ;;\n'
                  '  *) exit 1 ;;\nesac\n')
    xl.chmod(0o755)
    if hypfs is None:
        return str(xl), None
    cases = "".join(f'  "{path}") echo "{value}" ;;\n' for path, value in hypfs.items())
    tool = bindir / "xenhypfs"
    tool.write_text('#!/bin/sh\n[ "$1" = cat ] || exit 1\ncase "$2" in\n' + cases +
                    '  *) echo "could not read: No such file or directory" >&2; exit 3 ;;\nesac\n')
    tool.chmod(0o755)
    return str(xl), str(tool)


def _live(tmp_path: pathlib.Path, cmdline: str, hypfs: dict[str, str] | None) -> XenFacts:
    xl, tool = _fakes(tmp_path, cmdline, hypfs)
    return collect(RootFS(str(tree("hardened", tmp_path))), xl=xl, live=True, xenhypfs=tool)


def test_ept_set_at_run_time_is_judged_by_its_live_value(tmp_path):
    facts = _live(tmp_path / "a", "placeholder smt=0", {"/params/ept": "exec-sp=1"})
    assert facts.hypfs == {"/params/ept": "exec-sp=1"}  # /cpupool/0/sched-gran: not there, so left out
    status, message = results(facts, "HV-SIDE-054")[BOOTED]
    assert status is Status.FAIL and message == ("executable superpages allowed now (xenhypfs /params/ept: exec-sp=1; "
                                                 "not set at boot)")
    assert results(facts, "HV-SIDE-054")[GRUB][0] is Status.PASS  # the next boot's line is still judged as written
    facts = _live(tmp_path / "b", "placeholder ept=exec-sp", {"/params/ept": "exec-sp=0"})
    status, message = results(facts, "HV-SIDE-054")[BOOTED]
    assert status is Status.PASS and "exec-sp off now (xenhypfs /params/ept: exec-sp=0; booted with ept=exec-sp)" in message
    assert _from_jsonable(XenFacts, json.loads(json.dumps(to_jsonable(facts))), "xen") == facts


def test_without_xenhypfs_the_booted_line_says_the_live_value_is_unknown(tmp_path):
    facts = _live(tmp_path, "placeholder ept=exec-sp", None)
    assert facts.hypfs is None
    status, message = results(facts, "HV-SIDE-054")[BOOTED]
    assert status is Status.FAIL and "executable superpages allowed (ept=exec-sp)" in message
    assert "ept is a runtime parameter: xl set-parameters ept=exec-sp may have changed it since boot" in message
    assert "live value is unknown (no xenhypfs /params/ept)" in message
    assert "runtime parameter" not in results(facts, "HV-SIDE-054")[GRUB][1]


def test_boot_only_options_say_so_on_the_booted_line(tmp_path):
    facts = _live(tmp_path, "placeholder spec-ctrl=no iommu=force", None)
    for check_id in ("HV-SIDE-050", "HV-SIDE-051", "HV-SIDE-052", "HV-ISO-050"):
        _status, message = results(facts, check_id)[BOOTED]
        assert "boot-only option: xl set-parameters cannot change it, so the booted line is what runs" in message, check_id
        assert "boot-only" not in results(facts, check_id)[GRUB][1]
    assert results(facts, "HV-SIDE-050")[BOOTED][0] is Status.FAIL and results(facts, "HV-ISO-050")[BOOTED][0] is Status.PASS


def test_live_scheduling_granularity_of_pool_0(tmp_path):
    facts = _live(tmp_path / "a", "placeholder", {"/cpupool/0/sched-gran": "core"})
    status, message = results(facts, "HV-SIDE-053")[BOOTED]
    assert status is Status.PASS and message.startswith("sched-gran core (live: xenhypfs /cpupool/0/sched-gran)")
    assert "xen-hptool smt-enable/smt-disable" in message
    facts = _live(tmp_path / "b", "placeholder sched-gran=core", {"/cpupool/0/sched-gran": "cpu"})
    status, message = results(facts, "HV-SIDE-053")[BOOTED]
    assert status is Status.FAIL and "smt on (default) with sched-gran cpu (live" in message
    facts = _live(tmp_path / "c", "placeholder", {})  # xenhypfs answers nothing (a Xen without CONFIG_HYPFS)
    assert isinstance(facts.hypfs, Unavailable) and "could not read" in facts.hypfs.reason
    assert "Pool-0's live sched-gran unknown" in results(facts, "HV-SIDE-053")[BOOTED][1]


# --- GRUB's defaults, one read ----------------------------------------------------------------------


class CountingFS(RootFS):
    """A real RootFS that counts what it reads and what it looks up under /etc/default."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.reads: dict[str, int] = {}
        self.lookups = 0

    def read_bytes(self, path: str, limit: int = DEFAULT_LIMIT) -> bytes | Unavailable:
        self.reads[path] = self.reads.get(path, 0) + 1
        return super().read_bytes(path, limit)

    def stat(self, path: str) -> os.stat_result | Unavailable:
        self.lookups += path.startswith("/etc/default/grub")
        return super().stat(path)

    def listdir(self, path: str) -> list[str] | Unavailable:
        self.lookups += path.startswith("/etc/default/grub")
        return super().listdir(path)


def test_grub_defaults_are_read_once_for_both_command_lines(tmp_path):
    from hyperward.collect.kernel import collect_cmdlines

    root = tree("weak", tmp_path)
    edit(root / "etc/default/grub", 'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="mitigations=off"')
    fs = CountingFS(str(root))
    xen = collect(fs)
    kernel = collect_cmdlines(fs)
    assert fs.reads["/etc/default/grub"] == 1 and fs.reads["/etc/default/grub.d/xen.cfg"] == 1
    [grub] = [c for c in kernel if c.path == GRUB]
    assert grub.tokens == ["mitigations=off", "quiet"]
    assert [c.tokens for c in xen.cmdlines if not isinstance(c, Unavailable) and c.source == GRUB] == [[
        "dom0_mem=4096M,max:4096M", "spec-ctrl=no-xen,rsb=0", "xpti=false", "pv-l1tf=false", "ept=exec-sp", "iommu=no-intremap",
        "dom0-iommu=passthrough", "xsm=flask", "flask=permissive"]]
    assert fs.lookups == 1  # the drop-in directory, listed once; the second collector looked nothing up
    edit(root / "etc/default/grub.d/xen.cfg", "xpti=false", "xpti=true    ")
    again = CountingFS(str(root))  # the next scan: a changed file is read again, the set once
    assert "xpti=true" in next(c for c in collect(again).cmdlines if not isinstance(c, Unavailable)).tokens
    [grub] = [c for c in collect_cmdlines(again) if c.path == GRUB]
    assert grub.tokens == ["mitigations=off", "quiet"]
    assert again.reads["/etc/default/grub.d/xen.cfg"] == 1 and again.reads["/etc/default/grub"] == 1
    assert fs.reads["/etc/default/grub.d/xen.cfg"] == 1  # the first scan's RootFS keeps its own answer


def test_two_scans_of_two_roots_each_read_their_own_grub(tmp_path):
    """Two collections alive at once (two RootFS), of two roots: neither sees the other's
    command line, whichever ran first."""
    from hyperward.collect.kernel import collect_cmdlines

    one, two = tree("weak", tmp_path / "one"), tree("weak", tmp_path / "two")
    edit(one / "etc/default/grub", 'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="mitigations=off"')
    edit(two / "etc/default/grub", 'GRUB_CMDLINE_LINUX=""', 'GRUB_CMDLINE_LINUX="nosmt"')
    edit(two / "etc/default/grub.d/xen.cfg", "xpti=false", "xpti=true")
    first, second = RootFS(str(one)), RootFS(str(two))
    for fs in (first, second, first):
        collect_cmdlines(fs)
    [a] = [c for c in collect_cmdlines(first) if c.path == GRUB]
    [b] = [c for c in collect_cmdlines(second) if c.path == GRUB]
    assert (a.tokens, b.tokens) == (["mitigations=off", "quiet"], ["nosmt", "quiet"])
    xen_one = next(c for c in collect(first).cmdlines if not isinstance(c, Unavailable))
    xen_two = next(c for c in collect(second).cmdlines if not isinstance(c, Unavailable))
    assert "xpti=false" in xen_one.tokens and "xpti=true" in xen_two.tokens


def test_a_whole_scan_reads_grub_once_and_judges_as_before(tmp_path):
    root = tree("weak", tmp_path)
    facts = collect_host(str(root))
    assert [c.path for c in facts.kernel.cmdlines if c.path.startswith("/etc/default/grub")] == [GRUB]
    xen = facts.platforms["xen"]
    assert [c.source for c in xen.cmdlines if not isinstance(c, Unavailable)] == [GRUB]
    (root / "etc/default/grub.d/bad.cfg").write_bytes(b"GRUB_CMDLINE_XEN_DEFAULT=\x00\x01")
    xen = collect_host(str(root)).platforms["xen"]
    assert [u.path for u in xen.cmdlines if isinstance(u, Unavailable)] == ["/etc/default/grub.d/bad.cfg"]


def test_a_hostile_backend_name_reaches_the_terminal_escaped(tmp_path):
    """A guest's owner writes its config's backend= (a tenant-supplied xl.cfg): the name comes back
    in a resource and a message, never as terminal control sequences."""
    from conftest import hyperward

    root = tree("hardened", tmp_path)
    edit(root / "etc/xen/db.cfg", DB_VIF, DB_VIF.replace("backend=router", "backend=dd\\x1b]0;pwned\\x07\\x1b[2J"))
    got = results(collect(RootFS(str(root))), "HV-ISO-059")
    [name] = [n for n in got if n.startswith("dd")]
    assert name == "dd?]0;pwned??[2J" and got[name][0] is Status.NOT_APPLICABLE
    done = hyperward("scan", "--root", str(root), "--only", "HV-ISO-059", "--verbose")
    assert "dd?]0;pwned??[2J" in done.stdout
    assert "\x1b]0;" not in done.stdout and "\x07" not in done.stdout and "\x1b[2J" not in done.stdout
    assert "Traceback" not in done.stderr
