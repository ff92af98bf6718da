"""Several reports from one scan (report/outputs.py): on two cores a forked child writes part of
them. The files must be exactly what one process writes, a failure anywhere must end the scan as
it would alone, and a process with a second thread must never fork."""

from __future__ import annotations

import json
import os
import pathlib
import stat
import subprocess
import sys
import threading

import pytest
from conftest import copy_root, hyperward, scan

from hyperward.report import FORMATS, RenderOptions
from hyperward.report.outputs import _cores, split, write_all

SUFFIX = {"text": "txt", "json": "json", "sarif": "sarif", "junit": "xml", "html": "html", "ocsf": "ocsf.json", "prometheus": "prom"}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return scan(copy_root("weak", tmp_path_factory.mktemp("outputs")))


def _jobs(folder: pathlib.Path) -> list[tuple[str, RenderOptions, str | None]]:
    return [(name, RenderOptions(), str(folder / f"report.{SUFFIX[name]}")) for name in FORMATS]


def _write(text: str, output: str | None) -> None:
    assert output is not None
    pathlib.Path(output).write_text(text)


#: run in a fresh interpreter: pytest's own process keeps threads of earlier tests alive (loopback
#: servers, the libvirt API's worker), and write_all rightly never forks beside a thread
FRESH = """
import pathlib, sys
from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks
from hyperward.report import FORMATS, RenderOptions
from hyperward.report.outputs import split, write_all

root, folder, mode = sys.argv[1:4]
suffix = {suffixes!r}
report = run_checks(collect_host(root), registry())


def jobs(where):
    return [(name, RenderOptions(), f"{{where}}/report.{{suffix[name]}}") for name in FORMATS]

doomed = {{j[2] for j in split(jobs(folder))[0]}} if mode == "fail-child" else set()

def write(text, output):
    if output in doomed:
        raise SystemExit(2)
    pathlib.Path(output).write_text(text)

if mode == "compare":  # one report, written both ways
    for sub in ("together", "alone"):
        pathlib.Path(folder, sub).mkdir()
    print(write_all(report, jobs(folder + "/together"), write), write_all(report, jobs(folder + "/alone"), write, parallel=False))
else:
    print(write_all(report, jobs(folder), write))
"""


def _fresh(root: pathlib.Path, folder: pathlib.Path, mode: str) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    code = FRESH.format(suffixes=SUFFIX)
    return subprocess.run([sys.executable, "-c", code, str(root), str(folder), mode], capture_output=True, text=True, timeout=300)


def test_forked_writing_writes_byte_for_byte_what_one_process_writes(tmp_path):
    root = copy_root("weak", tmp_path)
    done = _fresh(root, tmp_path / "out", "compare")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(_cores() >= 2), "False"]
    together, alone = tmp_path / "out" / "together", tmp_path / "out" / "alone"
    names = sorted(p.name for p in alone.iterdir())
    assert names == sorted(p.name for p in together.iterdir()) and len(names) == len(FORMATS)
    for name in names:
        assert (together / name).read_bytes() == (alone / name).read_bytes(), name


def test_the_groups_balance_and_standard_output_stays_in_this_process():
    jobs = [(name, RenderOptions(), f"/x/r.{SUFFIX[name]}") for name in FORMATS] + [("text", RenderOptions(), None)]
    child, here = split(jobs)
    assert ("text", RenderOptions(), None) in here and all(j[2] is not None for j in child)
    assert sorted(j[2] or "-" for j in child + here) == sorted(j[2] or "-" for j in jobs)
    assert {j[0] for j in child} & {"ocsf"} and "ocsf" not in {j[0] for j in here}


def test_a_second_thread_keeps_the_writing_in_one_process(report, tmp_path):
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        assert write_all(report, _jobs(tmp_path), _write) is False
    finally:
        stop.set()
        worker.join()
    assert len(list(tmp_path.iterdir())) == len(FORMATS)


def test_a_failing_file_in_the_child_ends_the_scan_with_its_code(tmp_path):
    if _cores() < 2:
        pytest.skip("one core: nothing is forked")  # the CLI test below covers the failure alone
    root = copy_root("weak", tmp_path)
    folder = tmp_path / "out"
    done = _fresh(root, folder, "fail-child")
    assert done.returncode == 2, done.stderr
    jobs = [(name, RenderOptions(), f"{folder}/report.{SUFFIX[name]}") for name in FORMATS]
    theirs, mine = split(jobs)
    assert {p.name for p in folder.iterdir()} == {pathlib.Path(j[2] or "").name for j in mine} and theirs


def test_the_cli_writes_every_file_privately_and_fails_on_one_it_cannot_write(tmp_path):
    root = copy_root("weak", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    files = [out / f"r.{SUFFIX[n]}" for n in FORMATS]
    done = hyperward("scan", "--root", str(root), *[a for f in files for a in ("-o", str(f))])
    assert done.returncode in (0, 1), done.stderr
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert json.loads((out / "r.json").read_text())["results"]
    assert sorted(p.name for p in out.iterdir()) == sorted(f.name for f in files)  # no temporary file left
    missing = tmp_path / "no-such-dir" / "r.ocsf.json"
    (out / "link.sarif").symlink_to(tmp_path / "elsewhere.sarif")
    for bad in (missing, out / "link.sarif"):
        done = hyperward("scan", "--root", str(root), "-o", str(out / "again.json"), "-o", str(bad), "-o", str(out / "again.html"))
        assert done.returncode == 2, done.stderr
        assert str(bad.parent) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "elsewhere.sarif").exists() and not os.path.exists(missing)
