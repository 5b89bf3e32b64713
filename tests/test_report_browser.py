"""The report in a real browser: Debian's headless Chromium (installed by scripts/install_test_browser.sh), driven
by Selenium through /usr/bin/chromedriver, loading the pages from a static server on 127.0.0.1 and from file://."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from obelics_builder.report import build_report
from report_fixture import NSFW_PHOTO, build_out

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _ensure_browser() -> str | None:
    """None when Chromium and its driver are usable, else the reason to skip."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        script = REPO / "scripts" / "install_test_browser.sh"
        try:
            r = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"cannot install chromium ({script.name}): {e}"
        if r.returncode != 0 or not Path(CHROMIUM).exists():
            return f"cannot install chromium ({script.name} exit {r.returncode}): {(r.stderr or r.stdout)[-400:]}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory, shared_data):
    out = tmp_path_factory.mktemp("report-browser") / "OUT"
    info = build_out(out, shared_data / "images" / "cc0-photos")
    info["index"] = build_report(out)
    info["out"] = out
    return info


@pytest.fixture(scope="module")
def server(report):
    handler = functools.partial(_QuietHandler, directory=str(report["out"] / "report"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def driver():
    reason = _ensure_browser()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="report-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,1600", f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except WebDriverException as e:
        shutil.rmtree(profile, ignore_errors=True)
        pytest.skip(f"chromium cannot be started: {str(e)[:400]}")
    d.set_page_load_timeout(30)
    yield d
    d.quit()
    shutil.rmtree(profile, ignore_errors=True)


def _severe(d) -> list[dict]:
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def _wait_images(d) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(d, 15).until(lambda x: x.execute_script(
        "return Array.from(document.images).every(i => i.complete)"))


def _check_cell(s: dict, stage: str, key: str, text: str) -> None:
    """A funnel cell shows its stage's figure: counts as integers, CPU seconds as a decimal (a dash when absent)."""
    if key == "cpu_seconds":
        if s.get(key) is None:
            assert text == "–", (stage, key, text)
        else:
            assert abs(float(text.replace(",", "")) - s[key]) <= max(1e-3, abs(s[key]) * 1e-3), (stage, key, text)
        return
    want = sum(s[key].values()) if isinstance(s[key], dict) else s[key]
    assert int(text.replace(",", "")) == want, (stage, key, text)


def test_funnel_in_browser_equals_stats(report, server, driver):
    driver.get(f"{server}/index.html")
    assert driver.title.startswith("Funnel")
    cells = driver.execute_script(
        "return Array.from(document.querySelectorAll('#funnel-table td[data-key], #image-fetch-table td[data-key]'))"
        ".map(td => [td.dataset.stage, td.dataset.key, td.textContent.trim()])")
    stages = json.loads((report["out"] / "stats.json").read_text())["stages"]
    # 10 counts and the CPU seconds per document stage, 4 counts and the CPU seconds of the image fetch
    assert len(cells) == 11 * (len(stages) - 1) + 5
    for stage, key, text in cells:
        _check_cell(stages[stage], stage, key, text)
    # the SVG funnel shows the same numbers
    bars = driver.execute_script(
        "return Array.from(document.querySelectorAll('svg.funnel text.bar-value'))"
        ".map(t => [t.dataset.stage, t.dataset.key, t.textContent.trim()])")
    assert ["read", "documents_in", "12"] in bars and ["final", "images_out", str(report["stats"]["summary"]["images"])] in bars
    assert len(bars) >= 3 * 4
    for stage, key, text in bars:
        assert int(text.replace(",", "")) == stages[stage][key], (stage, key, text)
    reasons = driver.execute_script(
        "return Array.from(document.querySelectorAll('#reasons-table td[data-reason]'))"
        ".map(td => [td.dataset.stage, td.dataset.kind, td.dataset.reason, td.textContent.trim()])")
    assert ["read", "errors", "bad_record", "1"] in reasons
    assert all(int(n.replace(",", "")) == stages[s][k][r] for s, k, r, n in reasons)
    assert driver.execute_script("return window.__pwned === undefined")
    assert _severe(driver) == []
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "report-index.png"))


def test_sample_documents_show_images(report, server, driver):
    driver.get(f"{server}/documents-1.html")
    _wait_images(driver)
    imgs = driver.execute_script(
        "return Array.from(document.querySelectorAll('article.doc img')).map(i => [i.getAttribute('src'), i.naturalWidth])")
    assert len(imgs) == report["images_shown"]
    assert all(src.startswith("thumbs/") and w > 0 for src, w in imgs), imgs
    assert driver.execute_script("return document.querySelectorAll('.hidden-img.nsfw').length") == report["nsfw_hidden"]
    html = driver.page_source
    assert NSFW_PHOTO not in html.replace(f"a photo: {NSFW_PHOTO}", "")
    # the crawled <script> is text on the page, never code
    text = driver.find_element("tag name", "main").text
    assert "<script>window.__pwned = 1;" in text
    assert driver.execute_script("return window.__pwned === undefined")
    assert driver.execute_script("return document.querySelectorAll('main script, main img[src=x]').length") == 0
    assert _severe(driver) == []
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "report-documents.png"))


def test_other_pages_and_file_url(report, server, driver):
    ARTIFACTS.mkdir(exist_ok=True)
    for page in ("removals.html", "distributions.html"):
        driver.get(f"{server}/{page}")
        assert _severe(driver) == [], page
        assert driver.execute_script("return window.__pwned === undefined")
        driver.save_screenshot(str(ARTIFACTS / f"report-{page[:-5]}.png"))
    driver.get(f"{server}/distributions.html")
    assert driver.execute_script("return document.querySelectorAll('svg.hist line.cutoff').length") >= 4
    # the same pages work straight from disk
    driver.get((report["out"] / "report" / "documents-1.html").as_uri())
    _wait_images(driver)
    widths = driver.execute_script("return Array.from(document.querySelectorAll('article.doc img')).map(i => i.naturalWidth)")
    assert len(widths) == report["images_shown"] and all(w > 0 for w in widths)
    assert _severe(driver) == []


def test_report_of_the_sample_run_in_browser(sample_run, driver):
    """The report of the real sample crawl: funnel numbers equal stats.json, documents show their images."""
    out, _ = sample_run
    build_report(out)
    handler = functools.partial(_QuietHandler, directory=str(out / "report"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        stages = json.loads((out / "stats.json").read_text())["stages"]
        driver.get(f"{base}/index.html")
        cells = driver.execute_script(
            "return Array.from(document.querySelectorAll('#funnel-table td[data-key]'))"
            ".map(td => [td.dataset.stage, td.dataset.key, td.textContent.trim()])")
        assert cells
        for stage, key, text in cells:
            _check_cell(stages[stage], stage, key, text)
        assert _severe(driver) == []
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "report-sample-index.png"))
        driver.get(f"{base}/documents-1.html")
        _wait_images(driver)
        widths = driver.execute_script(
            "return Array.from(document.querySelectorAll('article.doc img')).map(i => i.naturalWidth)")
        assert widths and all(w > 0 for w in widths)
        assert _severe(driver) == []
        driver.save_screenshot(str(ARTIFACTS / "report-sample-documents.png"))
    finally:
        httpd.shutdown()
        httpd.server_close()
