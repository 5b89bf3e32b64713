"""Document schema, Parquet round trips, markers, stats accounting."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from obelics_builder import schema
from obelics_builder.io.markers import read_marker, write_marker
from obelics_builder.io.parquet import DocumentWriter, read_documents, write_documents
from obelics_builder.stats import StageContext, Stats, run_stage


def make_doc(url="https://a.example/p", n_img=1, warc="crawl-data/CC-MAIN-2023-06/x.warc.gz", offset=0):
    d = schema.new_document({"url": url, "warc_filename": warc, "warc_record_offset": offset,
                             "warc_record_length": 10, "dump": "CC-MAIN-2023-06", "fetch_date": "2023-02-01T00:00:00Z"})
    schema.add_text(d, "Hello world.\n\nSecond paragraph here.")
    for i in range(n_img):
        schema.add_image(d, {"src": f"https://a.example/{i}.jpg", "unformatted_src": f"{i}.jpg", "alt_text": "x"})
    schema.add_text(d, "Tail text.")
    return d


def test_document_invariants():
    d = make_doc(n_img=2)
    schema.validate(d)
    assert schema.n_images(d) == 2
    assert schema.n_paragraphs(d) == 3
    bad = make_doc()
    bad["images"][0] = "https://x"  # a text position with an image URL
    with pytest.raises(ValueError):
        schema.validate(bad)


def test_arrow_round_trip_keeps_obelics_types_and_scores():
    d = make_doc()
    d["node_words"] = [[2.0, 3.0], None, [2.0]]
    d["doc_words"] = 7
    t = schema.to_arrow([d])
    assert t.schema.names[:4] == ["images", "metadata", "general_metadata", "texts"]
    assert str(t.schema.field("texts").type) == "list<item: string>"
    assert str(t.schema.field("metadata").type) == "string"
    back = schema.from_arrow(t)[0]
    assert back["texts"] == d["texts"] and back["images"] == d["images"]
    assert back["metadata"] == d["metadata"] and back["general_metadata"] == d["general_metadata"]
    assert back["node_words"] == d["node_words"] and back["doc_words"] == 7.0
    # metadata is a JSON list with null at text positions, as published
    assert json.loads(t.column("metadata")[0].as_py())[0] is None


def test_keep_positions_keeps_aligned_columns():
    d = make_doc(n_img=2)
    d["node_words"] = [[2.0, 3.0], None, None, [2.0]]
    schema.keep_positions(d, [True, False, True, True])
    assert d["images"] == [None, "https://a.example/1.jpg", None]
    assert d["node_words"] == [[2.0, 3.0], None, [2.0]]
    schema.validate(d)


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "p.parquet"
    w = DocumentWriter(path)
    w.write([make_doc()])
    assert not path.exists(), "a file must not appear under its name before it is complete"
    w.close()
    assert path.exists() and len(read_documents(path)) == 1
    w2 = DocumentWriter(tmp_path / "q.parquet")
    w2.write([make_doc()])
    w2.abort()
    assert list(tmp_path.iterdir()) == [path]


def test_writer_aligns_score_columns_across_batches(tmp_path):
    a, b = make_doc(), make_doc(url="https://b.example/")
    a["doc_words"] = 3.0
    with DocumentWriter(tmp_path / "x.parquet") as w:
        w.write([a])
        w.write([b])  # no score: null in the same column
    t = pq.read_table(tmp_path / "x.parquet")
    assert t.column("doc_words").to_pylist() == [3.0, None]


def test_empty_part_is_valid(tmp_path):
    write_documents(tmp_path / "e.parquet", [])
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


def test_markers_fingerprint(tmp_path):
    write_marker(tmp_path, "k", {"fingerprint": "abc", "stats": {}})
    assert read_marker(tmp_path, "k", "abc") is not None
    assert read_marker(tmp_path, "k", "other") is None
    assert read_marker(tmp_path, "missing") is None


def test_stats_merge_and_balance():
    s1, s2 = Stats(), Stats()
    ctx = StageContext("drop_odd", stats=s1)

    def stage(docs, c):
        out = [d for i, d in enumerate(docs) if i % 2 == 0]
        c.remove("odd", len(docs) - len(out))
        return out

    run_stage(stage, [make_doc() for _ in range(5)], ctx)
    s2.error("drop_odd", "boom", file="f.warc.gz", offset=12)
    s2.add("drop_odd", "documents_in", 1)
    s1.merge(s2.to_dict())
    st = s1.to_dict()["drop_odd"]
    assert st["documents_in"] == 6 and st["documents_out"] == 3
    assert st["removed"] == {"odd": 2} and st["errors"] == {"boom": 1}
    assert st["examples"][0]["file"] == "f.warc.gz"
    assert s1.balance_problems() == []
    s1.add("drop_odd", "documents_in", 1)
    assert s1.balance_problems()
