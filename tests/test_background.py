"""The package collection that runs beside the rest of a scan (background.py): in a forked child
where it can, in a thread otherwise, and the same facts either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hyperward.background import InChild, InThread, in_background

REPO = Path(__file__).resolve().parent.parent
WEAK = REPO / "tests" / "fixtures" / "roots" / "weak"


def _payload() -> dict[str, int]:
    return {"pid": os.getpid(), "answer": 42}


def test_a_child_computes_it_on_another_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYPERWARD_NO_FORK", raising=False)
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: the thread path is taken")
    job = in_background(_payload, lambda: dict)
    assert isinstance(job, InChild)
    value = job.result()
    assert value["answer"] == 42 and value["pid"] != os.getpid()


def test_a_failing_child_falls_back_to_this_process() -> None:
    parent = os.getpid()

    def only_here() -> dict[str, int]:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return _payload()

    assert InChild(only_here, lambda: dict).result() == {"pid": parent, "answer": 42}


def test_a_result_of_the_wrong_type_is_not_trusted() -> None:
    parent = os.getpid()
    calls = []

    def job() -> object:
        calls.append(1)
        return "a string from the child" if os.getpid() != parent else {"here": True}

    assert InChild(job, lambda: dict).result() == {"here": True}


def test_an_error_in_this_process_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPERWARD_NO_FORK", "1")

    def broken() -> None:
        raise ValueError("unreadable index")

    job = in_background(broken, lambda: type(None))
    assert isinstance(job, InThread)
    with pytest.raises(ValueError, match="unreadable index"):
        job.result()
    with pytest.raises(ValueError, match="unreadable index"):
        InChild(broken, lambda: type(None)).result()


def _scan(env_extra: dict[str, str]) -> list[tuple[str, str, str, str]]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-m", "hyperward.cli", "scan", "--root", str(WEAK), "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return sorted((r["id"], r["resource"], r["status"], r["message"]) for r in json.loads(out.stdout)["results"])


def test_forked_and_threaded_scans_agree() -> None:
    forked, threaded = _scan({}), _scan({"HYPERWARD_NO_FORK": "1"})
    assert forked == threaded
    assert any(r[0] == "HV-PATCH-001" and r[2] == "fail" for r in forked)  # the background's facts were used
