from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "fixtures"))
from layout import apply_layout  # noqa: E402

from hyperward.collect import collect_host
from hyperward.engine import ScanReport, registry, run_checks, select
from hyperward.model import Status

REPO = pathlib.Path(__file__).resolve().parent.parent
ROOTS = REPO / "tests" / "fixtures" / "roots"
IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session", autouse=True)
def advisory_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """Every scan in the suite (in-process and the CLI) matches against a database built from the
    committed advisory fixtures, never whatever database this machine has."""
    from hyperward import vulndb

    path = tmp_path_factory.mktemp("vulndb") / "advisories.sqlite"
    conn = vulndb.open_for_writing(str(path))
    report = vulndb.import_path(conn, str(REPO / "tests/fixtures/advisories"), name="fixtures")
    conn.close()
    assert report.imported == 9 and not report.errors, report.errors
    previous = os.environ.get("HYPERWARD_VULNDB")
    os.environ["HYPERWARD_VULNDB"] = str(path)
    # nor this machine's drift baseline: tests that want one write it here
    os.environ["HYPERWARD_BASELINE"] = str(path.parent / "baseline.json")
    os.environ["HYPERWARD_HISTORY"] = str(path.parent / "history.sqlite")
    yield path
    if previous is None:
        os.environ.pop("HYPERWARD_VULNDB", None)
    else:
        os.environ["HYPERWARD_VULNDB"] = previous


ESXI_BUILDS_ENV = "HYPERWARD_ESXI_BUILDS"


@pytest.fixture(scope="session", autouse=True)
def esxi_build_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pathlib.Path]:
    """HV-PATCH-100 lets a build table vouch for a build only up to 120 days after it was compiled,
    counted at the facts' collection time, and a scan of a fixture root is collected now: against
    the bundled table the fixture roots' verdicts would expire with the calendar. Every scan in the
    suite therefore judges with a copy of the bundled table (same rows) compiled today, installed
    where `hyperward db update` puts one. tests/platforms/esxi/test_esxi_builds.py points the
    variable elsewhere to exercise the bundled table itself and the 120-day rule at fixed dates."""
    doc = json.loads((REPO / "src/hyperward/data/esxi-builds.json").read_text())
    doc["compiled"] = datetime.datetime.now(datetime.UTC).date().isoformat()
    path = tmp_path_factory.mktemp("esxi-builds") / "esxi-builds.json"
    path.write_text(json.dumps(doc))
    previous = os.environ.get(ESXI_BUILDS_ENV)
    os.environ[ESXI_BUILDS_ENV] = str(path)
    yield path
    if previous is None:
        os.environ.pop(ESXI_BUILDS_ENV, None)
    else:
        os.environ[ESXI_BUILDS_ENV] = previous


#: the other sourced tables with an age rule (HV-PATCH-032: 120 days, HV-PATCH-071: 365 days)
DATED_TABLES = {"HYPERWARD_VIRTUALBOX_SECURITY": "virtualbox_security.json", "HYPERWARD_LIFECYCLE": "lifecycle.json"}


@pytest.fixture(scope="session", autouse=True)
def dated_tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, pathlib.Path]]:
    """As esxi_build_table, for the VirtualBox security and lifecycle tables: the suite judges with
    copies of the packaged tables (same rows) compiled today, so fixture roots scanned now keep their
    verdicts whatever the calendar says. tests/test_sourced_tables.py points the variables
    elsewhere to exercise the packaged tables and the age rule at fixed dates."""
    folder = tmp_path_factory.mktemp("dated-tables")
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    previous = {env: os.environ.get(env) for env in DATED_TABLES}
    paths = {}
    for env, name in DATED_TABLES.items():
        doc = json.loads((REPO / "src/hyperward/data" / name).read_text())
        doc["compiled"] = today
        paths[env] = folder / name
        paths[env].write_text(json.dumps(doc))
        os.environ[env] = str(paths[env])
    yield paths
    for env, value in previous.items():
        if value is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = value


def suite_table_compiled(env: str) -> str:
    """The compile date of the copy the suite judges with (dated_tables, esxi_build_table)."""
    return str(json.loads(pathlib.Path(os.environ[env]).read_text())["compiled"])


def esxi_table_said() -> str:
    """How HV-PATCH-100's messages name the table the suite judges with (esxi_build_table)."""
    path = os.environ[ESXI_BUILDS_ENV]
    return f"build table compiled {json.loads(pathlib.Path(path).read_text())['compiled']} ({path})"


def require(condition: bool, why: str) -> None:
    """A real component the test needs is missing: skip on a developer's machine, fail in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for this test in CI: {why}")
    pytest.skip(why)


def copy_root(name: str, dest: pathlib.Path, kvm_mode: int | None = 0o660, kvm_gid: int = 104) -> pathlib.Path:
    """A writable copy of a committed fixture root, with /dev/kvm created as a real char device
    (git cannot store device nodes)."""
    target = dest / name
    shutil.copytree(ROOTS / name, target, symlinks=True)
    apply_layout(target, name)
    if kvm_mode is not None:
        (target / "dev").mkdir(exist_ok=True)
        os.mknod(target / "dev" / "kvm", stat.S_IFCHR | kvm_mode, os.makedev(10, 232))
        os.chown(target / "dev" / "kvm", 0, kvm_gid)
        os.chmod(target / "dev" / "kvm", kvm_mode)
    return target


def apply(root: pathlib.Path, changes: dict[str, str | bytes | None]) -> None:
    for rel, content in changes.items():
        path = root / rel
        if content is None:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def scan(root: pathlib.Path | str, only: Iterable[str] = (), profile: str = "multi-tenant") -> ScanReport:
    return run_checks(collect_host(str(root)), select(registry(), only), profile)


def failing(report: ScanReport, check_id: str | None = None) -> set[tuple[str, str]] | set[str]:
    rows = {(f.check_id, f.result.resource) for f in report.findings if f.status is Status.FAIL}
    if check_id is None:
        return rows
    return {resource for cid, resource in rows if cid == check_id}


def statuses(report: ScanReport, check_id: str) -> dict[str, Status]:
    return {f.result.resource: f.status for f in report.findings if f.check_id == check_id}


def hyperward(*args: str, user: str | None = None, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the installed console script for real (a fresh interpreter, real exit codes)."""
    exe = shutil.which("hyperward", path=os.path.dirname(sys.executable)) or shutil.which("hyperward")
    assert exe, "the hyperward console script is not installed in this environment"
    cmd = [exe, *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user if user != 'nobody' else 'nogroup'}", "--clear-groups", "--", *cmd]
    full_env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL)


@pytest.fixture
def unprivileged_can_run() -> Iterator[None]:
    """Let an unprivileged user reach this checkout's venv: CI may clone under a 0700 directory
    such as /root. Grants traversal (o+x) only, on the ancestors that lack it, and restores them."""
    changed: list[tuple[pathlib.Path, int]] = []
    for directory in [*reversed(REPO.parents), REPO]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            changed.append((directory, stat.S_IMODE(mode)))
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for directory, mode in reversed(changed):
            directory.chmod(mode)


@pytest.fixture
def world_tmp(unprivileged_can_run: None) -> Iterator[pathlib.Path]:
    """A temporary directory an unprivileged user can traverse (pytest's tmp_path is 0700)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="hyperward-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hardened(tmp_path: pathlib.Path) -> pathlib.Path:
    return copy_root("hardened", tmp_path)


@pytest.fixture
def weak(tmp_path: pathlib.Path) -> pathlib.Path:
    return copy_root("weak", tmp_path, kvm_mode=0o666)


@pytest.fixture(scope="session")
def attacker() -> Iterator[str]:
    """A local unprivileged account made for the session (and removed after), to play the user who
    plants links and files where root will write."""
    require(shutil.which("useradd") is not None and os.geteuid() == 0, "useradd, as root")
    name = f"hwatk{os.getpid() % 100000}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)


def as_user(user: str, *cmd: str) -> subprocess.CompletedProcess:
    """Run CMD as USER with only that user's own group (setpriv: no PAM, no login)."""
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *cmd],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def served(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """A real HTTP server on loopback serving tmp_path/www (a refresh's download, `db update`)."""
    import functools
    import http.server
    import threading

    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", www
    finally:
        server.shutdown()
        server.server_close()
