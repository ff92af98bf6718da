"""Secrets never leave the host: console passwords (qemu.conf and domain XML), values passed to
QEMU on raw command lines, and TLS private keys are absent from every report, snapshot and log."""

from __future__ import annotations

import json

from conftest import REPO, hyperward

import sys

sys.path.insert(0, str(REPO / "tests/fixtures"))
from libvirt_roots import PLANTED_VNC_PASSWORD  # noqa: E402


def test_planted_secrets_appear_in_no_output(weak, tmp_path):
    key = (weak / "etc/pki/libvirt/private/serverkey.pem").read_text()
    key_body = key.splitlines()[2]
    secrets = [PLANTED_VNC_PASSWORD, "DO-NOT-LEAK-THIS", key_body]
    for secret in secrets[:2]:
        assert secret in "".join(p.read_text() for p in (weak / "etc/libvirt").rglob("*") if p.is_file())
    snapshot = tmp_path / "facts.json"
    outputs = []
    for args in (
        ("scan", "--root", str(weak)),
        ("scan", "--root", str(weak), "-v"),
        ("scan", "--root", str(weak), "--format", "json"),
        *(("scan", "--root", str(weak), "--format", fmt) for fmt in ("sarif", "junit", "ocsf", "prometheus")),
        ("collect", "--root", str(weak), "-o", str(snapshot)),
        ("scan", "--snapshot", str(snapshot), "-v"),
        ("explain", "HV-AUTH-010"),
    ):
        done = hyperward(*args, env={"HYPERWARD_DEBUG": "1"})
        assert done.returncode in (0, 1), done.stderr
        outputs += [done.stdout, done.stderr]
    outputs.append(snapshot.read_text())
    leaks = [(s, i) for i, out in enumerate(outputs) for s in secrets if s in out]
    assert leaks == []
    facts = json.loads(snapshot.read_text())["facts"]
    legacy = [d for d in facts["platforms"]["libvirt"]["domains"] if d.get("name") == "legacy-vm"][0]
    assert legacy["graphics"][0]["has_password"] is True


def test_config_syntax_errors_do_not_echo_values():
    import pytest

    from hyperward.parsers.libvirt_conf import LibvirtConfError, parse_libvirt_conf

    for text in ('vnc_password = hunter2xx\n', 'vnc_password = "a" hunter2xx\n', 'spice_password = [ "x", hunter2xx ]\n'):
        with pytest.raises(LibvirtConfError) as err:
            parse_libvirt_conf(text)
        assert "hunter2xx" not in str(err.value)
