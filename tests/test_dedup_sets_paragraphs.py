"""Image-URL-set dedup and per-domain paragraph dedup (stages and run-wide reductions)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from obelics_builder import schema
from obelics_builder.dedup import image_sets, paragraphs
from obelics_builder.engine.dedup_reductions import (frequent_paragraphs, keep_best_losers,
                                                     load_frequent_paragraphs, rows_to_drop)
from obelics_builder.schema import END_OF_DOCUMENT
from obelics_builder.stats import StageContext, Stats


def doc(url, texts=(), images=(), warc="crawl-data/CC-MAIN-2023-06/x", offset=0):
    d = schema.new_document({"url": url, "warc_filename": warc, "warc_record_offset": offset})
    for t in texts:
        schema.add_text(d, t)
    for u in images:
        schema.add_image(d, {"src": u})
    return d


def test_image_set_key_ignores_order_and_repeats():
    a = doc("p1", ["t"], ["https://i/1", "https://i/2", "https://i/1"])
    b = doc("p2", ["u"], ["https://i/2", "https://i/1"])
    c = doc("p3", ["u"], ["https://i/1"])
    assert image_sets.image_set_key(a) == image_sets.image_set_key(b) != image_sets.image_set_key(c)
    assert image_sets.image_set_key(doc("p4", ["no images"])) == ""
    # no separator ambiguity: {"ab", "c"} differs from {"a", "bc"}
    assert image_sets.image_set_key(doc("x", [], ["ab", "c"])) != image_sets.image_set_key(doc("y", [], ["a", "bc"]))


def test_image_set_losers_keep_latest(tmp_path):
    p1 = [doc("u1", ["a"], ["https://i/1", "https://i/2"], "crawl-data/CC-MAIN-2020-34/x"),
          doc("u2", ["b"], [], "crawl-data/CC-MAIN-2020-34/x"),
          doc("u3", ["c"], ["https://i/9"], "crawl-data/CC-MAIN-2020-34/x")]
    p2 = [doc("u4", ["d"], ["https://i/2", "https://i/1"], "crawl-data/CC-MAIN-2023-06/x"),
          doc("u5", ["e"], [], "crawl-data/CC-MAIN-2023-06/x"),
          doc("u6", ["f"], ["https://i/1", "https://i/2"], "crawl-data/CC-MAIN-2021-04/x")]
    for name, docs in (("p1", p1), ("p2", p2)):
        pq.write_table(pa.table(image_sets.image_set_keys(docs, name), schema=image_sets.KEYS_SCHEMA),
                       tmp_path / f"{name}.sets.parquet")
    dest = tmp_path / "losers"
    n = keep_best_losers([tmp_path / "p1.sets.parquet", tmp_path / "p2.sets.parquet"], dest, "fp", "sync")
    assert n == 2
    assert rows_to_drop(dest, "p1") == {0} and rows_to_drop(dest, "p2") == {2}
    # the stage drops them in the part (batches in order, running offset)
    ctx = StageContext("image_set_dedup", stats=Stats(), resources={"drop_rows": rows_to_drop(dest, "p2")})
    out = image_sets.drop_duplicate_image_sets(p2[:2], ctx) + image_sets.drop_duplicate_image_sets(p2[2:], ctx)
    assert [d["general_metadata"]["url"] for d in out] == ["u4", "u5"]
    assert ctx.stats.to_dict()["image_set_dedup"]["removed"] == {"duplicate_image_set": 1}


def test_image_set_equal_ranks_still_keep_one(tmp_path):
    docs = [doc("u", ["a"], ["https://i/1"]), doc("u", ["a"], ["https://i/1"])]  # same WARC and offset
    pq.write_table(pa.table(image_sets.image_set_keys(docs, "p"), schema=image_sets.KEYS_SCHEMA), tmp_path / "k.parquet")
    assert keep_best_losers([tmp_path / "k.parquet"], tmp_path / "l", "fp", "sync") == 1


def test_domain_is_netloc_as_is():
    assert paragraphs.domain("https://www.Example.com:8080/a?b") == "www.Example.com:8080"
    assert paragraphs.domain("not a url") == ""


def _counts_file(path, docs):
    acc = {}
    paragraphs.merge_counts(acc, paragraphs.paragraph_counts(docs))
    pq.write_table(paragraphs.counts_table(acc), path)


def test_per_domain_paragraph_dedup(tmp_path):
    boiler = "Subscribe to our newsletter"
    eod = f"Read more {END_OF_DOCUMENT}"
    a = [doc("https://a.com/1", [f"Intro one\n\n{boiler}", eod]),
         doc("https://a.com/2", [f"Intro two\n\n{boiler}\n\n{eod}"]),
         doc("https://other.com/1", [f"{boiler}\n\nOther text"])]
    b = [doc("https://a.com/3", [f"{boiler}\n\nIntro three\n\nIntro three\n\n{eod}"]),
         doc("https://a.com/4", ["Twice here\n\nTwice here", "Unique four"])]
    _counts_file(tmp_path / "a.counts.parquet", a)
    _counts_file(tmp_path / "b.counts.parquet", b)
    dest = tmp_path / "freq"
    n = frequent_paragraphs([tmp_path / "a.counts.parquet", tmp_path / "b.counts.parquet"], dest, "fp", "sync",
                            min_count=3, buckets=4)
    assert n == 1  # boiler in a.com (3x); EOD never counted; "Intro three"/"Twice here" only 2x; other.com 1x
    freq = load_frequent_paragraphs(dest, {"a.com", "other.com"})
    assert freq == {("a.com", int(paragraphs.paragraph_hashes([boiler])[0]))}
    ctx = StageContext("paragraph_dedup", stats=Stats(), resources={"frequent": freq})
    out = paragraphs.dedup_paragraphs(a + b, ctx)
    texts = [[t for t in d["texts"] if t is not None] for d in out]
    assert texts[0] == ["Intro one", eod]
    assert texts[1] == [f"Intro two\n\n{eod}"]
    assert texts[2] == [f"{boiler}\n\nOther text"]  # another domain keeps it
    assert texts[3] == [f"Intro three\n\n{eod}"]
    assert texts[4] == ["Twice here", "Unique four"]
    st = ctx.stats.to_dict()["paragraph_dedup"]["nodes_removed"]
    assert st == {"paragraph:domain_frequent": 3, "paragraph:repeated_in_document": 2}


def test_paragraph_dedup_drops_emptied_positions_with_scores():
    d = doc("https://a.com/1", ["Same\n\nSame", "Same", "Keep"], ["https://i/1"])
    d["node_score"] = [[0.1, 0.2], [0.3], [0.4], None]
    ctx = StageContext("paragraph_dedup", stats=Stats())
    (out,) = paragraphs.dedup_paragraphs([d], ctx)
    assert out["texts"] == ["Same", "Keep", None]
    assert out["node_score"] == [[0.1], [0.4], None]
    schema.validate(out)
