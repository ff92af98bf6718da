"""`explain` writes detection in words and real paths (issue 23): the spec's source shorthand
(its Legend: qc:, lc:, x:, v:, mp:X/, cmd:) never reaches the reader."""

from __future__ import annotations

import pytest

from hyperward.catalog import catalog
from hyperward.cli import _explanation
from hyperward.shorthand import PREFIX, expand, xpath_words

from conftest import hyperward


@pytest.mark.parametrize("check_id", sorted(catalog()))
def test_no_shorthand_survives_in_explain(check_id):
    text = _explanation(check_id)
    detection = [line for line in text.splitlines() if line.startswith(("Detection:", "Passes when:"))]
    assert len(detection) == 2
    assert not [line for line in detection if PREFIX.search(line)], detection


@pytest.mark.parametrize("short,words", [
    ("qc:vnc_listen", "vnc_listen in /etc/libvirt/qemu.conf"),
    ("lc:log_level=1", "log_level=1 in /etc/libvirt/libvirtd.conf (virtqemud.conf, virtproxyd.conf for modular daemons)"),
    ("x://filesystem[@type='mount']", "domain XML: <filesystem type='mount'> elements"),
    ("x:/domain/@type", "domain XML: the type attribute of <domain>"),
    ("x:/domain/memory/@dumpCore='on'", "domain XML: <domain><memory> with dumpCore='on'"),
    ("v:mds", "/sys/devices/system/cpu/vulnerabilities/mds"),
    ("every v:* file", "every /sys/devices/system/cpu/vulnerabilities/* file"),
    ("mp:kvm_intel/nested", "/sys/module/kvm_intel/parameters/nested"),
    ("cmd:pcie_acs_override", "pcie_acs_override on the kernel command line (/proc/cmdline, /etc/default/grub, /etc/kernel/cmdline)"),
    ("qemu+tls:// and /etc/x:y", "qemu+tls:// and /etc/x:y"),
])
def test_expand(short, words):
    assert expand(short) == words


def test_xpath_with_two_predicates():
    assert xpath_words("//interface[@type='bridge' or 'network'][not(filterref)]") == \
        "domain XML: <interface> elements where type='bridge' or 'network'; not(filterref)"


def test_explain_command_prints_words():
    out = hyperward("explain", "HV-AUTH-010").stdout
    assert "Detection:     vnc_listen in /etc/libvirt/qemu.conf, spice_listen" in out
    assert "qc:" not in out and "x://" not in out
    assert "(domain XML is each guest's definition: the libvirt API, /etc/libvirt/qemu/*.xml (persistent)" in out
