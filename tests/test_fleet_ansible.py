"""The Ansible collection (contrib/ansible) for real: ansible-playbook runs playbooks/scan.yml
over SSH into network namespaces (one sshd each), and with `-c local` against hosts whose
hyperward audits different fixture roots (weak, hardened, Proxmox weak, one that does not exist so
its scan fails, one unreachable); the fetched reports and sidecars go through `hyperward fleet
ingest` and `fleet report`. Not exercised here: the apt and wheel installation (scan_install: false)."""

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


PROXY = r"""
import socket, sys, threading
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def up():
    while data := sys.stdin.buffer.read1(65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := s.recv(65536):
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
"""


def test_playbook_over_ssh_into_network_namespaces(tmp_path: pathlib.Path) -> None:
    """Three hosts, each a network namespace the test creates with only its loopback up and its own
    sshd on 127.0.0.1:2222 there; Ansible reaches each through a ProxyCommand that runs inside that
    namespace (ip netns exec), so no packet leaves the namespaces. Each host's hyperward audits a
    different fixture root (weak, hardened, Proxmox)."""
    import uuid

    from conftest import require

    require(PLAYBOOK_BIN.exists(), "ansible-core in the venv")
    require(os.geteuid() == 0 and os.path.exists("/usr/sbin/sshd") and shutil.which("ip") is not None
            and shutil.which("ssh-keygen") is not None, "root, openssh-server and iproute2")
    tag = uuid.uuid4().hex[:6]
    names = {"kvm-a": f"hwfl-{tag}-a", "kvm-b": f"hwfl-{tag}-b", "pve-c": f"hwfl-{tag}-c"}
    made_run_sshd = not os.path.isdir("/run/sshd")
    if made_run_sshd:
        os.makedirs("/run/sshd", mode=0o755)
    servers: list[subprocess.Popen[bytes]] = []
    created: list[str] = []
    try:
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        (tmp_path / "authorized_keys").write_text((tmp_path / "id_ed25519.pub").read_text())
        (tmp_path / "proxy.py").write_text(PROXY)
        roots = {"kvm-a": copy_root("weak", tmp_path / "ra"), "kvm-b": copy_root("hardened", tmp_path / "rb")}
        shutil.copytree(REPO / "tests/fixtures/proxmox/weak", tmp_path / "rc", symlinks=True)
        roots["pve-c"] = tmp_path / "rc"
        hosts = {}
        for host, ns in names.items():
            done = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True, timeout=30)
            require(done.returncode == 0, f"network namespaces ({done.stderr.strip()})")
            created.append(ns)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=30)
            d = tmp_path / f"sshd-{host}"
            d.mkdir()
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "hostkey")], check=True, timeout=30)
            (d / "sshd_config").write_text(
                f"Port 2222\nListenAddress 127.0.0.1\nHostKey {d}/hostkey\nPidFile {d}/sshd.pid\n"
                f"AuthorizedKeysFile {tmp_path}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nAcceptEnv PYTHONPATH HYPERWARD_*\n"
                "Subsystem sftp internal-sftp\n")
            servers.append(subprocess.Popen(["ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            proxy = f"ip netns exec {ns} {sys.executable} {tmp_path}/proxy.py 2222"
            hosts[host] = {"ansible_host": host, "ansible_user": "root", "ansible_connection": "ssh",
                           "ansible_ssh_private_key_file": str(key), "ansible_python_interpreter": sys.executable,
                           "ansible_ssh_common_args": f"-o ProxyCommand='{proxy}' -o StrictHostKeyChecking=no "
                                                      f"-o UserKnownHostsFile=/dev/null -o SetEnv=PYTHONPATH={os.environ.get('PYTHONPATH', '')}",
                           "scan_root": str(roots[host]), "scan_report_dir": str(tmp_path / "on-host" / host)}
        for _ in range(50):
            if all(os.path.exists(tmp_path / f"sshd-{h}" / "sshd.pid") for h in names):
                break
            import time

            time.sleep(0.1)
        exe = shutil.which("hyperward", path=str(pathlib.Path(sys.executable).parent))
        fetched = tmp_path / "fetched"
        group_vars = {"scan_install": False, "scan_hyperward_executable": exe, "scan_fetch_dir": str(fetched)}
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"children": {"hypervisors": {"hosts": hosts, "vars": group_vars}}}}))
        run = _playbook(tmp_path, inventory)
        assert run.returncode == 0, run.stdout + run.stderr
        for host in names:
            assert f"{host}                      : ok=" in run.stdout or f"{host} " in run.stdout
            assert (tmp_path / "on-host" / host / "report.json").exists()
        assert sorted(p.name for p in fetched.glob("*.json") if not p.name.endswith(".meta.json")) == ["kvm-a.json", "kvm-b.json", "pve-c.json"]
        db = str(tmp_path / "state" / "fleet.sqlite")
        ingest = hyperward("fleet", "ingest", "--db", db, str(fetched))
        assert "ingested: 3 stored, 0 unchanged, 0 bad input, 0 failed scans" in ingest.stdout, ingest.stdout + ingest.stderr
        doc = json.loads(hyperward("fleet", "report", "--db", db, "--format", "json").stdout)
        assert [r["host"] for r in doc["worst_hosts"]][0] == "kvm-weak"
        assert {r["host"] for r in doc["worst_hosts"]} == {"kvm-weak", "kvm-hardened", "pve1"}
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)
