"""The static report without a browser: content, escaping, NSFW handling, removed examples, the command."""
from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

import pytest

from obelics_builder.commands import report as report_cmd
from obelics_builder.io.parquet import read_documents, write_documents
from obelics_builder.report import build_report
from obelics_builder.report.build import (esc, is_nsfw, make_thumb, safe_href, svg_histogram)
from report_fixture import EVIL, NSFW_PHOTO, PHOTOS, build_out, img_url


@pytest.fixture()
def out(tmp_path, shared_data):
    o = tmp_path / "OUT"
    info = build_out(o, shared_data / "images" / "cc0-photos")
    return o, info


def _pages(o: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (o / "report").glob("*.html")}


def test_pages_written_and_self_contained(out):
    o, info = out
    index = build_report(o)
    assert index == o / "report" / "index.html"
    pages = _pages(o)
    assert set(pages) == {"index.html", "documents-1.html", "removals.html", "distributions.html"}
    for name, text in pages.items():
        # no external resource: every src is a local thumb or data:, no stylesheet/script links at all
        srcs = re.findall(r'\ssrc="([^"]*)"', text)
        assert all(s.startswith("thumbs/") for s in srcs), (name, srcs)
        assert "<link rel=\"stylesheet\"" not in text and "<script" not in text.lower()
        assert "Content-Security-Policy" in text
        assert "img.example.org/photos" not in " ".join(srcs)


def test_funnel_numbers_equal_stats(out):
    o, info = out
    build_report(o)
    text = _pages(o)["index.html"]
    cells = re.findall(r'<td class="num" data-stage="([^"]+)" data-key="([^"]+)" data-value="(\d+)">([\d,]+)</td>', text)
    stages = info["stats"]["stages"]
    assert len(cells) == 10 * (len(stages) - 1) + 4
    for stage, key, value, shown in cells:
        want = sum(stages[stage][key].values()) if isinstance(stages[stage][key], dict) else stages[stage][key]
        assert int(value) == want == int(shown.replace(",", ""))
    reasons = re.findall(r'data-stage="([^"]+)" data-kind="([^"]+)" data-reason="([^"]+)" data-value="(\d+)"', text)
    expected = {(s, k, r) for s, st in stages.items() for k in ("removed", "nodes_removed", "images_removed", "errors")
                for r in st[k]}
    assert {(s, k, r) for s, k, r, _ in reasons} == expected
    assert all(int(n) == stages[s][k][r] for s, k, r, n in reasons)
    assert "perplexity filter disabled" in text


def test_funnel_table_shows_cpu_seconds_per_stage(out):
    o, info = out
    build_report(o)
    text = _pages(o)["index.html"]
    assert "<th rowspan=2>CPU seconds</th>" in text
    cells = dict(re.findall(r'data-stage="([^"]+)" data-key="cpu_seconds" data-value="([\d.]+)"', text))
    stages = info["stats"]["stages"]
    want = {n: s["cpu_seconds"] for n, s in stages.items() if "cpu_seconds" in s}
    assert {n: float(v) for n, v in cells.items()} == want
    assert cells["extract"] == "1.750" and cells["image_fetch"] == "2.500"  # the image-fetch table has it too
    # a stats.json without CPU seconds (older runs) shows a dash, not 0
    assert re.search(r'data-stage="image_rules" data-key="cpu_seconds">–</td>', text)


def test_crawled_html_is_escaped_everywhere(out):
    o, _ = out
    build_report(o)
    pages = _pages(o)
    joined = "".join(pages.values())
    assert "<script" not in joined.lower()
    assert "onerror=" not in joined.replace(html.escape('onerror="'), "")
    assert esc(EVIL) in pages["documents-1.html"]          # shown as text
    assert esc("HTTP 404 " + EVIL)[:40] in pages["removals.html"] or esc(EVIL) in pages["removals.html"]
    # the javascript: "URL" of a document is printed, never linked
    assert 'href="javascript' not in joined.lower()
    assert "javascript:alert(1)" in pages["documents-1.html"]


def test_sample_documents_interleaved_with_local_thumbs(out):
    o, info = out
    build_report(o)
    page = _pages(o)["documents-1.html"]
    assert page.count("<article class=\"doc\"") == info["documents"]
    thumbs = sorted((o / "report" / "thumbs").glob("*.jpg"))
    assert len(thumbs) == len(PHOTOS)                       # the NSFW photo never gets a thumbnail
    for t in thumbs:
        assert t.read_bytes()[:3] == b"\xff\xd8\xff"        # JPEG
    # order is kept: text, images, text
    first = page.index("The harbour was quiet")
    assert first < page.index("photos/astronaut.png") < page.index("photos/chelsea.png") < page.index("Later that day")
    assert page.count('<img class="thumb"') == info["images_shown"]
    assert page.count("image hidden: flagged NSFW") == 1
    assert img_url(NSFW_PHOTO) not in page
    assert "<th>words</th>" in page and "doc_stopwords" in page and "doc_lang_score" in page   # scores
    assert "language: en (0.97)" in page


def test_nsfw_document_column_hides_image(tmp_path, out):
    o, _ = out
    docs = read_documents(o / "documents" / "part-00000.parquet")
    for d in docs:
        d["image_nsfw"] = [None if t is None and u is None else (1.0 if u and u.endswith("coffee.png") else 0.0 if u else None)
                           for t, u in zip(d["texts"], d["images"])]
    write_documents(o / "documents" / "part-00000.parquet", docs)
    build_report(o, tmp_path / "rep")
    page = (tmp_path / "rep" / "documents-1.html").read_text()
    assert img_url("coffee.png") not in page
    assert page.count("image hidden: flagged NSFW") == 2
    idx = (tmp_path / "rep" / "index.html").read_text()
    assert 'id="images-nsfw-hidden">2<' in idx


def test_removed_examples_next_to_thresholds(out):
    o, _ = out
    build_report(o)
    page = _pages(o)["removals.html"]

    def section(anchor):
        start = page.index(f'id="{anchor}"')
        end = page.index("</section>", start)
        return page[start:end]

    words = section("node-number_words")
    assert "keep if ≥ 4" in words and "Menu" in words and "Too short here" in words
    assert "The harbour was quiet" not in words
    stop = section("node-stopwords")
    assert "Zebra quantum" in stop and "0 &lt; min 0.3" in stop
    assert "Menu" not in stop                               # shown only under the first failing check
    lang = section("doc-lang_id")
    assert "0.3 &lt; min 0.8" in lang and "site13.example.com" in lang and "doc_lang_score" in lang
    dstop = section("doc-stopwords")
    assert "0.05 &lt; min 0.35" in dstop and "site10.example.com" in dstop
    assert 'data-check="node.number_words">3<' in page
    assert "too_small" in page and "min_size = 150" in page
    assert 'id="nsfw-count">1<' in page
    assert img_url(NSFW_PHOTO) not in page
    assert "bad_record" in page and "w1.warc.gz" in page     # error examples from stats.json
    assert "text_filter/node:number_words: 5" in page       # the stats.json count next to the recomputed one
    # the doc example shows the node-filtered text the doc scores describe ("Click here." fails node.number_words)
    assert "Click here." not in section("doc-stopwords") and "Buy now buy now" in section("doc-stopwords")


def test_distributions_have_cutoffs(out):
    o, _ = out
    build_report(o)
    page = _pages(o)["distributions.html"]
    assert page.count('class="cutoff"') >= 4
    assert "node.stopwords" in page and "min 0.3 removes 5.6%" in page


def test_histogram_and_helpers():
    svg = svg_histogram([0.1, 0.2, 0.2, 0.9], "t<x>", cut_min=0.15, cut_max=0.5)
    assert "t&lt;x&gt;" in svg and svg.count('class="cutoff"') == 2
    assert "min 0.15 removes 25.0%" in svg and "max 0.5 removes 25.0%" in svg
    assert "no values" in svg_histogram([], "empty")
    assert svg_histogram([3.0, 3.0], "flat").count("<rect") == 1
    assert safe_href("javascript:alert(1)") is None and safe_href("data:text/html,x") is None
    assert safe_href('https://a.example/"><x') == "https://a.example/&quot;&gt;&lt;x"
    assert is_nsfw(True) and is_nsfw(0.9) and not is_nsfw(0.1) and not is_nsfw(None) and is_nsfw("nsfw")
    assert is_nsfw({"porn": 0.8, "neutral": 0.2}) and not is_nsfw({"neutral": 0.99})


def test_bad_inputs_are_reported_not_fatal(tmp_path, out):
    o, _ = out
    (o / "documents" / "part-00001.parquet").write_bytes(b"not parquet")
    assert make_thumb(b"\x89PNG garbage", tmp_path / "x.jpg", 64, 10**8) is None
    # an image row with undecodable bytes gets a placeholder, not a crash
    import pyarrow.parquet as pq
    t = pq.read_table(o / "images" / "table" / "part-00000.parquet").to_pylist()
    for r in t:
        if r["url"] == img_url("rocket.jpg"):
            r["data"] = b"\xff\xd8\xff garbage"
    import pyarrow as pa
    from report_fixture import IMAGE_SCHEMA
    pq.write_table(pa.Table.from_pylist(t, schema=IMAGE_SCHEMA), o / "images" / "table" / "part-00000.parquet")
    build_report(o)
    pages = _pages(o)
    assert "cannot read part-00001.parquet" in pages["index.html"]
    assert "no image bytes in the image table" in pages["documents-1.html"]
    assert 'id="images-missing">1<' in pages["index.html"]


def test_pages_and_reruns(out):
    o, _ = out
    build_report(o, sample=4, per_page=1)
    assert sorted(p.name for p in (o / "report").glob("documents-*.html")) == [f"documents-{i}.html" for i in range(1, 5)]
    build_report(o, sample=4, per_page=3)
    assert sorted(p.name for p in (o / "report").glob("documents-*.html")) == ["documents-1.html", "documents-2.html"]
    assert 'href="documents-2.html"' in (o / "report" / "documents-1.html").read_text()


def test_command(out, tmp_path, capsys):
    o, _ = out
    p = argparse.ArgumentParser()
    report_cmd.add_arguments(p)
    assert report_cmd.run(p.parse_args([str(tmp_path / "nothing")])) == 2
    assert "stats.json not found" in capsys.readouterr().err
    assert report_cmd.run(p.parse_args([str(o), "--sample", "2", "--quiet"])) == 0
    assert (o / "report" / "index.html").is_file()
    (o / "stats.json").write_text("{broken", encoding="utf-8")
    assert report_cmd.run(p.parse_args([str(o)])) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert report_cmd.DESCRIPTION.startswith("Write OUT/report/index.html")
