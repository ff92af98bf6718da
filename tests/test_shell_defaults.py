"""/etc/default/* files as the shell that sources them reads their assignments
(parsers/shell.py, shared by the Proxmox, Xen and VirtualBox collectors)."""

from __future__ import annotations

import pytest

from hyperward.parsers.shell import ShellQuoteError, assignments


def test_assignments_as_the_shell_reads_them() -> None:
    text = (
        '# Proxmox ships this commented out\n'
        '#ALLOW_FROM="10.0.0.0/8"\n'
        'ALLOW_FROM="192.168.1.0/24,10.1.0.0/16"  # the admin nets\n'
        "  export DENY_FROM='all'\n"
        'POLICY=allow\n'
        'LISTEN_IP=\n'
        'echo not an assignment\n'
        'POLICY="deny"\n'
        '9BAD=1\n'
    )
    assert assignments(text) == {"ALLOW_FROM": "192.168.1.0/24,10.1.0.0/16", "DENY_FROM": "all", "POLICY": "deny",
                                 "LISTEN_IP": ""}


def test_keep_filters_names() -> None:
    text = "VBOXWEB_HOST=127.0.0.1\nVBOXWEB_AUTH_PWHASH=secret\nINSTALL_DIR=/usr/lib/virtualbox\n"
    kept = assignments(text, lambda name: name.startswith("VBOXWEB_") and name != "VBOXWEB_AUTH_PWHASH")
    assert kept == {"VBOXWEB_HOST": "127.0.0.1"}


def test_unbalanced_quotes_name_the_variable() -> None:
    with pytest.raises(ShellQuoteError, match="unbalanced quotes in XENDOMAINS_AUTO"):
        assignments('XENDOMAINS_AUTO="/etc/xen/auto\n')
