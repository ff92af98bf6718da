"""The HTML report in a real browser: Debian's Chromium, headless, driven over the DevTools pipe
(tests/fixtures/cdp_pipe.py). The page loads from file:// under its own CSP without one console
message or violation, the findings table filters as one types and sorts on a click, the print
stylesheet hides the controls, and the screenshot shows a drawn page. A control page with one
script the CSP does not allow proves the harness sees violations."""

from __future__ import annotations

import io
import pathlib
from xml.sax.saxutils import escape

import pytest

from hyperward.report import RenderOptions
from hyperward.report.html import render

from conftest import copy_root, require, scan
from cdp_pipe import Browser, chromium_path
from test_report_html import HOSTILE

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    require(chromium_path() is not None, "chromium (scripts/install.sh --test) renders the HTML report")
    tmp = tmp_path_factory.mktemp("html")
    root = copy_root("weak", tmp, kvm_mode=0o666)
    for old, new in HOSTILE.items():
        path = root / f"etc/libvirt/qemu/{old}.xml"
        path.write_text(path.read_text().replace(f"<name>{old}</name>", f"<name>{escape(new)}</name>"))
    out = tmp / "report.html"
    out.write_text(render(scan(root), RenderOptions()))
    return out


@pytest.fixture(scope="module")
def browser(page: pathlib.Path):
    with Browser() as b:
        b.open(page.as_uri())
        yield b


def _shown(b: Browser) -> tuple[int, int, str]:
    return b.evaluate("""(function () {
        var rows = Array.prototype.filter.call(document.querySelectorAll('#findings tbody tr'), function (r) { return !r.hidden; });
        return [rows.length, Number(document.getElementById('f-shown').textContent),
                rows.map(function (r) { return r.textContent; }).join('\\n')];
    }())""")


def test_loads_without_a_console_message_or_violation(browser: Browser):
    assert browser.problems() == []
    # the page's own script ran (CSP allowed it by hash): the default filter hid the passes
    assert browser.evaluate("document.querySelectorAll('#findings tbody tr[hidden]').length") > 0
    # hostile guest names stayed text: one script (the page's), no image, no alert
    assert browser.evaluate("document.scripts.length") == 1 and browser.evaluate("document.images.length") == 0
    text = browser.evaluate("document.body.textContent")
    assert all(name in text for name in HOSTILE.values())
    assert browser.evaluate("getComputedStyle(document.querySelector('.card')).borderTopStyle") == "solid"  # the style applied


def test_typing_filters_the_table(browser: Browser):
    before, counted, _ = _shown(browser)
    assert before == counted and before > 50
    browser.type_text("#f-text", "HV-AUTH-007")
    after, counted, text = _shown(browser)
    assert after == counted and 0 < after < before
    assert all("HV-AUTH-007" in line for line in text.split("\n"))
    browser.evaluate("var q = document.getElementById('f-text'); q.value = ''; q.dispatchEvent(new Event('input'))")
    assert _shown(browser)[0] == before
    browser.evaluate("var s = document.getElementById('f-sev'); s.value = '5'; s.dispatchEvent(new Event('change'))")
    critical, _, text = _shown(browser)
    assert 0 < critical < before and all(line.startswith("critical") for line in text.split("\n"))
    browser.evaluate("var s = document.getElementById('f-sev'); s.value = '0'; s.dispatchEvent(new Event('change'));"
                     "var t = document.getElementById('f-status'); t.value = ''; t.dispatchEvent(new Event('change'))")
    assert _shown(browser)[0] == browser.evaluate("document.querySelectorAll('#findings tbody tr').length")
    browser.evaluate("var t = document.getElementById('f-status'); t.value = 'problems'; t.dispatchEvent(new Event('change'))")
    assert browser.problems() == []


def test_clicking_a_heading_sorts(browser: Browser):
    resources = "Array.prototype.map.call(document.querySelectorAll('#findings tbody tr td:nth-child(4)'), function (c) { return c.textContent.toLowerCase(); })"
    browser.evaluate("document.querySelectorAll('#findings thead th button')[3].click()")
    down = browser.evaluate(resources)
    assert down == sorted(down, reverse=True)
    browser.evaluate("document.querySelectorAll('#findings thead th button')[3].click()")
    up = browser.evaluate(resources)
    assert up == sorted(up) and up != down
    browser.evaluate("document.querySelectorAll('#findings thead th button')[0].click()")
    severities = browser.evaluate("Array.prototype.map.call(document.querySelectorAll('#findings tbody tr'), function (r) { return Number(r.dataset.v); })")
    assert severities == sorted(severities, reverse=True)
    assert browser.problems() == []


def test_printed_without_the_controls(browser: Browser):
    browser.call("Emulation.setEmulatedMedia", media="print")
    try:
        assert browser.evaluate("getComputedStyle(document.querySelector('.controls')).display") == "none"
        pdf = browser.call("Page.printToPDF", printBackground=True)["data"]
        assert len(pdf) > 10_000
    finally:
        browser.call("Emulation.setEmulatedMedia", media="")


def test_screenshot_is_a_drawn_page(browser: Browser, tmp_path: pathlib.Path):
    from PIL import Image, ImageStat

    png = browser.screenshot()
    (tmp_path / "report.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (1280, 900)
    stat = ImageStat.Stat(image.convert("L"))
    assert stat.stddev[0] > 20, stat.stddev  # a blank or one-colour page has next to none
    colours = image.getcolors(maxcolors=1 << 16) or []
    reds = sum(n for n, (r, g, b) in colours if r > 150 and g < 90 and b < 90)
    assert reds > 200, "the severity bars and the red reachability edge are drawn"


def test_the_harness_sees_a_csp_violation(page: pathlib.Path, tmp_path: pathlib.Path):
    """A script the policy does not name must be refused and reported: otherwise an empty
    problems() above would prove nothing."""
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("</body>", "<script>document.title = 'ran'</script></body>"))
    with Browser() as b:
        b.open(bad.as_uri())
        assert b.evaluate("document.title") != "ran"
        assert any("Content Security Policy" in p for p in b.problems()), b.problems()
