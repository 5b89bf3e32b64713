"""Page-level consent (issue 21): the signals a page carried when it was crawled (archived X-Robots-Tag and TDMRep
headers, its head's robots / agent / TDMRep metas and links) are stored by every extractor from its own parse and
decided by the ``page_consent`` stage from the recipe; a real crawl of a WARC built here gives exactly the expected
removals, counts, manifest rows and card lines; changing the recipe decides again without re-extracting."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from obelics_builder.cli import main
from obelics_builder.errors import ConfigError
from obelics_builder.extract import extract_record
from obelics_builder.optout.page import (REASON_META, REASON_NOIMAGEAI, REASON_TDM, REASON_X_ROBOTS,
                                         PageConsentConfig, page_consent_stage, page_verdict)
from obelics_builder.recipe import load_recipe
from obelics_builder.resources import PIPELINES_DIR
from obelics_builder.stats import StageContext, Stats

URL = "https://site.example/page"

_WORDS = ("amber basil cedar delta ember fjord garnet harbor iris juniper kestrel lagoon meadow nutmeg orchard "
          "pebble quartz raven saffron thistle umber violet willow yarrow zephyr acorn birch clover dune "
          "fern glacier heather ivy jasmine kelp lichen marsh nettle oak poppy quince reed sorrel tansy").split()


def _para(n: int, k: int) -> str:
    """A paragraph of plain sentences, distinct for each page ``n`` (no near duplicates between pages)."""
    words = [_WORDS[(n * 7 + k * 3 + j * (n + 2)) % len(_WORDS)] for j in range(60)]
    sentences = [" ".join(words[i:i + 10]) for i in range(0, 60, 10)]
    return " ".join(f"The {s} were seen near the river on day {n}." for s in sentences)


def _page(n: int, head: str = "", body: str = "") -> bytes:
    return (f"<!doctype html><html><head><title>Notes from the valley, part {n}</title>{head}</head><body>{body}"
            f"<article><h1>Notes from the valley, part {n}</h1><p>{_para(n, 0)}</p>"
            f'<img src="https://img.example.com/p{n}.jpg" width="400" height="300"><p>{_para(n, 1)}</p>'
            f"</article></body></html>").encode()


#: (name, response headers besides Content-Type, head markup, body markup, expected document reason or None,
#:  whether its images go (noimageai))
PAGES = [
    ("plain", [], "", "", None, False),
    ("xrt-noai", [("X-Robots-Tag", "noindex, NoAI")], "", "", REASON_X_ROBOTS, False),
    ("xrt-other-agent", [("X-Robots-Tag", "otherbot: noai, noml")], "", "", None, False),
    # two headers: joined with ", " the second would read as otherbot's; kept one by one it applies to everyone
    ("xrt-two-headers", [("X-Robots-Tag", "otherbot: noai"), ("x-robots-tag", "NOML")], "", "", REASON_X_ROBOTS, False),
    ("xrt-our-agent", [("X-ROBOTS-TAG", "googlebot: noindex, Obelics-Builder: noai")], "", "", REASON_X_ROBOTS, False),
    ("meta-robots", [], '<META NAME="Robots" CONTENT="noindex, NoAI">', "", REASON_META, False),
    ("meta-our-agent", [], '<meta name="obelics-builder" content="noml">', "", REASON_META, False),
    ("meta-other-agent", [], '<meta name="googlebot" content="noai, noimageai">', "", None, False),
    ("decoys", [], '<noscript><meta name="robots" content="noai"></noscript>',
     '<meta name="robots" content="noai, noimageai"><meta name="tdm-reservation" content="1">', None, False),
    ("tdm-header", [("TDM-Reservation", "1"), ("tdm-policy", "https://rights.example/policy.json")], "", "",
     REASON_TDM, False),
    ("tdm-meta", [], '<meta name="tdm-reservation" content="1"><meta name="TDM-Policy" content="https://r.example/p">',
     "", REASON_TDM, False),
    ("tdm-header-wins", [("tdm-reservation", "0")], '<meta name="tdm-reservation" content="1">', "", None, False),
    ("tdm-link", [], '<link rel="tdm-reservation" href="https://site.example/tdmrep.json">', "", REASON_TDM, False),
    ("xrt-noimageai", [("X-Robots-Tag", "NoImageAI")], "", "", None, True),
    ("meta-noimageai", [], '<meta name="robots" content="max-image-preview:large noimageai">', "", None, True),
    ("xrt-other-noimageai", [("X-Robots-Tag", "otherbot: noimageai")], "", "", None, False),
    ("header-and-meta", [("X-Robots-Tag", "noai")], '<meta name="robots" content="noai">', "", REASON_X_ROBOTS,
     False),
]


def _url(name: str) -> str:
    return f"https://{name}.example.org/notes"


def _warc(path: Path) -> Path:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for n, (name, headers, head, body, _, _) in enumerate(PAGES):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8"), *headers],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(_url(name), "response", payload=io.BytesIO(
                _page(n, head, body)), http_headers=http))
    return path


# ---------------------------------------------------------------------------------------------------------------
# the head, read by every extractor from its own parse
# ---------------------------------------------------------------------------------------------------------------

MODES = ["default", "obelics", "trafilatura"]


@pytest.mark.parametrize("mode", MODES)
def test_every_extractor_stores_the_heads_signals_and_never_a_noscripts_or_the_bodys(mode):
    if mode == "trafilatura":
        pytest.importorskip("trafilatura")
    head = ('<noscript><meta name="robots" content="noai"></noscript><META NAME="Robots" CONTENT="NoIndex, NoAI">'
            '<meta name="description" content="a page"><meta name="tdm-policy" content="https://p.example/p.json">'
            '<link rel="alternate tdm-reservation" href="/tdm.json"><link rel="stylesheet" href="/s.css">')
    body = '<meta name="robots" content="noml"><meta name="tdm-reservation" content="1">'
    rec = {"url": URL, "body": _page(1, head, body), "http_headers": {},
           "consent_headers": [["x-robots-tag", "noindex"], ["x-robots-tag", "otherbot: NoAI"],
                               ["tdm-reservation", "0"]]}
    doc = extract_record(rec, mode)
    assert doc["general_metadata"]["page_consent"] == {
        "headers": [["x-robots-tag", "otherbot: NoAI"], ["tdm-reservation", "0"]],  # noindex alone is not kept
        "meta": [["robots", "NoIndex, NoAI"], ["tdm-policy", "https://p.example/p.json"]],
        "link": [["tdm-reservation", "/tdm.json"]]}
    assert doc["texts"]  # the page itself is extracted as ever
    # a page without signals gets no key at all (pages are stored exactly as before)
    plain = extract_record({"url": URL, "body": _page(1, '<meta name="robots" content="noindex">'),
                            "http_headers": {}, "consent_headers": [["x-robots-tag", "noindex"]]}, mode)
    assert "page_consent" not in plain["general_metadata"]


def test_the_default_extractor_parses_once(monkeypatch):
    from obelics_builder.extract import default

    calls = []
    real = default.LexborHTMLParser

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(default, "LexborHTMLParser", counting)
    doc = extract_record({"url": URL, "body": _page(2, '<meta name="robots" content="noai">'), "http_headers": {}})
    assert doc["general_metadata"]["page_consent"] == {"meta": [["robots", "noai"]]} and len(calls) == 1


# ---------------------------------------------------------------------------------------------------------------
# the decision, from the stored signals and the config
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("signals, expected", [
    ({"headers": [["x-robots-tag", "noindex,noai"]]}, REASON_X_ROBOTS),
    ({"headers": [["x-robots-tag", "*: noml"]]}, REASON_X_ROBOTS),
    ({"headers": [["x-robots-tag", "otherbot: noai"]]}, None),
    ({"headers": [["x-robots-tag", "obelics-builder/2.0: noai"]]}, REASON_X_ROBOTS),
    ({"headers": [["x-robots-tag", "unavailable_after: 2020-01-01, noai"]]}, REASON_X_ROBOTS),
    ({"meta": [["robots", "NOINDEX NOAI"]]}, REASON_META),
    ({"meta": [["robots", "noaix"]]}, None),
    ({"meta": [["otherbot", "noai"]]}, None),
    ({"headers": [["tdm-reservation", " 1 "]]}, REASON_TDM),
    ({"headers": [["tdm-reservation", "yes"]], "meta": [["tdm-reservation", "1"]]}, REASON_TDM),  # error -> unset
    ({"headers": [["tdm-reservation", "0"]], "link": [["tdm-reservation", "/x"]]}, None),
    ({"meta": [["tdm-policy", "https://p"]]}, None),  # a policy without a reservation reserves nothing
    ({"meta": [["robots", "noai"]], "headers": [["tdm-reservation", "1"]]}, REASON_META),  # first reason counts
])
def test_verdicts(signals, expected):
    assert page_verdict(signals, PageConsentConfig())[0] == expected


def test_each_signal_can_be_turned_off_and_the_agent_renamed():
    both = {"headers": [["x-robots-tag", "noai"]], "meta": [["robots", "noai"]]}
    assert page_verdict(both, PageConsentConfig(x_robots_tag=False))[0] == REASON_META
    assert page_verdict(both, PageConsentConfig(x_robots_tag=False, meta_robots=False))[0] is None
    assert page_verdict({"meta": [["tdm-reservation", "1"]]}, PageConsentConfig(tdm_reservation=False))[0] is None
    assert page_verdict({"meta": [["robots", "noimageai"]]}, PageConsentConfig(noimageai=False)) == (None, "", "")
    assert page_verdict(both, PageConsentConfig(enabled=False))[0] is None
    mine = {"headers": [["x-robots-tag", "mybot: noai"]], "meta": [["mybot", "noml"]]}
    assert page_verdict(mine, PageConsentConfig())[0] is None
    assert page_verdict(mine, PageConsentConfig(agent="MyBot"))[0] == REASON_X_ROBOTS
    assert page_verdict(mine, PageConsentConfig(agent="mybot", x_robots_tag=False))[0] == REASON_META


def _doc(url, signals, images=("https://i.example/a.jpg",)):
    texts = ["some text"] + [None] * len(images)
    return {"texts": texts, "images": [None, *images], "metadata": [None] + [{"src": u} for u in images],
            "general_metadata": {"url": url, **({"page_consent": signals} if signals else {})},
            "image_score": [None] + [1.0] * len(images)}


def test_stage_counts_removes_and_records():
    ctx = StageContext("page_consent", {}, Stats(), {"manifest": []})
    docs = [_doc("https://a/", None), _doc("https://b/", {"meta": [["robots", "noai"]]}),
            _doc("https://c/", {"meta": [["robots", "noimageai"]]}, images=("https://i/1", "https://i/2")),
            {**_doc("https://d/", {"headers": [["x-robots-tag", "noimageai"]]}), "texts": [None],
             "images": ["https://i/3"], "metadata": [{"src": "https://i/3"}], "image_score": [1.0]}]
    out = page_consent_stage(docs, ctx)
    assert [d["general_metadata"]["url"] for d in out] == ["https://a/", "https://c/"]
    assert out[1]["texts"] == ["some text"] and out[1]["images"] == [None] and out[1]["image_score"] == [None]
    st = ctx.stats.to_dict()["page_consent"]
    assert dict(st["removed"]) == {REASON_META: 1, REASON_NOIMAGEAI: 1}  # d: nothing but its image was left
    assert dict(st["images_removed"]) == {REASON_NOIMAGEAI: 3}
    rows = {(r["url"], r["kind"], r["source"], r["doc_url"]) for r in ctx.resources["manifest"]}
    assert rows == {("https://b/", "document", "page:meta-robots", "https://b/"),
                    ("https://i/1", "image", "page:noimageai", "https://c/"),
                    ("https://i/2", "image", "page:noimageai", "https://c/"),
                    ("https://i/3", "image", "page:noimageai", "https://d/")}
    again = page_consent_stage(out, StageContext("page_consent", {}, Stats(), {"manifest": []}))
    assert again == out  # safe to rerun


def test_config_is_typed_and_checked(tmp_path):
    assert PageConsentConfig.from_mapping(None) == PageConsentConfig.from_mapping({}) == PageConsentConfig()
    assert load_recipe("obelics", check_extractor=False)["page_consent"] == PageConsentConfig().as_dict()
    # the reference recipe has no section: the same defaults (its output on the sample is unchanged)
    assert load_recipe("obelics-2023", check_extractor=False)["page_consent"] == PageConsentConfig().as_dict()
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    assert "page_consent" in data["stages"]
    for section, message in (({"meta_robot": False}, "page_consent.meta_robot: unknown key"),
                             ({"noimageai": "yes"}, "page_consent.noimageai")):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({**data, "page_consent": section}), encoding="utf-8")
        with pytest.raises(ConfigError) as e:
            load_recipe(path, check_extractor=False)
        assert message in str(e.value), e.value.problems


# ---------------------------------------------------------------------------------------------------------------
# a real crawl
# ---------------------------------------------------------------------------------------------------------------

def _manifest(out: Path) -> set:
    (path,) = out.glob("optout-manifest-*.parquet")
    return {(r["url"], r["kind"], r["source"]) for r in pq.read_table(path).to_pylist()}


def _expected_manifest(skip: tuple = ()) -> set:
    rows = set()
    for n, (name, _, _, _, reason, images) in enumerate(PAGES):
        if reason is not None and reason not in skip:
            rows.add((_url(name), "document", reason.split(":", 1)[1]))
        if images:
            rows.add((f"https://img.example.com/p{n}.jpg", "image", "page:noimageai"))
    return rows


def test_crawl_removes_exactly_what_the_pages_withheld(tmp_path):
    warc = _warc(tmp_path / "consent.warc.gz")
    out = tmp_path / "out"
    assert main(["crawl", "--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network",
                 "--quiet", "--no-webdataset"]) == 0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["summary"]["accounted"], stats["summary"]["accounting_problems"]
    st = stats["stages"]["page_consent"]
    expected = {}
    for _, _, _, _, reason, _ in PAGES:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert st["removed"] == expected == {REASON_X_ROBOTS: 4, REASON_META: 2, REASON_TDM: 3}
    assert st["images_removed"] == {REASON_NOIMAGEAI: 2}
    assert st["documents_in"] == len(PAGES) and st["documents_out"] == len(PAGES) - 9
    assert st["images_out"] == st["images_in"] - 9 - 2
    assert list(stats["stages"])[:5] == ["read", "extract", "text_scores", "page_consent", "text_filter"]
    assert _manifest(out) == _expected_manifest()
    # the detail says what the page said, and the TDMRep policy
    rows = {r["url"]: r for r in pq.read_table(next(out.glob("optout-manifest-*.parquet"))).to_pylist()}
    assert rows[_url("tdm-header")]["detail"] == ("tdm-reservation: 1 (header); "
                                                  "tdm-policy: https://rights.example/policy.json")
    assert rows[_url("header-and-meta")]["detail"] == 'X-Robots-Tag: noai; meta robots="noai"'
    # the noimageai pages keep their text, without their images; the decoy pages are kept with their image
    text = {json.loads(r["general_metadata"])["url"]: r for f in (out / "parts" / "text").glob("*[0-9a-f].parquet")
            for r in pq.read_table(f).to_pylist()}
    kept = {_url(p[0]) for p in PAGES if p[4] is None}
    assert set(text) == kept
    for name in ("xrt-noimageai", "meta-noimageai"):
        assert text[_url(name)]["images"] == [None] * len(text[_url(name)]["images"])
        assert any(t for t in text[_url(name)]["texts"] if t)
    for name in ("decoys", "xrt-other-noimageai", "meta-other-agent", "plain"):
        assert any(text[_url(name)]["images"])
    # the dataset card: how many documents each signal removed
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "### Page-level consent" in card
    assert "| `consent:page:x-robots-tag` | 4 | - |" in card and "| `consent:page:meta-robots` | 2 | - |" in card
    assert "| `consent:page:tdm-reservation` | 3 | - |" in card and "| `consent:page:noimageai` | 0 | 2 |" in card

    # the same output, rerun with meta tags no longer honoured: decided again from the stored signals (the WARC
    # step is skipped: its scored part is not rewritten)
    scored = next((out / "parts" / "scored").glob("*.parquet"))
    before = scored.stat().st_mtime_ns
    data = yaml.safe_load((PIPELINES_DIR / "obelics.yaml").read_text(encoding="utf-8"))
    data["page_consent"]["meta_robots"] = False
    recipe = tmp_path / "no-meta.yaml"
    recipe.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert main(["crawl", "--warc", str(warc), "--out", str(out), "--scheduler", "sync", "--no-network",
                 "--quiet", "--no-webdataset", "--recipe", str(recipe)]) == 0
    assert scored.stat().st_mtime_ns == before
    st = json.loads((out / "stats.json").read_text(encoding="utf-8"))["stages"]["page_consent"]
    assert st["removed"] == {REASON_X_ROBOTS: 4, REASON_TDM: 3}
    assert any("meta_robots" in n for n in st["notes"])
    assert _manifest(out) == _expected_manifest(skip=(REASON_META,))
    card = (out / "dataset" / "README.md").read_text(encoding="utf-8")
    assert "| `consent:page:meta-robots` | 0 | - |" in card and "not honoured by the recipe: meta_robots" in card
    # `filter` redoes the decisions from the stored signals, with the recipe the output ran with
    assert main(["filter", str(out), "--config", "obelics-structured", "--scheduler", "sync", "--quiet"]) == 0
    st = json.loads((out / "stats.json").read_text(encoding="utf-8"))["stages"]["page_consent"]
    assert st["removed"] == {REASON_X_ROBOTS: 4, REASON_TDM: 3} and st["images_removed"] == {REASON_NOIMAGEAI: 2}
    assert _manifest(out) == _expected_manifest(skip=(REASON_META,))
    assert scored.stat().st_mtime_ns == before
