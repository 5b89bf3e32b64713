"""URL dedup (keep the latest capture) and the image-URL rules applied before fetching."""
from __future__ import annotations

from obelics_builder import schema
from obelics_builder.dedup.image_urls import image_url_doc_pairs, image_url_prefilter
from obelics_builder.dedup.urls import capture_rank, drop_duplicate_urls
from obelics_builder.stats import StageContext, Stats


def doc(url, warc, offset=0, images=()):
    d = schema.new_document({"url": url, "warc_filename": warc, "warc_record_offset": offset})
    schema.add_text(d, "text")
    for u in images:
        schema.add_image(d, {"src": u})
    return d


def test_rank_prefers_latest_crawl_then_offset():
    old = {"warc_filename": "crawl-data/CC-MAIN-2020-34/a.warc.gz", "warc_record_offset": 999}
    new = {"warc_filename": "crawl-data/CC-MAIN-2023-06/a.warc.gz", "warc_record_offset": 1}
    assert capture_rank(new) > capture_rank(old)
    assert capture_rank({**new, "warc_record_offset": 2}) > capture_rank(new)
    assert capture_rank({**new, "warc_record_offset": 10}) > capture_rank({**new, "warc_record_offset": 9})


def test_drop_duplicate_urls_keeps_latest():
    docs = [doc("u1", "crawl-data/CC-MAIN-2020-34/x"), doc("u1", "crawl-data/CC-MAIN-2023-06/x"),
            doc("u2", "crawl-data/CC-MAIN-2020-34/x"), doc("u1", "crawl-data/CC-MAIN-2021-04/x")]
    ctx = StageContext("url_dedup", stats=Stats())
    out = drop_duplicate_urls(docs, ctx)
    assert [(d["general_metadata"]["url"], d["general_metadata"]["warc_filename"]) for d in out] == [
        ("u1", "crawl-data/CC-MAIN-2023-06/x"), ("u2", "crawl-data/CC-MAIN-2020-34/x")]
    assert ctx.stats.to_dict()["url_dedup"]["removed"] == {"duplicate_url": 2}


def test_run_wide_best_rank_drops_local_copy():
    d = doc("u1", "crawl-data/CC-MAIN-2020-34/x")
    ctx = StageContext("url_dedup", stats=Stats(),
                       resources={"best_rank": {"u1": capture_rank({"warc_filename": "crawl-data/CC-MAIN-2023-06/y"})}})
    assert drop_duplicate_urls([d], ctx) == []


def test_image_url_prefilter_banned_and_frequent():
    d = doc("p", "w", images=["https://a/logo.png", "https://a/photo.jpg", "https://a/common.jpg"])
    ctx = StageContext("image_rules", stats=Stats(),
                       resources={"url_ban_words": ["logo"], "too_frequent": {"https://a/common.jpg"}})
    (out,) = image_url_prefilter([d], ctx)
    assert out["images"] == [None, "https://a/photo.jpg"]
    st = ctx.stats.to_dict()["image_rules"]
    assert st["images_removed"] == {"image:banned_url_substring": 1, "image:too_frequent_url": 1}


def test_pairs_are_distinct_per_document():
    d = doc("p", "w", images=["https://a/1.jpg", "https://a/1.jpg", "https://a/2.jpg"])
    pairs = image_url_doc_pairs([d])
    assert sorted(pairs["image_url"]) == ["https://a/1.jpg", "https://a/2.jpg"]
