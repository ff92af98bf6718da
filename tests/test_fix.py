"""`hyperward fix` against copies of the weak golden root: the bash form (and the Ansible form with
ansible-core over a local connection) makes each fixable check pass and no other result worse;
a second run changes nothing (the whole tree hashed); a file changed between scan and fix, a
read-only file, a missing tool and an attacker's symlink out of the root each refuse or fail
their block and say why, with nothing written outside the root."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys

import pytest
from conftest import copy_root, hyperward, require

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks
from hyperward.fix import ansible, bash
from hyperward.fix.plan import Block, Context, Failing, build
from hyperward.model import Status

#: what the bash form fixes in the weak root, offline, without any restart (exact)
FIXED = {
    ("HV-AUTH-001", "libvirtd.conf:auth_tcp"),
    ("HV-AUTH-002", "libvirtd.conf:tls_no_verify_certificate"),
    ("HV-AUTH-003", "libvirtd.conf:tls_no_sanity_certificate"),
    ("HV-AUTH-004", "/etc/pki/libvirt/private/serverkey.pem"),
    ("HV-AUTH-005", "libvirtd.conf:auth_unix_rw"),
    ("HV-AUTH-006", "libvirtd-admin.socket"),
    ("HV-AUTH-009", "libvirtd.conf:tcp_min_ssf"),
    ("HV-AUTH-010", "legacy-vm (a1b2c3d4-e5f6-4789-8abc-def012345678)"),
    ("HV-AUTH-010", "qemu.conf:spice_listen"),
    ("HV-AUTH-010", "qemu.conf:vnc_listen"),
    ("HV-AUTH-010", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"),
    ("HV-AUTH-011", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"),
    ("HV-AUTH-013", "sshd:Match Address 10.0.0.0/8"),
    ("HV-AUTH-013", "sshd:PasswordAuthentication"),
    ("HV-AUTH-013", "sshd:PermitRootLogin"),
    ("HV-AUTH-015", "login.defs"),
    ("HV-AUTH-015", "password policy"),
    ("HV-AUTH-016", "sshd:KexAlgorithms"),
    ("HV-AUTH-016", "sshd:MACs"),
    ("HV-BAK-004", "/var/lib/libvirt/qemu/dump"),
    ("HV-BAK-004", "/var/lib/libvirt/qemu/save"),
    ("HV-BAK-004", "/var/lib/libvirt/qemu/save/weak-vm.save"),
    ("HV-BAK-004", "/var/lib/libvirt/qemu/snapshot"),
    ("HV-IDS-002", "/etc/libvirt"),
    ("HV-ISO-002", "qemu.conf:security_default_confined"),
    ("HV-ISO-006", "qemu.conf:seccomp_sandbox"),
    ("HV-ISO-007", "qemu.conf:cgroup_device_acl"),
    ("HV-ISO-007", "qemu.conf:namespaces"),
    ("HV-ISO-008", "qemu.conf:dynamic_ownership"),
    ("HV-ISO-008", "qemu.conf:remember_owner"),
    ("HV-ISO-009", "/var/lib/libvirt/images"),
    ("HV-ISO-009", "/var/lib/libvirt/images/drivers.img"),
    ("HV-ISO-009", "/var/lib/libvirt/images/shared-scratch.img"),
    ("HV-ISO-009", "/var/lib/libvirt/images/weak-vm.qcow2"),
    ("HV-ISO-013", "qemu.conf:relaxed_acs_check"),
    ("HV-ISO-019", "qemu.conf:dump_guest_core"),
    ("HV-ISO-019", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"),
    ("HV-ISO-020", "qemu.conf:stdio_handler"),
    ("HV-MON-001", "journald"),
    ("HV-MON-002", "libvirtd.conf:log_level"),
    ("HV-NET-005", "weak-vm (c7e2a4b6-8d1f-4e3a-b5c7-9d0e2f4a6b8c)"),
    ("HV-NET-007", "qemu.conf:migrate_tls_force"),
    ("HV-VULN-002", "/etc/default/grub (with grub.d): kvm.nx_huge_pages=off"),
    ("HV-VULN-002", "/etc/default/grub (with grub.d): mitigations=off"),
    ("HV-VULN-002", "/etc/default/grub (with grub.d): nopti"),
}

#: changed for the next boot or module load, so still failing on the running state the tree
#: records (/sys, /proc, /dev): the block is done and names the reboot or reload it needs
AFTER_REBOOT = {
    ("HV-NEST-001", "kvm_intel"),
    ("HV-SIDE-004", "itlb_multihit"),
    ("HV-ISO-011", "vfio_iommu_type1.allow_unsafe_interrupts"),
    ("HV-ISO-012", "vfio.enable_unsafe_noiommu_mode"),
    ("HV-ISO-021", "/dev/kvm"),
    ("HV-VULN-002", "/proc/cmdline: mitigations=off"),
}

RANK = {Status.PASS: 0, Status.NOT_APPLICABLE: 0, Status.SUPPRESSED: 1, Status.ERROR: 2, Status.FAIL: 3}


def results(root: pathlib.Path, advisory_db: pathlib.Path) -> dict[tuple[str, str], Status]:
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(root.parent / "no-baseline.json"),
                         history_path=str(root.parent / "no-history.sqlite"))
    return {(f.check_id, f.result.resource): f.status for f in run_checks(facts, registry(), "multi-tenant").findings}


def plan(root: pathlib.Path, advisory_db: pathlib.Path, only: tuple[str, ...] = ()) -> list[Block]:
    facts = collect_host(str(root), vulndb=str(advisory_db), baseline=str(root.parent / "no-baseline.json"),
                         history_path=str(root.parent / "no-history.sqlite"))
    report = run_checks(facts, registry(), "multi-tenant")
    failing = [Failing(f.check_id, f.result.resource, f.result.message, f.remediation, dict(f.result.details))
               for f in report.findings if f.status is Status.FAIL]
    return build(failing, Context(str(root), facts), only)


def tree_hash(root: pathlib.Path) -> dict[str, str]:
    """Every entry under ROOT: type, mode, owner and content (or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = pathlib.Path(dirpath) / name
            st = path.lstat()
            if stat.S_ISREG(st.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                what = "-> " + os.readlink(path)
            else:
                what = ""
            out[str(path.relative_to(root))] = f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid} {what}"
    return out


def run_bash(script: pathlib.Path, root: pathlib.Path, backups: pathlib.Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path or os.environ["PATH"], "HW_ROOT": str(root), "HW_BACKUP_DIR": str(backups), "LC_ALL": "C.UTF-8"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300, check=False)


def block_results(output: str) -> dict[int, str]:
    out = {}
    for line in output.splitlines():
        if line.startswith("result["):
            n, _, verdict = line.partition("]: ")
            out[int(n.removeprefix("result["))] = verdict
    return out


def assert_no_worse(before: dict[tuple[str, str], Status], after: dict[tuple[str, str], Status]) -> None:
    worse = {k: (before[k], v) for k, v in after.items() if k in before and RANK[v] > RANK[before[k]]}
    new = {k: v for k, v in after.items() if k not in before and v in (Status.FAIL, Status.ERROR)}
    assert not worse and not new, (worse, new)


def write_script(tmp_path: pathlib.Path, blocks: list[Block], root: pathlib.Path) -> pathlib.Path:
    script = tmp_path / "fix.sh"
    script.write_text(bash.render(blocks, root=str(root), source="test", stamp="T"))
    return script


def test_bash_form_fixes_the_weak_root_and_a_second_run_changes_nothing(tmp_path, weak, advisory_db):
    before = results(weak, advisory_db)
    original = tree_hash(weak)
    qemu_conf = (weak / "etc/libvirt/qemu.conf").read_bytes()
    blocks = plan(weak, advisory_db)
    assert tree_hash(weak) == original, "planning wrote to the tree"
    script = write_script(tmp_path, blocks, weak)
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0

    first = run_bash(script, weak, tmp_path / "backups")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    verdicts = block_results(first.stdout)
    assert len(verdicts) == len(blocks)
    assert set(verdicts.values()) == {"done", "manual"}
    assert [b.automatic for b in blocks] == [verdicts[n] == "done" for n in range(1, len(blocks) + 1)]

    after = results(weak, advisory_db)
    assert all(before[k] is Status.FAIL for k in FIXED | AFTER_REBOOT)
    still = {k for k in FIXED if after.get(k) in (Status.FAIL, Status.ERROR)}
    assert not still, still
    assert all(after.get(k) is Status.FAIL for k in AFTER_REBOOT)
    assert {k for k, v in before.items() if v is Status.FAIL and after.get(k) not in (Status.FAIL, Status.ERROR)} == FIXED
    assert_no_worse(before, after)
    by_key = {(b.check_id, b.resource): b for b in blocks}
    for key in AFTER_REBOOT:
        assert by_key[key].automatic and by_key[key].needs, key

    # changed, and still failing for what a fix file cannot do (a package to install, auditd, an LSM)
    assert (weak / "etc/apt/apt.conf.d/20auto-upgrades").read_text() == \
        'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
    assert after["HV-PATCH-005", "apt"] is Status.FAIL
    assert by_key["HV-PATCH-005", "apt"].manual == ["apt install unattended-upgrades (the APT::Periodic settings do nothing without it)"]
    # what the fix creates is readable like the rest of /etc, whatever umask the script runs under;
    # what it edits keeps its mode
    assert stat.S_IMODE((weak / "etc/security").stat().st_mode) == 0o755
    assert stat.S_IMODE((weak / "etc/security/pwquality.conf").stat().st_mode) == 0o644
    assert stat.S_IMODE((weak / "etc/systemd/journald.conf.d/zz-hyperward.conf").stat().st_mode) == 0o644
    assert original["etc/libvirt/qemu.conf"].split(" ")[0] == tree_hash(weak)["etc/libvirt/qemu.conf"].split(" ")[0]
    # backups: the edited files as they were, outside the tree
    backup = tmp_path / "backups" / "etc%libvirt%qemu.conf"
    assert backup.read_bytes() == qemu_conf
    assert stat.S_IMODE((tmp_path / "backups").stat().st_mode) == 0o700

    fixed_tree = tree_hash(weak)
    second = run_bash(script, weak, tmp_path / "backups-2")
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    assert "changed:" not in second.stdout
    assert tree_hash(weak) == fixed_tree
    assert not (tmp_path / "backups-2").exists()


def test_a_file_changed_after_the_scan_refuses_its_blocks_only(tmp_path, weak, advisory_db):
    blocks = plan(weak, advisory_db, ("HV-ISO-001", "HV-ISO-002", "HV-AUTH-002"))
    script = write_script(tmp_path, blocks, weak)
    conf = weak / "etc/libvirt/qemu.conf"
    conf.write_text(conf.read_text() + "max_processes = 4096\n")
    changed = conf.read_bytes()
    run = run_bash(script, weak, tmp_path / "backups")
    assert run.returncode == 1
    verdicts = block_results(run.stdout)
    labels = {n: f"{b.check_id} {b.resource}" for n, b in enumerate(blocks, 1)}
    assert {labels[n] for n, v in verdicts.items() if v == "refused"} == {
        "HV-ISO-001 qemu.conf:security_driver", "HV-ISO-002 qemu.conf:security_default_confined"}
    assert {labels[n] for n, v in verdicts.items() if v == "done"} == {"HV-AUTH-002 libvirtd.conf:tls_no_verify_certificate"}
    assert "refused: /etc/libvirt/qemu.conf changed since the scan" in run.stderr
    assert conf.read_bytes() == changed
    assert "\ntls_no_verify_certificate = 1" not in (weak / "etc/libvirt/libvirtd.conf").read_text()


def test_an_edit_already_made_by_hand_is_in_place_not_refused(tmp_path, weak, advisory_db):
    blocks = plan(weak, advisory_db, ("HV-ISO-002",))
    script = write_script(tmp_path, blocks, weak)
    conf = weak / "etc/libvirt/qemu.conf"
    conf.write_text(conf.read_text().replace("security_default_confined = 0", "security_default_confined = 1"))
    run = run_bash(script, weak, tmp_path / "backups")
    assert run.returncode == 0 and "already in place: /etc/libvirt/qemu.conf" in run.stdout


def test_a_read_only_file_fails_its_block_and_the_others_go_on(tmp_path, weak, advisory_db):
    require(shutil.which("chattr") is not None and os.geteuid() == 0, "chattr, as root")
    blocks = plan(weak, advisory_db, ("HV-AUTH-002", "HV-ISO-002"))
    script = write_script(tmp_path, blocks, weak)
    target = weak / "etc/libvirt/libvirtd.conf"
    before = target.read_bytes()
    made = subprocess.run(["chattr", "+i", str(target)], capture_output=True, check=False)
    require(made.returncode == 0, f"chattr +i on this file system: {made.stderr!r}")
    try:
        run = run_bash(script, weak, tmp_path / "backups")
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=False)
    assert run.returncode == 1
    assert "failed: cannot write /etc/libvirt/libvirtd.conf" in run.stderr
    assert sorted(block_results(run.stdout).values()) == ["done", "failed (exit 4)"]
    assert target.read_bytes() == before
    assert "security_default_confined = 1" in (weak / "etc/libvirt/qemu.conf").read_text()
    assert not [p for p in target.parent.iterdir() if ".hyperward-" in p.name], "a temporary file was left behind"


def test_a_missing_tool_changes_nothing_and_says_which(tmp_path, weak, advisory_db):
    blocks = plan(weak, advisory_db, ("HV-ISO-001",))
    script = write_script(tmp_path, blocks, weak)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mktemp", "rm", "cat"):  # everything the script needs but python3
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    before = tree_hash(weak)
    run = run_bash(script, weak, tmp_path / "backups", path=str(bin_dir))
    assert run.returncode == 2
    assert "python3 is needed for the edits; nothing was changed" in run.stderr
    assert tree_hash(weak) == before


def test_an_attackers_symlink_out_of_the_root_is_refused(tmp_path, weak, advisory_db):
    """Between scan and fix a user with write access to the offline tree swaps directories and
    files for links to the machine running the fix, with identical content so hashes match."""
    blocks = plan(weak, advisory_db, ("HV-ISO-001", "HV-AUTH-013", "HV-IDS-002", "HV-AUTH-004"))
    script = write_script(tmp_path, blocks, weak)
    outside = tmp_path / "outside"
    outside.mkdir()
    # a directory on the way: /etc/libvirt -> outside/libvirt (same files)
    shutil.copytree(weak / "etc/libvirt", outside / "libvirt", symlinks=True)
    shutil.rmtree(weak / "etc/libvirt")
    (weak / "etc/libvirt").symlink_to(outside / "libvirt")
    # the file itself
    legacy = weak / "etc/ssh/sshd_config.d/10-legacy.conf"
    shutil.copy2(legacy, outside / "10-legacy.conf")
    legacy.unlink()
    legacy.symlink_to(outside / "10-legacy.conf")
    # a directory a new file goes into
    (weak / "etc/audit/rules.d").rename(outside / "rules.d")
    (weak / "etc/audit/rules.d").symlink_to(outside / "rules.d")
    # a file whose mode would change
    key = weak / "etc/pki/libvirt/private/serverkey.pem"
    shutil.copy2(key, outside / "serverkey.pem")
    os.chmod(outside / "serverkey.pem", 0o644)
    key.unlink()
    key.symlink_to(outside / "serverkey.pem")
    before = tree_hash(outside)
    run = run_bash(script, weak, tmp_path / "backups")
    assert tree_hash(outside) == before, "something outside the root was changed"
    verdicts = block_results(run.stdout)
    assert {verdicts[n] for n, b in enumerate(blocks, 1) if b.automatic} == {"refused"}
    assert sum(b.automatic for b in blocks) == 6
    assert "refused: /etc/libvirt/qemu.conf: libvirt is a symbolic link or not a directory; not followed" in run.stderr
    assert "refused: /etc/ssh/sshd_config.d/10-legacy.conf is a symbolic link; not followed" in run.stderr
    assert "refused: /etc/pki/libvirt/private/serverkey.pem is no longer a regular file (or is a symbolic link)" in run.stderr


def test_hostile_strings_stay_in_comments(tmp_path):
    """A resource or message a guest controls (a domain name, a file name) is shown, never run."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    evil = "x\nrm -rf / #'$(touch pwned)`touch pwned2`{{ lookup('pipe', 'touch pwned3') }}"
    (root / "etc/disk.img").write_text("")
    os.chmod(root / "etc/disk.img", 0o644)
    failing = [Failing("HV-ISO-018", evil, evil, evil, {"guest": evil}),
               Failing("HV-ISO-009", evil, evil, "", {"file": "/etc/disk.img", "mode": "0644"}),
               Failing("HV-MON-001", "journald", "Storage=volatile " + evil, "", {})]
    blocks = build(failing, Context(str(root)))
    script = tmp_path / "fix.sh"
    script.write_text(bash.render(blocks, root=str(root), source=evil, stamp="T"))
    assert not [line for line in script.read_text().splitlines() if line.startswith("rm ")]
    run = run_bash(script, root, tmp_path / "backups")
    assert run.returncode == 0, run.stderr
    assert not list(tmp_path.rglob("pwned*")) and not list(pathlib.Path.cwd().glob("pwned*"))
    tasks = ansible.render(blocks, root=str(root), source=evil, stamp="T")
    assert not [line for line in tasks.splitlines() if "{{ lookup" in line and not line.startswith("#")]
    assert "(( lookup('pipe', 'touch pwned3') ))" in tasks


def test_writing_the_artifact_changes_nothing_and_is_private(tmp_path, weak):
    before = tree_hash(weak)
    out = tmp_path / "fix.sh"
    done = hyperward("fix", "--root", str(weak), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "block(s)" in done.stderr and "automatic" in done.stderr
    assert tree_hash(weak) == before
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    link = tmp_path / "link.sh"
    link.symlink_to(tmp_path / "elsewhere")
    refused = hyperward("fix", "--root", str(weak), "-o", str(link))
    assert refused.returncode == 2 and "symbolic link" in refused.stderr
    assert not (tmp_path / "elsewhere").exists()


def test_report_and_scan_give_the_same_plan(tmp_path, weak):
    report = tmp_path / "report.json"
    assert hyperward("scan", "--root", str(weak), "--format", "json", "-o", str(report)).returncode in (0, 1)
    from_scan = hyperward("fix", "--root", str(weak), "--only", "HV-ISO-001,HV-ISO-009,HV-AUTH-013")
    from_report = hyperward("fix", "--report", str(report), "--root", str(weak), "--only", "HV-ISO-001,HV-ISO-009,HV-AUTH-013")
    assert from_scan.returncode == from_report.returncode == 0, from_report.stderr

    def body(text: str) -> list[str]:
        return [line for line in text.splitlines() if "planned" not in line and "hyperward-fix/" not in line]

    assert body(from_scan.stdout) == body(from_report.stdout)
    snapshot = tmp_path / "facts.json"
    assert hyperward("collect", "--root", str(weak), "-o", str(snapshot)).returncode == 0
    from_snapshot = hyperward("fix", "--snapshot", str(snapshot), "--root", str(weak), "--only", "HV-ISO-001,HV-ISO-009,HV-AUTH-013")
    assert from_snapshot.returncode == 0, from_snapshot.stderr
    assert body(from_snapshot.stdout) == body(from_scan.stdout)
    # security_driver; 3 image modes and the images directory; PermitRootLogin, PasswordAuthentication, the Match block's key
    assert from_scan.stdout.count("\nhw_block ") == 8
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tool": "other"}))
    refused = hyperward("fix", "--report", str(bad))
    assert refused.returncode == 2 and str(bad) in refused.stderr and "Traceback" not in refused.stderr


def test_apply_on_an_offline_tree_reports_per_finding(tmp_path, weak):
    done = hyperward("fix", "--root", str(weak), "--apply", "--yes", "--backup-dir", str(tmp_path / "backups"),
                     "--only", "HV-ISO-001,HV-ISO-009,HV-NEST-001,HV-VULN-002", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # security_driver is gone; the tree's kernel runs no AppArmor or SELinux, which the rescan says
    assert any(line.startswith("needs restart  HV-ISO-001   qemu.conf:security_driver: restart libvirtd")
               and line.endswith("(now: the host kernel runs no SELinux or AppArmor (/sys/kernel/security/lsm: "
                                 "lockdown,capability,landlock,yama): sVirt cannot confine guests)") for line in lines)
    assert "fixed          HV-ISO-009   /var/lib/libvirt/images" in lines
    assert any(line.startswith("needs reboot   HV-NEST-001  kvm_intel: reboot") for line in lines)
    assert any(line.startswith("needs reboot   HV-VULN-002  /proc/cmdline: mitigations=off: run: update-grub; reboot") for line in lines)
    assert "fixed          HV-VULN-002  /etc/default/grub (with grub.d): nopti" in lines
    assert "summary: 7 fixed, 1 needs restart, 2 needs reboot, 3 by hand" in lines
    # what the applied blocks still need, each once, after the summary (never done)
    pending = lines[lines.index("to take effect (not done here):") + 1:]
    assert "  restart libvirtd (systemctl restart libvirtd)" in pending and len(pending) == len(set(pending)), pending
    assert "virsh" not in done.stdout and "update-grub" in done.stdout  # named, never run
    assert (tmp_path / "backups" / "etc%libvirt%qemu.conf").exists()


def test_apply_on_this_host_needs_root(world_tmp):
    done = hyperward("fix", "--apply", "--yes", user="nobody")
    assert done.returncode == 2 and "needs root" in done.stderr


ANSIBLE_ONLY = ("HV-ISO-001", "HV-ISO-007", "HV-ISO-009", "HV-AUTH-013", "HV-AUTH-010", "HV-AUTH-015", "HV-MON-001",
                "HV-VULN-002", "HV-NEST-001")


def run_playbook(tmp_path: pathlib.Path, tasks: str, root: pathlib.Path, name: str) -> subprocess.CompletedProcess[str]:
    playbook = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable))
    assert playbook
    (tmp_path / f"{name}.yml").write_text(tasks)
    (tmp_path / f"{name}-play.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n"
        f"    hw_root: {json.dumps(str(root))}\n    hw_backup_dir: {json.dumps(str(tmp_path / 'xml-backups'))}\n"
        f"  tasks:\n    - ansible.builtin.import_tasks: {name}.yml\n")
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
           "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    return subprocess.run([playbook, "-c", "local", "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}",
                           str(tmp_path / f"{name}-play.yml")], capture_output=True, text=True, timeout=600, env=env, check=False)


def edited(root: pathlib.Path) -> dict[str, str]:
    """The tree without Ansible's own backup files (name.PID.DATE~ beside each file it edits)."""
    return {k: v for k, v in tree_hash(root).items() if not k.endswith("~")}


def test_ansible_form_matches_the_bash_form_and_is_idempotent(tmp_path, advisory_db):
    require(shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) is not None,
            "ansible-core in the venv (pip install ansible-core; the test extra has it)")
    by_bash = copy_root("weak", tmp_path / "bash", kvm_mode=0o666)
    by_ansible = copy_root("weak", tmp_path / "ansible", kvm_mode=0o666)
    before = results(by_ansible, advisory_db)
    blocks = plan(by_ansible, advisory_db, ANSIBLE_ONLY)
    assert {op.kind for b in blocks for op in b.ops} == {"replace", "ensure-line", "write", "chmod", "xml"}
    tasks = ansible.render(blocks, root=str(by_ansible), source="test", stamp="T")
    first = run_playbook(tmp_path, tasks, by_ansible, "fix")
    assert first.returncode == 0, first.stdout[-4000:]
    after = results(by_ansible, advisory_db)
    wanted = {k for k in FIXED if k[0] in ANSIBLE_ONLY}
    assert {k for k, v in before.items() if v is Status.FAIL and after.get(k) not in (Status.FAIL, Status.ERROR)} == wanted
    assert_no_worse(before, after)

    script = write_script(tmp_path, plan(by_bash, advisory_db, ANSIBLE_ONLY), by_bash)
    assert run_bash(script, by_bash, tmp_path / "backups").returncode == 0
    assert edited(by_bash) == edited(by_ansible), "the two forms left different trees"

    fixed_tree = tree_hash(by_ansible)
    second = run_playbook(tmp_path, tasks, by_ansible, "fix")
    assert second.returncode == 0, second.stdout[-4000:]
    assert " changed=0 " in second.stdout, second.stdout[-2000:]
    assert tree_hash(by_ansible) == fixed_tree


def test_ansible_form_refuses_a_file_changed_after_the_scan(tmp_path, advisory_db):
    require(shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) is not None, "ansible-core in the venv")
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    tasks = ansible.render(plan(root, advisory_db, ("HV-ISO-001",)), root=str(root), source="test", stamp="T")
    conf = root / "etc/libvirt/qemu.conf"
    conf.write_text(conf.read_text() + "max_processes = 4096\n")
    changed = conf.read_bytes()
    run = run_playbook(tmp_path, tasks, root, "fix")
    assert run.returncode != 0
    assert "refused: /etc/libvirt/qemu.conf changed since the scan" in run.stdout
    assert conf.read_bytes() == changed


@pytest.mark.parametrize("text,pattern_key,expected", [
    ('namespaces = [ ]\nx = 1\n', "namespaces", 'namespaces = [ "mount" ]\nx = 1\n'),
    ('cgroup_device_acl = [\n  "/dev/null",\n  "/dev/mem"\n]\nx = 1\n', "cgroup_device_acl", None),
])
def test_libvirt_list_values_spanning_lines(text, pattern_key, expected):
    from hyperward.fix import helper
    from hyperward.fix.plan import key_pattern

    if expected is not None:
        assert helper.replace_text(text, key_pattern(pattern_key, "libvirt"), 'namespaces = [ "mount" ]') == expected
    else:
        out = helper.replace_text(text, key_pattern(pattern_key, "libvirt"), "# gone")
        assert out == "# gone\nx = 1\n"


def test_proxmox_keys(tmp_path, advisory_db):
    root = tmp_path / "pve"
    shutil.copytree(pathlib.Path(__file__).parent / "fixtures/proxmox/weak", root, symlinks=True)
    before = results(root, advisory_db)
    blocks = plan(root, advisory_db, ("HV-NET-008", "HV-FW-004", "HV-FW-005"))
    by_key = {(b.check_id, b.resource): b for b in blocks}
    assert not by_key["HV-FW-004", "/etc/pve/firewall/cluster.fw"].automatic  # never switched on blind
    run = run_bash(write_script(tmp_path, blocks, root), root, tmp_path / "backups")
    assert run.returncode == 0, run.stdout + run.stderr
    after = results(root, advisory_db)
    assert before["HV-NET-008", "/etc/pve/datacenter.cfg:migration"] is Status.FAIL
    assert after["HV-NET-008", "/etc/pve/datacenter.cfg:migration"] is Status.PASS
    assert "migration: type=secure,network=10.10.10.0/24\n" in (root / "etc/pve/datacenter.cfg").read_text()
    assert_no_worse(before, after)


def test_a_live_domain_block_without_virsh_refuses_before_touching_anything(tmp_path, weak, advisory_db):
    """The bash form for this host (HW_ROOT empty) edits domains through virsh; without it the block
    refuses at once (nothing is read or written: this runs on the machine itself)."""
    blocks = plan(weak, advisory_db, ("HV-NET-005",))
    assert [op.kind for b in blocks for op in b.ops] == ["xml"]
    script = tmp_path / "fix.sh"
    script.write_text(bash.render(blocks, root="/", source="test", stamp="T"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "mktemp", "rm", "cat", "python3"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    env = {"PATH": str(bin_dir), "HW_ROOT": "", "HW_BACKUP_DIR": str(tmp_path / "backups"), "LC_ALL": "C.UTF-8"}
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "refused: virsh is not installed (this block needs it); nothing changed" in run.stderr
    assert block_results(run.stdout) == {1: "refused"}
    assert not (tmp_path / "backups").exists()


def test_modular_daemons_get_their_own_file_and_restart(tmp_path, weak, advisory_db):
    (weak / "etc/libvirt/libvirtd.conf").rename(weak / "etc/libvirt/virtqemud.conf")
    wants = weak / "etc/systemd/system/sockets.target.wants"
    (wants / "virtqemud.socket").symlink_to("/usr/lib/systemd/system/virtqemud.socket")
    blocks = plan(weak, advisory_db, ("HV-AUTH-005", "HV-ISO-002"))
    by_key = {(b.check_id, b.resource): b for b in blocks}
    rw = by_key["HV-AUTH-005", "virtqemud.conf:auth_unix_rw"]
    assert [op.path for op in rw.ops] == ["/etc/libvirt/virtqemud.conf"] * 2
    assert [n.describe() for n in rw.needs] == ["restart virtqemud (systemctl restart virtqemud)"]
    confined = by_key["HV-ISO-002", "qemu.conf:security_default_confined"]
    assert confined.needs[0].describe() == "restart virtqemud (systemctl restart virtqemud)"
    before = results(weak, advisory_db)
    assert run_bash(write_script(tmp_path, blocks, weak), weak, tmp_path / "backups").returncode == 0
    after = results(weak, advisory_db)
    assert before["HV-AUTH-005", "virtqemud.conf:auth_unix_rw"] is Status.FAIL
    assert after.get(("HV-AUTH-005", "virtqemud.conf:auth_unix_rw"), Status.PASS) is Status.PASS
    assert_no_worse(before, after)


def test_sysctl_and_module_drop_ins_are_created_once(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    blocks = build([Failing("HV-FW-003", "net.bridge.bridge-nf-call-iptables", "= 0", "", {})], Context(str(root)))
    script = write_script(tmp_path, blocks, root)
    assert run_bash(script, root, tmp_path / "backups").returncode == 0
    assert (root / "etc/sysctl.d/90-hyperward-net.bridge.bridge-nf-call-iptables.conf").read_text() == \
        "net.bridge.bridge-nf-call-iptables = 1\n"
    assert (root / "etc/modules-load.d/hyperward-br_netfilter.conf").read_text() == "br_netfilter\n"
    tree = tree_hash(root)
    again = run_bash(script, root, tmp_path / "backups-2")
    assert again.returncode == 0 and "changed:" not in again.stdout and tree_hash(root) == tree
    (root / "etc/sysctl.d/90-hyperward-net.bridge.bridge-nf-call-iptables.conf").write_text("net.bridge.bridge-nf-call-iptables = 0\n")
    refused = run_bash(script, root, tmp_path / "backups-3")
    assert refused.returncode == 1 and "changed since the scan" in refused.stderr


def test_unknown_only_id_is_a_clear_error(weak):
    done = hyperward("fix", "--root", str(weak), "--only", "HV-NOPE-001")
    assert done.returncode == 2 and "unknown check ID 'HV-NOPE-001'" in done.stderr


def test_apply_without_yes_asks_and_a_no_changes_nothing(tmp_path, weak):
    before = tree_hash(weak)
    done = hyperward("fix", "--root", str(weak), "--apply", "--only", "HV-ISO-002", "--backup-dir", str(tmp_path / "b"))
    assert done.returncode != 0 and "Apply them now?" in done.stdout
    assert tree_hash(weak) == before and not (tmp_path / "b").exists()
