"""The Ansible collection (contrib/ansible) for real: ansible-playbook runs playbooks/scan.yml with
`-c local` against four inventory hosts whose hyperward audits different fixture roots (weak,
hardened, Proxmox weak, and one that does not exist, so its scan fails); the fetched reports and
sidecars go through `hyperward fleet ingest` and `fleet report`. Not exercised here: the apt and
wheel installation (scan_install: false) and SSH to separate machines."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, copy_root, hyperward

PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / "ansible-playbook"


def _playbook(tmp: pathlib.Path, inventory: pathlib.Path, *extra: str) -> subprocess.CompletedProcess[str]:
    collections = tmp / "collections" / "ansible_collections" / "hyperward"
    collections.mkdir(parents=True, exist_ok=True)
    if not (collections / "fleet").exists():
        (collections / "fleet").symlink_to(REPO / "contrib" / "ansible")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-tmp"), ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([str(PLAYBOOK_BIN), "-i", str(inventory), str(REPO / "contrib/ansible/playbooks/scan.yml"),
                           "-e", "ansible_become=false", *extra], capture_output=True, text=True, timeout=600, env=env,
                          stdin=subprocess.DEVNULL)


def test_playbook_scans_fetches_and_the_fleet_ranks(tmp_path: pathlib.Path) -> None:
    if not PLAYBOOK_BIN.exists():
        pytest.skip("ansible-core is not installed in this venv")
    roots = {"kvm-a": copy_root("weak", tmp_path / "ra"), "kvm-b": copy_root("hardened", tmp_path / "rb")}
    shutil.copytree(REPO / "tests/fixtures/proxmox/weak", tmp_path / "rc", symlinks=True)
    roots["pve-c"] = tmp_path / "rc"
    roots["broken"] = tmp_path / "no-such-root"
    exe = shutil.which("hyperward", path=str(pathlib.Path(sys.executable).parent))
    fetched = tmp_path / "fetched"
    hosts = {host: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "scan_root": str(root),
                    "scan_report_dir": str(tmp_path / "on-host" / host), "scan_site": "ams" if host == "kvm-b" else "fra"}
             for host, root in roots.items()}
    hosts["gone"] = {"ansible_host": "gone.invalid", "ansible_connection": "ssh", "ansible_ssh_common_args": "-o ProxyCommand=false"}
    group_vars = {"scan_install": False, "scan_hyperward_executable": exe, "scan_fetch_dir": str(fetched), "scan_extra_outputs": [".sarif"]}
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": group_vars}}}}))

    check = _playbook(tmp_path, inventory, "--check", "--limit", "kvm-a,kvm-b,pve-c,broken")
    assert check.returncode == 0, check.stdout + check.stderr
    assert not any(fetched.glob("*.json")), "check mode fetched or wrote reports"

    run = _playbook(tmp_path, inventory)
    # 4: a host was unreachable (gone); everything else ran
    assert run.returncode == 4, run.stdout + run.stderr
    assert "gone" in run.stdout and "unreachable=1" in run.stdout
    assert sorted(p.name for p in fetched.iterdir()) == [
        "broken.meta.json", "gone.meta.json", "kvm-a.json", "kvm-a.meta.json", "kvm-b.json", "kvm-b.meta.json", "pve-c.json", "pve-c.meta.json"]
    assert (tmp_path / "on-host" / "kvm-a" / "report.sarif").exists()
    broken = json.loads((fetched / "broken.meta.json").read_text())
    assert broken["host"] == "broken" and "no-such-root" in broken["scan_error"]
    assert json.loads((fetched / "kvm-b.meta.json").read_text()) == {"host": "kvm-b", "site": "ams", "group": "hypervisors"}

    db = str(tmp_path / "state" / "fleet.sqlite")
    ingest = hyperward("fleet", "ingest", "--db", db, str(fetched))
    assert ingest.returncode == 0, ingest.stderr
    assert "ingested: 3 stored, 0 unchanged, 0 bad input, 2 failed scans" in ingest.stdout
    doc = json.loads(hyperward("fleet", "report", "--db", db, "--format", "json").stdout)
    hosts = {r["host"]: r for r in doc["worst_hosts"]}
    # the hostnames are the roots' own (/etc/hostname), the sites the inventory's
    assert {h: r["site"] for h, r in hosts.items()} == {"kvm-weak": "fra", "kvm-hardened": "ams", "pve1": "fra"}
    assert doc["worst_hosts"][0]["host"] == "kvm-weak"
    assert hosts["kvm-weak"]["score"] > hosts["kvm-hardened"]["score"]
    assert [(p["host"], p["state"]) for p in doc["problems"]] == [("broken", "scan_failed"), ("gone", "scan_failed")]
    assert "unreachable" in doc["problems"][1]["problem"]
    assert "pve1" in [r["host"] for r in json.loads(hyperward("fleet", "report", "--db", db, "--format", "json",
                                                              "--platform", "proxmox").stdout)["worst_hosts"]]


def test_timer_role_writes_units_systemd_accepts_and_is_idempotent(tmp_path: pathlib.Path) -> None:
    """The timer role into a directory of the test's (timer_manage_services: false: this machine's
    systemd is not touched); systemd-analyze verify judges the units; a second run changes nothing."""
    if not PLAYBOOK_BIN.exists():
        pytest.skip("ansible-core is not installed in this venv")
    analyze = shutil.which("systemd-analyze")
    units = tmp_path / "units"
    units.mkdir()
    playbook = tmp_path / "timer.yml"
    playbook.write_text(json.dumps([{"name": "timer", "hosts": "localhost", "gather_facts": False,
                                     "roles": [{"role": "hyperward.fleet.timer"}]}]))
    exe = shutil.which("hyperward", path=str(pathlib.Path(sys.executable).parent))
    extra = ["-c", "local", "-e", json.dumps({"timer_unit_dir": str(units), "timer_manage_services": False,
                                               "timer_hyperward_executable": exe, "timer_schedule": "*-*-* 04:30:00",
                                               "ansible_python_interpreter": sys.executable})]
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost\n")
    first = _run_playbook(tmp_path, inventory, playbook, extra)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=1" in first.stdout  # one looping task
    assert sorted(p.name for p in units.iterdir()) == ["hyperward-monitor.service", "hyperward-scan.service", "hyperward-scan.timer"]
    assert "OnCalendar=*-*-* 04:30:00" in (units / "hyperward-scan.timer").read_text()
    assert f"ExecStart={exe} scan --record --output=/var/lib/hyperward/reports/report.json" in \
        (units / "hyperward-scan.service").read_text()
    assert f"ExecStart={exe} monitor" in (units / "hyperward-monitor.service").read_text()
    second = _run_playbook(tmp_path, inventory, playbook, extra)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout
    if analyze:
        proc = subprocess.run([analyze, "verify", *map(str, sorted(units.iterdir()))], capture_output=True, text=True, timeout=60)
        problems = [line for line in proc.stderr.splitlines() if str(units) in line or "hyperward" in line]
        assert proc.returncode == 0 and not problems, proc.stderr


def _run_playbook(tmp: pathlib.Path, inventory: pathlib.Path, playbook: pathlib.Path, extra: list[str]) -> subprocess.CompletedProcess[str]:
    collections = tmp / "collections" / "ansible_collections" / "hyperward"
    collections.mkdir(parents=True, exist_ok=True)
    if not (collections / "fleet").exists():
        (collections / "fleet").symlink_to(REPO / "contrib" / "ansible")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
               ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run([str(PLAYBOOK_BIN), "-i", str(inventory), str(playbook), *extra], capture_output=True, text=True,
                          timeout=600, env=env, stdin=subprocess.DEVNULL)
