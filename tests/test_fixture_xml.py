"""Every fixture definition through libvirt's own parsers: a guest, network or filter that libvirt
9.0 refuses is no evidence of anything hyperward says about it. The test driver
(test:///default, in-process, no daemon) defines each domain and network with validation on;
virt-xml-validate checks each file against libvirt's RelaxNG schemas."""

from __future__ import annotations

import pathlib
import re

import pytest

import libvirt_validate
from conftest import IN_CI, REPO, require
from test_libvirt_checks import DOMAIN, DOMAIN_CASES

ROOTS = REPO / "tests" / "fixtures" / "roots"
DOMAINS = sorted(ROOTS.glob("*/etc/libvirt/qemu/*.xml"))
NETWORKS = sorted(ROOTS.glob("*/etc/libvirt/qemu/networks/*.xml"))
FILTERS = sorted(ROOTS.glob("*/etc/libvirt/nwfilter/*.xml"))
LIVE = sorted(ROOTS.glob("*/run/libvirt/qemu/*.xml"))


def _rel(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOTS))


def _schema(xml: str, schema: str) -> str | None:
    try:
        return libvirt_validate.schema_error(xml, schema)
    except LookupError as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def _libvirt() -> None:
    require(libvirt_validate.available(), "python3-libvirt (libvirt's test driver)")


def test_the_fixture_set_is_what_the_golden_scans_judge():
    assert [_rel(p) for p in DOMAINS] == ["hardened/etc/libvirt/qemu/hardened-vm.xml", "hardened/etc/libvirt/qemu/sev-vm.xml",
                                          "weak/etc/libvirt/qemu/legacy-vm.xml", "weak/etc/libvirt/qemu/weak-vm.xml"]
    assert NETWORKS and FILTERS and LIVE


@pytest.mark.parametrize("path", DOMAINS, ids=_rel)
def test_libvirt_defines_every_fixture_domain(path):
    assert libvirt_validate.domain_error(path.read_text()) is None
    assert _schema(path.read_text(), "domain") is None


@pytest.mark.parametrize("path", LIVE, ids=_rel)
def test_live_status_xml_holds_a_schema_valid_domain(path):
    """The status file wraps the running definition in <domstatus>; libvirt has no public schema
    for the wrapper, so the domain inside is what is validated."""
    inner = re.search(r"<domain .*</domain>", path.read_text(), re.S)
    assert inner is not None
    assert _schema(inner.group(0), "domain") is None


@pytest.mark.parametrize("path", NETWORKS, ids=_rel)
def test_libvirt_defines_every_fixture_network(path):
    assert libvirt_validate.network_error(path.read_text()) is None
    assert _schema(path.read_text(), "network") is None


@pytest.mark.parametrize("path", FILTERS, ids=_rel)
def test_every_fixture_nwfilter_is_schema_valid(path):
    assert _schema(path.read_text(), "nwfilter") is None


@pytest.mark.parametrize("name,old,new", [(c[0], c[2], c[3]) for c in DOMAIN_CASES], ids=[c[0] for c in DOMAIN_CASES])
def test_libvirt_accepts_every_domain_variant(name, old, new):
    """The per-check variants of tests/test_libvirt_checks.py are guests libvirt would define."""
    xml = (ROOTS / "hardened" / DOMAIN).read_text()
    assert old in xml
    xml = xml.replace(old, new)
    if name == "qemu-commandline":
        xml = xml.replace("</devices>", "</devices>\n  <qemu:commandline><qemu:arg value='-no-hpet'/></qemu:commandline>")
    assert libvirt_validate.domain_error(xml) is None


def test_the_oracle_refuses_what_libvirt_refuses():
    """The two forms libvirt 9.0 rejected in the old fixtures: an explicit read-only loader under
    firmware autoselection, and unfiltered sgio."""
    hardened = (ROOTS / "hardened" / DOMAIN).read_text()
    loader = hardened.replace("<loader secure='yes'/>", "<loader readonly='yes' secure='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.ms.fd</loader>")
    assert "firmware autoselection" in (libvirt_validate.domain_error(loader) or "")
    weak = (ROOTS / "weak/etc/libvirt/qemu/weak-vm.xml").read_text().replace("sgio='filtered'", "sgio='unfiltered'")
    assert "unfiltered sgio is no longer supported" in (libvirt_validate.domain_error(weak) or "")
