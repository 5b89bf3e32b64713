"""``--mode trafilatura``: trafilatura 2.3 mapped into the interleaved schema, its deadline, its errors, its CLI."""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import pytest

trafilatura = pytest.importorskip("trafilatura")  # the optional extra; CI installs it through .[dev]

from obelics_builder import schema  # noqa: E402
from obelics_builder.extract import trafilatura_mode as tm  # noqa: E402
from obelics_builder.extract.obelics import ExtractionTimeout  # noqa: E402
from obelics_builder.extract.stage import MODES, ExtractionRejected, extract_html, extract_record, extract_stage  # noqa: E402
from obelics_builder.extract.urls import base_href  # noqa: E402
from obelics_builder.extract.watchdog import DeadlineExceeded, run_with_deadline  # noqa: E402
from obelics_builder.recipe import ConfigError, ExtractConfig, load_recipe  # noqa: E402
from obelics_builder.stats import StageContext, Stats  # noqa: E402

PROSE = "The river kept rising after three days of rain in the valley, the officials said on Monday. " * 3


def _page(shared_data, name: str) -> str:
    return (shared_data / "pages" / "readability-dev" / name / "source.html").read_text(encoding="utf-8")


def _images(nodes):
    return [v for k, v in nodes if k == "image"]


def _check_shape(nodes, page_url):
    assert nodes
    for kind, value in nodes:
        assert kind in ("text", "image")
        if kind == "text":
            assert value.strip() and "\n\n\n" not in value and value == value.strip()
        else:
            assert value["src"].startswith(("http://", "https://")) and value["document_url"] == page_url
            assert " " not in value["src"] and not value["unformatted_src"].startswith("data:")
    kinds = [k for k, _ in nodes]
    assert all(not (a == b == "text") for a, b in zip(kinds, kinds[1:])), "two text nodes in a row"


def test_mode_is_wired():
    assert "trafilatura" in MODES
    assert ExtractConfig.from_mapping({"mode": "trafilatura"}).mode == "trafilatura"
    assert load_recipe("obelics", overrides={"extract": {"mode": "trafilatura"}})["extract"]["mode"] == "trafilatura"


# ---- mapping on shared pages ------------------------------------------------------------------------------------

def test_lazy_images_protocol_relative(shared_data):
    """mozilla-1: the article's images are lazy (data-src over a data: placeholder, protocol-relative URLs)."""
    html = _page(shared_data, "mozilla-1")
    url = "https://www.mozilla.org/en-US/firefox/desktop/customize/"
    nodes = extract_trafilatura_checked(html, url)
    imgs = _images(nodes)
    assert len(imgs) >= 5
    for m in imgs:  # the lazy source, resolved with the page's scheme (trafilatura alone would say http:)
        assert m["unformatted_src"].startswith("//mozorg.cdn.mozilla.net/")
        assert m["src"] == "https:" + m["unformatted_src"]
    assert nodes[0][0] == "text" and nodes[0][1].startswith("Make your Firefox your own")
    assert any(m.get("alt_text", "").startswith("Preview of the") for m in imgs)


def test_base_element_and_relative_urls(shared_data):
    """base-url-base-element-relative: <base href="base/"> applies to relative sources (trafilatura joins them to
    the page URL); root-relative and absolute ones are untouched."""
    html = _page(shared_data, "base-url-base-element-relative")
    url = "http://fakehost/test/page.html"
    nodes = extract_trafilatura_checked(html, url)
    srcs = [m["src"] for m in _images(nodes)]
    assert srcs == ["http://fakehost/test/base/foo/bar/baz.png", "http://fakehost/foo/bar/baz.png",
                    "http://test/foo/bar/baz.png", "https://test/foo/bar/baz.png"]
    assert base_href(html, url) == "http://fakehost/test/base/"
    # page order: heading and first paragraph, then the images, then the "Foo" section
    assert nodes[0][0] == "text" and nodes[0][1].startswith("Lorem\n\nLorem ipsum")
    assert nodes[-1][0] == "text" and nodes[-1][1].startswith("Foo\n\nTempor incididunt")


def test_root_relative_sources(shared_data):
    html = _page(shared_data, "dropbox-blog")
    nodes = extract_trafilatura_checked(html, "https://dropbox.tech/infrastructure/asynchronous-task-scheduling")
    imgs = _images(nodes)
    assert imgs and all(m["unformatted_src"].startswith("/cms/") for m in imgs)
    assert all(m["src"] == "https://dropbox.tech" + m["unformatted_src"] for m in imgs)


def test_figures_sizes_alt_and_order(shared_data):
    """bbc-1: <figure> images keep their alt text and width/height (trafilatura drops both sizes), in page order."""
    html = _page(shared_data, "bbc-1")
    nodes = extract_trafilatura_checked(html, "http://www.bbc.com/news/world-us-canada-33646542")
    imgs = _images(nodes)
    assert len(imgs) >= 3
    first = imgs[0]
    assert first["src"].endswith("_84456971_gettyimages-167501087.jpg")
    assert first["alt_text"].startswith("Gun control campaigners protest")
    assert (first["rendered_width"], first["rendered_height"]) == (976, 549)
    # the headline and intro come first, then the first figure, then the text that follows it on the page
    assert nodes[0][0] == "text" and "Obama" in nodes[0][1].split("\n\n")[0]
    i = nodes.index(("image", first))
    assert nodes[i + 1][0] == "text" and "distressing" in nodes[i + 1][1]
    text = "\n\n".join(v for k, v in nodes if k == "text")
    assert text.index("Analysis: Jon Sopel") < text.index("Kenya trip")


def test_srcset_valued_lazy_attribute(shared_data):
    """lazy-image-2: trafilatura takes a data-srcset list for a URL; we take its largest candidate."""
    html = _page(shared_data, "lazy-image-2")
    nodes = extract_trafilatura_checked(html, "https://kotaku.com/metroid")
    imgs = _images(nodes)
    assert len(imgs) > 20
    assert imgs[0]["src"].endswith("/c_scale,f_auto,fl_progressive,q_80,w_800/18zu12g5xzyxojpg.jpg")


def test_real_pages_all_valid(shared_data):
    pages = sorted((shared_data / "pages" / "readability-dev").glob("*/source.html"))[:25]
    for path in pages:
        try:
            doc = extract_record({"url": "https://www.example.com/a/b.html", "body": path.read_bytes()},
                                 mode="trafilatura", time_budget_s=30)
        except ExtractionRejected as e:
            assert e.reason == "empty_document", (path, e.reason)
            continue
        schema.validate(doc)


def extract_trafilatura_checked(html, url):
    nodes = tm.extract_trafilatura(html, url)
    _check_shape(nodes, url)
    return nodes


# ---- mapping on a hand-built page -------------------------------------------------------------------------------

HAND = f"""<html><head><title>t</title></head><body><nav><a href="/">Home</a></nav><article><h1>Flood news</h1>
<p>{PROSE}</p>
<figure><img src="/img/flood.jpg" alt=" The flooded bridge " width="640" height="480px">
<figcaption>The old bridge under water on Monday.</figcaption></figure>
<p>{PROSE}</p>
<p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==" data-src=" photos/lazy.png "
 title="A lazy one" alt="Lazy"></p>
<ul><li>First point of the list</li><li>Second <b>point</b> of the list</li></ul>
<table><tr><th>Town</th><th>Level</th></tr><tr><td>Aville</td><td>3 m</td></tr></table>
<pre><code>def f(x):
    return x + 1</code></pre>
<p>{PROSE}</p><img src="https://cdn.example.org:8443/a/b.webp"><img src="data:image/png;base64,AAAA.png">
<img src="http://bücher.example/x.jpg"><img src="/img/flood.jpg">
<p>The last paragraph of the article, with a few words to finish the story here.</p></article></body></html>"""


def test_hand_built_mapping():
    url = "https://news.example.com/2024/05/story.html"
    nodes = extract_trafilatura_checked(HAND, url)
    kinds = [k for k, _ in nodes]
    assert kinds == ["text", "image", "text", "image", "text", "image", "image", "text"]
    t0, fig, t1, lazy, t2, port, idn, last = (v for _, v in nodes)
    assert t0 == "Flood news\n\n" + PROSE.strip()
    assert fig == {"document_url": url, "unformatted_src": "/img/flood.jpg", "src": "https://news.example.com/img/flood.jpg",
                   "alt_text": "The flooded bridge", "rendered_width": 640, "rendered_height": 480}
    assert t1 == PROSE.strip()
    assert lazy["src"] == "https://news.example.com/2024/05/photos/lazy.png" and lazy["unformatted_src"] == "photos/lazy.png"
    assert lazy["title"] == "A lazy one" and lazy["alt_text"] == "Lazy"
    # list items and table rows are lines, cells " | ", code keeps its indentation; paragraphs "\n\n"
    assert t2 == ("First point of the list\nSecond point of the list\n\nTown | Level\nAville | 3 m\n\n"
                  "def f(x):\n    return x + 1\n\n" + PROSE.strip())
    assert port["src"] == "https://cdn.example.org:8443/a/b.webp"  # explicit port kept
    assert idn["src"] == "http://bücher.example/x.jpg"  # IDN host kept as written; data: URI and the repeat dropped
    assert last.startswith("The last paragraph")
    assert "Home" not in t0


def test_no_images_page_and_empty_result():
    assert extract_html(f"<html><body><article><p>{PROSE}</p></article></body></html>", "https://a.example/",
                        mode="trafilatura")["texts"] == [PROSE.strip()]
    with pytest.raises(ExtractionRejected) as e:
        extract_html("<html><body><script>var x = 1;</script></body></html>", "https://a.example/", mode="trafilatura")
    assert e.value.reason == "empty_document"


# ---- missing extra ----------------------------------------------------------------------------------------------

def test_missing_extra_is_one_config_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(tm, "_TRAF", None)
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # "import trafilatura" now raises ImportError
    with pytest.raises(ConfigError) as e:
        tm.require_trafilatura()
    assert str(e.value) == "--mode trafilatura needs the optional extra: pip install 'obelics-builder[trafilatura]'"
    with pytest.raises(ConfigError):
        load_recipe("obelics", overrides={"extract": {"mode": "trafilatura"}})
    with pytest.raises(ConfigError):
        extract_stage([{"url": "https://a.example/", "body": b"<p>x</p>"}],
                      StageContext("extract", {"mode": "trafilatura"}, Stats()))
    assert load_recipe("obelics")["extract"]["mode"] == "default"  # the other modes do not need it
    page = tmp_path / "p.html"
    page.write_text(f"<p>{PROSE}</p>", encoding="utf-8")
    rc, rows, err = _run_extract([str(page), "--mode", "trafilatura"], capsys)
    assert rc == 2 and rows == []
    assert err.strip() == ("extract: --mode trafilatura needs the optional extra: "
                           "pip install 'obelics-builder[trafilatura]'")


def test_crawl_missing_extra_exit_2(monkeypatch, tmp_path, capsys):
    from obelics_builder.cli import main

    monkeypatch.setattr(tm, "_TRAF", None)
    monkeypatch.setitem(sys.modules, "trafilatura", None)
    rc = main(["crawl", "--warc", str(tmp_path / "none.warc.gz"), "--out", str(tmp_path / "out"),
               "--mode", "trafilatura"])
    err = capsys.readouterr().err
    assert rc == 2 and "needs the optional extra: pip install 'obelics-builder[trafilatura]'" in err
    assert not (tmp_path / "out").exists()


# ---- deadline ---------------------------------------------------------------------------------------------------

def _slow_extract(*args, **kwargs):
    """A trafilatura call that never ends by itself (pure Python, and it swallows Exception like trafilatura's
    fallbacks do)."""
    while True:
        try:
            sum(range(1000))
        except Exception:  # noqa: BLE001 - the deadline must get through this
            pass


def test_timeout_on_slow_page(monkeypatch):
    monkeypatch.setattr(trafilatura, "extract", _slow_extract)
    t0 = time.monotonic()
    with pytest.raises(ExtractionRejected) as e:
        extract_html(f"<p>{PROSE}</p>", "https://slow.example/", mode="trafilatura", time_budget_s=0.3)
    assert e.value.reason == "timeout" and time.monotonic() - t0 < 2.0


def test_timeout_in_a_worker_thread(monkeypatch):
    """Dask runs tasks in threads: the deadline is not a signal, it reaches any thread."""
    monkeypatch.setattr(trafilatura, "extract", _slow_extract)
    out = {}

    def work(k: int, budget: float):
        t0 = time.monotonic()
        try:
            tm.extract_trafilatura(f"<p>{PROSE}</p>", "https://slow.example/", deadline=t0 + budget)
            out[k] = "returned"
        except ExtractionTimeout:
            out[k] = ("timeout", time.monotonic() - t0 >= budget)
        except BaseException as e:  # noqa: BLE001
            out[k] = repr(e)

    threads = [threading.Thread(target=work, args=(k, 0.2 + 0.3 * k)) for k in range(2)]  # two deadlines at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert out == {0: ("timeout", True), 1: ("timeout", True)}


def test_deadline_never_lands_after_return():
    """Many calls that end around their deadline: the exception is only ever seen inside run_with_deadline."""
    outcomes = {"ok": 0, "late": 0}
    for i in range(300):
        budget = 0.0005 + (i % 7) * 0.0003

        def work():
            t_end = time.perf_counter() + budget * (0.6 + (i % 5) * 0.2)
            while time.perf_counter() < t_end:
                pass
            return i

        try:
            assert run_with_deadline(work, time.monotonic() + budget) == i
            outcomes["ok"] += 1
        except DeadlineExceeded:
            outcomes["late"] += 1
        # plain Python after the call: a stray PageDeadline would surface here and fail the test
        t_end = time.perf_counter() + 0.002
        while time.perf_counter() < t_end:
            pass
    assert outcomes["ok"] and outcomes["late"]


def test_deep_nesting_within_budget():
    n = 100_000
    html = "<html><body>" + "<div>" * n + f"<p>{PROSE}</p>" + "</div>" * n + "</body></html>"
    t0 = time.monotonic()
    # capped to MAX_NESTING first: without it libxml2 stops at depth 256 and trafilatura returns nothing
    doc = extract_html(html, "https://deep.example/", mode="trafilatura", time_budget_s=5)
    assert doc["texts"] == [PROSE.strip()]
    assert time.monotonic() - t0 < 5


# ---- exceptions are counted with the page URL -------------------------------------------------------------------

def test_exception_counted_with_url(monkeypatch):
    def boom(*args, **kwargs):
        raise KeyError("broken tree")

    monkeypatch.setattr(trafilatura, "extract", boom)
    stats = Stats()
    ctx = StageContext("extract", {"mode": "trafilatura", "page_time_budget_s": 5.0}, stats)
    records = [{"url": "https://bad.example/page", "body": f"<p>{PROSE}</p>".encode(), "warc_filename": "f.warc.gz",
                "warc_record_offset": 7}]
    assert extract_stage(records, ctx) == []
    s = stats.stage("extract")
    assert dict(s["errors"]) == {"extract_exception": 1}
    (ex,) = s["examples"]
    assert ex["url"] == "https://bad.example/page" and ex["offset"] == 7
    assert "trafilatura" in ex["message"] and "KeyError" in ex["message"] and "broken tree" in ex["message"]
    # output we cannot read is counted the same way
    monkeypatch.setattr(trafilatura, "extract", lambda *a, **k: "<doc><main><p>unclosed</main></doc>")
    assert extract_stage(records, ctx) == []
    assert dict(s["errors"]) == {"extract_exception": 2}
    assert "trafilatura" in s["examples"][1]["message"] and "XMLSyntaxError" in s["examples"][1]["message"]


# ---- the command line -------------------------------------------------------------------------------------------

def _run_extract(argv, capsys):
    from obelics_builder.commands import extract as cmd

    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    rc = cmd.run(p.parse_args(argv))
    out, err = capsys.readouterr()
    return rc, [json.loads(line) for line in out.splitlines()], err


def test_cli_extract_html_and_warc(shared_data, tmp_path, capsys):
    from obelics_builder.cli import main

    page = tmp_path / "story.html"
    page.write_text(HAND, encoding="utf-8")
    assert main(["extract", str(page), "--mode", "trafilatura", "--url", "https://news.example.com/s.html"]) == 0
    out, err = capsys.readouterr()
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["images"][1] == "https://news.example.com/img/flood.jpg"
    assert json.loads(row["metadata"])[1]["rendered_width"] == 640
    assert "1 documents" in err

    warc = shared_data / "warc" / "commoncrawl-2020-34-excerpt" / "warcfile.warc.gz"
    rc, rows, err = _run_extract([str(warc), "--mode", "trafilatura", "--limit", "5"], capsys)
    assert rc == 0 and len(rows) == 5 and "5 documents" in err
    for row in rows:
        meta = json.loads(row["metadata"])
        assert len(row["texts"]) == len(row["images"]) == len(meta)
        for im, m in zip(row["images"], meta):
            assert (im is None) == (m is None)
            if m is not None:
                assert im == m["src"] and im.startswith(("http://", "https://"))


def test_card_names_the_mode():
    from obelics_builder.dataset.card import _extractor
    from obelics_builder.recipe import recipe_provenance

    recipe = load_recipe("obelics", overrides={"extract": {"mode": "trafilatura"}})
    run = recipe_provenance(recipe)
    assert run["extract_mode"] == "trafilatura"
    assert _extractor({"run": run}) == ("`trafilatura` (trafilatura 2.3 with images kept, mapped into the interleaved "
                                        "schema by obelics-builder)")
