"""The Ansible collection (contrib/ansible) for real: ansible-playbook runs playbooks/scan.yml
over SSH into network namespaces (one sshd each), and with `-c local` against hosts whose
hyperward audits different fixture roots (weak, hardened, Proxmox weak, one that does not exist so
its scan fails, one unreachable); the fetched reports and sidecars go through `hyperward fleet
ingest` and `fleet report`. The role's install path runs for real in
test_role_installs_from_shipped_wheels_with_no_route_out: wheels built on the controller side, copied
into a namespace host with no route out and pip-installed there with --no-index; its apt task runs
against packages this machine already has (nothing is downloaded or installed by apt)."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from conftest import REPO, copy_root, hyperward

PLAYBOOK_BIN = pathlib.Path(sys.executable).parent / "ansible-playbook"


def _playbook(tmp: pathlib.Path, inventory: pathlib.Path, *extra: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    collections = tmp / "collections" / "ansible_collections" / "hyperward"
    collections.mkdir(parents=True, exist_ok=True)
    if not (collections / "fleet").exists():
        (collections / "fleet").symlink_to(REPO / "contrib" / "ansible")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp / "collections"), ANSIBLE_LOCAL_TEMP=str(tmp / "ansible-tmp"),
               ANSIBLE_REMOTE_TEMP=str(tmp / "ansible-tmp"), ANSIBLE_HOME=str(tmp / "ansible-home"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="0", **(env_extra or {}))
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


@contextlib.contextmanager
def _namespace_hosts(tmp_path: pathlib.Path, hosts: list[str], interpreter: str = sys.executable,
                     pythonpath: bool = True) -> Iterator[dict[str, dict[str, str]]]:
    """One network namespace per host, with only its loopback up and its own sshd on
    127.0.0.1:2222 there; yields each host's Ansible connection variables (a ProxyCommand that runs
    inside that namespace, ip netns exec, so no packet leaves the namespaces). PYTHONPATH: the
    host's modules and hyperward see this checkout's source (the scan tests), or not (the install
    test, whose hosts must run the hyperward they installed)."""
    import time
    import uuid

    from conftest import require

    require(PLAYBOOK_BIN.exists(), "ansible-core in the venv")
    require(os.geteuid() == 0 and os.path.exists("/usr/sbin/sshd") and shutil.which("ip") is not None
            and shutil.which("ssh-keygen") is not None, "root, openssh-server and iproute2")
    tag = uuid.uuid4().hex[:6]
    names = {host: f"hwfl-{tag}-{k}" for k, host in enumerate(hosts)}
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
        out: dict[str, dict[str, str]] = {}
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
            setenv = f" -o SetEnv=PYTHONPATH={os.environ.get('PYTHONPATH', '')}" if pythonpath else ""
            out[host] = {"ansible_host": host, "ansible_user": "root", "ansible_connection": "ssh",
                         "ansible_ssh_private_key_file": str(key), "ansible_python_interpreter": interpreter,
                         "ansible_ssh_common_args": f"-o ProxyCommand='{proxy}' -o StrictHostKeyChecking=no "
                                                    f"-o UserKnownHostsFile=/dev/null{setenv}",
                         "netns": ns}
        for _ in range(50):
            if all(os.path.exists(tmp_path / f"sshd-{h}" / "sshd.pid") for h in names):
                break
            time.sleep(0.1)
        yield out
    finally:
        for server in servers:
            server.terminate()
            server.wait(10)
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        if made_run_sshd:
            shutil.rmtree("/run/sshd", ignore_errors=True)


def test_playbook_over_ssh_into_network_namespaces(tmp_path: pathlib.Path) -> None:
    """Three hosts, each a network namespace the test creates with only its loopback up and its own
    sshd on 127.0.0.1:2222 there; Ansible reaches each through a ProxyCommand that runs inside that
    namespace (ip netns exec), so no packet leaves the namespaces. Each host's hyperward audits a
    different fixture root (weak, hardened, Proxmox)."""
    names = ["kvm-a", "kvm-b", "pve-c"]
    with _namespace_hosts(tmp_path, names) as connections:
        roots = {"kvm-a": copy_root("weak", tmp_path / "ra"), "kvm-b": copy_root("hardened", tmp_path / "rb")}
        shutil.copytree(REPO / "tests/fixtures/proxmox/weak", tmp_path / "rc", symlinks=True)
        roots["pve-c"] = tmp_path / "rc"
        hosts = {host: {**connections[host], "scan_root": str(roots[host]), "scan_report_dir": str(tmp_path / "on-host" / host)}
                 for host in names}
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


# ---------------------------------------------------------------- the role's install path

def _hyperward_wheel(out: pathlib.Path, work: pathlib.Path, version: str | None = None) -> pathlib.Path:
    """hyperward's wheel, built by setuptools (pyproject's backend) from a copy of this checkout's
    source, as `pip wheel . -w dist/` on a controller would; VERSION: as a later release."""
    from conftest import require

    require(_setuptools_builds(), "setuptools>=77 in the venv (pyproject's build backend; pip install 'setuptools>=77')")
    tree = work / f"build-{version or 'this'}"
    shutil.copytree(REPO / "src" / "hyperward", tree / "src" / "hyperward", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    if version:
        for rel, pattern in (("pyproject.toml", 'version = "{}"'), ("src/hyperward/__init__.py", '__version__ = "{}"')):
            text = (tree / rel).read_text()
            current = next(line for line in text.splitlines() if line.startswith(pattern.split(" = ")[0] + " = "))
            (tree / rel).write_text(text.replace(current, pattern.format(version), 1))
    out.mkdir(exist_ok=True)
    before = set(out.iterdir())
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(out), str(tree)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (built,) = set(out.iterdir()) - before
    return built


def _setuptools_builds() -> bool:
    import importlib.metadata

    try:
        return int(importlib.metadata.version("setuptools").split(".")[0]) >= 77
    except importlib.metadata.PackageNotFoundError:
        return False


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _repack(dist: object, out: pathlib.Path) -> pathlib.Path:
    """A wheel of an installed distribution, from its RECORD (the files pip put in site-packages):
    how a controller without PyPI access ships what its own venv runs. Scripts outside
    site-packages and bytecode are left out (pip makes both again on the host)."""
    import base64
    import hashlib
    import importlib.metadata
    import zipfile

    assert isinstance(dist, importlib.metadata.Distribution)
    record = dist.read_text("RECORD")
    wheel_meta = dist.read_text("WHEEL")
    assert record and wheel_meta, f"{dist.metadata['Name']}: no RECORD/WHEEL to repack"
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    parts = [sorted({t.split("-")[i] for t in tags}) for i in range(3)]
    name = _canonical(dist.metadata["Name"]).replace("-", "_")
    path = out / f"{name}-{dist.version}-{'.'.join(parts[0])}-{'.'.join(parts[1])}-{'.'.join(parts[2])}.whl"
    files = [line.rsplit(",", 2)[0] for line in record.splitlines() if line.strip()]
    info = next(f.split("/")[0] for f in files if f.split("/")[0].endswith(".dist-info"))
    rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for rel in files:
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc") or rel in (
                    f"{info}/RECORD", f"{info}/INSTALLER", f"{info}/REQUESTED", f"{info}/direct_url.json"):
                continue
            data = pathlib.Path(str(dist.locate_file(rel))).read_bytes()
            archive.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{rel},sha256={digest},{len(data)}")
        archive.writestr(f"{info}/RECORD", "\n".join([*rows, f"{info}/RECORD,,"]) + "\n")
    return path


def _dependency_wheels(hyperward_wheel: pathlib.Path, out: pathlib.Path) -> list[pathlib.Path]:
    """hyperward's runtime requirements (its wheel's Requires-Dist, extras left out), each with
    its own, as the wheels of the distributions this venv has installed."""
    import importlib.metadata
    import zipfile

    from packaging.requirements import Requirement

    with zipfile.ZipFile(hyperward_wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode()
    todo = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    seen: set[str] = set()
    wheels = []
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        key = _canonical(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(requirement.name)
        assert requirement.specifier.contains(dist.version, prereleases=True), (requirement, dist.version)
        wheels.append(_repack(dist, out))
        todo += dist.requires or []
    return wheels


def _changed_tasks(stdout: str) -> list[str]:
    task, changed = "", []
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            task = line[len("TASK ["):line.rindex("]")]
        elif line.startswith("changed: ["):
            changed.append(task)
    return changed


def test_role_installs_from_shipped_wheels_with_no_route_out(tmp_path: pathlib.Path) -> None:
    """The scan role's install block for real, over SSH into a network namespace with no route
    out: hyperward's wheel (setuptools, from this checkout) and its runtime dependencies' wheels
    (repacked from this venv's installed distributions) are copied to the host and installed with
    pip --no-index --find-links into a venv made by the host's /usr/bin/python3; the apt task runs
    against Debian packages this machine has installed already (so apt installs nothing; what it
    would download is not exercised); the installed hyperward scans and its report is fetched.
    Check mode first (nothing is created), a second run (only the new report is fetched), check mode
    again (no change), then a newer wheel upgrades the host."""
    from conftest import require

    packages = ["python3", "python3-venv", "python3-libvirt", "python3-apt"]
    installed = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n", *packages], capture_output=True, text=True, timeout=30, check=False)
    require(installed.stdout.count("install ok installed") == len(packages), f"Debian packages {', '.join(packages)} installed")
    house = tmp_path / "wheelhouse"
    ours = _hyperward_wheel(house, tmp_path)
    deps = _dependency_wheels(ours, house)
    names = {p.name.split("-")[0].lower() for p in deps}
    assert {"click", "rich", "matplotlib", "numpy", "pyvmomi", "lz4", "cvss", "defusedxml"} <= names, names

    with _namespace_hosts(tmp_path, ["kvm-w"], interpreter="/usr/bin/python3", pythonpath=False) as connections:
        ns = connections["kvm-w"]["netns"]
        # the host has no route out: pip there could not reach an index even if it tried
        route = subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "get", "192.0.2.1"], capture_output=True, text=True, timeout=30, check=False)
        assert route.returncode != 0 and "unreachable" in route.stderr.lower(), route.stdout + route.stderr
        on_host = tmp_path / "kvm-w-fs"
        venv, wheel_dir, fetched = on_host / "opt/hyperward", on_host / "var/cache/hyperward/wheels", tmp_path / "fetched"
        host = {**connections["kvm-w"], "scan_root": str(copy_root("weak", tmp_path / "root")),
                "scan_report_dir": str(on_host / "reports"), "scan_venv": str(venv), "scan_wheel_dir": str(wheel_dir),
                "scan_fetch_dir": str(fetched), "scan_wheels": [str(ours), *map(str, deps)]}
        inventory = tmp_path / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"children": {"hypervisors": {"hosts": {"kvm-w": host}}}}}))
        pipelined = {"ANSIBLE_PIPELINING": "1"}

        check = _playbook(tmp_path, inventory, "--check", env_extra=pipelined)
        assert check.returncode == 0, check.stdout + check.stderr
        assert not venv.exists() and not wheel_dir.exists() and not fetched.exists(), "check mode changed the host"
        assert "hyperward.fleet.scan : Install hyperward from the copied wheels only" in _changed_tasks(check.stdout)

        first = _playbook(tmp_path, inventory, env_extra=pipelined)
        assert first.returncode == 0, first.stdout + first.stderr
        changed = _changed_tasks(first.stdout)
        assert "hyperward.fleet.scan : Install hyperward from the copied wheels only" in changed, changed
        assert "hyperward.fleet.scan : Install the Debian packages hyperward uses" not in changed  # installed already
        assert sorted(p.name for p in wheel_dir.iterdir()) == sorted(p.name for p in [ours, *deps])
        site = next(venv.glob("lib/python3*/site-packages"))
        assert (site / "hyperward-0.1.0.dist-info").is_dir() and (site / "hyperward" / "fleet.py").is_file()
        assert not list(site.glob("__editable__*")), "the host's hyperward is this checkout, not the wheel"
        in_venv = {_canonical(p.name.split("-")[0]) for p in site.glob("*.dist-info")}
        assert {"click", "rich", "matplotlib", "numpy", "pyvmomi"} <= in_venv, in_venv
        assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
        report = json.loads((fetched / "kvm-w.json").read_text())
        assert report["host"] == "kvm-weak" and report["version"] == "0.1.0"
        assert any(r["status"] == "fail" for r in report["results"])

        second = _playbook(tmp_path, inventory, env_extra=pipelined)
        assert second.returncode == 0, second.stdout + second.stderr
        # the scan ran again: a new report (its own collected_at) is the only change
        assert _changed_tasks(second.stdout) == ["hyperward.fleet.scan : Fetch the JSON report to the controller"], second.stdout
        again = _playbook(tmp_path, inventory, "--check", env_extra=pipelined)
        assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout + again.stderr

        newer = _hyperward_wheel(tmp_path / "wheelhouse-next", tmp_path, version="0.1.1")
        host["scan_wheels"] = [str(newer), *map(str, deps)]
        inventory.write_text(json.dumps({"all": {"children": {"hypervisors": {"hosts": {"kvm-w": host}}}}}))
        upgrade = _playbook(tmp_path, inventory, env_extra=pipelined)
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        assert "hyperward.fleet.scan : Install hyperward from the copied wheels only" in _changed_tasks(upgrade.stdout)
        assert (site / "hyperward-0.1.1.dist-info").is_dir() and not (site / "hyperward-0.1.0.dist-info").exists()
        assert json.loads((fetched / "kvm-w.json").read_text())["version"] == "0.1.1"


def test_collection_is_ansible_lint_clean_under_the_production_profile(tmp_path: pathlib.Path) -> None:
    """The issue's "ansible-lint clean": the collection installed the way a user installs it
    (ansible-galaxy from the directory), then linted offline at the production profile."""
    lint = pathlib.Path(sys.executable).parent / "ansible-lint"
    assert lint.exists(), "ansible-lint (the test extra installs it)"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), NO_COLOR="1")
    galaxy = pathlib.Path(sys.executable).parent / "ansible-galaxy"
    installed = subprocess.run([str(galaxy), "collection", "install", str(REPO / "contrib/ansible"), "-p", str(tmp_path / "collections")],
                               capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    done = subprocess.run([str(lint), "--offline", "--profile", "production", "--nocolor"], cwd=REPO / "contrib/ansible",
                          capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr
