"""The HTML report's structure on the golden roots, read back with the standard library's HTML
parser: self-contained (nothing to fetch), a CSP whose hashes match the page's own style and
script, every finding a table row, every guest a matrix row, the reachability graph, drift, and
host-controlled strings that stay text."""

from __future__ import annotations

import base64
import hashlib
import html.parser
import pathlib
import re
import stat
import sys
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import pytest

from hyperward.collect import collect_host
from hyperward.engine import registry, run_checks
from hyperward.model import Status
from hyperward.report import FORMATS, RenderOptions, get_reporter
from hyperward.report.html import render

from conftest import REPO, copy_root, hyperward, scan

sys.path.insert(0, str(REPO / "tests/fixtures"))
from libvirt_roots import PLANTED_VNC_PASSWORD  # noqa: E402

HOSTILE = {"weak-vm": "<script>alert(1)</script>", "legacy-vm": "</script><img src=x onerror=alert(2)>\"' onmouseover=\"alert(3)"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        return "".join(self.text)


class Page(html.parser.HTMLParser):
    """Every element with its attributes and its own text, in document order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self.open: list[Element] = []
        self.doctype = ""
        self.feed(text)
        self.close()

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # HTML's implied end tags: a cell ends at the next cell or row, a row at the next row
        closes = {"td": ("td", "th"), "th": ("td", "th"), "tr": ("tr",)}.get(tag, ())
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag in closes:
                del self.open[i:]
                break
            if self.open[i].tag in ("tr", "table", "thead", "tbody"):
                break
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.elements.append(element)
        if tag not in ("meta", "input", "br"):
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                del self.open[i:]
                break

    def handle_data(self, data: str) -> None:
        for element in self.open:
            element.text.append(data)

    def all(self, tag: str) -> list[Element]:
        return [e for e in self.elements if e.tag == tag]


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture(scope="module", params=["weak", "hardened"])
def golden(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    report = scan(copy_root(request.param, tmp_path_factory.mktemp(request.param), kvm_mode=0o666))
    text = render(report, RenderOptions())
    return request.param, report, text, Page(text)


def test_registered_as_a_format():
    assert FORMATS["html"] == "hyperward.report.html"
    assert get_reporter("html").render is render


def test_self_contained_under_its_own_csp(golden):
    _, _, text, page = golden
    assert page.doctype.lower() == "doctype html"
    [style], [script] = page.all("style"), page.all("script")
    [csp] = [m for m in page.all("meta") if m.attrs.get("http-equiv", "").lower() == "content-security-policy"]
    policy = dict((part.strip().split(" ", 1) + [""])[:2] for part in csp.attrs["content"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == _sha(script.content) and policy["style-src"] == _sha(style.content)
    assert "unsafe-inline" not in csp.attrs["content"] and "http" not in csp.attrs["content"]
    assert "src" not in script.attrs
    # nothing to fetch: no external element, no URL but in-page anchors, no inline handler or style attribute
    assert not [e.tag for e in page.elements if e.tag in ("link", "img", "iframe", "object", "embed", "base", "form", "audio", "video")]
    for e in page.elements:
        for name, value in e.attrs.items():
            assert not name.startswith("on") and name != "style", (e.tag, name)
            if name in ("href", "src", "action", "xlink:href"):
                assert value.startswith("#"), (e.tag, name, value)
    ids = {e.attrs["id"] for e in page.elements if "id" in e.attrs}
    assert {e.attrs["href"][1:] for e in page.all("a")} <= ids
    assert "url(" not in style.content and "@import" not in style.content
    assert "fetch(" not in script.content and "XMLHttpRequest" not in script.content and "innerHTML" not in script.content
    assert {"summary", "severity", "drift", "reachability", "findings", "matrix", "checks"} <= ids
    assert "@media print" in style.content


def test_every_finding_is_a_row(golden):
    _, report, _, page = golden
    rows = [e for e in page.all("tr") if "data-s" in e.attrs]
    assert len(rows) == len(report.findings)
    assert Counter_of(rows) == Counter_of_findings(report)
    shown = [(r.attrs["data-s"], r.attrs["data-c"], int(r.attrs["data-v"])) for r in rows]
    assert shown == [(f.status.value, f.meta.category.value, int(f.severity)) for f in report.findings]
    start = page.elements.index(next(e for e in page.all("table") if e.attrs.get("id") == "findings"))
    end = next(i for i in range(start, len(page.elements)) if page.elements[i].tag == "h2")
    tds = [e.content for e in page.elements[start:end] if e.tag == "td"]
    assert len(tds) == 5 * len(report.findings)
    assert tds[0::5] == [f.severity.label for f in report.findings]
    assert tds[1::5] == [f.status.value.replace("_", " ") for f in report.findings]
    assert tds[2::5] == [f.check_id for f in report.findings]
    assert tds[3::5] == [f.result.resource for f in report.findings]
    assert [m.split(" accepted: ")[0] for m in tds[4::5]] == [f.result.message for f in report.findings]


def Counter_of(rows):  # noqa: N802
    from collections import Counter

    return Counter(r.attrs["data-s"] for r in rows)


def Counter_of_findings(report):  # noqa: N802
    from collections import Counter

    return Counter(f.status.value for f in report.findings)


def test_summary_cards_and_severity_chart(golden):
    name, report, _, page = golden
    cards = {e.text[0].strip(): e.content for e in page.all("div") if e.attrs.get("class", "").startswith("card")}
    assert set(cards) == {"Host", "Platforms", "Collected", "Failing", "Errors", "Passed"}
    assert report.facts.meta.hostname in cards["Host"] and "libvirt" in cards["Platforms"]
    fails = [f for f in report.findings if f.status is Status.FAIL]
    checks, resources = len({f.check_id for f in fails}), len({f.result.resource for f in fails})
    assert f"{checks} check" in cards["Failing"] and f"on {resources} resource" in cards["Failing"]
    bars = {e.attrs["class"][4:]: int(e.attrs["width"]) for e in page.all("rect") if e.attrs.get("class", "").startswith("bar-")}
    counts = report.counts_by_severity()
    assert set(bars) == set(counts)
    assert all((bars[label] > 0) == (n > 0) for label, n in counts.items())
    worst = max(counts, key=lambda k: counts[k])
    assert bars[worst] == max(bars.values())


def test_guest_matrix_has_a_row_per_guest(golden):
    _, report, _, page = golden
    matrix = page.elements[page.elements.index(next(e for e in page.all("div") if e.attrs.get("class") == "matrix")):]
    heads = [e.content for e in matrix if e.tag == "th" and "title" in e.attrs]
    assert sorted(heads) == sorted(g.label for g in report.derived().guests)
    columns = {e.content for e in matrix if e.tag == "a"}
    # results about a known guest (a QEMU process nobody defined, HV-IDS-005's "miner", is no guest)
    names = {g.name for g in report.derived().guests}
    about = [f for f in report.findings if f.result.details.get("guest") in names]
    assert columns == {f.check_id for f in about}
    failing = [e for e in matrix if e.tag == "td" and e.attrs.get("class") == "F"]
    assert len(failing) == len({(f.result.details["guest"], f.check_id) for f in about if f.status is Status.FAIL})


def test_reachability_graph_marks_reachable_management_services_red(golden):
    name, report, _, page = golden
    rows = report.derived().reachability
    svg = page.elements[page.elements.index(next(e for e in page.all("div") if e.attrs.get("class") == "graph")):]
    edges = [e for e in svg if e.tag == "path"]
    service_edges = [e for e in edges if e.attrs["class"] != "e-net"]
    assert len(service_edges) == len(rows)
    if name == "weak":
        # br0 reaches libvirt's unauthenticated TCP port: red, and the rule that decided it is on hover
        [libvirt] = [e for e in edges if "16509" in e.content]
        assert libvirt.attrs["class"] == "e-danger"
        assert "because nftables: policy accept of chain inet filter input" in libvirt.content
        nodes = [e for e in svg if e.tag == "g" and "node" in e.attrs.get("class", "")]
        assert any("danger" in n.attrs["class"] and "16509" in n.content for n in nodes)
        assert any(n.content.startswith("network lab") for n in nodes) and any("bridge br0" in n.content for n in nodes)
        nets = [e for e in edges if e.attrs["class"] == "e-net"]
        assert {e.content for e in nets} >= {"network lab puts its guests on bridge virbr7"}
    for e in service_edges:
        assert re.search(r"/(tcp|udp)\b.*: (reachable|blocked|unknown), because \S", e.content), e.content


def test_hostile_guest_names_stay_text(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    for old, new in HOSTILE.items():
        path = root / f"etc/libvirt/qemu/{old}.xml"
        path.write_text(path.read_text().replace(f"<name>{old}</name>", f"<name>{escape(new)}</name>"))
    report = scan(root)
    assert sorted(g.name for g in report.derived().guests) == sorted(HOSTILE.values())
    text = render(report, RenderOptions())
    page = Page(text)
    assert len(page.all("script")) == 1 and not page.all("img")
    assert not [name for e in page.elements for name in e.attrs if name.startswith("on")]
    # the names are on the page, as text, in the matrix, the table and the graph's hover titles
    shown = " ".join(e.content for e in page.all("th"))
    assert all(name in shown for name in HOSTILE.values())
    assert any(HOSTILE["legacy-vm"] in e.content for e in page.all("td"))
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#x27; onmouseover=&quot;alert(3)" in text


def test_control_and_bidi_characters_are_shown_escaped(tmp_path: pathlib.Path):
    root = copy_root("weak", tmp_path, kvm_mode=0o666)
    path = root / "etc/libvirt/qemu/weak-vm.xml"
    path.write_text(path.read_text().replace("<name>weak-vm</name>", "<name>evil\u202egnp.exe</name>"))
    text = render(scan(root), RenderOptions())
    assert "\u202e" not in text and "evil\\u202egnp.exe" in text


def test_no_secret_reaches_the_page(weak: pathlib.Path, tmp_path: pathlib.Path):
    key = (weak / "etc/pki/libvirt/private/serverkey.pem").read_text().splitlines()[2]
    out = tmp_path / "report.html"
    done = hyperward("scan", "--root", str(weak), "--format", "html", "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    for secret in (PLANTED_VNC_PASSWORD, "DO-NOT-LEAK-THIS", key):
        assert secret not in text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_drift_since_the_baseline(tmp_path: pathlib.Path):
    root = copy_root("hardened", tmp_path)
    baseline = tmp_path / "baseline.json"
    done = hyperward("baseline", "accept", "--root", str(root), "--file", str(baseline))
    assert done.returncode == 0, done.stderr
    unchanged = Page(render(run_checks(collect_host(str(root), baseline=str(baseline)), registry()), RenderOptions()))
    drift = _section(unchanged, "drift")
    assert "Nothing changed" in drift and "match the baseline" in drift
    with open(root / "etc/libvirt/qemu.conf", "a") as conf:
        conf.write('\nvnc_listen = "0.0.0.0"\n')
    (root / "etc/libvirt/qemu/hardened-vm.xml").unlink()
    page = Page(render(run_checks(collect_host(str(root), baseline=str(baseline)), registry()), RenderOptions()))
    table = next(e for e in page.all("table") if e.attrs.get("class") == "drift")
    start = page.elements.index(table)
    cells = [e.content for e in page.elements[start:] if e.tag == "td"][:4]
    assert cells == ["/etc/libvirt/qemu.conf", "changed", "domain hardened-vm", "removed"]
    assert "2 changes against the baseline accepted" in _section(page, "drift")


def test_no_baseline_says_how_to_accept_one(golden):
    name, _, _, page = golden
    assert "hyperward baseline accept" in _section(page, "drift")


def _section(page: Page, ident: str) -> str:
    """The text from a section's heading to the next heading."""
    start = next(i for i, e in enumerate(page.elements) if e.attrs.get("id") == ident)
    out = []
    for e in page.elements[start + 1:]:
        if e.tag == "h2":
            break
        if e.tag in ("p", "td"):
            out.append(e.content)
    return " ".join(out)


def test_width_of_the_text_in_bars_never_exceeds_the_chart(golden):
    _, _, _, page = golden
    [chart] = [e for e in page.all("svg") if e.attrs.get("class") == "chart"]
    assert all(int(e.attrs["width"]) <= 420 for e in page.all("rect") if e.attrs.get("class", "").startswith("bar-"))
    assert re.fullmatch(r"\d+", chart.attrs["height"])


def test_listing_commands_do_not_accept_report_formats():
    """`checks`, `db status` and `reach` print text or JSON; an HTML request there is refused, not ignored."""
    done = hyperward("checks", "--format", "html")
    assert done.returncode == 2 and "'html' is not one of 'text', 'json'" in done.stderr


def test_offline_proxmox_node_draws_each_service_once_per_family(tmp_path: pathlib.Path):
    """An offline tree has a row per bridge, well-known port and family: one node per service and
    family, an edge per row, every edge unknown (no live ruleset was seen)."""
    import shutil

    root = tmp_path / "pve"
    shutil.copytree(REPO / "tests/fixtures/proxmox/weak", root, symlinks=True)
    report = run_checks(collect_host(str(root)), registry())
    rows = report.derived().reachability
    assert rows and all(r.listening is None for r in rows)
    page = Page(render(report, RenderOptions()))
    svg = page.elements[page.elements.index(next(e for e in page.all("div") if e.attrs.get("class") == "graph")):]
    labels = [e.content for e in svg if e.tag == "text" and e.content.startswith("*:")]
    assert len(labels) == len(set(labels)) == len({(r.address, r.port, r.protocol, r.family) for r in rows})
    assert "*:22/tcp ipv6 SSH" in labels and "*:22/tcp SSH" in labels
    edges = [e for e in svg if e.tag == "path" and e.attrs["class"] != "e-net"]
    assert all(r.reachable is None for r in rows)
    assert len(edges) == len(rows) and {e.attrs["class"] for e in edges} == {"e-unknown"}
    assert "Offline tree" in _section(page, "reachability")
    nodes = [e.content for e in svg if e.tag == "text"]
    assert "bridge vmbr0 (4 guests)" in nodes and "bridge vmbr0" in nodes


GOLDEN_GRAPH = {
    "weak": {
        "edges": [("e-net", "guests attached to bridge br0 directly"), ("e-net", "network lab puts its guests on bridge virbr7"),
                  ("e-danger", "br0 -> 0.0.0.0:16509/tcp libvirt TCP: reachable, because nftables: policy accept of chain inet filter input"),
                  ("e-open", "br0 -> 0.0.0.0:8086/tcp: reachable, because nftables: policy accept of chain inet filter input")],
        "nodes": [("node", "bridge br0 (1 guest)"), ("node", "network lab (1 guest)"), ("node", "bridge br0"), ("node", "bridge virbr7"),
                  ("node danger", "0.0.0.0:16509/tcp libvirt TCP"), ("node exposed", "0.0.0.0:8086/tcp")],
    },
    "hardened": {
        "edges": [("e-net", "network default puts its guests on bridge virbr0"),
                  ("e-blocked", "virbr0 -> 10.20.0.5:22/tcp SSH: blocked, because nftables: policy drop of chain inet filter input")],
        "nodes": [("node", "network default (2 guests)"), ("node", "bridge virbr0"), ("node", "10.20.0.5:22/tcp SSH")],
    },
}


def test_golden_sections_and_graph(golden):
    """The page's outline and the golden roots' reachability pictures, as committed: a change to
    either is deliberate and shows here."""
    name, _, _, page = golden
    assert [e.content for e in page.all("h2")] == ["Failing results by severity", "Drift since the baseline", "What guests reach on the host",
                                                   "Findings", "Guests \u00d7 checks", "Checks in this report"]
    assert [e.content for e in page.all("button")] == ["severity", "status", "check", "resource"]
    graph = page.elements[page.elements.index(next(e for e in page.all("div") if e.attrs.get("class") == "graph")):]
    assert [(e.attrs["class"], e.content) for e in graph if e.tag == "path"] == GOLDEN_GRAPH[name]["edges"]
    assert [(e.attrs["class"], e.text[1]) for e in graph if e.tag == "g"] == GOLDEN_GRAPH[name]["nodes"]
